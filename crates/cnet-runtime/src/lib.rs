//! The minimal container runtime that fronts cnetd: images, root filesystems, namespaces, and a
//! supervisor process per container. It asks cnetd for a sandbox (network namespace) over gRPC and
//! never touches network state itself (no netlink, no nftables, no `ip`).
//!
//! The phases of a container, each in its own module:
//! - [`spec`]: the options, validated into typed values before anything is made;
//! - [`lifecycle::create`]: image ([`cnet_image`]), name, container directory ([`runtime`],
//!   [`container`]), sandbox and networks ([`network`], cnetd's `CreateSandbox`/`ConnectNetwork`),
//!   `/etc` files;
//! - [`supervisor`]: one detached process per running container (phase 1), which `clone`s
//!   the container's init (phase 2, [`init`]) into new mount/pid/uts/ipc namespaces; init joins the
//!   sandbox's netns, builds its root filesystem ([`rootfs`]) and execs. They talk over
//!   [`channel`]'s typed messages. State is in [`state`], output in [`logs`].
//! - [`exec`] and [`top`] look into a running container through `/proc/PID`;
//! - [`removal`]: the end of a container that does not run, for `cnet rm` and `--rm`.

pub mod channel;
pub mod container;
pub mod error;
pub mod exec;
pub mod init;
pub mod lifecycle;
pub mod logs;
pub mod names;
pub mod network;
pub mod reaper;
pub mod removal;
pub mod rootfs;
pub mod runtime;
pub mod spec;
pub mod state;
pub mod supervisor;
pub mod time;
pub mod top;

pub use container::Container;
pub use error::{Error, Result};
pub use runtime::Runtime;
pub use spec::{ContainerConfig, ContainerSpec, NetworkAttachment, RestartPolicy};
pub use state::{State, Status};

/// The hidden CLI subcommand that runs a supervisor: `cnet __supervise ID`.
pub const SUPERVISE_ARG: &str = "__supervise";

/// The runtime's default root directory.
pub const DEFAULT_ROOT: &str = "/var/lib/cnet/runtime";

/// The runtime's crash points for tests (see [`cnet_core::abort_point`]). Of the CLI:
/// `create:dir` (the directory made, nothing else), `create:sandbox` (the sandbox made, no network
/// yet), `create:connected` (every network connected, no config.json yet), `run:created` (a
/// complete container, not started); of the supervisor: `supervise:started` (the program runs,
/// `run` not told yet).
pub fn checkpoint(step: &str) {
    cnet_core::abort_point(step);
}
