//! The `p2p` driver: a network is a point-to-point link between at most two containers, one veth
//! pair made directly between their namespaces. No bridge, no gateway, no NAT, no firewall rules,
//! no published ports; addresses only if the network was given a subnet (a /31 is the usual one).
//!
//! The pair outlives either endpoint: its end without a sandbox is "parked", down, in the daemon's
//! namespace as `p2p<netid12>` ([`steps::parked_name`]), so the container that stays sees its
//! carrier go (NO-CARRIER) rather than its interface, and the next container to join takes the
//! parked end. Steps, in order:
//! - first join: `SandboxInterface::VethWithParkedPeer` (the controller makes the pair, this end
//!   born inside the sandbox, the other parked);
//! - second join: `SandboxInterface::Unpark` (the parked end is moved in, renamed, configured);
//! - leave: a lone endpoint deletes the pair; one of two parks its end ([`steps::park`]);
//! - restore: each network's link is checked against its records and made again where it broke
//!   ([`steps::relink`]); parked ends no network claims are deleted.
//!
//! Which join or leave this is, is read from the kernel (does the parked end exist?), not kept in
//! memory: there is one truth, and it survives restarts. The controller refuses a third endpoint
//! ([`Driver::max_endpoints`]) before it leases anything. Sandboxes' namespaces are found at
//! `<netns dir>/<sandbox id>`, where the controller binds them.

pub mod config;
pub mod steps;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cnet_core::{
    Capabilities, Driver, Endpoint, JoinInfo, Network, PoolPlan, Result, ResultExt, Sandbox, SandboxInterface, Scope,
};
use cnet_kernel::{Kernel, NetnsHandle};

pub use config::P2pConfig;

/// A veth's MTU when the network names none (the kernel's default for a new veth).
const DEFAULT_MTU: u32 = 1500;

pub struct P2pDriver {
    kernel: Kernel,
    /// Where the controller binds sandbox namespaces (`<run>/netns`): restore reaches the ends
    /// of each link from the endpoint records' sandbox ids.
    netns_dir: PathBuf,
}

impl P2pDriver {
    pub fn new(kernel: Kernel, netns_dir: PathBuf) -> Self {
        P2pDriver { kernel, netns_dir }
    }
}

#[async_trait]
impl Driver for P2pDriver {
    fn name(&self) -> &'static str {
        "p2p"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Local,
            needs_ipam: true,
            needs_sandbox_netns: true,
            user_creatable: true,
            interface_goes_with_endpoint: false,
        }
    }

    fn pool_plan(&self) -> PoolPlan {
        PoolPlan::LinkOnly
    }

    fn max_endpoints(&self) -> Option<usize> {
        Some(2)
    }

    fn validate_network(&self, network: &Network) -> Result<()> {
        P2pConfig::from_network(network).map(|_| ())
    }

    /// Nothing to make: the pair comes with the first join.
    async fn create_network(&self, network: &Network) -> Result<()> {
        P2pConfig::from_network(network).map(|_| ())
    }

    async fn delete_network(&self, network: &Network) -> Result<()> {
        // With no endpoint there is no pair; a parked end left by a crash goes now.
        steps::remove_pair(&self.kernel, &steps::parked_name(network)).await
    }

    async fn create_endpoint(&self, network: &Network, endpoint: &mut Endpoint) -> Result<()> {
        // Refused before the link is touched: the default refusal comes after the join, and undoing
        // a second join means parking its end again.
        config::refuse_ports("p2p", network, endpoint)
    }

    async fn join(&self, network: &Network, _endpoint: &Endpoint, _sandbox: &Sandbox) -> Result<JoinInfo> {
        let cfg = P2pConfig::from_network(network)?;
        let parked = steps::parked_name(network);
        let interface = if steps::parked_exists(&self.kernel, &parked).await? {
            SandboxInterface::Unpark { parked }
        } else {
            SandboxInterface::VethWithParkedPeer { parked }
        };
        // No gateway and no routes: the link carries only what its two ends send each other.
        // Always an MTU: an end unparked for this join may come from an endpoint that
        // `cnet link set --mtu` gave another one, and it must not take it to its next owner.
        let mtu = cfg.mtu.unwrap_or(DEFAULT_MTU);
        Ok(JoinInfo { interface: Some(interface), mtu: Some(mtu), ..Default::default() })
    }

    async fn leave(&self, network: &Network, endpoint: &Endpoint, sandbox: &Sandbox) -> Result<()> {
        let ns = NetnsHandle::open(Path::new(&sandbox.netns_path))
            .await
            .internal(format!("opening the namespace of sandbox {}", sandbox.id.short()))?;
        // Not there: the join never made it, or its failure took it back already.
        if !steps::end_present(&ns, endpoint).await? {
            return Ok(());
        }
        let parked = steps::parked_name(network);
        if steps::parked_exists(&self.kernel, &parked).await? {
            // Alone on the link: the pair goes, this end with it.
            steps::remove_pair(&self.kernel, &parked).await
        } else {
            tracing::debug!(network = %network.name, ifname = %endpoint.ifname, "parking the p2p end");
            steps::park(&self.kernel, &ns, endpoint, &parked).await
        }
    }

    async fn restore(&self, networks: &[Network], endpoints: &[Endpoint]) -> Result<()> {
        let mut keep = Vec::new();
        for network in networks {
            let cfg = match P2pConfig::from_network(network) {
                Ok(cfg) => cfg,
                Err(e) => {
                    tracing::warn!(network = %network.name, error = %e, "p2p network with bad options");
                    continue;
                }
            };
            let mut on_it: Vec<&Endpoint> = endpoints.iter().filter(|e| e.network_id == network.id).collect();
            // The order a link is made again in does not matter, but keep it stable.
            on_it.sort_by(|a, b| a.id.cmp(&b.id));
            if let Err(e) = steps::relink(&self.kernel, &self.netns_dir, network, &on_it, cfg.mtu).await {
                // One broken link must not keep the daemon (and every other network) down.
                tracing::error!(network = %network.name, error = %e, "cannot restore the p2p link");
            }
            if on_it.len() == 1 {
                keep.push(steps::parked_name(network));
            }
        }
        steps::remove_orphans(&self.kernel, &keep).await
    }
}
