//! The glue between the controller and the embedded DNS (`cnet-dns`), Docker's 127.0.0.11.
//!
//! Sandboxes with an endpoint on a user-defined network (any non-builtin network) get a resolver
//! on 127.0.0.11:53 (UDP and TCP) inside their namespace, bound on a throwaway thread that enters
//! the namespace and served on the daemon's runtime. It answers the names of the containers on the
//! sandbox's networks and forwards everything else, from the daemon's namespace, to the sandbox's
//! own `--dns` servers or else the daemon's upstreams (`cnetd --dns`, else the host's resolv.conf).
//!
//! The controller calls the hooks below after each change is committed; they only log on failure
//! (a resolver that could not be bound must not undo a working connect).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use cnet_core::{Endpoint, EndpointId, Network, NetworkId, Sandbox, SandboxId, id};
use cnet_dns::{EndpointRecord, Resolver};

use cnet_core::etc;

/// Where the resolver listens inside every sandbox.
const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11)), 53);
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of its real upstreams, when /etc/resolv.conf points at its stub.
const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";
/// How often the host's resolvers are read again (when `--dns` is not given).
const HOST_RESOLV_RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether containers on `network` get the embedded DNS: user-defined networks do; the built-in
/// `bridge`, `host` and `none` do not (as Docker).
pub fn enabled(network: &Network) -> bool {
    !network.builtin
}

/// The IPv4 address of an endpoint's `ipv4` (which holds one, if any).
fn ipv4_of(addr: Option<ipnetwork::IpNetwork>) -> Option<std::net::Ipv4Addr> {
    match addr.map(|a| a.ip()) {
        Some(IpAddr::V4(a)) => Some(a),
        _ => None,
    }
}

fn ipv6_of(addr: Option<ipnetwork::IpNetwork>) -> Option<std::net::Ipv6Addr> {
    match addr.map(|a| a.ip()) {
        Some(IpAddr::V6(a)) => Some(a),
        _ => None,
    }
}

pub struct Dns {
    resolver: Resolver,
    /// Dropping it ends the resolver's thread (and its runtime, listeners and all).
    _resolver_thread: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A thread of the resolver's own running a current-thread runtime, until the sender is dropped.
/// On the daemon's two workers a query waited behind whatever the controller ran there (a store
/// commit's fdatasync, netlink replies); the kernel's scheduler wakes a thread of its own at once.
fn resolver_thread() -> std::io::Result<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new().name("cnet-dns".into()).spawn(move || {
        let _ = runtime.block_on(stopped);
    })?;
    Ok((handle, stop))
}

fn socket_addrs(ips: impl IntoIterator<Item = IpAddr>) -> Vec<SocketAddr> {
    ips.into_iter().map(|ip| SocketAddr::new(ip, 53)).collect()
}

/// The host's upstream resolvers, loopback stubs replaced by their real upstreams where known.
pub fn host_upstreams() -> Vec<IpAddr> {
    let etc = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
    let stub = std::fs::read_to_string(SYSTEMD_RESOLV_CONF).ok();
    etc::upstream_servers(&etc, stub.as_deref())
}

/// Re-reads the host's resolvers now and then (DHCP and VPNs change them) and forwards to the new
/// ones from then on.
async fn follow_host_upstreams(resolver: Resolver) {
    let mut tick = tokio::time::interval(HOST_RESOLV_RECHECK);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = socket_addrs(tokio::task::spawn_blocking(host_upstreams).await.unwrap_or_default());
        if !now.is_empty() && now != resolver.upstreams() {
            tracing::info!(upstreams = ?now, "the host's DNS servers changed");
            resolver.set_upstreams(now);
        }
    }
}

impl Dns {
    /// `servers`: `cnetd --dns`; empty means the host's resolvers.
    pub fn new(servers: &[IpAddr]) -> Dns {
        let upstreams = if servers.is_empty() { host_upstreams() } else { servers.to_vec() };
        if upstreams.is_empty() {
            tracing::warn!(
                "no upstream DNS servers (none in {HOST_RESOLV_CONF}, no --dns): only container names resolve"
            );
        } else {
            tracing::info!(?upstreams, "embedded DNS forwards to");
        }
        let (resolver, resolver_thread) = match resolver_thread() {
            Ok((runtime, stop)) => (Resolver::on_runtime(socket_addrs(upstreams), runtime), Some(stop)),
            Err(e) => {
                tracing::warn!(error = %e, "the embedded DNS shares the daemon's threads");
                (Resolver::new(socket_addrs(upstreams)), None)
            }
        };
        if servers.is_empty()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(follow_host_upstreams(resolver.clone()));
        }
        Dns { resolver, _resolver_thread: resolver_thread }
    }

    /// The resolver itself (for counts in tests and benches).
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    fn record(sandbox: &Sandbox, endpoint: &Endpoint, network: &Network) -> EndpointRecord {
        let mut names: Vec<String> = Vec::with_capacity(endpoint.aliases.len() + 3);
        names.extend([endpoint.name.clone(), sandbox.hostname.clone()].into_iter().filter(|n| !n.is_empty()));
        names.extend(endpoint.aliases.iter().cloned());
        // Docker answers to the short container id too.
        names.push(id::short(&sandbox.id).to_string());
        let own = [&endpoint.name, &sandbox.hostname].into_iter().find(|n| !n.is_empty()).cloned();
        EndpointRecord {
            endpoint_id: endpoint.id.to_string(),
            sandbox_id: sandbox.id.to_string(),
            network_id: network.id.to_string(),
            network_name: network.name.clone(),
            ptr_name: format!("{}.{}", own.unwrap_or_else(|| id::short(&sandbox.id).to_string()), network.name),
            names,
            ipv4: ipv4_of(endpoint.ipv4),
            ipv6: ipv6_of(endpoint.ipv6),
        }
    }

    /// Another node's endpoint on a global network: its names join the network's records, so
    /// containers here resolve it wherever it runs.
    pub fn remote_added(&self, record: &cnet_cluster::EndpointRecord, network: &Network) {
        if !enabled(network) {
            return;
        }
        let mut names: Vec<String> = Vec::with_capacity(record.aliases.len() + 1);
        names.extend([record.name.clone()].into_iter().filter(|n| !n.is_empty()));
        names.extend(record.aliases.iter().cloned());
        self.resolver.add_endpoint(&EndpointRecord {
            endpoint_id: record.id.to_string(),
            // Never a local sandbox: remote records go only with their endpoint.
            sandbox_id: format!("remote:{}", record.id),
            network_id: network.id.to_string(),
            network_name: network.name.clone(),
            ptr_name: format!(
                "{}.{}",
                if record.name.is_empty() { id::short(&record.id) } else { &record.name },
                network.name
            ),
            names,
            ipv4: ipv4_of(record.ipv4),
            ipv6: ipv6_of(record.ipv6),
        });
    }

    pub fn remote_removed(&self, network_id: &str, endpoint_id: &str) {
        self.resolver.remove_endpoint(network_id, endpoint_id);
    }

    /// After a connect: the endpoint's names join its network's records, and the sandbox gets its
    /// resolver if it has none yet.
    pub async fn endpoint_added(&self, sandbox: &Sandbox, endpoint: &Endpoint, network: &Network) {
        if !enabled(network) || sandbox.host_network {
            return;
        }
        let started = std::time::Instant::now();
        self.resolver.add_endpoint(&Self::record(sandbox, endpoint, network));
        let started_resolver = self.ensure_listener(sandbox).await;
        tracing::debug!(
            sandbox = %id::short(&sandbox.id),
            network = %network.name,
            started_resolver,
            took = ?started.elapsed(),
            "DNS records added"
        );
    }

    /// After a disconnect. The sandbox keeps its resolver (its resolv.conf names 127.0.0.11): it
    /// goes on forwarding.
    pub fn endpoint_removed(&self, endpoint: &Endpoint) {
        self.resolver.remove_endpoint(&endpoint.network_id, &endpoint.id);
    }

    /// After a sandbox is removed: its listener stops and its records go.
    pub fn sandbox_removed(&self, sandbox: &Sandbox) {
        self.resolver.remove_sandbox(&sandbox.id);
    }

    /// At start: every record, and a resolver for every sandbox on a user-defined network.
    pub async fn restore(
        &self,
        sandboxes: &HashMap<SandboxId, Sandbox>,
        endpoints: &HashMap<EndpointId, Endpoint>,
        networks: &HashMap<NetworkId, Network>,
    ) {
        // Per sandbox in join order (eth0, eth1, ...), which orders its networks' precedence.
        let mut eps: Vec<&Endpoint> = endpoints.values().collect();
        eps.sort_by_key(|e| (e.sandbox_id.as_str(), e.ifname.len(), e.ifname.as_str()));
        let mut served = Vec::new();
        for ep in eps {
            let (Some(sandbox), Some(network)) = (sandboxes.get(&ep.sandbox_id), networks.get(&ep.network_id)) else {
                continue;
            };
            if enabled(network) && !sandbox.host_network {
                self.resolver.add_endpoint(&Self::record(sandbox, ep, network));
                if served.last() != Some(&sandbox.id) {
                    served.push(sandbox.id.clone());
                }
            }
        }
        for id in &served {
            self.ensure_listener(&sandboxes[id]).await;
        }
        tracing::info!(
            sandboxes = self.resolver.listeners(),
            records = self.resolver.records(),
            "embedded DNS restored"
        );
    }

    /// Starts the sandbox's resolver unless it runs; true if it had to.
    async fn ensure_listener(&self, sandbox: &Sandbox) -> bool {
        if self.resolver.has_listener(&sandbox.id) {
            return false;
        }
        let path = PathBuf::from(&sandbox.netns_path);
        let bound = tokio::task::spawn_blocking(move || cnet_kernel::netns::run_in(&path, || cnet_dns::bind(LISTEN)))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .and_then(|r| r.map_err(|e| e.to_string()));
        let own: Vec<IpAddr> = sandbox.dns.servers.iter().filter_map(|s| s.parse().ok()).collect();
        let result = bound.and_then(|(udp, tcp)| {
            self.resolver.serve_sandbox(&sandbox.id, udp, tcp, Some(socket_addrs(own))).map_err(|e| e.to_string())
        });
        if let Err(e) = &result {
            tracing::warn!(sandbox = %id::short(&sandbox.id), error = %e, "cannot start the embedded DNS in the sandbox");
        }
        result.is_ok()
    }
}
