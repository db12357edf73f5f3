//! The steps of bringing a bridge network up and down, in order, each with its twin.

use std::collections::HashSet;

use std::net::IpAddr;

use cnet_core::{Endpoint, Network, Protocol, Result, ResultExt};
use cnet_firewall::{Firewall, NetworkRules, PortRule, Proto};
use cnet_kernel::Kernel;
use cnet_ports::PublishedPorts;
use ipnetwork::IpNetwork;

use crate::config::GatewayMode;
use crate::{BridgeConfig, is_cnet_link_name};

/// What a bridge cnet made for a network carries as its alias (`cnet-bridge:<network id>`): only
/// such a bridge, or one with a name only cnet gives (`br-<id12>`), is deleted with its network.
pub const ALIAS_PREFIX: &str = "cnet-bridge:";

fn mark(network: &Network) -> String {
    format!("{ALIAS_PREFIX}{}", network.id)
}

/// Whether cnet made the bridge `device` of `network` (and so may delete it): its name is one only
/// cnet gives, or its alias marks it as made for this network. A bridge the user named with
/// `com.docker.network.bridge.name` and made beforehand is the user's.
pub fn owns_device(device: &str, alias: Option<&str>, network: &Network) -> bool {
    is_cnet_link_name(device) || alias == Some(mark(network).as_str())
}

/// `ip link add DEVICE type bridge; ip link set DEVICE mtu M up; ip link set DEVICE alias
/// cnet-bridge:<id>`. An existing bridge of that name (the user's, named by `bridge.name`) is used
/// as it is; any other link of that name is refused and left untouched.
pub async fn setup_device(kernel: &Kernel, cfg: &BridgeConfig, network: &Network) -> Result<()> {
    let device = &cfg.device;
    // A bridge of that name that a removed network left to the deleter goes first.
    kernel.deleter().wait_gone(device).await;
    let existing = kernel.link_by_name(device).await.internal(format!("looking up {device}"))?;
    if let Some(link) = &existing
        && link.kind.as_deref() != Some("bridge")
    {
        return Err(cnet_core::Error::precondition(format!(
            "{}={device}: link {device} exists and is a {} link, not a bridge (cnet leaves it alone)",
            cnet_core::options::BRIDGE_NAME,
            link.kind.as_deref().unwrap_or("device")
        )));
    }
    kernel.ensure_bridge(device, cfg.mtu).await.internal(format!("creating bridge {device}"))?;
    if existing.is_none() {
        kernel.set_alias(device, &mark(network)).await.internal(format!("marking bridge {device} as cnet's"))?;
    }
    Ok(())
}

/// `ip link del DEVICE` for a bridge cnet made ([`owns_device`]); from a bridge of the user's only
/// cnet's gateway addresses go (the rules go with [`teardown_firewall`]).
pub async fn teardown_device(kernel: &Kernel, cfg: &BridgeConfig, network: &Network) -> Result<()> {
    let device = &cfg.device;
    let Some(link) = kernel.link_by_name(device).await.internal(format!("looking up {device}"))? else {
        return Ok(());
    };
    let alias = kernel.link_alias(device).await.internal(format!("looking up {device}"))?;
    if link.kind.as_deref() == Some("bridge") && owns_device(device, alias.as_deref(), network) {
        // The deletion itself waits for the kernel (tens of ms) off the reply path; the gateway
        // addresses go now, so a network made next on the same subnet has its routes to itself.
        remove_gateway_addresses(kernel, cfg, network).await?;
        return kernel.deleter().delete_later(device).internal(format!("deleting bridge {device}"));
    }
    if link.kind.as_deref() == Some("bridge") {
        remove_gateway_addresses(kernel, cfg, network).await?;
        tracing::info!(bridge = %device, network = %network.name, "left the user's bridge in place");
    }
    Ok(())
}

async fn remove_gateway_addresses(kernel: &Kernel, cfg: &BridgeConfig, network: &Network) -> Result<()> {
    let device = &cfg.device;
    for addr in gateway_addresses(cfg, network) {
        kernel.delete_address(device, addr).await.internal(format!("removing {addr} from {device}"))?;
    }
    Ok(())
}

/// The gateway addresses a network puts on its bridge (with the subnet's prefix): none of a family
/// in gateway mode isolated.
fn gateway_addresses(cfg: &BridgeConfig, network: &Network) -> Vec<IpNetwork> {
    network
        .pools
        .iter()
        .filter(|pool| pool.subnet.is_ipv4() || network.enable_ipv6)
        .filter(|pool| cfg.gateway(pool.subnet.is_ipv4()) != GatewayMode::Isolated)
        .filter_map(|pool| pool.gateway.map(|gw| (gw, pool.subnet.prefix())))
        .map(|(gw, prefix)| IpNetwork::new(gw, prefix).expect("prefix comes from a valid subnet"))
        .collect()
}

/// `ip addr add GATEWAY/PREFIX dev DEVICE` for every pool with a gateway.
pub async fn setup_gateway_addresses(kernel: &Kernel, cfg: &BridgeConfig, network: &Network) -> Result<()> {
    for addr in gateway_addresses(cfg, network) {
        kernel.add_address(&cfg.device, addr).await.internal(format!("adding {addr} to {}", cfg.device))?;
    }
    Ok(())
}

/// The gateways a container's default routes go via: each family's gateway (IPv6 only on a
/// network with IPv6), none on an internal network, which has no way out. Shared by every driver
/// whose network's gateway lives on a device these steps set up (the bridge, an overlay's host leg).
pub fn default_gateways(network: &Network) -> (Option<IpAddr>, Option<IpAddr>) {
    if network.internal {
        return (None, None);
    }
    let v4 = network.pool_v4().and_then(|p| p.gateway);
    let v6 = if network.enable_ipv6 { network.pool_v6().and_then(|p| p.gateway) } else { None };
    (v4, v6)
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
    // Published ports reached from the host on 127.0.0.1 are DNATed out of the bridge with their
    // loopback source (masqueraded on the way out); the kernel routes such packets only with this.
    cnet_kernel::set_interface_sysctl("ipv4", &cfg.device, "route_localnet", "1")
        .internal(format!("setting route_localnet on {}", cfg.device))?;
    if network.enable_ipv6 {
        cnet_kernel::set_sysctl("net.ipv6.conf.all.forwarding", "1").internal("enabling IPv6 forwarding")?;
    }
    Ok(())
}

pub fn firewall_rules(cfg: &BridgeConfig, network: &Network) -> NetworkRules {
    NetworkRules {
        id: network.id.to_string(),
        bridge: cfg.device.clone(),
        subnets: network.pools.iter().filter(|p| p.subnet.is_ipv4() || network.enable_ipv6).map(|p| p.subnet).collect(),
        masquerade: cfg.masquerade,
        internal: network.internal,
        icc: cfg.icc,
        gateway_v4: cfg.gateway_v4,
        gateway_v6: cfg.gateway_v6,
        trusted_interfaces: cfg.trusted_interfaces.clone(),
    }
}

/// The DNAT rules of an endpoint's published ports. A binding without a host address (after the
/// network's `host_binding_ipv4`) is published on every host address of each family the endpoint
/// has an address of; 0.0.0.0 and :: on every address of theirs; any other address on itself,
/// except ::1, which no DNAT can reach a container from (cnetd relays it, see
/// [`cnet_core::portspec::is_relayed`]). In a family whose gateway mode is routed the host address
/// only picks the family and the host port is not used: the container port is opened instead.
pub fn port_rules(cfg: &BridgeConfig, endpoint: &Endpoint) -> Vec<PortRule> {
    let owner = cnet_core::portspec::holder_name(endpoint).to_string();
    let dest4 = endpoint.ipv4.map(|a| a.ip());
    let dest6 = endpoint.ipv6.map(|a| a.ip());
    let mut rules = Vec::new();
    for b in endpoint.ports.iter().filter(|b| !cnet_core::portspec::is_relayed(b)) {
        let proto = match b.protocol {
            Protocol::Tcp => Proto::Tcp,
            Protocol::Udp => Proto::Udp,
            Protocol::Sctp => Proto::Sctp,
        };
        let host = b.host_ip.or(cfg.host_binding_ipv4.map(IpAddr::V4));
        let targets: Vec<(Option<IpAddr>, Option<IpAddr>)> = match host {
            None => vec![(None, dest4), (None, dest6)],
            Some(a) if a.is_unspecified() => vec![(None, if a.is_ipv4() { dest4 } else { dest6 })],
            Some(a) => vec![(Some(a), if a.is_ipv4() { dest4 } else { dest6 })],
        };
        for (host_addr, dest) in targets {
            if let Some(dest) = dest {
                let routed = cfg.gateway(dest.is_ipv4()) == GatewayMode::Routed;
                rules.push(PortRule {
                    proto,
                    host_addr: if routed { None } else { host_addr },
                    host_port: b.host_port,
                    dest,
                    dest_port: b.container_port,
                    owner: owner.clone(),
                    routed,
                });
            }
        }
    }
    rules
}

/// The endpoint's published ports (DNAT elements, see [`port_rules`], and relays on ::1); an
/// internal network refuses them.
pub async fn publish_ports(
    ports: &PublishedPorts,
    cfg: &BridgeConfig,
    network: &Network,
    endpoint: &Endpoint,
) -> Result<()> {
    if endpoint.ports.is_empty() {
        return Ok(());
    }
    if network.internal {
        return Err(cnet_core::Error::invalid(format!(
            "network {} is internal: it cannot publish ports",
            network.name
        )));
    }
    ports.publish(&port_rules(cfg, endpoint), endpoint).await
}

/// After a restart: [`publish_ports`] again (ports of an internal network were never published),
/// where a ::1 relay that cannot start again is logged rather than fatal.
pub async fn republish_ports(
    ports: &PublishedPorts,
    cfg: &BridgeConfig,
    network: &Network,
    endpoint: &Endpoint,
) -> Result<()> {
    if endpoint.ports.is_empty() || network.internal {
        return Ok(());
    }
    ports.republish(&port_rules(cfg, endpoint), endpoint).await
}

/// The twin of [`publish_ports`].
pub async fn unpublish_ports(ports: &PublishedPorts, cfg: &BridgeConfig, endpoint: &Endpoint) -> Result<()> {
    if endpoint.ports.is_empty() {
        return Ok(());
    }
    ports.unpublish(&port_rules(cfg, endpoint), endpoint).await
}

/// Outbound NAT, isolation from other networks, ICC and internal-ness: queued, to reach the table
/// in one nft transaction off the reply path (a run of nft, some 4 ms of a create's 10), at the
/// latest when the first endpoint joins ([`rules_in_place`]). Until then the bridge has no port:
/// nothing can pass it that the rules would judge.
pub async fn setup_firewall(firewall: &Firewall, cfg: &BridgeConfig, network: &Network) -> Result<()> {
    firewall
        .add_network_later(&firewall_rules(cfg, network))
        .await
        .internal(format!("adding firewall rules of network {}", network.name))
}

/// Puts queued firewall changes in the table before an endpoint joins: a container must never be
/// on a bridge whose isolation, NAT or internal-ness is not in force yet.
pub async fn rules_in_place(firewall: &Firewall, network: &Network) -> Result<()> {
    firewall
        .flush_network(network.id.as_ref())
        .await
        .internal(format!("putting the firewall rules of network {} in place", network.name))
}

/// The rules go off the reply path (a run of nft and the kernel's commit, some 10-20 ms): nothing
/// can match them once the network's bridge and subnets are gone (see
/// `Firewall::remove_network_later`).
pub async fn teardown_firewall(firewall: &Firewall, cfg: &BridgeConfig, network: &Network) -> Result<()> {
    firewall
        .remove_network_later(&firewall_rules(cfg, network))
        .await
        .internal(format!("removing firewall rules of network {}", network.name))
}

/// After a restart: the endpoint's host veth must still hang off its bridge (re-created bridges
/// come back empty), up and in hairpin mode. A veth that is gone means its sandbox is gone too; the controller deals with it.
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
    // A re-attached port starts without hairpin mode (and ports made by older versions never had
    // it): a container reaching its own published port needs it.
    kernel.set_bridge_port_up_hairpin(host_veth).await.internal(format!("setting hairpin mode on {host_veth}"))
}

/// Deletes links cnet made that no record claims: bridges of deleted networks (with cnet's names,
/// or with a name of the user's and cnet's mark: a `network create` cut short between making the
/// bridge and recording the network), veths of endpoints that no longer exist.
pub async fn remove_orphans(kernel: &Kernel, devices: &HashSet<String>, vethes: &HashSet<String>) -> Result<()> {
    for link in kernel.links().await.internal("listing links")? {
        if devices.contains(&link.name) || vethes.contains(&link.name) {
            continue;
        }
        let orphan = is_cnet_link_name(&link.name)
            || (link.kind.as_deref() == Some("bridge")
                && kernel
                    .link_alias(&link.name)
                    .await
                    .internal(format!("looking up {}", link.name))?
                    .is_some_and(|alias| alias.starts_with(ALIAS_PREFIX)));
        if orphan {
            tracing::info!(link = %link.name, "removing orphan link");
            kernel.delete_link(&link.name).await.internal(format!("deleting orphan {}", link.name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::net;

    #[test]
    fn default_gateways_per_family() {
        let pool = |s: &str| cnet_core::ipam::build_pool(&Default::default(), s.parse().unwrap(), true).unwrap();
        let mut n = net(&[]);
        n.pools = vec![pool("10.1.0.0/24"), pool("fd00:1::/64")];
        let v4: IpAddr = "10.1.0.1".parse().unwrap();
        let v6: IpAddr = "fd00:1::1".parse().unwrap();
        assert_eq!(default_gateways(&n), (Some(v4), None), "no IPv6 route without --ipv6");
        n.enable_ipv6 = true;
        assert_eq!(default_gateways(&n), (Some(v4), Some(v6)));
        n.internal = true;
        assert_eq!(default_gateways(&n), (None, None), "an internal network has no way out");
    }
}
