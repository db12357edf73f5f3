//! cnet-registry pulls images from registries that speak the OCI distribution protocol (Docker Hub,
//! the distribution registry, GHCR, …) into cnet's image store, through the `oci-client` crate:
//! Docker Hub's token auth and basic auth with the credentials of Docker's `config.json`, an image
//! index resolved to this platform, every manifest, config and layer verified against its digest
//! (by the client and again here), gzip, zstd and plain layers. Blobs are downloaded into a
//! [`cnet_image::Stage`] of the store and committed only when all are verified and unpacked, so a
//! failed pull leaves nothing behind.
//!
//! Registries on `localhost`, 127.0.0.0/8 and `::1` are contacted over plain HTTP, as Docker does;
//! others over HTTPS unless listed in `CNET_INSECURE_REGISTRIES`.

mod auth;
mod error;
mod progress;
mod pull;

pub use auth::{Credentials, credentials_in, docker_config_dir, lookup as lookup_credentials};
pub use error::{Error, Result};
pub use progress::{Progress, Silent};
pub use pull::{INSECURE_REGISTRIES_ENV, Options, Pulled, host_platform, is_loopback, pull};
