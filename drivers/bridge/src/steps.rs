//! The steps of bringing a bridge network up and down, in order, each with its twin.

use std::collections::HashSet;

use cnet_core::{Network, Result, ResultExt};
use cnet_firewall::{Firewall, NetworkRules};
use cnet_kernel::Kernel;
use ipnetwork::IpNetwork;

use crate::{BridgeConfig, is_cnet_link_name};

/// `ip link add DEVICE type bridge; ip link set DEVICE mtu M up`
pub async fn setup_device(kernel: &Kernel, cfg: &BridgeConfig) -> Result<()> {
    kernel.ensure_bridge(&cfg.device, cfg.mtu).await.internal(format!("creating bridge {}", cfg.device))?;
    Ok(())
}

/// `ip link del DEVICE`
pub async fn teardown_device(kernel: &Kernel, cfg: &BridgeConfig) -> Result<()> {
    kernel.delete_link(&cfg.device).await.internal(format!("deleting bridge {}", cfg.device))
}

/// `ip addr add GATEWAY/PREFIX dev DEVICE` for every pool with a gateway.
pub async fn setup_gateway_addresses(kernel: &Kernel, cfg: &BridgeConfig, network: &Network) -> Result<()> {
    for pool in &network.pools {
        if pool.subnet.is_ipv6() && !network.enable_ipv6 {
            continue;
        }
        if let Some(gw) = pool.gateway {
            let addr = IpNetwork::new(gw, pool.subnet.prefix()).expect("prefix comes from a valid subnet");
            kernel.add_address(&cfg.device, addr).await.internal(format!("adding {addr} to {}", cfg.device))?;
        }
    }
    Ok(())
}

/// `sysctl net.ipv4.ip_forward=1` (and IPv6 forwarding for IPv6 networks): containers reach the
/// world, and published ports reach containers, through the host's routing.
pub fn setup_forwarding(cfg: &BridgeConfig, network: &Network) -> Result<()> {
    if !cfg.icc {
        // Traffic between two ports of one bridge is bridged, not routed: the firewall sees it
        // (and can drop it) only when the bridge hands it to netfilter, as Docker arranges too.
        for key in ["net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"] {
            cnet_kernel::set_sysctl(key, "1").map_err(|e| {
                cnet_core::Error::precondition(format!(
                    "{}=false needs the kernel's bridge netfilter (br_netfilter): setting {key}: {e}",
                    cnet_core::options::BRIDGE_ENABLE_ICC
                ))
            })?;
        }
    }
    if network.internal {
        return Ok(());
    }
    cnet_kernel::set_sysctl("net.ipv4.ip_forward", "1").internal("enabling IPv4 forwarding")?;
    if network.enable_ipv6 {
        cnet_kernel::set_sysctl("net.ipv6.conf.all.forwarding", "1").internal("enabling IPv6 forwarding")?;
    }
    Ok(())
}

pub fn firewall_rules(cfg: &BridgeConfig, network: &Network) -> NetworkRules {
    NetworkRules {
        id: network.id.clone(),
        bridge: cfg.device.clone(),
        subnets: network.pools.iter().filter(|p| p.subnet.is_ipv4() || network.enable_ipv6).map(|p| p.subnet).collect(),
        masquerade: cfg.masquerade,
        internal: network.internal,
        icc: cfg.icc,
    }
}

/// Outbound NAT, isolation from other networks, ICC and internal-ness, in one nft transaction.
pub async fn setup_firewall(firewall: &Firewall, cfg: &BridgeConfig, network: &Network) -> Result<()> {
    firewall.ensure_table().await.internal("creating the cnet nftables table")?;
    firewall
        .add_network(&firewall_rules(cfg, network))
        .await
        .internal(format!("adding firewall rules of network {}", network.name))
}

pub async fn teardown_firewall(firewall: &Firewall, cfg: &BridgeConfig, network: &Network) -> Result<()> {
    firewall
        .remove_network(&firewall_rules(cfg, network))
        .await
        .internal(format!("removing firewall rules of network {}", network.name))
}

/// After a restart: the endpoint's host veth must still hang off its bridge (re-created bridges
/// come back empty). A veth that is gone means its sandbox is gone too; the controller deals with it.
pub async fn reattach_endpoint(kernel: &Kernel, cfg: &BridgeConfig, host_veth: &str) -> Result<()> {
    let Some(link) = kernel.link_by_name(host_veth).await.internal(format!("looking up {host_veth}"))? else {
        tracing::warn!(veth = host_veth, bridge = %cfg.device, "endpoint's host veth is gone");
        return Ok(());
    };
    let bridge = kernel
        .link_by_name(&cfg.device)
        .await
        .internal(format!("looking up {}", cfg.device))?
        .ok_or_else(|| cnet_core::Error::internal(format!("bridge {} vanished during restore", cfg.device)))?;
    if link.controller != Some(bridge.index) || !link.up {
        tracing::info!(veth = host_veth, bridge = %cfg.device, "re-attaching endpoint to its bridge");
        kernel
            .set_controller(host_veth, &cfg.device)
            .await
            .internal(format!("attaching {host_veth} to {}", cfg.device))?;
    }
    Ok(())
}

/// Deletes links with cnet's names that no record claims: bridges of deleted networks, veths of
/// endpoints that no longer exist.
pub async fn remove_orphans(kernel: &Kernel, devices: &HashSet<String>, vethes: &HashSet<String>) -> Result<()> {
    for link in kernel.links().await.internal("listing links")? {
        let claimed = devices.contains(&link.name) || vethes.contains(&link.name);
        if is_cnet_link_name(&link.name) && !claimed {
            tracing::info!(link = %link.name, "removing orphan link");
            kernel.delete_link(&link.name).await.internal(format!("deleting orphan {}", link.name))?;
        }
    }
    Ok(())
}
