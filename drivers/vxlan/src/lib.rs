//! The `vxlan` driver: a point-to-point link between two containers on different hosts, carried by
//! VXLAN, whose VNI the cluster store allocates (the same allocation as overlay networks, so their
//! VNIs never clash). A lab's cross-host link is one network of this driver.
//!
//! Global scope: the network, its VNI and its endpoints live in etcd and every host sees the
//! network by name; the controller refuses a third endpoint cluster-wide
//! ([`Driver::max_endpoints`], counting other nodes' endpoints too). No bridge, no gateway, no NAT,
//! no published ports; addresses only if the network was given a subnet (a /31), as a p2p link
//! (whose option checks this driver shares, [`cnet_driver_p2p::config`]).
//!
//! **The data plane.** Each end is a VXLAN device (UDP 4789, `local` = this host's advertised
//! address, learning off, no ARP proxy) made in the daemon's namespace under the staging name
//! `vxl<netid12>` ([`staging_name`]), where its UDP socket stays, then moved into the sandbox as
//! the endpoint's interface (`SandboxInterface::Move`; the controller renames and configures it:
//! MAC, MTU, addresses, up). Its only FDB entry is the all-zero one towards the peer's VTEP
//! (`00:00:00:00:00:00 dst <peer host>`): every frame, ARP and multicast included, goes to the
//! other end and nowhere else. The container's device is thus the tunnel itself: no veth, no
//! bridge, no macvlan between it and the underlay.
//!
//! **The peer** is learnt through the controller's remote-endpoint hooks (the cluster store's
//! endpoint table): when the other end registers on its host, this end's device gets the entry (in
//! the sandbox's namespace, where the device lives); when it goes, the entry goes and the
//! container keeps its interface (its traffic just stops); when it comes back, the entry comes
//! back. A join whose peer is already known gets the entry before its device is moved (permanent
//! FDB entries survive the move).
//!
//! **Both ends on one host.** One host cannot have two VXLAN devices with one VNI and port (the
//! kernel answers EEXIST, and would have one socket for both), so the second local end makes the
//! link a veth pair between the two sandboxes instead: the first end's VXLAN device is replaced by a
//! veth end born in its sandbox with the same name, MAC, MTU and addresses, and the other end is
//! moved into the joining sandbox (`SandboxInterface::Unpark`). When one of them leaves, the pair
//! goes and the one that stays gets a VXLAN device again, ready for a peer on another host.
//!
//! **At rest nothing of this driver is in the daemon's namespace** (`vxl<netid12>` exists only
//! inside a join or a leave), so a restart deletes every `vxl<12 hex>` link there, and makes each
//! network's ends match its records: a VXLAN device for a lone local end (an existing one is kept
//! as it is, FDB entry included, so traffic never stops; the resync of the cluster store then
//! corrects the entry), a veth pair for two.

pub mod config;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;

use async_trait::async_trait;
use cnet_core::{
    Capabilities, Driver, Endpoint, EndpointId, Error, JoinInfo, Network, NetworkId, PoolPlan, RemoteEndpoint, Result,
    ResultExt, Sandbox, SandboxInterface, Scope, VxlanVni,
};
use cnet_driver_p2p::steps::{interface_config, open_sandbox};
use cnet_kernel::{Kernel, Link, NetnsHandle, VxlanSpec};
use tokio::sync::Mutex;

pub use config::VxlanConfig;

/// IANA's VXLAN port (as overlay networks), which cnet's firewall keeps out of connection tracking.
pub const VXLAN_PORT: u16 = cnet_firewall::VXLAN_PORT;
/// Outer Ethernet + IP + UDP + VXLAN headers.
pub const VXLAN_OVERHEAD: u32 = 50;

const STAGING_PREFIX: &str = "vxl";

/// The name a link of `network` has in the daemon's namespace between two steps: a new VXLAN
/// device before its move into a sandbox, or the free end of a same-host veth pair before it is
/// moved into the second sandbox. Never there at rest.
pub fn staging_name(network: &Network) -> String {
    format!("{STAGING_PREFIX}{}", network.short_id())
}

/// True for `vxl<12 hex>`, the names [`staging_name`] gives.
pub fn is_staging_name(name: &str) -> bool {
    name.strip_prefix(STAGING_PREFIX).is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[derive(Default)]
struct NetState {
    /// This host's endpoints on the network (at most two), by id.
    local: BTreeMap<EndpointId, Endpoint>,
    /// Other hosts' endpoints on the network (normally at most one), by endpoint id.
    peers: BTreeMap<String, RemoteEndpoint>,
}

impl NetState {
    /// The VTEP the local end sends to: the peer's host (the first by endpoint id, should a race
    /// have let in more than one).
    fn peer_vtep(&self) -> Option<IpAddr> {
        self.peers.values().next().map(|p| p.node_address)
    }
}

pub struct VxlanDriver {
    kernel: Kernel,
    /// Where the controller binds sandbox namespaces (`<run>/netns`).
    netns_dir: PathBuf,
    /// This host's VTEP address, the link that holds it and that link's MTU.
    vtep: IpAddr,
    underlay_link: String,
    underlay_mtu: u32,
    nets: Mutex<HashMap<NetworkId, NetState>>,
}

impl VxlanDriver {
    /// `vtep`: this host's advertised address; `underlay`: the link that holds it.
    pub fn new(kernel: Kernel, netns_dir: PathBuf, vtep: IpAddr, underlay: &Link) -> VxlanDriver {
        VxlanDriver {
            kernel,
            netns_dir,
            vtep,
            underlay_link: underlay.name.clone(),
            underlay_mtu: underlay.mtu.unwrap_or(1500),
            nets: Mutex::new(HashMap::new()),
        }
    }

    /// The MTU of the link's ends: the network's option, else the underlay's minus VXLAN's headers.
    fn mtu(&self, cfg: &VxlanConfig) -> u32 {
        cfg.mtu.unwrap_or_else(|| self.underlay_mtu.saturating_sub(VXLAN_OVERHEAD).max(68))
    }

    fn vni(network: &Network) -> Result<u32> {
        cnet_core::options::vni_of(network)
            .ok_or_else(|| Error::internal(format!("vxlan network {} has no VNI recorded", network.name)))
    }

    /// Makes a VXLAN device for `network` under its staging name, in the daemon's namespace, with
    /// its default destination `peer` if known.
    async fn make_staged_device(&self, network: &Network, mtu: u32, peer: Option<IpAddr>) -> Result<String> {
        let staging = staging_name(network);
        let spec = VxlanSpec {
            name: staging.clone(),
            vni: Self::vni(network)?,
            local: self.vtep,
            port: VXLAN_PORT,
            underlay: Some(self.underlay_link.clone()),
            mtu: Some(mtu),
        };
        let made = async {
            self.kernel.create_vxlan_link(&spec).await.internal(format!(
                "creating the VXLAN device of network {} (VNI {}, local {})",
                network.name, spec.vni, spec.local
            ))?;
            // Permanent FDB entries survive the move into the sandbox.
            if let Some(dst) = peer {
                self.kernel
                    .set_vxlan_default_destination(&staging, Some(dst))
                    .await
                    .internal(format!("pointing {staging} at {dst}"))?;
            }
            Ok::<(), Error>(())
        };
        if let Err(e) = made.await {
            let _ = self.kernel.delete_link(&staging).await;
            return Err(e);
        }
        Ok(staging)
    }

    /// Makes `endpoint`'s interface the VXLAN end of the link, in its sandbox: an existing VXLAN
    /// device of its name is kept (and, with `sync`, pointed at the peer); anything else of its
    /// name (a veth end of a same-host pair) is replaced.
    async fn ensure_single(&self, network: &Network, endpoint: &Endpoint, st: &NetState, sync: bool) -> Result<()> {
        let cfg = VxlanConfig::from_network(network)?;
        let ns = open_sandbox(&self.netns_dir, endpoint).await?;
        let ifname = &endpoint.ifname;
        match ns.link_by_name(ifname).await.internal(format!("looking up {ifname}"))? {
            Some(link) if link.kind.as_deref() == Some("vxlan") => {
                if sync {
                    self.point_at_peer(&ns, endpoint, st.peer_vtep()).await?;
                }
                return Ok(());
            }
            Some(_) => ns.delete_link(ifname).await.internal(format!("deleting {ifname}"))?,
            None => {}
        }
        tracing::info!(network = %network.name, endpoint = %endpoint.id.short(), "making the VXLAN end of the link");
        let staging = self.make_staged_device(network, self.mtu(&cfg), st.peer_vtep()).await?;
        if let Err(e) = self.kernel.move_into(&staging, &ns, &interface_config(endpoint, Some(self.mtu(&cfg)))).await {
            let _ = self.kernel.delete_link(&staging).await;
            return Err(Error::internal(format!(
                "moving {staging} into sandbox {} as {ifname}: {e}",
                endpoint.sandbox_id.short()
            )));
        }
        Ok(())
    }

    /// Makes the two local endpoints' interfaces one veth pair (both ends on this host): what is
    /// in place (a veth of each name) is kept.
    async fn ensure_pair(&self, network: &Network, a: &Endpoint, b: &Endpoint) -> Result<()> {
        let cfg = VxlanConfig::from_network(network)?;
        let mtu = Some(self.mtu(&cfg));
        let (ns_a, ns_b) = (open_sandbox(&self.netns_dir, a).await?, open_sandbox(&self.netns_dir, b).await?);
        let is_veth = async |ns: &NetnsHandle, e: &Endpoint| -> Result<bool> {
            let link = ns.link_by_name(&e.ifname).await.internal(format!("looking up {}", e.ifname))?;
            Ok(link.is_some_and(|l| l.kind.as_deref() == Some("veth")))
        };
        if is_veth(&ns_a, a).await? && is_veth(&ns_b, b).await? {
            return Ok(());
        }
        tracing::info!(network = %network.name, "making the same-host link (a veth pair) again");
        for (ns, e) in [(&ns_a, a), (&ns_b, b)] {
            ns.delete_link(&e.ifname).await.internal(format!("deleting {}", e.ifname))?;
        }
        let staging = staging_name(network);
        self.kernel
            .create_veth_with_parked_peer(&staging, &ns_a, &interface_config(a, mtu))
            .await
            .internal(format!("making the link of network {}", network.name))?;
        self.kernel.unpark_into(&staging, &ns_b, &interface_config(b, mtu)).await.internal(format!(
            "moving {staging} into sandbox {} as {}",
            b.sandbox_id.short(),
            b.ifname
        ))
    }

    /// The endpoint's VXLAN device sends to `dst` (or nowhere).
    async fn point_at_peer(&self, ns: &NetnsHandle, endpoint: &Endpoint, dst: Option<IpAddr>) -> Result<()> {
        ns.set_vxlan_default_destination(&endpoint.ifname, dst).await.internal(format!(
            "pointing {} of sandbox {} at {}",
            endpoint.ifname,
            endpoint.sandbox_id.short(),
            dst.map_or("nothing".to_string(), |d| d.to_string())
        ))
    }

    /// After the peers changed: the lone local end's VXLAN device (if it has one in place) is
    /// pointed at the peer's host, or nowhere.
    async fn sync_peer(&self, network: &Network, st: &NetState) -> Result<()> {
        let [endpoint] = st.local.values().collect::<Vec<_>>()[..] else { return Ok(()) };
        let ns = open_sandbox(&self.netns_dir, endpoint).await?;
        let link = ns.link_by_name(&endpoint.ifname).await.internal(format!("looking up {}", endpoint.ifname))?;
        if link.is_none_or(|l| l.kind.as_deref() != Some("vxlan")) {
            // Not joined yet: the join points it.
            return Ok(());
        }
        let dst = st.peer_vtep();
        tracing::debug!(network = %network.name, peer = ?dst, "pointing the link at its peer");
        self.point_at_peer(&ns, endpoint, dst).await
    }
}

#[async_trait]
impl Driver for VxlanDriver {
    fn name(&self) -> &'static str {
        "vxlan"
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

    fn pool_plan(&self) -> PoolPlan {
        PoolPlan::LinkOnly
    }

    fn max_endpoints(&self) -> Option<usize> {
        Some(2)
    }

    fn validate_network(&self, network: &Network) -> Result<()> {
        VxlanConfig::from_network(network).map(|_| ())
    }

    async fn delete_network(&self, network: &Network) -> Result<()> {
        self.nets.lock().await.remove(&network.id);
        self.kernel.delete_link(&staging_name(network)).await.internal("deleting a staged link")
    }

    async fn create_endpoint(&self, network: &Network, endpoint: &mut Endpoint) -> Result<()> {
        cnet_driver_p2p::config::refuse_ports("vxlan", network, endpoint)?;
        let mut nets = self.nets.lock().await;
        nets.entry(network.id.clone()).or_default().local.insert(endpoint.id.clone(), endpoint.clone());
        Ok(())
    }

    async fn delete_endpoint(&self, network: &Network, endpoint: &Endpoint) -> Result<()> {
        if let Some(st) = self.nets.lock().await.get_mut(&network.id) {
            st.local.remove(&endpoint.id);
        }
        // A join cut short between its steps.
        self.kernel.delete_link(&staging_name(network)).await.internal("deleting a staged link")
    }

    async fn join(&self, network: &Network, endpoint: &Endpoint, _sandbox: &Sandbox) -> Result<JoinInfo> {
        let cfg = VxlanConfig::from_network(network)?;
        let mtu = self.mtu(&cfg);
        let nets = self.nets.lock().await;
        let st = nets.get(&network.id).ok_or_else(|| Error::internal("join before create_endpoint"))?;
        let others: Vec<&Endpoint> = st.local.values().filter(|e| e.id != endpoint.id).collect();
        let staging = staging_name(network);
        // A leftover of a step cut short (none should be there).
        self.kernel.delete_link(&staging).await.internal(format!("deleting {staging}"))?;
        let interface = match others[..] {
            [] => {
                let src = self.make_staged_device(network, mtu, st.peer_vtep()).await?;
                SandboxInterface::Move { src }
            }
            [other] => {
                // Both ends on this host: a veth pair replaces the other end's VXLAN device.
                tracing::info!(network = %network.name, "both ends on this host: the link becomes a veth pair");
                let made = async {
                    let ns = open_sandbox(&self.netns_dir, other).await?;
                    ns.delete_link(&other.ifname).await.internal(format!("deleting {}", other.ifname))?;
                    self.kernel
                        .create_veth_with_parked_peer(&staging, &ns, &interface_config(other, Some(mtu)))
                        .await
                        .internal(format!("making the same-host link of network {}", network.name))
                };
                if let Err(e) = made.await {
                    if let Err(re) = self.ensure_single(network, other, st, true).await {
                        tracing::error!(network = %network.name, error = %re, "cannot give the other end its VXLAN device back");
                    }
                    return Err(e);
                }
                SandboxInterface::Unpark { parked: staging }
            }
            _ => {
                return Err(Error::precondition(format!(
                    "network {} (driver vxlan) takes at most 2 endpoints",
                    network.name
                )));
            }
        };
        // No gateway and no routes: the link carries only what its two ends send each other.
        Ok(JoinInfo { interface: Some(interface), mtu: Some(mtu), ..Default::default() })
    }

    async fn leave(&self, network: &Network, endpoint: &Endpoint, sandbox: &Sandbox) -> Result<()> {
        let nets = self.nets.lock().await;
        // A join cut short: its staged device or free veth end goes.
        self.kernel.delete_link(&staging_name(network)).await.internal("deleting a staged link")?;
        let Some(st) = nets.get(&network.id) else { return Ok(()) };
        let others: Vec<&Endpoint> = st.local.values().filter(|e| e.id != endpoint.id).collect();
        if let [other] = others[..] {
            // A same-host pair: this end goes with the pair, the other gets its VXLAN device back.
            let ns = NetnsHandle::open(std::path::Path::new(&sandbox.netns_path))
                .await
                .internal(format!("opening the namespace of sandbox {}", sandbox.id.short()))?;
            if ns.link_by_name(&endpoint.ifname).await.internal("looking up the link")?.is_some() {
                ns.delete_link(&endpoint.ifname).await.internal(format!("deleting {}", endpoint.ifname))?;
            }
            let mut alone = NetState { local: BTreeMap::new(), peers: st.peers.clone() };
            alone.local.insert(other.id.clone(), other.clone());
            self.ensure_single(network, other, &alone, true).await?;
        }
        // Alone: the controller deletes the device in the sandbox.
        Ok(())
    }

    fn vxlan_vni(&self, network: &Network) -> Option<VxlanVni> {
        cnet_core::options::vni_of(network).map(|vni| VxlanVni { vni, through: None })
    }

    async fn set_remote_endpoints(&self, network: &Network, endpoints: HashMap<String, RemoteEndpoint>) -> Result<()> {
        let mut nets = self.nets.lock().await;
        let st = nets.entry(network.id.clone()).or_default();
        st.peers = endpoints.into_iter().collect();
        self.sync_peer(network, st).await
    }

    async fn remote_endpoint_added(
        &self,
        network: &Network,
        endpoint_id: &str,
        endpoint: RemoteEndpoint,
    ) -> Result<()> {
        let mut nets = self.nets.lock().await;
        let st = nets.entry(network.id.clone()).or_default();
        st.peers.insert(endpoint_id.to_string(), endpoint);
        self.sync_peer(network, st).await
    }

    async fn remote_endpoint_removed(&self, network: &Network, endpoint_id: &str) -> Result<()> {
        let mut nets = self.nets.lock().await;
        let Some(st) = nets.get_mut(&network.id) else { return Ok(()) };
        if st.peers.remove(endpoint_id).is_some() {
            self.sync_peer(network, st).await?;
        }
        Ok(())
    }

    async fn forget_network(&self, network: &Network) {
        let mut nets = self.nets.lock().await;
        if nets.get(&network.id).is_some_and(|s| s.local.is_empty()) {
            nets.remove(&network.id);
        }
    }

    async fn restore(&self, networks: &[Network], endpoints: &[Endpoint]) -> Result<()> {
        // Nothing of this driver rests in the daemon's namespace: what is there is a step cut short.
        for link in self.kernel.links().await.internal("listing links")? {
            if is_staging_name(&link.name) {
                tracing::info!(link = %link.name, "removing orphan vxlan link");
                self.kernel.delete_link(&link.name).await.internal(format!("deleting orphan {}", link.name))?;
            }
        }
        let mut nets = self.nets.lock().await;
        for network in networks {
            let st = nets.entry(network.id.clone()).or_default();
            st.local =
                endpoints.iter().filter(|e| e.network_id == network.id).map(|e| (e.id.clone(), e.clone())).collect();
            let local: Vec<&Endpoint> = st.local.values().collect();
            // Peers come with the cluster store's resync: an existing entry is kept until then.
            let restored = match local[..] {
                [] => Ok(()),
                [only] => self.ensure_single(network, only, st, false).await,
                [a, b] => self.ensure_pair(network, a, b).await,
                _ => {
                    tracing::warn!(network = %network.name, endpoints = local.len(), "a vxlan link with more than two local endpoints: left as it is");
                    Ok(())
                }
            };
            if let Err(e) = restored {
                // One broken link must not keep the daemon (and every other network) down.
                tracing::error!(network = %network.name, error = %e, "cannot restore the vxlan link");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names() {
        let network = config::tests::net(&[], vec![]);
        let name = staging_name(&network);
        assert_eq!(name, "vxl0123456789ab");
        assert!(name.len() <= 15 && is_staging_name(&name));
        for other in ["vxl", "vxl0123", "vxl0123456789abc", "vxlxyz456789ab", "vx-0123456789ab", "p2p0123456789ab"] {
            assert!(!is_staging_name(other), "{other}");
        }
        // No other driver's restart sweep takes these, and this one takes none of theirs.
        assert!(!cnet_driver_p2p::steps::is_parked_name(&name));
    }

    #[test]
    fn the_first_peer_by_endpoint_id_is_the_destination() {
        let peer = |node: &str| RemoteEndpoint {
            mac: [2, 0, 0, 0, 0, 1],
            ip: None,
            ip_v6: None,
            node_address: node.parse().unwrap(),
            node_key: None,
        };
        let mut st = NetState::default();
        assert_eq!(st.peer_vtep(), None);
        st.peers.insert("bbb".into(), peer("192.0.2.3"));
        st.peers.insert("aaa".into(), peer("192.0.2.2"));
        assert_eq!(st.peer_vtep(), Some("192.0.2.2".parse().unwrap()));
    }
}
