//! The key schema in etcd. Everything cnet keeps there lives under [`ROOT`]:
//!
//! | key | value | lifetime |
//! |---|---|---|
//! | `nodes/<name>` | [`NodeRecord`](crate::NodeRecord) | persistent: a node that is down is still listed |
//! | `alive/<name>` | start time | the node's lease: gone when the node is |
//! | `networks/<id>` | the global [`Network`](cnet_core::Network) | persistent |
//! | `names/<name>` | network id | persistent: makes names unique cluster-wide |
//! | `vnis/<vni>` | network id | persistent: makes VNIs unique cluster-wide |
//! | `alloc` | counter | bumped by every network create/remove, so subnet choices are serialised |
//! | `netgen/<id>` | counter | bumped by every lease on the network, so removal cannot race an attach |
//! | `ips/<id>/<ip>` | endpoint id | the owning node's lease |
//! | `endpoints/<id>/<endpoint id>` | [`EndpointRecord`](crate::EndpointRecord) | the owning node's lease |
//! | `secrets/<id>` | [`SecretRecord`](crate::secrets::SecretRecord) (encrypted networks) | persistent, removed with the network |
//! | `labs/<name>` | [`LabRecord`](crate::labs::LabRecord) (labs over several hosts) | persistent, until the lab is destroyed |
//! | `labreports/<name>/<host>` | [`LabReport`](crate::labs::LabReport) | persistent, removed with the lab's record |
//!
//! Leases and endpoints are tied to the owner's etcd lease, so a host that is gone longer than the
//! TTL loses them without anybody having to clean up after it.

use std::net::IpAddr;

pub const ROOT: &str = "/cnet/v1/";

pub fn node(name: &str) -> String {
    format!("{ROOT}nodes/{name}")
}
pub const NODES: &str = "/cnet/v1/nodes/";

pub fn alive(name: &str) -> String {
    format!("{ROOT}alive/{name}")
}
pub const ALIVE: &str = "/cnet/v1/alive/";

pub fn network(id: &str) -> String {
    format!("{ROOT}networks/{id}")
}
pub const NETWORKS: &str = "/cnet/v1/networks/";

pub fn name(name: &str) -> String {
    format!("{ROOT}names/{name}")
}

pub fn vni(vni: u32) -> String {
    format!("{ROOT}vnis/{vni}")
}

pub const ALLOC: &str = "/cnet/v1/alloc";

pub fn netgen(network_id: &str) -> String {
    format!("{ROOT}netgen/{network_id}")
}

pub fn ip(network_id: &str, ip: IpAddr) -> String {
    format!("{ROOT}ips/{network_id}/{ip}")
}
pub fn ips(network_id: &str) -> String {
    format!("{IPS}{network_id}/")
}
pub const IPS: &str = "/cnet/v1/ips/";

pub fn endpoint(network_id: &str, endpoint_id: &str) -> String {
    format!("{ROOT}endpoints/{network_id}/{endpoint_id}")
}
pub fn endpoints(network_id: &str) -> String {
    format!("{ROOT}endpoints/{network_id}/")
}
pub const ENDPOINTS: &str = "/cnet/v1/endpoints/";

pub fn secret(network_id: &str) -> String {
    format!("{ROOT}secrets/{network_id}")
}

pub const LABS: &str = "/cnet/v1/labs/";
pub fn lab(name: &str) -> String {
    format!("{LABS}{name}")
}
pub fn lab_reports(name: &str) -> String {
    format!("{ROOT}labreports/{name}/")
}
pub fn lab_report(name: &str, host: &str) -> String {
    format!("{}{host}", lab_reports(name))
}

/// A key of the schema, parsed back (for watch events).
#[derive(Debug, PartialEq, Eq)]
pub enum Key<'a> {
    Node(&'a str),
    Alive(&'a str),
    Network(&'a str),
    /// The secret of an encrypted network.
    Secret(&'a str),
    Endpoint {
        network_id: &'a str,
        endpoint_id: &'a str,
    },
    /// Bookkeeping keys nobody watches for (names, vnis, ips, counters) and foreign keys.
    Other,
}

pub fn parse(key: &str) -> Key<'_> {
    let Some(rest) = key.strip_prefix(ROOT) else { return Key::Other };
    let (kind, rest) = rest.split_once('/').unwrap_or((rest, ""));
    match kind {
        "nodes" if !rest.is_empty() => Key::Node(rest),
        "alive" if !rest.is_empty() => Key::Alive(rest),
        "networks" if !rest.is_empty() => Key::Network(rest),
        "secrets" if !rest.is_empty() && !rest.contains('/') => Key::Secret(rest),
        "endpoints" => match rest.split_once('/') {
            Some((network_id, endpoint_id)) if !network_id.is_empty() && !endpoint_id.is_empty() => {
                Key::Endpoint { network_id, endpoint_id }
            }
            _ => Key::Other,
        },
        _ => Key::Other,
    }
}

/// The end of the range that holds every key starting with `prefix` (etcd's prefix convention).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back() {
        assert_eq!(parse(&node("host1")), Key::Node("host1"));
        assert_eq!(parse(&alive("host1")), Key::Alive("host1"));
        assert_eq!(parse(&network("abc")), Key::Network("abc"));
        assert_eq!(parse(&secret("abc")), Key::Secret("abc"));
        assert_eq!(parse(&endpoint("n1", "e1")), Key::Endpoint { network_id: "n1", endpoint_id: "e1" });
        assert_eq!(parse(&ip("n1", "10.0.0.2".parse().unwrap())), Key::Other);
        assert_eq!(parse(&vni(4096)), Key::Other);
        assert_eq!(parse(ALLOC), Key::Other);
        assert_eq!(parse("/other/v1/nodes/x"), Key::Other);
        assert_eq!(parse(&endpoints("n1")), Key::Other);
    }

    #[test]
    fn prefixes_are_prefixes_of_keys() {
        assert!(node("a").starts_with(NODES));
        assert!(alive("a").starts_with(ALIVE));
        assert!(network("a").starts_with(NETWORKS));
        assert!(endpoint("n", "e").starts_with(&endpoints("n")));
        assert!(endpoint("n", "e").starts_with(ENDPOINTS));
        assert!(ip("n", "10.0.0.1".parse().unwrap()).starts_with(&ips("n")));
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
    }
}
