//! What the firewall must know about one network, and its validation.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::{Error, Result};

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;

/// The firewall's view of one bridge network.
///
/// The flags are fixed for the life of a network: [`crate::Firewall::remove_network`] must be given
/// the same value that was added (the caller has it from its store). [`crate::Firewall::sync`]
/// converges from any state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// Network id (64 hex); its first 12 characters label the network's set elements.
    pub id: String,
    /// Bridge device, e.g. "br-0123456789ab" or "cnet0".
    pub bridge: String,
    /// IPv4 and/or IPv6 subnets of the network.
    pub subnets: Vec<IpNetwork>,
    /// Outbound NAT for traffic from the subnets that leaves through any interface but the bridge.
    pub masquerade: bool,
    /// Nothing is forwarded into or out of the bridge, except between its own ports.
    pub internal: bool,
    /// Containers on this bridge may talk to each other.
    pub icc: bool,
    /// How traffic from outside reaches the containers, per family (Docker 28's gateway modes).
    pub gateway_v4: GatewayMode,
    pub gateway_v6: GatewayMode,
    /// Host interfaces from which the network's published container ports may be reached
    /// directly at the containers' addresses (`trusted_host_interfaces`), whatever the mode.
    pub trusted_interfaces: Vec<String>,
}

/// A bridge network's gateway mode for one address family, with Docker 28's names and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GatewayMode {
    /// Outbound NAT; from outside, a container is reached only through a port published on a
    /// host address (DNAT), never by routing to its own address.
    #[default]
    Nat,
    /// Outbound NAT, and anything routed to the containers gets through (Docker before 28).
    NatUnprotected,
    /// No NAT either way: containers use their own addresses, and from outside only their
    /// published ports (at the container's address and port; the host port is not used) and ICMP
    /// reach them.
    Routed,
    /// An internal network whose bridge has no address of this family: not even the host
    /// reaches it.
    Isolated,
}

impl GatewayMode {
    pub const NAMES: [&str; 4] = ["nat", "nat-unprotected", "routed", "isolated"];

    pub fn parse(s: &str) -> Option<GatewayMode> {
        match s {
            "nat" => Some(GatewayMode::Nat),
            "nat-unprotected" => Some(GatewayMode::NatUnprotected),
            "routed" => Some(GatewayMode::Routed),
            "isolated" => Some(GatewayMode::Isolated),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GatewayMode::Nat => "nat",
            GatewayMode::NatUnprotected => "nat-unprotected",
            GatewayMode::Routed => "routed",
            GatewayMode::Isolated => "isolated",
        }
    }

    /// Whether traffic from the subnets of this family is masqueraded (on a masquerading network).
    pub fn masquerades(self) -> bool {
        matches!(self, GatewayMode::Nat | GatewayMode::NatUnprotected)
    }
}

impl NetworkRules {
    /// The first 12 characters of the id, as shown everywhere in cnet.
    pub fn short_id(&self) -> &str {
        self.id.get(..12).unwrap_or(&self.id)
    }

    /// Whether traffic from the subnets is masqueraded (`internal` networks never are).
    pub fn masquerades(&self) -> bool {
        self.masquerade && !self.internal
    }

    /// Whether traffic from the subnets of one family is masqueraded: never in gateway mode routed.
    pub fn masquerades_family(&self, v4: bool) -> bool {
        self.masquerades() && self.gateway(v4).masquerades()
    }

    pub fn gateway(&self, v4: bool) -> GatewayMode {
        if v4 { self.gateway_v4 } else { self.gateway_v6 }
    }

    /// The subnets with host bits cleared, duplicates dropped, in the given order.
    pub fn networks(&self) -> Vec<IpNetwork> {
        let mut seen = HashSet::new();
        self.subnets
            .iter()
            .filter_map(|n| IpNetwork::new(n.network(), n.prefix()).ok())
            .filter(|n| seen.insert(*n))
            .collect()
    }

    /// Checks everything that nft would otherwise reject half-way, or worse, accept wrongly
    /// (an interface name ending in `*` is a wildcard to nft).
    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::Invalid { network: self.id.clone(), reason };
        if self.id.is_empty() || !self.id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid("the id must be non-empty and alphanumeric".into()));
        }
        if !valid_ifname(&self.bridge) {
            return Err(invalid(format!(
                "bridge name {:?} must be 1 to {MAX_IFNAME} characters of [A-Za-z0-9._-]",
                self.bridge
            )));
        }
        for name in &self.trusted_interfaces {
            if !valid_ifname(name) {
                return Err(invalid(format!(
                    "trusted host interface {name:?} must be 1 to {MAX_IFNAME} characters of [A-Za-z0-9._-]"
                )));
            }
        }
        for (v4, mode) in [(true, self.gateway_v4), (false, self.gateway_v6)] {
            if mode == GatewayMode::Isolated && !self.internal {
                let family = if v4 { "IPv4" } else { "IPv6" };
                return Err(invalid(format!("gateway mode isolated ({family}) needs an internal network")));
            }
        }
        let nets = self.networks();
        for (i, a) in nets.iter().enumerate() {
            if let Some(b) = nets[i + 1..].iter().find(|b| overlap(a, b)) {
                return Err(invalid(format!("subnets {a} and {b} overlap")));
            }
        }
        Ok(())
    }
}

/// The largest VXLAN network identifier (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// Who may send this host VXLAN packets for cnet's VNIs (see [`crate::render`]).
///
/// The kernel's VXLAN devices take a packet from any source that names their VNI, so without
/// this a neighbour on the underlay could put frames onto an overlay segment. Packets for other
/// VNIs (another program's tunnels on the same port) are not this table's business.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VxlanGuard {
    /// cnet's VNIs, each with the link its packets must come in by when its network is encrypted
    /// (its WireGuard link): a plaintext packet naming that VNI is a forgery, whoever sent it.
    pub vnis: BTreeMap<u32, Option<String>>,
    /// The other hosts' VTEPs: the only sources whose packets may name cnet's VNIs.
    pub peers: BTreeSet<IpAddr>,
}

impl VxlanGuard {
    pub fn validate(&self) -> Result<()> {
        for (vni, tunnel) in &self.vnis {
            if !(1..=MAX_VNI).contains(vni) {
                return Err(Error::InvalidVxlanGuard(format!("VNI {vni} is not between 1 and {MAX_VNI}")));
            }
            if let Some(name) = tunnel.as_deref().filter(|name| !valid_ifname(name)) {
                return Err(Error::InvalidVxlanGuard(format!(
                    "VNI {vni}: tunnel link {name:?} must be 1 to {MAX_IFNAME} characters of [A-Za-z0-9._-]"
                )));
            }
        }
        Ok(())
    }
}

/// Whether nft takes `name` as one interface's name (an interface name ending in `*` is a
/// wildcard to nft).
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Transport protocols a port can be published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    /// nft's name (an `inet_proto` value).
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }
}

/// One published port of one address family: packets for (host address, protocol, host port)
/// are DNATed to (`dest`, `dest_port`), and (`dest`, protocol, `dest_port`) may be reached
/// directly from the network's trusted host interfaces. With `routed` (the network's gateway mode
/// for this family), there is no DNAT (`host_addr` and `host_port` are not used): the container
/// port is open to anything routed to it.
///
/// `host_addr: None` means every local address of the host of `dest`'s family (the wildcard
/// maps, matched for packets whose destination is local); `Some` must be of `dest`'s family and
/// must not be unspecified (0.0.0.0 or ::, which mean the wildcard: pass None).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRule {
    pub proto: Proto,
    pub host_addr: Option<IpAddr>,
    pub host_port: u16,
    pub dest: IpAddr,
    pub dest_port: u16,
    /// Shown as the comment of the map elements (the container's name), at most 128 bytes.
    pub owner: String,
    pub routed: bool,
}

impl PortRule {
    pub fn is_ipv4(&self) -> bool {
        self.dest.is_ipv4()
    }

    /// The part nft keys on: two rules with the same key cannot both be in the table.
    pub fn key(&self) -> (Proto, Option<IpAddr>, u16, bool) {
        (self.proto, self.host_addr, self.host_port, self.is_ipv4())
    }

    /// The container's side, (`dest`, protocol, `dest_port`): what the `published` sets hold.
    pub fn target(&self) -> (IpAddr, Proto, u16) {
        (self.dest, self.proto, self.dest_port)
    }

    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::Invalid { network: format!("port {}", self.host_port), reason };
        if self.dest_port == 0 || (self.host_port == 0 && !self.routed) {
            return Err(invalid("ports must be 1-65535 (allocate host port 0 before)".into()));
        }
        if let Some(addr) = self.host_addr {
            if addr.is_ipv4() != self.dest.is_ipv4() {
                return Err(invalid(format!(
                    "host address {addr} and container address {} differ in family",
                    self.dest
                )));
            }
            if addr.is_unspecified() {
                return Err(invalid(format!("host address {addr} is the wildcard: pass None")));
            }
        }
        if self.owner.len() > 128 || self.owner.contains('"') {
            return Err(invalid(format!("owner {:?} must be at most 128 bytes with no quote", self.owner)));
        }
        Ok(())
    }
}

/// Validates published ports for [`crate::Firewall::sync`] and [`crate::Firewall::add_ports`]: each
/// one, plus no two with the same key (nft would refuse the second with other data).
pub(crate) fn validate_ports(ports: &[PortRule]) -> Result<()> {
    let mut keys = HashSet::new();
    for p in ports {
        p.validate()?;
        if !p.routed && !keys.insert(p.key()) {
            return Err(Error::Invalid {
                network: format!("port {}", p.host_port),
                reason: format!("{} port {} on {:?} is given twice", p.proto.as_str(), p.host_port, p.host_addr),
            });
        }
    }
    Ok(())
}

/// Validates a whole set of networks for [`crate::Firewall::sync`]: each one, plus no shared id or
/// bridge, and no overlapping masqueraded subnets (nft refuses overlapping interval elements).
pub(crate) fn validate_all(nets: &[NetworkRules]) -> Result<()> {
    for net in nets {
        net.validate()?;
    }
    for (i, a) in nets.iter().enumerate() {
        for b in &nets[i + 1..] {
            let invalid = |reason: String| Error::Invalid { network: b.id.clone(), reason };
            if a.id == b.id {
                return Err(invalid("the id is given twice".into()));
            }
            if a.bridge == b.bridge {
                return Err(invalid(format!("bridge {} is also used by network {}", b.bridge, a.id)));
            }
            if a.masquerades() && b.masquerades() {
                for x in a.networks() {
                    if let Some(y) = b.networks().iter().find(|y| overlap(&x, y)) {
                        return Err(invalid(format!("subnet {y} overlaps {x} of network {}", a.id)));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Whether two subnets (of any families) share an address.
fn overlap(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(id: &str, bridge: &str, subnets: &[&str]) -> NetworkRules {
        NetworkRules {
            id: id.into(),
            bridge: bridge.into(),
            subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
            masquerade: true,
            internal: false,
            icc: true,
            gateway_v4: GatewayMode::Nat,
            gateway_v6: GatewayMode::Nat,
            trusted_interfaces: vec![],
        }
    }

    #[test]
    fn short_id_and_networks() {
        let n = net("0123456789abcdef", "br-0", &["10.1.2.3/16", "10.1.0.0/16", "fd00::1/64"]);
        assert_eq!(n.short_id(), "0123456789ab");
        assert_eq!(n.networks(), vec!["10.1.0.0/16".parse().unwrap(), "fd00::/64".parse().unwrap()]);
        assert_eq!(net("abc", "br-0", &[]).short_id(), "abc");
    }

    #[test]
    fn validate_rejects_bad_input() {
        assert!(net("ab12", "cnet0", &["10.0.0.0/8"]).validate().is_ok());
        assert!(net("", "cnet0", &[]).validate().is_err());
        assert!(net("ab 12", "cnet0", &[]).validate().is_err());
        assert!(net("ab12", "", &[]).validate().is_err());
        assert!(net("ab12", "br*", &[]).validate().is_err());
        assert!(net("ab12", "a-name-that-is-too-long", &[]).validate().is_err());
        assert!(net("ab12", "..", &[]).validate().is_err());
        let err = net("ab12", "br-0", &["10.0.0.0/8", "10.1.0.0/16"]).validate().unwrap_err();
        assert!(err.to_string().contains("overlap"), "{err}");
        let trusting = |name: &str| NetworkRules { trusted_interfaces: vec![name.into()], ..net("ab12", "br-0", &[]) };
        assert!(trusting("eth3").validate().is_ok());
        let err = trusting("eth*").validate().unwrap_err();
        assert!(err.to_string().contains("\"eth*\""), "{err}");
        let isolated = NetworkRules { gateway_v4: GatewayMode::Isolated, ..net("ab12", "br-0", &[]) };
        let err = isolated.clone().validate().unwrap_err();
        assert!(err.to_string().contains("internal"), "{err}");
        assert!(NetworkRules { internal: true, ..isolated }.validate().is_ok());
    }

    #[test]
    fn gateway_modes_by_name() {
        for name in GatewayMode::NAMES {
            assert_eq!(GatewayMode::parse(name).map(GatewayMode::as_str), Some(name));
        }
        assert_eq!(GatewayMode::parse("NAT"), None);
        assert!(!GatewayMode::Routed.masquerades() && GatewayMode::NatUnprotected.masquerades());
        let routed6 = NetworkRules { gateway_v6: GatewayMode::Routed, ..net("ab12", "br-0", &[]) };
        assert!(routed6.masquerades_family(true) && !routed6.masquerades_family(false));
    }

    #[test]
    fn validate_all_rejects_clashes() {
        let a = net("aa", "br-a", &["10.1.0.0/16"]);
        let b = net("bb", "br-b", &["10.2.0.0/16"]);
        assert!(validate_all(&[a.clone(), b.clone()]).is_ok());
        assert!(validate_all(&[a.clone(), a.clone()]).is_err());
        assert!(validate_all(&[a.clone(), net("bb", "br-a", &[])]).is_err());
        let overlapping = net("cc", "br-c", &["10.1.128.0/17"]);
        assert!(validate_all(&[a.clone(), overlapping.clone()]).is_err());
        // Without NAT the subnets are in no set, so they may overlap.
        let internal = NetworkRules { internal: true, ..overlapping };
        assert!(validate_all(&[a, internal]).is_ok());
    }
}
