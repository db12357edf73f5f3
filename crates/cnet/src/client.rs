//! Turning failures of cnetd calls into the messages the CLI prints. The connection itself is
//! `cnet_api::client`, shared with the runtime.

use std::io;

pub use cnet_api::client::{Daemon, Unreachable};
use tonic::Status;

/// What the CLI does with a failed call: a transport failure (the daemon went away mid-command)
/// becomes [`Unreachable`]; anything else stays the daemon's [`Status`]. Both render as Docker's.
pub trait CallError {
    fn error(&self, status: Status) -> anyhow::Error;
}

impl CallError for Daemon {
    fn error(&self, status: Status) -> anyhow::Error {
        match self.check(status) {
            Ok(status) => anyhow::Error::new(status),
            Err(unreachable) => anyhow::Error::new(unreachable),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_errors_are_prefixed() {
        let err = anyhow::Error::new(Status::failed_precondition("network n1 has active endpoints"));
        assert_eq!(render_error(&err), "Error response from daemon: network n1 has active endpoints");
    }

    #[test]
    fn unreachable_renders_as_its_message() {
        let io = io::Error::from(io::ErrorKind::NotFound);
        let u = Unreachable::new(std::path::Path::new("/run/cnet/cnetd.sock"), &io);
        assert_eq!(render_error(&anyhow::Error::new(u.clone())), u.to_string());
    }

    #[test]
    fn local_errors_print_their_chain() {
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(render_error(&err), "outer: inner");
    }
}
