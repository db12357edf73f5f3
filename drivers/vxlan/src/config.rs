//! The vxlan driver's options, parsed and checked into a typed value before anything is made:
//! those of a p2p link (the MTU, no gateway; [`cnet_driver_p2p::config::check_link_network`]),
//! plus the VNI the user may ask for, and one subnet per address family at most.

use cnet_core::options::{self, parse_vni};
use cnet_core::{Error, Network, Result};

/// The options a vxlan link takes: its MTU, and the VNI (`vxlanid_list`, as an overlay network;
/// the cluster store records the one it chose there too).
const KNOWN: &[&str] = &[options::DRIVER_MTU, options::OVERLAY_VNI];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanConfig {
    /// `-o com.docker.network.driver.mtu=M`: the MTU of both ends (the underlay's minus VXLAN's
    /// 50 bytes when not given).
    pub mtu: Option<u32>,
    /// The network's VNI: the one asked for before creation, the one the cluster chose after.
    pub vni: Option<u32>,
}

impl VxlanConfig {
    pub fn from_network(net: &Network) -> Result<VxlanConfig> {
        let mtu = cnet_driver_p2p::config::check_link_network("vxlan", net, KNOWN)?;
        let vni = net.option(options::OVERLAY_VNI).map(parse_vni).transpose()?;
        for (v6, family, example) in [(false, "IPv4", "a /31"), (true, "IPv6", "a /127")] {
            let subnets: Vec<String> =
                net.pools.iter().filter(|p| p.subnet.is_ipv6() == v6).map(|p| p.subnet.to_string()).collect();
            if subnets.len() > 1 {
                return Err(Error::invalid(format!(
                    "vxlan network {}: one {family} subnet at most (such as {example}), got {}",
                    net.name,
                    subnets.join(", ")
                )));
            }
        }
        Ok(VxlanConfig { mtu, vni })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cnet_core::IpamPool;

    pub(crate) fn net(opts: &[(&str, &str)], pools: Vec<IpamPool>) -> Network {
        Network {
            pools,
            options: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            scope: cnet_core::Scope::Global,
            ..Network::new("0123456789abcdef".repeat(4).into(), "x1", "vxlan")
        }
    }

    fn pool(subnet: &str, gateway: Option<&str>) -> IpamPool {
        IpamPool {
            subnet: subnet.parse().unwrap(),
            gateway: gateway.map(|g| g.parse().unwrap()),
            ip_range: None,
            aux_addresses: Default::default(),
            configured: true,
        }
    }

    #[test]
    fn defaults_mtu_vni_and_subnets() {
        assert_eq!(VxlanConfig::from_network(&net(&[], vec![])).unwrap(), VxlanConfig { mtu: None, vni: None });
        let c = VxlanConfig::from_network(&net(&[("com.docker.network.driver.mtu", "1400")], vec![])).unwrap();
        assert_eq!(c.mtu, Some(1400));
        let c = VxlanConfig::from_network(&net(&[("com.docker.network.driver.overlay.vxlanid_list", "5000")], vec![]));
        assert_eq!(c.unwrap().vni, Some(5000));
        let c = VxlanConfig::from_network(&net(&[], vec![pool("10.0.0.0/31", None), pool("fd00::/127", None)]));
        assert_eq!(c.unwrap(), VxlanConfig { mtu: None, vni: None });
    }

    #[test]
    fn bad_input_is_named() {
        for bad in ["0", "67", "65536", "big", ""] {
            let e = VxlanConfig::from_network(&net(&[("com.docker.network.driver.mtu", bad)], vec![]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("{bad:?}")) && e.contains("com.docker.network.driver.mtu"), "{e}");
        }
        for bad in ["0", "16777216", "seven"] {
            let e = VxlanConfig::from_network(&net(&[("com.docker.network.driver.overlay.vxlanid_list", bad)], vec![]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad), "{e}");
        }
        let e = VxlanConfig::from_network(&net(&[("parent", "eth0")], vec![])).unwrap_err().to_string();
        assert!(e.contains("\"parent\"") && e.contains("vxlan driver") && e.contains("driver.mtu"), "{e}");
        let e = VxlanConfig::from_network(&net(&[], vec![pool("10.0.0.0/30", Some("10.0.0.1"))])).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("--gateway 10.0.0.1") && e.contains("vxlan driver") && e.contains("no gateway"), "{e}");
        let e = VxlanConfig::from_network(&net(&[], vec![pool("10.0.0.0/31", None), pool("10.0.1.0/31", None)]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("one IPv4 subnet at most") && e.contains("10.0.1.0/31"), "{e}");
    }
}
