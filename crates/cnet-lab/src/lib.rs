//! cnet-lab: a topology lab file, parsed and checked into a [`Lab`] that says what to make, with
//! every object's name and labels; no I/O (the CLI deploys it through the runtime and cnetd).
//!
//! The file is containerlab's topology format, so a containerlab file whose nodes are
//! `kind: linux` deploys unchanged: `name`, `prefix`, `mgmt` (`network`, `ipv4-subnet`,
//! `ipv6-subnet`), `topology.defaults`, `topology.kinds`, `topology.nodes` (`kind`, `image`,
//! `cmd`, `entrypoint`, `env`, `ports`, `sysctls`, `exec`, `labels`, `mgmt-ipv4`), and
//! `topology.links` in the brief form (`endpoints: ["r1:eth1", "r2:eth1"]`, `mtu`) or the
//! extended one (`type: veth`, `endpoints: [{node, interface, mac}]`). cnet adds, per link, an
//! address per end (`ipv4: [10.0.0.0/31, 10.0.0.1/31]`, or on an extended endpoint), the shaping
//! of what both ends send (`rate: 10mbit`, and where the kernel has netem `delay`, `jitter`,
//! `loss`, `corrupt`, as `cnet link set` takes them), and user
//! networks (top-level `networks:`, a driver, subnet and options each) that nodes join with
//! `networks: [name]`.
//!
//! Every error names the node or link and the line it comes from; nothing is deployed from a
//! file that has one.

mod file;
pub mod graph;
mod line;
pub mod plan;

use std::collections::{BTreeMap, HashMap};

use cnet_core::shaping::Shaping;
use ipnetwork::IpNetwork;

pub use file::{LabFile, shell_words};

/// Label on every object of a lab (containers, link and user networks): the lab's name.
pub const LABEL_LAB: &str = "cnet.lab";
/// containerlab's label on a lab's containers: the lab's name.
pub const LABEL_CLAB: &str = "containerlab";
/// containerlab's label on a node's container: the node's name.
pub const LABEL_NODE: &str = "clab-node-name";
/// containerlab's label on a node's container: its kind.
pub const LABEL_KIND: &str = "clab-node-kind";
/// Label on a link's network: its two ends, `node:iface,node:iface` in sorted order.
pub const LABEL_LINK: &str = "cnet.lab.link";
/// Label on the management network when a lab made it.
pub const LABEL_MGMT: &str = "cnet.lab.mgmt";

/// containerlab's defaults for the management network.
pub const DEFAULT_MGMT_NETWORK: &str = "clab";
pub const DEFAULT_MGMT_SUBNET: &str = "172.20.20.0/24";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The file is not YAML, or not of the lab file's shape.
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    /// A node, link or network is wrong; `line` is where it is in the file (0 if unknown).
    #[error("{file}{}: {what}: {message}", if *.line > 0 { format!(" line {line}") } else { String::new() })]
    Invalid { file: String, line: usize, what: String, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// A checked lab: what to make, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    pub name: String,
    pub mgmt: Mgmt,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    pub networks: Vec<UserNetwork>,
    /// The directory relative `binds` are taken from (the lab file's; set by whoever read the file).
    pub base_dir: std::path::PathBuf,
}

/// The management network every node's eth0 is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mgmt {
    pub network: String,
    pub ipv4_subnet: IpNetwork,
    pub ipv6_subnet: Option<IpNetwork>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's name in the file.
    pub name: String,
    /// The container's name (`clab-LAB-NODE` by default, as containerlab names them).
    pub container: String,
    pub kind: String,
    pub image: String,
    /// The command (containerlab's `cmd` is one string, split as a shell would split words).
    pub cmd: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub ports: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    /// Commands run in the node once every node is up and linked.
    pub exec: Vec<String>,
    /// `HOST:CONTAINER[:ro]`, HOST relative to the lab file's directory.
    pub binds: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub mgmt_ipv4: Option<String>,
    /// The host the node runs on (a cluster node's name): `None` until [`Lab::place`], where a
    /// node the file gives no host runs on the host that deploys the lab.
    pub host: Option<String>,
    /// User networks the node joins, after its links.
    pub networks: Vec<String>,
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct End {
    pub node: String,
    pub interface: String,
    pub mac: Option<String>,
    /// The end's address with the link's prefix (`10.0.0.0/31`).
    pub ipv4: Option<IpNetwork>,
    pub ipv6: Option<IpNetwork>,
}

impl End {
    pub fn key(&self) -> String {
        format!("{}:{}", self.node, self.interface)
    }
}

/// A point-to-point link: a `p2p` network with the two ends connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The ends, sorted by `node:interface`, so a link's identity does not depend on the order
    /// the file gives them in.
    pub ends: [End; 2],
    pub mtu: Option<u32>,
    /// What each end sends is shaped so (`rate`, and netem's `delay`, `jitter`, `loss`,
    /// `corrupt`): both directions alike.
    pub shaping: Shaping,
    /// The p2p network's name.
    pub network: String,
}

impl Link {
    /// `node:iface,node:iface`, sorted: the link's identity (also its network's label).
    pub fn key(&self) -> String {
        format!("{},{}", self.ends[0].key(), self.ends[1].key())
    }

    /// The subnets of the link's network, from the ends' addresses.
    pub fn subnets(&self) -> Vec<IpNetwork> {
        let mut out = Vec::new();
        for addr in [self.ends[0].ipv4, self.ends[0].ipv6].into_iter().flatten() {
            if let Ok(net) = IpNetwork::new(addr.network(), addr.prefix()) {
                out.push(net);
            }
        }
        out
    }
}

/// A network of the lab's own (`networks:`), made with the lab and removed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNetwork {
    /// The name in the file; the network's name is `LAB-NAME`.
    pub name: String,
    pub network: String,
    pub driver: String,
    pub subnet: Option<IpNetwork>,
    pub options: BTreeMap<String, String>,
    pub internal: bool,
}

impl Lab {
    /// Parses and checks a lab file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Lab> {
        let parsed: LabFile = serde_yaml_ng::from_str(text).map_err(|e| Error::Syntax {
            file: file.to_string(),
            message: match e.location() {
                Some(at) => format!("line {} column {}: {e}", at.line(), at.column()),
                None => e.to_string(),
            },
        })?;
        file::check(file, text, parsed)
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The labels every object of this lab carries.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(LABEL_LAB.to_string(), self.name.clone())])
    }

    /// The labels of a node's container: the lab's, containerlab's, and the node's own.
    pub fn node_labels(&self, node: &Node) -> BTreeMap<String, String> {
        let mut labels = node.labels.clone();
        labels.extend(self.labels());
        labels.insert(LABEL_CLAB.into(), self.name.clone());
        labels.insert(LABEL_NODE.into(), node.name.clone());
        labels.insert(LABEL_KIND.into(), node.kind.clone());
        labels
    }

    /// The labels of a link's network.
    pub fn link_labels(&self, link: &Link) -> BTreeMap<String, String> {
        let mut labels = self.labels();
        labels.insert(LABEL_LINK.into(), link.key());
        labels
    }

    /// The links of each node, in the order its interfaces are connected.
    pub fn links_of(&self, node: &str) -> Vec<(&Link, &End)> {
        let mut out: Vec<(&Link, &End)> =
            self.links.iter().filter_map(|l| l.ends.iter().find(|e| e.node == node).map(|e| (l, e))).collect();
        out.sort_by_key(|(_, end)| natural(&end.interface));
        out
    }
}

/// The name of a link's network: `LAB-A.IFACE-B.IFACE`, and `-vx` after it across hosts (so a
/// link that comes to cross hosts, or stops to, never needs the name its other network still
/// holds).
fn link_network_name(lab: &str, a: &End, b: &End, cross_host: bool) -> String {
    let name = format!("{lab}-{}.{}-{}.{}", a.node, a.interface, b.node, b.interface);
    if cross_host { format!("{name}-vx") } else { name }
}

/// The driver of a link whose ends run on one host: a veth pair.
pub const LOCAL_LINK_DRIVER: &str = "p2p";
/// The driver of a link whose ends run on two hosts: a VXLAN tunnel between them, its VNI
/// allocated in the cluster store.
pub const CROSS_HOST_LINK_DRIVER: &str = "vxlan";

/// Labs over several hosts: which node runs where, and what each host makes of the lab.
impl Lab {
    /// Whether any node names a host: such a lab is deployed on every host it names, through the
    /// cluster store, and needs cnetd to run with the cluster flags.
    pub fn spans_hosts(&self) -> bool {
        self.nodes.iter().any(|n| n.host.is_some())
    }

    /// Node name -> the host it runs on, `local` for nodes that name none.
    pub fn placement(&self, local: &str) -> BTreeMap<String, String> {
        self.nodes.iter().map(|n| (n.name.clone(), n.host.clone().unwrap_or_else(|| local.to_string()))).collect()
    }

    /// Puts every node on its host of `placement` (nodes it does not name keep theirs), and names
    /// the links' networks accordingly.
    pub fn place(&mut self, placement: &BTreeMap<String, String>) {
        for node in &mut self.nodes {
            if let Some(host) = placement.get(&node.name) {
                node.host = Some(host.clone());
            }
        }
        for i in 0..self.links.len() {
            let cross_host = self.crosses_hosts(&self.links[i]);
            let [a, b] = &self.links[i].ends;
            self.links[i].network = link_network_name(&self.name, a, b, cross_host);
        }
    }

    /// The hosts the lab's nodes run on, sorted.
    pub fn hosts(&self) -> Vec<String> {
        let hosts: std::collections::BTreeSet<String> = self.nodes.iter().filter_map(|n| n.host.clone()).collect();
        hosts.into_iter().collect()
    }

    fn host_of(&self, node: &str) -> Option<&str> {
        self.node(node).and_then(|n| n.host.as_deref())
    }

    /// Whether the link's two ends run on different hosts.
    pub fn crosses_hosts(&self, link: &Link) -> bool {
        self.host_of(&link.ends[0].node) != self.host_of(&link.ends[1].node)
    }

    /// The driver of the link's network: [`CROSS_HOST_LINK_DRIVER`] across hosts, else
    /// [`LOCAL_LINK_DRIVER`].
    pub fn link_driver(&self, link: &Link) -> &'static str {
        if self.crosses_hosts(link) { CROSS_HOST_LINK_DRIVER } else { LOCAL_LINK_DRIVER }
    }

    /// What `host` makes of a placed lab: its own nodes, and the links with an end on one of them
    /// (a link across hosts appears in the parts of both its hosts, each connecting its own end).
    pub fn part(&self, host: &str) -> Lab {
        let on_host = |node: &str| self.host_of(node) == Some(host);
        Lab {
            nodes: self.nodes.iter().filter(|n| on_host(&n.name)).cloned().collect(),
            links: self.links.iter().filter(|l| l.ends.iter().any(|e| on_host(&e.node))).cloned().collect(),
            ..self.clone()
        }
    }
}

/// `eth10` after `eth9`: the name's text, then its trailing number.
fn natural(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (text, number) = name.split_at(name.len() - digits);
    (text.to_string(), number.parse().unwrap_or(0))
}

/// Names that must be unique per lab, with the line each was first seen on.
#[derive(Default)]
struct Seen(HashMap<String, usize>);

impl Seen {
    fn first(&mut self, key: String, line: usize) -> Option<usize> {
        match self.0.get(&key) {
            Some(first) => Some(*first),
            None => {
                self.0.insert(key, line);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
