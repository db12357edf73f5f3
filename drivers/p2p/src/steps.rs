//! The p2p driver's kernel steps, each beside its undo: the pair's parked end (name, lookup,
//! removal), parking a sandbox's end, and making a link again from the records at restore.

use std::path::Path;

use cnet_core::{Endpoint, Network, Result, ResultExt};
use cnet_kernel::{InterfaceConfig, Kernel, NetnsHandle};

/// The parked end of a network's pair is `p2p<netid12>`: one per network at most (there is one
/// only while exactly one endpoint is joined), found again from the network record alone after a
/// restart, and a name only cnet gives, so a restart can tell its orphans from anyone's links.
pub fn parked_name(network: &Network) -> String {
    format!("{PARKED_PREFIX}{}", network.short_id())
}

const PARKED_PREFIX: &str = "p2p";

/// True for `p2p<12 hex>`, the names of parked ends.
pub fn is_parked_name(name: &str) -> bool {
    name.strip_prefix(PARKED_PREFIX).is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub async fn parked_exists(kernel: &Kernel, parked: &str) -> Result<bool> {
    Ok(kernel.link_by_name(parked).await.internal(format!("looking up {parked}"))?.is_some())
}

/// Deletes the parked end, and with it the whole pair; a missing one is fine.
pub async fn remove_pair(kernel: &Kernel, parked: &str) -> Result<()> {
    kernel.delete_link(parked).await.internal(format!("deleting {parked}"))
}

/// Whether the endpoint's end of the pair is in its sandbox (a veth named as the endpoint's
/// interface).
pub async fn end_present(ns: &NetnsHandle, endpoint: &Endpoint) -> Result<bool> {
    let link = ns.link_by_name(&endpoint.ifname).await.internal(format!("looking up {}", endpoint.ifname))?;
    Ok(link.is_some_and(|l| l.kind.as_deref() == Some("veth")))
}

/// Takes the endpoint's end out of its sandbox and parks it for the next join; its peer sees its
/// carrier go. The undo of a second join.
pub async fn park(kernel: &Kernel, ns: &NetnsHandle, endpoint: &Endpoint, parked: &str) -> Result<()> {
    kernel.park(ns, &endpoint.ifname, parked).await.internal(format!("parking {} as {parked}", endpoint.ifname))
}

/// The sandbox side of an endpoint, as the controller configures it at join: no gateway, no
/// routes (a p2p link carries only the traffic between its two ends).
pub fn interface_config(endpoint: &Endpoint, mtu: Option<u32>) -> InterfaceConfig {
    InterfaceConfig {
        name: endpoint.ifname.clone(),
        mac: Some(endpoint.mac.octets()),
        mtu,
        addresses: [endpoint.ipv4, endpoint.ipv6].into_iter().flatten().collect(),
        ..Default::default()
    }
}

pub async fn open_sandbox(netns_dir: &Path, endpoint: &Endpoint) -> Result<NetnsHandle> {
    let path = netns_dir.join(endpoint.sandbox_id.as_str());
    NetnsHandle::open(&path).await.internal(format!("opening the namespace of sandbox {}", endpoint.sandbox_id.short()))
}

/// At restore: makes the network's link match its endpoints (at most two). What is in place is
/// left alone; a broken pair (one end's sandbox went while cnetd was down, or a crash between two
/// steps) is made again from the records.
pub async fn relink(
    kernel: &Kernel,
    netns_dir: &Path,
    network: &Network,
    endpoints: &[&Endpoint],
    mtu: Option<u32>,
) -> Result<()> {
    let parked = parked_name(network);
    let parked_there = parked_exists(kernel, &parked).await?;
    match endpoints {
        [] => {
            if parked_there {
                tracing::info!(link = %parked, network = %network.name, "removing the parked end of a link with no endpoint");
                remove_pair(kernel, &parked).await?;
            }
        }
        [only] => {
            let ns = open_sandbox(netns_dir, only).await?;
            if end_present(&ns, only).await? && parked_there {
                return Ok(());
            }
            tracing::info!(network = %network.name, endpoint = %only.id.short(), "making the p2p link again");
            // Whatever is left is half a pair with its other end lost: neither is worth keeping.
            ns.delete_link(&only.ifname).await.internal(format!("deleting {}", only.ifname))?;
            remove_pair(kernel, &parked).await?;
            kernel
                .create_veth_with_parked_peer(&parked, &ns, &interface_config(only, mtu))
                .await
                .internal(format!("making the link of network {}", network.name))?;
        }
        [a, b] => {
            let (ns_a, ns_b) = (open_sandbox(netns_dir, a).await?, open_sandbox(netns_dir, b).await?);
            let (has_a, has_b) = (end_present(&ns_a, a).await?, end_present(&ns_b, b).await?);
            match (has_a, has_b, parked_there) {
                (true, true, false) => {}
                // Both ends in place: a parked end is left over from another pair.
                (true, true, true) => remove_pair(kernel, &parked).await?,
                // A leave that parked its end, cut short before its record went: the end goes back.
                (true, false, true) => unpark(kernel, &ns_b, b, &parked, mtu).await?,
                (false, true, true) => unpark(kernel, &ns_a, a, &parked, mtu).await?,
                _ => {
                    tracing::info!(network = %network.name, "making the p2p link again");
                    for (ns, e) in [(&ns_a, a), (&ns_b, b)] {
                        ns.delete_link(&e.ifname).await.internal(format!("deleting {}", e.ifname))?;
                    }
                    remove_pair(kernel, &parked).await?;
                    kernel
                        .create_veth_with_parked_peer(&parked, &ns_a, &interface_config(a, mtu))
                        .await
                        .internal(format!("making the link of network {}", network.name))?;
                    unpark(kernel, &ns_b, b, &parked, mtu).await?;
                }
            }
        }
        more => {
            tracing::warn!(network = %network.name, endpoints = more.len(), "a p2p network with more than two endpoints: left as it is")
        }
    }
    Ok(())
}

async fn unpark(kernel: &Kernel, ns: &NetnsHandle, endpoint: &Endpoint, parked: &str, mtu: Option<u32>) -> Result<()> {
    kernel.unpark_into(parked, ns, &interface_config(endpoint, mtu)).await.internal(format!(
        "moving {parked} into sandbox {} as {}",
        endpoint.sandbox_id.short(),
        endpoint.ifname
    ))
}

/// Deletes parked ends (`p2p<12 hex>` links of the daemon's namespace) that are not in `keep`.
pub async fn remove_orphans(kernel: &Kernel, keep: &[String]) -> Result<()> {
    for link in kernel.links().await.internal("listing links")? {
        if is_parked_name(&link.name) && !keep.contains(&link.name) {
            tracing::info!(link = %link.name, "removing orphan parked p2p end");
            remove_pair(kernel, &link.name).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_names() {
        let network = crate::config::tests::net(&[], vec![]);
        let name = parked_name(&network);
        assert_eq!(name, "p2p0123456789ab");
        assert!(name.len() <= 15 && is_parked_name(&name));
        for other in ["p2p", "p2p0123", "p2p0123456789abc", "p2pxyz456789ab", "veth0123456", "br-0123456789ab"] {
            assert!(!is_parked_name(other), "{other}");
        }
    }
}
