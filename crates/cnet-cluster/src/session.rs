//! One session after another: take the lease (back), register the node, list, watch from the
//! next revision while keeping the lease alive. Whatever ends a session (etcd down, the watch
//! compacted away, the lease expired) is followed, after a short pause, by a new one that relists.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use etcd_client::{EventType, GetOptions, WatchOptions};
use tokio::sync::mpsc::UnboundedSender;

use crate::secrets::SecretRecord;
use crate::{Cluster, ClusterEvent, ClusterView, EndpointRecord, keys};

const RETRY_PAUSE: Duration = Duration::from_millis(500);

pub(crate) async fn run(cluster: Arc<Cluster>, tx: UnboundedSender<ClusterEvent>) {
    let mut failures = 0u32;
    loop {
        let err = session(&cluster, &tx).await;
        if tx.is_closed() {
            return;
        }
        let was_connected = cluster.connected.swap(false, Ordering::Relaxed);
        if was_connected || failures == 0 {
            tracing::warn!(store = %cluster.cfg.store, error = %err, "cluster store session ended; retrying");
            let _ = tx.send(ClusterEvent::Disconnected(err.clone()));
        } else {
            tracing::debug!(error = %err, "cluster store still unreachable");
        }
        failures = if was_connected { 1 } else { failures + 1 };
        tokio::time::sleep(RETRY_PAUSE * failures.min(4)).await;
    }
}

/// Runs until something fails; returns what.
async fn session(cluster: &Cluster, tx: &UnboundedSender<ClusterEvent>) -> String {
    match session_inner(cluster, tx).await {
        Ok(why) => why,
        Err(e) => e.to_string(),
    }
}

async fn session_inner(cluster: &Cluster, tx: &UnboundedSender<ClusterEvent>) -> cnet_core::Result<String> {
    let ttl = cluster.cfg.ttl;
    let lease = take_lease(cluster).await?;
    cluster.lease.store(lease, Ordering::Relaxed);
    let mut client = cluster.client.clone();
    let (mut keeper, mut keepalive) = cluster.timed("keeping the lease alive", client.lease_keep_alive(lease)).await?;
    cluster.connected.store(true, Ordering::Relaxed);
    cluster.put_node().await?;
    let view = list(cluster).await?;
    let revision = view.revision;
    tracing::info!(
        store = %cluster.cfg.store,
        node = %cluster.cfg.node_name,
        lease = format_args!("{lease:x}"),
        revision,
        networks = view.networks.len(),
        endpoints = view.endpoints.len(),
        "cluster store session up"
    );
    if tx.send(ClusterEvent::Resync(Box::new(view))).is_err() {
        return Ok("the daemon is stopping".into());
    }
    let mut watch = cluster
        .timed(
            "watching",
            client.watch(keys::ROOT, Some(WatchOptions::new().with_prefix().with_start_revision(revision + 1))),
        )
        .await?;
    let mut tick = tokio::time::interval((ttl / 3).max(Duration::from_millis(500)));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                cluster.timed("keeping the lease alive", keeper.keep_alive()).await?;
                match cluster.timed("keeping the lease alive", keepalive.message()).await? {
                    Some(resp) if resp.ttl() > 0 => {}
                    _ => return Ok(format!("lease {lease:x} expired")),
                }
            }
            msg = watch.message() => {
                let resp = match msg {
                    Ok(Some(resp)) => resp,
                    Ok(None) => return Ok("the watch stream closed".into()),
                    Err(e) => return Ok(format!("watch: {e}")),
                };
                if resp.compact_revision() > 0 {
                    return Ok(format!("revision {} was compacted away: relisting", revision + 1));
                }
                if resp.canceled() {
                    return Ok(format!("the watch was cancelled: {}", resp.cancel_reason()));
                }
                for ev in resp.events() {
                    let Some(kv) = ev.kv() else { continue };
                    let key = String::from_utf8_lossy(kv.key());
                    let put = ev.event_type() == EventType::Put;
                    let event = match (keys::parse(&key), put) {
                        (keys::Key::Network(_), true) => {
                            crate::decode(&key, kv.value()).map(|n| ClusterEvent::NetworkPut(Box::new(n)))
                        }
                        (keys::Key::Network(id), false) => Some(ClusterEvent::NetworkDeleted(id.to_string())),
                        (keys::Key::Endpoint { .. }, true) => {
                            crate::decode::<EndpointRecord>(&key, kv.value()).map(|e| ClusterEvent::EndpointPut(Box::new(e)))
                        }
                        (keys::Key::Endpoint { network_id, endpoint_id }, false) => Some(ClusterEvent::EndpointDeleted {
                            network_id: network_id.to_string(),
                            endpoint_id: endpoint_id.to_string(),
                        }),
                        (keys::Key::Secret(id), true) => crate::decode::<SecretRecord>(&key, kv.value())
                            .map(|secret| ClusterEvent::SecretPut { network_id: id.to_string(), secret }),
                        (keys::Key::Alive(name), true) => Some(ClusterEvent::NodeAlive(name.to_string())),
                        (keys::Key::Alive(name), false) => Some(ClusterEvent::NodeGone(name.to_string())),
                        _ => None,
                    };
                    if let Some(event) = event
                        && tx.send(event).is_err()
                    {
                        return Ok("the daemon is stopping".into());
                    }
                }
            }
        }
    }
}

/// The lease of the previous run if it is still alive (a restart within the TTL keeps every key
/// the host had), else a new one.
async fn take_lease(cluster: &Cluster) -> cnet_core::Result<i64> {
    let mut client = cluster.client.clone();
    let remembered = std::fs::read_to_string(&cluster.cfg.lease_file)
        .ok()
        .and_then(|s| i64::from_str_radix(s.trim(), 16).ok())
        .or_else(|| Some(cluster.lease_id()).filter(|l| *l != 0));
    if let Some(id) = remembered {
        let ttl = cluster.timed("reading the lease", client.lease_time_to_live(id, None)).await?;
        if ttl.ttl() > 0 {
            return Ok(id);
        }
        tracing::warn!(lease = format_args!("{id:x}"), "this node's lease expired: its endpoints are registered again");
    }
    let ttl_secs = cluster.cfg.ttl.as_secs().max(1) as i64;
    let id = cluster.timed("granting a lease", client.lease_grant(ttl_secs, None)).await?.id();
    if let Err(e) = std::fs::write(&cluster.cfg.lease_file, format!("{id:x}\n")) {
        tracing::warn!(path = %cluster.cfg.lease_file.display(), error = %e, "cannot remember the lease");
    }
    Ok(id)
}

async fn list(cluster: &Cluster) -> cnet_core::Result<ClusterView> {
    let mut client = cluster.client.clone();
    let resp = cluster.timed("listing", client.get(keys::ROOT, Some(GetOptions::new().with_prefix()))).await?;
    let mut view =
        ClusterView { revision: resp.header().map(|h| h.revision()).unwrap_or_default(), ..Default::default() };
    for kv in resp.kvs() {
        let key = String::from_utf8_lossy(kv.key());
        match keys::parse(&key) {
            keys::Key::Network(_) => view.networks.extend(crate::decode(&key, kv.value())),
            keys::Key::Endpoint { .. } => view.endpoints.extend(crate::decode(&key, kv.value())),
            keys::Key::Node(_) => view.nodes.extend(crate::decode(&key, kv.value())),
            keys::Key::Alive(name) => view.alive.push(name.to_string()),
            keys::Key::Secret(id) => {
                view.secrets.extend(crate::decode::<SecretRecord>(&key, kv.value()).map(|s| (id.to_string(), s)))
            }
            keys::Key::Other => {}
        }
    }
    Ok(view)
}
