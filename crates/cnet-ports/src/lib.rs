//! cnet-ports: the one component that publishes a container's ports, used by every driver that
//! publishes (bridge, overlay). A published port is a DNAT map element in cnet's nftables table
//! (through cnet-firewall, which alone speaks nftables), except a binding on `::1`, which the
//! kernel cannot DNAT (it never routes a loopback address out of `lo`): that one is relayed in user
//! space by this crate ([`relay`]), as Docker's userland proxy does. [`PublishedPorts::publish`]
//! does both or neither; [`PublishedPorts::unpublish`] undoes both.
//!
//! It never decides *which* rules a port needs (the driver renders them from its network's
//! config, e.g. the bridge's host binding address) and never touches links or records.

pub mod relay;

use std::sync::Arc;

use cnet_core::{Endpoint, Result, ResultExt, portspec::holder_name};
use cnet_firewall::{Firewall, PortRule};

/// The firewall's port maps and the relays, behind one door.
pub struct PublishedPorts {
    firewall: Arc<Firewall>,
    relays: relay::Relays,
}

impl PublishedPorts {
    pub fn new(firewall: Arc<Firewall>) -> PublishedPorts {
        PublishedPorts { firewall, relays: relay::Relays::default() }
    }

    /// Publishes `endpoint`'s ports: `rules` (its DNAT elements, rendered by the driver) and a
    /// relay for each binding on ::1. On failure nothing of the endpoint is published.
    pub async fn publish(&self, rules: &[PortRule], endpoint: &Endpoint) -> Result<()> {
        self.firewall.add_ports(rules).await.internal(format!("publishing ports of {}", holder_name(endpoint)))?;
        if let Err(e) = self.relays.start(endpoint) {
            let _ = self.firewall.remove_ports(rules).await;
            return Err(e);
        }
        Ok(())
    }

    /// After a restart: the same as [`PublishedPorts::publish`], except that a relay that cannot
    /// start again (another program took the port meanwhile) is logged, not fatal: the daemon
    /// comes up with every other port of every container.
    pub async fn republish(&self, rules: &[PortRule], endpoint: &Endpoint) -> Result<()> {
        self.firewall.add_ports(rules).await.internal(format!("publishing ports of {}", holder_name(endpoint)))?;
        if let Err(err) = self.relays.start(endpoint) {
            tracing::warn!(endpoint = %endpoint.id, error = %err, "cannot relay published ports on ::1 again");
        }
        Ok(())
    }

    /// Unpublishes `endpoint`'s ports: its relays stop (with their connections) and `rules` go.
    pub async fn unpublish(&self, rules: &[PortRule], endpoint: &Endpoint) -> Result<()> {
        self.relays.stop(&endpoint.id);
        self.firewall.remove_ports(rules).await.internal(format!("unpublishing ports of {}", holder_name(endpoint)))
    }
}
