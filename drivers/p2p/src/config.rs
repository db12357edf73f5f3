//! The p2p driver's options, parsed and checked into a typed value before anything is made.

use cnet_core::options::{self, parse_mtu};
use cnet_core::{Endpoint, Error, Network, Result};

const KNOWN: &[&str] = &[options::DRIVER_MTU];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P2pConfig {
    /// `-o com.docker.network.driver.mtu=M`: the MTU of both ends (the kernel's default, 1500,
    /// when not given).
    pub mtu: Option<u32>,
}

impl P2pConfig {
    pub fn from_network(net: &Network) -> Result<P2pConfig> {
        let mtu = check_link_network("p2p", net, KNOWN)?;
        Ok(P2pConfig { mtu })
    }
}

/// The checks of every point-to-point link driver (p2p, vxlan): no option but `known`, no
/// gateway; returns the MTU option (`com.docker.network.driver.mtu`), parsed, if given. Errors
/// name `driver` and the bad value.
pub fn check_link_network(driver: &str, net: &Network, known: &[&str]) -> Result<Option<u32>> {
    options::check_known(driver, net, known)?;
    // A link between two containers has no router on it: a gateway would be an address
    // nobody answers, and a default route into nowhere.
    if let Some(pool) = net.pools.iter().find(|p| p.gateway.is_some()) {
        return Err(Error::invalid(format!(
            "invalid --gateway {} for the {driver} driver: a point-to-point link has no gateway (its two \
             ends reach each other directly); pass only --subnet, such as a /31",
            pool.gateway.expect("found by its gateway")
        )));
    }
    net.option(options::DRIVER_MTU).map(|v| parse_mtu(options::DRIVER_MTU, v)).transpose()
}

/// A link publishes no ports: an endpoint asking for some is refused (before its link is
/// touched), naming the network and `driver`.
pub fn refuse_ports(driver: &str, network: &Network, endpoint: &Endpoint) -> Result<()> {
    if endpoint.ports.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "network {} is a {driver} link: it publishes no ports (drop -p/--publish, or publish on another network)",
        network.name
    )))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cnet_core::IpamPool;

    pub(crate) fn net(opts: &[(&str, &str)], pools: Vec<IpamPool>) -> Network {
        Network {
            pools,
            options: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Network::new("0123456789abcdef".repeat(4).into(), "l1", "p2p")
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
    fn defaults_and_mtu() {
        assert_eq!(P2pConfig::from_network(&net(&[], vec![])).unwrap(), P2pConfig { mtu: None });
        let c = P2pConfig::from_network(&net(&[("com.docker.network.driver.mtu", "9000")], vec![])).unwrap();
        assert_eq!(c.mtu, Some(9000));
        let c = P2pConfig::from_network(&net(&[], vec![pool("10.0.0.0/31", None), pool("fd00::/127", None)]));
        assert_eq!(c.unwrap(), P2pConfig { mtu: None });
    }

    #[test]
    fn bad_input_is_named() {
        for bad in ["0", "67", "65536", "big", ""] {
            let e = P2pConfig::from_network(&net(&[("com.docker.network.driver.mtu", bad)], vec![]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("{bad:?}")) && e.contains("com.docker.network.driver.mtu"), "{e}");
        }
        let e = P2pConfig::from_network(&net(&[("parent", "eth0")], vec![])).unwrap_err().to_string();
        assert!(e.contains("\"parent\"") && e.contains("p2p") && e.contains("com.docker.network.driver.mtu"), "{e}");
        let e = P2pConfig::from_network(&net(&[], vec![pool("10.0.0.0/30", Some("10.0.0.1"))])).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("--gateway 10.0.0.1") && e.contains("no gateway"), "{e}");
    }
}
