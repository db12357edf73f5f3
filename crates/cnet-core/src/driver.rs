//! The driver interface, after libnetwork's driverapi. A driver makes the kernel objects of its
//! networks and endpoints; the controller owns the records, IPAM and the sandbox side (moving the
//! interface the driver hands over into the namespace and configuring it there). A driver never
//! touches the store. Every step defaults to doing nothing, so a driver that makes no kernel objects
//! (host, none) states only its name and capabilities.

use std::collections::HashMap;
use std::net::IpAddr;

use async_trait::async_trait;
use ipnetwork::IpNetwork;

use crate::Result;
use crate::model::{Endpoint, Network, Sandbox, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub scope: Scope,
    /// Whether endpoints get addresses from IPAM (host and none: no).
    pub needs_ipam: bool,
    /// Whether endpoints live in a namespace of their own (host: no, they share the daemon's).
    pub needs_sandbox_netns: bool,
    /// Whether the user may create networks of this driver (host and none exist once, built in).
    pub user_creatable: bool,
    /// Whether `delete_endpoint` takes the sandbox's interface with it (the bridge's veth pair
    /// goes with its host end), so a sandbox being removed need not delete it first.
    pub interface_goes_with_endpoint: bool,
}

/// How the controller plans the address pools of a driver's networks (for drivers that need IPAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolPlan {
    /// Docker's: a default subnet when the user gives none, and a gateway (`--gateway`, else the
    /// first address) in every subnet.
    #[default]
    Routed,
    /// Only the subnets the user gives (`--subnet`), none otherwise, so endpoints may have no
    /// address at all; and no gateway unless `--gateway` names one. For links with no router on
    /// them (p2p): a /31 or /127 then gives both its addresses to endpoints (RFC 3021, RFC 6164).
    LinkOnly,
}

/// The interface a join puts into the sandbox, described for the controller to make there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxInterface {
    /// A veth pair whose `host` end hangs off `bridge` in the daemon's namespace and whose other
    /// end is made directly inside the sandbox. Creating it there costs about a millisecond;
    /// creating it outside and moving it in costs 15-20 ms of kernel RCU waits per move.
    VethOnBridge { host: String, bridge: String },
    /// A link the driver made in the daemon's namespace, to be moved in.
    Move { src: String },
    /// A macvlan link on `parent` (a link of the daemon's namespace), made directly inside the
    /// sandbox (`IFLA_NET_NS_FD`): about a millisecond, where making it outside and moving it in
    /// would cost 15-20 ms.
    MacvlanOn { parent: String, mode: MacvlanMode },
    /// A veth pair made in one request with this end born inside the sandbox and the other end
    /// left down in the daemon's namespace as `parked`, for a later join to take (the first
    /// endpoint of a p2p link).
    VethWithParkedPeer { parked: String },
    /// The `parked` end of a pair (see `VethWithParkedPeer`), moved into the sandbox and
    /// configured there; if that fails it is parked again, so that its peer keeps its link.
    Unpark { parked: String },
}

/// The macvlan modes (`macvlan_mode`), as the kernel names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MacvlanMode {
    /// Endpoints on one parent reach each other directly (Docker's default).
    #[default]
    Bridge,
    /// Endpoints on one parent never reach each other, even through an external switch.
    Private,
    /// Traffic between endpoints goes out to the external switch (which must hairpin it back).
    Vepa,
    /// One endpoint takes over the parent.
    Passthru,
}

impl MacvlanMode {
    pub const NAMES: [&str; 4] = ["bridge", "private", "vepa", "passthru"];

    pub fn parse(s: &str) -> Option<MacvlanMode> {
        match s {
            "bridge" => Some(MacvlanMode::Bridge),
            "private" => Some(MacvlanMode::Private),
            "vepa" => Some(MacvlanMode::Vepa),
            "passthru" => Some(MacvlanMode::Passthru),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MacvlanMode::Bridge => "bridge",
            MacvlanMode::Private => "private",
            MacvlanMode::Vepa => "vepa",
            MacvlanMode::Passthru => "passthru",
        }
    }
}

/// An endpoint of a global network that lives on another node, as the cluster store reports it:
/// what a driver needs to send it frames (for VXLAN: an FDB entry MAC -> node, a neighbour entry
/// per address IP -> MAC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemoteEndpoint {
    pub mac: [u8; 6],
    /// Its IPv4 address; none on a network that gives no addresses (a vxlan link without a
    /// subnet).
    pub ip: Option<IpAddr>,
    /// Its IPv6 address, on a network with IPv6 (`--ipv6`).
    pub ip_v6: Option<IpAddr>,
    /// The address of the node it lives on (its VTEP, for VXLAN).
    pub node_address: IpAddr,
    /// The WireGuard public key of the node it lives on (encrypted overlay networks), if that
    /// node published one.
    pub node_key: Option<[u8; 32]>,
}

impl RemoteEndpoint {
    /// Its addresses: the IPv4 one, then the IPv6 one, each if it has one.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> {
        self.ip.into_iter().chain(self.ip_v6)
    }
}

/// A global network's secret, as the cluster store keeps it (one per encrypted overlay network):
/// `serial` counts rotations, so a driver can tell a new key from the one it has.
#[derive(Clone, PartialEq, Eq)]
pub struct NetworkSecret {
    pub serial: u64,
    pub key: [u8; 32],
}

impl std::fmt::Debug for NetworkSecret {
    /// Never the key itself: secrets must not reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkSecret").field("serial", &self.serial).finish_non_exhaustive()
    }
}

/// What `join` tells the controller to do inside the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinInfo {
    /// None: the driver puts nothing into the sandbox (none, host).
    pub interface: Option<SandboxInterface>,
    pub mtu: Option<u32>,
    /// The default route goes via these, unless the network is internal.
    pub gateway_v4: Option<IpAddr>,
    pub gateway_v6: Option<IpAddr>,
    /// Extra routes (destination, next hop) to add in the sandbox.
    pub static_routes: Vec<(IpNetwork, Option<IpAddr>)>,
}

/// How a driver carries a global network over VXLAN ([`Driver::vxlan_vni`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanVni {
    pub vni: u32,
    /// The link the network's VXLAN packets come in by when it is encrypted (its WireGuard link).
    pub through: Option<String>,
}

#[async_trait]
pub trait Driver: Send + Sync {
    fn name(&self) -> &'static str;

    fn capabilities(&self) -> Capabilities;

    /// How the controller plans this driver's address pools (when `needs_ipam`).
    fn pool_plan(&self) -> PoolPlan {
        PoolPlan::Routed
    }

    /// The most endpoints one network of this driver takes (p2p: two); the controller refuses
    /// one more before it leases or makes anything.
    fn max_endpoints(&self) -> Option<usize> {
        None
    }

    /// The endpoint driver options (`--driver-opt`) this driver takes, besides the interface name
    /// every driver takes ([`crate::options::ENDPOINT_IFNAME`]); it finds them in
    /// `endpoint.driver_opts`. The controller refuses any other key before anything is made.
    fn endpoint_options(&self) -> &'static [&'static str] {
        &[]
    }

    /// Checks the network's driver options (and anything else driver-specific) before anything is
    /// made. Errors name the bad option and value.
    fn validate_network(&self, _network: &Network) -> Result<()> {
        Ok(())
    }

    /// Makes the network's kernel objects (bridge, firewall rules). Must be idempotent: `restore`
    /// calls it again for every network after a restart.
    async fn create_network(&self, _network: &Network) -> Result<()> {
        Ok(())
    }

    /// Removes everything `create_network` made. Missing objects are not an error.
    async fn delete_network(&self, _network: &Network) -> Result<()> {
        Ok(())
    }

    /// Prepares the endpoint: makes what must exist before the join in the daemon's namespace and
    /// records in `endpoint.driver_data` what the driver needs to find its objects again.
    async fn create_endpoint(&self, _network: &Network, _endpoint: &mut Endpoint) -> Result<()> {
        Ok(())
    }

    /// Removes what `create_endpoint` made. Missing objects are not an error.
    async fn delete_endpoint(&self, _network: &Network, _endpoint: &Endpoint) -> Result<()> {
        Ok(())
    }

    /// Says which interface goes into the sandbox and how to route through it.
    async fn join(&self, _network: &Network, _endpoint: &Endpoint, _sandbox: &Sandbox) -> Result<JoinInfo> {
        Ok(JoinInfo::default())
    }

    /// Undoes driver-side state of a join. Runs before the controller removes the interface from
    /// the sandbox, so a driver whose link outlives the endpoint takes it back here (p2p parks its
    /// end of the pair for the peer) and the controller then finds nothing to remove.
    async fn leave(&self, _network: &Network, _endpoint: &Endpoint, _sandbox: &Sandbox) -> Result<()> {
        Ok(())
    }

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

    /// Global networks: the endpoints other nodes have on `network`, by endpoint id, after the
    /// controller (re)listed the cluster store. The driver programs the new ones, removes the ones
    /// no longer listed and leaves the unchanged alone, whether or not this node has local
    /// endpoints yet (it keeps them for when it has).
    async fn set_remote_endpoints(
        &self,
        _network: &Network,
        _endpoints: HashMap<String, RemoteEndpoint>,
    ) -> Result<()> {
        Ok(())
    }

    /// Global networks: one endpoint of another node appeared (or changed) on `network`.
    async fn remote_endpoint_added(
        &self,
        _network: &Network,
        _endpoint_id: &str,
        _endpoint: RemoteEndpoint,
    ) -> Result<()> {
        Ok(())
    }

    /// Global networks: one endpoint of another node went away from `network`.
    async fn remote_endpoint_removed(&self, _network: &Network, _endpoint_id: &str) -> Result<()> {
        Ok(())
    }

    /// Global networks: the network's secret in the cluster store, after a (re)list and whenever
    /// it changes (a rotation); `None` when the store holds none. Drivers that encrypt (overlay
    /// with `-o encrypted`) key their tunnels with it, as libnetwork's drivers get their keys
    /// through `DiscoverNew(EncryptionKeysConfig)`.
    async fn set_network_secret(&self, _network: &Network, _secret: Option<NetworkSecret>) -> Result<()> {
        Ok(())
    }

    /// Global networks carried by VXLAN: the VNI this driver's devices use for `network`, and
    /// the link its packets must come in by if it is encrypted. The controller keeps the
    /// firewall's VXLAN guard from these: packets for the VNI from anyone but the cluster's hosts
    /// (or, encrypted, not through that link) are dropped before they reach the device.
    fn vxlan_vni(&self, _network: &Network) -> Option<VxlanVni> {
        None
    }

    /// Global networks: the cluster removed `network` while this node had no endpoint on it;
    /// forget whatever is kept for it (no kernel object exists without a local endpoint).
    async fn forget_network(&self, _network: &Network) {}

    /// After a restart: make the kernel match these records (re-create what is missing, for
    /// every network and endpoint of this driver) and remove this driver's orphans (objects with
    /// cnet's names that no record claims).
    async fn restore(&self, _networks: &[Network], _endpoints: &[Endpoint]) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_endpoint_has_its_v6_address_after_its_v4_one() {
        let mut ep = RemoteEndpoint {
            mac: [2, 0, 0, 0, 0, 1],
            ip: Some("10.0.0.2".parse().unwrap()),
            ip_v6: None,
            node_address: "192.0.2.2".parse().unwrap(),
            node_key: None,
        };
        let v4: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(ep.addresses().collect::<Vec<_>>(), [v4]);
        ep.ip_v6 = Some("fd00:0:0:1::2".parse().unwrap());
        let v6: IpAddr = "fd00:0:0:1::2".parse().unwrap();
        assert_eq!(ep.addresses().collect::<Vec<_>>(), [v4, v6]);
        ep.ip = None;
        assert_eq!(ep.addresses().collect::<Vec<_>>(), [v6]);
    }
}
