use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};

use crate::{Error, Result};

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `"bridge"`, `"veth"`, `"macvlan"`, …; `None` for links without a kind (`lo`, physical NICs).
    pub kind: Option<String>,
    pub mtu: Option<u32>,
    /// Index of the bridge (or other controller) the link is enslaved to.
    pub controller: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    pub mac: Option<[u8; 6]>,
}

impl Link {
    pub(crate) fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            mtu: None,
            controller: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            mac: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Mtu(m) => link.mtu = Some(*m),
                LinkAttribute::Controller(c) if *c != 0 => link.controller = Some(*c),
                LinkAttribute::Address(a) => link.mac = a.as_slice().try_into().ok(),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(k) = info {
                            link.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

/// How an interface moved into a sandbox is set up (see [`crate::NetnsHandle::configure_interface`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Name inside the sandbox: `eth0`, `eth1`, …
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// Addresses with their prefix length (`10.99.0.2/24`).
    pub addresses: Vec<IpNetwork>,
    /// Default route via this gateway.
    pub gateway_v4: Option<Ipv4Addr>,
    pub gateway_v6: Option<Ipv6Addr>,
    /// Extra routes: destination, and the gateway (`None`: directly on the link).
    pub routes: Vec<(IpNetwork, Option<IpAddr>)>,
}

impl InterfaceConfig {
    /// Checks what the kernel would otherwise reject half-way through configuring.
    pub fn validate(&self) -> Result<()> {
        check_ifname(&self.name)?;
        if let Some(mac) = self.mac {
            check_unicast_mac(mac)?;
        }
        for (dst, gw) in &self.routes {
            if let Some(gw) = gw
                && gw.is_ipv4() != dst.is_ipv4()
            {
                return Err(Error::invalid(
                    "route",
                    format!("{dst} via {gw}"),
                    "gateway and destination are of different IP families",
                ));
            }
        }
        Ok(())
    }

    /// True when the interface gets any IPv6 configuration (so DAD must be turned off first).
    pub(crate) fn uses_ipv6(&self) -> bool {
        self.gateway_v6.is_some()
            || self.addresses.iter().any(|a| a.is_ipv6())
            || self.routes.iter().any(|(d, _)| d.is_ipv6())
    }
}

/// Interface names the kernel accepts (`dev_valid_name`): 1 to 15 bytes, not `.` or `..`, no `/`,
/// `:` or whitespace.
pub(crate) fn check_ifname(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > 15 {
        "longer than 15 bytes"
    } else if name == "." || name == ".." {
        "not a valid name"
    } else if name.chars().any(|c| c == '/' || c == ':' || c == '\0' || c.is_whitespace()) {
        "contains '/', ':', NUL or whitespace"
    } else {
        return Ok(());
    };
    Err(Error::invalid("interface name", name, reason))
}

fn check_unicast_mac(mac: [u8; 6]) -> Result<()> {
    if mac[0] & 1 != 0 {
        return Err(Error::invalid("MAC address", format_mac(&mac), "multicast bit set"));
    }
    if mac == [0; 6] {
        return Err(Error::invalid("MAC address", format_mac(&mac), "all zeros"));
    }
    Ok(())
}

/// A random locally administered unicast MAC address (what a bridge gets at creation, so its
/// address does not change as ports come and go).
pub fn random_mac() -> [u8; 6] {
    let mut mac: [u8; 6] = rand::random();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// `02:42:0a:00:00:02`
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Parses `02:42:0a:00:00:02` (or with `-` separators); `None` if it is not six hex bytes.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// An `RTM_SETLINK` for the link at `index`: IPv6 address generation off (`addrgenmode none`).
/// Sent while the link is down, it keeps the link without a link-local address, so without DAD,
/// router solicitations and MLD reports, at the cost of one request; a write under `/proc/sys`
/// does the same (`disable_ipv6`) but costs a path walk that grows with the number of network
/// namespaces (0.35 ms with 1000: their `/proc/sys/net` entries share one hash chain).
pub(crate) fn without_ipv6_addresses(index: u32) -> rtnetlink::packet_route::link::LinkMessage {
    use rtnetlink::packet_route::link::{AfSpecInet6, AfSpecUnspec, In6AddrGenMode, LinkAttribute};
    let mut msg = rtnetlink::LinkUnspec::new_with_index(index).build();
    msg.attributes.push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(
        In6AddrGenMode::None,
    )])]));
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_route::link::InfoKind;

    #[test]
    fn ifname_rules() {
        for ok in ["eth0", "br-0123456789ab", "veth1a2b3c4", "a.b", "x"] {
            check_ifname(ok).unwrap();
        }
        for bad in ["", "br-0123456789abc", ".", "..", "a/b", "a b", "a:b", "eth0\n"] {
            assert!(check_ifname(bad).is_err(), "{bad:?} should be rejected");
        }
        let e = check_ifname("a/b").unwrap_err().to_string();
        assert!(e.contains("interface name \"a/b\""), "{e}");
    }

    #[test]
    fn mac_round_trip() {
        let mac = [0x02, 0x42, 0x0a, 0x00, 0x00, 0xff];
        assert_eq!(format_mac(&mac), "02:42:0a:00:00:ff");
        assert_eq!(parse_mac("02:42:0a:00:00:ff"), Some(mac));
        assert_eq!(parse_mac("02-42-0A-00-00-FF"), Some(mac));
        for bad in ["", "02:42:0a:00:00", "02:42:0a:00:00:ff:01", "2:42:0a:00:00:ff", "zz:42:0a:00:00:ff"] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn random_mac_is_local_unicast() {
        for _ in 0..64 {
            let m = random_mac();
            assert_eq!(m[0] & 0x01, 0);
            assert_eq!(m[0] & 0x02, 0x02);
            check_unicast_mac(m).unwrap();
        }
    }

    #[test]
    fn link_from_message() {
        let mut msg = LinkMessage::default();
        msg.header.index = 7;
        msg.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        msg.attributes = vec![
            LinkAttribute::IfName("br0".into()),
            LinkAttribute::Mtu(1400),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
            LinkAttribute::Controller(0),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
        ];
        let l = Link::from_message(&msg);
        assert_eq!(
            l,
            Link {
                index: 7,
                name: "br0".into(),
                kind: Some("bridge".into()),
                mtu: Some(1400),
                controller: None,
                up: true,
                mac: Some([2, 0, 0, 0, 0, 1]),
            }
        );
        let mut msg = LinkMessage::default();
        msg.header.index = 1;
        msg.attributes =
            vec![LinkAttribute::IfName("lo".into()), LinkAttribute::Address(vec![0; 6]), LinkAttribute::Controller(3)];
        let l = Link::from_message(&msg);
        assert!(!l.up);
        assert_eq!(l.kind, None);
        assert_eq!(l.controller, Some(3));
    }

    #[test]
    fn interface_config_validation() {
        let mut cfg = InterfaceConfig {
            name: "eth0".into(),
            mac: Some([2, 0, 0, 0, 0, 2]),
            addresses: vec!["10.0.0.2/24".parse().unwrap()],
            ..Default::default()
        };
        cfg.validate().unwrap();
        assert!(!cfg.uses_ipv6());
        cfg.routes.push(("fd00::/64".parse().unwrap(), None));
        assert!(cfg.uses_ipv6());
        cfg.routes.push(("10.1.0.0/16".parse().unwrap(), Some("fd00::1".parse().unwrap())));
        assert!(cfg.validate().is_err());
        cfg.routes.pop();
        cfg.mac = Some([1, 0, 0, 0, 0, 0]);
        assert!(cfg.validate().is_err());
        cfg.mac = None;
        cfg.name = String::new();
        assert!(cfg.validate().is_err());
    }
}
