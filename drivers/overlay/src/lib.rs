//! The `overlay` driver: one layer-2 segment per network stretched across hosts with VXLAN.
//!
//! On each host a network that has local endpoints is a VXLAN device `vx-<netid12>` (UDP 4789,
//! learning off, ARP answered by the device itself from its neighbour table) whose local segment is
//! made of macvlan links in bridge mode: each container's `eth0` is a macvlan of `vx-`, born inside
//! its sandbox, and the host's own leg on the segment is one more macvlan, `ov-<netid12>`. Every
//! remote endpoint is one static FDB entry (its MAC -> its host's VTEP) and one permanent neighbour
//! entry per address (its IPv4, and on a network with `--ipv6` its IPv6 address -> its MAC) on the
//! VXLAN device: no flooding, no multicast, no learning. Those
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
//! every host does not conflict. IPv6 neighbour discovery is kept home the same way: the device's
//! `proxy` flag covers neighbour solicitations too (the kernel answers them from the IPv6
//! neighbour table and never sends one on), and router solicitations and other multicast have no
//! flood entry to leave by.
//!
//! The devices exist only while the network has a local endpoint: made by the first
//! `create_endpoint`, removed by the last `delete_endpoint`.
//!
//! An encrypted network (`-o encrypted`) adds a WireGuard link `wg-<netid12>` that its VXLAN
//! packets go through: see [`encryption`].

pub mod encryption;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use cnet_core::options::{self, parse_mtu};
use cnet_core::{
    Capabilities, Driver, Endpoint, EndpointId, Error, JoinInfo, Network, NetworkId, RemoteEndpoint, Result, ResultExt,
    Sandbox, SandboxInterface, Scope, VxlanVni,
};
use cnet_driver_bridge::{BridgeConfig, config, steps};
use cnet_firewall::Firewall;
use cnet_kernel::{Kernel, Link, VxlanSpec};
use cnet_ports::PublishedPorts;
use tokio::sync::Mutex;

/// IANA's VXLAN port, which cnet's firewall keeps out of connection tracking.
pub const VXLAN_PORT: u16 = cnet_firewall::VXLAN_PORT;
/// Outer Ethernet + IP + UDP + VXLAN headers.
pub const VXLAN_OVERHEAD: u32 = 50;
pub const ENCRYPTED_OPTION: &str = options::OVERLAY_ENCRYPTED;

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

/// IPv6 refuses links with a smaller MTU (RFC 8200).
const IPV6_MIN_MTU: u32 = 1280;

/// A remote endpoint, as the VXLAN device must know it (its node's address is the VTEP).
type Peer = RemoteEndpoint;

#[derive(Default)]
struct NetState {
    /// Local endpoints: the devices exist while this is not empty.
    local: HashSet<EndpointId>,
    /// Remote endpoints by endpoint id, programmed while the devices exist.
    peers: HashMap<String, Peer>,
    /// The network's secret from the cluster store (encrypted networks).
    secret: Option<cnet_core::NetworkSecret>,
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
    /// This host's WireGuard key pair (encrypted networks), see [`OverlayDriver::with_host_key`].
    host_key: Option<encryption::HostKey>,
    /// The VXLAN devices of encrypted networks that are up, with their WireGuard link: their FDB
    /// entries go via that link.
    tunnels: std::sync::Mutex<HashMap<String, String>>,
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

/// Link names only this driver makes (`wg-` for encrypted networks' WireGuard links).
pub fn is_overlay_link_name(name: &str) -> bool {
    ["ov-", "vx-", "wg-"].iter().any(|p| name.strip_prefix(p).is_some_and(|h| is_hex(h, 12)))
}

/// The subnets an overlay network may ask for: one IPv4 subnet at most (cnetd picks one if there is
/// none), and on a network with IPv6 one IPv6 subnet at most (picked likewise). An IPv6 subnet
/// without `--ipv6` is refused by cnetd before the driver is asked, as for every driver.
fn check_subnets(network: &Network) -> Result<()> {
    for (v6, family) in [(false, "IPv4"), (true, "IPv6")] {
        let subnets: Vec<String> =
            network.pools.iter().filter(|p| p.subnet.is_ipv6() == v6).map(|p| p.subnet.to_string()).collect();
        if subnets.len() > 1 {
            return Err(Error::invalid(format!(
                "overlay network {}: one {family} subnet at most, got {}",
                network.name,
                subnets.join(", ")
            )));
        }
    }
    Ok(())
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
            host_key: None,
            tunnels: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// This host's WireGuard key pair, for encrypted networks (without one they cannot come up
    /// here).
    pub fn with_host_key(mut self, key: encryption::HostKey) -> OverlayDriver {
        self.host_key = Some(key);
        self
    }

    /// The link an FDB entry of the VXLAN device `vx` goes via (an encrypted network's
    /// WireGuard link), if any.
    fn fdb_via(&self, vx: &str) -> Option<String> {
        self.tunnels.lock().expect("tunnels lock").get(vx).cloned()
    }

    /// Brings the network's WireGuard link up (encrypted networks) and returns it: the VXLAN
    /// device is bound to it.
    async fn bring_up_tunnel(
        &self,
        network: &Network,
        st_peers: &HashMap<String, Peer>,
        secret: Option<&cnet_core::NetworkSecret>,
    ) -> Result<Option<String>> {
        if !encryption::is_encrypted(network) {
            return Ok(None);
        }
        let mtu = self.underlay_mtu.saturating_sub(encryption::overhead(network, self.vtep)).max(68);
        encryption::bring_up(&self.kernel, network, self.host_key.as_ref(), secret, mtu, st_peers).await?;
        let wg = encryption::wireguard_name(network);
        self.tunnels.lock().expect("tunnels lock").insert(vxlan_name(network), wg.clone());
        Ok(Some(wg))
    }

    /// Makes the WireGuard link's peers match the network's remote endpoints (encrypted networks
    /// that are up here).
    async fn sync_tunnel(&self, network: &Network, st: &NetState) -> Result<()> {
        if !encryption::is_encrypted(network) || st.local.is_empty() {
            return Ok(());
        }
        encryption::configure(&self.kernel, network, self.host_key.as_ref(), st.secret.as_ref(), &st.peers).await
    }

    /// The MTU of containers on `network`: its option, else the underlay's minus VXLAN's headers.
    pub fn mtu(&self, network: &Network) -> Result<u32> {
        match network.option(options::DRIVER_MTU) {
            Some(v) => parse_mtu(options::DRIVER_MTU, v),
            None => {
                Ok(self.underlay_mtu.saturating_sub(VXLAN_OVERHEAD + encryption::overhead(network, self.vtep)).max(68))
            }
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
    async fn bring_up(&self, network: &Network, st: &NetState) -> Result<()> {
        let peers = &st.peers;
        let cfg = self.bridge_config(network)?;
        let vx = vxlan_name(network);
        let made = async {
            let tunnel = self.bring_up_tunnel(network, peers, st.secret.as_ref()).await?;
            let spec = VxlanSpec {
                name: vx.clone(),
                vni: Self::vni(network)?,
                local: self.vtep,
                port: VXLAN_PORT,
                underlay: Some(tunnel.unwrap_or_else(|| self.underlay_link.clone())),
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
            // Brought up for a joining endpoint: its rules must be in force before it is.
            steps::rules_in_place(&self.firewall, network).await?;
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
        self.tunnels.lock().expect("tunnels lock").remove(&vx);
        encryption::bring_down(&self.kernel, network).await?;
        tracing::info!(network = %network.name, "overlay network down on this host (no local endpoint left)");
        Ok(())
    }

    /// One FDB entry for the peer's MAC, one neighbour entry per address of the peer (IPv4, IPv6).
    async fn program(&self, vx: &str, peer: &Peer) -> Result<()> {
        self.kernel
            .add_vxlan_fdb_via(vx, peer.mac, peer.node_address, self.fdb_via(vx).as_deref())
            .await
            .internal(format!("adding FDB entry on {vx}"))?;
        for ip in peer.addresses() {
            self.kernel.add_neighbour(vx, ip, peer.mac).await.internal(format!("adding neighbour {ip} on {vx}"))?;
        }
        Ok(())
    }

    async fn unprogram(&self, vx: &str, peer: &Peer) -> Result<()> {
        for ip in peer.addresses() {
            self.kernel.del_neighbour(vx, ip).await.internal(format!("removing neighbour {ip} on {vx}"))?;
        }
        self.kernel
            .del_vxlan_fdb_via(vx, peer.mac, peer.node_address, self.fdb_via(vx).as_deref())
            .await
            .internal(format!("removing FDB entry on {vx}"))
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
                    let _ = self.kernel.del_vxlan_fdb_via(&vx, mac, vtep, self.fdb_via(&vx).as_deref()).await;
                }
            }
            for (ip, mac) in neigh {
                if !wanted.iter().any(|p| p.mac == mac && p.addresses().any(|a| a == ip)) {
                    let _ = self.kernel.del_neighbour(&vx, ip).await;
                }
            }
            for peer in &wanted {
                self.program(&vx, peer).await?;
            }
        }
        st.peers = peers;
        self.sync_tunnel(network, st).await
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
        self.sync_tunnel(network, st).await
    }

    async fn remove_peer(&self, network: &Network, endpoint_id: &str) -> Result<()> {
        let mut nets = self.nets.lock().await;
        let Some(st) = nets.get_mut(&network.id) else { return Ok(()) };
        if let Some(old) = st.peers.remove(endpoint_id)
            && !st.local.is_empty()
        {
            self.unprogram(&vxlan_name(network), &old).await?;
        }
        self.sync_tunnel(network, st).await
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
        if encryption::is_encrypted(network) && !encryption::wireguard_supported() {
            return Err(encryption::unsupported_error());
        }
        check_subnets(network)?;
        let mtu = self.mtu(network)?;
        if network.enable_ipv6 && mtu < IPV6_MIN_MTU {
            return Err(Error::invalid(format!(
                "overlay network {}: IPv6 needs an MTU of at least {IPV6_MIN_MTU}, and its containers' would be {mtu} \
                 (the underlay's MTU minus {VXLAN_OVERHEAD}, or {})",
                network.name,
                options::DRIVER_MTU
            )));
        }
        Ok(())
    }

    fn vxlan_vni(&self, network: &Network) -> Option<VxlanVni> {
        let vni = cnet_core::options::vni_of(network)?;
        Some(VxlanVni { vni, through: encryption::is_encrypted(network).then(|| encryption::wireguard_name(network)) })
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

    async fn set_network_secret(&self, network: &Network, secret: Option<cnet_core::NetworkSecret>) -> Result<()> {
        let mut nets = self.nets.lock().await;
        let st = nets.entry(network.id.clone()).or_default();
        if st.secret == secret {
            return Ok(());
        }
        tracing::info!(network = %network.name, serial = ?secret.as_ref().map(|s| s.serial), "network secret received");
        st.secret = secret;
        self.sync_tunnel(network, st).await
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
            self.bring_up(network, st).await?;
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
        // The gateways are on this host's leg (the distributed gateway), as on a bridge.
        let (gateway_v4, gateway_v6) = steps::default_gateways(network);
        Ok(JoinInfo {
            interface: Some(SandboxInterface::MacvlanOn {
                parent: vxlan_name(network),
                mode: cnet_core::MacvlanMode::Bridge,
            }),
            mtu: cfg.mtu,
            gateway_v4,
            gateway_v6,
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
            self.bring_up(network, st).await?;
            st.local = local;
            let cfg = self.bridge_config(network)?;
            keep.insert(cfg.device.clone());
            keep.insert(vxlan_name(network));
            if encryption::is_encrypted(network) {
                keep.insert(encryption::wireguard_name(network));
            }
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

    fn network(subnets: &[&str], ipv6: bool) -> Network {
        let pool = |s: &&str| cnet_core::ipam::build_pool(&Default::default(), s.parse().unwrap(), true).unwrap();
        Network {
            pools: subnets.iter().map(pool).collect(),
            enable_ipv6: ipv6,
            ..Network::new("0123456789abcdef".repeat(4).into(), "ov", "overlay")
        }
    }

    #[test]
    fn one_subnet_per_family() {
        assert!(check_subnets(&network(&[], false)).is_ok());
        assert!(check_subnets(&network(&["10.1.0.0/24"], false)).is_ok());
        assert!(check_subnets(&network(&["10.1.0.0/24", "fd00:1::/64"], true)).is_ok());
        assert!(check_subnets(&network(&["fd00:1::/64"], true)).is_ok(), "cnetd adds the IPv4 subnet");
        let e = check_subnets(&network(&["10.1.0.0/24", "10.2.0.0/24"], false)).unwrap_err().to_string();
        assert!(e.contains("one IPv4 subnet at most") && e.contains("10.2.0.0/24"), "{e}");
        let e = check_subnets(&network(&["fd00:1::/64", "fd00:2::/64"], true)).unwrap_err().to_string();
        assert!(e.contains("one IPv6 subnet at most") && e.contains("fd00:2::/64"), "{e}");
    }

    #[test]
    fn link_names() {
        assert!(is_overlay_link_name("ov-0123456789ab"));
        assert!(is_overlay_link_name("vx-0123456789ab"));
        assert!(is_overlay_link_name("wg-0123456789ab"));
        assert!(!is_overlay_link_name("wg-lan"));
        assert!(!is_overlay_link_name("veth0123456"));
        assert!(!is_overlay_link_name("ov-lan"));
        for name in ["ov-0123456789ab", "vx-0123456789ab", "wg-0123456789ab"] {
            assert!(!cnet_driver_bridge::is_cnet_link_name(name), "the bridge driver must not sweep {name}");
        }
    }
}
