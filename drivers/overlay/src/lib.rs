//! The `overlay` driver: one layer-2 segment per network stretched across hosts with VXLAN.
//!
//! On each host a network that has local endpoints is a VXLAN device `vx-<netid12>` (UDP 4789,
//! learning off, ARP answered by the device itself from its neighbour table) whose local segment is
//! made of macvlan links in bridge mode: each container's `eth0` is a macvlan of `vx-`, born inside
//! its sandbox, and the host's own leg on the segment is one more macvlan, `ov-<netid12>`. Every
//! remote endpoint is one static FDB entry (its MAC -> its host's VTEP) and one permanent neighbour
//! entry (its IP -> its MAC) on the VXLAN device: no flooding, no multicast, no learning. Those
//! entries come from the cluster store, which cnetd's controller watches and hands to every global
//! driver through the Driver trait's remote-endpoint hooks; this driver never speaks to the store
//! itself, and the controller never names it.
//!
//! Why macvlan and not a bridge with veth ports: a frame between two hosts then crosses no veth and
//! no bridge on either side (macvlan hands it straight to the VXLAN device, and the VXLAN device's
//! receive handler hands it straight to the container's link). With a bridge and veths, container to
//! container across two hosts reached 80-85 % of the underlay's iperf3 throughput here; with macvlan
//! 93 % (docs/architecture.md).
//!
//! The host leg `ov-` plays the part a bridge device plays for a bridge network, so the local
//! segment is set up with the bridge driver's own steps on it: the gateway address, the same
//! firewall isolation (overlay networks are isolated from each other and from bridge networks), the
//! same NAT and port publishing. The way out is a *distributed gateway*: each host's `ov-` holds the
//! network's gateway address, so a container's default route leads to its own host, which
//! masquerades it onto the host's uplink. ARP for the gateway never crosses the overlay (the VXLAN
//! device answers only from its neighbour table and has no flood entry), so the same address on
//! every host does not conflict.
//!
//! The devices exist only while the network has a local endpoint: made by the first
//! `create_endpoint`, removed by the last `delete_endpoint`.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use cnet_core::options::{self, parse_mtu};
use cnet_core::{
    Capabilities, Driver, Endpoint, EndpointId, Error, JoinInfo, Network, NetworkId, RemoteEndpoint, Result, ResultExt,
    Sandbox, SandboxInterface, Scope,
};
use cnet_driver_bridge::{BridgeConfig, config, steps};
use cnet_firewall::Firewall;
use cnet_kernel::{Kernel, Link, VxlanSpec};
use cnet_ports::PublishedPorts;
use tokio::sync::Mutex;

/// IANA's VXLAN port.
pub const VXLAN_PORT: u16 = 4789;
/// Outer Ethernet + IP + UDP + VXLAN headers.
pub const VXLAN_OVERHEAD: u32 = 50;
pub const ENCRYPTED_OPTION: &str = "encrypted";

/// Options of an overlay network; the gateway modes and trusted interfaces are the bridge
/// driver's, with the same meaning for this host's leg of the network.
const KNOWN: &[&str] = &[
    options::OVERLAY_VNI,
    options::DRIVER_MTU,
    ENCRYPTED_OPTION,
    options::BRIDGE_GATEWAY_MODE_IPV4,
    options::BRIDGE_GATEWAY_MODE_IPV6,
    options::BRIDGE_TRUSTED_HOST_INTERFACES,
];

/// A remote endpoint, as the VXLAN device must know it (its node's address is the VTEP).
type Peer = RemoteEndpoint;

#[derive(Default)]
struct NetState {
    /// Local endpoints: the devices exist while this is not empty.
    local: HashSet<EndpointId>,
    /// Remote endpoints by endpoint id, programmed while the devices exist.
    peers: HashMap<String, Peer>,
}

pub struct OverlayDriver {
    kernel: Kernel,
    firewall: Arc<Firewall>,
    ports: Arc<PublishedPorts>,
    /// This host's VTEP address and the MTU of the link that holds it.
    vtep: IpAddr,
    underlay_mtu: u32,
    underlay_link: String,
    nets: Mutex<HashMap<NetworkId, NetState>>,
}

fn short(network: &Network) -> &str {
    network.short_id()
}

/// The host's leg on the network's segment (a macvlan of the VXLAN device, holding the gateway).
pub fn host_leg_name(network: &Network) -> String {
    format!("ov-{}", short(network))
}

pub fn vxlan_name(network: &Network) -> String {
    format!("vx-{}", short(network))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Link names only this driver makes.
pub fn is_overlay_link_name(name: &str) -> bool {
    name.strip_prefix("ov-").or_else(|| name.strip_prefix("vx-")).is_some_and(|h| is_hex(h, 12))
}

/// Whether this kernel could carry encrypted overlay traffic at all.
fn encryption_support() -> Option<&'static str> {
    if std::path::Path::new("/proc/net/xfrm_stat").exists() {
        Some("IPsec (XFRM)")
    } else if std::path::Path::new("/sys/module/wireguard").exists() {
        Some("WireGuard")
    } else {
        None
    }
}

impl OverlayDriver {
    /// `vtep`: this host's advertised address; `underlay`: the link that holds it; `ports`
    /// publishes containers' ports (it wraps the same `firewall`).
    pub fn new(
        kernel: Kernel,
        firewall: Arc<Firewall>,
        ports: Arc<PublishedPorts>,
        vtep: IpAddr,
        underlay: &Link,
    ) -> OverlayDriver {
        let underlay_mtu = underlay.mtu.unwrap_or(1500);
        tracing::info!(%vtep, underlay = %underlay.name, underlay_mtu, "overlay driver ready");
        OverlayDriver {
            kernel,
            firewall,
            ports,
            vtep,
            underlay_mtu,
            underlay_link: underlay.name.clone(),
            nets: Mutex::new(HashMap::new()),
        }
    }

    /// The MTU of containers on `network`: its option, else the underlay's minus VXLAN's headers.
    pub fn mtu(&self, network: &Network) -> Result<u32> {
        match network.option(options::DRIVER_MTU) {
            Some(v) => parse_mtu(options::DRIVER_MTU, v),
            None => Ok(self.underlay_mtu.saturating_sub(VXLAN_OVERHEAD).max(68)),
        }
    }

    fn bridge_config(&self, network: &Network) -> Result<BridgeConfig> {
        Ok(BridgeConfig {
            device: host_leg_name(network),
            mtu: Some(self.mtu(network)?),
            icc: true,
            masquerade: !network.internal,
            host_binding_ipv4: None,
            gateway_v4: config::gateway_mode(network, options::BRIDGE_GATEWAY_MODE_IPV4)?,
            gateway_v6: config::gateway_mode(network, options::BRIDGE_GATEWAY_MODE_IPV6)?,
            trusted_interfaces: config::trusted_interfaces(network)?,
        })
    }

    fn vni(network: &Network) -> Result<u32> {
        options::vni_of(network)
            .ok_or_else(|| Error::internal(format!("overlay network {} has no VNI recorded", network.name)))
    }

    /// Makes the VXLAN device, the host's leg with the gateway address, and the firewall rules,
    /// and programs every known peer. Idempotent: what exists is kept.
    async fn bring_up(&self, network: &Network, peers: &HashMap<String, Peer>) -> Result<()> {
        let cfg = self.bridge_config(network)?;
        let vx = vxlan_name(network);
        let made = async {
            let spec = VxlanSpec {
                name: vx.clone(),
                vni: Self::vni(network)?,
                local: self.vtep,
                port: VXLAN_PORT,
                underlay: Some(self.underlay_link.clone()),
                mtu: cfg.mtu,
            };
            self.kernel.create_vxlan(&spec).await.internal(format!("creating {vx}"))?;
            self.kernel.set_up(&vx).await.internal(format!("bringing {vx} up"))?;
            self.kernel
                .ensure_macvlan(&cfg.device, &vx, cnet_kernel::MacVlanMode::Bridge, cfg.mtu)
                .await
                .internal(format!("creating {} on {vx}", cfg.device))?;
            steps::setup_gateway_addresses(&self.kernel, &cfg, network).await?;
            steps::setup_forwarding(&cfg, network)?;
            steps::setup_firewall(&self.firewall, &cfg, network).await?;
            for peer in peers.values() {
                self.program(&vx, peer).await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = made {
            let _ = self.bring_down(network).await;
            return Err(e);
        }
        tracing::info!(network = %network.name, vxlan = %vx, peers = peers.len(), "overlay network up on this host");
        Ok(())
    }

    async fn bring_down(&self, network: &Network) -> Result<()> {
        let cfg = self.bridge_config(network)?;
        let vx = vxlan_name(network);
        steps::teardown_firewall(&self.firewall, &cfg, network).await?;
        // The host leg and the containers' links go with their parent.
        self.kernel.delete_link(&cfg.device).await.internal(format!("deleting {}", cfg.device))?;
        self.kernel.delete_link(&vx).await.internal(format!("deleting {vx}"))?;
        tracing::info!(network = %network.name, "overlay network down on this host (no local endpoint left)");
        Ok(())
    }

    async fn program(&self, vx: &str, peer: &Peer) -> Result<()> {
        self.kernel
            .add_vxlan_fdb(vx, peer.mac, peer.node_address)
            .await
            .internal(format!("adding FDB entry on {vx}"))?;
        self.kernel.add_neighbour(vx, peer.ip, peer.mac).await.internal(format!("adding neighbour {} on {vx}", peer.ip))
    }

    async fn unprogram(&self, vx: &str, peer: &Peer) -> Result<()> {
        self.kernel.del_neighbour(vx, peer.ip).await.internal(format!("removing neighbour {} on {vx}", peer.ip))?;
        self.kernel.del_vxlan_fdb(vx, peer.mac, peer.node_address).await.internal(format!("removing FDB entry on {vx}"))
    }

    /// Replaces the remote endpoints of a network (after a relist): programs the new, removes the
    /// stale, leaves the unchanged alone (so traffic to them never stops).
    async fn set_peers(&self, network: &Network, peers: HashMap<String, Peer>) -> Result<()> {
        let mut nets = self.nets.lock().await;
        let st = nets.entry(network.id.clone()).or_default();
        if !st.local.is_empty() {
            let vx = vxlan_name(network);
            let wanted: HashSet<Peer> = peers.values().copied().collect();
            // What the kernel holds may differ from what this driver remembers (a restart).
            let fdb = self.kernel.vxlan_fdb_entries(&vx).await.internal(format!("listing FDB of {vx}"))?;
            let neigh = self.kernel.permanent_neighbours(&vx).await.internal(format!("listing neighbours of {vx}"))?;
            for (mac, vtep) in fdb {
                if !wanted.iter().any(|p| p.mac == mac && p.node_address == vtep) {
                    let _ = self.kernel.del_vxlan_fdb(&vx, mac, vtep).await;
                }
            }
            for (ip, mac) in neigh {
                if !wanted.iter().any(|p| p.ip == ip && p.mac == mac) {
                    let _ = self.kernel.del_neighbour(&vx, ip).await;
                }
            }
            for peer in &wanted {
                self.program(&vx, peer).await?;
            }
        }
        st.peers = peers;
        Ok(())
    }

    async fn add_peer(&self, network: &Network, endpoint_id: &str, peer: Peer) -> Result<()> {
        let mut nets = self.nets.lock().await;
        let st = nets.entry(network.id.clone()).or_default();
        let vx = vxlan_name(network);
        if let Some(old) = st.peers.insert(endpoint_id.to_string(), peer)
            && old != peer
            && !st.local.is_empty()
        {
            self.unprogram(&vx, &old).await?;
        }
        if !st.local.is_empty() {
            self.program(&vx, &peer).await?;
        }
        Ok(())
    }

    async fn remove_peer(&self, network: &Network, endpoint_id: &str) -> Result<()> {
        let mut nets = self.nets.lock().await;
        let Some(st) = nets.get_mut(&network.id) else { return Ok(()) };
        if let Some(old) = st.peers.remove(endpoint_id)
            && !st.local.is_empty()
        {
            self.unprogram(&vxlan_name(network), &old).await?;
        }
        Ok(())
    }

    /// Forgets a network's peers (it was removed from the cluster).
    async fn forget_peers(&self, network_id: &str) {
        let mut nets = self.nets.lock().await;
        if nets.get(network_id).is_some_and(|s| s.local.is_empty()) {
            nets.remove(network_id);
        }
    }
}

#[async_trait]
impl Driver for OverlayDriver {
    fn name(&self) -> &'static str {
        "overlay"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Global,
            needs_ipam: true,
            needs_sandbox_netns: true,
            user_creatable: true,
            interface_goes_with_endpoint: false,
        }
    }

    fn validate_network(&self, network: &Network) -> Result<()> {
        cnet_core::options::check_known("overlay", network, KNOWN)?;
        self.bridge_config(network)?;
        if let Some(vni) = network.option(options::OVERLAY_VNI) {
            options::parse_vni(vni)?;
        }
        if network.options.contains_key(ENCRYPTED_OPTION) {
            return Err(Error::invalid(match encryption_support() {
                None => "-o encrypted: this kernel lacks the IPsec (XFRM) and WireGuard support encrypted overlay \
                         networks need"
                    .to_string(),
                Some(have) => format!(
                    "-o encrypted: cnet does not encrypt overlay traffic yet (the kernel has {have}); use an \
                     encrypted underlay instead"
                ),
            }));
        }
        if network.enable_ipv6 || network.pools.iter().any(|p| p.subnet.is_ipv6()) {
            return Err(Error::invalid(format!(
                "overlay network {}: IPv6 is not supported on overlay networks",
                network.name
            )));
        }
        if network.pools.len() > 1 {
            return Err(Error::invalid(format!("overlay network {}: one IPv4 subnet at most", network.name)));
        }
        self.mtu(network)?;
        Ok(())
    }

    async fn set_remote_endpoints(&self, network: &Network, endpoints: HashMap<String, RemoteEndpoint>) -> Result<()> {
        self.set_peers(network, endpoints).await
    }

    async fn remote_endpoint_added(
        &self,
        network: &Network,
        endpoint_id: &str,
        endpoint: RemoteEndpoint,
    ) -> Result<()> {
        self.add_peer(network, endpoint_id, endpoint).await
    }

    async fn remote_endpoint_removed(&self, network: &Network, endpoint_id: &str) -> Result<()> {
        self.remove_peer(network, endpoint_id).await
    }

    async fn forget_network(&self, network: &Network) {
        self.forget_peers(&network.id).await
    }

    async fn delete_network(&self, network: &Network) -> Result<()> {
        let up = self.nets.lock().await.remove(&network.id).is_some_and(|s| !s.local.is_empty());
        if up {
            self.bring_down(network).await?;
        }
        Ok(())
    }

    async fn create_endpoint(&self, network: &Network, endpoint: &mut Endpoint) -> Result<()> {
        let mut nets = self.nets.lock().await;
        let st = nets.entry(network.id.clone()).or_default();
        if st.local.is_empty() {
            self.bring_up(network, &st.peers).await?;
        }
        st.local.insert(endpoint.id.clone());
        Ok(())
    }

    async fn delete_endpoint(&self, network: &Network, endpoint: &Endpoint) -> Result<()> {
        let mut nets = self.nets.lock().await;
        let Some(st) = nets.get_mut(&network.id) else { return Ok(()) };
        if st.local.remove(&endpoint.id) && st.local.is_empty() {
            self.bring_down(network).await?;
        }
        Ok(())
    }

    async fn join(&self, network: &Network, _endpoint: &Endpoint, _sandbox: &Sandbox) -> Result<JoinInfo> {
        let cfg = self.bridge_config(network)?;
        Ok(JoinInfo {
            interface: Some(SandboxInterface::MacvlanOn {
                parent: vxlan_name(network),
                mode: cnet_core::MacvlanMode::Bridge,
            }),
            mtu: cfg.mtu,
            gateway_v4: if network.internal { None } else { network.pool_v4().and_then(|p| p.gateway) },
            gateway_v6: None,
            static_routes: vec![],
        })
    }

    async fn program_external_connectivity(&self, network: &Network, endpoint: &Endpoint) -> Result<()> {
        steps::publish_ports(&self.ports, &self.bridge_config(network)?, network, endpoint).await
    }

    async fn revoke_external_connectivity(&self, network: &Network, endpoint: &Endpoint) -> Result<()> {
        steps::unpublish_ports(&self.ports, &self.bridge_config(network)?, endpoint).await
    }

    /// The firewall is in its restore (see `Firewall::begin_restore`): `bring_up` and the publish
    /// steps describe this driver's rules, and the controller applies every driver's at once.
    async fn restore(&self, networks: &[Network], endpoints: &[Endpoint]) -> Result<()> {
        let mut keep: HashSet<String> = HashSet::new();
        let mut nets = self.nets.lock().await;
        for network in networks {
            let local: HashSet<EndpointId> =
                endpoints.iter().filter(|e| e.network_id == network.id).map(|e| e.id.clone()).collect();
            if local.is_empty() {
                continue;
            }
            let st = nets.entry(network.id.clone()).or_default();
            // bring_up is idempotent: existing devices, addresses and entries are kept as they are.
            self.bring_up(network, &st.peers).await?;
            st.local = local;
            let cfg = self.bridge_config(network)?;
            keep.insert(cfg.device.clone());
            keep.insert(vxlan_name(network));
            for e in endpoints.iter().filter(|e| e.network_id == network.id) {
                steps::republish_ports(&self.ports, &cfg, network, e).await?;
            }
        }
        drop(nets);
        for link in self.kernel.links().await.internal("listing links")? {
            if is_overlay_link_name(&link.name) && !keep.contains(&link.name) {
                tracing::info!(link = %link.name, "removing orphan overlay link");
                self.kernel.delete_link(&link.name).await.internal(format!("deleting orphan {}", link.name))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names() {
        assert!(is_overlay_link_name("ov-0123456789ab"));
        assert!(is_overlay_link_name("vx-0123456789ab"));
        assert!(!is_overlay_link_name("veth0123456"));
        assert!(!is_overlay_link_name("ov-lan"));
        for name in ["ov-0123456789ab", "vx-0123456789ab"] {
            assert!(!cnet_driver_bridge::is_cnet_link_name(name), "the bridge driver must not sweep {name}");
        }
    }
}
