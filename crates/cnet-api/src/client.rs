//! The one client of cnetd that the CLI, the runtime's supervisor and anything else share: a
//! connection dialled once (so a missing daemon is reported before any request), the typed
//! clients on its channel, and [`Unreachable`], the error that says why cnetd cannot be reached.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::v1::event_service_client::EventServiceClient;
use crate::v1::lab_service_client::LabServiceClient;
use crate::v1::link_service_client::LinkServiceClient;
use crate::v1::network_service_client::NetworkServiceClient;
use crate::v1::sandbox_service_client::SandboxServiceClient;
use crate::v1::system_service_client::SystemServiceClient;

/// A connection to cnetd. Cheap to clone; the typed clients share one channel.
#[derive(Debug, Clone)]
pub struct Daemon {
    socket: PathBuf,
    channel: Channel,
}

impl Daemon {
    /// Dials the socket now, so that a missing daemon is reported before any request is sent.
    pub async fn connect(socket: &Path) -> Result<Self, Unreachable> {
        match crate::connect(socket).await {
            Ok(channel) => Ok(Self { socket: socket.to_path_buf(), channel }),
            Err(err) => Err(Unreachable::new(socket, &err)),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn networks(&self) -> NetworkServiceClient<Channel> {
        NetworkServiceClient::new(self.channel.clone())
    }

    pub fn sandboxes(&self) -> SandboxServiceClient<Channel> {
        SandboxServiceClient::new(self.channel.clone())
    }

    pub fn links(&self) -> LinkServiceClient<Channel> {
        LinkServiceClient::new(self.channel.clone())
    }

    pub fn system(&self) -> SystemServiceClient<Channel> {
        SystemServiceClient::new(self.channel.clone())
    }

    pub fn events(&self) -> EventServiceClient<Channel> {
        EventServiceClient::new(self.channel.clone())
    }

    pub fn labs(&self) -> LabServiceClient<Channel> {
        LabServiceClient::new(self.channel.clone())
    }

    /// The daemon's answer, or [`Unreachable`] when the failure is the transport's (cnetd went
    /// away mid-command) rather than cnetd's.
    pub fn check(&self, status: Status) -> Result<Status, Unreachable> {
        if is_transport_failure(&status) { Err(Unreachable::new(&self.socket, &status)) } else { Ok(status) }
    }
}

/// Why the daemon could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableKind {
    /// No socket, nobody listening, or the connection dropped.
    NotRunning,
    /// The socket exists but this user may not connect to it.
    PermissionDenied,
}

/// The daemon could not be reached on `socket`.
#[derive(Debug, Clone)]
pub struct Unreachable {
    pub socket: PathBuf,
    pub kind: UnreachableKind,
    /// The underlying error, for kinds of failure the message does not already explain.
    pub detail: Option<String>,
}

impl Unreachable {
    pub fn new(socket: &Path, err: &(dyn StdError + 'static)) -> Self {
        let io_kind = io_error_kind(err);
        let kind = match io_kind {
            Some(io::ErrorKind::PermissionDenied) => UnreachableKind::PermissionDenied,
            _ => UnreachableKind::NotRunning,
        };
        let detail = match io_kind {
            Some(io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused | io::ErrorKind::PermissionDenied) => None,
            _ => Some(error_chain(err)),
        };
        Self { socket: socket.to_path_buf(), kind, detail }
    }
}

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let socket = self.socket.display();
        match self.kind {
            UnreachableKind::NotRunning => write!(
                f,
                "Cannot connect to cnetd at {socket}: is the daemon running? \
                 Start it as root with: cnetd &"
            )?,
            UnreachableKind::PermissionDenied => write!(
                f,
                "Permission denied while trying to connect to cnetd at {socket}: \
                 run cnet as root or as a user allowed to use the socket"
            )?,
        }
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        write!(f, "\n(To use another socket, pass -H/--host SOCKET or set CNET_SOCKET.)")
    }
}

impl StdError for Unreachable {}

/// A status produced by the client's transport rather than by cnetd.
fn is_transport_failure(status: &Status) -> bool {
    status.code() == Code::Unavailable && StdError::source(status).is_some()
}

fn io_error_kind(err: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if parts.last() != Some(&s) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_message_names_socket_and_flags() {
        let io = io::Error::from(io::ErrorKind::NotFound);
        let text = Unreachable::new(Path::new("/run/cnet/cnetd.sock"), &io).to_string();
        assert!(text.starts_with(
            "Cannot connect to cnetd at /run/cnet/cnetd.sock: is the daemon running? \
             Start it as root with: cnetd &"
        ));
        assert!(text.contains("-H/--host") && text.contains("CNET_SOCKET"));
    }

    #[test]
    fn permission_denied_is_distinguished() {
        let io = io::Error::from(io::ErrorKind::PermissionDenied);
        let u = Unreachable::new(Path::new("/s"), &io);
        assert_eq!(u.kind, UnreachableKind::PermissionDenied);
        assert!(u.to_string().starts_with("Permission denied"));
    }

    #[tokio::test]
    async fn missing_socket_is_unreachable() {
        let dir = std::env::temp_dir().join(format!("cnet-test-{}", std::process::id()));
        let socket = dir.join("does-not-exist.sock");
        let err = Daemon::connect(&socket).await.unwrap_err();
        assert_eq!(err.kind, UnreachableKind::NotRunning);
        assert_eq!(err.detail, None, "{err}");
        assert!(err.to_string().contains(&socket.display().to_string()));
    }
}
