//! Pure choices behind a global network's creation: its VNI and its default subnet (Docker's
//! overlay defaults: VNIs from 4096 up, /24s out of 10.0.0.0/8). The caller makes them unique by
//! writing them in one etcd transaction that fails if anything changed since it read.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use cnet_core::ipam::AddressPool;
use cnet_core::options::{MAX_VNI, vni_of};
use cnet_core::{Error, IpamPool, Network, Result};
use ipnetwork::{IpNetwork, Ipv4Network};

/// Docker's first overlay VNI.
pub const FIRST_VNI: u32 = 4096;
/// `requested` if free, else the lowest free VNI from [`FIRST_VNI`].
pub fn choose_vni(networks: &[Network], requested: Option<u32>) -> Result<u32> {
    let used: BTreeSet<u32> = networks.iter().filter_map(vni_of).collect();
    if let Some(vni) = requested {
        if let Some(other) = networks.iter().find(|n| vni_of(n) == Some(vni)) {
            return Err(Error::precondition(format!("VXLAN id {vni} is already used by network {}", other.name)));
        }
        return Ok(vni);
    }
    (FIRST_VNI..=MAX_VNI)
        .find(|v| !used.contains(v))
        .ok_or_else(|| Error::precondition("every VXLAN id is taken".to_string()))
}

/// The first /24 of 10.0.0.0/8 that overlaps nothing in `taken`.
pub fn choose_subnet(taken: &[IpNetwork]) -> Result<IpNetwork> {
    (0u32..(1 << 16))
        .map(|i| {
            let base = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (i << 8);
            IpNetwork::V4(Ipv4Network::new(Ipv4Addr::from(base), 24).expect("a /24 is valid"))
        })
        .find(|c| !taken.iter().any(|t| cnet_core::ipam::overlaps(t, c)))
        .ok_or_else(|| Error::precondition("no free /24 left in 10.0.0.0/8 for an overlay network: pass --subnet"))
}

/// The subnets still to choose for a global network, in the order its pools take them: a /24 of
/// 10.0.0.0/8 ([`choose_subnet`]) unless the user gave an IPv4 subnet, and, on a network with
/// IPv6, an IPv6 subnet unless the user gave one. The IPv6 one is what a bridge network with
/// `--ipv6` gets (the first free unique-local fd00:0:0:N::/64, [`cnet_core::ipam::choose_subnet`]),
/// here also kept clear of every other node's networks through `taken`.
pub fn missing_subnets(network: &Network, taken: &[IpNetwork]) -> Result<Vec<IpNetwork>> {
    let mut out = Vec::new();
    if network.pool_v4().is_none() {
        out.push(choose_subnet(taken)?);
    }
    if network.enable_ipv6 && network.pool_v6().is_none() {
        out.push(cnet_core::ipam::choose_subnet(true, taken)?);
    }
    Ok(out)
}

/// The address to lease in `pool`, given every address of the network leased in the cluster (of
/// both families): `wanted` if it is free, else the next free one after the highest leased (as a
/// local pool hands them out). Only the pool's own leases count: an IPv6 lease would move an IPv4
/// pool's cursor past its end, and every lease would start over at the beginning.
pub fn next_address(pool: &IpamPool, leased: &[IpAddr], wanted: Option<IpAddr>) -> Result<IpNetwork> {
    let mut addresses = AddressPool::new(pool.clone());
    for ip in leased.iter().filter(|ip| pool.subnet.contains(**ip)) {
        addresses.restore(*ip);
    }
    let ip = addresses.allocate(wanted)?;
    Ok(IpNetwork::new(ip, pool.subnet.prefix()).expect("prefix of a valid subnet"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn net(name: &str, vni: u32) -> Network {
        Network {
            scope: cnet_core::Scope::Global,
            options: BTreeMap::from([(cnet_core::options::OVERLAY_VNI.to_string(), vni.to_string())]),
            attachable: true,
            ..Network::new(format!("id-{name}").into(), name, "overlay")
        }
    }

    #[test]
    fn vnis_start_at_4096_and_fill_holes() {
        assert_eq!(choose_vni(&[], None).unwrap(), 4096);
        assert_eq!(choose_vni(&[net("a", 4096), net("b", 4098)], None).unwrap(), 4097);
        assert_eq!(choose_vni(&[net("a", 4096)], Some(300)).unwrap(), 300);
        let e = choose_vni(&[net("a", 4096)], Some(4096)).unwrap_err();
        assert!(e.to_string().contains("4096") && e.to_string().contains("network a"), "{e}");
    }

    #[test]
    fn next_addresses_per_family() {
        let pool = |s: &str| cnet_core::ipam::build_pool(&Default::default(), s.parse().unwrap(), true).unwrap();
        let (v4, v6) = (pool("10.0.0.0/24"), pool("fd00:0:0:1::/64"));
        let ips = |list: &[&str]| -> Vec<IpAddr> { list.iter().map(|s| s.parse().unwrap()).collect() };
        let leased = ips(&["10.0.0.2", "10.0.0.3", "fd00:0:0:1::2"]);
        assert_eq!(next_address(&v4, &leased, None).unwrap().to_string(), "10.0.0.4/24");
        assert_eq!(next_address(&v6, &leased, None).unwrap().to_string(), "fd00:0:0:1::3/64");
        // The cursor follows the highest lease of the pool's own family, past a released one.
        let leased = ips(&["10.0.0.3", "fd00:0:0:1::9"]);
        assert_eq!(next_address(&v4, &leased, None).unwrap().to_string(), "10.0.0.4/24");
        let wanted = Some("fd00:0:0:1::9".parse().unwrap());
        let e = next_address(&v6, &leased, wanted).unwrap_err().to_string();
        assert!(e.contains("fd00:0:0:1::9") && e.contains("in use"), "{e}");
    }

    #[test]
    fn missing_subnets_per_family() {
        let pool = |s: &str| cnet_core::ipam::build_pool(&Default::default(), s.parse().unwrap(), true).unwrap();
        let taken: Vec<IpNetwork> = vec!["10.0.0.0/24".parse().unwrap(), "fd00:0:0:1::/64".parse().unwrap()];
        let mut n = net("a", 4096);
        let strings = |n: &Network| -> Vec<String> {
            missing_subnets(n, &taken).unwrap().iter().map(ToString::to_string).collect()
        };
        assert_eq!(strings(&n), ["10.0.1.0/24"], "no IPv6 without --ipv6");
        n.enable_ipv6 = true;
        assert_eq!(strings(&n), ["10.0.1.0/24", "fd00:0:0:2::/64"]);
        n.pools = vec![pool("10.7.0.0/24")];
        assert_eq!(strings(&n), ["fd00:0:0:2::/64"], "the user's IPv4 subnet is kept");
        n.pools = vec![pool("fd00:99::/64")];
        assert_eq!(strings(&n), ["10.0.1.0/24"], "an IPv6 subnet alone still gets an IPv4 one");
        n.pools = vec![pool("10.7.0.0/24"), pool("fd00:99::/64")];
        assert!(strings(&n).is_empty());
        let full: Vec<IpNetwork> = vec!["fd00::/16".parse().unwrap()];
        n.pools = vec![pool("10.7.0.0/24")];
        assert!(missing_subnets(&n, &full).is_err(), "no free IPv6 /64 left");
    }

    #[test]
    fn subnets_are_slash_24s_of_ten_slash_8() {
        assert_eq!(choose_subnet(&[]).unwrap().to_string(), "10.0.0.0/24");
        let taken: Vec<IpNetwork> = vec!["10.0.0.0/24".parse().unwrap(), "10.0.1.128/25".parse().unwrap()];
        assert_eq!(choose_subnet(&taken).unwrap().to_string(), "10.0.2.0/24");
        let all: Vec<IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(choose_subnet(&all).is_err());
    }
}
