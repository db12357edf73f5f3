//! Errors of a pull: each names the reference, registry, layer or file at fault.

/// Errors of a pull. `Display` is the message the CLI prints.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image store refused (a bad reference, a bad layer tarball, a file error).
    #[error(transparent)]
    Image(#[from] cnet_image::Error),
    /// The registry has no such repository, tag or digest.
    #[error("{0}")]
    NotFound(String),
    /// The registry wants credentials, or refused the ones given.
    #[error("{0}")]
    Unauthorized(String),
    /// The registry could not be reached or broke the protocol.
    #[error("{0}")]
    Registry(String),
    /// Content does not match its digest or size: a corrupted or tampered blob or manifest.
    #[error("{0}")]
    Verification(String),
    /// The image is of a kind cnet cannot run (no image for this platform, an unknown layer type).
    #[error("{0}")]
    Unsupported(String),
    /// Docker's client config cannot be read.
    #[error("{0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
