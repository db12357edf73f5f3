//! The driver interface, after libnetwork's driverapi. A driver makes the kernel objects of its
//! networks and endpoints; the controller owns the records, IPAM and the sandbox side (moving the
//! interface the driver hands over into the namespace and configuring it there). A driver never
//! touches the store.

use std::net::IpAddr;

use async_trait::async_trait;
use ipnetwork::IpNetwork;

use crate::model::{Endpoint, Network, Sandbox, Scope};
use crate::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub scope: Scope,
    /// Whether endpoints get addresses from IPAM (host and none: no).
    pub needs_ipam: bool,
    /// Whether endpoints live in a namespace of their own (host: no, they share the daemon's).
    pub needs_sandbox_netns: bool,
    /// Whether the user may create networks of this driver (host and none exist once, built in).
    pub user_creatable: bool,
}

/// What `join` tells the controller to do inside the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinInfo {
    /// The interface (in the daemon's namespace) to move into the sandbox and rename to the
    /// endpoint's ifname. None: the driver puts nothing into the sandbox (none, host).
    pub src_ifname: Option<String>,
    pub mtu: Option<u32>,
    /// The default route goes via these, unless the network is internal.
    pub gateway_v4: Option<IpAddr>,
    pub gateway_v6: Option<IpAddr>,
    /// Extra routes (destination, next hop) to add in the sandbox.
    pub static_routes: Vec<(IpNetwork, Option<IpAddr>)>,
}

#[async_trait]
pub trait Driver: Send + Sync {
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// Checks the network's driver options (and anything else driver-specific) before anything is
    /// made. Errors name the bad option and value.
    fn validate_network(&self, network: &Network) -> Result<()>;

    /// Makes the network's kernel objects (bridge, firewall rules). Must be idempotent: `restore`
    /// calls it again for every network after a restart.
    async fn create_network(&self, network: &Network) -> Result<()>;

    /// Removes everything `create_network` made. Missing objects are not an error.
    async fn delete_network(&self, network: &Network) -> Result<()>;

    /// Makes the endpoint's kernel objects in the daemon's namespace (a veth pair on the bridge,
    /// say) and records in `endpoint.driver_data` what it needs to find them again.
    async fn create_endpoint(&self, network: &Network, endpoint: &mut Endpoint) -> Result<()>;

    /// Removes what `create_endpoint` made. Missing objects are not an error.
    async fn delete_endpoint(&self, network: &Network, endpoint: &Endpoint) -> Result<()>;

    /// Says which interface goes into the sandbox and how to route through it.
    async fn join(&self, network: &Network, endpoint: &Endpoint, sandbox: &Sandbox) -> Result<JoinInfo>;

    /// Undoes driver-side state of a join. The controller removes the interface from the sandbox.
    async fn leave(&self, network: &Network, endpoint: &Endpoint, sandbox: &Sandbox) -> Result<()>;

    /// Publishes the endpoint's ports (`endpoint.ports`). Drivers without port publishing accept
    /// an endpoint with no ports and refuse one with ports.
    async fn program_external_connectivity(&self, _network: &Network, endpoint: &Endpoint) -> Result<()> {
        if endpoint.ports.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::invalid(format!("the {} driver does not publish ports", self.name())))
        }
    }

    async fn revoke_external_connectivity(&self, _network: &Network, _endpoint: &Endpoint) -> Result<()> {
        Ok(())
    }

    /// After a restart: make the kernel match these records (re-create what is missing, for
    /// every network and endpoint of this driver) and remove this driver's orphans (objects with
    /// cnet's names that no record claims).
    async fn restore(&self, networks: &[Network], endpoints: &[Endpoint]) -> Result<()>;
}
