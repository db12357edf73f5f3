//! The controller: owns the records (networks, sandboxes, endpoints), IPAM and the store, and drives
//! the drivers through the CNM lifecycle. It speaks to the kernel only through cnet-kernel's sandbox
//! operations (namespace files, moving an interface in) and never builds netlink messages itself.
//!
//! Every operation runs under one lock and ends in one store transaction, so what the store holds is
//! always what the kernel was told; a failing step undoes the steps before it.
//!
//! One file per record kind: `networks.rs`, `sandboxes.rs`, `endpoints.rs` (and `links.rs`, the
//! state an endpoint's interface is set to by `cnet link set`), plus `restore.rs`
//! (start-up), `cluster.rs` (the cluster store's events) and `records.rs` (the in-memory records,
//! kept in step, and the checks that need only them).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cnet_cluster::{Cluster, ClusterEvent, ClusterView, EndpointRecord};
use cnet_core::ipam::{self, PoolRequest};
use cnet_core::names::{NameKind, validate_name};
use cnet_core::{
    DnsConfig, Driver, Endpoint, Error, MacAddr, Network, PoolPlan, PortBinding, Result, ResultExt, Sandbox,
    SandboxInterface, Scope, id,
};
use cnet_firewall::{Firewall, VxlanGuard};
use cnet_kernel::{InterfaceConfig, Kernel, NetnsHandle};
use cnet_store::{Batch, Store};
use tokio::sync::Mutex;

use cnet_core::etc;

use crate::events::{Event, EventBus};

mod cluster;
mod endpoints;
mod links;
mod networks;
mod records;
mod restore;
mod sandboxes;
mod sysctls;

pub use links::{LinkEndView, LinkRequest, LinkView};
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
    /// See [`Sandbox::owner`].
    pub owner: String,
    /// `--sysctl`, see [`Sandbox::sysctls`].
    pub sysctls: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    pub sandbox: String,
    pub network: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
    pub aliases: Vec<String>,
    pub ports: Vec<PortBinding>,
    pub mac: Option<MacAddr>,
    /// Endpoint driver options, see [`Endpoint::driver_opts`].
    pub driver_opts: BTreeMap<String, String>,
    /// See [`Endpoint::gw_priority`].
    pub gw_priority: i64,
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
    /// cnet's nftables table, shared with the drivers, which describe their rules to it; the
    /// controller decides when a restore applies them (once, after every driver restored).
    firewall: Arc<Firewall>,
    /// Drivers this daemon was started without, with why (the user is told when asking for one).
    unavailable: BTreeMap<&'static str, String>,
    /// The cluster store, when cnetd joined a cluster.
    cluster: Option<Arc<Cluster>>,
    /// What happened, for `cnet events`: each change reports itself here once it is done.
    events: EventBus,
    /// How many times this node made its records match the cluster store's (see
    /// [`Controller::resyncs`]).
    resyncs: tokio::sync::watch::Sender<u64>,
}

impl Controller {
    /// Counts this node's resyncs with the cluster store. Until the first, the store may hold
    /// leases of an attach that a kill cut short, which the resync releases: work that attaches
    /// on its own (the lab agent) waits for it.
    pub fn resyncs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.resyncs.subscribe()
    }

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
        let state = Mutex::new(Records::default());
        let events = EventBus::default();
        let resyncs = tokio::sync::watch::Sender::new(0);
        let ctl =
            Controller { cfg, kernel, store, drivers, state, dns, unavailable, firewall, cluster, events, resyncs };
        match cnet_kernel::netns::keep_in_memory(&ctl.netns_dir()) {
            Ok(mounted) => tracing::debug!(dir = %ctl.netns_dir().display(), mounted, "namespace files kept in memory"),
            Err(e) => {
                tracing::warn!(error = %e, "namespace files stay on the disk");
                std::fs::create_dir_all(ctl.netns_dir())?;
            }
        }
        cnet_kernel::netns::bind_current(&ctl.host_netns_path())?;
        ctl.restore().await?;
        ctl.ensure_builtin_networks().await?;
        Ok(ctl)
    }

    pub fn run_dir(&self) -> &Path {
        &self.cfg.run_dir
    }

    pub fn events(&self) -> &EventBus {
        &self.events
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

    /// Links removed objects left to the kernel's deleter, not deleted yet.
    pub fn pending_link_deletions(&self) -> usize {
        self.kernel.deleter().pending()
    }

    /// Firewall removals of removed networks not applied yet (see `Firewall::remove_network_later`).
    pub fn pending_firewall_changes(&self) -> usize {
        self.firewall.pending()
    }

    /// Waits (at most `bound`) for the deleter to finish, so a daemon that stops leaves no link
    /// of a removed object behind; whatever is left then goes at the next start. Deferred
    /// firewall removals are applied first.
    pub async fn finish_link_deletions(&self, bound: std::time::Duration) {
        match tokio::time::timeout(bound, self.firewall.flush()).await {
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "deferred firewall removals failed: the next start rebuilds the table")
            }
            Err(_) => tracing::warn!("deferred firewall removals still running: the next start rebuilds the table"),
            Ok(Ok(())) => {}
        }
        if tokio::time::timeout(bound, self.kernel.deleter().wait_idle()).await.is_err() {
            tracing::warn!(
                pending = self.pending_link_deletions(),
                "links still being deleted: the next start removes them"
            );
        }
    }

    pub async fn counts(&self) -> (usize, usize, usize) {
        let st = self.state.lock().await;
        (st.networks.len(), st.sandboxes.len(), st.endpoints.len())
    }

    pub fn scope_of(&self, driver: &str) -> Scope {
        self.drivers.get(driver).map(|d| d.capabilities().scope).unwrap_or_default()
    }
}
