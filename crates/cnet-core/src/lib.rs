//! The cnet model and its rules, with no syscalls: networks, endpoints and sandboxes (Docker's CNM),
//! ids, IPAM, option validation, the Driver trait and the error type every layer shares. Anything
//! that touches the kernel, the firewall or the disk lives in another crate.

pub mod binaries;
pub mod driver;
pub mod error;
pub mod etc;
pub mod events;
pub mod id;
pub mod ipam;
pub mod model;
pub mod names;
pub mod options;
pub mod portspec;
pub mod shaping;
pub mod sysctl;
pub mod time;

pub use driver::{
    Capabilities, Driver, JoinInfo, MacvlanMode, NetworkSecret, PoolPlan, RemoteEndpoint, SandboxInterface, VxlanVni,
};
pub use error::{Error, Result, ResultExt};
pub use id::{EndpointId, MacAddr, NetworkId, SandboxId};
pub use model::{DnsConfig, Endpoint, IpamPool, Network, PortBinding, Protocol, Sandbox, Scope};

/// A test-only hook: when the environment variable `CNET_TEST_ABORT_AT` names `step`, the process
/// aborts right there, as a `kill -9` would catch it, so crash consistency can be tested at each
/// named step of each process (the steps are listed where each process calls this).
pub fn abort_point(step: &str) {
    static ABORT_AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if ABORT_AT.get_or_init(|| std::env::var("CNET_TEST_ABORT_AT").ok()).as_deref() == Some(step) {
        tracing::warn!(step, "CNET_TEST_ABORT_AT: aborting here");
        eprintln!("CNET_TEST_ABORT_AT: aborting at {step}");
        std::process::abort();
    }
}
