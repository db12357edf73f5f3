//! The runtime's calls to cnetd: one sandbox per container (its id is the container id), one
//! endpoint per network, and the container's events (create, start, die, destroy), which cnetd
//! cannot see for itself. The runtime never touches network state itself.

use std::time::Duration;

use cnet_api::client::Daemon;
use cnet_api::v1::event_service_client::EventServiceClient;
use cnet_api::v1::sandbox_service_client::SandboxServiceClient;
use cnet_api::v1::{
    ConnectRequest, CreateSandboxRequest, DisconnectRequest, Endpoint, Event, EventActor, ListSandboxesRequest,
    PortBinding, Sandbox, SandboxRef,
};
use tonic::transport::Channel;

use crate::error::{Error, Result};
use crate::spec::{ContainerConfig, ContainerSpec, NetworkAttachment, NetworkMode};

/// How long a container event may take to reach cnetd: it is news of the container's life, never
/// a step of it, so a slow or absent cnetd must not hold the container up.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

/// A client of cnetd's sandbox and event services.
#[derive(Debug, Clone)]
pub struct Cnetd {
    sandboxes: SandboxServiceClient<Channel>,
    events: EventServiceClient<Channel>,
}

/// A container event in Docker's shape: `Actor.Attributes` are the container's name, image and
/// labels, and `extra` (`exitCode`).
pub fn container_event(action: &str, config: &ContainerConfig, extra: &[(&str, String)]) -> Event {
    let mut attributes: std::collections::HashMap<String, String> = config.labels.clone().into_iter().collect();
    attributes.insert("name".into(), config.name.clone());
    attributes.insert("image".into(), config.image.clone());
    attributes.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Event {
        r#type: "container".into(),
        action: action.into(),
        actor: Some(EventActor { id: config.id.clone(), attributes }),
        ..Default::default()
    }
}

impl Cnetd {
    /// The sandbox and event services on a connection to cnetd.
    pub fn new(daemon: &Daemon) -> Cnetd {
        Cnetd { sandboxes: daemon.sandboxes(), events: daemon.events() }
    }

    /// `Publish`: one container event, within [`PUBLISH_TIMEOUT`].
    pub async fn publish(&mut self, event: Event) -> Result<()> {
        match tokio::time::timeout(PUBLISH_TIMEOUT, self.events.publish(event)).await {
            Ok(reply) => reply.map(drop).map_err(Error::from),
            Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                "cnetd did not take the event within {PUBLISH_TIMEOUT:?}"
            ))
            .into()),
        }
    }

    /// [`Cnetd::publish`] for a step that goes on whatever happens (an event is never worth
    /// failing a container operation for): a failure is logged.
    pub async fn report(&mut self, action: &str, config: &ContainerConfig, extra: &[(&str, String)]) {
        if let Err(e) = self.publish(container_event(action, config, extra)).await {
            tracing::warn!(container = %config.id, action, error = %e, "cannot report a container event to cnetd");
        }
    }

    /// Dials cnetd on `socket`.
    pub async fn connect(socket: &std::path::Path) -> Result<Cnetd> {
        Ok(Cnetd::new(&Daemon::connect(socket).await?))
    }

    /// `CreateSandbox` for a new container whose directory is `owner` (cnetd removes the sandbox
    /// at its next start if that directory is gone: the creation was cut short).
    #[tracing::instrument(level = "debug", name = "sandbox", skip_all)]
    pub async fn create_sandbox(
        &mut self,
        id: &str,
        name: &str,
        hostname: &str,
        spec: &ContainerSpec,
        owner: &std::path::Path,
    ) -> Result<Sandbox> {
        let request = CreateSandboxRequest {
            container_id: id.to_string(),
            name: name.to_string(),
            hostname: hostname.to_string(),
            domainname: String::new(),
            host_network: NetworkMode::of(&spec.networks) == NetworkMode::Host,
            dns_servers: spec.dns.clone(),
            dns_search: spec.dns_search.clone(),
            dns_options: spec.dns_options.clone(),
            extra_hosts: spec.extra_hosts.clone(),
            owner: owner.display().to_string(),
            sysctls: spec.sysctls.clone().into_iter().collect(),
        };
        Ok(self.sandboxes.create_sandbox(request).await?.into_inner())
    }

    /// `ConnectNetwork`: a new endpoint of the sandbox on `net`.
    #[tracing::instrument(level = "debug", name = "connect", skip_all)]
    pub async fn connect_network(
        &mut self,
        sandbox: &str,
        net: &NetworkAttachment,
        ports: &[cnet_core::PortBinding],
    ) -> Result<Endpoint> {
        let request = ConnectRequest {
            sandbox: sandbox.to_string(),
            network: net.network.clone(),
            ipv4_address: net.ipv4.clone(),
            ipv6_address: net.ipv6.clone(),
            aliases: net.aliases.clone(),
            ports: ports.iter().map(PortBinding::from).collect(),
            mac_address: net.mac.clone(),
            driver_opts: net.driver_opts.clone().into_iter().collect(),
            gw_priority: net.gw_priority,
        };
        Ok(self.sandboxes.connect_network(request).await?.into_inner())
    }

    pub async fn disconnect_network(&mut self, sandbox: &str, network: &str) -> Result<()> {
        let request = DisconnectRequest { sandbox: sandbox.to_string(), network: network.to_string() };
        self.sandboxes.disconnect_network(request).await?;
        Ok(())
    }

    pub async fn inspect_sandbox(&mut self, sandbox: &str) -> Result<Sandbox> {
        Ok(self.sandboxes.inspect_sandbox(SandboxRef { sandbox: sandbox.to_string() }).await?.into_inner())
    }

    pub async fn list_sandboxes(&mut self) -> Result<Vec<Sandbox>> {
        Ok(self.sandboxes.list_sandboxes(ListSandboxesRequest {}).await?.into_inner().sandboxes)
    }

    /// `RemoveSandbox`: leaves every network (freeing leases) and removes the namespace. A sandbox
    /// that is already gone is not an error.
    #[tracing::instrument(level = "debug", name = "cnetd.remove_sandbox", skip_all)]
    pub async fn remove_sandbox(&mut self, sandbox: &str) -> Result<()> {
        match self.sandboxes.remove_sandbox(SandboxRef { sandbox: sandbox.to_string() }).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(s.into()),
        }
    }
}
