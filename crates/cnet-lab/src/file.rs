//! The file as written (containerlab's shape), and its check into a [`Lab`].

use std::collections::BTreeMap;

use cnet_core::shaping::{self, Shaping};
use ipnetwork::IpNetwork;
use serde::Deserialize;

use crate::{End, Error, Lab, Link, Mgmt, Node, Result, Seen, UserNetwork, line};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LabFile {
    pub name: String,
    /// containerlab's container name prefix: absent = `clab`, `__lab-name` = the lab's name,
    /// empty = none (the node's name alone).
    pub prefix: Option<String>,
    #[serde(default)]
    pub mgmt: MgmtDef,
    pub topology: TopologyDef,
    #[serde(default)]
    pub networks: BTreeMap<String, NetworkDef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MgmtDef {
    pub network: Option<String>,
    pub ipv4_subnet: Option<String>,
    pub ipv6_subnet: Option<String>,
    /// containerlab's other management settings (bridge, MTU, gateways…) are Docker's business
    /// there; cnet's management network is a bridge network with cnet's defaults.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TopologyDef {
    #[serde(default)]
    pub defaults: NodeDef,
    #[serde(default)]
    pub kinds: BTreeMap<String, NodeDef>,
    #[serde(default)]
    pub nodes: BTreeMap<String, Option<NodeDef>>,
    #[serde(default)]
    pub links: Vec<LinkDef>,
}

/// A node, a kind or the defaults: every field optional, a node's own over its kind's over the
/// defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NodeDef {
    pub kind: Option<String>,
    pub image: Option<String>,
    pub cmd: Option<String>,
    pub entrypoint: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    pub binds: Vec<String>,
    #[serde(default)]
    pub ports: Vec<String>,
    #[serde(default)]
    pub sysctls: BTreeMap<String, serde_yaml_ng::Value>,
    #[serde(default)]
    pub exec: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, serde_yaml_ng::Value>,
    pub mgmt_ipv4: Option<String>,
    /// cnet: the host the node runs on (a cluster node's name, as `cnet node ls` shows it).
    pub host: Option<String>,
    pub network_mode: Option<String>,
    #[serde(default)]
    pub networks: Vec<String>,
    /// containerlab fields cnet has no use for with kind linux (`group`, `startup-delay`…).
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml_ng::Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LinkDef {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub endpoints: Vec<EndpointDef>,
    pub mtu: Option<u32>,
    /// cnet: the shaping of what each end sends, in `cnet link set`'s units.
    pub rate: Option<String>,
    pub delay: Option<String>,
    pub jitter: Option<String>,
    pub loss: Option<String>,
    pub corrupt: Option<String>,
    /// cnet: one address per end, in the order of `endpoints`.
    #[serde(default)]
    pub ipv4: Vec<String>,
    #[serde(default)]
    pub ipv6: Vec<String>,
}

/// `"r1:eth1"`, or `{node: r1, interface: eth1, mac: …, ipv4: …}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EndpointDef {
    Brief(String),
    Extended { node: String, interface: String, mac: Option<String>, ipv4: Option<String>, ipv6: Option<String> },
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetworkDef {
    pub driver: Option<String>,
    pub subnet: Option<String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub internal: bool,
}

/// Fields of a containerlab node that change what runs and that cnet does not do yet: refused by
/// name rather than ignored.
const UNSUPPORTED: &[&str] = &["startup-config", "license", "user", "cpu", "memory", "devices", "certificate"];

/// A Linux interface name, as the kernel takes it.
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

/// Docker's container and network names.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A YAML scalar as the string it means (`1` and `true` are what was written).
fn scalar(value: &serde_yaml_ng::Value) -> Option<String> {
    match value {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        serde_yaml_ng::Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Splits a command line into words as a shell would (single and double quotes, backslashes),
/// without expanding anything.
pub fn shell_words(line: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("unterminated ' in {line:?}")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => w.push(c),
                            None => return Err(format!("unterminated \" in {line:?}")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(format!("unterminated \" in {line:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(format!("trailing backslash in {line:?}")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(w) = word {
        words.push(w);
    }
    Ok(words)
}

pub fn check(file: &str, text: &str, lab: LabFile) -> Result<Lab> {
    let invalid =
        |line: usize, what: String, message: String| Error::Invalid { file: file.to_string(), line, what, message };
    if !valid_name(&lab.name) {
        return Err(invalid(
            1,
            format!("lab name {:?}", lab.name),
            "must be letters, digits, '_', '.' or '-', starting with a letter or digit".into(),
        ));
    }
    let mgmt = Mgmt {
        network: lab.mgmt.network.clone().unwrap_or_else(|| crate::DEFAULT_MGMT_NETWORK.into()),
        ipv4_subnet: parse_net(lab.mgmt.ipv4_subnet.as_deref().unwrap_or(crate::DEFAULT_MGMT_SUBNET))
            .map_err(|m| invalid(0, "mgmt.ipv4-subnet".into(), m))?,
        ipv6_subnet: lab
            .mgmt
            .ipv6_subnet
            .as_deref()
            .map(parse_net)
            .transpose()
            .map_err(|m| invalid(0, "mgmt.ipv6-subnet".into(), m))?,
    };
    // containerlab's names: `clab-LAB-NODE`, `PREFIX-LAB-NODE`, `LAB-NODE` for `__lab-name`, and
    // the node's name alone for an empty prefix.
    let container_name = |node: &str| match lab.prefix.as_deref() {
        None => format!("clab-{}-{node}", lab.name),
        Some("__lab-name") => format!("{}-{node}", lab.name),
        Some("") => node.to_string(),
        Some(p) => format!("{p}-{}-{node}", lab.name),
    };

    let mut networks = Vec::new();
    for (name, def) in &lab.networks {
        let line = line::of_network(text, name);
        let what = format!("network {name}");
        if !valid_name(name) {
            return Err(invalid(line, what, "the name must be letters, digits, '_', '.' or '-'".into()));
        }
        let driver = def.driver.clone().unwrap_or_else(|| "bridge".into());
        if !matches!(driver.as_str(), "bridge" | "macvlan" | "overlay") {
            return Err(invalid(line, what, format!("driver {driver:?}: expected bridge, macvlan or overlay")));
        }
        networks.push(UserNetwork {
            name: name.clone(),
            network: format!("{}-{name}", lab.name),
            driver,
            subnet: def.subnet.as_deref().map(parse_net).transpose().map_err(|m| invalid(line, what.clone(), m))?,
            options: def.options.clone(),
            internal: def.internal,
        });
    }

    let mut nodes = Vec::new();
    for (name, def) in &lab.topology.nodes {
        let line = line::of_node(text, name);
        let what = format!("node {name}");
        if !valid_name(name) {
            return Err(invalid(line, what, "the name must be letters, digits, '_', '.' or '-'".into()));
        }
        let own = def.clone().unwrap_or_default();
        let kind = own.kind.clone().or(lab.topology.defaults.kind.clone()).unwrap_or_else(|| "linux".into());
        if kind != "linux" {
            return Err(invalid(line, what, format!("kind {kind:?} is not supported: cnet runs nodes of kind linux")));
        }
        let of_kind = lab.topology.kinds.get(&kind).cloned().unwrap_or_default();
        let layers = [&own, &of_kind, &lab.topology.defaults];
        let pick = |f: fn(&NodeDef) -> Option<String>| layers.iter().find_map(|d| f(d));
        for d in layers {
            if let Some(key) = d.other.keys().find(|k| UNSUPPORTED.contains(&k.as_str())) {
                return Err(invalid(line, what, format!("{key} is not supported by cnet yet")));
            }
            if let Some(mode) = &d.network_mode {
                return Err(invalid(
                    line,
                    what,
                    format!("network-mode {mode:?} is not supported: nodes are on the lab's networks"),
                ));
            }
        }
        let image = pick(|d| d.image.clone()).ok_or_else(|| {
            invalid(line, what.clone(), "no image (give image: on the node, its kind or topology.defaults)".into())
        })?;
        let words = |field: &str, value: Option<String>| {
            value.map(|v| shell_words(&v).map_err(|m| invalid(line, what.clone(), format!("{field}: {m}")))).transpose()
        };
        let cmd = words("cmd", pick(|d| d.cmd.clone()))?.unwrap_or_default();
        let entrypoint = words("entrypoint", pick(|d| d.entrypoint.clone()))?;
        let mut env = BTreeMap::new();
        let mut sysctls = BTreeMap::new();
        let mut labels = BTreeMap::new();
        for d in layers.iter().rev() {
            for (target, source, field) in
                [(&mut env, &d.env, "env"), (&mut sysctls, &d.sysctls, "sysctls"), (&mut labels, &d.labels, "labels")]
            {
                for (k, v) in source {
                    let v = scalar(v)
                        .ok_or_else(|| invalid(line, what.clone(), format!("{field}.{k} must be a plain value")))?;
                    target.insert(k.clone(), v);
                }
            }
        }
        let list = |f: fn(&NodeDef) -> &Vec<String>| {
            layers.iter().map(|d| f(d)).find(|v| !v.is_empty()).cloned().unwrap_or_default()
        };
        let node_networks = list(|d| &d.networks);
        if let Some(unknown) = node_networks.iter().find(|n| !lab.networks.contains_key(*n)) {
            return Err(invalid(line, what, format!("network {unknown:?} is not in the lab's networks")));
        }
        let host = pick(|d| d.host.clone());
        if let Some(host) = host.as_deref().filter(|h| !valid_name(h)) {
            return Err(invalid(
                line,
                what,
                format!("host {host:?}: expected a cluster node's name (letters, digits, '_', '.' or '-')"),
            ));
        }
        let container = container_name(name);
        nodes.push(Node {
            name: name.clone(),
            container,
            kind,
            image,
            cmd,
            entrypoint,
            env,
            ports: list(|d| &d.ports),
            sysctls,
            exec: list(|d| &d.exec),
            binds: list(|d| &d.binds),
            labels,
            mgmt_ipv4: pick(|d| d.mgmt_ipv4.clone()),
            host,
            networks: node_networks,
        });
    }

    let mut links = Vec::new();
    let mut interfaces = Seen::default();
    for (index, def) in lab.topology.links.iter().enumerate() {
        let line = line::of_link(text, index);
        let what = format!("link {}", index + 1);
        if let Some(kind) = def.kind.as_deref().filter(|k| *k != "veth") {
            return Err(invalid(line, what, format!("type {kind:?} is not supported: cnet links are veth pairs")));
        }
        if def.endpoints.len() != 2 {
            return Err(invalid(
                line,
                what,
                format!("a link has exactly two endpoints, this one has {}", def.endpoints.len()),
            ));
        }
        let mut ends = Vec::new();
        for (i, e) in def.endpoints.iter().enumerate() {
            let (node, interface, mac, ipv4, ipv6) = match e {
                EndpointDef::Brief(s) => {
                    let (node, interface) = s.split_once(':').ok_or_else(|| {
                        invalid(line, what.clone(), format!("endpoint {s:?}: expected NODE:INTERFACE"))
                    })?;
                    (node.to_string(), interface.to_string(), None, def.ipv4.get(i).cloned(), def.ipv6.get(i).cloned())
                }
                EndpointDef::Extended { node, interface, mac, ipv4, ipv6 } => (
                    node.clone(),
                    interface.clone(),
                    mac.clone(),
                    ipv4.clone().or(def.ipv4.get(i).cloned()),
                    ipv6.clone().or(def.ipv6.get(i).cloned()),
                ),
            };
            let end_what = format!("{what}, endpoint {node}:{interface}");
            if !lab.topology.nodes.contains_key(&node) {
                return Err(invalid(line, end_what, format!("node {node:?} is not in topology.nodes")));
            }
            if !valid_ifname(&interface) {
                return Err(invalid(line, end_what, format!("{interface:?} is not a valid interface name")));
            }
            if interface == "eth0" {
                return Err(invalid(line, end_what, "eth0 is the management interface".into()));
            }
            if let Some(first) = interfaces.first(format!("{node}:{interface}"), line) {
                return Err(invalid(
                    line,
                    end_what,
                    format!("interface {interface} of node {node} is already used by the link on line {first}"),
                ));
            }
            let addr = |a: Option<String>, v4: bool| -> Result<Option<IpNetwork>> {
                let Some(a) = a else { return Ok(None) };
                let net: IpNetwork = a.parse().map_err(|_| {
                    invalid(line, end_what.clone(), format!("address {a:?}: expected an address with its prefix"))
                })?;
                if net.is_ipv4() != v4 {
                    return Err(invalid(line, end_what.clone(), format!("address {a:?} is of the wrong family")));
                }
                Ok(Some(net))
            };
            ends.push(End { node, interface, mac, ipv4: addr(ipv4, true)?, ipv6: addr(ipv6, false)? });
        }
        ends.sort();
        let [a, b]: [End; 2] = ends.try_into().expect("two ends");
        if a.node == b.node && a.interface == b.interface {
            return Err(invalid(line, what, "both ends are the same interface".into()));
        }
        for (x, y) in [(a.ipv4, b.ipv4), (a.ipv6, b.ipv6)] {
            match (x, y) {
                (None, None) => {}
                (Some(x), Some(y)) if x.prefix() == y.prefix() && x.contains(y.ip()) && x.ip() != y.ip() => {}
                _ => {
                    return Err(invalid(
                        line,
                        what,
                        "the two ends' addresses must both be given, differ, and be in one subnet".into(),
                    ));
                }
            }
        }
        let network = crate::link_network_name(&lab.name, &a, &b, false);
        if def.mtu == Some(0) {
            return Err(invalid(line, what, "mtu 0: expected a number of bytes".into()));
        }
        let shaping = link_shaping(def).map_err(|message| invalid(line, what, message))?;
        links.push(Link { ends: [a, b], mtu: def.mtu, shaping, network });
    }

    Ok(Lab { name: lab.name, mgmt, nodes, links, networks, base_dir: std::path::PathBuf::new() })
}

/// A link's `rate`, `delay`, `jitter`, `loss` and `corrupt`, parsed and checked as `cnet link set`
/// does; the error names the field and its value.
fn link_shaping(def: &LinkDef) -> std::result::Result<Shaping, String> {
    let text = shaping::ShapingText {
        rate: def.rate.as_deref(),
        delay: def.delay.as_deref(),
        jitter: def.jitter.as_deref(),
        loss: def.loss.as_deref(),
        corrupt: def.corrupt.as_deref(),
    };
    text.parse(str::to_string).map_err(|e| e.to_string())
}

fn parse_net(s: &str) -> std::result::Result<IpNetwork, String> {
    s.parse::<IpNetwork>().map_err(|_| format!("{s:?} is not a subnet (expected CIDR, e.g. 10.0.0.0/24)"))
}
