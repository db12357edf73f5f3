//! The minimal container runtime that fronts cnetd: images, root filesystems, namespaces, and a
//! supervisor process per container. It asks cnetd for a sandbox (network namespace) over gRPC and
//! never touches network state itself (no netlink, no nftables, no `ip`).
//!
//! The phases of a container, each in its own module:
//! - [`spec`]: the options, validated into typed values before anything is made;
//! - [`lifecycle::create`]: image ([`image`]), name, container directory ([`store`]), sandbox and
//!   networks ([`network`], cnetd's `CreateSandbox`/`ConnectNetwork`), `/etc` files;
//! - [`supervisor`]: one detached process per running container (phase 1), which `clone`s
//!   the container's init (phase 2, [`init`]) into new mount/pid/uts/ipc namespaces; init joins the
//!   sandbox's netns, builds its root filesystem ([`rootfs`]) and execs. They talk over
//!   [`channel`]'s typed messages. State is in [`state`], output in [`logs`].
//! - [`exec`] and [`top`] look into a running container through `/proc/PID`.

pub mod channel;
pub mod error;
pub mod exec;
pub mod image;
pub mod init;
pub mod lifecycle;
pub mod logs;
pub mod names;
pub mod network;
pub mod rootfs;
pub mod spec;
pub mod state;
pub mod store;
pub mod supervisor;
pub mod time;
pub mod top;

pub use error::{Error, Result};
pub use spec::{ContainerConfig, ContainerSpec, NetworkAttachment, RestartPolicy};
pub use state::{State, Status};
pub use store::{Container, Runtime};

/// The hidden CLI subcommand that runs a supervisor: `cnet __supervise ID`.
pub const SUPERVISE_ARG: &str = "__supervise";

/// The runtime's default root directory.
pub const DEFAULT_ROOT: &str = "/var/lib/cnet/runtime";
