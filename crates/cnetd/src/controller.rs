//! The controller: owns the records (networks, sandboxes, endpoints), IPAM and the store, and drives
//! the drivers through the CNM lifecycle. It speaks to the kernel only through cnet-kernel's sandbox
//! operations (namespace files, moving an interface in) and never builds netlink messages itself.
//!
//! Every operation runs under one lock and ends in one store transaction, so what the store holds is
//! always what the kernel was told; a failing step undoes the steps before it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cnet_cluster::{Cluster, ClusterEvent, ClusterView, EndpointRecord};
use cnet_core::ipam::{self, PoolRequest};
use cnet_core::names::{NameKind, validate_name};
use cnet_core::{
    DnsConfig, Driver, Endpoint, Error, Network, PortBinding, Result, ResultExt, Sandbox, SandboxInterface, Scope, id,
};
use cnet_firewall::Firewall;
use cnet_kernel::{InterfaceConfig, Kernel, NetnsHandle};
use cnet_store::{Batch, Store};
use tokio::sync::Mutex;

use crate::files;

mod cluster;
mod records;

use records::Records;

/// What `cnet network create` asks for, parsed but not yet checked against state.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub name: String,
    pub driver: String,
    pub pools: Vec<PoolRequest>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub internal: bool,
    pub attachable: bool,
    pub enable_ipv6: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SandboxRequest {
    pub container_id: String,
    pub name: String,
    pub hostname: String,
    pub domainname: String,
    pub host_network: bool,
    pub dns: DnsConfig,
    pub extra_hosts: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    pub sandbox: String,
    pub network: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub aliases: Vec<String>,
    pub ports: Vec<PortBinding>,
    pub mac: Option<String>,
}

pub struct Config {
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
    /// Upstream resolvers of the embedded DNS; empty: the host's.
    pub dns: Vec<IpAddr>,
}

pub struct Controller {
    cfg: Config,
    kernel: Kernel,
    store: Store,
    drivers: BTreeMap<&'static str, Arc<dyn Driver>>,
    state: Mutex<Records>,
    dns: crate::dns::Dns,
    /// Relays of ports published on ::1 (see [`crate::proxy`]).
    proxies: crate::proxy::Proxies,
    /// cnet's nftables table, shared with the drivers, which describe their rules to it; the
    /// controller decides when a restore applies them (once, after every driver restored).
    firewall: Arc<Firewall>,
    /// Drivers this daemon was started without, with why (the user is told when asking for one).
    unavailable: BTreeMap<&'static str, String>,
    /// The cluster store, when cnetd joined a cluster.
    cluster: Option<Arc<Cluster>>,
}

impl Controller {
    /// Opens the store, restores every record into the kernel (re-creating what is missing and
    /// removing orphans), and makes the built-in networks on first start.
    pub async fn start(
        cfg: Config,
        kernel: Kernel,
        drivers: Vec<Arc<dyn Driver>>,
        unavailable: BTreeMap<&'static str, String>,
        firewall: Arc<Firewall>,
        cluster: Option<Arc<Cluster>>,
    ) -> anyhow::Result<Controller> {
        let store = Store::open(&cfg.state_dir)?;
        let drivers = drivers.into_iter().map(|d| (d.name(), d)).collect();
        let dns = crate::dns::Dns::new(&cfg.dns);
        let proxies = crate::proxy::Proxies::default();
        let state = Mutex::new(Records::default());
        let ctl = Controller { cfg, kernel, store, drivers, state, dns, proxies, unavailable, firewall, cluster };
        std::fs::create_dir_all(ctl.netns_dir())?;
        cnet_kernel::netns::bind_current(&ctl.host_netns_path())?;
        ctl.restore().await?;
        ctl.ensure_builtin_networks().await?;
        Ok(ctl)
    }

    pub fn run_dir(&self) -> &Path {
        &self.cfg.run_dir
    }

    pub fn state_dir(&self) -> &Path {
        &self.cfg.state_dir
    }

    fn netns_dir(&self) -> PathBuf {
        self.cfg.run_dir.join("netns")
    }

    /// The daemon's own namespace, bound at a stable path: the sandbox of every `--network host` container.
    fn host_netns_path(&self) -> PathBuf {
        self.netns_dir().join("host")
    }

    fn driver(&self, name: &str) -> Result<&Arc<dyn Driver>> {
        if let Some(why) = self.unavailable.get(name) {
            return Err(Error::precondition(why.clone()));
        }
        self.drivers.get(name).ok_or_else(|| {
            let known: Vec<&str> =
                self.drivers.iter().filter(|(_, d)| d.capabilities().user_creatable).map(|(n, _)| *n).collect();
            Error::invalid(format!("unknown network driver {name:?}: available drivers are {}", known.join(", ")))
        })
    }

    async fn restore(&self) -> anyhow::Result<()> {
        let snap = self.store.load()?;
        let mut st = self.state.lock().await;
        let mut batch = Batch::new();
        for n in snap.networks {
            st.insert_network(n);
        }
        // A sandbox whose namespace is gone (the host rebooted, /run was cleared) cannot come back:
        // its container is gone too. Drop it with its endpoints and leases.
        for s in snap.sandboxes {
            if s.host_network || cnet_kernel::netns::is_mounted(Path::new(&s.netns_path)) {
                st.sandboxes.insert(s.id.clone(), s);
            } else {
                tracing::warn!(sandbox = %s.id, path = %s.netns_path, "sandbox namespace is gone, dropping it");
                batch.delete_sandbox(&s.id);
            }
        }
        for e in snap.endpoints {
            if st.sandboxes.contains_key(&e.sandbox_id) && st.networks.contains_key(&e.network_id) {
                st.restore_endpoint(e);
            } else {
                tracing::warn!(endpoint = %e.id, "endpoint of a vanished sandbox or network, dropping it");
                batch.delete_endpoint(&e.id);
            }
        }
        self.store.commit(batch)?;

        // Every driver describes its rules during its restore; the table is then made exactly what
        // they described, in one transaction, whatever order the drivers restore in.
        self.firewall.begin_restore().await;
        for (name, driver) in &self.drivers {
            let networks: Vec<Network> = st.networks.values().filter(|n| n.driver == *name).cloned().collect();
            let endpoints: Vec<Endpoint> =
                st.endpoints.values().filter(|e| networks.iter().any(|n| n.id == e.network_id)).cloned().collect();
            driver.restore(&networks, &endpoints).await.map_err(|e| anyhow::anyhow!("restoring {name} driver: {e}"))?;
        }
        self.firewall.finish_restore().await.map_err(|e| anyhow::anyhow!("restoring the firewall table: {e}"))?;

        // Namespace files that no sandbox claims are leftovers of a crash between steps.
        let claimed: Vec<PathBuf> = st.sandboxes.values().map(|s| PathBuf::from(&s.netns_path)).collect();
        for entry in std::fs::read_dir(self.netns_dir())? {
            let path = entry?.path();
            if path != self.host_netns_path() && !claimed.contains(&path) {
                tracing::info!(path = %path.display(), "removing orphan namespace");
                cnet_kernel::netns::remove(&path)?;
            }
        }
        // Ports on ::1 are relayed by cnetd itself: they died with the previous run.
        for e in st.endpoints.values() {
            if let Err(err) = self.proxies.start(e) {
                tracing::warn!(endpoint = %e.id, error = %err, "cannot relay published ports on ::1 again");
            }
        }
        self.dns.restore(&st.sandboxes, &st.endpoints, &st.networks).await;
        tracing::info!(
            networks = st.networks.len(),
            sandboxes = st.sandboxes.len(),
            endpoints = st.endpoints.len(),
            "state restored"
        );
        Ok(())
    }

    async fn ensure_builtin_networks(&self) -> anyhow::Result<()> {
        let existing: Vec<String> = self.state.lock().await.networks.values().map(|n| n.name.clone()).collect();
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "none")] {
            if existing.iter().any(|n| n == name) {
                continue;
            }
            let req = NetworkRequest { name: name.into(), driver: driver.into(), ..Default::default() };
            self.create_network_inner(req, true)
                .await
                .map_err(|e| anyhow::anyhow!("creating built-in network {name}: {e}"))?;
            tracing::info!(network = name, "created built-in network");
        }
        Ok(())
    }

    // ------------------------------------------------------------------ networks

    pub async fn create_network(&self, req: NetworkRequest) -> Result<Network> {
        let network = self.create_network_inner(req, false).await?;
        if network.scope == Scope::Local {
            self.publish_local_subnets().await;
        }
        Ok(network)
    }

    async fn create_network_inner(&self, req: NetworkRequest, builtin: bool) -> Result<Network> {
        validate_name(NameKind::Network, &req.name)?;
        let driver_name = if req.driver.is_empty() { "bridge" } else { req.driver.as_str() };
        let driver = self.driver(driver_name)?.clone();
        let caps = driver.capabilities();
        if !caps.user_creatable && !builtin {
            return Err(Error::invalid(format!(
                "only one instance of {driver_name:?} network is allowed: it is built in, use it by name"
            )));
        }
        if req.labels.keys().any(String::is_empty) {
            return Err(Error::invalid("invalid label: empty key"));
        }

        let mut st = self.state.lock().await;
        if st.networks.values().any(|n| n.name == req.name) {
            return Err(Error::exists(format!("network with name {} already exists", req.name)));
        }
        if caps.scope == Scope::Global {
            return self.create_global_network(&mut st, req, &*driver).await;
        }
        let pools = if caps.needs_ipam { self.plan_pools(&st, &req, builtin).await? } else { vec![] };
        let network = Network {
            id: id::new_id(),
            name: req.name.clone(),
            driver: driver_name.to_string(),
            scope: caps.scope,
            pools,
            options: req.options,
            labels: req.labels,
            internal: req.internal,
            attachable: req.attachable,
            enable_ipv6: req.enable_ipv6,
            created: cnet_core::time::now_rfc3339(),
            builtin,
        };
        driver.validate_network(&network)?;
        driver.create_network(&network).await?;
        let mut batch = Batch::new();
        batch.put_network(&network);
        if let Err(e) = self.store.commit(batch) {
            let _ = driver.delete_network(&network).await;
            return Err(Error::internal(e.to_string()));
        }
        st.insert_network(network.clone());
        tracing::info!(network = %network.name, id = %network.short_id(), driver = %network.driver, "network created");
        Ok(network)
    }

    /// A global network is made in the cluster store (which picks its VNI and subnet, unique
    /// cluster-wide); this node caches it like every other node does when its watch sees it. No
    /// kernel object exists until a local endpoint joins.
    async fn create_global_network(
        &self,
        st: &mut Records,
        req: NetworkRequest,
        driver: &dyn Driver,
    ) -> Result<Network> {
        let cluster = self.cluster.as_ref().expect("global drivers exist only in a cluster");
        let pools = st.requested_pools(&req.pools)?;
        let network = Network {
            id: id::new_id(),
            name: req.name.clone(),
            driver: driver.name().to_string(),
            scope: Scope::Global,
            pools,
            options: req.options,
            labels: req.labels,
            internal: req.internal,
            attachable: true,
            enable_ipv6: req.enable_ipv6,
            created: cnet_core::time::now_rfc3339(),
            builtin: false,
        };
        driver.validate_network(&network)?;
        let mut host_taken: Vec<ipnetwork::IpNetwork> =
            self.kernel.route_destinations().await.internal("listing host routes")?;
        host_taken.extend(st.taken_subnets());
        let network = cluster
            .create_network(network, &host_taken, |subnet| ipam::build_pool(&PoolRequest::default(), subnet, true))
            .await?;
        self.cache_global_network(st, &network);
        tracing::info!(network = %network.name, id = %network.short_id(), options = ?network.options, "global network created");
        Ok(network)
    }

    /// Keeps a global network in the local store too, so a restart without etcd still knows the
    /// networks its endpoints are on.
    fn cache_global_network(&self, st: &mut Records, network: &Network) {
        if st.networks.get(&network.id) == Some(network) {
            return;
        }
        let mut batch = Batch::new();
        batch.put_network(network);
        if let Err(e) = self.store.commit(batch) {
            tracing::warn!(network = %network.name, error = %e, "cannot cache the global network locally");
        }
        st.insert_network(network.clone());
    }

    /// Checks the requested subnets against each other and every existing network, and picks
    /// default subnets where none was given.
    async fn plan_pools(&self, st: &Records, req: &NetworkRequest, builtin: bool) -> Result<Vec<cnet_core::IpamPool>> {
        if let Some(subnet) = req.pools.iter().filter_map(|p| p.subnet).find(|s| s.is_ipv6() && !req.enable_ipv6) {
            return Err(Error::invalid(format!("subnet {subnet} is IPv6: pass --ipv6 to enable IPv6 on the network")));
        }
        let mut pools = st.requested_pools(&req.pools)?;
        let mut taken = st.taken_subnets();
        taken.extend(pools.iter().map(|p| p.subnet));
        let host_routes = self.kernel.route_destinations().await.internal("listing host routes")?;
        // Our own bridges' routes are networks we already count; other routes are the host's.
        taken.extend(host_routes);
        if !pools.iter().any(|p| p.subnet.is_ipv4()) {
            let subnet = if builtin && req.name == "bridge" {
                ipam::choose_default_bridge_subnet(&taken)?
            } else {
                ipam::choose_subnet(false, &taken)?
            };
            pools.insert(0, ipam::build_pool(&PoolRequest::default(), subnet, true)?);
        }
        if req.enable_ipv6 && !pools.iter().any(|p| p.subnet.is_ipv6()) {
            let subnet = ipam::choose_subnet(true, &taken)?;
            pools.push(ipam::build_pool(&PoolRequest::default(), subnet, true)?);
        }
        Ok(pools)
    }

    pub async fn list_networks(&self) -> Vec<(Network, Vec<Endpoint>)> {
        let st = self.state.lock().await;
        let mut out: Vec<(Network, Vec<Endpoint>)> =
            st.networks.values().map(|n| (n.clone(), st.endpoints_of_network(&n.id).cloned().collect())).collect();
        out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        out
    }

    pub async fn inspect_network(&self, reference: &str) -> Result<(Network, Vec<Endpoint>)> {
        let st = self.state.lock().await;
        let n = st.find_network(reference)?.clone();
        let eps = st.endpoints_of_network(&n.id).cloned().collect();
        Ok((n, eps))
    }

    pub async fn remove_network(&self, reference: &str) -> Result<Network> {
        let mut st = self.state.lock().await;
        let network = st.find_network(reference)?.clone();
        self.remove_network_locked(&mut st, &network).await?;
        drop(st);
        if network.scope == Scope::Local {
            self.publish_local_subnets().await;
        }
        Ok(network)
    }

    async fn remove_network_locked(&self, st: &mut Records, network: &Network) -> Result<()> {
        if network.builtin {
            return Err(Error::precondition(format!(
                "{} is a pre-defined network and cannot be removed",
                network.name
            )));
        }
        let active = st.endpoints_of_network(&network.id).count();
        if active > 0 {
            return Err(Error::precondition(format!(
                "error while removing network: network {} id {} has active endpoints ({active})",
                network.name, network.id
            )));
        }
        if network.scope == Scope::Global {
            let cluster = self.cluster.as_ref().ok_or_else(|| {
                Error::precondition(format!(
                    "network {} is global: removing it needs the cluster store (start cnetd with --cluster-store)",
                    network.name
                ))
            })?;
            cluster.remove_network(network).await?;
            st.remote.retain(|_, r| r.network_id != network.id);
        }
        self.driver(&network.driver)?.delete_network(network).await?;
        let mut batch = Batch::new();
        batch.delete_network(&network.id);
        self.store.commit(batch).internal("removing network record")?;
        st.remove_network(&network.id);
        tracing::info!(network = %network.name, "network removed");
        Ok(())
    }

    pub async fn prune_networks(&self) -> Result<Vec<String>> {
        let mut st = self.state.lock().await;
        let candidates: Vec<Network> = st
            .networks
            .values()
            // Global networks are the cluster's: other nodes may use them.
            .filter(|n| !n.builtin && n.scope == Scope::Local && st.endpoints_of_network(&n.id).next().is_none())
            .cloned()
            .collect();
        let mut removed = Vec::new();
        for n in candidates {
            self.remove_network_locked(&mut st, &n).await?;
            removed.push(n.name);
        }
        removed.sort();
        Ok(removed)
    }

    // ------------------------------------------------------------------ sandboxes

    pub async fn create_sandbox(&self, req: SandboxRequest) -> Result<Sandbox> {
        let id = if req.container_id.is_empty() {
            id::new_id()
        } else if req.container_id.len() == 64 && id::looks_like_id_prefix(&req.container_id) {
            req.container_id.clone()
        } else {
            return Err(Error::invalid(format!("invalid container id {:?}: expected 64 hex digits", req.container_id)));
        };
        if !req.name.is_empty() {
            validate_name(NameKind::Sandbox, &req.name)?;
        }
        for h in &req.extra_hosts {
            files::parse_extra_host(h)?;
        }
        let mut st = self.state.lock().await;
        if st.sandboxes.contains_key(&id) {
            return Err(Error::exists(format!("sandbox {id} already exists")));
        }
        if !req.name.is_empty() && st.sandboxes.values().any(|s| s.name == req.name) {
            return Err(Error::exists(format!("a sandbox named {:?} already exists", req.name)));
        }
        let netns_path = if req.host_network {
            self.host_netns_path()
        } else {
            let path = self.netns_dir().join(&id);
            cnet_kernel::netns::create(&path).internal(format!("creating namespace {}", path.display()))?;
            path
        };
        let hostname = if !req.hostname.is_empty() {
            req.hostname.clone()
        } else if !req.name.is_empty() {
            req.name.clone()
        } else {
            id::short(&id).to_string()
        };
        let sandbox = Sandbox {
            id: id.clone(),
            name: req.name,
            hostname,
            domainname: req.domainname,
            netns_path: netns_path.display().to_string(),
            host_network: req.host_network,
            dns: req.dns,
            extra_hosts: req.extra_hosts,
            created: cnet_core::time::now_rfc3339(),
        };
        let mut batch = Batch::new();
        batch.put_sandbox(&sandbox);
        if let Err(e) = self.store.commit(batch) {
            if !sandbox.host_network {
                let _ = cnet_kernel::netns::remove(&netns_path);
            }
            return Err(Error::internal(e.to_string()));
        }
        st.sandboxes.insert(id, sandbox.clone());
        Ok(sandbox)
    }

    pub async fn inspect_sandbox(&self, reference: &str) -> Result<(Sandbox, Vec<Endpoint>, Vec<Network>)> {
        let st = self.state.lock().await;
        let s = st.find_sandbox(reference)?.clone();
        let mut eps: Vec<Endpoint> = st.endpoints_of_sandbox(&s.id).cloned().collect();
        eps.sort_by(|a, b| a.ifname.cmp(&b.ifname));
        let nets = eps.iter().filter_map(|e| st.networks.get(&e.network_id).cloned()).collect();
        Ok((s, eps, nets))
    }

    pub async fn list_sandboxes(&self) -> Vec<String> {
        let st = self.state.lock().await;
        st.sandboxes.keys().cloned().collect()
    }

    pub async fn remove_sandbox(&self, reference: &str) -> Result<()> {
        let mut st = self.state.lock().await;
        let sandbox = st.find_sandbox(reference)?.clone();
        let endpoints: Vec<Endpoint> = st.endpoints_of_sandbox(&sandbox.id).cloned().collect();
        for ep in endpoints {
            self.disconnect_locked(&mut st, &sandbox, &ep).await?;
        }
        if !sandbox.host_network {
            cnet_kernel::netns::remove(Path::new(&sandbox.netns_path))
                .internal(format!("removing namespace {}", sandbox.netns_path))?;
        }
        let mut batch = Batch::new();
        batch.delete_sandbox(&sandbox.id);
        self.store.commit(batch).internal("removing sandbox record")?;
        st.sandboxes.remove(&sandbox.id);
        self.dns.sandbox_removed(&sandbox);
        Ok(())
    }

    // ------------------------------------------------------------------ endpoints

    pub async fn connect(&self, req: ConnectRequest) -> Result<(Endpoint, Network)> {
        let mut st = self.state.lock().await;
        let started = std::time::Instant::now();
        let sandbox = st.find_sandbox(&req.sandbox)?.clone();
        let network = st.find_network(&req.network)?.clone();
        let driver = self.driver(&network.driver)?.clone();
        let caps = driver.capabilities();
        st.check_connect(&sandbox, &network, &caps, &req)?;

        // Published ports are checked (and random host ports picked) before anything is made.
        let ports = cnet_core::portspec::resolve_ports(&network, &req.ports, st.endpoints.values())?;
        let endpoint_id = id::new_id();
        let global = self.global_cluster(&network)?;
        // Leases first: they are the cheapest to undo.
        let (ipv4, ipv6) = match global {
            Some(cluster) => {
                if req.ipv6.is_some() {
                    return Err(Error::invalid(format!("network {} has no IPv6 subnet", network.name)));
                }
                (Some(cluster.lease_address(&network, req.ipv4, &endpoint_id).await?), None)
            }
            None if caps.needs_ipam => st.lease(&network, req.ipv4, req.ipv6)?,
            None => (None, None),
        };
        let ifname = st.next_ifname(&sandbox.id);
        let mac = req.mac.clone().unwrap_or_else(|| match ipv4 {
            Some(ipnetwork::IpNetwork::V4(v4)) => id::mac_from_ipv4(v4.ip()),
            _ => id::random_mac(),
        });
        let mut endpoint = Endpoint {
            id: endpoint_id,
            name: sandbox.name.clone(),
            network_id: network.id.clone(),
            sandbox_id: sandbox.id.clone(),
            ifname,
            mac,
            ipv4,
            ipv6,
            aliases: req.aliases.clone(),
            ports,
            driver_data: BTreeMap::new(),
        };

        let leased = started.elapsed();
        // Undoes the lease: local pools, or the cluster store's key.
        let release = async |st: &mut Records, endpoint: &Endpoint| {
            st.release(endpoint);
            if let (Some(cluster), Some(ip)) = (global, endpoint.ipv4)
                && let Err(e) = cluster.release_address(&network.id, ip.ip(), &endpoint.id).await
            {
                tracing::warn!(error = %e, "returning a cluster lease (it expires with this node's lease)");
            }
        };
        if let Err(e) = self.attach(&*driver, &network, &sandbox, &mut endpoint).await {
            release(&mut st, &endpoint).await;
            return Err(e);
        }
        let attached = started.elapsed();
        let mut batch = Batch::new();
        batch.put_endpoint(&endpoint);
        if let Err(e) = self.store.commit(batch) {
            self.detach(&*driver, &network, &sandbox, &endpoint).await;
            release(&mut st, &endpoint).await;
            return Err(Error::internal(e.to_string()));
        }
        if let Some(cluster) = global
            && let Err(e) = cluster.register_endpoint(&self.cluster_record(&endpoint)).await
        {
            self.detach(&*driver, &network, &sandbox, &endpoint).await;
            let mut batch = Batch::new();
            batch.delete_endpoint(&endpoint.id);
            let _ = self.store.commit(batch);
            release(&mut st, &endpoint).await;
            return Err(e);
        }
        st.insert_endpoint(endpoint.clone());
        self.dns.endpoint_added(&sandbox, &endpoint, &network).await;
        tracing::debug!(
            sandbox = %id::short(&sandbox.id),
            network = %network.name,
            ip = ?endpoint.ipv4,
            ?leased,
            ?attached,
            total = ?started.elapsed(),
            "connected"
        );
        Ok((endpoint, network))
    }

    /// create_endpoint -> join -> move the interface into the sandbox -> publish ports, undoing
    /// the steps already done when one fails.
    async fn attach(
        &self,
        driver: &dyn Driver,
        network: &Network,
        sandbox: &Sandbox,
        endpoint: &mut Endpoint,
    ) -> Result<()> {
        driver.create_endpoint(network, endpoint).await?;
        let join = match driver.join(network, endpoint, sandbox).await {
            Ok(j) => j,
            Err(e) => {
                let _ = driver.delete_endpoint(network, endpoint).await;
                return Err(e);
            }
        };
        let undo_join = async {
            let _ = driver.leave(network, endpoint, sandbox).await;
            let _ = driver.delete_endpoint(network, endpoint).await;
        };
        if let Some(interface) = &join.interface {
            let cfg = InterfaceConfig {
                name: endpoint.ifname.clone(),
                mac: id::parse_mac(&endpoint.mac),
                mtu: join.mtu,
                addresses: [endpoint.ipv4, endpoint.ipv6].into_iter().flatten().collect(),
                // A second network must not replace the first one's default route.
                gateway_v4: match join.gateway_v4 {
                    Some(IpAddr::V4(g)) if endpoint.ifname == "eth0" => Some(g),
                    _ => None,
                },
                gateway_v6: match join.gateway_v6 {
                    Some(IpAddr::V6(g)) if endpoint.ifname == "eth0" => Some(g),
                    _ => None,
                },
                routes: join.static_routes.clone(),
            };
            if let Err(e) = self.make_sandbox_interface(sandbox, interface, &cfg).await {
                undo_join.await;
                if e.errno() == Some(nix::libc::EXFULL) {
                    return Err(Error::precondition(format!(
                        "network {} is full: a Linux bridge takes at most 1024 ports",
                        network.name
                    )));
                }
                return Err(Error::internal(format!("attaching to sandbox {}: {e}", id::short(&sandbox.id))));
            }
        }
        // Ports on ::1 are relayed by cnetd, the others published by the driver (which also
        // refuses ports altogether if it cannot publish any).
        let published = match driver.program_external_connectivity(network, endpoint).await {
            Ok(()) => match self.proxies.start(endpoint) {
                Ok(()) => Ok(()),
                Err(e) => {
                    let _ = driver.revoke_external_connectivity(network, endpoint).await;
                    Err(e)
                }
            },
            Err(e) => Err(e),
        };
        if let Err(e) = published {
            if join.interface.is_some() {
                self.remove_sandbox_interface(sandbox, endpoint).await;
            }
            undo_join.await;
            return Err(e);
        }
        Ok(())
    }

    async fn make_sandbox_interface(
        &self,
        sandbox: &Sandbox,
        interface: &SandboxInterface,
        cfg: &InterfaceConfig,
    ) -> cnet_kernel::Result<()> {
        let ns = NetnsHandle::open(Path::new(&sandbox.netns_path)).await?;
        match interface {
            SandboxInterface::VethOnBridge { host, bridge } => {
                self.kernel.create_veth_in_sandbox(host, bridge, &ns, cfg).await
            }
            SandboxInterface::Move { src } => self.kernel.move_into(src, &ns, cfg).await,
            SandboxInterface::MacvlanOn { parent, mode } => {
                let mode = match mode {
                    cnet_core::MacvlanMode::Bridge => cnet_kernel::MacVlanMode::Bridge,
                    cnet_core::MacvlanMode::Private => cnet_kernel::MacVlanMode::Private,
                    cnet_core::MacvlanMode::Vepa => cnet_kernel::MacVlanMode::Vepa,
                    cnet_core::MacvlanMode::Passthru => cnet_kernel::MacVlanMode::Passthrough,
                };
                self.kernel.create_macvlan_in_sandbox(parent, mode, &ns, cfg).await
            }
        }
    }

    async fn remove_sandbox_interface(&self, sandbox: &Sandbox, endpoint: &Endpoint) {
        match NetnsHandle::open(Path::new(&sandbox.netns_path)).await {
            Ok(h) => {
                if let Err(e) = h.delete_link(&endpoint.ifname).await {
                    tracing::warn!(error = %e, ifname = %endpoint.ifname, "could not delete interface in sandbox");
                }
            }
            Err(e) => tracing::warn!(error = %e, path = %sandbox.netns_path, "could not open sandbox namespace"),
        }
    }

    /// The reverse of attach; errors are logged, never stop the clean-up.
    async fn detach(&self, driver: &dyn Driver, network: &Network, sandbox: &Sandbox, endpoint: &Endpoint) {
        self.proxies.stop(&endpoint.id);
        if let Err(e) = driver.revoke_external_connectivity(network, endpoint).await {
            tracing::warn!(error = %e, endpoint = %endpoint.id, "revoking published ports");
        }
        if driver.capabilities().needs_sandbox_netns && !sandbox.host_network {
            self.remove_sandbox_interface(sandbox, endpoint).await;
        }
        if let Err(e) = driver.leave(network, endpoint, sandbox).await {
            tracing::warn!(error = %e, endpoint = %endpoint.id, "leave");
        }
        if let Err(e) = driver.delete_endpoint(network, endpoint).await {
            tracing::warn!(error = %e, endpoint = %endpoint.id, "deleting endpoint");
        }
    }

    pub async fn disconnect(&self, sandbox: &str, network: &str) -> Result<()> {
        let mut st = self.state.lock().await;
        let sandbox = st.find_sandbox(sandbox)?.clone();
        let network = st.find_network(network)?.clone();
        let endpoint =
            st.endpoints_of_sandbox(&sandbox.id).find(|e| e.network_id == network.id).cloned().ok_or_else(|| {
                Error::not_found(format!(
                    "container {} is not connected to network {}",
                    if sandbox.name.is_empty() { id::short(&sandbox.id) } else { &sandbox.name },
                    network.name
                ))
            })?;
        self.disconnect_locked(&mut st, &sandbox, &endpoint).await
    }

    async fn disconnect_locked(&self, st: &mut Records, sandbox: &Sandbox, endpoint: &Endpoint) -> Result<()> {
        let network = st
            .networks
            .get(&endpoint.network_id)
            .cloned()
            .ok_or_else(|| Error::internal("endpoint's network vanished"))?;
        match self.drivers.get(network.driver.as_str()) {
            Some(driver) => self.detach(&**driver, &network, sandbox, endpoint).await,
            // An endpoint of a driver this run was started without (a global network of an earlier run
            // with --cluster-store): its link goes with the
            // sandbox's namespace, and the next start with the store removes the rest.
            None => {
                tracing::warn!(network = %network.name, driver = %network.driver, "driver not loaded: removing the endpoint's record only");
                self.proxies.stop(&endpoint.id);
                if !sandbox.host_network {
                    self.remove_sandbox_interface(sandbox, endpoint).await;
                }
            }
        }
        let mut batch = Batch::new();
        batch.delete_endpoint(&endpoint.id);
        self.store.commit(batch).internal("removing endpoint record")?;
        st.remove_endpoint(endpoint);
        st.conflicts.remove(&endpoint.id);
        if let Ok(Some(cluster)) = self.global_cluster(&network)
            && let Err(e) = cluster.release_endpoint(&self.cluster_record(endpoint)).await
        {
            // The next resync withdraws it (or it expires with this node's lease).
            tracing::warn!(endpoint = %id::short(&endpoint.id), error = %e, "cannot withdraw the endpoint from the cluster store now");
        }
        self.dns.endpoint_removed(endpoint);
        Ok(())
    }

    pub async fn counts(&self) -> (usize, usize, usize) {
        let st = self.state.lock().await;
        (st.networks.len(), st.sandboxes.len(), st.endpoints.len())
    }

    pub fn scope_of(&self, driver: &str) -> Scope {
        self.drivers.get(driver).map(|d| d.capabilities().scope).unwrap_or_default()
    }
}
