//! `/proc/sys` of the calling thread's network namespace (`/proc/sys/net` follows the thread, so
//! run these through [`crate::netns::run_in`] for another namespace).

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use crate::{Error, Result, link::check_ifname};

const PROC_SYS: &str = "/proc/sys";

/// Writes `/proc/sys/<key with '.' replaced by '/'>` in the calling thread's namespace, e.g.
/// `set_sysctl("net.ipv4.ip_forward", "1")`.
///
/// As with `sysctl(8)`, a key that contains '/' is taken as a path below /proc/sys as it is, so
/// dots in interface names survive (`net/ipv4/conf/eth0.100/forwarding`); or use
/// [`set_interface_sysctl`].
pub fn set_sysctl(key: &str, value: &str) -> Result<()> {
    write(&sysctl_path(key)?, value)
}

/// Writes `/proc/sys/net/<family>/conf/<ifname>/<key>` (`family` is `"ipv4"` or `"ipv6"`); the
/// interface name may contain dots.
pub fn set_interface_sysctl(family: &str, ifname: &str, key: &str, value: &str) -> Result<()> {
    write(&interface_sysctl_path(family, ifname, key)?, value)
}

/// Reads a sysctl (same key syntax as [`set_sysctl`]), without the trailing newline.
pub fn get_sysctl(key: &str) -> Result<String> {
    let path = sysctl_path(key)?;
    let mut s = fs::read_to_string(&path).map_err(|error| Error::Sysctl { path, error })?;
    while s.ends_with('\n') {
        s.pop();
    }
    Ok(s)
}

fn write(path: &Path, value: &str) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|error| Error::Sysctl { path: path.to_path_buf(), error })
}

/// `net.ipv4.ip_forward` -> `/proc/sys/net/ipv4/ip_forward`; refuses anything that could leave
/// `/proc/sys`.
pub(crate) fn sysctl_path(key: &str) -> Result<PathBuf> {
    let sep = if key.contains('/') { '/' } else { '.' };
    let mut path = PathBuf::from(PROC_SYS);
    for part in key.split(sep) {
        if part.is_empty() || part == "." || part == ".." || part.contains('\0') {
            return Err(Error::invalid("sysctl key", key, "empty or relative component"));
        }
        path.push(part);
    }
    Ok(path)
}

pub(crate) fn interface_sysctl_path(family: &str, ifname: &str, key: &str) -> Result<PathBuf> {
    if family != "ipv4" && family != "ipv6" {
        return Err(Error::invalid("sysctl family", family, "must be \"ipv4\" or \"ipv6\""));
    }
    check_ifname(ifname)?;
    if key.is_empty() || key.contains(['/', '\0']) || key == "." || key == ".." {
        return Err(Error::invalid("sysctl key", key, "must be a single file name"));
    }
    Ok([PROC_SYS, "net", family, "conf", ifname, key].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_and_slashed_keys() {
        assert_eq!(sysctl_path("net.ipv4.ip_forward").unwrap(), Path::new("/proc/sys/net/ipv4/ip_forward"));
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.100/forwarding").unwrap(),
            Path::new("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
        );
        for bad in ["", "net..ipv4", "net/../../etc/passwd", "../x", "net.ipv4.", "/net/ipv4"] {
            assert!(sysctl_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn interface_keys() {
        assert_eq!(
            interface_sysctl_path("ipv6", "br.100", "accept_dad").unwrap(),
            Path::new("/proc/sys/net/ipv6/conf/br.100/accept_dad")
        );
        assert!(interface_sysctl_path("ipv5", "eth0", "x").is_err());
        assert!(interface_sysctl_path("ipv4", "..", "x").is_err());
        assert!(interface_sysctl_path("ipv4", "a/b", "x").is_err());
        assert!(interface_sysctl_path("ipv4", "eth0", "../x").is_err());
        assert!(interface_sysctl_path("ipv4", "eth0", "").is_err());
    }
}
