use std::{fs::File, io, path::Path, sync::Arc};

use ipnetwork::IpNetwork;
use nix::libc;
use rtnetlink::{
    LinkBridge, LinkUnspec, LinkVeth,
    packet_route::link::{InfoBridgePort, InfoData, InfoPortData, InfoPortKind, InfoVeth},
};

use crate::{
    Deleter, Error, InterfaceConfig, Link, NetnsHandle, Result, error::netlink_errno, link::check_ifname, nl::Nl,
    random_mac,
};

/// Netlink in the daemon's own network namespace (the one of the calling thread at connect time).
///
/// One connection, reused: clones share it. Lookups by name are single `RTM_GETLINK` requests,
/// never dumps, so the cost of an operation does not grow with the number of links.
#[derive(Clone)]
pub struct Kernel {
    pub(crate) nl: Nl,
    /// The namespace the connection lives in, open: links come back here from sandboxes
    /// (`IFLA_NET_NS_FD`, see [`Kernel::park`]).
    pub(crate) ns: Arc<File>,
    /// Deletions off the reply path (see [`Deleter`]).
    deleter: Deleter,
}

impl Kernel {
    /// Opens the connection. Must be called inside a tokio runtime; spawns the connection task.
    pub async fn connect() -> Result<Kernel> {
        let connect_err = |error: io::Error| Error::Connect { netns: None, error };
        tokio::runtime::Handle::try_current().map_err(|e| connect_err(io::Error::other(e)))?;
        // Opened on the thread that makes the socket, with no await between: the same namespace.
        let ns = File::open("/proc/thread-self/ns/net").map_err(connect_err)?;
        let (conn, handle, _) = rtnetlink::new_connection_with_strict_check().map_err(connect_err)?;
        tokio::spawn(conn);
        let ns = Arc::new(ns);
        let deleter = Deleter::start(ns.clone())?;
        Ok(Kernel { nl: Nl::new(handle, None), ns, deleter })
    }

    /// The queue of deletions that do not wait for the kernel: [`Deleter::delete_later`].
    pub fn deleter(&self) -> &Deleter {
        &self.deleter
    }

    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        self.nl.link_by_name(name).await
    }

    /// All links (a dump: for reconciliation, not for the per-endpoint path).
    pub async fn links(&self) -> Result<Vec<Link>> {
        self.nl.links().await
    }

    /// Creates a bridge if missing (returns its index either way), sets mtu if given, brings it up.
    /// A new bridge gets a random locally administered MAC, so its address does not follow its
    /// ports. A link of that name that is not a bridge is an error.
    pub async fn ensure_bridge(&self, name: &str, mtu: Option<u32>) -> Result<u32> {
        check_ifname(name)?;
        let link = match self.nl.link_by_name(name).await? {
            Some(link) => link,
            None => {
                let mut b = LinkBridge::new(name).address(random_mac().to_vec());
                if let Some(mtu) = mtu {
                    b = b.mtu(mtu);
                }
                match self.nl.handle.link().add(b.build()).execute().await {
                    Ok(()) => {}
                    // Created by someone else meanwhile: checked below like any existing link.
                    Err(e) if netlink_errno(&e) == Some(libc::EEXIST) => {}
                    Err(e) => return Err(self.nl.err(format!("create bridge {name}"), e)),
                }
                self.nl.link_by_name(name).await?.ok_or_else(|| self.nl.not_found(name))?
            }
        };
        if link.kind.as_deref() != Some("bridge") {
            return Err(Error::NotABridge { name: name.to_string(), kind: link.kind });
        }
        let new_mtu = mtu.filter(|m| link.mtu != Some(*m));
        if new_mtu.is_some() || !link.up {
            let mut b = LinkUnspec::new_with_index(link.index).up();
            let mut what = format!("set bridge {name} up");
            if let Some(mtu) = new_mtu {
                b = b.mtu(mtu);
                what += &format!(" mtu {mtu}");
            }
            self.nl.set_link(name, b.build(), what).await?;
        }
        Ok(link.index)
    }

    /// Adds the address; an address already present is not an error.
    pub async fn add_address(&self, ifname: &str, addr: IpNetwork) -> Result<()> {
        self.nl.add_address(ifname, addr).await
    }

    /// `ip addr del ADDR dev IFNAME`; an address (or link) that is not there is not an error.
    pub async fn delete_address(&self, ifname: &str, addr: IpNetwork) -> Result<()> {
        self.nl.delete_address(ifname, addr).await
    }

    pub async fn addresses(&self, ifname: &str) -> Result<Vec<IpNetwork>> {
        self.nl.addresses(ifname).await
    }

    pub async fn set_up(&self, ifname: &str) -> Result<()> {
        self.nl.set_up(ifname).await
    }

    /// Deletes the link; a missing link is not an error.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        self.nl.delete_link(name).await
    }

    /// `ip link add HOST type veth peer name PEER; ip link set HOST master BRIDGE mtu M up` (peer
    /// stays down, in this namespace; mtu on both). One request after the bridge lookup.
    pub async fn create_veth_on_bridge(&self, host: &str, peer: &str, bridge: &str, mtu: Option<u32>) -> Result<()> {
        check_ifname(host)?;
        check_ifname(peer)?;
        let bridge_index = self.nl.link_index(bridge).await?;
        let mut peer_msg = LinkUnspec::new_with_name(peer);
        let mut b = LinkVeth::new(host, peer).controller(bridge_index).up();
        if let Some(mtu) = mtu {
            peer_msg = peer_msg.mtu(mtu);
            b = b.mtu(mtu);
        }
        let msg = b.set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg.build()))).build();
        self.nl.add_link(msg, format!("create veth {host} (peer {peer}) on {bridge}")).await
    }

    /// The fast way to attach a sandbox to a bridge: one request creates a veth pair whose host end
    /// `host` hangs off `bridge` (up, with cfg.mtu) and whose other end is born inside the sandbox
    /// as cfg.name (with cfg.mac and cfg.mtu), then the sandbox end is configured as by
    /// [`NetnsHandle::configure_interface`] (addresses, up, routes).
    ///
    /// Equivalent to [`Kernel::create_veth_on_bridge`] followed by [`Kernel::move_into`], without
    /// the move: moving a link between namespaces waits for RCU grace periods in the kernel
    /// (about 15-20 ms per move on a small VM), while this costs about a millisecond.
    /// On failure the pair is deleted.
    pub async fn create_veth_in_sandbox(
        &self,
        host: &str,
        bridge: &str,
        ns: &NetnsHandle,
        cfg: &InterfaceConfig,
    ) -> Result<()> {
        check_ifname(host)?;
        cfg.validate()?;
        let bridge_index = self.nl.link_index(bridge).await?;
        let msg = veth_with_peer_in(host, Some(bridge_index), ns, cfg);
        let what = format!("create veth {host} on {bridge} with peer {} in netns {}", cfg.name, ns.path().display());
        self.nl.add_link(msg, what).await?;
        let configured = async {
            // A bridge port needs no address of its own; without IPv6 it sends no DAD, router
            // solicitations or MLD reports for the bridge to flood to every container. (A
            // kernel without IPv6 has nothing to turn off.)
            let _ = crate::sysctl::set_interface_sysctl("ipv6", host, "disable_ipv6", "1");
            // Up and in hairpin mode, in one request (the port data needs the port to be one
            // already, so it cannot ride on the creation).
            self.set_bridge_port_up_hairpin(host).await?;
            let index = ns.link_index(&cfg.name).await?;
            ns.configure_addressing(index, cfg).await
        };
        if let Err(e) = configured.await {
            if let Err(de) = self.nl.delete_link(host).await {
                tracing::warn!(host, error = %de, "cannot delete veth after failed configuration");
            }
            return Err(e);
        }
        Ok(())
    }

    /// `ip link set LINK up type bridge_slave hairpin on`: `link` must be a bridge port.
    ///
    /// Hairpin mode lets the bridge send a frame back out of the port it came in by. A container
    /// that reaches its own published port through a host address needs it: with the kernel's
    /// bridge netfilter on, the DNATed packet is bridged straight back to the port it came from.
    /// Docker sets it on every port when it runs without its userland proxy, as cnet always does.
    pub async fn set_bridge_port_up_hairpin(&self, link: &str) -> Result<()> {
        check_ifname(link)?;
        let msg = LinkUnspec::new_with_name(link)
            .up()
            .set_port_kind(InfoPortKind::Bridge)
            .set_port_data(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(true)]))
            .build();
        // RTM_SETLINK ignores port data: RTM_NEWLINK without NLM_F_CREATE changes the link.
        match self.nl.handle.link().set_port(msg).execute().await {
            Ok(()) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Err(self.nl.not_found(link)),
            Err(e) => Err(self.nl.err(format!("set {link} up hairpin on"), e)),
        }
    }

    /// `ip link set LINK master CONTROLLER up` (re-attaching a veth to a re-created bridge).
    pub async fn set_controller(&self, link: &str, controller: &str) -> Result<()> {
        check_ifname(link)?;
        let controller_index = self.nl.link_index(controller).await?;
        let msg = LinkUnspec::new_with_name(link).controller(controller_index).up().build();
        self.nl.set_link(link, msg, format!("set {link} master {controller} up")).await
    }

    /// Destinations of all IPv4 and IPv6 routes in the main table (IPAM avoids subnets that
    /// overlap them). Default routes are left out: every subnet overlaps 0.0.0.0/0.
    pub async fn route_destinations(&self) -> Result<Vec<IpNetwork>> {
        self.nl.route_destinations().await
    }

    /// Moves the link into the namespace bound at `netns`, renames it to cfg.name there and
    /// configures it (see [`NetnsHandle::configure_interface`]). On failure nothing is left in the
    /// sandbox (the link is deleted there). Opens one [`NetnsHandle`] for it; a caller that has one
    /// already uses [`Kernel::move_into`].
    ///
    /// The move itself is the expensive part (the kernel waits for RCU grace periods: about
    /// 15-20 ms on a small VM); for veths see [`Kernel::create_veth_in_sandbox`].
    pub async fn move_into_sandbox(&self, link: &str, netns: &Path, cfg: &InterfaceConfig) -> Result<()> {
        let ns = NetnsHandle::open(netns).await?;
        self.move_into(link, &ns, cfg).await
    }

    /// [`Kernel::move_into_sandbox`] with an open handle of the sandbox's namespace.
    ///
    /// If the move itself fails the link stays here, in the daemon's namespace (for a veth peer,
    /// deleting the host end removes it); once moved, any failure deletes it in the sandbox.
    pub async fn move_into(&self, link: &str, ns: &NetnsHandle, cfg: &InterfaceConfig) -> Result<()> {
        check_ifname(link)?;
        cfg.validate()?;
        let msg = LinkUnspec::new_with_name(link).setns_by_fd(ns.ns_fd()).build();
        self.nl.set_link(link, msg, format!("move link {link} into netns {}", ns.path().display())).await?;
        let index = match ns.link_index(link).await {
            Ok(index) => index,
            Err(e) => {
                if let Err(de) = ns.delete_link(link).await {
                    tracing::warn!(link, error = %de, "cannot delete link after failed move");
                }
                return Err(e);
            }
        };
        if let Err(e) = ns.configure_index(index, link, cfg).await {
            if let Err(de) = ns.delete_link_index(index).await {
                tracing::warn!(link, error = %de, "cannot delete link after failed configuration");
            }
            return Err(e);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel").finish_non_exhaustive()
    }
}

/// The request that makes a veth pair whose end `local` stays in this namespace (down, on
/// `controller` when given) and whose peer is born inside `ns` as cfg.name, with cfg's MAC and
/// MTU (the MTU on both ends).
pub(crate) fn veth_with_peer_in(
    local: &str,
    controller: Option<u32>,
    ns: &NetnsHandle,
    cfg: &InterfaceConfig,
) -> rtnetlink::packet_route::link::LinkMessage {
    let mut peer = LinkUnspec::new_with_name(&cfg.name).setns_by_fd(ns.ns_fd());
    let mut veth = LinkVeth::new(local, &cfg.name);
    if let Some(index) = controller {
        veth = veth.controller(index);
    }
    if let Some(mac) = cfg.mac {
        peer = peer.address(mac.to_vec());
    }
    if let Some(mtu) = cfg.mtu {
        peer = peer.mtu(mtu);
        veth = veth.mtu(mtu);
    }
    veth.set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build()))).build()
}
