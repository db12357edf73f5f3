//! macvlan links born inside sandboxes, and 802.1q VLAN sub-interfaces for them to sit on.

use futures::TryStreamExt;
use nix::libc;
use rtnetlink::{
    LinkMacVlan, LinkUnspec, LinkVlan,
    packet_route::link::{LinkAttribute, LinkMessage},
};

pub use rtnetlink::packet_route::link::MacVlanMode;

use crate::{InterfaceConfig, Kernel, NetnsHandle, Result, link::check_ifname};

/// A link and its alias (`IFLA_IFALIAS`, `ip link set DEV alias TEXT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasedLink {
    pub index: u32,
    pub name: String,
    pub alias: String,
}

fn alias_of(msg: &LinkMessage) -> Option<AliasedLink> {
    let mut name = None;
    let mut alias = None;
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::IfAlias(a) => alias = Some(a.trim_end_matches('\0').to_string()),
            _ => {}
        }
    }
    Some(AliasedLink { index: msg.header.index, name: name?, alias: alias.filter(|a| !a.is_empty())? })
}

impl Kernel {
    /// `ip link add link PARENT name CFG.NAME netns SANDBOX address CFG.MAC mtu CFG.MTU type
    /// macvlan mode MODE`, then the sandbox end is configured as by
    /// [`NetnsHandle::configure_interface`] (addresses, up, routes). The link is born inside the
    /// sandbox (`IFLA_NET_NS_FD`) in one request: about a millisecond, where creating it here and
    /// moving it in would wait 15-20 ms for the kernel's RCU grace periods. On failure nothing is
    /// left in the sandbox.
    pub async fn create_macvlan_in_sandbox(
        &self,
        parent: &str,
        mode: MacVlanMode,
        ns: &NetnsHandle,
        cfg: &InterfaceConfig,
    ) -> Result<()> {
        cfg.validate()?;
        let parent_index = self.nl.link_index(parent).await?;
        let message = |name: &str| {
            let mut b = LinkMacVlan::new(name, parent_index, mode).setns_by_fd(ns.ns_fd());
            if let Some(mac) = cfg.mac {
                b = b.address(mac.to_vec());
            }
            if let Some(mtu) = cfg.mtu {
                b = b.mtu(mtu);
            }
            b.build()
        };
        let what =
            |name: &str| format!("create macvlan {name} on {parent} (mode {mode:?}) in netns {}", ns.path().display());
        // Kernels before 6.2 or so check a new link's name in the namespace that makes it, not in
        // the one it is born in: `eth0` there is taken by the host's own eth0. Such a kernel gets
        // the link under a name of cnet's, renamed inside the sandbox.
        let born_as = match self.nl.add_link(message(&cfg.name), what(&cfg.name)).await {
            Ok(()) => cfg.name.clone(),
            Err(e) if e.errno() == Some(libc::EEXIST) && self.nl.link_by_name(&cfg.name).await?.is_some() => {
                let temporary = format!("cnm{:08x}", rand::random::<u32>());
                self.nl.add_link(message(&temporary), what(&temporary)).await?;
                temporary
            }
            Err(e) => return Err(e),
        };
        let index = match ns.link_index(&born_as).await {
            Ok(index) => index,
            Err(e) => {
                if let Err(de) = ns.delete_link(&born_as).await {
                    tracing::warn!(link = %born_as, error = %de, "cannot delete macvlan after failed lookup");
                }
                return Err(e);
            }
        };
        let configured = if born_as == cfg.name {
            ns.configure_addressing(index, cfg).await
        } else {
            // The rename (and MAC, MTU again: harmless) then the rest, as for a moved link.
            ns.configure_index(index, &born_as, cfg).await
        };
        if let Err(e) = configured {
            if let Err(de) = ns.delete_link_index(index).await {
                tracing::warn!(link = %cfg.name, error = %de, "cannot delete macvlan after failed configuration");
            }
            return Err(e);
        }
        Ok(())
    }

    /// `ip link add link PARENT name NAME mtu MTU type macvlan mode MODE; ip link set NAME up`, in
    /// this namespace: a host-side interface on a segment whose other members are macvlan links of
    /// the same parent. An existing link of that name is left as it is (idempotent for restarts).
    pub async fn ensure_macvlan(&self, name: &str, parent: &str, mode: MacVlanMode, mtu: Option<u32>) -> Result<()> {
        check_ifname(name)?;
        if self.nl.link_by_name(name).await?.is_some() {
            return self.set_up(name).await;
        }
        let parent_index = self.nl.link_index(parent).await?;
        let mut b = LinkMacVlan::new(name, parent_index, mode).up();
        if let Some(mtu) = mtu {
            b = b.mtu(mtu);
        }
        self.nl.add_link(b.build(), format!("create macvlan {name} on {parent} (mode {mode:?})")).await
    }

    /// `ip link add link PARENT name NAME type vlan id VLAN_ID; ip link set NAME alias ALIAS up`:
    /// an 802.1q sub-interface, marked with `alias` (the kernel ignores an alias in the creation
    /// request, so it is a second request) so that its maker can tell it from anybody else's. On
    /// failure nothing is left. A kernel without 802.1q support answers `EOPNOTSUPP`
    /// ([`crate::Error::errno`]).
    pub async fn create_vlan(&self, name: &str, parent: &str, vlan_id: u16, alias: &str) -> Result<()> {
        check_ifname(name)?;
        let parent_index = self.nl.link_index(parent).await?;
        let msg = LinkVlan::new(name, parent_index, vlan_id).up().build();
        self.nl.add_link(msg, format!("create vlan {name} (id {vlan_id}) on {parent}")).await?;
        if let Err(e) = self.set_alias(name, alias).await {
            if let Err(de) = self.nl.delete_link(name).await {
                tracing::warn!(link = name, error = %de, "cannot delete vlan after failing to mark it");
            }
            return Err(e);
        }
        Ok(())
    }

    /// `ip link set NAME alias ALIAS`.
    pub async fn set_alias(&self, name: &str, alias: &str) -> Result<()> {
        check_ifname(name)?;
        let msg = LinkUnspec::new_with_name(name).alias(alias).build();
        self.nl.set_link(name, msg, format!("set link {name} alias {alias}")).await
    }

    /// The alias of the link, `None` when it has none (or the link does not exist).
    pub async fn link_alias(&self, name: &str) -> Result<Option<String>> {
        check_ifname(name)?;
        let mut stream = self.nl.handle.link().get().match_name(name).execute();
        let mut found = None;
        loop {
            match stream.try_next().await {
                Ok(Some(msg)) => found = alias_of(&msg).map(|l| l.alias),
                Ok(None) => return Ok(found),
                Err(e) if crate::error::netlink_errno(&e) == Some(nix::libc::ENODEV) => return Ok(None),
                Err(e) => return Err(self.nl.err(format!("get link {name}"), e)),
            }
        }
    }

    /// Every link whose alias starts with `prefix` (a dump: for reconciliation at start).
    pub async fn links_with_alias_prefix(&self, prefix: &str) -> Result<Vec<AliasedLink>> {
        let msgs: Vec<LinkMessage> =
            self.nl.handle.link().get().execute().try_collect().await.map_err(|e| self.nl.err("list links", e))?;
        Ok(msgs.iter().filter_map(alias_of).filter(|l| l.alias.starts_with(prefix)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_parsing() {
        let mut msg = LinkMessage::default();
        msg.header.index = 9;
        msg.attributes = vec![LinkAttribute::IfName("up0.42".into()), LinkAttribute::IfAlias("cnet:abc\0".into())];
        assert_eq!(alias_of(&msg), Some(AliasedLink { index: 9, name: "up0.42".into(), alias: "cnet:abc".into() }));
        msg.attributes = vec![LinkAttribute::IfName("up0".into())];
        assert_eq!(alias_of(&msg), None);
        msg.attributes = vec![LinkAttribute::IfName("up0".into()), LinkAttribute::IfAlias(String::new())];
        assert_eq!(alias_of(&msg), None);
    }
}
