//! cnetd, the daemon that owns all network state: the controller (records, IPAM, store, the CNM
//! lifecycle across drivers) and its gRPC server on a root-only unix socket. The binary in main.rs
//! only parses flags and wires these together, so tests and benches can run the same code.

pub mod controller;
pub mod dns;
pub mod events;
pub mod labs;
pub mod server;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use cnet_api::v1::{
    event_service_server::EventServiceServer, lab_service_server::LabServiceServer,
    link_service_server::LinkServiceServer, network_service_server::NetworkServiceServer,
    sandbox_service_server::SandboxServiceServer, system_service_server::SystemServiceServer,
};
use cnet_core::Driver;

pub use controller::Controller;

pub struct DaemonConfig {
    pub socket: PathBuf,
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
    /// Name of the nftables table (family inet) cnet owns.
    pub nft_table: String,
    /// How often the firewall watcher checks that cnet's nftables table still exists (and rebuilds
    /// it if someone deleted it); zero turns the watcher off.
    pub firewall_check_interval: std::time::Duration,
    /// Upstream resolvers of the embedded DNS (`--dns`); empty: the host's.
    pub dns: Vec<std::net::IpAddr>,
    /// Joining a cluster (`--cluster-store`), for overlay networks.
    pub cluster: Option<ClusterFlags>,
}

/// `--cluster-store etcd://HOST:PORT[,…] --cluster-advertise ADDR|IFACE [--node-name N] [--cluster-ttl T]`.
#[derive(Debug, Clone)]
pub struct ClusterFlags {
    pub store: String,
    pub advertise: String,
    pub node_name: String,
    pub ttl: std::time::Duration,
}

/// Resolves `--cluster-advertise` to this host's VTEP address and the link holding it (the
/// underlay): an address must be on one of this host's links; an interface name stands for its
/// first IPv4 address.
async fn resolve_advertise(
    kernel: &cnet_kernel::Kernel,
    advertise: &str,
) -> anyhow::Result<(std::net::IpAddr, cnet_kernel::Link)> {
    if let Ok(ip) = advertise.parse::<std::net::IpAddr>() {
        let link = kernel.link_with_address(ip).await?.ok_or_else(|| {
            anyhow::anyhow!("--cluster-advertise {advertise}: no interface of this host has that address")
        })?;
        return Ok((ip, link));
    }
    let link = kernel.link_by_name(advertise).await?.ok_or_else(|| {
        anyhow::anyhow!("--cluster-advertise {advertise:?}: neither an address nor an interface of this host")
    })?;
    let ip = kernel
        .addresses(advertise)
        .await?
        .into_iter()
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv4())
        .ok_or_else(|| anyhow::anyhow!("--cluster-advertise {advertise}: the interface has no IPv4 address"))?;
    Ok((ip, link))
}

/// Builds the drivers and the controller, restoring state; what `cnetd` does before it serves.
pub async fn start_controller(cfg: &DaemonConfig) -> anyhow::Result<Arc<Controller>> {
    let kernel = cnet_kernel::Kernel::connect().await.context("opening netlink")?;
    let firewall = Arc::new(cnet_firewall::Firewall::new(&cfg.nft_table));
    let ports = Arc::new(cnet_ports::PublishedPorts::new(firewall.clone()));
    let mut drivers: Vec<Arc<dyn Driver>> = vec![
        Arc::new(cnet_driver_bridge::BridgeDriver::new(kernel.clone(), firewall.clone(), ports.clone())),
        Arc::new(cnet_driver_host::HostDriver),
        Arc::new(cnet_driver_none::NoneDriver),
        Arc::new(cnet_driver_macvlan::MacvlanDriver::new(kernel.clone())),
        Arc::new(cnet_driver_p2p::P2pDriver::new(kernel.clone(), cfg.run_dir.join("netns"))),
    ];
    let mut cluster = None;
    let mut cluster_events = None;
    let mut unavailable = std::collections::BTreeMap::new();
    if let Some(flags) = &cfg.cluster {
        let endpoints = cnet_cluster::parse_store_url(&flags.store)?;
        let (advertise, underlay) = resolve_advertise(&kernel, &flags.advertise).await?;
        if flags.node_name.is_empty() || flags.node_name.contains('/') {
            anyhow::bail!("--node-name {:?}: a node name is non-empty and has no '/'", flags.node_name);
        }
        std::fs::create_dir_all(&cfg.state_dir)?;
        // This host's WireGuard key pair (encrypted overlay networks): the private key stays in the
        // state directory, the public key goes out in this node's endpoint records.
        let host_key = cnet_driver_overlay::encryption::HostKey::load_or_create(&cfg.state_dir.join("wireguard.key"))?;
        let node_key = Some(host_key.public_base64());
        let overlay = Arc::new(
            cnet_driver_overlay::OverlayDriver::new(
                kernel.clone(),
                firewall.clone(),
                ports.clone(),
                advertise,
                &underlay,
            )
            .with_host_key(host_key),
        );
        let (handle, events) = cnet_cluster::Cluster::start(
            cnet_cluster::ClusterConfig {
                endpoints,
                store: flags.store.clone(),
                node_name: flags.node_name.clone(),
                advertise,
                ttl: flags.ttl,
                lease_file: cfg.state_dir.join("cluster-lease"),
                node_key,
            },
            vec![],
        )
        .await?;
        drivers.push(overlay);
        // Cross-host point-to-point links (a lab's links between hosts): VNIs from the same
        // cluster store, so they never clash with overlay networks'.
        drivers.push(Arc::new(cnet_driver_vxlan::VxlanDriver::new(
            kernel.clone(),
            cfg.run_dir.join("netns"),
            advertise,
            &underlay,
        )));
        cluster = Some(handle);
        cluster_events = Some(events);
    } else {
        unavailable.insert(
            "overlay",
            "overlay networks need a cluster store: start cnetd with --cluster-store etcd://HOST:PORT and \
             --cluster-advertise ADDR|IFACE"
                .to_string(),
        );
        unavailable.insert(
            "vxlan",
            "vxlan links need a cluster store (their VNI is allocated there): start cnetd with --cluster-store \
             etcd://HOST:PORT and --cluster-advertise ADDR|IFACE"
                .to_string(),
        );
    }
    let deleter = kernel.deleter().clone();
    let ctl = Controller::start(
        controller::Config { run_dir: cfg.run_dir.clone(), state_dir: cfg.state_dir.clone(), dns: cfg.dns.clone() },
        kernel,
        drivers,
        unavailable,
        firewall.clone(),
        cluster,
    )
    .await?;
    // Firewall transactions wait for a quiet moment, as link deletions do.
    tokio::spawn(firewall.clone().flush_in_background(move |woken| deleter.until_quiet(woken)));
    spawn_firewall_watcher(firewall, cfg.firewall_check_interval);
    let ctl = Arc::new(ctl);
    if let Some(mut events) = cluster_events {
        ctl.publish_local_subnets().await;
        let weak = Arc::downgrade(&ctl);
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Some(ctl) = weak.upgrade() else { break };
                // What queued up meanwhile goes with it (hundreds of endpoints at once: one
                // write of the local cache for all of them).
                let mut batch = vec![event];
                while batch.len() < CLUSTER_EVENT_BATCH
                    && let Ok(event) = events.try_recv()
                {
                    batch.push(event);
                }
                ctl.apply_cluster_events(batch).await;
            }
        });
    }
    Ok(ctl)
}

/// Keeps the nftables table in place, rebuilt exactly (networks and published ports) in one
/// transaction: as soon as nf_tables announces its deletion, and checked every `interval` besides
/// (notifications can be lost; deferred removals are retried there). `0` turns both off. Without
/// the notifications (a kernel or sandbox refusing the subscription) the interval alone remains.
/// The most cluster events applied under one hold of the controller's lock.
const CLUSTER_EVENT_BATCH: usize = 64;

fn spawn_firewall_watcher(firewall: Arc<cnet_firewall::Firewall>, interval: std::time::Duration) {
    if interval.is_zero() {
        return;
    }
    let mut watch = match cnet_firewall::TableWatch::new(firewall.table()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, ?interval, "cannot hear nftables notifications: checking the table on a timer only");
            None
        }
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let heard = async {
                match watch.as_mut() {
                    Some(w) => Some(w.next().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => {}
                event = heard => match event {
                    Some(Ok(event)) => tracing::debug!(?event, "nftables notification"),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "nftables notifications failed: checking the table on a timer only");
                        watch = None;
                    }
                    None => {}
                },
            }
            match firewall.repair().await {
                Ok(true) => tracing::warn!("the nftables table was deleted behind cnetd's back: rebuilt it"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "checking the nftables table"),
            }
        }
    });
}

/// Parses a duration flag: `2s`, `500ms`, `1m`, or plain seconds (`2`, `0.5`).
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let v: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}: expected e.g. 2s, 500ms, 1m"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("invalid duration {s:?}: the unit must be ms, s or m")),
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Binds the API socket: stale socket files from a crash are replaced, the mode is 0660 (root and
/// root's group), and the parent directory is created 0700 when missing.
pub fn bind_socket(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another cnetd is already listening on {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener =
        tokio::net::UnixListener::bind(path).with_context(|| format!("binding API socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Serves the API until `shutdown` resolves. Network state is left in place: containers keep
/// their connectivity while the daemon is down, and the next start restores from the store.
pub async fn serve(
    ctl: Arc<Controller>,
    listener: tokio::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let events_of = ctl.clone();
    let deletions_of = ctl.clone();
    let api = server::Api::new(ctl);
    let incoming = futures::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(stream, _)| stream);
        Some((next, l))
    });
    // After the shutdown signal, tonic waits for connected clients to go; a client that never
    // does must not keep the daemon from stopping.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let signalled = async move {
        shutdown.await;
        // `cnet events` streams never end by themselves.
        events_of.events().close();
        let _ = stop_tx.send(());
    };
    let server = tonic::transport::Server::builder()
        .add_service(NetworkServiceServer::new(api.clone()))
        .add_service(SandboxServiceServer::new(api.clone()))
        .add_service(LinkServiceServer::new(api.clone()))
        .add_service(EventServiceServer::new(api.clone()))
        .add_service(LabServiceServer::new(api.clone()))
        .add_service(SystemServiceServer::new(api))
        .serve_with_incoming_shutdown(incoming, signalled);
    tokio::pin!(server);
    let served = tokio::select! {
        served = &mut server => served.context("serving the API"),
        _ = async {
            let _ = stop_rx.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("clients still connected {SHUTDOWN_GRACE:?} after the shutdown signal: closing anyway");
            Ok(())
        }
    };
    deletions_of.finish_link_deletions(SHUTDOWN_GRACE).await;
    served
}

/// The daemon's crash points for tests (see [`cnet_core::abort_point`]): `sandbox:created` (after
/// the sandbox's record), `sandbox:disconnected` (a removal with every endpoint gone, the
/// namespace and record not yet), `connect:attached` (after the driver's attach, before the
/// endpoint's record), `disconnect:detached` (the reverse), `network:made` (the driver made it, no
/// record yet), `network:unmade` (the driver removed it, the record not yet), `network:forgotten`
/// (the record gone, its bridge maybe still in the background deleter's queue).
pub(crate) fn checkpoint(step: &str) {
    cnet_core::abort_point(step);
}

/// Tells the service manager (systemd's `Type=notify`) about the daemon's state, e.g. `READY=1`
/// once the API serves: a datagram to `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
/// namespace). Without the variable, nothing is sent; a failure is logged, never fatal.
pub fn notify_service_manager(state: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let sent = (|| -> std::io::Result<()> {
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        let target = target.to_string_lossy();
        let addr = match target.strip_prefix('@') {
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?
            }
            None => std::os::unix::net::SocketAddr::from_pathname(target.as_ref())?,
        };
        socket.send_to_addr(state.as_bytes(), &addr)?;
        Ok(())
    })();
    if let Err(e) = sent {
        tracing::warn!(error = %e, state, "cannot notify the service manager");
    }
}
