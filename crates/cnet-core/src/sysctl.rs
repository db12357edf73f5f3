//! A container's `--sysctl KEY=VALUE`, as Docker takes those of the network namespace: only
//! `net.*` keys (the others belong to namespaces cnet does not give containers, or to the host),
//! never with `--network host` (they would change the host's own). Keys are dotted
//! (`net.ipv4.ip_forward`) or, as with `sysctl(8)`, slashed when a part holds a dot
//! (`net/ipv4/conf/eth0.100/forwarding`).
//!
//! Keys of one interface (`net.ipv4.conf.eth1.forwarding`, `net.ipv6.neigh.eth1.*`) are written
//! when that interface joins the sandbox, since no interface but `lo` exists when the sandbox is
//! made; the others (`all`, `default`, global keys) when it is made.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// The parts of a key (split at '/' if it has one, else at '.').
fn parts(key: &str) -> Vec<&str> {
    let sep = if key.contains('/') { '/' } else { '.' };
    key.split(sep).collect()
}

/// Checks a container's sysctls before anything is made: `net.*` keys, well formed, and none on
/// the host's namespace. Errors name the key.
pub fn check(sysctls: &BTreeMap<String, String>, host_network: bool) -> Result<()> {
    for key in sysctls.keys() {
        let parts = parts(key);
        if parts.iter().any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\0')) || parts.len() < 2 {
            return Err(Error::invalid(format!("invalid sysctl {key:?}: expected a key such as net.ipv4.ip_forward")));
        }
        if parts[0] != "net" {
            return Err(Error::invalid(format!(
                "sysctl {key:?} is not allowed: only network namespace sysctls (net.*) can be set for a container"
            )));
        }
        if host_network {
            return Err(Error::invalid(format!(
                "sysctl {key:?} is not allowed in host network mode: it would change the host's own"
            )));
        }
    }
    Ok(())
}

/// The interface a key belongs to (`net.ipv4.conf.eth1.forwarding` -> `eth1`), `None` for keys of
/// the whole namespace (including `all` and `default`, and `lo`'s, which exists from the start).
pub fn interface_of(key: &str) -> Option<&str> {
    match parts(key).as_slice() {
        ["net", "ipv4" | "ipv6", "conf" | "neigh", ifname, _, ..] if !["all", "default", "lo"].contains(ifname) => {
            Some(ifname)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn only_net_keys_and_not_on_the_host() {
        let router = map(&[("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.rp_filter", "0")]);
        check(&router, false).unwrap();
        let e = check(&router, true).unwrap_err().to_string();
        assert!(e.contains("net.ipv4.conf.all.rp_filter") && e.contains("host network"), "{e}");
        for bad in ["kernel.shmmax", "fs.mqueue.msg_max", "vm.swappiness"] {
            let e = check(&map(&[(bad, "1")]), false).unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("net.*"), "{e}");
        }
        for bad in ["net", "net..ipv4", "net/../etc", "", "net.ipv4."] {
            let e = check(&map(&[(bad, "1")]), false).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        check(&map(&[("net/ipv4/conf/eth0.100/forwarding", "1")]), false).unwrap();
    }

    #[test]
    fn keys_of_one_interface() {
        assert_eq!(interface_of("net.ipv4.conf.eth1.forwarding"), Some("eth1"));
        assert_eq!(interface_of("net.ipv6.neigh.eth3.base_reachable_time_ms"), Some("eth3"));
        assert_eq!(interface_of("net/ipv4/conf/eth0.100/rp_filter"), Some("eth0.100"));
        for whole in [
            "net.ipv4.ip_forward",
            "net.ipv4.conf.all.rp_filter",
            "net.ipv6.conf.default.disable_ipv6",
            "net.ipv4.conf.lo.rp_filter",
            "net.core.somaxconn",
            "net.ipv4.conf.eth1",
        ] {
            assert_eq!(interface_of(whole), None, "{whole}");
        }
    }
}
