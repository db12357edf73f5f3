//! The cnet model and its rules, with no syscalls: networks, endpoints and sandboxes (Docker's CNM),
//! ids, IPAM, option validation, the Driver trait and the error type every layer shares. Anything
//! that touches the kernel, the firewall or the disk lives in another crate.

pub mod driver;
pub mod error;
pub mod etc;
pub mod id;
pub mod ipam;
pub mod model;
pub mod names;
pub mod options;
pub mod portspec;
pub mod time;

pub use driver::{Capabilities, Driver, JoinInfo, MacvlanMode, PoolPlan, RemoteEndpoint, SandboxInterface};
pub use error::{Error, Result, ResultExt};
pub use id::{EndpointId, MacAddr, NetworkId, SandboxId};
pub use model::{DnsConfig, Endpoint, IpamPool, Network, PortBinding, Protocol, Sandbox, Scope};
