//! Typed gRPC clients of a cnetd under test, with helpers that panic with readable messages.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cnet_api::v1::network_service_client::NetworkServiceClient;
use cnet_api::v1::sandbox_service_client::SandboxServiceClient;
use cnet_api::v1::system_service_client::SystemServiceClient;
use cnet_api::v1::{
    ConnectRequest, CreateSandboxRequest, DisconnectRequest, Endpoint, InfoRequest, InfoResponse, ListNetworksRequest,
    ListSandboxesRequest, Network, NetworkRef, Sandbox, SandboxRef,
};
use tonic::transport::Channel;

use crate::tail;

/// How long one call may take before the test fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The three services of cnetd on one channel. The clients are public for calls the helpers do
/// not cover (e.g. checking an error code); the helpers panic on any error, naming the call and
/// showing cnetd's log tail.
pub struct Api {
    pub networks: NetworkServiceClient<Channel>,
    pub sandboxes: SandboxServiceClient<Channel>,
    pub system: SystemServiceClient<Channel>,
    log: PathBuf,
}

impl Api {
    pub fn new(channel: Channel, log: PathBuf) -> Api {
        Api {
            networks: NetworkServiceClient::new(channel.clone()),
            sandboxes: SandboxServiceClient::new(channel.clone()),
            system: SystemServiceClient::new(channel),
            log,
        }
    }

    pub async fn info(&mut self) -> InfoResponse {
        let fut = self.system.info(InfoRequest {});
        call(&self.log, "Info".into(), fut).await
    }

    /// InspectNetwork by name, id or id prefix.
    pub async fn network(&mut self, network: &str) -> Network {
        let fut = self.networks.inspect_network(NetworkRef { network: network.into() });
        call(&self.log, format!("InspectNetwork({network})"), fut).await
    }

    /// ListNetworks without filters.
    pub async fn list_networks(&mut self) -> Vec<Network> {
        let fut = self.networks.list_networks(ListNetworksRequest { filters: vec![] });
        call(&self.log, "ListNetworks".into(), fut).await.networks
    }

    /// The names of all networks, sorted.
    pub async fn network_names(&mut self) -> Vec<String> {
        let mut names: Vec<String> = self.list_networks().await.into_iter().map(|n| n.name).collect();
        names.sort();
        names
    }

    /// CreateSandbox with a name (and that name as hostname); everything else defaulted.
    pub async fn create_sandbox(&mut self, name: &str) -> Sandbox {
        let fut = self.sandboxes.create_sandbox(CreateSandboxRequest {
            name: name.into(),
            hostname: name.into(),
            ..Default::default()
        });
        call(&self.log, format!("CreateSandbox({name})"), fut).await
    }

    pub async fn sandbox(&mut self, sandbox: &str) -> Sandbox {
        let fut = self.sandboxes.inspect_sandbox(SandboxRef { sandbox: sandbox.into() });
        call(&self.log, format!("InspectSandbox({sandbox})"), fut).await
    }

    pub async fn list_sandboxes(&mut self) -> Vec<Sandbox> {
        let fut = self.sandboxes.list_sandboxes(ListSandboxesRequest {});
        call(&self.log, "ListSandboxes".into(), fut).await.sandboxes
    }

    /// ConnectNetwork(sandbox, network) with no static address, alias or port.
    pub async fn connect(&mut self, sandbox: &str, network: &str) -> Endpoint {
        self.connect_with(ConnectRequest { sandbox: sandbox.into(), network: network.into(), ..Default::default() })
            .await
    }

    pub async fn connect_with(&mut self, req: ConnectRequest) -> Endpoint {
        let what = format!("ConnectNetwork({}, {})", req.sandbox, req.network);
        let fut = self.sandboxes.connect_network(req);
        call(&self.log, what, fut).await
    }

    pub async fn disconnect(&mut self, sandbox: &str, network: &str) {
        let fut =
            self.sandboxes.disconnect_network(DisconnectRequest { sandbox: sandbox.into(), network: network.into() });
        call(&self.log, format!("DisconnectNetwork({sandbox}, {network})"), fut).await;
    }

    pub async fn remove_sandbox(&mut self, sandbox: &str) {
        let fut = self.sandboxes.remove_sandbox(SandboxRef { sandbox: sandbox.into() });
        call(&self.log, format!("RemoveSandbox({sandbox})"), fut).await;
    }

    /// CreateSandbox + ConnectNetwork: a "container" on `network`.
    pub async fn sandbox_on(&mut self, name: &str, network: &str) -> (Sandbox, Endpoint) {
        let sandbox = self.create_sandbox(name).await;
        let endpoint = self.connect(&sandbox.id, network).await;
        (sandbox, endpoint)
    }
}

/// Awaits one call (at most 30 s); panics on an error, naming the call, with cnetd's log tail.
async fn call<T>(log: &Path, what: String, fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> T {
    let log_tail = || tail(&std::fs::read_to_string(log).unwrap_or_default(), 40);
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(resp)) => resp.into_inner(),
        Ok(Err(status)) => {
            panic!("{what} failed: {:?}: {}\n--- cnetd log tail ---\n{}", status.code(), status.message(), log_tail())
        }
        Err(_) => panic!("{what} did not answer within {CALL_TIMEOUT:?}\n--- cnetd log tail ---\n{}", log_tail()),
    }
}
