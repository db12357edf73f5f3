//! The gRPC face of the controller: request messages in, typed values to the controller, records
//! back out as messages, `cnet_core::Error` kinds as status codes.

use std::net::IpAddr;
use std::sync::Arc;

use cnet_api::v1 as pb;
use cnet_core::ipam::PoolRequest;
use cnet_core::{DnsConfig, Endpoint, Error, Network, PortBinding, Sandbox};
use tonic::{Request, Response, Status};

use crate::controller::{ConnectRequest, Controller, NetworkRequest, SandboxRequest};
use cnet_core::etc;

mod events;
mod labs;
mod links;

pub fn status(e: Error) -> Status {
    match e {
        Error::NotFound(m) => Status::not_found(m),
        Error::AlreadyExists(m) => Status::already_exists(m),
        Error::InvalidArgument(m) => Status::invalid_argument(m),
        Error::FailedPrecondition(m) => Status::failed_precondition(m),
        internal @ Error::Internal { .. } => {
            // The whole chain goes to the log; the client gets the message (context: cause).
            tracing::warn!(error = ?internal, "internal error");
            Status::internal(internal.to_string())
        }
        Error::Unavailable(m) => Status::unavailable(m),
    }
}

#[derive(Clone)]
pub struct Api {
    ctl: Arc<Controller>,
    host_resolv: Arc<dyn Fn() -> String + Send + Sync>,
}

impl Api {
    pub fn new(ctl: Arc<Controller>) -> Self {
        Api { ctl, host_resolv: Arc::new(|| std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()) }
    }

    /// The cluster store client, for calls that need one.
    fn cluster(&self) -> Result<&Arc<cnet_cluster::Cluster>, Status> {
        self.ctl.cluster().ok_or_else(|| {
            Status::failed_precondition(
                "this cnetd is not in a cluster: start it with --cluster-store etcd://HOST:PORT and --cluster-advertise ADDR|IFACE",
            )
        })
    }
}

/// Docker's network filters: every key must match; several values of one key match any.
fn matches_filters(n: &Network, filters: &[(String, String)]) -> bool {
    let keys: std::collections::BTreeSet<&str> = filters.iter().map(|(k, _)| k.as_str()).collect();
    keys.into_iter().all(|key| {
        filters.iter().filter(|(k, _)| k == key).any(|(_, v)| match key {
            "name" => n.name.contains(v.as_str()),
            "id" => n.id.starts_with(v.as_str()),
            "driver" => n.driver == *v,
            "scope" => n.scope.as_str() == v,
            "type" => (v == "builtin") == n.builtin,
            "label" => match v.split_once('=') {
                Some((lk, lv)) => n.labels.get(lk).is_some_and(|x| x == lv),
                None => n.labels.contains_key(v.as_str()),
            },
            _ => false,
        })
    })
}

fn parse_filters(raw: &[String]) -> Result<Vec<(String, String)>, Status> {
    raw.iter()
        .map(|f| {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| Status::invalid_argument(format!("invalid filter {f:?}: expected key=value")))?;
            if !["name", "id", "driver", "scope", "type", "label"].contains(&k) {
                return Err(Status::invalid_argument(format!(
                    "invalid filter {k:?}: known filters are name, id, driver, scope, type, label"
                )));
            }
            if k == "type" && v != "builtin" && v != "custom" {
                return Err(Status::invalid_argument(format!("invalid filter type={v:?}: expected builtin or custom")));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

fn opt_ip(what: &str, s: &str) -> Result<Option<IpAddr>, Status> {
    if s.is_empty() { Ok(None) } else { cnet_core::ipam::parse_ip(what, s).map(Some).map_err(status) }
}

impl Api {
    async fn sandbox_message(&self, reference: &str) -> Result<pb::Sandbox, Status> {
        let (s, eps, nets): (Sandbox, Vec<Endpoint>, Vec<Network>) =
            self.ctl.inspect_sandbox(reference).await.map_err(status)?;
        let resolv = if nets.iter().any(crate::dns::enabled) {
            etc::embedded_resolv_conf(&s, &(self.host_resolv)())
        } else {
            etc::resolv_conf(&s, &(self.host_resolv)())
        };
        let hosts = etc::hosts(&s, &eps);
        let mut endpoints = Vec::with_capacity(eps.len());
        for (e, n) in eps.iter().zip(&nets) {
            let mut m = pb::Endpoint::from_records(e, n);
            m.conflict = self.ctl.endpoint_conflict(&e.id).await.unwrap_or_default();
            endpoints.push(m);
        }
        Ok(pb::Sandbox {
            id: s.id.to_string(),
            name: s.name.clone(),
            hostname: s.hostname.clone(),
            netns_path: s.netns_path.clone(),
            host_network: s.host_network,
            endpoints,
            resolv_conf: resolv,
            hosts,
            sysctls: s.sysctls.clone().into_iter().collect(),
        })
    }
}

#[tonic::async_trait]
impl pb::network_service_server::NetworkService for Api {
    async fn create_network(&self, req: Request<pb::CreateNetworkRequest>) -> Result<Response<pb::Network>, Status> {
        let r = req.into_inner();
        let configs = r.ipam.map(|i| i.config).unwrap_or_default();
        let pools = configs.iter().map(PoolRequest::try_from).collect::<Result<Vec<_>, _>>().map_err(status)?;
        let n = self
            .ctl
            .create_network(NetworkRequest {
                name: r.name,
                driver: r.driver,
                pools,
                options: r.options.into_iter().collect(),
                labels: r.labels.into_iter().collect(),
                internal: r.internal,
                attachable: r.attachable,
                enable_ipv6: r.enable_ipv6,
            })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Network::from_records(&n, &[])))
    }

    async fn list_networks(
        &self,
        req: Request<pb::ListNetworksRequest>,
    ) -> Result<Response<pb::ListNetworksResponse>, Status> {
        let filters = parse_filters(&req.into_inner().filters)?;
        let networks = self
            .ctl
            .list_networks()
            .await
            .iter()
            .filter(|(n, _)| matches_filters(n, &filters))
            .map(|(n, eps)| pb::Network::from_records(n, eps))
            .collect();
        Ok(Response::new(pb::ListNetworksResponse { networks }))
    }

    async fn inspect_network(&self, req: Request<pb::NetworkRef>) -> Result<Response<pb::Network>, Status> {
        let (n, eps) = self.ctl.inspect_network(&req.into_inner().network).await.map_err(status)?;
        let mut msg = pb::Network::from_records(&n, &eps);
        if let (cnet_core::Scope::Global, Some(cluster)) = (n.scope, self.ctl.cluster()) {
            for e in &mut msg.endpoints {
                e.node = cluster.node_name().to_string();
            }
            msg.endpoints.extend(self.ctl.remote_endpoints(&n.id).await.into_iter().map(|r| pb::EndpointSummary {
                endpoint_id: r.id.to_string(),
                sandbox_id: String::new(),
                name: r.name,
                mac_address: r.mac,
                ipv4_address: r.ipv4.map(|a| a.to_string()).unwrap_or_default(),
                ipv6_address: r.ipv6.map(|a| a.to_string()).unwrap_or_default(),
                node: r.node,
                remote: true,
            }));
        }
        Ok(Response::new(msg))
    }

    async fn remove_network(
        &self,
        req: Request<pb::NetworkRef>,
    ) -> Result<Response<pb::RemoveNetworkResponse>, Status> {
        let n = self.ctl.remove_network(&req.into_inner().network).await.map_err(status)?;
        Ok(Response::new(pb::RemoveNetworkResponse { id: n.id.to_string() }))
    }

    async fn rotate_network_key(
        &self,
        req: Request<pb::NetworkRef>,
    ) -> Result<Response<pb::RotateNetworkKeyResponse>, Status> {
        let (n, serial) = self.ctl.rotate_network_key(&req.into_inner().network).await.map_err(status)?;
        Ok(Response::new(pb::RotateNetworkKeyResponse { id: n.id.to_string(), serial }))
    }

    async fn prune_networks(
        &self,
        _req: Request<pb::PruneNetworksRequest>,
    ) -> Result<Response<pb::PruneNetworksResponse>, Status> {
        let removed = self.ctl.prune_networks().await.map_err(status)?;
        Ok(Response::new(pb::PruneNetworksResponse { removed }))
    }
}

#[tonic::async_trait]
impl pb::sandbox_service_server::SandboxService for Api {
    async fn create_sandbox(&self, req: Request<pb::CreateSandboxRequest>) -> Result<Response<pb::Sandbox>, Status> {
        let r = req.into_inner();
        let s = self
            .ctl
            .create_sandbox(SandboxRequest {
                container_id: r.container_id,
                name: r.name,
                hostname: r.hostname,
                domainname: r.domainname,
                host_network: r.host_network,
                dns: DnsConfig { servers: r.dns_servers, search: r.dns_search, options: r.dns_options },
                extra_hosts: r.extra_hosts,
                owner: r.owner,
                sysctls: r.sysctls.into_iter().collect(),
            })
            .await
            .map_err(status)?;
        Ok(Response::new(self.sandbox_message(&s.id).await?))
    }

    async fn inspect_sandbox(&self, req: Request<pb::SandboxRef>) -> Result<Response<pb::Sandbox>, Status> {
        Ok(Response::new(self.sandbox_message(&req.into_inner().sandbox).await?))
    }

    async fn list_sandboxes(
        &self,
        _req: Request<pb::ListSandboxesRequest>,
    ) -> Result<Response<pb::ListSandboxesResponse>, Status> {
        let mut sandboxes = Vec::new();
        for id in self.ctl.list_sandboxes().await {
            // A sandbox removed between the two calls is simply not listed.
            if let Ok(s) = self.sandbox_message(&id).await {
                sandboxes.push(s);
            }
        }
        sandboxes.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(Response::new(pb::ListSandboxesResponse { sandboxes }))
    }

    async fn remove_sandbox(
        &self,
        req: Request<pb::SandboxRef>,
    ) -> Result<Response<pb::RemoveSandboxResponse>, Status> {
        self.ctl.remove_sandbox(&req.into_inner().sandbox).await.map_err(status)?;
        Ok(Response::new(pb::RemoveSandboxResponse {}))
    }

    async fn connect_network(&self, req: Request<pb::ConnectRequest>) -> Result<Response<pb::Endpoint>, Status> {
        let r = req.into_inner();
        let ports = r.ports.iter().map(PortBinding::try_from).collect::<Result<Vec<_>, _>>().map_err(status)?;
        let (e, n) = self
            .ctl
            .connect(ConnectRequest {
                sandbox: r.sandbox,
                network: r.network,
                ipv4: opt_ip("IPv4 address", &r.ipv4_address)?,
                ipv6: opt_ip("IPv6 address", &r.ipv6_address)?,
                aliases: r.aliases,
                ports,
                mac: Some(r.mac_address).filter(|m| !m.is_empty()).map(|m| m.parse()).transpose().map_err(status)?,
                driver_opts: r.driver_opts.into_iter().collect(),
                gw_priority: r.gw_priority,
            })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::Endpoint::from_records(&e, &n)))
    }

    async fn disconnect_network(
        &self,
        req: Request<pb::DisconnectRequest>,
    ) -> Result<Response<pb::DisconnectResponse>, Status> {
        let r = req.into_inner();
        self.ctl.disconnect(&r.sandbox, &r.network).await.map_err(status)?;
        Ok(Response::new(pb::DisconnectResponse {}))
    }
}

#[tonic::async_trait]
impl pb::system_service_server::SystemService for Api {
    async fn info(&self, _req: Request<pb::InfoRequest>) -> Result<Response<pb::InfoResponse>, Status> {
        let (networks, sandboxes, endpoints) = self.ctl.counts().await;
        Ok(Response::new(pb::InfoResponse {
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: cnet_api::API_VERSION.into(),
            state_dir: self.ctl.state_dir().display().to_string(),
            run_dir: self.ctl.run_dir().display().to_string(),
            networks: networks as u32,
            sandboxes: sandboxes as u32,
            endpoints: endpoints as u32,
            pid: std::process::id(),
            pending_link_deletions: self.ctl.pending_link_deletions() as u32,
            pending_firewall_changes: self.ctl.pending_firewall_changes() as u32,
            cluster: self.ctl.cluster().map(|c| pb::ClusterInfo {
                store: c.store().to_string(),
                node: c.node_name().to_string(),
                advertise: c.advertise().to_string(),
                connected: c.is_connected(),
                ttl_seconds: c.ttl().as_secs() as u32,
            }),
        }))
    }

    async fn list_nodes(&self, _req: Request<pb::ListNodesRequest>) -> Result<Response<pb::ListNodesResponse>, Status> {
        let cluster = self.cluster()?;
        let mut nodes: Vec<pb::Node> = cluster
            .nodes()
            .await
            .map_err(status)?
            .into_iter()
            .map(|n| pb::Node {
                self_: n.record.name == cluster.node_name(),
                name: n.record.name,
                address: n.record.address.to_string(),
                state: if n.alive { "ready" } else { "down" }.into(),
                endpoints: n.endpoints as u32,
                joined: n.record.joined,
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(pb::ListNodesResponse { nodes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnet_core::Scope;

    fn net(name: &str, builtin: bool) -> Network {
        Network {
            id: ("abc123".repeat(10) + "abcd").into(),
            name: name.into(),
            driver: "bridge".into(),
            scope: Scope::Local,
            pools: vec![],
            options: Default::default(),
            labels: [("env".to_string(), "lab".to_string())].into_iter().collect(),
            internal: false,
            attachable: false,
            enable_ipv6: false,
            created: String::new(),
            builtin,
        }
    }

    #[test]
    fn filters() {
        let f = |s: &[&str]| parse_filters(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap();
        let n = net("private-network", false);
        assert!(matches_filters(&n, &f(&["name=private"])));
        assert!(matches_filters(&n, &f(&["name=nomatch", "name=private"])));
        assert!(!matches_filters(&n, &f(&["name=private", "type=builtin"])));
        assert!(matches_filters(&n, &f(&["label=env=lab", "driver=bridge", "id=abc1"])));
        assert!(!matches_filters(&n, &f(&["label=env=prod"])));
        assert!(matches_filters(&net("bridge", true), &f(&["type=builtin"])));
        assert!(parse_filters(&["colour=red".into()]).unwrap_err().message().contains("colour"));
        assert!(parse_filters(&["type=weird".into()]).unwrap_err().message().contains("weird"));
    }
}
