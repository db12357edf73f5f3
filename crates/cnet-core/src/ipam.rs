//! IP address management, as Docker's default IPAM: subnet choice from the default pools, pool
//! validation, and sequential leases inside a pool. Pure: the caller passes in what is taken
//! (other networks' subnets, the host's routes) and persists what is leased.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

use crate::model::IpamPool;
use crate::{Error, Result};

/// The default bridge network's subnet (device `cnet0`), taken unless something overlaps it.
pub const DEFAULT_BRIDGE_SUBNET: &str = "172.17.0.0/16";

/// The default pools for user networks, in the order Docker walks them: /16s of 172.18-31, then
/// /20s of 192.168.0.0/16.
pub fn default_v4_candidates() -> impl Iterator<Item = IpNetwork> {
    let sixteens = (18u8..=31).map(|b| IpNetwork::V4(Ipv4Network::new(Ipv4Addr::new(172, b, 0, 0), 16).unwrap()));
    let twenties = (0u8..16).map(|i| IpNetwork::V4(Ipv4Network::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).unwrap()));
    sixteens.chain(twenties)
}

/// Unique-local /64s for IPv6 networks created without a subnet: fd00:0:0:N::/64, N from 1.
fn default_v6_candidates() -> impl Iterator<Item = IpNetwork> {
    (1u16..=u16::MAX).map(|n| IpNetwork::V6(Ipv6Network::new(Ipv6Addr::new(0xfd00, 0, 0, n, 0, 0, 0, 0), 64).unwrap()))
}

pub fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    match (a, b) {
        (IpNetwork::V4(_), IpNetwork::V4(_)) | (IpNetwork::V6(_), IpNetwork::V6(_)) => {
            a.contains(b.network()) || b.contains(a.network())
        }
        _ => false,
    }
}

/// Picks the first default candidate that overlaps none of `taken`. Routes to 0.0.0.0/0 and ::/0
/// in `taken` are ignored: every subnet "overlaps" a default route.
pub fn choose_subnet(v6: bool, taken: &[IpNetwork]) -> Result<IpNetwork> {
    let taken: Vec<&IpNetwork> = taken.iter().filter(|t| t.prefix() != 0).collect();
    let free = |c: &IpNetwork| !taken.iter().any(|t| overlaps(c, t));
    let found = if v6 { default_v6_candidates().find(free) } else { default_v4_candidates().find(free) };
    found.ok_or_else(|| {
        Error::precondition("all predefined address pools have been fully subnetted: pass --subnet explicitly")
    })
}

/// The subnet for the built-in `bridge` network: 172.17.0.0/16 unless taken, then the next free pool.
pub fn choose_default_bridge_subnet(taken: &[IpNetwork]) -> Result<IpNetwork> {
    let preferred: IpNetwork = DEFAULT_BRIDGE_SUBNET.parse().unwrap();
    if taken.iter().filter(|t| t.prefix() != 0).any(|t| overlaps(&preferred, t)) {
        choose_subnet(false, taken)
    } else {
        Ok(preferred)
    }
}

pub fn parse_cidr(what: &str, s: &str) -> Result<IpNetwork> {
    s.trim()
        .parse::<IpNetwork>()
        .map_err(|_| Error::invalid(format!("invalid {what} {s:?}: expected a CIDR such as 172.20.0.0/16")))
}

pub fn parse_ip(what: &str, s: &str) -> Result<IpAddr> {
    s.trim().parse::<IpAddr>().map_err(|_| Error::invalid(format!("invalid {what} {s:?}: expected an IP address")))
}

/// Whether `inner` lies inside `outer` (same family, a prefix at least as long).
pub fn contains_net(outer: &IpNetwork, inner: &IpNetwork) -> bool {
    outer.is_ipv4() == inner.is_ipv4() && inner.prefix() >= outer.prefix() && outer.contains(inner.network())
}

/// What the user asked for one subnet (`--subnet`, `--gateway`, `--ip-range`, `--aux-address`),
/// parsed once where it enters (see [`PoolRequest::parse`]) but not yet checked against the subnet
/// or the other networks ([`build_pool`] does that).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRequest {
    /// None: cnetd picks one (only for a request that gives nothing else).
    pub subnet: Option<IpNetwork>,
    pub gateway: Option<IpAddr>,
    pub ip_range: Option<IpNetwork>,
    pub aux_addresses: BTreeMap<String, IpAddr>,
}

impl PoolRequest {
    /// Parses one IPAM config as it travels (text; empty for "not given"), naming a bad value.
    pub fn parse(
        subnet: &str,
        gateway: &str,
        ip_range: &str,
        aux_addresses: impl IntoIterator<Item = (String, String)>,
    ) -> Result<PoolRequest> {
        let given = |s: &str| !s.trim().is_empty();
        Ok(PoolRequest {
            subnet: given(subnet).then(|| parse_cidr("subnet", subnet)).transpose()?,
            gateway: given(gateway).then(|| parse_ip("gateway", gateway)).transpose()?,
            ip_range: given(ip_range).then(|| parse_cidr("ip-range", ip_range)).transpose()?,
            aux_addresses: aux_addresses
                .into_iter()
                .map(|(name, ip)| Ok((name.clone(), parse_ip(&format!("aux-address {name}"), &ip)?)))
                .collect::<Result<_>>()?,
        })
    }
}

/// Turns a request into a checked pool. `subnet` must already be chosen when the request left it empty.
pub fn build_pool(req: &PoolRequest, subnet: IpNetwork, with_gateway: bool) -> Result<IpamPool> {
    if subnet.network() != subnet.ip() {
        return Err(Error::invalid(format!(
            "invalid subnet {subnet}: it should be {}/{}",
            subnet.network(),
            subnet.prefix()
        )));
    }
    // A /31 or /127 holds two endpoints and nothing else (RFC 3021, RFC 6164): fine for a link
    // with no gateway on it, too small for anything routed.
    let link_only = !with_gateway && req.gateway.is_none();
    if host_bits(&subnet) < 2 && !(link_only && is_point_to_point(&subnet)) {
        return Err(Error::invalid(format!(
            "subnet {subnet} is too small: it has no room for a gateway and a container"
        )));
    }
    let gateway = if let Some(gw) = req.gateway {
        if !subnet.contains(gw) || gw.is_ipv4() != subnet.is_ipv4() {
            return Err(Error::invalid(format!("gateway {gw} is not in subnet {subnet}")));
        }
        if gw == subnet.network() || (subnet.is_ipv4() && gw == subnet.broadcast()) {
            return Err(Error::invalid(format!("gateway {gw} is the network or broadcast address of {subnet}")));
        }
        Some(gw)
    } else if with_gateway {
        Some(nth_host(&subnet, 1))
    } else {
        None
    };
    let ip_range = if let Some(r) = req.ip_range {
        if !contains_net(&subnet, &r) {
            return Err(Error::invalid(format!("ip-range {r} is not inside subnet {subnet}")));
        }
        Some(IpNetwork::new(r.network(), r.prefix()).unwrap())
    } else {
        None
    };
    let mut aux_addresses = BTreeMap::new();
    for (name, &ip) in &req.aux_addresses {
        if !subnet.contains(ip) || ip.is_ipv4() != subnet.is_ipv4() {
            return Err(Error::invalid(format!("aux-address {name}={ip} is not in subnet {subnet}")));
        }
        aux_addresses.insert(name.clone(), ip);
    }
    Ok(IpamPool { subnet, gateway, ip_range, aux_addresses, configured: req.subnet.is_some() })
}

fn host_bits(subnet: &IpNetwork) -> u32 {
    let bits = if subnet.is_ipv4() { 32 } else { 128 };
    bits - u32::from(subnet.prefix())
}

/// A /31 or /127: both addresses belong to the two ends of a link (RFC 3021, RFC 6164); neither
/// is a network or broadcast address.
pub fn is_point_to_point(subnet: &IpNetwork) -> bool {
    host_bits(subnet) == 1
}

/// The n-th address of a subnet (0 is the network address).
fn nth_host(net: &IpNetwork, n: u128) -> IpAddr {
    from_u128(to_u128(net.network()) + n, net.is_ipv4())
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(n: u128, v4: bool) -> IpAddr {
    if v4 { IpAddr::V4(Ipv4Addr::from(n as u32)) } else { IpAddr::V6(Ipv6Addr::from(n)) }
}

/// The live lease table of one pool. Leases go out sequentially after the last one handed out, so a
/// released address is not reused at once (neighbours' ARP caches and DNS answers get time to age).
#[derive(Debug, Clone)]
pub struct AddressPool {
    pool: IpamPool,
    leased: BTreeSet<u128>,
    /// The last address handed out (dynamic or static).
    cursor: Option<u128>,
    first: u128,
    last: u128,
}

impl AddressPool {
    pub fn new(pool: IpamPool) -> Self {
        let range = pool.ip_range.unwrap_or(pool.subnet);
        let v4 = pool.subnet.is_ipv4();
        let mut first = to_u128(range.network());
        let mut last = match range {
            IpNetwork::V4(n) => u32::from(n.broadcast()) as u128,
            IpNetwork::V6(n) => u128::from(n.network()) | (u128::MAX >> n.prefix().min(127)),
        };
        // The subnet's network address (and, for v4, its broadcast) are never leased, except on a
        // point-to-point subnet, which has neither.
        let p2p = is_point_to_point(&pool.subnet);
        let net = to_u128(pool.subnet.network());
        if first == net && !p2p {
            first += 1;
        }
        if v4
            && !p2p
            && last
                == u32::from(match pool.subnet {
                    IpNetwork::V4(n) => n.broadcast(),
                    IpNetwork::V6(_) => unreachable!(),
                }) as u128
        {
            last -= 1;
        }
        AddressPool { pool, leased: BTreeSet::new(), cursor: None, first, last }
    }

    pub fn pool(&self) -> &IpamPool {
        &self.pool
    }

    fn reserved(&self, n: u128) -> bool {
        let v4 = self.pool.subnet.is_ipv4();
        let ip = from_u128(n, v4);
        Some(ip) == self.pool.gateway || self.pool.aux_addresses.values().any(|a| *a == ip)
    }

    /// Marks an address as leased when restoring from the store.
    pub fn restore(&mut self, ip: IpAddr) {
        let n = to_u128(ip);
        self.leased.insert(n);
        if self.cursor.is_none_or(|c| n > c) {
            self.cursor = Some(n);
        }
    }

    /// Leases `wanted`, or the next free address after the last one handed out.
    pub fn allocate(&mut self, wanted: Option<IpAddr>) -> Result<IpAddr> {
        let v4 = self.pool.subnet.is_ipv4();
        if let Some(ip) = wanted {
            if ip.is_ipv4() != v4 || !self.pool.subnet.contains(ip) {
                return Err(Error::invalid(format!(
                    "address {ip} is not in the network's subnet {}",
                    self.pool.subnet
                )));
            }
            let n = to_u128(ip);
            let network_or_broadcast =
                n == to_u128(self.pool.subnet.network()) || (v4 && ip == self.pool.subnet.broadcast());
            if network_or_broadcast && !is_point_to_point(&self.pool.subnet) {
                return Err(Error::invalid(format!(
                    "address {ip} is the network or broadcast address of {}",
                    self.pool.subnet
                )));
            }
            if self.reserved(n) {
                return Err(Error::precondition(format!(
                    "address {ip} is reserved (gateway or aux-address) in {}",
                    self.pool.subnet
                )));
            }
            if !self.leased.insert(n) {
                return Err(Error::precondition(format!("address {ip} is already in use on this network")));
            }
            return Ok(ip);
        }
        let start = match self.cursor {
            Some(c) if c >= self.first && c < self.last => c + 1,
            _ => self.first,
        };
        // Walk from the cursor to the end, then wrap around. Leased addresses are skipped by
        // jumping over runs in the BTreeSet, so a full-ish pool costs its leased count, not its size.
        for (lo, hi) in [(start, self.last), (self.first, start.saturating_sub(1))] {
            let mut n = lo;
            while n <= hi && hi >= lo {
                if self.leased.contains(&n) || self.reserved(n) {
                    n += 1;
                    continue;
                }
                self.leased.insert(n);
                self.cursor = Some(n);
                return Ok(from_u128(n, v4));
            }
        }
        Err(Error::precondition(format!(
            "no available IPv{} addresses on this network's address pools: {} is exhausted",
            if v4 { 4 } else { 6 },
            self.pool.ip_range.unwrap_or(self.pool.subnet)
        )))
    }

    pub fn release(&mut self, ip: IpAddr) {
        self.leased.remove(&to_u128(ip));
    }

    pub fn leased_count(&self) -> usize {
        self.leased.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn pool(subnet: &str) -> IpamPool {
        build_pool(&PoolRequest::default(), net(subnet), true).unwrap()
    }

    #[test]
    fn default_pools_follow_docker_order_and_skip_taken() {
        assert_eq!(choose_subnet(false, &[]).unwrap(), net("172.18.0.0/16"));
        let taken = [net("172.18.0.0/16"), net("172.19.5.0/24"), net("0.0.0.0/0")];
        assert_eq!(choose_subnet(false, &taken).unwrap(), net("172.20.0.0/16"));
        let all16: Vec<IpNetwork> = (18..=31).map(|b| net(&format!("172.{b}.0.0/16"))).collect();
        assert_eq!(choose_subnet(false, &all16).unwrap(), net("192.168.0.0/20"));
        let mut all = all16.clone();
        all.push(net("192.168.0.0/16"));
        assert!(matches!(choose_subnet(false, &all), Err(Error::FailedPrecondition(_))));
        // A host route inside 192.168.0.0/16 only takes the /20 it falls in.
        let mut some = all16;
        some.push(net("192.168.1.0/24"));
        assert_eq!(choose_subnet(false, &some).unwrap(), net("192.168.16.0/20"));
    }

    #[test]
    fn default_bridge_prefers_172_17() {
        assert_eq!(choose_default_bridge_subnet(&[]).unwrap(), net("172.17.0.0/16"));
        assert_eq!(choose_default_bridge_subnet(&[net("172.17.3.0/24")]).unwrap(), net("172.18.0.0/16"));
    }

    #[test]
    fn v6_default_is_unique_local() {
        assert_eq!(choose_subnet(true, &[]).unwrap(), net("fd00:0:0:1::/64"));
        assert_eq!(choose_subnet(true, &[net("fd00:0:0:1::/64")]).unwrap(), net("fd00:0:0:2::/64"));
    }

    #[test]
    fn pool_validation_names_the_bad_value() {
        let req = |gw: &str, range: &str| PoolRequest::parse("", gw, range, []).unwrap();
        let e = build_pool(&req("10.1.0.1", ""), net("172.20.0.0/16"), true).unwrap_err();
        assert!(e.to_string().contains("10.1.0.1"), "{e}");
        let e = build_pool(&req("", "10.0.0.0/24"), net("172.20.0.0/16"), true).unwrap_err();
        assert!(e.to_string().contains("10.0.0.0/24"), "{e}");
        let e = build_pool(&req("", ""), net("172.20.0.1/16"), true).unwrap_err();
        assert!(e.to_string().contains("172.20.0.0/16"), "{e}");
        let e = PoolRequest::parse("", "nonsense", "", []).unwrap_err();
        assert!(e.to_string().contains("nonsense"), "{e}");
        for (subnet, range, aux, bad) in [
            ("10.0.0.0/33", "", "", "10.0.0.0/33"),
            ("", "10.1.0/24", "", "10.1.0/24"),
            ("", "", "10.0.0.300", "10.0.0.300"),
        ] {
            let aux = (!aux.is_empty()).then(|| ("router".to_string(), aux.to_string()));
            let e = PoolRequest::parse(subnet, "", range, aux).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
        let parsed = PoolRequest::parse(" 10.0.0.0/24 ", "", "", [("r".to_string(), "10.0.0.9".to_string())]).unwrap();
        assert_eq!(parsed.subnet, Some(net("10.0.0.0/24")));
        assert_eq!(parsed.aux_addresses["r"], "10.0.0.9".parse::<IpAddr>().unwrap());
        assert!(contains_net(&net("10.0.0.0/16"), &net("10.0.5.0/24")));
        assert!(!contains_net(&net("10.0.5.0/24"), &net("10.0.0.0/16")));
        assert!(!contains_net(&net("10.0.0.0/16"), &net("fd00::/64")));
        let p = build_pool(&req("172.20.0.254", "172.20.1.0/24"), net("172.20.0.0/16"), true).unwrap();
        assert_eq!(p.gateway, Some("172.20.0.254".parse().unwrap()));
        assert!(parse_cidr("subnet", "300.1.0.0/16").unwrap_err().to_string().contains("300.1.0.0/16"));
    }

    #[test]
    fn leases_are_sequential_and_not_reused_at_once() {
        let mut p = AddressPool::new(pool("172.18.0.0/16"));
        let a = p.allocate(None).unwrap();
        let b = p.allocate(None).unwrap();
        assert_eq!(a.to_string(), "172.18.0.2");
        assert_eq!(b.to_string(), "172.18.0.3");
        p.release(a);
        assert_eq!(p.allocate(None).unwrap().to_string(), "172.18.0.4");
    }

    #[test]
    fn static_addresses() {
        let mut p = AddressPool::new(pool("172.18.0.0/16"));
        assert_eq!(p.allocate(Some("172.18.0.10".parse().unwrap())).unwrap().to_string(), "172.18.0.10");
        let e = p.allocate(Some("172.18.0.10".parse().unwrap())).unwrap_err();
        assert!(matches!(e, Error::FailedPrecondition(_)), "{e}");
        let e = p.allocate(Some("172.18.0.1".parse().unwrap())).unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
        let e = p.allocate(Some("10.0.0.1".parse().unwrap())).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    }

    #[test]
    fn range_and_aux_are_honoured_and_exhaustion_is_reported() {
        let req = PoolRequest::parse("", "", "10.9.0.8/30", [("router".to_string(), "10.9.0.9".to_string())]).unwrap();
        let mut p = AddressPool::new(build_pool(&req, net("10.9.0.0/24"), true).unwrap());
        let got: Vec<String> = (0..3).map(|_| p.allocate(None).unwrap().to_string()).collect();
        assert_eq!(got, ["10.9.0.8", "10.9.0.10", "10.9.0.11"]);
        let e = p.allocate(None).unwrap_err();
        assert!(e.to_string().contains("10.9.0.8/30"), "{e}");
    }

    #[test]
    fn wraps_around_after_the_end() {
        let mut p = AddressPool::new(pool("10.0.0.0/29")); // .2 - .6 leasable
        let all: Vec<IpAddr> = (0..5).map(|_| p.allocate(None).unwrap()).collect();
        assert_eq!(all.last().unwrap().to_string(), "10.0.0.6");
        assert!(p.allocate(None).is_err());
        p.release(all[1]);
        assert_eq!(p.allocate(None).unwrap().to_string(), "10.0.0.3");
    }

    #[test]
    fn restore_moves_the_cursor() {
        let mut p = AddressPool::new(pool("172.18.0.0/16"));
        p.restore("172.18.0.7".parse().unwrap());
        assert_eq!(p.allocate(None).unwrap().to_string(), "172.18.0.8");
    }

    #[test]
    fn ipv6_pool() {
        let mut p = AddressPool::new(pool("fd00:0:0:1::/64"));
        assert_eq!(p.pool().gateway.unwrap().to_string(), "fd00:0:0:1::1");
        assert_eq!(p.allocate(None).unwrap().to_string(), "fd00:0:0:1::2");
    }

    #[test]
    fn point_to_point_subnets_lease_both_addresses_without_a_gateway() {
        // A /31 (RFC 3021) and a /127 (RFC 6164): both addresses go to the two ends.
        for (subnet, a, b) in [("10.0.0.0/31", "10.0.0.0", "10.0.0.1"), ("fd00::/127", "fd00::", "fd00::1")] {
            let mut p = AddressPool::new(build_pool(&PoolRequest::default(), net(subnet), false).unwrap());
            assert_eq!(p.pool().gateway, None);
            assert_eq!(p.allocate(None).unwrap().to_string(), a, "{subnet}");
            assert_eq!(p.allocate(None).unwrap().to_string(), b, "{subnet}");
            assert!(p.allocate(None).is_err(), "{subnet} has only two addresses");
            let mut p = AddressPool::new(build_pool(&PoolRequest::default(), net(subnet), false).unwrap());
            assert_eq!(p.allocate(Some(b.parse().unwrap())).unwrap().to_string(), b, "{subnet}");
            assert_eq!(p.allocate(Some(a.parse().unwrap())).unwrap().to_string(), a, "{subnet}");
        }
        // With a gateway (every driver but p2p), or as a /32, it is still too small.
        for (subnet, with_gateway) in [("10.0.0.0/31", true), ("10.0.0.0/32", false), ("fd00::/127", true)] {
            let e = build_pool(&PoolRequest::default(), net(subnet), with_gateway).unwrap_err();
            assert!(e.to_string().contains("too small"), "{e}");
        }
        let gw = PoolRequest::parse("", "10.0.0.1", "", []).unwrap();
        assert!(build_pool(&gw, net("10.0.0.0/31"), false).is_err());
        // A /30 without a gateway: its two host addresses, network and broadcast still excluded.
        let mut p = AddressPool::new(build_pool(&PoolRequest::default(), net("10.0.0.4/30"), false).unwrap());
        let got: Vec<String> = (0..2).map(|_| p.allocate(None).unwrap().to_string()).collect();
        assert_eq!(got, ["10.0.0.5", "10.0.0.6"]);
        assert!(p.allocate(None).is_err());
        assert!(p.allocate(Some("10.0.0.7".parse().unwrap())).is_err());
    }

    #[test]
    fn overlap() {
        assert!(overlaps(&net("172.18.0.0/16"), &net("172.18.3.0/24")));
        assert!(overlaps(&net("172.18.3.0/24"), &net("172.18.0.0/16")));
        assert!(!overlaps(&net("172.18.0.0/16"), &net("172.19.0.0/16")));
        assert!(!overlaps(&net("172.18.0.0/16"), &net("fd00::/8")));
    }
}
