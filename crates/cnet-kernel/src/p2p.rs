//! Point-to-point links: one veth pair between two sandboxes, whose end without a sandbox waits
//! ("parked") down in the daemon's namespace. Its peer then has no carrier, and keeps its
//! interface, addresses and routes until a new end is moved in.

use std::os::fd::AsRawFd;

use rtnetlink::LinkUnspec;

use crate::{InterfaceConfig, Kernel, NetnsHandle, Result, link::check_ifname};

impl Kernel {
    /// `ip link add PARKED mtu M type veth peer name CFG.NAME netns SANDBOX address CFG.MAC mtu M`
    /// (PARKED stays down, here), then the sandbox end is configured as by
    /// [`NetnsHandle::configure_interface`] (addresses, up, routes). One request makes the pair,
    /// with no move between namespaces. On failure nothing is left.
    pub async fn create_veth_with_parked_peer(
        &self,
        parked: &str,
        ns: &NetnsHandle,
        cfg: &InterfaceConfig,
    ) -> Result<()> {
        check_ifname(parked)?;
        cfg.validate()?;
        let msg = crate::kernel::veth_with_peer_in(parked, None, ns, cfg);
        let what = format!("create veth {parked} with peer {} in netns {}", cfg.name, ns.path().display());
        self.nl.add_link(msg, what).await?;
        let configured = async {
            let index = ns.link_index(&cfg.name).await?;
            ns.configure_addressing(index, cfg).await
        };
        if let Err(e) = configured.await {
            // Deleting one end deletes the pair.
            if let Err(de) = self.nl.delete_link(parked).await {
                tracing::warn!(link = parked, error = %de, "cannot delete veth pair after failed configuration");
            }
            return Err(e);
        }
        Ok(())
    }

    /// `ip link set PARKED netns SANDBOX`, then renamed to cfg.name and configured there (MAC, MTU,
    /// addresses, up, routes). If the move fails the end stays parked; if the configuration
    /// fails it is parked again, so that its peer keeps its link.
    pub async fn unpark_into(&self, parked: &str, ns: &NetnsHandle, cfg: &InterfaceConfig) -> Result<()> {
        check_ifname(parked)?;
        cfg.validate()?;
        let msg = LinkUnspec::new_with_name(parked).setns_by_fd(ns.ns_fd()).build();
        self.nl.set_link(parked, msg, format!("move link {parked} into netns {}", ns.path().display())).await?;
        let index = ns.link_index(parked).await?;
        if let Err(e) = ns.configure_index(index, parked, cfg).await {
            if let Err(pe) = self.park_index(ns, index, parked).await {
                tracing::warn!(link = parked, error = %pe, "cannot park the veth end again after failed configuration");
            }
            return Err(e);
        }
        Ok(())
    }

    /// `ip -n SANDBOX link set IFNAME netns DAEMON name PARKED`: the sandbox's end of a pair
    /// comes back to the daemon's namespace, where it waits for the next join. The move takes it
    /// down (its peer loses carrier) and drops its addresses and routes. A missing `ifname` is an
    /// error ([`crate::Error::is_not_found`]).
    pub async fn park(&self, ns: &NetnsHandle, ifname: &str, parked: &str) -> Result<()> {
        check_ifname(ifname)?;
        check_ifname(parked)?;
        let index = ns.link_index(ifname).await?;
        self.park_index(ns, index, parked).await
    }

    async fn park_index(&self, ns: &NetnsHandle, index: u32, parked: &str) -> Result<()> {
        // One request, by index: the kernel moves the link first (keeping its name unless that is
        // taken here, in which case it takes `parked` at once), then renames it, now that it is
        // down (an up link cannot be renamed).
        let msg = LinkUnspec::new_with_index(index).setns_by_fd(self.ns.as_raw_fd()).name(parked).build();
        ns.nl().set_link(parked, msg, format!("move link #{index} out of the sandbox as {parked}")).await
    }
}
