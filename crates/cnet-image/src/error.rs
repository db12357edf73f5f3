//! The image store's error type: every message names the reference, path or value that was wrong.

use std::io;

/// Errors of the image store. `Display` is the message the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No image matches the reference (`Unable to find image 'x:latest' locally`).
    #[error("{0}")]
    NotFound(String),
    /// Bad input: a malformed reference, an unreadable or unsafe tarball.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the store, e.g. removing by id an image that several tags name.
    #[error("{0}")]
    Conflict(String),
    /// A file operation failed; `context` says what was being done to which path.
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    /// A JSON document (a record of the store, or a manifest or config in a tarball) is malformed.
    #[error("{context}: {source}")]
    Json { context: String, source: serde_json::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

/// Adds what was being done to io and serde errors.
pub(crate) trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { context: what(), source })
    }
}

impl<T> Context<T> for std::result::Result<T, serde_json::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Json { context: what(), source })
    }
}
