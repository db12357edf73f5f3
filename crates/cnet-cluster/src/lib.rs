//! cnet's cluster store: what the hosts of one cluster share, kept in etcd and nowhere else (no
//! gossip, no consensus of cnet's own). Global-scope (overlay) networks, their VNIs and subnets,
//! their address leases and the endpoint table (IP, MAC, VTEP) every host programs into its VXLAN
//! devices, and the secrets of encrypted networks ([`secrets`]).
//!
//! - Uniqueness (network names, VNIs, subnets, addresses) comes from etcd transactions that compare
//!   what was read with what is there now; a lost race is retried, never papered over.
//! - A host's leases and endpoints are attached to its etcd lease, which [`Cluster`] keeps alive:
//!   a host gone longer than the TTL loses them, and the other hosts see the deletions.
//! - [`Cluster::start`] runs one session after another: (re)take the lease, list everything, hand
//!   it over as [`ClusterEvent::Resync`], then stream changes from the next revision. A failure
//!   (etcd down, a compacted revision, the lease lost) ends the session and the next one relists,
//!   so no update is ever missed.
//!
//! Every call is bounded by [`OP_TIMEOUT`] and fails with [`cnet_core::Error::Unavailable`] when
//! etcd cannot be reached: callers never hang.

pub mod alloc;
pub mod keys;
pub mod labs;
pub mod secrets;
mod session;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use cnet_core::options::{self, OVERLAY_VNI};
use cnet_core::{EndpointId, Error, Network, NetworkId, Result};
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, PutOptions, Txn, TxnOp};
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc};

/// Upper bound of one call to etcd.
pub const OP_TIMEOUT: Duration = Duration::from_secs(4);

/// How many times a transaction that lost a race is tried again.
const RETRIES: usize = 32;

/// A host of the cluster, as it registered itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    /// Its VTEP: where VXLAN packets for its endpoints go.
    pub address: IpAddr,
    /// RFC 3339, when it first joined.
    pub joined: String,
    /// Subnets of its local networks, kept out of overlay subnets.
    #[serde(default)]
    pub local_subnets: Vec<IpNetwork>,
}

/// One endpoint of a global network, as every host needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub id: EndpointId,
    pub network_id: NetworkId,
    /// The node it lives on, and that node's VTEP.
    pub node: String,
    pub vtep: IpAddr,
    /// The container's name, for DNS.
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// As the other node wrote it; parsed where it is used (a bad one is skipped, not fatal).
    pub mac: String,
    pub ipv4: Option<IpNetwork>,
    #[serde(default)]
    pub ipv6: Option<IpNetwork>,
    /// Its node's WireGuard public key (base64), for encrypted overlay networks: the other hosts
    /// make that node a peer of the network's WireGuard link. The private key never leaves the
    /// node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_key: Option<String>,
}

/// A node as `cnet node ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub record: NodeRecord,
    pub alive: bool,
    pub endpoints: usize,
}

/// Everything the cluster holds that a host acts on, at one revision.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    pub revision: i64,
    pub networks: Vec<Network>,
    pub endpoints: Vec<EndpointRecord>,
    pub nodes: Vec<NodeRecord>,
    pub alive: Vec<String>,
    /// The secrets of encrypted networks, by network id.
    pub secrets: Vec<(String, secrets::SecretRecord)>,
}

/// What the cluster tells its host, in order.
#[derive(Debug, Clone)]
pub enum ClusterEvent {
    /// A fresh list: forget what came before and make the host match this.
    Resync(Box<ClusterView>),
    NetworkPut(Box<Network>),
    NetworkDeleted(String),
    EndpointPut(Box<EndpointRecord>),
    EndpointDeleted {
        network_id: String,
        endpoint_id: String,
    },
    /// An encrypted network's secret was made or rotated.
    SecretPut {
        network_id: String,
        secret: secrets::SecretRecord,
    },
    NodeAlive(String),
    NodeGone(String),
    /// The store cannot be reached (the session ended); a Resync follows when it can again.
    Disconnected(String),
}

pub struct ClusterConfig {
    /// `http://host:port` URLs.
    pub endpoints: Vec<String>,
    /// The `--cluster-store` value, for messages.
    pub store: String,
    pub node_name: String,
    pub advertise: IpAddr,
    /// Lease TTL.
    pub ttl: Duration,
    /// Where the lease id is kept, so a restarted daemon takes its lease back before it expires.
    pub lease_file: PathBuf,
    /// This node's WireGuard public key (base64), published in its endpoint records.
    pub node_key: Option<String>,
}

/// Parses `etcd://HOST:PORT[,HOST:PORT…]` into `http://` URLs.
pub fn parse_store_url(url: &str) -> Result<Vec<String>> {
    let bad = |why: &str| Error::invalid(format!("invalid --cluster-store {url:?}: {why}"));
    let rest = url.strip_prefix("etcd://").ok_or_else(|| bad("expected etcd://HOST:PORT[,HOST:PORT...]"))?;
    let mut out = Vec::new();
    for part in rest.split(',') {
        let (host, port) = part.rsplit_once(':').ok_or_else(|| bad(&format!("{part:?} has no :PORT")))?;
        if host.is_empty() || host.contains('/') {
            return Err(bad(&format!("{part:?} is not HOST:PORT")));
        }
        port.parse::<u16>().map_err(|_| bad(&format!("{port:?} is not a port")))?;
        out.push(format!("http://{part}"));
    }
    Ok(out)
}

/// The cluster store client of one host.
pub struct Cluster {
    cfg: ClusterConfig,
    client: Client,
    lease: AtomicI64,
    connected: AtomicBool,
    /// Subnets of this host's local networks, published in its node record.
    local_subnets: Mutex<Vec<IpNetwork>>,
}

fn unavailable(store: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::unavailable(format!("cluster store {store}: {what}: {e}"))
}

/// HTTP/2 keepalive pings to etcd: above etcd's default minimum of 5 s, with a margin.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(6);

impl Cluster {
    /// Connects (lazily: etcd may be down now) and starts the session loop. Events go to the
    /// returned receiver, beginning with a [`ClusterEvent::Resync`] once etcd answers.
    pub async fn start(
        cfg: ClusterConfig,
        local_subnets: Vec<IpNetwork>,
    ) -> Result<(Arc<Cluster>, mpsc::UnboundedReceiver<ClusterEvent>)> {
        let opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(OP_TIMEOUT)
            // etcd refuses pings closer than its --grpc-keepalive-min-time (5 s by default): it
            // answers more frequent ones with GOAWAY, which ended the session every 10-30 s.
            .with_keep_alive(KEEPALIVE_INTERVAL, Duration::from_secs(2))
            .with_keep_alive_while_idle(true);
        let client =
            Client::connect(&cfg.endpoints, Some(opts)).await.map_err(|e| unavailable(&cfg.store, "connecting", e))?;
        let cluster = Arc::new(Cluster {
            cfg,
            client,
            lease: AtomicI64::new(0),
            connected: AtomicBool::new(false),
            local_subnets: Mutex::new(local_subnets),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(session::run(cluster.clone(), tx));
        Ok((cluster, rx))
    }

    pub fn store(&self) -> &str {
        &self.cfg.store
    }

    pub fn node_name(&self) -> &str {
        &self.cfg.node_name
    }

    pub fn advertise(&self) -> IpAddr {
        self.cfg.advertise
    }

    /// This node's WireGuard public key (base64), if it has one.
    pub fn node_key(&self) -> Option<&str> {
        self.cfg.node_key.as_deref()
    }

    pub fn ttl(&self) -> Duration {
        self.cfg.ttl
    }

    /// Whether the current session is up (etcd answered its last keep-alive).
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn lease_id(&self) -> i64 {
        self.lease.load(Ordering::Relaxed)
    }

    /// Fails at once while the session is down, so an attach does not wait for a timeout to
    /// learn what the keep-alive already knows.
    fn check_connected(&self) -> Result<()> {
        if self.is_connected() && self.lease_id() != 0 {
            Ok(())
        } else {
            Err(Error::unavailable(format!(
                "cluster store {} is unreachable: overlay networks cannot change until it is back",
                self.cfg.store
            )))
        }
    }

    async fn timed<T, E: std::fmt::Display>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = std::result::Result<T, E>>,
    ) -> Result<T> {
        match tokio::time::timeout(OP_TIMEOUT, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(&self.cfg.store, what, e)),
            Err(_) => Err(unavailable(&self.cfg.store, what, format!("no answer within {OP_TIMEOUT:?}"))),
        }
    }

    async fn get_prefix(&self, prefix: &str, what: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let mut c = self.client.clone();
        let resp = self.timed(what, c.get(prefix, Some(GetOptions::new().with_prefix()))).await?;
        Ok(resp.kvs().iter().map(|kv| (String::from_utf8_lossy(kv.key()).into_owned(), kv.value().to_vec())).collect())
    }

    /// The records under `prefix` that parse (see [`decode`]).
    async fn records<T: for<'de> Deserialize<'de>>(&self, prefix: &str, what: &str) -> Result<Vec<T>> {
        Ok(self.get_prefix(prefix, what).await?.iter().filter_map(|(k, v)| decode(k, v)).collect())
    }

    async fn networks(&self) -> Result<Vec<Network>> {
        self.records(keys::NETWORKS, "listing networks").await
    }

    async fn node_records(&self) -> Result<Vec<NodeRecord>> {
        self.records(keys::NODES, "listing nodes").await
    }

    /// Publishes this host's local subnets (best effort: they are sent again at every session).
    pub async fn set_local_subnets(&self, subnets: Vec<IpNetwork>) {
        *self.local_subnets.lock().await = subnets;
        if self.is_connected()
            && let Err(e) = self.put_node().await
        {
            tracing::warn!(error = %e, "cannot publish this node's local subnets");
        }
    }

    async fn put_node(&self) -> Result<()> {
        let mut c = self.client.clone();
        let key = keys::node(&self.cfg.node_name);
        let joined = match self.timed("reading this node", c.get(key.clone(), None)).await?.kvs().first() {
            Some(kv) => serde_json::from_slice::<NodeRecord>(kv.value()).map(|n| n.joined).ok(),
            None => None,
        };
        let record = NodeRecord {
            name: self.cfg.node_name.clone(),
            address: self.cfg.advertise,
            joined: joined.unwrap_or_else(cnet_core::time::now_rfc3339),
            local_subnets: self.local_subnets.lock().await.clone(),
        };
        let alive = keys::alive(&self.cfg.node_name);
        let ops = [
            TxnOp::put(key, json(&record), None),
            TxnOp::put(
                alive.clone(),
                cnet_core::time::now_rfc3339(),
                Some(PutOptions::new().with_lease(self.lease_id())),
            ),
        ];
        // The name is this node's if nobody is alive under it, or if it is this node's own lease.
        for cmp in [
            Compare::create_revision(alive.clone(), CompareOp::Equal, 0),
            Compare::lease(alive.clone(), CompareOp::Equal, self.lease_id()),
        ] {
            if self
                .timed("registering this node", c.txn(Txn::new().when([cmp]).and_then(ops.clone())))
                .await?
                .succeeded()
            {
                return Ok(());
            }
        }
        Err(Error::precondition(format!(
            "node name {} is taken by another live node: give each cnetd its own --node-name",
            self.cfg.node_name
        )))
    }

    /// The nodes with their liveness and endpoint counts.
    pub async fn nodes(&self) -> Result<Vec<NodeStatus>> {
        let records = self.node_records().await?;
        let alive = self.get_prefix(keys::ALIVE, "listing live nodes").await?;
        let eps: Vec<EndpointRecord> = self.records(keys::ENDPOINTS, "listing endpoints").await?;
        Ok(records
            .into_iter()
            .map(|record| NodeStatus {
                alive: alive.iter().any(|(k, _)| keys::parse(k) == keys::Key::Alive(&record.name)),
                endpoints: eps.iter().filter(|e| e.node == record.name).count(),
                record,
            })
            .collect())
    }

    /// Creates a global network: picks (or checks) its VNI and subnet against every network of
    /// the cluster and every node's local subnets, and writes it in one transaction that fails if
    /// any other creation slipped in since the read (then it is planned again).
    ///
    /// A family without a pool in `network.pools` gets one chosen ([`alloc::missing_subnets`]:
    /// a /24 of 10.0.0.0/8, and with `--ipv6` a unique-local /64); its [`OVERLAY_VNI`] option, if
    /// set, is the VNI asked for (else the lowest free one from 4096); `host_taken` are subnets
    /// this host cannot use (its routes).
    ///
    /// `default_subnets` false (a driver whose plan is [`cnet_core::PoolPlan::LinkOnly`], such as
    /// vxlan links): no subnet is chosen, the network has only the subnets it was given, and
    /// they are not checked for overlaps (a link's addresses are only in its two containers).
    /// The subnets of networks for which `reserves_subnets` is false (links) block nothing.
    pub async fn create_network(
        &self,
        mut network: Network,
        host_taken: &[IpNetwork],
        default_subnets: bool,
        reserves_subnets: impl Fn(&Network) -> bool,
        build_default_pool: impl Fn(IpNetwork) -> Result<cnet_core::IpamPool>,
    ) -> Result<Network> {
        let requested_vni = network.option(OVERLAY_VNI).map(options::parse_vni).transpose()?;
        self.check_connected()?;
        let requested_pools = network.pools.clone();
        for _ in 0..RETRIES {
            let mut c = self.client.clone();
            let alloc_version = self
                .timed("reading the allocation counter", c.get(keys::ALLOC, None))
                .await?
                .kvs()
                .first()
                .map(|kv| kv.version())
                .unwrap_or(0);
            let networks = self.networks().await?;
            if networks.iter().any(|n| n.name == network.name) {
                return Err(Error::exists(format!("network with name {} already exists", network.name)));
            }
            let vni = alloc::choose_vni(&networks, requested_vni)?;
            let mut taken: Vec<(String, IpNetwork)> = networks
                .iter()
                .filter(|n| reserves_subnets(n))
                .flat_map(|n| n.pools.iter().map(move |p| (format!("network {}", n.name), p.subnet)))
                .collect();
            for node in self.node_records().await? {
                taken.extend(node.local_subnets.iter().map(|s| (format!("a local network of node {}", node.name), *s)));
            }
            // A link's subnets (no defaults) are in its two containers only: no overlap matters.
            for pool in requested_pools.iter().filter(|_| default_subnets) {
                if let Some((who, s)) = taken.iter().find(|(_, s)| cnet_core::ipam::overlaps(s, &pool.subnet)) {
                    return Err(Error::precondition(format!("subnet {} overlaps with {who} ({s})", pool.subnet)));
                }
            }
            network.pools = requested_pools.clone();
            let mut all: Vec<IpNetwork> = taken.iter().map(|(_, s)| *s).collect();
            all.extend_from_slice(host_taken);
            all.extend(requested_pools.iter().map(|p| p.subnet));
            let missing = if default_subnets { alloc::missing_subnets(&network, &all)? } else { vec![] };
            for subnet in missing {
                let pool = build_default_pool(subnet)?;
                // IPv4 first, as a bridge network's pools.
                match subnet.is_ipv4() {
                    true => network.pools.insert(0, pool),
                    false => network.pools.push(pool),
                }
            }
            network.options.insert(OVERLAY_VNI.to_string(), vni.to_string());
            let txn = Txn::new()
                .when([
                    Compare::version(keys::ALLOC, CompareOp::Equal, alloc_version),
                    Compare::create_revision(keys::name(&network.name), CompareOp::Equal, 0),
                    Compare::create_revision(keys::vni(vni), CompareOp::Equal, 0),
                ])
                .and_then(
                    [
                        TxnOp::put(keys::network(&network.id), json(&network), None),
                        TxnOp::put(keys::name(&network.name), network.id.to_string(), None),
                        TxnOp::put(keys::vni(vni), network.id.to_string(), None),
                        TxnOp::put(keys::ALLOC, network.id.to_string(), None),
                    ]
                    .into_iter()
                    // An encrypted network's first secret, after the network: a watcher sees the
                    // network before its secret.
                    .chain(secrets::initial_put(&network))
                    .collect::<Vec<_>>(),
                );
            if self.timed("creating the network", c.txn(txn)).await?.succeeded() {
                return Ok(network);
            }
            tracing::debug!(network = %network.name, "network creation raced another, planning again");
        }
        Err(Error::unavailable(format!("creating network {}: too much contention in the cluster store", network.name)))
    }

    /// Removes a global network everywhere, unless some host still has an endpoint on it.
    pub async fn remove_network(&self, network: &Network) -> Result<()> {
        self.check_connected()?;
        for _ in 0..RETRIES {
            let mut c = self.client.clone();
            let gen_rev = self
                .timed("reading the network's generation", c.get(keys::netgen(&network.id), None))
                .await?
                .kvs()
                .first()
                .map(|kv| kv.mod_revision())
                .unwrap_or(0);
            let eps: Vec<EndpointRecord> =
                self.records(&keys::endpoints(&network.id), "listing the network's endpoints").await?;
            if !eps.is_empty() {
                let mut holders: Vec<String> = eps.iter().map(|e| format!("{} on {}", e.name, e.node)).collect();
                holders.sort();
                return Err(Error::precondition(format!(
                    "error while removing network {}: network has active endpoints ({})",
                    network.name,
                    holders.join(", ")
                )));
            }
            let mut ops = vec![
                TxnOp::delete(keys::network(&network.id), None),
                TxnOp::delete(keys::name(&network.name), None),
                TxnOp::delete(keys::netgen(&network.id), None),
                TxnOp::delete(keys::secret(&network.id), None),
                TxnOp::delete(keys::ips(&network.id), Some(etcd_client::DeleteOptions::new().with_prefix())),
                TxnOp::put(keys::ALLOC, format!("-{}", network.id), None),
            ];
            if let Some(vni) = options::vni_of(network) {
                ops.push(TxnOp::delete(keys::vni(vni), None));
            }
            let txn = Txn::new()
                .when([Compare::mod_revision(keys::netgen(&network.id), CompareOp::Equal, gen_rev)])
                .and_then(ops);
            if self.timed("removing the network", c.txn(txn)).await?.succeeded() {
                return Ok(());
            }
        }
        Err(Error::unavailable(format!("removing network {}: too much contention in the cluster store", network.name)))
    }

    /// Leases the addresses of a new endpoint of a global network, `wanted_v4`/`wanted_v6` if given,
    /// else the next free ones: an IPv4 address where the network has an IPv4 subnet (an overlay
    /// network always has one; a vxlan link only if it was given one), an IPv6 address where the
    /// network has IPv6 (`--ipv6`). Compare-and-swap in one transaction: no address key may exist
    /// (and the network must), so two hosts never hand out one address and no half of a pair is
    /// ever left leased. The leases are tied to this host's etcd lease. An endpoint with no
    /// address still bumps the network's generation, so a removal cannot race its attach.
    pub async fn lease_addresses(
        &self,
        network: &Network,
        wanted_v4: Option<IpAddr>,
        wanted_v6: Option<IpAddr>,
        endpoint_id: &str,
    ) -> Result<(Option<IpNetwork>, Option<IpNetwork>)> {
        self.check_connected()?;
        let pool_v4 = match (network.pool_v4(), wanted_v4) {
            (Some(pool), _) => Some(pool.clone()),
            (None, Some(ip)) => {
                return Err(Error::invalid(format!(
                    "address {ip}: network {} has no IPv4 subnet (create it with --subnet)",
                    network.name
                )));
            }
            (None, None) => None,
        };
        let pool_v6 = match (network.enable_ipv6.then(|| network.pool_v6()).flatten(), wanted_v6) {
            (Some(pool), _) => Some(pool.clone()),
            (None, Some(ip)) => {
                return Err(Error::invalid(format!(
                    "address {ip}: network {} has no IPv6 subnet (create it with --ipv6)",
                    network.name
                )));
            }
            (None, None) => None,
        };
        for _ in 0..RETRIES {
            let mut c = self.client.clone();
            let resp = self
                .timed(
                    "listing leased addresses",
                    c.get(keys::ips(&network.id), Some(GetOptions::new().with_prefix().with_keys_only())),
                )
                .await?;
            let leased: Vec<IpAddr> = resp
                .kvs()
                .iter()
                .filter_map(|kv| String::from_utf8_lossy(kv.key()).rsplit('/').next().and_then(|s| s.parse().ok()))
                .collect();
            let v4 = pool_v4.as_ref().map(|pool| alloc::next_address(pool, &leased, wanted_v4)).transpose()?;
            let v6 = pool_v6.as_ref().map(|pool| alloc::next_address(pool, &leased, wanted_v6)).transpose()?;
            let mut cmps = vec![Compare::version(keys::network(&network.id), CompareOp::Greater, 0)];
            let mut ops = vec![TxnOp::put(keys::netgen(&network.id), endpoint_id, None)];
            for ip in v4.into_iter().chain(v6).map(|a| a.ip()) {
                let key = keys::ip(&network.id, ip);
                cmps.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0));
                ops.push(TxnOp::put(key, endpoint_id, Some(PutOptions::new().with_lease(self.lease_id()))));
            }
            if self.timed("leasing addresses", c.txn(Txn::new().when(cmps).and_then(ops))).await?.succeeded() {
                return Ok((v4, v6));
            }
            let exists = self.timed("reading the network", c.get(keys::network(&network.id), None)).await?;
            if exists.kvs().is_empty() {
                return Err(Error::not_found(format!("network {} was removed", network.name)));
            }
            for ip in [wanted_v4, wanted_v6].into_iter().flatten() {
                let holder = self.timed("reading an address lease", c.get(keys::ip(&network.id, ip), None)).await?;
                if !holder.kvs().is_empty() {
                    return Err(Error::precondition(format!(
                        "address {ip} is already in use on network {}",
                        network.name
                    )));
                }
            }
        }
        Err(Error::unavailable(format!(
            "leasing an address on {}: too much contention in the cluster store",
            network.name
        )))
    }

    /// Publishes an endpoint whose addresses this host leased (or leases them again after the
    /// host's lease was lost): fails with AlreadyExists naming the holder if another endpoint took
    /// one of its addresses meanwhile.
    pub async fn register_endpoint(&self, record: &EndpointRecord) -> Result<()> {
        self.check_connected()?;
        let mut c = self.client.clone();
        let with_lease = || Some(PutOptions::new().with_lease(self.lease_id()));
        let ep_key = keys::endpoint(&record.network_id, &record.id);
        let ip_keys: Vec<(IpAddr, String)> = [record.ipv4, record.ipv6]
            .into_iter()
            .flatten()
            .map(|a| (a.ip(), keys::ip(&record.network_id, a.ip())))
            .collect();
        let mut ops: Vec<TxnOp> =
            ip_keys.iter().map(|(_, k)| TxnOp::put(k.clone(), record.id.to_string(), with_lease())).collect();
        ops.push(TxnOp::put(ep_key, json(record), with_lease()));
        let network_exists = || Compare::version(keys::network(&record.network_id), CompareOp::Greater, 0);
        // At a connect every address is the endpoint's own already (just leased): one transaction.
        let mut cmps: Vec<Compare> =
            ip_keys.iter().map(|(_, k)| Compare::value(k.clone(), CompareOp::Equal, record.id.to_string())).collect();
        cmps.push(network_exists());
        if self.timed("registering the endpoint", c.txn(Txn::new().when(cmps).and_then(ops.clone()))).await?.succeeded()
        {
            return Ok(());
        }
        // Else each address must be its own or free; what holds now is read and then required.
        for _ in 0..RETRIES {
            let mut cmps = vec![network_exists()];
            for (ip, key) in &ip_keys {
                let holder = self.timed("reading the address holder", c.get(key.clone(), None)).await?;
                match holder.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned()) {
                    None => cmps.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0)),
                    Some(h) if h == record.id.as_str() => {
                        cmps.push(Compare::value(key.clone(), CompareOp::Equal, record.id.to_string()))
                    }
                    Some(h) => {
                        return Err(Error::exists(format!(
                            "address {ip} on this network was taken by endpoint {} while this host was away",
                            cnet_core::id::short(&h)
                        )));
                    }
                }
            }
            if self
                .timed("registering the endpoint", c.txn(Txn::new().when(cmps).and_then(ops.clone())))
                .await?
                .succeeded()
            {
                return Ok(());
            }
            let network = self.timed("reading the network", c.get(keys::network(&record.network_id), None)).await?;
            if network.kvs().is_empty() {
                return Err(Error::not_found("the network was removed from the cluster while this host was away"));
            }
        }
        Err(Error::unavailable("registering the endpoint: too much contention in the cluster store"))
    }

    /// [`Cluster::register_endpoint`] for a new endpoint of a network that takes at most `max`
    /// endpoints cluster-wide (a vxlan link: two). The count and the write are one transaction
    /// on the network's generation (`netgen`, which this write bumps too), so two hosts
    /// registering at once cannot both take the last place: the later one reads again and is
    /// refused. The error names the network and the endpoints it has (container and node).
    /// The addresses must be the endpoint's own (just leased).
    pub async fn register_endpoint_limited(
        &self,
        record: &EndpointRecord,
        network: &Network,
        max: usize,
    ) -> Result<()> {
        self.check_connected()?;
        let mut c = self.client.clone();
        let with_lease = || Some(PutOptions::new().with_lease(self.lease_id()));
        let gen_key = keys::netgen(&record.network_id);
        for _ in 0..RETRIES {
            let gen_rev = self
                .timed("reading the network's generation", c.get(gen_key.clone(), None))
                .await?
                .kvs()
                .first()
                .map(|kv| kv.mod_revision())
                .unwrap_or(0);
            let on_it: Vec<EndpointRecord> = self
                .records::<EndpointRecord>(&keys::endpoints(&record.network_id), "listing the network's endpoints")
                .await?
                .into_iter()
                .filter(|e| e.id != record.id)
                .collect();
            if on_it.len() >= max {
                let mut holders: Vec<String> = on_it
                    .iter()
                    .map(|e| {
                        let name = if e.name.is_empty() { cnet_core::id::short(&e.id) } else { e.name.as_str() };
                        format!("{name} (on node {})", e.node)
                    })
                    .collect();
                holders.sort();
                return Err(Error::precondition(format!(
                    "network {} (driver {}) takes at most {max} endpoints and already has them: containers {}; \
                     disconnect one of them first",
                    network.name,
                    network.driver,
                    holders.join(" and ")
                )));
            }
            let mut cmps = vec![
                Compare::version(keys::network(&record.network_id), CompareOp::Greater, 0),
                Compare::mod_revision(gen_key.clone(), CompareOp::Equal, gen_rev),
            ];
            let mut ops = vec![TxnOp::put(gen_key.clone(), record.id.to_string(), None)];
            for ip in [record.ipv4, record.ipv6].into_iter().flatten() {
                let key = keys::ip(&record.network_id, ip.ip());
                cmps.push(Compare::value(key.clone(), CompareOp::Equal, record.id.to_string()));
                ops.push(TxnOp::put(key, record.id.to_string(), with_lease()));
            }
            ops.push(TxnOp::put(keys::endpoint(&record.network_id, &record.id), json(record), with_lease()));
            if self.timed("registering the endpoint", c.txn(Txn::new().when(cmps).and_then(ops))).await?.succeeded() {
                return Ok(());
            }
            let exists = self.timed("reading the network", c.get(keys::network(&record.network_id), None)).await?;
            if exists.kvs().is_empty() {
                return Err(Error::not_found(format!("network {} was removed", network.name)));
            }
            tracing::debug!(network = %network.name, "endpoint registration raced another, counting again");
        }
        Err(Error::unavailable("registering the endpoint: too much contention in the cluster store"))
    }

    /// Withdraws an endpoint and returns its addresses (each only if it is still its own).
    pub async fn release_endpoint(&self, record: &EndpointRecord) -> Result<()> {
        let mut c = self.client.clone();
        let mut txn_ops = vec![TxnOp::delete(keys::endpoint(&record.network_id, &record.id), None)];
        for ip in [record.ipv4, record.ipv6].into_iter().flatten() {
            let ip_key = keys::ip(&record.network_id, ip.ip());
            txn_ops.push(TxnOp::txn(
                Txn::new()
                    .when([Compare::value(ip_key.clone(), CompareOp::Equal, record.id.to_string())])
                    .and_then([TxnOp::delete(ip_key, None)]),
            ));
        }
        self.timed("withdrawing the endpoint", c.txn(Txn::new().and_then(txn_ops))).await?;
        Ok(())
    }

    /// Releases this host's address leases whose endpoint it does not have: an attach cut short
    /// between its lease and its registration (cnetd killed), whose address would otherwise stay
    /// taken as long as this host's etcd lease lives, since a restarted cnetd takes that lease
    /// back. Each goes only if unchanged since it was read. Returns how many went.
    pub async fn release_stale_addresses(&self, known_endpoints: &std::collections::HashSet<&str>) -> Result<usize> {
        let lease = self.lease_id();
        let mut c = self.client.clone();
        let resp =
            self.timed("listing leased addresses", c.get(keys::IPS, Some(GetOptions::new().with_prefix()))).await?;
        let mut released = 0;
        for kv in resp.kvs().iter().filter(|kv| lease != 0 && kv.lease() == lease) {
            let endpoint = String::from_utf8_lossy(kv.value());
            if known_endpoints.contains(endpoint.as_ref()) {
                continue;
            }
            let txn = Txn::new()
                .when([Compare::mod_revision(kv.key(), CompareOp::Equal, kv.mod_revision())])
                .and_then([TxnOp::delete(kv.key(), None)]);
            if self.timed("releasing a stale address", c.txn(txn)).await?.succeeded() {
                tracing::info!(key = %String::from_utf8_lossy(kv.key()), endpoint = %cnet_core::id::short(&endpoint), "released an address this host leased for an endpoint it does not have");
                released += 1;
            }
        }
        Ok(released)
    }

    /// Returns an address leased for an endpoint that never came up.
    pub async fn release_address(&self, network_id: &str, ip: IpAddr, endpoint_id: &str) -> Result<()> {
        let mut c = self.client.clone();
        let key = keys::ip(network_id, ip);
        let txn = Txn::new()
            .when([Compare::value(key.clone(), CompareOp::Equal, endpoint_id)])
            .and_then([TxnOp::delete(key, None)]);
        self.timed("returning the address", c.txn(txn)).await?;
        Ok(())
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

/// Decodes a record, logging (not failing on) one that does not parse: one bad key must not stop a
/// host from reading the rest.
fn decode<T: for<'de> Deserialize<'de>>(key: &str, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, error = %e, "ignoring a record of the cluster store that does not parse");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(parse_store_url("etcd://10.0.0.1:2379").unwrap(), vec!["http://10.0.0.1:2379"]);
        assert_eq!(
            parse_store_url("etcd://a:1,b:2").unwrap(),
            vec!["http://a:1".to_string(), "http://b:2".to_string()]
        );
        for bad in ["http://a:1", "etcd://a", "etcd://a:x", "etcd://:1"] {
            let e = parse_store_url(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
