//! What `apply` changes: the difference between a lab file and the lab that runs, so that what
//! the file does not change is not touched (its containers keep running, its links keep their
//! interfaces and lose no packet).
//!
//! Every node's container and every link's network carries a fingerprint of its settings
//! ([`LABEL_HASH`]); a node or link whose fingerprint differs from the file's is made again, one
//! that is the same is left alone. A link whose network exists but misses an end (a new link to
//! a node that runs, or an apply cut short) gets that end connected, so a second apply converges.
//! A link's MTU and shaping are not in its fingerprint: they are compared with what its ends have
//! now and changed in place, so the link keeps its interfaces (and their ifindex) and its packets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use cnet_core::shaping::Shaping;

use crate::{Lab, Link, Node};

/// The MTU of a link on one host whose file gives none (the p2p driver's, the kernel's veth
/// default). A link across hosts whose file gives none has its driver's (the underlay's, less
/// the tunnel's headers), which the file cannot know: it is left as it is (an MTU of 0 here).
pub const DEFAULT_LINK_MTU: u32 = 1500;

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

    /// A link's fingerprint: what makes its network and interfaces (ends, names, addresses),
    /// not what can change in place (MTU, shaping). A link that comes to cross hosts, or stops
    /// to, is made again with the other driver.
    pub fn link_fingerprint(&self, link: &Link) -> String {
        match self.link_driver(link) {
            crate::LOCAL_LINK_DRIVER => fingerprint(&format!("{:?}|{}", link.ends, link.network)),
            driver => fingerprint(&format!("{:?}|{}|{driver}", link.ends, link.network)),
        }
    }
}

/// The lab as it runs, read from the labels of its containers and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    /// Node name -> its container's name and fingerprint.
    pub nodes: BTreeMap<String, (String, String)>,
    /// Link key -> its network and ends.
    pub links: BTreeMap<String, LiveLink>,
    /// The lab's own networks: name in the file -> network name.
    pub networks: BTreeMap<String, String>,
}

/// A link's network as it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveLink {
    pub network: String,
    pub hash: String,
    /// The nodes attached to it, with what their end has now.
    pub ends: BTreeMap<String, LiveEnd>,
}

/// One end of a running link: its MTU and the shaping of what it sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveEnd {
    pub mtu: u32,
    pub shaping: Shaping,
}

impl Lab {
    /// What each end of the link should have (an MTU of 0: whatever its driver gave it).
    pub fn wanted_end(&self, link: &Link) -> LiveEnd {
        let default = if self.crosses_hosts(link) { 0 } else { DEFAULT_LINK_MTU };
        LiveEnd { mtu: link.mtu.unwrap_or(default), shaping: link.shaping }
    }
}

impl LiveEnd {
    /// Whether a running end has what `wanted` says.
    fn has(&self, wanted: &LiveEnd) -> bool {
        (wanted.mtu == 0 || self.mtu == wanted.mtu) && self.shaping == wanted.shaping
    }
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
    /// Set both ends' MTU and shaping to the file's, in place.
    TuneLink {
        key: String,
        wanted: LiveEnd,
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
            Change::TuneLink { key, wanted } => {
                let shaping = if wanted.shaping.is_empty() { "none".to_string() } else { wanted.shaping.to_string() };
                write!(f, "~ link {key}: mtu {}, shaping {shaping}", wanted.mtu)
            }
        }
    }
}

/// The changes that make `live` what `lab` says, removals first.
pub fn plan(lab: &Lab, live: &Live) -> Vec<Change> {
    let wanted_links: BTreeMap<String, &Link> = lab.links.iter().map(|l| (l.key(), l)).collect();
    let wanted_nodes: BTreeMap<&str, &Node> = lab.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut changes = Vec::new();

    let link_kept = |key: &str| {
        let (Some(link), Some(running)) = (wanted_links.get(key), live.links.get(key)) else { return false };
        running.hash == lab.link_fingerprint(link)
    };
    let node_kept = |name: &str| {
        let (Some(node), Some((_, hash))) = (wanted_nodes.get(name), live.nodes.get(name)) else { return false };
        *hash == lab.node_fingerprint(node)
    };
    for (key, running) in &live.links {
        if !link_kept(key) {
            changes.push(Change::RemoveLink { key: key.clone(), network: running.network.clone() });
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
    let mut tunes = Vec::new();
    for (key, link) in &wanted_links {
        let kept = link_kept(key);
        let attached = match live.links.get(key) {
            Some(running) if kept => running.ends.clone(),
            _ => BTreeMap::new(),
        };
        for end in &link.ends {
            if node_kept(&end.node) && !attached.contains_key(&end.node) {
                changes.push(Change::ConnectEnd { key: key.clone(), node: end.node.clone() });
            }
        }
        let wanted = lab.wanted_end(link);
        // A kept link is tuned unless both ends have what the file says and stay (an end made
        // now, by a connect or with its node, has the MTU its network was made with and no
        // shaping); a new link gets its MTU when it is made, and its shaping only after. Only
        // the lab's own ends count: one host's part of a lab has one end of a link across hosts.
        let tune = if kept {
            link.ends
                .iter()
                .filter(|end| wanted_nodes.contains_key(end.node.as_str()))
                .any(|end| !node_kept(&end.node) || !attached.get(&end.node).is_some_and(|live| live.has(&wanted)))
        } else {
            !link.shaping.is_empty()
        };
        if tune {
            tunes.push(Change::TuneLink { key: key.clone(), wanted });
        }
    }
    changes.extend(tunes);
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
            let ends = l.ends.iter().map(|e| (e.node.clone(), lab.wanted_end(l))).collect();
            live.links.insert(l.key(), LiveLink { network: l.network.clone(), hash: lab.link_fingerprint(l), ends });
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
    }

    #[test]
    fn a_changed_mtu_or_rate_is_tuned_in_place() {
        let live = live_of(&Lab::parse("t.yml", LAB).unwrap());
        let tuned = LAB.replace("[a:eth1, b:eth1]\n", "[a:eth1, b:eth1]\n      mtu: 1400\n      rate: 10mbit\n");
        let tuned = Lab::parse("t.yml", &tuned).unwrap();
        let changes: Vec<String> = plan(&tuned, &live).iter().map(|c| c.to_string()).collect();
        assert_eq!(changes, ["~ link a:eth1,b:eth1: mtu 1400, shaping rate 10mbit"]);
        // Once both ends have it, nothing; one end put back by hand is tuned again.
        let mut live = live_of(&tuned);
        assert_eq!(plan(&tuned, &live), vec![]);
        live.links.get_mut("a:eth1,b:eth1").unwrap().ends.get_mut("b").unwrap().shaping = Shaping::default();
        assert_eq!(plan(&tuned, &live).len(), 1);
        // Back to the defaults: tuned to 1500 and no shaping.
        let changes: Vec<String> =
            plan(&Lab::parse("t.yml", LAB).unwrap(), &live).iter().map(|c| c.to_string()).collect();
        assert_eq!(changes, ["~ link a:eth1,b:eth1: mtu 1500, shaping none"]);
    }

    #[test]
    fn a_new_link_is_shaped_after_it_is_made_and_a_new_end_is_tuned() {
        let shaped = LAB.replace("[b:eth2, c:eth1]\n", "[b:eth2, c:eth1]\n      rate: 1mbit\n");
        let shaped = Lab::parse("t.yml", &shaped).unwrap();
        let changes: Vec<String> = plan(&shaped, &Live::default()).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            changes,
            [
                "+ link a:eth1,b:eth1",
                "+ link b:eth2,c:eth1",
                "+ node a",
                "+ node b",
                "+ node c",
                "~ link b:eth2,c:eth1: mtu 1500, shaping rate 1mbit"
            ]
        );
        // c made again: its end of the kept link comes with the node, and is tuned after.
        let mut live = live_of(&shaped);
        live.nodes.get_mut("c").unwrap().1 = "old".into();
        let changes: Vec<String> = plan(&shaped, &live).iter().map(|c| c.to_string()).collect();
        assert_eq!(changes, ["- node c (clab-t-c)", "+ node c", "~ link b:eth2,c:eth1: mtu 1500, shaping rate 1mbit"]);
    }

    #[test]
    fn a_changed_node_is_made_again_and_a_missing_end_connected() {
        let lab = Lab::parse("t.yml", LAB).unwrap();
        let mut live = live_of(&lab);
        live.nodes.get_mut("c").unwrap().1 = "old".into();
        live.links.get_mut("a:eth1,b:eth1").unwrap().ends.remove("a");
        let changes: Vec<String> = plan(&lab, &live).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            changes,
            [
                "- node c (clab-t-c)",
                "+ node c",
                "+ end a of link a:eth1,b:eth1",
                "~ link a:eth1,b:eth1: mtu 1500, shaping none",
                "~ link b:eth2,c:eth1: mtu 1500, shaping none"
            ]
        );
    }
}
