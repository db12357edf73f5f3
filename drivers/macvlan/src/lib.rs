//! The `macvlan` driver: each endpoint is a macvlan link on the network's parent interface
//! (`-o parent=IFACE`), born inside its sandbox, so containers sit directly on the parent's LAN
//! with addresses of its subnet and its router as their gateway. No bridge, no NAT, no firewall.
//!
//! Steps of a network, in order, each with its twin:
//! - create: parse the options; if the parent is missing and is named `IFACE.VLAN`, make the 802.1q
//!   sub-interface (`ip link add link IFACE name IFACE.VLAN type vlan id VLAN`), marked as made by
//!   cnet for this network with the link's alias (`cnet-macvlan:<network id>`).
//! - delete: delete the sub-interface if this network's mark is on it (if another macvlan network
//!   still uses it, the mark moves to that network instead).
//! - join: `SandboxInterface::MacvlanOn` (the controller makes the link inside the sandbox).
//! - restore: re-create missing sub-interfaces; delete marked ones whose network is gone.
//!
//! The mark lives in the kernel rather than in the network's record because a driver never
//! touches the store and `create_network` cannot change the record; it also lets a restart tell
//! cnet's sub-interfaces from anybody else's. macvlan links of endpoints live in the sandboxes and
//! die with them (and with their parent), so there is nothing else to restore.

pub mod config;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use cnet_core::{
    Capabilities, Driver, Endpoint, Error, JoinInfo, MacAddr, MacvlanMode, Network, NetworkId, Result, ResultExt,
    Sandbox, SandboxInterface, Scope,
};
use cnet_kernel::Kernel;

pub use config::MacvlanConfig;

/// Alias prefix of the VLAN sub-interfaces this driver made; the network id follows.
pub const ALIAS_PREFIX: &str = "cnet-macvlan:";

fn mark(network_id: &str) -> String {
    format!("{ALIAS_PREFIX}{network_id}")
}

pub struct MacvlanDriver {
    kernel: Kernel,
    /// The live macvlan networks: id -> (name, config). Checks between networks sharing a
    /// parent (passthru, who inherits a sub-interface) need them; the controller serialises calls.
    networks: Mutex<HashMap<NetworkId, (String, MacvlanConfig)>>,
}

impl MacvlanDriver {
    pub fn new(kernel: Kernel) -> Self {
        MacvlanDriver { kernel, networks: Mutex::new(HashMap::new()) }
    }

    fn others_on(&self, parent: &str, except: &str) -> Vec<(NetworkId, String, MacvlanConfig)> {
        let nets = self.networks.lock().expect("macvlan networks lock");
        let mut others: Vec<_> = nets
            .iter()
            .filter(|(id, (_, c))| id.as_str() != except && c.parent == parent)
            .map(|(id, (name, c))| (id.clone(), name.clone(), c.clone()))
            .collect();
        others.sort_by(|a, b| a.1.cmp(&b.1));
        others
    }

    /// Makes sure the parent exists: an existing link is used as is; a missing `IFACE.VLAN` is
    /// made on IFACE and marked as this network's.
    async fn ensure_parent(&self, network: &Network, cfg: &MacvlanConfig) -> Result<()> {
        let parent = &cfg.parent;
        if let Some(link) = self.kernel.link_by_name(parent).await.internal(format!("looking up {parent}"))? {
            if !link.up {
                tracing::warn!(parent = %parent, network = %network.name, "macvlan parent is down");
            }
            return Ok(());
        }
        let Some((base, vlan_id)) = cfg.vlan() else {
            return Err(Error::invalid(format!("parent interface {parent:?} (option {}) not found", config::PARENT)));
        };
        if self.kernel.link_by_name(base).await.internal(format!("looking up {base}"))?.is_none() {
            return Err(Error::invalid(format!(
                "parent interface {parent:?} (option {}) not found, nor interface {base:?} to make VLAN {vlan_id} on",
                config::PARENT
            )));
        }
        match self.kernel.create_vlan(parent, base, vlan_id, &mark(&network.id)).await {
            Ok(()) => {
                tracing::info!(link = %parent, network = %network.name, "created 802.1q sub-interface");
                Ok(())
            }
            Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => Err(Error::precondition(format!(
                "cannot create the 802.1q sub-interface {parent:?} for option {}: this kernel has no 802.1q \
                 VLAN support (creating a link of kind vlan: operation not supported)",
                config::PARENT
            ))),
            // A VLAN device cannot be up while its base is down (the kernel's vlan_dev_open), and
            // unlike an existing parent that is down, this one would have to be made down and
            // brought up by hand later: say what to do instead.
            Err(e) if e.errno() == Some(libc::ENETDOWN) => Err(Error::precondition(format!(
                "cannot create the 802.1q sub-interface {parent:?} for option {}: interface {base:?} \
                 is down (bring it up first: ip link set {base} up)",
                config::PARENT
            ))),
            Err(e) => Err(Error::internal(format!("creating the 802.1q sub-interface {parent:?}: {e}"))),
        }
    }

    /// Deletes the parent if it carries this network's mark, or hands the mark to another macvlan
    /// network that still uses it.
    async fn release_parent(&self, network: &Network, cfg: &MacvlanConfig) -> Result<()> {
        let parent = &cfg.parent;
        let alias = self.kernel.link_alias(parent).await.internal(format!("looking up {parent}"))?;
        if alias.as_deref() != Some(mark(&network.id).as_str()) {
            return Ok(());
        }
        match self.others_on(parent, &network.id).first() {
            Some((id, name, _)) => {
                tracing::info!(link = %parent, network = %name, "802.1q sub-interface now belongs to network");
                self.kernel.set_alias(parent, &mark(id)).await.internal(format!("marking {parent}"))
            }
            None => {
                tracing::info!(link = %parent, network = %network.name, "deleting 802.1q sub-interface");
                self.kernel.delete_link(parent).await.internal(format!("deleting {parent}"))
            }
        }
    }
}

#[async_trait]
impl Driver for MacvlanDriver {
    fn name(&self) -> &'static str {
        "macvlan"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Local,
            needs_ipam: true,
            needs_sandbox_netns: true,
            user_creatable: true,
            interface_goes_with_endpoint: false,
        }
    }

    fn validate_network(&self, network: &Network) -> Result<()> {
        let cfg = MacvlanConfig::from_network(network)?;
        // passthru gives the parent to a single macvlan link: it cannot share it.
        for (_, name, other) in self.others_on(&cfg.parent, &network.id) {
            if cfg.mode == MacvlanMode::Passthru || other.mode == MacvlanMode::Passthru {
                return Err(Error::precondition(format!(
                    "macvlan network {name} already uses parent {} in mode {}: a passthru network cannot share \
                     its parent",
                    cfg.parent,
                    other.mode.as_str()
                )));
            }
        }
        Ok(())
    }

    async fn create_network(&self, network: &Network) -> Result<()> {
        let cfg = MacvlanConfig::from_network(network)?;
        self.ensure_parent(network, &cfg).await?;
        self.networks.lock().expect("macvlan networks lock").insert(network.id.clone(), (network.name.clone(), cfg));
        Ok(())
    }

    async fn delete_network(&self, network: &Network) -> Result<()> {
        let cfg = MacvlanConfig::from_network(network)?;
        self.networks.lock().expect("macvlan networks lock").remove(&network.id);
        self.release_parent(network, &cfg).await
    }

    async fn create_endpoint(&self, network: &Network, endpoint: &mut Endpoint) -> Result<()> {
        let cfg = MacvlanConfig::from_network(network)?;
        if cfg.mode == MacvlanMode::Passthru {
            // A passthru link keeps its parent's MAC whatever it is asked for: record that one.
            let parent = &cfg.parent;
            let link =
                self.kernel.link_by_name(parent).await.internal(format!("looking up {parent}"))?.ok_or_else(|| {
                    Error::precondition(format!("parent interface {parent:?} of network {} is gone", network.name))
                })?;
            if let Some(mac) = link.mac {
                endpoint.mac = MacAddr::new(mac);
            }
        }
        Ok(())
    }

    async fn join(&self, network: &Network, _endpoint: &Endpoint, _sandbox: &Sandbox) -> Result<JoinInfo> {
        let cfg = MacvlanConfig::from_network(network)?;
        // An internal network has no way out, so its containers get no default route.
        let gateway = |p: Option<&cnet_core::IpamPool>| if network.internal { None } else { p.and_then(|p| p.gateway) };
        Ok(JoinInfo {
            interface: Some(SandboxInterface::MacvlanOn { parent: cfg.parent, mode: cfg.mode }),
            mtu: cfg.mtu,
            gateway_v4: gateway(network.pool_v4()),
            gateway_v6: if network.enable_ipv6 { gateway(network.pool_v6()) } else { None },
            static_routes: vec![],
        })
    }

    async fn restore(&self, networks: &[Network], _endpoints: &[Endpoint]) -> Result<()> {
        let mut configs = Vec::new();
        for network in networks {
            match MacvlanConfig::from_network(network) {
                Ok(cfg) => configs.push((network, cfg)),
                Err(e) => tracing::warn!(network = %network.name, error = %e, "macvlan network with bad options"),
            }
        }
        *self.networks.lock().expect("macvlan networks lock") =
            configs.iter().map(|(n, c)| (n.id.clone(), (n.name.clone(), c.clone()))).collect();

        // Missing parents: re-create VLAN sub-interfaces (once per parent); anything else the
        // user must bring back, endpoints cannot connect meanwhile.
        for (network, cfg) in &configs {
            if let Err(e) = self.ensure_parent(network, cfg).await {
                tracing::warn!(network = %network.name, parent = %cfg.parent, error = %e, "macvlan parent unavailable");
            }
        }

        // Sub-interfaces cnet made: keep those a network uses (moving the mark to a user if its
        // maker is gone), delete the rest.
        for link in self.kernel.links_with_alias_prefix(ALIAS_PREFIX).await.internal("listing links")? {
            let owner = &link.alias[ALIAS_PREFIX.len()..];
            let users: Vec<&Network> = configs.iter().filter(|(_, c)| c.parent == link.name).map(|(n, _)| *n).collect();
            if users.iter().any(|n| n.id == owner) {
                continue;
            }
            if let Some(user) = users.first() {
                self.kernel.set_alias(&link.name, &mark(&user.id)).await.internal(format!("marking {}", link.name))?;
            } else {
                tracing::info!(link = %link.name, "removing orphan 802.1q sub-interface");
                self.kernel.delete_link(&link.name).await.internal(format!("deleting orphan {}", link.name))?;
            }
        }
        Ok(())
    }
}
