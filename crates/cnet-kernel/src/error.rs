use std::{io, path::PathBuf};

/// `Result` of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with the link, address or namespace involved in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A netlink request failed; `context` says which request on which object (and in which
    /// namespace when it was not the daemon's own).
    #[error("{context}: {}", describe(.error))]
    Netlink { context: String, error: rtnetlink::Error },
    /// A link that the operation needs does not exist.
    #[error("link {name:?} not found{}", in_netns(.netns))]
    LinkNotFound { name: String, netns: Option<PathBuf> },
    /// `ensure_bridge` found a link of that name that is not a bridge.
    #[error("link {name:?} exists but is {}, not a bridge", kind_name(.kind))]
    NotABridge { name: String, kind: Option<String> },
    /// A link of that name exists but is not the one the operation would have made (e.g.
    /// `create_vxlan` finding a veth, or a vxlan with another VNI). `found` and `wanted` describe
    /// both: "a veth link", "a vxlan link with VNI 7".
    #[error("link {name:?} exists but is {found}, not {wanted}")]
    LinkConflict { name: String, found: String, wanted: String },
    /// An argument that the kernel would reject (or that would escape `/proc/sys`).
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid { what: &'static str, value: String, reason: &'static str },
    /// A namespace operation (open, setns, unshare, mount, …) failed on `path`.
    #[error("netns {}: {op}: {error}", .path.display())]
    Netns { path: PathBuf, op: &'static str, error: io::Error },
    /// Reading or writing a sysctl file failed.
    #[error("sysctl {}: {error}", .path.display())]
    Sysctl { path: PathBuf, error: io::Error },
    /// Adding a qdisc of this kind failed because the kernel has none (`sch_<kind>` is neither
    /// built in nor loadable): the kernel answers ENOENT ("unknown qdisc kind").
    #[error("the kernel has no {kind} qdisc (sch_{kind})")]
    MissingQdisc { kind: &'static str },
    /// A generic netlink request (WireGuard's) failed; `context` says which.
    #[error("{context}: {error}")]
    Genetlink { context: String, error: io::Error },
    /// Opening the netlink socket (or spawning its helper thread) failed.
    #[error("netlink connection{}: {error}", in_netns(.netns))]
    Connect { netns: Option<PathBuf>, error: io::Error },
}

impl Error {
    /// The errno behind the error, when there is one (positive, e.g. `libc::EEXIST`).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { error, .. } => netlink_errno(error),
            Error::Netns { error, .. }
            | Error::Sysctl { error, .. }
            | Error::Connect { error, .. }
            | Error::Genetlink { error, .. } => error.raw_os_error(),
            _ => None,
        }
    }

    /// True for "no such link" (a [`Error::LinkNotFound`] or a netlink ENODEV).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::LinkNotFound { .. }) || self.errno() == Some(nix::libc::ENODEV)
    }

    pub(crate) fn invalid(what: &'static str, value: impl Into<String>, reason: &'static str) -> Self {
        Error::Invalid { what, value: value.into(), reason }
    }

    pub(crate) fn netns(path: impl Into<PathBuf>, op: &'static str, error: impl Into<io::Error>) -> Self {
        Error::Netns { path: path.into(), op, error: error.into() }
    }
}

/// The positive errno of a netlink error reply.
pub(crate) fn netlink_errno(error: &rtnetlink::Error) -> Option<i32> {
    match error {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| c.get().abs()),
        _ => None,
    }
}

fn describe(error: &rtnetlink::Error) -> String {
    match error {
        // "File exists (os error 17)" rather than rtnetlink's longer wrapper text.
        rtnetlink::Error::NetlinkError(msg) => msg.to_io().to_string(),
        rtnetlink::Error::RequestFailed => "netlink request failed (connection closed?)".to_string(),
        other => other.to_string(),
    }
}

fn in_netns(netns: &Option<PathBuf>) -> String {
    match netns {
        Some(p) => format!(" in netns {}", p.display()),
        None => String::new(),
    }
}

pub(crate) fn kind_name(kind: &Option<String>) -> String {
    match kind {
        Some(k) => format!("a {k} link"),
        None => "a link of no kind".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::ErrorMessage;
    use std::num::NonZeroI32;

    fn nl_err(code: i32) -> rtnetlink::Error {
        let mut msg = ErrorMessage::default();
        msg.code = NonZeroI32::new(-code);
        rtnetlink::Error::NetlinkError(msg)
    }

    #[test]
    fn netlink_error_display_has_context_and_errno() {
        let e = Error::Netlink { context: "add address 10.99.0.1/24 to br0".into(), error: nl_err(nix::libc::EEXIST) };
        let s = e.to_string();
        assert!(s.starts_with("add address 10.99.0.1/24 to br0: "), "{s}");
        assert!(s.contains("File exists"), "{s}");
        assert_eq!(e.errno(), Some(nix::libc::EEXIST));
        assert!(!e.is_not_found());
    }

    #[test]
    fn not_found_display_names_the_netns() {
        let e = Error::LinkNotFound { name: "eth0".into(), netns: Some("/run/cnet/netns/abc".into()) };
        assert_eq!(e.to_string(), "link \"eth0\" not found in netns /run/cnet/netns/abc");
        assert!(e.is_not_found());
        let e = Error::Netlink { context: "x".into(), error: nl_err(nix::libc::ENODEV) };
        assert!(e.is_not_found());
    }

    #[test]
    fn netns_and_bridge_display() {
        let e = Error::netns("/tmp/ns", "setns", io::Error::from_raw_os_error(nix::libc::EINVAL));
        let s = e.to_string();
        assert!(s.starts_with("netns /tmp/ns: setns: "), "{s}");
        assert_eq!(e.errno(), Some(nix::libc::EINVAL));
        let e = Error::NotABridge { name: "x".into(), kind: Some("veth".into()) };
        assert_eq!(e.to_string(), "link \"x\" exists but is a veth link, not a bridge");
        let e = Error::LinkConflict {
            name: "vx0".into(),
            found: "a vxlan link with VNI 7".into(),
            wanted: "a vxlan link with VNI 42".into(),
        };
        assert_eq!(e.to_string(), "link \"vx0\" exists but is a vxlan link with VNI 7, not a vxlan link with VNI 42");
    }
}
