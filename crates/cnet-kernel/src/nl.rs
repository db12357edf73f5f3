//! Netlink operations shared by [`crate::Kernel`] (the daemon's namespace) and
//! [`crate::NetnsHandle`] (a sandbox's): one `Nl` per connection, cheap to clone.

use std::{
    fmt::Display,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    sync::Arc,
};

use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use nix::libc;
use rtnetlink::{
    Handle, LinkUnspec, RouteMessageBuilder,
    packet_route::{
        AddressFamily,
        address::{AddressAttribute, AddressFlags, AddressMessage},
        link::LinkMessage,
        route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteScope},
    },
};

use crate::{Error, Link, Result, error::netlink_errno, link::check_ifname};

#[derive(Clone)]
pub(crate) struct Nl {
    pub(crate) handle: Handle,
    /// The namespace this connection lives in, when it is not the daemon's own (for messages).
    pub(crate) netns: Option<Arc<Path>>,
}

impl Nl {
    pub(crate) fn new(handle: Handle, netns: Option<&Path>) -> Nl {
        Nl { handle, netns: netns.map(Arc::from) }
    }

    fn netns_path(&self) -> Option<PathBuf> {
        self.netns.as_deref().map(Path::to_path_buf)
    }

    /// Wraps a netlink error with what was being done (and where).
    /// `ip link add …`: sends one new-link request, naming `what` on failure.
    pub(crate) async fn add_link(&self, msg: LinkMessage, what: impl Display) -> Result<()> {
        self.handle.link().add(msg).execute().await.map_err(|e| self.err(what, e))
    }

    pub(crate) fn err(&self, what: impl Display, error: rtnetlink::Error) -> Error {
        let context = match &self.netns {
            Some(p) => format!("{what} (in netns {})", p.display()),
            None => what.to_string(),
        };
        Error::Netlink { context, error }
    }

    pub(crate) fn not_found(&self, name: &str) -> Error {
        Error::LinkNotFound { name: name.to_string(), netns: self.netns_path() }
    }

    /// One `RTM_GETLINK` by name (never a dump).
    pub(crate) async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        Ok(self.link_message_by_name(name).await?.as_ref().map(Link::from_message))
    }

    /// [`Nl::link_by_name`], the kernel's whole answer (for the kind-specific `IFLA_INFO_DATA`).
    pub(crate) async fn link_message_by_name(&self, name: &str) -> Result<Option<LinkMessage>> {
        check_ifname(name)?;
        let stream = self.handle.link().get().match_name(name).execute();
        self.single_link(stream, || format!("get link {name}")).await
    }

    /// One `RTM_GETLINK` by index; `None` when no link has it.
    pub(crate) async fn link_by_index(&self, index: u32) -> Result<Option<Link>> {
        let stream = self.handle.link().get().match_index(index).execute();
        Ok(self.single_link(stream, || format!("get link #{index}")).await?.as_ref().map(Link::from_message))
    }

    async fn single_link<S, W>(&self, mut stream: S, what: impl FnOnce() -> W) -> Result<Option<LinkMessage>>
    where
        S: futures::Stream<Item = Result<LinkMessage, rtnetlink::Error>> + Unpin,
        W: Display,
    {
        let mut found = None;
        loop {
            match stream.try_next().await {
                Ok(Some(msg)) => found = Some(msg),
                Ok(None) => return Ok(found),
                Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => return Ok(None),
                Err(e) => return Err(self.err(what(), e)),
            }
        }
    }

    pub(crate) async fn link_index(&self, name: &str) -> Result<u32> {
        match self.link_by_name(name).await? {
            Some(l) => Ok(l.index),
            None => Err(self.not_found(name)),
        }
    }

    pub(crate) async fn links(&self) -> Result<Vec<Link>> {
        let msgs: Vec<LinkMessage> =
            self.handle.link().get().execute().try_collect().await.map_err(|e| self.err("list links", e))?;
        Ok(msgs.iter().map(Link::from_message).collect())
    }

    /// `RTM_SETLINK` of a prepared message; a missing link becomes [`Error::LinkNotFound`].
    pub(crate) async fn set_link(&self, name: &str, msg: LinkMessage, what: impl Display) -> Result<()> {
        match self.handle.link().set(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Err(self.not_found(name)),
            Err(e) => Err(self.err(what, e)),
        }
    }

    pub(crate) async fn set_up(&self, name: &str) -> Result<()> {
        check_ifname(name)?;
        let msg = LinkUnspec::new_with_name(name).up().build();
        self.set_link(name, msg, format!("set link {name} up")).await
    }

    /// Deletes by name in one request; a missing link is not an error.
    pub(crate) async fn delete_link(&self, name: &str) -> Result<()> {
        check_ifname(name)?;
        let msg = LinkUnspec::new_with_name(name).build();
        match self.handle.link().del_with_message(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(self.err(format!("delete link {name}"), e)),
        }
    }

    pub(crate) async fn delete_link_index(&self, index: u32) -> Result<()> {
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(self.err(format!("delete link #{index}"), e)),
        }
    }

    /// Adds an address to the link with `index` (named `ifname`, for messages); one already
    /// present is not an error. IPv6 addresses get `IFA_F_NODAD` so they are usable at once.
    pub(crate) async fn add_address_index(&self, index: u32, ifname: &str, addr: IpNetwork) -> Result<()> {
        let mut req = self.handle.address().add(index, addr.ip(), addr.prefix());
        if addr.is_ipv6() {
            req.message_mut().attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Err(self.not_found(ifname)),
            Err(e) => Err(self.err(format!("add address {addr} to {ifname}"), e)),
        }
    }

    pub(crate) async fn add_address(&self, ifname: &str, addr: IpNetwork) -> Result<()> {
        let index = self.link_index(ifname).await?;
        self.add_address_index(index, ifname, addr).await
    }

    /// Addresses of one link (the kernel filters by index: the socket has strict checking on).
    pub(crate) async fn addresses(&self, ifname: &str) -> Result<Vec<IpNetwork>> {
        let index = self.link_index(ifname).await?;
        let mut req = self.handle.address().get().set_link_index_filter(index);
        req.message_mut().header.index = index;
        let msgs: Vec<AddressMessage> =
            req.execute().try_collect().await.map_err(|e| self.err(format!("list addresses of {ifname}"), e))?;
        Ok(msgs.iter().filter_map(address_of).collect())
    }

    /// Removes one address from a link; an address (or link) that is not there is not an error.
    pub(crate) async fn delete_address(&self, ifname: &str, addr: IpNetwork) -> Result<()> {
        let Some(index) = self.link_by_name(ifname).await?.map(|l| l.index) else { return Ok(()) };
        let mut req = self.handle.address().get().set_link_index_filter(index);
        req.message_mut().header.index = index;
        let msgs: Vec<AddressMessage> =
            req.execute().try_collect().await.map_err(|e| self.err(format!("list addresses of {ifname}"), e))?;
        for msg in msgs.into_iter().filter(|m| address_of(m) == Some(addr)) {
            match self.handle.address().del(msg).execute().await {
                Ok(()) => {}
                Err(e) if matches!(netlink_errno(&e), Some(libc::EADDRNOTAVAIL) | Some(libc::ENODEV)) => {}
                Err(e) => return Err(self.err(format!("delete address {addr} from {ifname}"), e)),
            }
        }
        Ok(())
    }

    /// Adds a route; one already present is not an error.
    pub(crate) async fn add_route(&self, msg: RouteMessage, what: impl Display) -> Result<()> {
        match self.handle.route().add(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(self.err(what, e)),
        }
    }

    /// Default route via `gw` out of the link `index`.
    pub(crate) async fn add_default_route(&self, index: u32, ifname: &str, gw: IpAddr) -> Result<()> {
        let msg = match gw {
            IpAddr::V4(gw) => RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).output_interface(index).build(),
            IpAddr::V6(gw) => RouteMessageBuilder::<Ipv6Addr>::new().gateway(gw).output_interface(index).build(),
        };
        self.add_route(msg, format!("add default route via {gw} dev {ifname}")).await
    }

    /// `ip route replace default via GW dev IFNAME`: the default route of gw's family now leaves
    /// by `index`, in one request (no moment without one when another link had it).
    pub(crate) async fn replace_default_route(&self, index: u32, ifname: &str, gw: IpAddr) -> Result<()> {
        let msg = match gw {
            IpAddr::V4(gw) => RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).output_interface(index).build(),
            IpAddr::V6(gw) => RouteMessageBuilder::<Ipv6Addr>::new().gateway(gw).output_interface(index).build(),
        };
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(|e| self.err(format!("replace default route via {gw} dev {ifname}"), e))
    }

    /// Route to `dst` out of the link `index`, via `gw` or directly on the link.
    pub(crate) async fn add_route_to(
        &self,
        index: u32,
        ifname: &str,
        dst: IpNetwork,
        gw: Option<IpAddr>,
    ) -> Result<()> {
        let dst = IpNetwork::new(dst.network(), dst.prefix()).expect("same prefix is valid");
        let msg = match (dst, gw) {
            (IpNetwork::V4(d), None) => RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(d.ip(), d.prefix())
                .output_interface(index)
                .scope(RouteScope::Link)
                .build(),
            (IpNetwork::V4(d), Some(IpAddr::V4(gw))) => RouteMessageBuilder::<Ipv4Addr>::new()
                .destination_prefix(d.ip(), d.prefix())
                .output_interface(index)
                .gateway(gw)
                .build(),
            (IpNetwork::V6(d), None) => RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(d.ip(), d.prefix())
                .output_interface(index)
                .build(),
            (IpNetwork::V6(d), Some(IpAddr::V6(gw))) => RouteMessageBuilder::<Ipv6Addr>::new()
                .destination_prefix(d.ip(), d.prefix())
                .output_interface(index)
                .gateway(gw)
                .build(),
            (_, Some(gw)) => {
                return Err(Error::invalid(
                    "route",
                    format!("{dst} via {gw}"),
                    "gateway and destination are of different IP families",
                ));
            }
        };
        let what = match gw {
            Some(gw) => format!("add route {dst} via {gw} dev {ifname}"),
            None => format!("add route {dst} dev {ifname}"),
        };
        self.add_route(msg, what).await
    }

    /// Destinations of the IPv4 and IPv6 routes of the main table, default routes left out.
    pub(crate) async fn route_destinations(&self) -> Result<Vec<IpNetwork>> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut msg = RouteMessage::default();
            msg.header.address_family = family;
            msg.header.table = RouteHeader::RT_TABLE_MAIN;
            let routes: Vec<RouteMessage> = self
                .handle
                .route()
                .get(msg)
                .execute()
                .try_collect()
                .await
                .map_err(|e| self.err(format!("list {family:?} routes"), e))?;
            out.extend(routes.iter().filter_map(main_table_destination));
        }
        Ok(out)
    }
}

/// The address of an `RTM_NEWADDR` message: `IFA_LOCAL` (the interface's own address on
/// point-to-point links) before `IFA_ADDRESS`.
pub(crate) fn address_of(msg: &AddressMessage) -> Option<IpNetwork> {
    let mut address = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => return IpNetwork::new(*ip, msg.header.prefix_len).ok(),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    address.and_then(|ip| IpNetwork::new(ip, msg.header.prefix_len).ok())
}

/// The destination of a main-table route, `None` for default routes and other tables.
pub(crate) fn main_table_destination(msg: &RouteMessage) -> Option<IpNetwork> {
    let mut table = u32::from(msg.header.table);
    let mut dst = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = Some(IpAddr::V4(*ip)),
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => dst = Some(IpAddr::V6(*ip)),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) || msg.header.destination_prefix_length == 0 {
        return None;
    }
    IpNetwork::new(dst?, msg.header.destination_prefix_length).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(table: u8, dst: Option<IpAddr>, len: u8) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.table = table;
        m.header.destination_prefix_length = len;
        if let Some(d) = dst {
            m.attributes.push(RouteAttribute::Destination(d.into()));
        }
        m.attributes.push(RouteAttribute::Table(u32::from(table)));
        m
    }

    #[test]
    fn route_destination_extraction() {
        let v4: IpAddr = "10.99.0.0".parse().unwrap();
        let v6: IpAddr = "fd00:99::".parse().unwrap();
        assert_eq!(main_table_destination(&route(254, Some(v4), 24)), Some("10.99.0.0/24".parse().unwrap()));
        assert_eq!(main_table_destination(&route(254, Some(v6), 64)), Some("fd00:99::/64".parse().unwrap()));
        // Default routes and other tables are not "destinations" to avoid.
        assert_eq!(main_table_destination(&route(254, None, 0)), None);
        assert_eq!(main_table_destination(&route(255, Some(v4), 24)), None);
        // A table id above 255 lives only in RTA_TABLE.
        let mut m = route(254, Some(v4), 24);
        m.header.table = 252;
        m.attributes.retain(|a| !matches!(a, RouteAttribute::Table(_)));
        m.attributes.push(RouteAttribute::Table(1000));
        assert_eq!(main_table_destination(&m), None);
    }

    #[test]
    fn address_prefers_local() {
        let mut m = AddressMessage::default();
        m.header.prefix_len = 24;
        m.attributes = vec![
            AddressAttribute::Address("10.0.0.9".parse().unwrap()),
            AddressAttribute::Local("10.0.0.2".parse().unwrap()),
        ];
        assert_eq!(address_of(&m), Some("10.0.0.2/24".parse().unwrap()));
        m.attributes = vec![AddressAttribute::Address("fd00::2".parse().unwrap())];
        m.header.prefix_len = 64;
        assert_eq!(address_of(&m), Some("fd00::2/64".parse().unwrap()));
        m.attributes.clear();
        assert_eq!(address_of(&m), None);
    }
}
