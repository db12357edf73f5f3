//! Docker's Container Network Model: networks, endpoints, sandboxes. These are the records the store
//! persists (as JSON) and the controller reasons about; no kernel handles live here.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::id::{EndpointId, MacAddr, NetworkId, SandboxId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Local,
    Global,
}

impl Scope {
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Local => "local",
            Scope::Global => "global",
        }
    }
}

fn given() -> bool {
    true
}

/// One subnet of a network, as the user asked for it or as IPAM chose it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamPool {
    pub subnet: IpNetwork,
    /// None only for drivers that take no gateway (a null-gateway macvlan, say).
    pub gateway: Option<IpAddr>,
    /// Leases come from here; defaults to the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<IpNetwork>,
    /// Addresses kept out of leases (`--aux-address name=ip`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aux_addresses: BTreeMap<String, IpAddr>,
    /// Whether the user gave this subnet (`--subnet`) rather than IPAM choosing it: static
    /// addresses (`--ip`) are taken only in such subnets, as in Docker. Records written before this
    /// field existed count as given, so their static addresses keep working.
    #[serde(default = "given")]
    pub configured: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub id: NetworkId,
    pub name: String,
    pub driver: String,
    pub scope: Scope,
    pub pools: Vec<IpamPool>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    /// RFC 3339.
    pub created: String,
    #[serde(default)]
    pub builtin: bool,
}

impl Network {
    /// A local network with no pools, options or labels, all flags off: what the fields not given
    /// in a literal (`Network { pools, ..Network::new(id, name, driver) }`) default to.
    pub fn new(id: NetworkId, name: impl Into<String>, driver: impl Into<String>) -> Network {
        Network {
            id,
            name: name.into(),
            driver: driver.into(),
            scope: Scope::Local,
            pools: Vec::new(),
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
            internal: false,
            attachable: false,
            enable_ipv6: false,
            created: String::new(),
            builtin: false,
        }
    }

    pub fn short_id(&self) -> &str {
        self.id.short()
    }
    pub fn pool_v4(&self) -> Option<&IpamPool> {
        self.pools.iter().find(|p| p.subnet.is_ipv4())
    }
    pub fn pool_v6(&self) -> Option<&IpamPool> {
        self.pools.iter().find(|p| p.subnet.is_ipv6())
    }
    pub fn option(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl std::str::FromStr for Protocol {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "" | "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            other => Err(crate::Error::invalid(format!("invalid protocol {other:?}: expected tcp, udp or sctp"))),
        }
    }
}

/// A published port: host (address, port) -> container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    pub protocol: Protocol,
    /// None: every host address.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: EndpointId,
    /// The sandbox's (container's) name.
    pub name: String,
    pub network_id: NetworkId,
    pub sandbox_id: SandboxId,
    /// Inside the sandbox: eth0, eth1, ...
    pub ifname: String,
    pub mac: MacAddr,
    /// Address with the subnet's prefix length.
    pub ipv4: Option<IpNetwork>,
    pub ipv6: Option<IpNetwork>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub ports: Vec<PortBinding>,
    /// What the driver needs to find its kernel objects again (the host-side veth name, ...).
    #[serde(default)]
    pub driver_data: BTreeMap<String, String>,
    /// The endpoint's driver options as the user gave them (`--network name=N,driver-opt=K=V`,
    /// `network connect --driver-opt`), Docker's `DriverOpts`: the controller takes
    /// [`crate::options::ENDPOINT_IFNAME`], drivers the keys they declare.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// Docker's `GwPriority`: of a sandbox's endpoints with a gateway, the one with the highest
    /// priority gives the default route (ties: the network name that sorts first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gw_priority: i64,
    /// The gateways the driver's join gave (the default route goes via one when this endpoint
    /// wins the election). Both None in records written before they were kept: the controller
    /// fills them in from the network when it loads such a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_v4: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_v6: Option<IpAddr>,
    /// What `cnet link set` set on the interface (admin state, MTU, shaping); put back at restart.
    #[serde(default, skip_serializing_if = "crate::shaping::LinkSettings::is_default")]
    pub link: crate::shaping::LinkSettings,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl Endpoint {
    /// The gateway of one family this endpoint routes through, if any.
    pub fn gateway(&self, v6: bool) -> Option<IpAddr> {
        if v6 { self.gateway_v6 } else { self.gateway_v4 }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub id: SandboxId,
    pub name: String,
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    /// The bind-mounted namespace file (`<run>/netns/<id>`), or the daemon's own for host networking.
    pub netns_path: String,
    #[serde(default)]
    pub host_network: bool,
    #[serde(default)]
    pub dns: DnsConfig,
    /// "name:ip".
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    pub created: String,
    /// A path that exists as long as the sandbox's container does (the runtime's container
    /// directory); empty for sandboxes of clients that keep their own (the API's default).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    /// `--sysctl` of the container: `net.*` keys only, written in the sandbox's namespace (those
    /// of one interface, `net.ipv4.conf.eth1.*`, when that interface is connected).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
}
