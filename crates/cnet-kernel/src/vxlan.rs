//! What an overlay (VXLAN) network needs from the kernel: VXLAN links, the FDB entries that say
//! behind which VTEP a MAC address lives, the permanent neighbours that the link's ARP/ND proxy
//! answers from, and the link that holds a given address (the underlay).
//!
//! The links are made for a control plane that knows every peer: learning is off (nothing is
//! learnt from the data path) and proxy is on (ARP requests and neighbour solicitations are
//! answered locally from the neighbour table, never flooded to other hosts). So a peer is reachable
//! once [`Kernel::add_vxlan_fdb`] and [`Kernel::add_neighbour`] have been called for it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use nix::libc;
use rtnetlink::{
    LinkVxlan,
    packet_route::{
        AddressFamily,
        address::AddressMessage,
        link::{InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage},
        neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState},
    },
};

use crate::{
    Error, Kernel, Link, NetnsHandle, Result,
    error::{kind_name, netlink_errno},
    format_mac,
    link::check_ifname,
    nl::{Nl, address_of},
};

/// VNIs are 24 bits.
const MAX_VNI: u32 = (1 << 24) - 1;

/// A VXLAN link as [`Kernel::create_vxlan`] makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    /// VXLAN network identifier, 0 to 2^24 - 1.
    pub vni: u32,
    /// Source address of the encapsulated packets (this host's VTEP address); IPv4 or IPv6.
    pub local: IpAddr,
    /// UDP destination port (4789 is IANA's). 0 is refused: the kernel would pick its own default
    /// (8472, the pre-IANA Linux port).
    pub port: u16,
    /// Link to bind the tunnel to (`ip link add … type vxlan dev LINK`), if any.
    pub underlay: Option<String>,
    pub mtu: Option<u32>,
}

impl Kernel {
    /// `ip link add NAME mtu MTU type vxlan id VNI local LOCAL dstport PORT [dev UNDERLAY]
    /// nolearning proxy nol2miss nol3miss`: a VXLAN link without a default remote, so that only
    /// FDB entries ([`Kernel::add_vxlan_fdb`]) send anything anywhere; ttl is the kernel's default.
    /// The link is left down (enslave it, then bring it up).
    ///
    /// A link of that name that already is a vxlan with the same VNI is fine (nothing else of it is
    /// compared or changed); any other link of that name is an [`Error::LinkConflict`]. Another
    /// vxlan with the same VNI and port under another name makes the kernel answer `EEXIST`
    /// ([`Error::errno`]).
    pub async fn create_vxlan(&self, spec: &VxlanSpec) -> Result<()> {
        self.make_vxlan(spec, true).await
    }

    /// [`Kernel::create_vxlan`] for a point-to-point link (`nolearning noproxy`): the link's
    /// frames, ARP and neighbour discovery included, all go to its default destination (the
    /// all-zero FDB entry, [`NetnsHandle::set_vxlan_default_destination`]), so nothing is
    /// answered locally. Made here, in the daemon's namespace (where its UDP socket stays), and
    /// then moved into a sandbox.
    pub async fn create_vxlan_link(&self, spec: &VxlanSpec) -> Result<()> {
        self.make_vxlan(spec, false).await
    }

    async fn make_vxlan(&self, spec: &VxlanSpec, proxy: bool) -> Result<()> {
        check_ifname(&spec.name)?;
        if spec.vni > MAX_VNI {
            return Err(Error::invalid("VNI", spec.vni.to_string(), "more than 24 bits"));
        }
        if spec.port == 0 {
            return Err(Error::invalid("VXLAN port", "0", "the kernel would pick its own default port"));
        }
        if self.existing_vxlan(spec).await? {
            return Ok(());
        }
        let mut b = LinkVxlan::new(&spec.name, spec.vni)
            .port(spec.port)
            .learning(false)
            .proxy(proxy)
            .l2miss(false)
            .l3miss(false);
        b = match spec.local {
            IpAddr::V4(a) => b.local(a),
            IpAddr::V6(a) => b.local6(a),
        };
        let mut what =
            format!("create vxlan {} (VNI {}, local {}, dstport {}", spec.name, spec.vni, spec.local, spec.port);
        if let Some(underlay) = &spec.underlay {
            b = b.dev(self.nl.link_index(underlay).await?);
            what += &format!(", dev {underlay}");
        }
        if let Some(mtu) = spec.mtu {
            b = b.mtu(mtu);
            what += &format!(", mtu {mtu}");
        }
        what += ")";
        match self.nl.handle.link().add(b.build()).execute().await {
            Ok(()) => Ok(()),
            // Created meanwhile under that name (checked like any existing link), or the VNI and
            // port are taken by a vxlan of another name (the error stands).
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => match self.existing_vxlan(spec).await? {
                true => Ok(()),
                false => Err(self.nl.err(what, e)),
            },
            Err(e) => Err(self.nl.err(what, e)),
        }
    }

    /// True when a vxlan named spec.name with spec.vni exists; an error when another link has the
    /// name; false when none has.
    async fn existing_vxlan(&self, spec: &VxlanSpec) -> Result<bool> {
        let Some(msg) = self.nl.link_message_by_name(&spec.name).await? else {
            return Ok(false);
        };
        let vni = vni_of(&msg);
        if vni == Some(spec.vni) {
            return Ok(true);
        }
        let found = match vni {
            Some(vni) => format!("a vxlan link with VNI {vni}"),
            None => kind_name(&Link::from_message(&msg).kind),
        };
        Err(Error::LinkConflict {
            name: spec.name.clone(),
            found,
            wanted: format!("a vxlan link with VNI {}", spec.vni),
        })
    }

    /// The VNI of the vxlan link `name`; `None` when there is no such link or it is not a vxlan.
    pub async fn vxlan_vni(&self, name: &str) -> Result<Option<u32>> {
        Ok(self.nl.link_message_by_name(name).await?.as_ref().and_then(vni_of))
    }

    /// `bridge fdb replace MAC dev DEV dst VTEP self permanent`: frames for `mac` leaving the vxlan
    /// `dev` go to `vtep` (an existing entry for `mac` is pointed there). Idempotent.
    pub async fn add_vxlan_fdb(&self, dev: &str, mac: [u8; 6], vtep: IpAddr) -> Result<()> {
        self.add_vxlan_fdb_via(dev, mac, vtep, None).await
    }

    /// `bridge fdb del MAC dev DEV dst VTEP self`. A missing entry or device is not an error.
    pub async fn del_vxlan_fdb(&self, dev: &str, mac: [u8; 6], vtep: IpAddr) -> Result<()> {
        del_fdb(&self.nl, dev, mac, vtep).await
    }

    /// The FDB entries of `dev` that have a destination (those [`Kernel::add_vxlan_fdb`] makes),
    /// as (MAC, VTEP); one per destination when a MAC has several. A missing device is
    /// [`Error::LinkNotFound`].
    pub async fn vxlan_fdb_entries(&self, dev: &str) -> Result<Vec<([u8; 6], IpAddr)>> {
        fdb_entries(&self.nl, dev).await
    }

    /// `ip neigh replace IP lladdr MAC dev DEV nud permanent` (IPv4 or IPv6). Idempotent.
    pub async fn add_neighbour(&self, dev: &str, ip: IpAddr, mac: [u8; 6]) -> Result<()> {
        let index = self.nl.link_index(dev).await?;
        let req = self
            .nl
            .handle
            .neighbours()
            .add(index, ip)
            .link_layer_address(&mac)
            .state(NeighbourState::Permanent)
            .replace();
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Err(self.nl.not_found(dev)),
            Err(e) => Err(self.nl.err(format!("add neighbour {ip} lladdr {} to {dev}", format_mac(&mac)), e)),
        }
    }

    /// `ip neigh del IP dev DEV`. A missing entry or device is not an error.
    pub async fn del_neighbour(&self, dev: &str, ip: IpAddr) -> Result<()> {
        let Some(link) = self.nl.link_by_name(dev).await? else {
            return Ok(());
        };
        let mut msg = NeighbourMessage::default();
        msg.header.family = family_of(ip);
        msg.header.ifindex = link.index;
        msg.attributes = vec![NeighbourAttribute::Destination(ip.into())];
        match self.nl.handle.neighbours().del(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(netlink_errno(&e), Some(libc::ENOENT | libc::ENODEV)) => Ok(()),
            Err(e) => Err(self.nl.err(format!("delete neighbour {ip} from {dev}"), e)),
        }
    }

    /// The permanent IPv4 and IPv6 neighbours of `dev`, as (IP, MAC). A missing device is
    /// [`Error::LinkNotFound`].
    pub async fn permanent_neighbours(&self, dev: &str) -> Result<Vec<(IpAddr, [u8; 6])>> {
        let index = self.nl.link_index(dev).await?;
        let mut req = self.nl.handle.neighbours().get();
        // AF_UNSPEC: both the ARP and the ND tables; the kernel filters by NDA_IFINDEX.
        req.message_mut().attributes.push(NeighbourAttribute::IfIndex(index));
        let msgs: Vec<NeighbourMessage> =
            req.execute().try_collect().await.map_err(|e| self.nl.err(format!("list neighbours of {dev}"), e))?;
        Ok(msgs.iter().filter(|m| m.header.ifindex == index).filter_map(permanent_neighbour_of).collect())
    }

    /// The link that holds the address `ip` in this namespace, `None` when none does (one dump of
    /// the addresses of ip's family). For checking that an advertised address is this host's and
    /// for the MTU of the underlay.
    pub async fn link_with_address(&self, ip: IpAddr) -> Result<Option<Link>> {
        let mut req = self.nl.handle.address().get();
        req.message_mut().header.family = family_of(ip);
        let msgs: Vec<AddressMessage> = req
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.nl.err(format!("list {:?} addresses", family_of(ip)), e))?;
        match msgs.iter().find(|m| address_of(m).is_some_and(|a| a.ip() == ip)) {
            // (None if the link went away since the dump: as if never there.)
            Some(m) => self.nl.link_by_index(m.header.index).await,
            None => Ok(None),
        }
    }
}

/// `bridge fdb del MAC dev DEV dst VTEP self` through `nl`.
async fn del_fdb(nl: &Nl, dev: &str, mac: [u8; 6], vtep: IpAddr) -> Result<()> {
    let Some(link) = nl.link_by_name(dev).await? else {
        return Ok(());
    };
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = link.index;
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes =
        vec![NeighbourAttribute::LinkLayerAddress(mac.to_vec()), NeighbourAttribute::Destination(vtep.into())];
    match nl.handle.neighbours().del(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) if matches!(netlink_errno(&e), Some(libc::ENOENT | libc::ENODEV)) => Ok(()),
        Err(e) => Err(nl.err(format!("delete fdb entry {} dst {vtep} from {dev}", format_mac(&mac)), e)),
    }
}

/// `bridge fdb add MAC dev DEV dst VTEP self permanent` through `nl`; an existing entry is fine.
/// (Not `replace`: the kernel refuses to replace the all-zero entry.)
async fn add_fdb(nl: &Nl, dev: &str, mac: [u8; 6], vtep: IpAddr) -> Result<()> {
    let index = nl.link_index(dev).await?;
    let req = nl
        .handle
        .neighbours()
        .add_bridge(index, &mac)
        .flags(NeighbourFlags::Own)
        .state(NeighbourState::Permanent)
        .destination(vtep);
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => Ok(()),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Err(nl.not_found(dev)),
        Err(e) => Err(nl.err(format!("add fdb entry {} dst {vtep} to {dev}", format_mac(&mac)), e)),
    }
}

/// The FDB entries of `dev` that have a destination, through `nl`.
async fn fdb_entries(nl: &Nl, dev: &str) -> Result<Vec<([u8; 6], IpAddr)>> {
    let index = nl.link_index(dev).await?;
    let mut req = nl.handle.neighbours().get().set_address_family(AddressFamily::Bridge);
    // The kernel dumps only that device's entries (and, were it a bridge port, the bridge's
    // entries for the port, which have no destination).
    req.message_mut().header.ifindex = index;
    let msgs: Vec<NeighbourMessage> =
        req.execute().try_collect().await.map_err(|e| nl.err(format!("list fdb entries of {dev}"), e))?;
    Ok(msgs.iter().filter(|m| m.header.ifindex == index).filter_map(fdb_entry_of).collect())
}

/// The all-zero MAC: a VXLAN device's default destination (where frames for MACs without an
/// entry of their own go, broadcast and multicast included).
const DEFAULT_DST_MAC: [u8; 6] = [0; 6];

impl NetnsHandle {
    /// The destinations of the vxlan link `dev`'s all-zero FDB entry (its default destinations:
    /// every frame goes to each). A missing device is [`Error::LinkNotFound`].
    pub async fn vxlan_default_destinations(&self, dev: &str) -> Result<Vec<IpAddr>> {
        let entries = fdb_entries(self.nl(), dev).await?;
        Ok(entries.into_iter().filter(|(mac, _)| *mac == DEFAULT_DST_MAC).map(|(_, dst)| dst).collect())
    }

    /// Makes `dst` the one default destination of the vxlan link `dev` in this namespace (other
    /// destinations of the all-zero entry deleted, then `bridge fdb add 00:00:00:00:00:00 dev DEV
    /// dst DST self permanent`), or, with `None`, removes the entry: the link then sends nothing.
    /// What is already right is not touched, so traffic never stops. A missing device is
    /// [`Error::LinkNotFound`].
    pub async fn set_vxlan_default_destination(&self, dev: &str, dst: Option<IpAddr>) -> Result<()> {
        set_default_destination(self.nl(), dev, dst).await
    }
}

impl Kernel {
    /// [`NetnsHandle::set_vxlan_default_destination`] in the daemon's namespace (a device not
    /// yet moved into its sandbox: permanent FDB entries survive the move).
    pub async fn set_vxlan_default_destination(&self, dev: &str, dst: Option<IpAddr>) -> Result<()> {
        set_default_destination(&self.nl, dev, dst).await
    }
}

async fn set_default_destination(nl: &Nl, dev: &str, dst: Option<IpAddr>) -> Result<()> {
    let current: Vec<IpAddr> = fdb_entries(nl, dev)
        .await?
        .into_iter()
        .filter(|(mac, _)| *mac == DEFAULT_DST_MAC)
        .map(|(_, dst)| dst)
        .collect();
    for old in current.iter().filter(|old| Some(**old) != dst) {
        del_fdb(nl, dev, DEFAULT_DST_MAC, *old).await?;
    }
    if let Some(dst) = dst
        && !current.contains(&dst)
    {
        add_fdb(nl, dev, DEFAULT_DST_MAC, dst).await?;
    }
    Ok(())
}

fn family_of(ip: IpAddr) -> AddressFamily {
    match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The VNI of a vxlan link's message (`IFLA_VXLAN_ID`); `None` for other kinds.
fn vni_of(msg: &LinkMessage) -> Option<u32> {
    let infos = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => Some(infos),
        _ => None,
    })?;
    if !infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Vxlan))) {
        return None;
    }
    infos.iter().find_map(|i| match i {
        LinkInfo::Data(InfoData::Vxlan(attrs)) => attrs.iter().find_map(|a| match a {
            InfoVxlan::Id(vni) => Some(*vni),
            _ => None,
        }),
        _ => None,
    })
}

fn mac_of(msg: &NeighbourMessage) -> Option<[u8; 6]> {
    msg.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(mac) => mac.as_slice().try_into().ok(),
        _ => None,
    })
}

/// `NDA_DST` as an IP address. In `AF_BRIDGE` messages it comes undecoded (its family is not the
/// message's): 4 bytes are IPv4, 16 are IPv6.
fn destination_of(msg: &NeighbourMessage) -> Option<IpAddr> {
    msg.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(IpAddr::V4(*ip)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => Some(IpAddr::V6(*ip)),
        NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
            if let Ok(b) = <[u8; 4]>::try_from(bytes.as_slice()) {
                Some(IpAddr::V4(Ipv4Addr::from(b)))
            } else if let Ok(b) = <[u8; 16]>::try_from(bytes.as_slice()) {
                Some(IpAddr::V6(Ipv6Addr::from(b)))
            } else {
                None
            }
        }
        _ => None,
    })
}

/// (MAC, VTEP) of an FDB entry with a destination.
fn fdb_entry_of(msg: &NeighbourMessage) -> Option<([u8; 6], IpAddr)> {
    if msg.header.family != AddressFamily::Bridge {
        return None;
    }
    Some((mac_of(msg)?, destination_of(msg)?))
}

/// (IP, MAC) of a permanent IPv4 or IPv6 neighbour.
fn permanent_neighbour_of(msg: &NeighbourMessage) -> Option<(IpAddr, [u8; 6])> {
    if msg.header.state != NeighbourState::Permanent
        || !matches!(msg.header.family, AddressFamily::Inet | AddressFamily::Inet6)
    {
        return None;
    }
    Some((destination_of(msg)?, mac_of(msg)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0x42, 10, 99, 0, 2];

    fn neighbour(family: AddressFamily, state: NeighbourState, attrs: Vec<NeighbourAttribute>) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = family;
        m.header.state = state;
        m.attributes = attrs;
        m
    }

    #[test]
    fn fdb_entries_need_a_destination() {
        let lladdr = NeighbourAttribute::LinkLayerAddress(MAC.to_vec());
        let v4 = NeighbourAttribute::Destination(NeighbourAddress::Other(vec![192, 0, 2, 7]));
        let m = neighbour(AddressFamily::Bridge, NeighbourState::Permanent, vec![lladdr.clone(), v4]);
        assert_eq!(fdb_entry_of(&m), Some((MAC, "192.0.2.7".parse().unwrap())));
        let v6: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let dst = NeighbourAttribute::Destination(NeighbourAddress::Other(v6.octets().to_vec()));
        let m = neighbour(AddressFamily::Bridge, NeighbourState::Permanent, vec![dst, lladdr.clone()]);
        assert_eq!(fdb_entry_of(&m), Some((MAC, IpAddr::V6(v6))));
        // The bridge's own entries for a port have no destination.
        let m = neighbour(AddressFamily::Bridge, NeighbourState::Permanent, vec![lladdr.clone()]);
        assert_eq!(fdb_entry_of(&m), None);
        let bad = NeighbourAttribute::Destination(NeighbourAddress::Other(vec![1, 2, 3]));
        let m = neighbour(AddressFamily::Bridge, NeighbourState::Permanent, vec![lladdr, bad]);
        assert_eq!(fdb_entry_of(&m), None);
    }

    #[test]
    fn only_permanent_ip_neighbours() {
        let ip: IpAddr = "10.99.0.2".parse().unwrap();
        let attrs =
            vec![NeighbourAttribute::Destination(ip.into()), NeighbourAttribute::LinkLayerAddress(MAC.to_vec())];
        let m = neighbour(AddressFamily::Inet, NeighbourState::Permanent, attrs.clone());
        assert_eq!(permanent_neighbour_of(&m), Some((ip, MAC)));
        let m = neighbour(AddressFamily::Inet, NeighbourState::Reachable, attrs.clone());
        assert_eq!(permanent_neighbour_of(&m), None);
        let m = neighbour(AddressFamily::Bridge, NeighbourState::Permanent, attrs);
        assert_eq!(permanent_neighbour_of(&m), None);
        let ip6: IpAddr = "fd00::2".parse().unwrap();
        let attrs =
            vec![NeighbourAttribute::LinkLayerAddress(MAC.to_vec()), NeighbourAttribute::Destination(ip6.into())];
        let m = neighbour(AddressFamily::Inet6, NeighbourState::Permanent, attrs);
        assert_eq!(permanent_neighbour_of(&m), Some((ip6, MAC)));
    }

    #[test]
    fn vni_only_of_vxlans() {
        let mut m = LinkMessage::default();
        m.attributes = vec![LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![InfoVxlan::Learning(false), InfoVxlan::Id(4242)])),
        ])];
        assert_eq!(vni_of(&m), Some(4242));
        m.attributes = vec![LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)])];
        assert_eq!(vni_of(&m), None);
        m.attributes = vec![LinkAttribute::IfName("lo".into())];
        assert_eq!(vni_of(&m), None);
    }
}
