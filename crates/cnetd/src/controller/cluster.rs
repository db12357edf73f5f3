//! The controller's side of the cluster store: applying what the watch reports (global networks,
//! other nodes' endpoints) to the local state, to the drivers of global networks (through the
//! Driver trait's remote-endpoint hooks) and to the embedded DNS, and keeping this node's own
//! endpoints registered.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use cnet_core::{EndpointId, NetworkId, RemoteEndpoint};

use super::*;

/// Changes to the local cache of other nodes' endpoints that wait for one write, and the
/// endpoints whose names are served after it.
#[derive(Default)]
pub(super) struct CacheWrites {
    batch: Batch,
    names: Vec<EndpointId>,
}

impl Controller {
    /// The cluster store if `network` is global; an error if it is global but this daemon has no
    /// cluster store (a cached network from an earlier run with one).
    pub(super) fn global_cluster(&self, network: &Network) -> Result<Option<&Arc<Cluster>>> {
        if network.scope != Scope::Global {
            return Ok(None);
        }
        self.cluster.as_ref().map(Some).ok_or_else(|| {
            Error::precondition(format!(
                "network {} is global: it needs the cluster store (start cnetd with --cluster-store)",
                network.name
            ))
        })
    }

    /// A local endpoint as the cluster store holds it.
    pub(super) fn cluster_record(&self, endpoint: &Endpoint) -> EndpointRecord {
        let cluster = self.cluster.as_ref().expect("only called for global networks");
        EndpointRecord {
            id: endpoint.id.clone(),
            network_id: endpoint.network_id.clone(),
            node: cluster.node_name().to_string(),
            vtep: cluster.advertise(),
            name: endpoint.name.clone(),
            aliases: endpoint.aliases.clone(),
            mac: endpoint.mac.to_string(),
            ipv4: endpoint.ipv4,
            ipv6: endpoint.ipv6,
            node_key: cluster.node_key().map(str::to_string),
        }
    }

    /// The cluster store client, when cnetd joined a cluster (shared: tasks that outlive a
    /// request, such as the lab agent, keep a clone).
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.cluster.as_ref()
    }

    /// Why a local endpoint is not registered in the cluster, if it is not.
    pub async fn endpoint_conflict(&self, endpoint_id: &str) -> Option<String> {
        self.state.lock().await.conflicts.get(endpoint_id).cloned()
    }

    /// Other nodes' endpoints on `network_id`.
    pub async fn remote_endpoints(&self, network_id: &str) -> Vec<EndpointRecord> {
        let st = self.state.lock().await;
        let mut out: Vec<EndpointRecord> = st.remote.values().filter(|r| r.network_id == network_id).cloned().collect();
        out.sort_by(|a, b| (&a.node, &a.name).cmp(&(&b.node, &b.name)));
        out
    }

    /// Tells the cluster which subnets this node's local networks use, so global networks' subnets avoid them.
    pub async fn publish_local_subnets(&self) {
        let Some(cluster) = &self.cluster else { return };
        let subnets: Vec<ipnetwork::IpNetwork> = {
            let st = self.state.lock().await;
            st.networks
                .values()
                .filter(|n| n.scope == Scope::Local)
                .flat_map(|n| n.pools.iter().map(|p| p.subnet))
                .collect()
        };
        cluster.set_local_subnets(subnets).await;
    }

    /// What a driver needs of another node's endpoint (none for a record without a MAC: nothing
    /// can be sent to it). Its addresses come along where it has them (an endpoint of a vxlan link
    /// without a subnet has none).
    fn remote_endpoint_of(record: &EndpointRecord) -> Option<RemoteEndpoint> {
        let mac = id::parse_mac(&record.mac)?;
        let ip = record.ipv4.map(|a| a.ip()).filter(IpAddr::is_ipv4);
        let ip_v6 = record.ipv6.map(|a| a.ip()).filter(IpAddr::is_ipv6);
        let node_key = record.node_key.as_deref().and_then(cnet_cluster::secrets::decode_public_key);
        Some(RemoteEndpoint { mac, ip, ip_v6, node_address: record.vtep, node_key })
    }

    fn is_remote(&self, record: &EndpointRecord) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.node_name() != record.node)
    }

    /// Applies `events` in order, under one hold of the lock. The other nodes' endpoints they
    /// bring are cached in the local store with one durable write for a run of them (one each
    /// cost milliseconds per endpoint, serially, when hundreds arrive at once), made before any
    /// other kind of event and at the end; their names are served after it.
    pub async fn apply_cluster_events(&self, events: Vec<ClusterEvent>) {
        let mut st = self.state.lock().await;
        let mut cache = CacheWrites::default();
        for event in events {
            if !matches!(event, ClusterEvent::EndpointPut(_) | ClusterEvent::EndpointDeleted { .. }) {
                self.settle(&st, &mut cache).await;
            }
            let st = &mut *st;
            match event {
                ClusterEvent::EndpointPut(record) if self.is_remote(&record) => {
                    self.remote_added(st, *record, &mut cache).await
                }
                ClusterEvent::EndpointPut(_) => {}
                ClusterEvent::EndpointDeleted { network_id, endpoint_id } => {
                    self.remote_removed(st, &network_id, &endpoint_id, &mut cache).await
                }
                ClusterEvent::Resync(view) => self.resync(st, *view).await,
                ClusterEvent::NetworkPut(network) => self.cache_global_network(st, &network),
                ClusterEvent::NetworkDeleted(id) => self.drop_global_network(st, &id).await,
                ClusterEvent::SecretPut { network_id, secret } => {
                    self.secret_changed(st, &network_id, Some(&secret)).await
                }
                ClusterEvent::NodeAlive(node) => {
                    tracing::info!(%node, "node is up");
                    self.events.publish(Event::node("up", &node));
                }
                ClusterEvent::NodeGone(node) => {
                    tracing::warn!(%node, "node is gone (its lease expired): dropping its endpoints");
                    self.events.publish(Event::node("down", &node));
                }
                ClusterEvent::Disconnected(why) => {
                    tracing::warn!(%why, "cluster store unreachable: the data plane of global networks is kept as it is")
                }
            }
        }
        self.settle(&st, &mut cache).await;
    }

    /// The VXLAN guard first (a new host's traffic does not wait for the disk), then the cache
    /// changes gathered so far in one write, then the names of the endpoints added meanwhile that
    /// are still there.
    async fn settle(&self, st: &Records, cache: &mut CacheWrites) {
        self.refresh_vxlan_guard(st).await;
        let CacheWrites { batch, names } = std::mem::take(cache);
        self.commit_remote(batch);
        for record in names.iter().filter_map(|id| st.remote.get(id)) {
            self.serve_remote_name(st, record);
        }
    }

    /// Keeps the cache of other nodes' endpoints in the local store in step (see
    /// [`Controller::restore_remote`]); a failure only costs names until the next resync.
    pub(super) fn persist_remote(&self, put: &[&EndpointRecord], delete: &[&str]) {
        let mut batch = Batch::new();
        for record in put {
            batch.put_remote(&record.id, record);
        }
        for id in delete {
            batch.delete_remote(id);
        }
        self.commit_remote(batch);
    }

    /// One write of the cache of other nodes' endpoints; a failure only costs names (and peers)
    /// after a restart, until the next resync.
    fn commit_remote(&self, batch: Batch) {
        if let Err(e) = self.store.commit(batch) {
            tracing::warn!(error = %e, "caching other nodes' endpoints in the local store");
        }
    }

    /// Serves a remote endpoint's name, if its network is known here.
    fn serve_remote_name(&self, st: &Records, record: &EndpointRecord) {
        if let Some(network) = st.networks.get(&record.network_id) {
            self.dns.remote_added(record, network);
        }
    }

    /// At start: the other nodes' endpoints cached in the local store, so the VXLAN guard lets
    /// their hosts in from the first rebuild of the table, before (or without) the cluster
    /// store's resync, which replaces them. Their names are served after [`Self::serve_remote`].
    pub(super) fn restore_remote(&self, st: &mut Records) -> anyhow::Result<()> {
        let cached: Vec<EndpointRecord> = self.store.load_remote()?;
        if self.cluster.is_none() {
            // Without the cluster store nothing would ever replace them: stale names and peers.
            if !cached.is_empty() {
                tracing::warn!(
                    endpoints = cached.len(),
                    "the store holds other nodes' overlay endpoints, but cnetd runs without \
                     --cluster-store: overlay containers here cannot reach them until it runs with it again"
                );
            }
            return Ok(());
        }
        st.remote.extend(cached.into_iter().map(|record| (record.id.clone(), record)));
        Ok(())
    }

    /// At start, once the DNS is restored: the names of the restored remote endpoints.
    pub(super) fn serve_remote(&self, st: &Records) {
        for record in st.remote.values() {
            self.serve_remote_name(st, record);
        }
    }

    /// What the firewall's VXLAN guard must be: every VNI a driver carries a global network on,
    /// and the VTEPs of the other nodes' endpoints (the only hosts that send this node VXLAN).
    pub(super) fn vxlan_guard(&self, st: &Records) -> VxlanGuard {
        let vnis = st
            .networks
            .values()
            .filter(|n| n.scope == Scope::Global)
            .filter_map(|n| self.drivers.get(n.driver.as_str())?.vxlan_vni(n))
            .map(|v| (v.vni, v.through))
            .collect();
        let peers = st.remote.values().map(|r| r.vtep).collect();
        VxlanGuard { vnis, peers }
    }

    /// Makes the firewall's VXLAN guard match the records (nothing is sent to nft if it does
    /// already). A failure is logged: the next change tries again, and a restart rebuilds it.
    pub(super) async fn refresh_vxlan_guard(&self, st: &Records) {
        if let Err(e) = self.firewall.set_vxlan_guard(self.vxlan_guard(st)).await {
            tracing::error!(error = %e, "updating the firewall's VXLAN guard");
        }
    }

    /// The device's entries at once; the VXLAN guard (if the endpoint's host is new), the local
    /// cache (a durable write, some milliseconds: the endpoint is reachable without waiting for it)
    /// and then the name when `cache` is settled, so a name that resolves also survives a restart.
    async fn remote_added(&self, st: &mut Records, record: EndpointRecord, cache: &mut CacheWrites) {
        cache.batch.put_remote(&record.id, &record);
        let Some(network) = st.networks.get(&record.network_id).cloned() else {
            tracing::debug!(endpoint = %record.id, "endpoint of an unknown network, keeping it for later");
            st.remote.insert(record.id.clone(), record);
            return;
        };
        if let Some(remote) = Self::remote_endpoint_of(&record)
            && let Some(driver) = self.drivers.get(network.driver.as_str())
            && let Err(e) = driver.remote_endpoint_added(&network, &record.id, remote).await
        {
            tracing::warn!(endpoint = %record.id, error = %e, "programming a remote endpoint");
        }
        tracing::debug!(name = %record.name, node = %record.node, ip = ?record.ipv4, ipv6 = ?record.ipv6, "remote endpoint added");
        cache.names.push(record.id.clone());
        st.remote.insert(record.id.clone(), record);
    }

    async fn remote_removed(&self, st: &mut Records, network_id: &str, endpoint_id: &str, cache: &mut CacheWrites) {
        if st.remote.remove(endpoint_id).is_none() {
            return;
        }
        if let Some(network) = st.networks.get(network_id).cloned()
            && let Some(driver) = self.drivers.get(network.driver.as_str())
            && let Err(e) = driver.remote_endpoint_removed(&network, endpoint_id).await
        {
            tracing::warn!(endpoint = %endpoint_id, error = %e, "removing a remote endpoint");
        }
        self.dns.remote_removed(network_id, endpoint_id);
        cache.batch.delete_remote(endpoint_id);
    }

    /// Hands a global network's secret (made, rotated, or absent after a relist) to its driver.
    async fn secret_changed(
        &self,
        st: &Records,
        network_id: &str,
        record: Option<&cnet_cluster::secrets::SecretRecord>,
    ) {
        let Some(network) = st.networks.get(network_id) else {
            tracing::debug!(network = %id::short(network_id), "secret of an unknown network, ignored");
            return;
        };
        let secret = match record.map(|r| r.secret(network_id)).transpose() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(network = %network.name, error = %e, "ignoring the network's secret");
                return;
            }
        };
        if let Some(driver) = self.drivers.get(network.driver.as_str())
            && let Err(e) = driver.set_network_secret(network, secret).await
        {
            tracing::warn!(network = %network.name, error = %e, "applying the network's secret");
        }
    }

    async fn drop_global_network(&self, st: &mut Records, network_id: &str) {
        let Some(network) = st.networks.get(network_id).cloned() else { return };
        if network.scope != Scope::Global {
            return;
        }
        if st.endpoints_of_network(network_id).next().is_some() {
            tracing::warn!(network = %network.name, "the cluster removed a network this node still has endpoints on; keeping it here");
            return;
        }
        if let Some(driver) = self.drivers.get(network.driver.as_str()) {
            driver.forget_network(&network).await;
        }
        let stale: Vec<EndpointId> =
            st.remote.values().filter(|r| r.network_id == network_id).map(|r| r.id.clone()).collect();
        for id in &stale {
            st.remote.remove(id);
            self.dns.remote_removed(network_id, id);
        }
        self.persist_remote(&[], &stale.iter().map(|id| id.as_str()).collect::<Vec<_>>());
        let mut batch = Batch::new();
        batch.delete_network(network_id);
        if let Err(e) = self.store.commit(batch) {
            tracing::warn!(error = %e, "removing a cached global network");
        }
        st.remove_network(network_id);
        tracing::info!(network = %network.name, "global network removed by the cluster");
    }

    /// Makes this node match a fresh list of the cluster: global networks, other nodes' endpoints
    /// (only changed FDB and neighbour entries are touched), and this node's own registrations.
    async fn resync(&self, st: &mut Records, view: ClusterView) {
        let Some(cluster) = &self.cluster else { return };
        let me = cluster.node_name().to_string();
        // Networks.
        let listed: HashSet<&str> = view.networks.iter().map(|n| n.id.as_str()).collect();
        for network in &view.networks {
            self.cache_global_network(st, network);
        }
        let gone: Vec<NetworkId> = st
            .networks
            .values()
            .filter(|n| n.scope == Scope::Global && !listed.contains(n.id.as_str()))
            .map(|n| n.id.clone())
            .collect();
        for id in gone {
            self.drop_global_network(st, &id).await;
        }

        // Other nodes' endpoints.
        let remote: HashMap<EndpointId, EndpointRecord> =
            view.endpoints.iter().filter(|r| r.node != me).map(|r| (r.id.clone(), r.clone())).collect();
        for (id, old) in &st.remote {
            if remote.get(id) != Some(old) {
                self.dns.remote_removed(&old.network_id, id);
            }
        }
        for network in st.networks.values().filter(|n| n.scope == Scope::Global) {
            let Some(driver) = self.drivers.get(network.driver.as_str()) else { continue };
            let endpoints: HashMap<String, RemoteEndpoint> = remote
                .values()
                .filter(|r| r.network_id == network.id)
                .filter_map(|r| Self::remote_endpoint_of(r).map(|p| (r.id.to_string(), p)))
                .collect();
            if let Err(e) = driver.set_remote_endpoints(network, endpoints).await {
                tracing::warn!(network = %network.name, error = %e, "programming remote endpoints");
            }
        }
        let secrets: HashMap<&str, &cnet_cluster::secrets::SecretRecord> =
            view.secrets.iter().map(|(id, s)| (id.as_str(), s)).collect();
        for network in st.networks.values().filter(|n| n.scope == Scope::Global) {
            self.secret_changed(st, &network.id, secrets.get(network.id.as_str()).copied()).await;
        }
        let changed: Vec<&EndpointRecord> = remote.values().filter(|r| st.remote.get(&r.id) != Some(*r)).collect();
        for record in &changed {
            if let Some(network) = st.networks.get(&record.network_id) {
                self.dns.remote_added(record, network);
            }
        }
        let gone: Vec<&str> = st.remote.keys().filter(|id| !remote.contains_key(*id)).map(|id| id.as_str()).collect();
        self.persist_remote(&changed, &gone);
        st.remote = remote;

        // This node's own endpoints: registered exactly once each, stale ones withdrawn.
        let mine: HashMap<&str, &EndpointRecord> =
            view.endpoints.iter().filter(|r| r.node == me).map(|r| (r.id.as_str(), r)).collect();
        let local: Vec<Endpoint> = st
            .endpoints
            .values()
            .filter(|e| st.networks.get(&e.network_id).is_some_and(|n| n.scope == Scope::Global))
            .cloned()
            .collect();
        for endpoint in &local {
            let record = self.cluster_record(endpoint);
            if mine.get(endpoint.id.as_str()) == Some(&&record) {
                st.conflicts.remove(&endpoint.id);
                continue;
            }
            match cluster.register_endpoint(&record).await {
                Ok(()) => {
                    st.conflicts.remove(&endpoint.id);
                    tracing::info!(endpoint = %id::short(&endpoint.id), ip = ?endpoint.ipv4, "registered again in the cluster store");
                }
                Err(e) => {
                    tracing::error!(
                        endpoint = %id::short(&endpoint.id),
                        name = %endpoint.name,
                        ip = ?endpoint.ipv4,
                        error = %e,
                        "cannot register this endpoint again: it stays local and unreachable from other nodes"
                    );
                    st.conflicts.insert(endpoint.id.clone(), e.to_string());
                }
            }
        }
        for (id, record) in &mine {
            if !st.endpoints.contains_key(*id) {
                tracing::info!(endpoint = %id::short(id), "withdrawing a stale registration of this node");
                if let Err(e) = cluster.release_endpoint(record).await {
                    tracing::warn!(error = %e, "withdrawing a stale registration");
                }
            }
        }
        // Addresses leased for an attach that a kill cut short before it registered.
        let known: HashSet<&str> = st.endpoints.keys().map(|id| id.as_str()).collect();
        if let Err(e) = cluster.release_stale_addresses(&known).await {
            tracing::warn!(error = %e, "releasing stale address leases");
        }
        self.resyncs.send_modify(|n| *n += 1);
        tracing::info!(
            networks = view.networks.len(),
            remote_endpoints = st.remote.len(),
            local_endpoints = local.len(),
            conflicts = st.conflicts.len(),
            "resynced with the cluster store"
        );
    }
}
