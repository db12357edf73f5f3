use std::sync::Arc;

use thiserror::Error;

/// The lower-level error behind an internal one (netlink, nft, the store, I/O), kept whole so a
/// log or a caller can walk the chain (`std::error::Error::source`).
pub type Source = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// The error every layer of cnet speaks. Its kind decides the gRPC status code; its message names the
/// value that was wrong, so the user can fix the command without reading logs.
#[derive(Debug, Error, Clone)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// Something below cnet failed: `context` says what cnet was doing, `source` (when there is
    /// one) is the error it got; the message is `context: source`.
    #[error("{}", internal_message(context, source))]
    Internal {
        context: String,
        #[source]
        source: Option<Source>,
    },
    /// A service cnet depends on (the cluster store) cannot be reached; trying later may work.
    #[error("{0}")]
    Unavailable(String),
}

fn internal_message(context: &str, source: &Option<Source>) -> String {
    match source {
        Some(source) => format!("{context}: {source}"),
        None => context.to_string(),
    }
}

/// Errors are equal when their kind and message are: what a user (and a test) can see.
impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other) && self.to_string() == other.to_string()
    }
}

impl Eq for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    pub fn exists(msg: impl Into<String>) -> Self {
        Error::AlreadyExists(msg.into())
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }
    pub fn precondition(msg: impl Into<String>) -> Self {
        Error::FailedPrecondition(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal { context: msg.into(), source: None }
    }
    pub fn unavailable(msg: impl Into<String>) -> Self {
        Error::Unavailable(msg.into())
    }

    /// Prefixes the message with what was being done, keeping the kind.
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        match self {
            Error::NotFound(m) => Error::NotFound(format!("{what}: {m}")),
            Error::AlreadyExists(m) => Error::AlreadyExists(format!("{what}: {m}")),
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("{what}: {m}")),
            Error::FailedPrecondition(m) => Error::FailedPrecondition(format!("{what}: {m}")),
            Error::Internal { context, source } => Error::Internal { context: format!("{what}: {context}"), source },
            Error::Unavailable(m) => Error::Unavailable(format!("{what}: {m}")),
        }
    }
}

/// Turns a lower-level error (netlink, nft, store, I/O) into an internal error that says what cnet
/// was doing and keeps the error itself as its source.
pub trait ResultExt<T> {
    fn internal(self, what: impl std::fmt::Display) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> ResultExt<T> for std::result::Result<T, E> {
    fn internal(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::Internal { context: what.to_string(), source: Some(Arc::new(e)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_keep_their_source_and_say_both() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "EPERM on /run/cnet");
        let err = Err::<(), _>(io).internal("creating the namespace file").unwrap_err();
        assert_eq!(err.to_string(), "creating the namespace file: EPERM on /run/cnet");
        let source = std::error::Error::source(&err).expect("the io error is kept");
        assert_eq!(source.to_string(), "EPERM on /run/cnet");
        let outer = err.context("connecting web");
        assert_eq!(outer.to_string(), "connecting web: creating the namespace file: EPERM on /run/cnet");
        assert!(std::error::Error::source(&outer).is_some(), "context keeps the source");
        assert_eq!(Error::internal("x"), Error::internal("x"));
        assert_ne!(Error::internal("x"), Error::invalid("x"));
    }
}
