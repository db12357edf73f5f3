//! Pure choices behind a global network's creation: its VNI and its default subnet (Docker's
//! overlay defaults: VNIs from 4096 up, /24s out of 10.0.0.0/8). The caller makes them unique by
//! writing them in one etcd transaction that fails if anything changed since it read.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use cnet_core::options::{MAX_VNI, vni_of};
use cnet_core::{Error, Network, Result};
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
    fn subnets_are_slash_24s_of_ten_slash_8() {
        assert_eq!(choose_subnet(&[]).unwrap().to_string(), "10.0.0.0/24");
        let taken: Vec<IpNetwork> = vec!["10.0.0.0/24".parse().unwrap(), "10.0.1.128/25".parse().unwrap()];
        assert_eq!(choose_subnet(&taken).unwrap().to_string(), "10.0.2.0/24");
        let all: Vec<IpNetwork> = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(choose_subnet(&all).is_err());
    }
}
