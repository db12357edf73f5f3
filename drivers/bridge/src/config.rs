//! The bridge driver's options, parsed and checked into a typed value before anything is made.

use cnet_core::options::{self, parse_bool, parse_mtu, validate_ifname};
use cnet_core::{Error, Network, Result};

/// The default bridge network's device.
pub const DEFAULT_BRIDGE_DEVICE: &str = "cnet0";

const KNOWN: &[&str] = &[
    options::BRIDGE_NAME,
    options::BRIDGE_ENABLE_ICC,
    options::BRIDGE_ENABLE_IP_MASQUERADE,
    options::BRIDGE_HOST_BINDING_IPV4,
    options::BRIDGE_DEFAULT_BRIDGE,
    options::DRIVER_MTU,
    options::BRIDGE_GATEWAY_MODE_IPV4,
    options::BRIDGE_GATEWAY_MODE_IPV6,
];

/// Whether a gateway mode option lets anything routed through (`nat-unprotected`) or only
/// published ports (`nat`, the default). Docker's `routed` and `isolated` are refused by name.
fn unprotected(net: &Network, key: &str) -> Result<bool> {
    match net.option(key) {
        None | Some("nat") => Ok(false),
        Some("nat-unprotected") => Ok(true),
        Some(mode @ ("routed" | "isolated")) => Err(Error::invalid(format!(
            "{key}={mode}: cnet does not implement gateway mode {mode} yet (nat and nat-unprotected are)"
        ))),
        Some(other) => Err(Error::invalid(format!(
            "invalid value {other:?} for option {key}: expected nat, nat-unprotected, routed or isolated"
        ))),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub device: String,
    pub mtu: Option<u32>,
    pub icc: bool,
    pub masquerade: bool,
    pub host_binding_ipv4: Option<std::net::Ipv4Addr>,
    /// Gateway mode `nat-unprotected` for IPv4 / IPv6 (default `nat`: only published ports).
    pub unprotected_v4: bool,
    pub unprotected_v6: bool,
}

impl BridgeConfig {
    pub fn from_network(net: &Network) -> Result<BridgeConfig> {
        cnet_core::options::check_known("bridge", net, KNOWN)?;
        let device = match net.option(options::BRIDGE_NAME) {
            Some(name) => {
                validate_ifname(options::BRIDGE_NAME, name)?;
                name.to_string()
            }
            None if net.builtin => DEFAULT_BRIDGE_DEVICE.to_string(),
            None => format!("br-{}", net.short_id()),
        };
        let mtu = net.option(options::DRIVER_MTU).map(|v| parse_mtu(options::DRIVER_MTU, v)).transpose()?;
        let flag = |key: &str| net.option(key).map(|v| parse_bool(key, v)).transpose();
        let host_binding_ipv4 = net
            .option(options::BRIDGE_HOST_BINDING_IPV4)
            .map(|v| {
                v.parse().map_err(|_| {
                    Error::invalid(format!(
                        "invalid value {v:?} for option {}: expected an IPv4 address",
                        options::BRIDGE_HOST_BINDING_IPV4
                    ))
                })
            })
            .transpose()?;
        Ok(BridgeConfig {
            device,
            mtu,
            icc: flag(options::BRIDGE_ENABLE_ICC)?.unwrap_or(true),
            masquerade: flag(options::BRIDGE_ENABLE_IP_MASQUERADE)?.unwrap_or(true) && !net.internal,
            host_binding_ipv4,
            unprotected_v4: unprotected(net, options::BRIDGE_GATEWAY_MODE_IPV4)?,
            unprotected_v6: unprotected(net, options::BRIDGE_GATEWAY_MODE_IPV6)?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cnet_core::Scope;

    /// A bridge network with these options, for the crate's tests.
    pub(crate) fn net(opts: &[(&str, &str)]) -> Network {
        Network {
            id: "0123456789abcdef".repeat(4).into(),
            name: "n".into(),
            driver: "bridge".into(),
            scope: Scope::Local,
            pools: vec![],
            options: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            labels: Default::default(),
            internal: false,
            attachable: false,
            enable_ipv6: false,
            created: String::new(),
            builtin: false,
        }
    }

    #[test]
    fn defaults() {
        let c = BridgeConfig::from_network(&net(&[])).unwrap();
        assert_eq!(c.device, "br-0123456789ab");
        assert!(c.icc && c.masquerade);
        assert_eq!(c.mtu, None);
    }

    #[test]
    fn options_are_parsed_and_bad_values_named() {
        let c = BridgeConfig::from_network(&net(&[
            ("com.docker.network.bridge.name", "lab0"),
            ("com.docker.network.driver.mtu", "1400"),
            ("com.docker.network.bridge.enable_icc", "false"),
        ]))
        .unwrap();
        assert_eq!((c.device.as_str(), c.mtu, c.icc), ("lab0", Some(1400), false));
        let e = BridgeConfig::from_network(&net(&[("com.docker.network.driver.mtu", "9")])).unwrap_err();
        assert!(e.to_string().contains("\"9\""), "{e}");
        let e = BridgeConfig::from_network(&net(&[("colour", "blue")])).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = BridgeConfig::from_network(&net(&[("com.docker.network.bridge.name", "a-name-that-is-too-long")]))
            .unwrap_err();
        assert!(e.to_string().contains("a-name-that-is-too-long"), "{e}");
    }

    #[test]
    fn internal_networks_never_masquerade() {
        let mut n = net(&[]);
        n.internal = true;
        assert!(!BridgeConfig::from_network(&n).unwrap().masquerade);
    }
}
