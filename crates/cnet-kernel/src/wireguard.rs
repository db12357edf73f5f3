//! WireGuard links for encrypted overlay networks: `ip link add NAME type wireguard` over
//! rtnetlink, and what `wg set` / `wg show` do, over WireGuard's generic netlink family.
//!
//! The generic netlink requests go through a plain blocking netlink socket of their own, opened
//! per request on the calling thread (so in the daemon's namespace): the kernel answers them
//! synchronously (a configuration is one request and one acknowledgement, a dump of one device a
//! handful of messages), so a connection task of their own (the `genetlink` crate, which would
//! also bring a second netlink-proto) would buy nothing here. Keys are
//! raw 32-byte arrays; encoding them (base64) is the caller's business.
//!
//! A peer is only ever added or updated, never replaced: setting a peer's preshared key or
//! endpoint keeps its current session (the kernel drops the session keys only when the peer is
//! removed or the device's private key changes), which is what lets a key rotation go through
//! without dropping traffic.

use std::net::{IpAddr, SocketAddr};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkDeserializable, NetlinkMessage, NetlinkPayload, NetlinkSerializable,
};
use netlink_packet_generic::{
    GenlFamily, GenlMessage,
    ctrl::{GenlCtrl, GenlCtrlCmd, nlas::GenlCtrlAttrs},
};
use netlink_packet_wireguard::{
    WireguardAddressFamily, WireguardAllowedIp, WireguardAllowedIpAttr, WireguardAttribute, WireguardCmd,
    WireguardMessage, WireguardPeer, WireguardPeerAttribute, WireguardPeerFlags,
};
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_GENERIC};
use nix::libc;
use rtnetlink::{
    LinkWireguard,
    packet_route::{
        AddressFamily,
        neighbour::{NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState},
    },
};

use crate::{
    Error, Kernel, Link, Result,
    error::{kind_name, netlink_errno},
    format_mac,
    link::check_ifname,
};

/// A WireGuard key (private, public or preshared): 32 bytes.
pub type WgKey = [u8; 32];

/// One peer of a WireGuard link as cnet configures it: the other host's public key, where its
/// link listens, the addresses it may send from and be sent to (its VTEP), and the network's
/// preshared key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgPeer {
    pub public_key: WgKey,
    pub endpoint: SocketAddr,
    pub allowed_ips: Vec<IpAddr>,
    pub preshared_key: WgKey,
}

/// What [`Kernel::configure_wireguard`] sets on a link: its private key and port, the peers to
/// add or update, and the peers (by public key) to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgConfig {
    pub private_key: WgKey,
    pub listen_port: u16,
    pub peers: Vec<WgPeer>,
    pub remove: Vec<WgKey>,
}

impl Kernel {
    /// `ip link add NAME mtu MTU type wireguard`, left down. An existing wireguard link of that
    /// name is kept; any other link of that name is an [`Error::LinkConflict`]. A kernel without
    /// WireGuard answers `EOPNOTSUPP` ([`Error::errno`]).
    pub async fn create_wireguard(&self, name: &str, mtu: Option<u32>) -> Result<()> {
        check_ifname(name)?;
        if let Some(link) = self.nl.link_by_name(name).await? {
            return match link.kind.as_deref() {
                Some("wireguard") => Ok(()),
                _ => Err(Error::LinkConflict {
                    name: name.to_string(),
                    found: kind_name(&link.kind),
                    wanted: "a wireguard link".to_string(),
                }),
            };
        }
        let mut b = LinkWireguard::new(name);
        if let Some(mtu) = mtu {
            b = b.mtu(mtu);
        }
        self.nl.add_link(b.build(), format!("create wireguard link {name} (mtu {mtu:?})")).await
    }

    /// `wg set NAME private-key K listen-port P peer ... [peer PK remove]`, in one request. Peers
    /// are added or updated in place, never replaced, so their sessions survive (see the module's
    /// documentation); allowed IPs are added to what a peer has.
    pub async fn configure_wireguard(&self, name: &str, cfg: &WgConfig) -> Result<()> {
        check_ifname(name)?;
        let msg = WireguardMessage { cmd: WireguardCmd::SetDevice, attributes: set_device_attributes(name, cfg) };
        let what = format!(
            "configure wireguard link {name} (listen-port {}, {} peer(s) set, {} removed)",
            cfg.listen_port,
            cfg.peers.len(),
            cfg.remove.len()
        );
        genl_request(msg, NLM_F_REQUEST | NLM_F_ACK)
            .map(drop)
            .map_err(|error| Error::Genetlink { context: what, error })
    }

    /// `wg show NAME peers`: the public keys of the link's peers. A missing link is
    /// [`Error::LinkNotFound`].
    pub async fn wireguard_peers(&self, name: &str) -> Result<Vec<WgKey>> {
        check_ifname(name)?;
        let msg = WireguardMessage {
            cmd: WireguardCmd::GetDevice,
            attributes: vec![WireguardAttribute::IfName(name.to_string())],
        };
        let replies = match genl_request(msg, NLM_F_REQUEST | NLM_F_DUMP) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => return Err(self.nl.not_found(name)),
            Err(error) => return Err(Error::Genetlink { context: format!("show wireguard link {name}"), error }),
        };
        Ok(peer_keys(&replies))
    }

    /// `bridge fdb replace MAC dev DEV dst VTEP via VIA self permanent`: as
    /// [`Kernel::add_vxlan_fdb`], the encapsulated packets routed out of `via` (an encrypted
    /// network's WireGuard link) rather than by the routing table. The kernel's VXLAN code uses
    /// an FDB entry's own `via` as the output interface of its route lookup (the device the vxlan
    /// is bound to counts only for its default destination), so an entry without one would send
    /// the packet in clear on the underlay. `via: None` is `add_vxlan_fdb`.
    pub async fn add_vxlan_fdb_via(&self, dev: &str, mac: [u8; 6], vtep: IpAddr, via: Option<&str>) -> Result<()> {
        let index = self.nl.link_index(dev).await?;
        let via_index = match via {
            Some(via) => Some(self.nl.link_index(via).await?),
            None => None,
        };
        let mut req = self
            .nl
            .handle
            .neighbours()
            .add_bridge(index, &mac)
            .flags(NeighbourFlags::Own)
            .state(NeighbourState::Permanent)
            .destination(vtep)
            .replace();
        if let Some(via_index) = via_index {
            req.message_mut().attributes.push(NeighbourAttribute::IfIndex(via_index));
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Err(self.nl.not_found(dev)),
            Err(e) => {
                let via = via.map(|v| format!(" via {v}")).unwrap_or_default();
                Err(self.nl.err(format!("add fdb entry {} dst {vtep}{via} to {dev}", format_mac(&mac)), e))
            }
        }
    }

    /// `bridge fdb del MAC dev DEV dst VTEP [via VIA] self`: the kernel matches an entry's
    /// destination with its `via`, so an entry made by [`Kernel::add_vxlan_fdb_via`] is deleted
    /// with the same `via`. A missing entry or device is not an error.
    pub async fn del_vxlan_fdb_via(&self, dev: &str, mac: [u8; 6], vtep: IpAddr, via: Option<&str>) -> Result<()> {
        let Some(via) = via else { return self.del_vxlan_fdb(dev, mac, vtep).await };
        let (Some(link), Some(via_link)) = (self.nl.link_by_name(dev).await?, self.nl.link_by_name(via).await?) else {
            return Ok(());
        };
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Bridge;
        msg.header.ifindex = link.index;
        msg.header.flags = NeighbourFlags::Own;
        msg.attributes = vec![
            NeighbourAttribute::LinkLayerAddress(mac.to_vec()),
            NeighbourAttribute::Destination(vtep.into()),
            NeighbourAttribute::IfIndex(via_link.index),
        ];
        match self.nl.handle.neighbours().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(netlink_errno(&e), Some(libc::ENOENT | libc::ENODEV)) => Ok(()),
            Err(e) => {
                Err(self.nl.err(format!("delete fdb entry {} dst {vtep} via {via} from {dev}", format_mac(&mac)), e))
            }
        }
    }

    /// The wireguard links of the daemon's namespace.
    pub async fn wireguard_links(&self) -> Result<Vec<Link>> {
        Ok(self.nl.links().await?.into_iter().filter(|l| l.kind.as_deref() == Some("wireguard")).collect())
    }
}

fn set_device_attributes(name: &str, cfg: &WgConfig) -> Vec<WireguardAttribute> {
    let mut peers: Vec<WireguardPeer> = cfg
        .peers
        .iter()
        .map(|p| {
            WireguardPeer(vec![
                WireguardPeerAttribute::PublicKey(p.public_key),
                WireguardPeerAttribute::PresharedKey(p.preshared_key),
                WireguardPeerAttribute::Endpoint(p.endpoint),
                WireguardPeerAttribute::AllowedIps(p.allowed_ips.iter().map(|ip| allowed_ip(*ip)).collect()),
            ])
        })
        .collect();
    peers.extend(cfg.remove.iter().map(|k| {
        WireguardPeer(vec![
            WireguardPeerAttribute::PublicKey(*k),
            WireguardPeerAttribute::Flags(WireguardPeerFlags::RemoveMe),
        ])
    }));
    let mut attributes = vec![
        WireguardAttribute::IfName(name.to_string()),
        WireguardAttribute::PrivateKey(cfg.private_key),
        WireguardAttribute::ListenPort(cfg.listen_port),
    ];
    if !peers.is_empty() {
        attributes.push(WireguardAttribute::Peers(peers));
    }
    attributes
}

/// One host address (a /32 or /128) as an allowed IP.
fn allowed_ip(ip: IpAddr) -> WireguardAllowedIp {
    let (family, cidr) = match ip {
        IpAddr::V4(_) => (WireguardAddressFamily::Ipv4, 32),
        IpAddr::V6(_) => (WireguardAddressFamily::Ipv6, 128),
    };
    WireguardAllowedIp(vec![
        WireguardAllowedIpAttr::Family(family),
        WireguardAllowedIpAttr::IpAddr(ip),
        WireguardAllowedIpAttr::Cidr(cidr),
    ])
}

fn peer_keys(replies: &[WireguardMessage]) -> Vec<WgKey> {
    let mut keys = Vec::new();
    for reply in replies {
        for attr in &reply.attributes {
            if let WireguardAttribute::Peers(peers) = attr {
                for peer in peers {
                    keys.extend(peer.0.iter().find_map(|a| match a {
                        WireguardPeerAttribute::PublicKey(k) => Some(*k),
                        _ => None,
                    }));
                }
            }
        }
    }
    keys
}

/// Sends one request of `F`'s family (resolving its id first) and collects the replies until
/// the acknowledgement or the end of the dump.
fn genl_request<F>(payload: F, flags: u16) -> std::io::Result<Vec<F>>
where
    F: GenlFamily + std::fmt::Debug + Clone + PartialEq + Eq,
    GenlMessage<F>: NetlinkSerializable + NetlinkDeserializable,
{
    let mut socket = Socket::new(NETLINK_GENERIC)?;
    socket.bind_auto()?;
    socket.connect(&NlAddr::new(0, 0))?;
    let family = resolve_family(&socket, F::family_name())?;
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(family);
    exchange(&socket, genl, flags)
}

fn resolve_family(socket: &Socket, name: &str) -> std::io::Result<u16> {
    let genl = GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
    });
    let replies = match exchange(socket, genl, NLM_F_REQUEST | NLM_F_ACK) {
        // The family is registered by the module: no family, no WireGuard in this kernel.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!("the kernel has no {name} generic netlink family (module {name} not loaded)"),
            ));
        }
        r => r?,
    };
    replies
        .iter()
        .flat_map(|r| r.nlas.iter())
        .find_map(|a| match a {
            GenlCtrlAttrs::FamilyId(id) => Some(*id),
            _ => None,
        })
        .ok_or_else(|| std::io::Error::other(format!("no id in the kernel's answer for family {name}")))
}

fn exchange<F>(socket: &Socket, genl: GenlMessage<F>, flags: u16) -> std::io::Result<Vec<F>>
where
    F: std::fmt::Debug + Clone + PartialEq + Eq,
    GenlMessage<F>: NetlinkSerializable + NetlinkDeserializable,
{
    let mut msg = NetlinkMessage::from(genl);
    msg.header.flags = flags;
    msg.header.sequence_number = 1;
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let mut out = Vec::new();
    loop {
        let (data, _) = socket.recv_from_full()?;
        let mut offset = 0;
        while offset < data.len() {
            let reply = NetlinkMessage::<GenlMessage<F>>::deserialize(&data[offset..])
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            let len = reply.header.length as usize;
            match reply.payload {
                NetlinkPayload::InnerMessage(m) => out.push(m.payload),
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => {
                    return match e.code {
                        None => Ok(out),
                        Some(code) => Err(std::io::Error::from_raw_os_error(code.get().abs())),
                    };
                }
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_sets_keys_port_peers_and_removals_in_one_message() {
        let cfg = WgConfig {
            private_key: [1; 32],
            listen_port: 51820,
            peers: vec![WgPeer {
                public_key: [2; 32],
                endpoint: "192.0.2.2:51820".parse().unwrap(),
                allowed_ips: vec!["192.0.2.2".parse().unwrap()],
                preshared_key: [3; 32],
            }],
            remove: vec![[4; 32]],
        };
        let attrs = set_device_attributes("wg-0123456789ab", &cfg);
        assert_eq!(attrs[0], WireguardAttribute::IfName("wg-0123456789ab".into()));
        assert_eq!(attrs[1], WireguardAttribute::PrivateKey([1; 32]));
        assert_eq!(attrs[2], WireguardAttribute::ListenPort(51820));
        let WireguardAttribute::Peers(peers) = &attrs[3] else { panic!("{attrs:?}") };
        assert_eq!(peers.len(), 2);
        assert!(peers[0].0.contains(&WireguardPeerAttribute::PresharedKey([3; 32])));
        assert!(
            peers[0].0.contains(&WireguardPeerAttribute::AllowedIps(vec![allowed_ip("192.0.2.2".parse().unwrap())]))
        );
        // Peers are never replaced wholesale (that would drop their sessions).
        assert!(!peers[0].0.iter().any(|a| matches!(a, WireguardPeerAttribute::Flags(_))));
        assert_eq!(peers[1].0[1], WireguardPeerAttribute::Flags(WireguardPeerFlags::RemoveMe));
        assert_eq!(
            peer_keys(&[WireguardMessage { cmd: WireguardCmd::GetDevice, attributes: attrs }]),
            [[2; 32], [4; 32]]
        );
    }

    #[test]
    fn allowed_ips_are_host_routes() {
        assert_eq!(allowed_ip("2001:db8::1".parse().unwrap()).0[2], WireguardAllowedIpAttr::Cidr(128));
        assert_eq!(allowed_ip("10.0.0.1".parse().unwrap()).0[2], WireguardAllowedIpAttr::Cidr(32));
    }
}
