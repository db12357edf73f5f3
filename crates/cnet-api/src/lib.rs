//! The cnetd gRPC API, generated from `proto/cnet/v1/cnet.proto`, the unix-socket connector and
//! the one client of cnetd ([`client::Daemon`]) that every caller (CLI, runtime, tests, benches)
//! shares. Nothing else lives here.

pub mod client;
mod convert;

pub mod v1 {
    tonic::include_proto!("cnet.v1");
}

use std::path::{Path, PathBuf};

/// Where cnetd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/cnet/cnetd.sock";

/// The version of the API in `proto/cnet/v1`: its major is the package's (`v1`); the minor grows
/// with each field or call added, which older clients and daemons ignore.
pub const API_VERSION: &str = "1.3";

/// The exit code of `cnet lab part` when the lab's generation it was asked to act on has been
/// superseded (cnetd's lab agent then reports nothing: the newer generation gets its own part).
pub const LAB_PART_SUPERSEDED: u8 = 75;

/// A channel to cnetd over its unix socket. The URI is a placeholder that tonic requires;
/// the connector ignores it and dials the socket.
pub async fn connect(socket: &Path) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let socket: PathBuf = socket.to_path_buf();
    tonic::transport::Endpoint::from_static("http://cnetd.local")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
}
