//! What `apply` changes: the difference between a lab file and the lab that runs, so that what
//! the file does not change is not touched (its containers keep running, its links keep their
//! interfaces and lose no packet).
//!
//! Every node's container and every link's network carries a fingerprint of its settings
//! ([`LABEL_HASH`]); a node or link whose fingerprint differs from the file's is made again, one
//! that is the same is left alone. A link whose network exists but misses an end (a new link to
//! a node that runs, or an apply cut short) gets that end connected, so a second apply converges.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::{Lab, Link, Node};

/// Label with an object's fingerprint (see [`fingerprint`]).
pub const LABEL_HASH: &str = "cnet.lab.hash";
/// Label on a lab's own network: its name in the file.
pub const LABEL_NETWORK: &str = "cnet.lab.network";

/// FNV-1a of the settings' text: the same settings, the same fingerprint, on every run of the
/// same cnet (a new cnet may make every node again, once).
pub fn fingerprint(settings: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in settings.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

impl Lab {
    /// A node's fingerprint: everything that makes its container (not its links, which are
    /// networks of their own).
    pub fn node_fingerprint(&self, node: &Node) -> String {
        fingerprint(&format!("{node:?}|{}", self.mgmt.network))
    }

    pub fn link_fingerprint(&self, link: &Link) -> String {
        fingerprint(&format!("{link:?}"))
    }
}

/// The lab as it runs, read from the labels of its containers and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    /// Node name -> its container's name and fingerprint.
    pub nodes: BTreeMap<String, (String, String)>,
    /// Link key -> its network's name, fingerprint, and the nodes attached to it.
    pub links: BTreeMap<String, (String, String, BTreeSet<String>)>,
    /// The lab's own networks: name in the file -> network name.
    pub networks: BTreeMap<String, String>,
}

/// One change, in the order a plan lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    RemoveLink {
        key: String,
        network: String,
    },
    RemoveNode {
        node: String,
        container: String,
    },
    RemoveNetwork {
        name: String,
        network: String,
    },
    AddNetwork {
        name: String,
    },
    AddLink {
        key: String,
    },
    AddNode {
        node: String,
    },
    /// Connect a running node to a link's network that exists.
    ConnectEnd {
        key: String,
        node: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::RemoveLink { key, .. } => write!(f, "- link {key}"),
            Change::RemoveNode { node, container } => write!(f, "- node {node} ({container})"),
            Change::RemoveNetwork { name, .. } => write!(f, "- network {name}"),
            Change::AddNetwork { name } => write!(f, "+ network {name}"),
            Change::AddLink { key } => write!(f, "+ link {key}"),
            Change::AddNode { node } => write!(f, "+ node {node}"),
            Change::ConnectEnd { key, node } => write!(f, "+ end {node} of link {key}"),
        }
    }
}

/// The changes that make `live` what `lab` says, removals first.
pub fn plan(lab: &Lab, live: &Live) -> Vec<Change> {
    let wanted_links: BTreeMap<String, &Link> = lab.links.iter().map(|l| (l.key(), l)).collect();
    let wanted_nodes: BTreeMap<&str, &Node> = lab.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut changes = Vec::new();

    let link_kept = |key: &str| {
        let (Some(link), Some((_, hash, _))) = (wanted_links.get(key), live.links.get(key)) else { return false };
        *hash == lab.link_fingerprint(link)
    };
    let node_kept = |name: &str| {
        let (Some(node), Some((_, hash))) = (wanted_nodes.get(name), live.nodes.get(name)) else { return false };
        *hash == lab.node_fingerprint(node)
    };
    for (key, (network, _, _)) in &live.links {
        if !link_kept(key) {
            changes.push(Change::RemoveLink { key: key.clone(), network: network.clone() });
        }
    }
    for (node, (container, _)) in &live.nodes {
        if !node_kept(node) {
            changes.push(Change::RemoveNode { node: node.clone(), container: container.clone() });
        }
    }
    let wanted_networks: BTreeSet<&str> = lab.networks.iter().map(|n| n.name.as_str()).collect();
    for (name, network) in &live.networks {
        if !wanted_networks.contains(name.as_str()) {
            changes.push(Change::RemoveNetwork { name: name.clone(), network: network.clone() });
        }
    }
    for net in &lab.networks {
        if !live.networks.contains_key(&net.name) {
            changes.push(Change::AddNetwork { name: net.name.clone() });
        }
    }
    for key in wanted_links.keys() {
        if !link_kept(key) {
            changes.push(Change::AddLink { key: key.clone() });
        }
    }
    for node in &lab.nodes {
        if !node_kept(&node.name) {
            changes.push(Change::AddNode { node: node.name.clone() });
        }
    }
    // Ends of links on nodes that stay: connected unless they are already.
    for (key, link) in &wanted_links {
        let attached = if link_kept(key) {
            live.links.get(key).map(|(_, _, a)| a.clone()).unwrap_or_default()
        } else {
            BTreeSet::new()
        };
        for end in &link.ends {
            if node_kept(&end.node) && !attached.contains(&end.node) {
                changes.push(Change::ConnectEnd { key: key.clone(), node: end.node.clone() });
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "\
name: t
topology:
  defaults: {image: busybox}
  nodes:
    a: {}
    b: {}
    c: {}
  links:
    - endpoints: [a:eth1, b:eth1]
    - endpoints: [b:eth2, c:eth1]
";

    fn live_of(lab: &Lab) -> Live {
        let mut live = Live::default();
        for n in &lab.nodes {
            live.nodes.insert(n.name.clone(), (n.container.clone(), lab.node_fingerprint(n)));
        }
        for l in &lab.links {
            let ends = l.ends.iter().map(|e| e.node.clone()).collect();
            live.links.insert(l.key(), (l.network.clone(), lab.link_fingerprint(l), ends));
        }
        live
    }

    #[test]
    fn nothing_to_do_when_the_lab_runs_as_written() {
        let lab = Lab::parse("t.yml", LAB).unwrap();
        assert_eq!(plan(&lab, &live_of(&lab)), vec![]);
        assert_eq!(fingerprint("x"), fingerprint("x"));
        assert_ne!(fingerprint("x"), fingerprint("y"));
    }

    #[test]
    fn everything_is_added_to_an_empty_lab() {
        let lab = Lab::parse("t.yml", LAB).unwrap();
        let changes: Vec<String> = plan(&lab, &Live::default()).iter().map(|c| c.to_string()).collect();
        assert_eq!(changes, ["+ link a:eth1,b:eth1", "+ link b:eth2,c:eth1", "+ node a", "+ node b", "+ node c"]);
    }

    #[test]
    fn one_node_fewer_one_link_more_and_a_changed_link() {
        let before = Lab::parse("t.yml", LAB).unwrap();
        let live = live_of(&before);
        let after = LAB
            .replace("    c: {}\n", "")
            .replace("    - endpoints: [b:eth2, c:eth1]\n", "    - endpoints: [a:eth2, b:eth2]\n      mtu: 9000\n");
        let after = Lab::parse("t.yml", &after).unwrap();
        let changes: Vec<String> = plan(&after, &live).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            changes,
            [
                "- link b:eth2,c:eth1",
                "- node c (clab-t-c)",
                "+ link a:eth2,b:eth2",
                "+ end a of link a:eth2,b:eth2",
                "+ end b of link a:eth2,b:eth2"
            ]
        );
        let mtu = LAB.replace("[a:eth1, b:eth1]\n", "[a:eth1, b:eth1]\n      mtu: 1400\n");
        let changes: Vec<String> =
            plan(&Lab::parse("t.yml", &mtu).unwrap(), &live).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            changes,
            [
                "- link a:eth1,b:eth1",
                "+ link a:eth1,b:eth1",
                "+ end a of link a:eth1,b:eth1",
                "+ end b of link a:eth1,b:eth1"
            ]
        );
    }

    #[test]
    fn a_changed_node_is_made_again_and_a_missing_end_connected() {
        let lab = Lab::parse("t.yml", LAB).unwrap();
        let mut live = live_of(&lab);
        live.nodes.get_mut("c").unwrap().1 = "old".into();
        live.links.get_mut("a:eth1,b:eth1").unwrap().2.remove("a");
        let changes: Vec<String> = plan(&lab, &live).iter().map(|c| c.to_string()).collect();
        assert_eq!(changes, ["- node c (clab-t-c)", "+ node c", "+ end a of link a:eth1,b:eth1"]);
    }
}
