use std::{
    fs::File,
    io,
    net::IpAddr,
    os::fd::{AsRawFd, RawFd},
    path::Path,
    sync::Arc,
};

use ipnetwork::IpNetwork;
use rtnetlink::{
    LinkUnspec,
    sys::{AsyncSocket, TokioSocket, protocols::NETLINK_ROUTE},
};

use crate::{Error, InterfaceConfig, Link, Result, link::check_ifname, netns, nl::Nl, sysctl};

/// Netlink inside the namespace bound at a path. The socket is created on a throwaway std::thread
/// that setns()'d into it (never setns a tokio worker); the handle then works from any tokio task.
///
/// Cheap to clone (clones share the connection); the connection closes when the last clone drops.
/// While open, the handle keeps the namespace alive even if its path is removed.
#[derive(Clone)]
pub struct NetnsHandle {
    nl: Nl,
    /// The open namespace file: for moving links in (`IFLA_NET_NS_FD`) and for threads that enter it.
    ns: Arc<File>,
    path: Arc<Path>,
}

impl NetnsHandle {
    /// Connects to the namespace bound at `path`. Must be called inside a tokio runtime (the
    /// connection task is spawned on it).
    pub async fn open(path: &Path) -> Result<NetnsHandle> {
        let connect_err = |error: io::Error| Error::Connect { netns: Some(path.to_path_buf()), error };
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| connect_err(io::Error::other(e)))?;
        let ns = Arc::new(netns::open(path)?);
        // The socket is born on the namespace's thread (so it lives in the namespace) but is
        // registered with the caller's runtime, which drives it from then on.
        let socket = netns::run_in_async(&ns, path, move || -> io::Result<TokioSocket> {
            let _runtime = runtime.enter();
            let socket = TokioSocket::new(NETLINK_ROUTE)?;
            socket.socket_ref().set_netlink_get_strict_chk(true)?;
            Ok(socket)
        })
        .await?
        .map_err(connect_err)?;
        let (conn, handle, _) = rtnetlink::from_socket(socket);
        tokio::spawn(conn);
        Ok(NetnsHandle { nl: Nl::new(handle, Some(path)), ns, path: Arc::from(path) })
    }

    /// Where the namespace is bound.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn ns_fd(&self) -> RawFd {
        self.ns.as_raw_fd()
    }

    pub(crate) fn nl(&self) -> &Nl {
        &self.nl
    }

    /// With the link (currently named `current`) down: rename to cfg.name, set mac/mtu, add
    /// addresses, bring it up, add default routes via the gateways and cfg.routes. IPv6: disable
    /// DAD on it (`net.ipv6.conf.<if>.accept_dad=0` inside the namespace, and `IFA_F_NODAD` on the
    /// addresses) so the address is usable at once. Addresses and routes already present are fine.
    pub async fn configure_interface(&self, current: &str, cfg: &InterfaceConfig) -> Result<()> {
        cfg.validate()?;
        let index = self.nl.link_index(current).await?;
        self.configure_index(index, current, cfg).await
    }

    pub(crate) async fn configure_index(&self, index: u32, current: &str, cfg: &InterfaceConfig) -> Result<()> {
        let name = cfg.name.as_str();
        if name != current || cfg.mac.is_some() || cfg.mtu.is_some() {
            let mut b = LinkUnspec::new_with_index(index);
            let mut what = format!("set link {current}");
            if name != current {
                b = b.name(name);
                what += &format!(" name {name}");
            }
            if let Some(mac) = cfg.mac {
                b = b.address(mac.to_vec());
                what += &format!(" address {}", crate::format_mac(&mac));
            }
            if let Some(mtu) = cfg.mtu {
                b = b.mtu(mtu);
                what += &format!(" mtu {mtu}");
            }
            self.nl.set_link(current, b.build(), what).await?;
        }
        self.configure_addressing(index, cfg).await
    }

    /// The part of the configuration after name, MAC and MTU: DAD off for IPv6, addresses, up,
    /// routes. The link is already named `cfg.name`.
    pub(crate) async fn configure_addressing(&self, index: u32, cfg: &InterfaceConfig) -> Result<()> {
        let name = cfg.name.as_str();
        if cfg.uses_ipv6() {
            let ifname = name.to_string();
            self.run(move || -> Result<()> { sysctl::set_interface_sysctl("ipv6", &ifname, "accept_dad", "0") })
                .await??;
        } else {
            // An IPv4-only interface gets no IPv6 address of its own, so it sends no DAD, router
            // solicitation or MLD report for a bridge to flood to every other port; set before it
            // comes up, when the kernel would make its link-local address.
            self.nl
                .set_link(name, crate::link::without_ipv6_addresses(index), format!("set link {name} addrgenmode none"))
                .await?;
        }
        for addr in &cfg.addresses {
            self.nl.add_address_index(index, name, *addr).await?;
        }
        let up = LinkUnspec::new_with_index(index).up().build();
        self.nl.set_link(name, up, format!("set link {name} up")).await?;
        if let Some(gw) = cfg.gateway_v4 {
            self.nl.add_default_route(index, name, IpAddr::V4(gw)).await?;
        }
        if let Some(gw) = cfg.gateway_v6 {
            self.nl.add_default_route(index, name, IpAddr::V6(gw)).await?;
        }
        for (dst, gw) in &cfg.routes {
            self.nl.add_route_to(index, name, *dst, *gw).await?;
        }
        Ok(())
    }

    /// `ip route replace default via GW dev IFNAME` inside the namespace: moves the default route
    /// of gw's family to `ifname` (when another endpoint of the sandbox wins the gateway election).
    pub async fn replace_default_route(&self, ifname: &str, gw: IpAddr) -> Result<()> {
        let index = self.nl.link_index(ifname).await?;
        self.nl.replace_default_route(index, ifname, gw).await
    }

    /// Deletes the link; a missing link is not an error.
    pub async fn delete_link(&self, name: &str) -> Result<()> {
        self.nl.delete_link(name).await
    }

    pub(crate) async fn delete_link_index(&self, index: u32) -> Result<()> {
        self.nl.delete_link_index(index).await
    }

    pub(crate) async fn link_index(&self, name: &str) -> Result<u32> {
        self.nl.link_index(name).await
    }

    /// All links in the namespace (a dump: fine for a sandbox's handful of links).
    pub async fn links(&self) -> Result<Vec<Link>> {
        self.nl.links().await
    }

    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>> {
        self.nl.link_by_name(name).await
    }

    pub async fn addresses(&self, ifname: &str) -> Result<Vec<IpNetwork>> {
        self.nl.addresses(ifname).await
    }

    /// Adds the address; an address already present is not an error.
    pub async fn add_address(&self, ifname: &str, addr: IpNetwork) -> Result<()> {
        self.nl.add_address(ifname, addr).await
    }

    pub async fn set_up(&self, ifname: &str) -> Result<()> {
        check_ifname(ifname)?;
        self.nl.set_up(ifname).await
    }

    /// Destinations of the main-table routes inside the namespace (default routes left out).
    pub async fn route_destinations(&self) -> Result<Vec<IpNetwork>> {
        self.nl.route_destinations().await
    }

    /// Runs `f` on a throwaway thread inside this namespace (sysctls, binding sockets there),
    /// awaiting it without blocking the runtime.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        netns::run_in_async(&self.ns, &self.path, f).await
    }
}

impl std::fmt::Debug for NetnsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetnsHandle").field("path", &self.path).finish()
    }
}
