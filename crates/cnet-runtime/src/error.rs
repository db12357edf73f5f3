//! The runtime's error type: every variant says what was being done, so the CLI can print it as is.

use std::io;
use std::path::Path;

/// Errors of the runtime. `Display` is the message the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No container matches the reference.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// A conflict with existing state: a name in use, a running container, an image in use.
    #[error("{0}")]
    Conflict(String),
    /// Bad input, found before anything was made.
    #[error("{0}")]
    Invalid(String),
    /// The image store refused.
    #[error("{0}")]
    Image(#[from] cnet_image::Error),
    /// cnetd cannot be reached (not running, or not this user's to use).
    #[error("{0}")]
    Unreachable(#[from] cnet_api::client::Unreachable),
    /// cnetd refused; its message, as Docker prints daemon errors.
    #[error("Error response from daemon: {}", .0.message())]
    Daemon(Box<tonic::Status>),
    /// The container process could not be started; `exit_code` is Docker's (125, 126, 127).
    #[error("{message}")]
    Start { message: String, exit_code: i32 },
    /// A system call failed.
    #[error("{context}: {source}")]
    Sys { context: String, source: nix::errno::Errno },
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    /// A record on disk could not be read.
    #[error("{context}: {source}")]
    Json { context: String, source: serde_json::Error },
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::Daemon(Box::new(status))
    }
}

impl Error {
    /// The exit code `cnet run` uses for this error (Docker: 125 for its own failures).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Start { exit_code, .. } => *exit_code,
            _ => 125,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds what was being done to io, nix and serde errors.
pub trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, io::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { context: what(), source })
    }
}

impl<T> Context<T> for std::result::Result<T, nix::errno::Errno> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys { context: what(), source })
    }
}

impl<T> Context<T> for std::result::Result<T, serde_json::Error> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Json { context: what(), source })
    }
}

/// `"reading /x/y"`-style context for a path.
pub(crate) fn at(verb: &str, path: &Path) -> String {
    format!("{verb} {}", path.display())
}
