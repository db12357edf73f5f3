//! Well-known option keys, Docker's names, so scripts written for Docker work unchanged.

pub const BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub const BRIDGE_ENABLE_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const BRIDGE_ENABLE_IP_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub const BRIDGE_HOST_BINDING_IPV4: &str = "com.docker.network.bridge.host_binding_ipv4";
pub const BRIDGE_DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";
pub const DRIVER_MTU: &str = "com.docker.network.driver.mtu";
/// How a bridge network's gateway treats traffic from outside, per family (Docker 28): `nat`
/// (default: only published ports reach containers), `nat-unprotected` (anything routed to them),
/// `routed` (no NAT; published container ports and ICMP at the containers' own addresses),
/// `isolated` (internal networks only: no address on the bridge).
pub const BRIDGE_GATEWAY_MODE_IPV4: &str = "com.docker.network.bridge.gateway_mode_ipv4";
pub const BRIDGE_GATEWAY_MODE_IPV6: &str = "com.docker.network.bridge.gateway_mode_ipv6";
/// Host interfaces, `:`-separated, from which published container ports may be reached directly
/// at the containers' addresses (Docker 28).
pub const BRIDGE_TRUSTED_HOST_INTERFACES: &str = "com.docker.network.bridge.trusted_host_interfaces";
/// An overlay network's VXLAN id (Docker takes a list, one per subnet; cnet overlay networks have
/// one IPv4 subnet, so one VNI). The cluster store picks one when it is not given.
pub const OVERLAY_VNI: &str = "com.docker.network.driver.overlay.vxlanid_list";
/// Docker's `-o encrypted` of overlay networks (a bare option, any value): traffic between hosts
/// is encrypted. The overlay driver validates it; the cluster store reads it to keep a secret for
/// the network.
pub const OVERLAY_ENCRYPTED: &str = "encrypted";
/// An endpoint's interface name inside the sandbox (Docker 28's endpoint driver option), instead
/// of the next free `ethN`; taken by the controller for every driver.
pub const ENDPOINT_IFNAME: &str = "com.docker.network.endpoint.ifname";
/// VXLAN carries 24 bits of VNI.
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// Refuses any option of `network` that `driver` does not know, naming it and listing the known ones.
pub fn check_known(driver: &str, network: &crate::Network, known: &[&str]) -> crate::Result<()> {
    match network.options.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(crate::Error::invalid(format!(
            "unknown option {key:?} for the {driver} driver: known options are {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Parses a boolean option as Docker does (true/false/1/0), naming the key on error.
pub fn parse_bool(key: &str, value: &str) -> crate::Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(crate::Error::invalid(format!("invalid value {value:?} for option {key}: expected true or false"))),
    }
}

/// Parses an MTU option: 68 to 65535.
pub fn parse_mtu(key: &str, value: &str) -> crate::Result<u32> {
    match value.parse::<u32>() {
        Ok(m) if (68..=65535).contains(&m) => Ok(m),
        _ => Err(crate::Error::invalid(format!(
            "invalid value {value:?} for option {key}: expected an MTU from 68 to 65535"
        ))),
    }
}

/// Parses the [`OVERLAY_VNI`] option: one VXLAN id, 1 to [`MAX_VNI`].
pub fn parse_vni(value: &str) -> crate::Result<u32> {
    match value.trim().parse::<u32>() {
        Ok(vni) if (1..=MAX_VNI).contains(&vni) => Ok(vni),
        Ok(_) => Err(crate::Error::invalid(format!(
            "invalid {OVERLAY_VNI} {value:?}: a VXLAN id is between 1 and {MAX_VNI}"
        ))),
        Err(_) => Err(crate::Error::invalid(format!(
            "invalid {OVERLAY_VNI} {value:?}: expected one VXLAN id between 1 and {MAX_VNI}"
        ))),
    }
}

/// Whether the network asked for encryption ([`OVERLAY_ENCRYPTED`]).
pub fn is_encrypted(network: &crate::Network) -> bool {
    network.options.contains_key(OVERLAY_ENCRYPTED)
}

/// The VNI recorded on a network (its [`OVERLAY_VNI`] option), if it has a valid one.
pub fn vni_of(network: &crate::Network) -> Option<u32> {
    network.option(OVERLAY_VNI).and_then(|v| parse_vni(v).ok())
}

/// Linux interface names: 1 to 15 bytes, no '/', ':', whitespace.
pub fn validate_ifname(key: &str, name: &str) -> crate::Result<()> {
    if name.is_empty()
        || name.len() > 15
        || name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
        || name == "."
        || name == ".."
    {
        return Err(crate::Error::invalid(format!(
            "invalid interface name {name:?} for {key}: 1 to 15 characters, no '/', ':' or spaces"
        )));
    }
    Ok(())
}

/// Checks an endpoint's driver options: [`ENDPOINT_IFNAME`] (every driver) and the keys the
/// network's driver declares (`driver_known`); any other key is refused by name. Returns the
/// interface name asked for, if any.
pub fn endpoint_ifname(
    opts: &std::collections::BTreeMap<String, String>,
    network: &crate::Network,
    driver_known: &[&str],
) -> crate::Result<Option<String>> {
    if let Some(key) = opts.keys().find(|k| k.as_str() != ENDPOINT_IFNAME && !driver_known.contains(&k.as_str())) {
        let mut known = vec![ENDPOINT_IFNAME];
        known.extend_from_slice(driver_known);
        return Err(crate::Error::invalid(format!(
            "unknown endpoint driver option {key:?} for network {} (driver {}): known options are {}",
            network.name,
            network.driver,
            known.join(", ")
        )));
    }
    match opts.get(ENDPOINT_IFNAME) {
        Some(name) => {
            validate_ifname(ENDPOINT_IFNAME, name)?;
            Ok(Some(name.clone()))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_options_are_the_ifname_and_what_the_driver_declares() {
        let net = crate::Network::new("1".repeat(64).into(), "lab", "bridge");
        let opts = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(endpoint_ifname(&opts(&[]), &net, &[]).unwrap(), None);
        assert_eq!(endpoint_ifname(&opts(&[(ENDPOINT_IFNAME, "eth3")]), &net, &[]).unwrap().as_deref(), Some("eth3"));
        assert_eq!(endpoint_ifname(&opts(&[("x.y", "1")]), &net, &["x.y"]).unwrap(), None);
        let e = endpoint_ifname(&opts(&[("com.example.speed", "fast")]), &net, &[]).unwrap_err().to_string();
        assert!(e.contains("\"com.example.speed\"") && e.contains("network lab") && e.contains(ENDPOINT_IFNAME), "{e}");
        for bad in ["", "a/b", "eth 0", "sixteen-chars-xx", "..", "a:b"] {
            let e = endpoint_ifname(&opts(&[(ENDPOINT_IFNAME, bad)]), &net, &[]).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")) && e.contains(ENDPOINT_IFNAME), "{e}");
        }
    }

    #[test]
    fn vni_option_is_checked() {
        assert_eq!(parse_vni("4200").unwrap(), 4200);
        assert_eq!(parse_vni(" 16777215 ").unwrap(), MAX_VNI);
        for bad in ["0", "16777216", "x", "1,2", ""] {
            let e = parse_vni(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")) && e.to_string().contains(OVERLAY_VNI), "{e}");
        }
    }
}
