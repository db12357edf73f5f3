//! The runtime's calls to cnetd: one sandbox per container (its id is the container id), one
//! endpoint per network. The runtime never touches network state itself.

use cnet_api::client::Daemon;
use cnet_api::v1::sandbox_service_client::SandboxServiceClient;
use cnet_api::v1::{
    ConnectRequest, CreateSandboxRequest, DisconnectRequest, Endpoint, ListSandboxesRequest, PortBinding, Sandbox,
    SandboxRef,
};
use tonic::transport::Channel;

use crate::error::Result;
use crate::spec::{ContainerSpec, NetworkAttachment, NetworkMode};

/// A client of cnetd's sandbox service.
#[derive(Debug, Clone)]
pub struct Cnetd {
    sandboxes: SandboxServiceClient<Channel>,
}

impl Cnetd {
    /// The sandbox service on a connection to cnetd.
    pub fn new(daemon: &Daemon) -> Cnetd {
        Cnetd { sandboxes: daemon.sandboxes() }
    }

    /// Dials cnetd on `socket`.
    pub async fn connect(socket: &std::path::Path) -> Result<Cnetd> {
        Ok(Cnetd::new(&Daemon::connect(socket).await?))
    }

    /// `CreateSandbox` for a new container whose directory is `owner` (cnetd removes the sandbox
    /// at its next start if that directory is gone: the creation was cut short).
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
    pub async fn remove_sandbox(&mut self, sandbox: &str) -> Result<()> {
        match self.sandboxes.remove_sandbox(SandboxRef { sandbox: sandbox.to_string() }).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(s.into()),
        }
    }
}
