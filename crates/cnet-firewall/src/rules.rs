//! What the firewall must know about one network, and its validation.

use std::collections::HashSet;
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
    /// Gateway mode `nat-unprotected` (per family): anything routed to the bridge from outside
    /// gets through. In the default mode, `nat`, only published ports (and replies) do.
    pub unprotected_v4: bool,
    pub unprotected_v6: bool,
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
        let bridge_ok = !self.bridge.is_empty()
            && self.bridge.len() <= MAX_IFNAME
            && self.bridge != "."
            && self.bridge != ".."
            && self.bridge.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !bridge_ok {
            return Err(invalid(format!(
                "bridge name {:?} must be 1 to {MAX_IFNAME} characters of [A-Za-z0-9._-]",
                self.bridge
            )));
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
/// are DNATed to (`dest`, `dest_port`).
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
}

impl PortRule {
    pub fn is_ipv4(&self) -> bool {
        self.dest.is_ipv4()
    }

    /// The part nft keys on: two rules with the same key cannot both be in the table.
    pub fn key(&self) -> (Proto, Option<IpAddr>, u16, bool) {
        (self.proto, self.host_addr, self.host_port, self.is_ipv4())
    }

    pub fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Error::Invalid { network: format!("port {}", self.host_port), reason };
        if self.host_port == 0 || self.dest_port == 0 {
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
        if !keys.insert(p.key()) {
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
            unprotected_v4: false,
            unprotected_v6: false,
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
