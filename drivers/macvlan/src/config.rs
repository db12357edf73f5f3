//! The macvlan driver's options, parsed and checked into a typed value before anything is made.

use cnet_core::options::{self, parse_mtu, validate_ifname};
use cnet_core::{Error, MacvlanMode, Network, Result};

/// `-o parent=IFACE`: the link the network's macvlan links hang off (Docker's name).
pub const PARENT: &str = "parent";
/// `-o macvlan_mode=bridge|private|vepa|passthru` (Docker's name).
pub const MACVLAN_MODE: &str = "macvlan_mode";

const KNOWN: &[&str] = &[PARENT, MACVLAN_MODE, options::DRIVER_MTU];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacvlanConfig {
    pub parent: String,
    pub mode: MacvlanMode,
    pub mtu: Option<u32>,
}

impl MacvlanConfig {
    pub fn from_network(net: &Network) -> Result<MacvlanConfig> {
        cnet_core::options::check_known("macvlan", net, KNOWN)?;
        let parent = match net.option(PARENT) {
            Some(p) if !p.is_empty() => p.to_string(),
            _ if net.internal => {
                return Err(Error::invalid(
                    "an --internal macvlan network needs a parent too (-o parent=IFACE): cnet makes no \
                     dummy parent links",
                ));
            }
            _ => {
                return Err(Error::invalid(
                    "the macvlan driver needs a parent interface: pass -o parent=IFACE (or IFACE.VLAN for \
                     an 802.1q sub-interface)",
                ));
            }
        };
        validate_ifname(PARENT, &parent)?;
        if parent == "lo" {
            return Err(Error::invalid("invalid parent \"lo\": the loopback interface cannot be a macvlan parent"));
        }
        let mode = match net.option(MACVLAN_MODE) {
            None | Some("") => MacvlanMode::default(),
            Some(m) => MacvlanMode::parse(m).ok_or_else(|| {
                Error::invalid(format!(
                    "invalid value {m:?} for option {MACVLAN_MODE}: expected one of {}",
                    MacvlanMode::NAMES.join(", ")
                ))
            })?,
        };
        let mtu = net.option(options::DRIVER_MTU).map(|v| parse_mtu(options::DRIVER_MTU, v)).transpose()?;
        Ok(MacvlanConfig { parent, mode, mtu })
    }

    /// `IFACE.VLAN` (as Docker: one dot, a VLAN id from 1 to 4094): the base interface and the
    /// VLAN id of the sub-interface the driver makes when the parent does not exist.
    pub fn vlan(&self) -> Option<(&str, u16)> {
        parse_vlan(&self.parent)
    }
}

pub fn parse_vlan(name: &str) -> Option<(&str, u16)> {
    let (base, id) = name.split_once('.')?;
    if base.is_empty() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: u16 = id.parse().ok()?;
    (1..=4094).contains(&id).then_some((base, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(opts: &[(&str, &str)]) -> Network {
        Network {
            options: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..Network::new("0123456789abcdef".repeat(4).into(), "n", "macvlan")
        }
    }

    #[test]
    fn defaults_and_modes() {
        let c = MacvlanConfig::from_network(&net(&[("parent", "up0")])).unwrap();
        assert_eq!(c, MacvlanConfig { parent: "up0".into(), mode: MacvlanMode::Bridge, mtu: None });
        for m in MacvlanMode::NAMES {
            let c = MacvlanConfig::from_network(&net(&[("parent", "up0"), ("macvlan_mode", m)])).unwrap();
            assert_eq!(c.mode.as_str(), m);
        }
        let c =
            MacvlanConfig::from_network(&net(&[("parent", "up0"), ("com.docker.network.driver.mtu", "1400")])).unwrap();
        assert_eq!(c.mtu, Some(1400));
    }

    #[test]
    fn bad_input_is_named() {
        let e = MacvlanConfig::from_network(&net(&[])).unwrap_err().to_string();
        assert!(e.contains("parent"), "{e}");
        let mut n = net(&[]);
        n.internal = true;
        let e = MacvlanConfig::from_network(&n).unwrap_err().to_string();
        assert!(e.contains("--internal") && e.contains("parent"), "{e}");
        let e = MacvlanConfig::from_network(&net(&[("parent", "up0"), ("macvlan_mode", "bridged")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"bridged\"") && e.contains("macvlan_mode"), "{e}");
        let e = MacvlanConfig::from_network(&net(&[("parent", "up0"), ("colour", "blue")])).unwrap_err().to_string();
        assert!(e.contains("\"colour\""), "{e}");
        let e = MacvlanConfig::from_network(&net(&[("parent", "a-name-that-is-too-long")])).unwrap_err().to_string();
        assert!(e.contains("a-name-that-is-too-long"), "{e}");
        assert!(MacvlanConfig::from_network(&net(&[("parent", "lo")])).is_err());
    }

    #[test]
    fn vlan_names() {
        assert_eq!(parse_vlan("eth0.10"), Some(("eth0", 10)));
        assert_eq!(parse_vlan("up0.4094"), Some(("up0", 4094)));
        for bad in ["eth0", "eth0.", ".10", "eth0.0", "eth0.4095", "eth0.1.2", "eth0.x", "eth0.+5"] {
            assert_eq!(parse_vlan(bad), None, "{bad}");
        }
    }
}
