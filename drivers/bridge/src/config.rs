//! The bridge driver's options, parsed and checked into a typed value before anything is made.

use cnet_core::options::{self, parse_bool, parse_mtu, validate_ifname};
use cnet_core::{Error, Network, Result};
pub use cnet_firewall::GatewayMode;

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
    options::BRIDGE_TRUSTED_HOST_INTERFACES,
];

/// A gateway mode option (default `nat`); `isolated` only on an internal network, as in Docker.
pub fn gateway_mode(net: &Network, key: &str) -> Result<GatewayMode> {
    let Some(value) = net.option(key) else { return Ok(GatewayMode::Nat) };
    let mode = GatewayMode::parse(value).ok_or_else(|| {
        Error::invalid(format!("invalid value {value:?} for option {key}: expected {}", GatewayMode::NAMES.join(", ")))
    })?;
    if mode == GatewayMode::Isolated && !net.internal {
        return Err(Error::invalid(format!("{key}=isolated needs an internal network (--internal)")));
    }
    Ok(mode)
}

/// `trusted_host_interfaces`: interface names separated by `:`, each a valid name.
pub fn trusted_interfaces(net: &Network) -> Result<Vec<String>> {
    let key = options::BRIDGE_TRUSTED_HOST_INTERFACES;
    let Some(value) = net.option(key) else { return Ok(vec![]) };
    let mut names: Vec<String> = vec![];
    for name in value.split(':').filter(|n| !n.is_empty()) {
        validate_ifname(key, name)?;
        // nft would read a trailing `*` as a wildcard: only plain names.
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err(Error::invalid(format!(
                "invalid interface name {name:?} in option {key}: expected letters, digits, '-', '_' or '.'"
            )));
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub device: String,
    pub mtu: Option<u32>,
    pub icc: bool,
    pub masquerade: bool,
    pub host_binding_ipv4: Option<std::net::Ipv4Addr>,
    /// Gateway modes for IPv4 / IPv6 (default `nat`: only published ports from outside).
    pub gateway_v4: GatewayMode,
    pub gateway_v6: GatewayMode,
    /// Host interfaces from which published container ports are reached directly.
    pub trusted_interfaces: Vec<String>,
}

impl BridgeConfig {
    pub fn gateway(&self, v4: bool) -> GatewayMode {
        if v4 { self.gateway_v4 } else { self.gateway_v6 }
    }
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
            gateway_v4: gateway_mode(net, options::BRIDGE_GATEWAY_MODE_IPV4)?,
            gateway_v6: gateway_mode(net, options::BRIDGE_GATEWAY_MODE_IPV6)?,
            trusted_interfaces: trusted_interfaces(net)?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A bridge network with these options, for the crate's tests.
    pub(crate) fn net(opts: &[(&str, &str)]) -> Network {
        Network {
            options: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Network::new("0123456789abcdef".repeat(4).into(), "n", "bridge")
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
    fn gateway_modes_and_trusted_interfaces() {
        let c = BridgeConfig::from_network(&net(&[])).unwrap();
        assert_eq!((c.gateway_v4, c.gateway_v6), (GatewayMode::Nat, GatewayMode::Nat));
        assert!(c.trusted_interfaces.is_empty());
        let c = BridgeConfig::from_network(&net(&[
            ("com.docker.network.bridge.gateway_mode_ipv4", "routed"),
            ("com.docker.network.bridge.gateway_mode_ipv6", "nat-unprotected"),
            ("com.docker.network.bridge.trusted_host_interfaces", "vxlan.1:eth3:eth3"),
        ]))
        .unwrap();
        assert_eq!((c.gateway_v4, c.gateway_v6), (GatewayMode::Routed, GatewayMode::NatUnprotected));
        assert_eq!(c.trusted_interfaces, ["vxlan.1", "eth3"]);
        let e =
            BridgeConfig::from_network(&net(&[("com.docker.network.bridge.gateway_mode_ipv4", "open")])).unwrap_err();
        assert!(e.to_string().contains("\"open\"") && e.to_string().contains("routed"), "{e}");
        let isolated = [("com.docker.network.bridge.gateway_mode_ipv4", "isolated")];
        let e = BridgeConfig::from_network(&net(&isolated)).unwrap_err();
        assert!(e.to_string().contains("internal"), "{e}");
        let mut internal = net(&isolated);
        internal.internal = true;
        assert_eq!(BridgeConfig::from_network(&internal).unwrap().gateway_v4, GatewayMode::Isolated);
        let e = BridgeConfig::from_network(&net(&[("com.docker.network.bridge.trusted_host_interfaces", "eth0:a*")]))
            .unwrap_err();
        assert!(e.to_string().contains("a*"), "{e}");
    }

    #[test]
    fn internal_networks_never_masquerade() {
        let mut n = net(&[]);
        n.internal = true;
        assert!(!BridgeConfig::from_network(&n).unwrap().masquerade);
    }
}
