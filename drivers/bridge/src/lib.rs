//! The `bridge` driver: one Linux bridge per network (`cnet0` for the default network,
//! `br-<netid12>` otherwise), one veth pair per endpoint with its host end on the bridge, outbound
//! NAT and isolation in the firewall. Bringing a network up is a list of named steps (see
//! [`steps`]), each undone by its twin, so reading `create_network` tells what reaches the kernel.
//! It never touches the store: it finds its objects again from the records the controller hands it.

pub mod config;
pub mod steps;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use cnet_core::{
    Capabilities, Driver, Endpoint, JoinInfo, Network, Result, ResultExt, Sandbox, SandboxInterface, Scope,
};
use cnet_firewall::Firewall;
use cnet_kernel::Kernel;
use cnet_ports::PublishedPorts;

pub use config::BridgeConfig;

/// Key in `Endpoint::driver_data` of the host end of the endpoint's veth pair.
pub const HOST_VETH: &str = "host_veth";

pub struct BridgeDriver {
    kernel: Kernel,
    firewall: Arc<Firewall>,
    ports: Arc<PublishedPorts>,
}

impl BridgeDriver {
    /// `ports` publishes containers' ports; it wraps the same `firewall`.
    pub fn new(kernel: Kernel, firewall: Arc<Firewall>, ports: Arc<PublishedPorts>) -> Self {
        BridgeDriver { kernel, firewall, ports }
    }
}

/// Host-side veth names are `veth<7 hex>`: recognisable, so a restart can tell cnet's orphans from
/// anybody else's links.
fn host_veth_name() -> String {
    format!("veth{}", &cnet_core::id::new_id()[..7])
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True for link names only cnet makes: `br-<12 hex>`, `veth<7 hex>`.
pub fn is_cnet_link_name(name: &str) -> bool {
    name.strip_prefix("br-").is_some_and(|h| is_hex(h, 12)) || name.strip_prefix("veth").is_some_and(|h| is_hex(h, 7))
}

#[async_trait]
impl Driver for BridgeDriver {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Local,
            needs_ipam: true,
            needs_sandbox_netns: true,
            user_creatable: true,
            interface_goes_with_endpoint: true,
        }
    }

    fn validate_network(&self, network: &Network) -> Result<()> {
        BridgeConfig::from_network(network).map(|_| ())
    }

    async fn create_network(&self, network: &Network) -> Result<()> {
        let cfg = BridgeConfig::from_network(network)?;
        let made = async {
            steps::setup_device(&self.kernel, &cfg, network).await?;
            steps::setup_gateway_addresses(&self.kernel, &cfg, network).await?;
            steps::setup_forwarding(&cfg, network)?;
            steps::setup_firewall(&self.firewall, &cfg, network).await
        }
        .await;
        if let Err(e) = made {
            // Nothing half-made: undo every step, ignoring what was never done.
            let _ = self.delete_network(network).await;
            return Err(e);
        }
        Ok(())
    }

    async fn delete_network(&self, network: &Network) -> Result<()> {
        let cfg = BridgeConfig::from_network(network)?;
        steps::teardown_firewall(&self.firewall, &cfg, network).await?;
        steps::teardown_device(&self.kernel, &cfg, network).await
    }

    async fn create_endpoint(&self, _network: &Network, endpoint: &mut Endpoint) -> Result<()> {
        // The pair itself is made at join, straight into the sandbox.
        endpoint.driver_data.insert(HOST_VETH.into(), host_veth_name());
        Ok(())
    }

    async fn delete_endpoint(&self, _network: &Network, endpoint: &Endpoint) -> Result<()> {
        // The pair goes with its host end, off the reply path (it costs the kernel tens of ms);
        // gone already after a disconnect, which deleted the container's end.
        if let Some(host) = endpoint.driver_data.get(HOST_VETH) {
            self.kernel.deleter().delete_later(host).internal(format!("deleting {host}"))?;
        }
        Ok(())
    }

    async fn join(&self, network: &Network, endpoint: &Endpoint, _sandbox: &Sandbox) -> Result<JoinInfo> {
        let cfg = BridgeConfig::from_network(network)?;
        let host = endpoint
            .driver_data
            .get(HOST_VETH)
            .ok_or_else(|| cnet_core::Error::internal(format!("endpoint {} has no host veth recorded", endpoint.id)))?;
        steps::rules_in_place(&self.firewall, network).await?;
        let (gateway_v4, gateway_v6) = steps::default_gateways(network);
        Ok(JoinInfo {
            interface: Some(SandboxInterface::VethOnBridge { host: host.clone(), bridge: cfg.device }),
            mtu: cfg.mtu,
            gateway_v4,
            gateway_v6,
            static_routes: vec![],
        })
    }

    async fn program_external_connectivity(&self, network: &Network, endpoint: &Endpoint) -> Result<()> {
        steps::publish_ports(&self.ports, &BridgeConfig::from_network(network)?, network, endpoint).await
    }

    async fn revoke_external_connectivity(&self, network: &Network, endpoint: &Endpoint) -> Result<()> {
        steps::unpublish_ports(&self.ports, &BridgeConfig::from_network(network)?, endpoint).await
    }

    /// The firewall is in its restore (see `Firewall::begin_restore`): the same steps as a create
    /// and a publish describe this driver's rules, and the controller applies every driver's at
    /// once when all have restored.
    async fn restore(&self, networks: &[Network], endpoints: &[Endpoint]) -> Result<()> {
        let mut devices = HashSet::new();
        for network in networks {
            let cfg = BridgeConfig::from_network(network)?;
            steps::setup_device(&self.kernel, &cfg, network).await?;
            steps::setup_gateway_addresses(&self.kernel, &cfg, network).await?;
            steps::setup_forwarding(&cfg, network)?;
            steps::setup_firewall(&self.firewall, &cfg, network).await?;
            devices.insert(cfg.device.clone());
        }
        for endpoint in endpoints {
            let Some(network) = networks.iter().find(|n| n.id == endpoint.network_id) else { continue };
            steps::republish_ports(&self.ports, &BridgeConfig::from_network(network)?, network, endpoint).await?;
        }

        let mut vethes = HashSet::new();
        for endpoint in endpoints {
            let Some(network) = networks.iter().find(|n| n.id == endpoint.network_id) else { continue };
            let cfg = BridgeConfig::from_network(network)?;
            if let Some(host) = endpoint.driver_data.get(HOST_VETH) {
                vethes.insert(host.clone());
                steps::reattach_endpoint(&self.kernel, &cfg, host).await?;
            }
        }
        steps::remove_orphans(&self.kernel, &devices, &vethes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bridges_cnet_made_are_cnet_s_to_delete() {
        let network = crate::config::tests::net(&[]);
        let mark = format!("{}{}", steps::ALIAS_PREFIX, network.id);
        assert!(steps::owns_device("br-0123456789ab", None, &network), "a name only cnet gives");
        assert!(steps::owns_device("labbr0", Some(&mark), &network), "marked when cnet made it");
        assert!(!steps::owns_device("labbr0", None, &network), "the user's bridge");
        let other = format!("{}{}", steps::ALIAS_PREFIX, "cd".repeat(32));
        assert!(!steps::owns_device("labbr0", Some(&other), &network), "made for another network");
        assert!(!steps::owns_device("labbr0", Some("something else"), &network));
    }

    #[test]
    fn cnet_link_names() {
        assert!(is_cnet_link_name("br-0123456789ab"));
        assert!(is_cnet_link_name("veth01234ab"));
        assert!(!is_cnet_link_name("br-lan"));
        assert!(!is_cnet_link_name("veth0"));
        assert!(!is_cnet_link_name("docker0"));
        let h = host_veth_name();
        assert!(is_cnet_link_name(&h) && h.len() <= 15);
    }
}
