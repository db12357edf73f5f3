//! The record table: for every network, the names of its containers (name, hostname, aliases, each
//! also as `name.network`) and the reverse names of their addresses; for every sandbox, the networks
//! it may see (its own networks, in the order it joined them).
//!
//! Changes are incremental (an endpoint adds or removes only its own names), so their cost does not
//! grow with the number of containers; a lookup is a few hash probes under a read lock.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::wire;

/// What the resolver knows of one endpoint (a container on a network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    pub endpoint_id: String,
    pub sandbox_id: String,
    pub network_id: String,
    pub network_name: String,
    /// The names the container answers to on this network: container name, hostname, aliases.
    /// Each is also registered as `name.<network name>`. Case and duplicates do not matter.
    pub names: Vec<String>,
    /// The name reverse lookups of its addresses return (Docker's `name.network`).
    pub ptr_name: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

#[derive(Default)]
pub struct Table {
    networks: HashMap<Box<str>, Net>,
    /// sandbox id -> the networks it sees, in the order it joined them.
    scopes: HashMap<Box<str>, Vec<Box<str>>>,
}

#[derive(Default)]
struct Net {
    names: HashMap<Box<[u8]>, Entry>,
    /// address -> (endpoint id, PTR target as a wire-format name)
    ptrs: HashMap<IpAddr, (Box<str>, Box<[u8]>)>,
    endpoints: HashMap<Box<str>, EpRec>,
}

struct EpRec {
    sandbox: Box<str>,
    keys: Vec<Box<[u8]>>,
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
}

/// The addresses of one name on one network. Several containers sharing an alias each add theirs;
/// answers start at a rotating offset (round robin).
#[derive(Default)]
pub struct Entry {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
    next: AtomicUsize,
}

impl Entry {
    /// The addresses in this answer's order, v4 and v6 each rotated by one more than last time.
    pub fn rotated(&self) -> (impl Iterator<Item = Ipv4Addr> + '_, impl Iterator<Item = Ipv6Addr> + '_) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (rotate(&self.v4, n), rotate(&self.v6, n))
    }
}

fn rotate<T: Copy>(items: &[T], n: usize) -> impl Iterator<Item = T> + '_ {
    let start = if items.is_empty() { 0 } else { n % items.len() };
    items[start..].iter().chain(&items[..start]).copied()
}

/// A local hit.
pub enum Found<'a> {
    /// The name exists; answer with its addresses of the asked type (maybe none: NOERROR, empty).
    Name(&'a Entry),
    /// A reverse name of a container address: its PTR target (wire format).
    Ptr(&'a [u8]),
    /// A reverse name of a container address asked for another type: NOERROR, empty.
    Empty,
}

fn key(name: &str) -> Option<Box<[u8]>> {
    let name = name.trim_end_matches('.');
    (!name.is_empty() && name.len() <= 253).then(|| name.to_ascii_lowercase().into_bytes().into_boxed_slice())
}

impl Table {
    /// Adds (or replaces) an endpoint's records and puts its network in its sandbox's scope.
    pub fn add(&mut self, rec: &EndpointRecord) {
        self.remove(&rec.network_id, &rec.endpoint_id);
        let net_name = rec.network_name.to_ascii_lowercase();
        let mut keys: Vec<Box<[u8]>> = Vec::with_capacity(rec.names.len() * 2);
        for name in &rec.names {
            let short = key(name);
            let long = key(&format!("{}.{net_name}", name.trim_end_matches('.')));
            for k in [short, long].into_iter().flatten() {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        let net = self.networks.entry(rec.network_id.as_str().into()).or_default();
        for k in &keys {
            let entry = net.names.entry(k.clone()).or_default();
            entry.v4.extend(rec.ipv4);
            entry.v6.extend(rec.ipv6);
        }
        if let Some(target) = wire::to_wire_name(&rec.ptr_name.to_ascii_lowercase()) {
            for addr in [rec.ipv4.map(IpAddr::V4), rec.ipv6.map(IpAddr::V6)].into_iter().flatten() {
                net.ptrs.insert(addr, (rec.endpoint_id.as_str().into(), target.clone()));
            }
        }
        net.endpoints.insert(
            rec.endpoint_id.as_str().into(),
            EpRec { sandbox: rec.sandbox_id.as_str().into(), keys, v4: rec.ipv4, v6: rec.ipv6 },
        );
        let scope = self.scopes.entry(rec.sandbox_id.as_str().into()).or_default();
        if !scope.iter().any(|n| **n == *rec.network_id) {
            scope.push(rec.network_id.as_str().into());
        }
    }

    /// Removes an endpoint's records and its network from its sandbox's scope. Unknown: no-op.
    pub fn remove(&mut self, network_id: &str, endpoint_id: &str) {
        let Some(net) = self.networks.get_mut(network_id) else { return };
        let Some(ep) = net.endpoints.remove(endpoint_id) else { return };
        for k in &ep.keys {
            if let Some(entry) = net.names.get_mut(k) {
                if let Some(v4) = ep.v4
                    && let Some(i) = entry.v4.iter().position(|a| *a == v4)
                {
                    entry.v4.remove(i);
                }
                if let Some(v6) = ep.v6
                    && let Some(i) = entry.v6.iter().position(|a| *a == v6)
                {
                    entry.v6.remove(i);
                }
                if entry.v4.is_empty() && entry.v6.is_empty() {
                    net.names.remove(k);
                }
            }
        }
        for addr in [ep.v4.map(IpAddr::V4), ep.v6.map(IpAddr::V6)].into_iter().flatten() {
            if net.ptrs.get(&addr).is_some_and(|(owner, _)| **owner == *endpoint_id) {
                net.ptrs.remove(&addr);
            }
        }
        let sandbox_still_there = net.endpoints.values().any(|e| e.sandbox == ep.sandbox);
        if net.endpoints.is_empty() {
            self.networks.remove(network_id);
        }
        if !sandbox_still_there && let Some(scope) = self.scopes.get_mut(&ep.sandbox) {
            scope.retain(|n| **n != *network_id);
            if scope.is_empty() {
                self.scopes.remove(&ep.sandbox);
            }
        }
    }

    /// Removes every record of a sandbox.
    pub fn remove_sandbox(&mut self, sandbox_id: &str) {
        let Some(scope) = self.scopes.get(sandbox_id).cloned() else { return };
        for network_id in scope {
            let eps: Vec<Box<str>> = self
                .networks
                .get(&*network_id)
                .map(|n| {
                    n.endpoints.iter().filter(|(_, e)| *e.sandbox == *sandbox_id).map(|(id, _)| id.clone()).collect()
                })
                .unwrap_or_default();
            for ep in eps {
                self.remove(&network_id, &ep);
            }
        }
        self.scopes.remove(sandbox_id);
    }

    /// The local answer to `name` (lowercased, no final dot) for a query from `sandbox`: the first
    /// of its networks that knows the name. None: not a local name (forward it).
    pub fn find(&self, sandbox: &str, name: &[u8], qtype: u16) -> Option<Found<'_>> {
        let scope = self.scopes.get(sandbox)?;
        let nets = scope.iter().filter_map(|id| self.networks.get(&**id));
        if let Some(addr) = wire::reverse_addr(name) {
            for net in nets {
                if let Some((_, target)) = net.ptrs.get(&addr) {
                    return Some(if qtype == wire::TYPE_PTR { Found::Ptr(target) } else { Found::Empty });
                }
            }
            return None;
        }
        for net in nets {
            if let Some(entry) = net.names.get(name) {
                return Some(Found::Name(entry));
            }
        }
        None
    }

    /// Number of (network, name) entries, for logs and tests.
    pub fn len(&self) -> usize {
        self.networks.values().map(|n| n.names.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ep: &str, sb: &str, net: &str, names: &[&str], v4: &str) -> EndpointRecord {
        EndpointRecord {
            endpoint_id: ep.into(),
            sandbox_id: sb.into(),
            network_id: format!("id-{net}"),
            network_name: net.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ptr_name: format!("{}.{net}", names[0]),
            ipv4: Some(v4.parse().unwrap()),
            ipv6: None,
        }
    }

    fn v4s(t: &Table, sb: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        match t.find(sb, name.as_bytes(), wire::TYPE_A)? {
            Found::Name(e) => Some(e.rotated().0.collect()),
            _ => panic!("not a name"),
        }
    }

    #[test]
    fn scoped_names_aliases_and_network_forms() {
        let mut t = Table::default();
        t.add(&rec("e1", "s1", "net1", &["Web", "web", "www"], "172.18.0.2"));
        t.add(&rec("e2", "s2", "net1", &["db"], "172.18.0.3"));
        t.add(&rec("e3", "s3", "net2", &["other"], "172.19.0.2"));
        let ip = |s: &str| -> Ipv4Addr { s.parse().unwrap() };
        assert_eq!(v4s(&t, "s2", "web"), Some(vec![ip("172.18.0.2")]));
        assert_eq!(v4s(&t, "s2", "www.net1"), Some(vec![ip("172.18.0.2")]));
        assert_eq!(v4s(&t, "s1", "db"), Some(vec![ip("172.18.0.3")]));
        assert_eq!(v4s(&t, "s1", "other"), None, "net2 is not in s1's scope");
        assert_eq!(v4s(&t, "s1", "web.net2"), None);
        assert_eq!(v4s(&t, "nobody", "web"), None);
        match t.find("s2", b"2.0.18.172.in-addr.arpa", wire::TYPE_PTR) {
            Some(Found::Ptr(p)) => assert_eq!(p, &b"\x03web\x04net1\x00"[..]),
            _ => panic!("no PTR"),
        }
        assert!(t.find("s1", b"2.0.19.172.in-addr.arpa", wire::TYPE_PTR).is_none());
        assert!(matches!(t.find("s2", b"2.0.18.172.in-addr.arpa", wire::TYPE_A), Some(Found::Empty)));
    }

    #[test]
    fn shared_aliases_rotate_and_go_away() {
        let mut t = Table::default();
        t.add(&rec("e1", "s1", "net1", &["a", "svc"], "10.0.0.2"));
        t.add(&rec("e2", "s2", "net1", &["b", "svc"], "10.0.0.3"));
        let first: Vec<Ipv4Addr> = (0..4).map(|_| v4s(&t, "s1", "svc").unwrap()[0]).collect();
        assert_ne!(first[0], first[1]);
        assert_eq!(first[0], first[2]);
        assert_eq!(v4s(&t, "s1", "svc").unwrap().len(), 2);
        t.remove("id-net1", "e2");
        assert_eq!(v4s(&t, "s1", "svc").unwrap(), vec!["10.0.0.2".parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(v4s(&t, "s1", "b"), None);
        assert!(t.find("s2", b"a", wire::TYPE_A).is_none(), "s2 has no scope left");
        t.remove_sandbox("s1");
        assert!(t.is_empty());
        assert!(t.scopes.is_empty());
    }

    #[test]
    fn re_adding_replaces() {
        let mut t = Table::default();
        t.add(&rec("e1", "s1", "net1", &["a"], "10.0.0.2"));
        t.add(&rec("e1", "s1", "net1", &["a"], "10.0.0.2"));
        assert_eq!(v4s(&t, "s1", "a").unwrap().len(), 1);
        assert_eq!(t.len(), 2);
    }
}
