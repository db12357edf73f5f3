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

/// The binary of a container's supervisor (`src/bin/cnet-supervise.rs`), installed next to `cnet`.
pub const SUPERVISOR_BINARY: &str = "cnet-supervise";

/// Where the supervisor binary is for the CLI at `cli_exe`: next to it (a build directory, the
/// package's /usr/bin), else on `PATH` (a CLI copied somewhere on its own).
pub fn find_supervisor(cli_exe: &std::path::Path) -> Result<std::path::PathBuf> {
    cnet_core::binaries::find_beside_or_on_path(cli_exe, SUPERVISOR_BINARY).ok_or_else(|| {
        Error::Invalid(format!(
            "the container supervisor {SUPERVISOR_BINARY} is neither next to {} nor on PATH: install it with cnet",
            cli_exe.display()
        ))
    })
}

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
