//! Connecting to cnetd, and turning failures into the messages the CLI prints.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use cnet_api::v1::network_service_client::NetworkServiceClient;
use cnet_api::v1::sandbox_service_client::SandboxServiceClient;
use cnet_api::v1::system_service_client::SystemServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// A connection to cnetd. Cheap to clone; the typed clients share one channel.
#[derive(Debug, Clone)]
pub struct Daemon {
    socket: PathBuf,
    channel: Channel,
}

impl Daemon {
    /// Dials the socket now, so that a missing daemon is reported before any request is sent.
    pub async fn connect(socket: &Path) -> Result<Self, Unreachable> {
        match cnet_api::connect(socket).await {
            Ok(channel) => Ok(Self { socket: socket.to_path_buf(), channel }),
            Err(err) => Err(Unreachable::new(socket, &err)),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The channel itself, for clients built elsewhere (the container runtime's).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn networks(&self) -> NetworkServiceClient<Channel> {
        NetworkServiceClient::new(self.channel.clone())
    }

    pub fn sandboxes(&self) -> SandboxServiceClient<Channel> {
        SandboxServiceClient::new(self.channel.clone())
    }

    pub fn system(&self) -> SystemServiceClient<Channel> {
        SystemServiceClient::new(self.channel.clone())
    }

    /// Wraps a failed call for `?`: a transport failure (the daemon went away mid-command)
    /// becomes [`Unreachable`]; anything else stays the daemon's [`Status`].
    pub fn error(&self, status: Status) -> anyhow::Error {
        if is_transport_failure(&status) {
            anyhow::Error::new(Unreachable::new(&self.socket, &status))
        } else {
            anyhow::Error::new(status)
        }
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

/// The line printed for an error the daemon returned.
pub fn daemon_message(status: &Status) -> String {
    format!("Error response from daemon: {}", status.message())
}

/// The text printed on stderr for an error that ends the command.
pub fn render_error(err: &anyhow::Error) -> String {
    if let Some(status) = err.downcast_ref::<Status>() {
        return daemon_message(status);
    }
    if let Some(unreachable) = err.downcast_ref::<Unreachable>() {
        return unreachable.to_string();
    }
    format!("{err:#}")
}

/// Whether `err` is (or wraps) a broken pipe on stdout, e.g. `cnet network ls | head -1`.
/// Such errors end the command silently.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
}

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
    fn daemon_errors_are_prefixed() {
        let err = anyhow::Error::new(Status::failed_precondition("network n1 has active endpoints"));
        assert_eq!(render_error(&err), "Error response from daemon: network n1 has active endpoints");
    }

    #[test]
    fn unreachable_message_names_socket_and_flags() {
        let io = io::Error::from(io::ErrorKind::NotFound);
        let u = Unreachable::new(Path::new("/run/cnet/cnetd.sock"), &io);
        let text = render_error(&anyhow::Error::new(u));
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

    #[test]
    fn local_errors_print_their_chain() {
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render_error(&err), "outer: inner");
    }
}
