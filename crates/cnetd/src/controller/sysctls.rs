//! A sandbox's `--sysctl`s, written inside its namespace: those of the whole namespace when the
//! sandbox is made, those of one interface (`net.ipv4.conf.eth1.forwarding`) when that interface
//! joins it (see `cnet_core::sysctl`). A key the kernel does not have, or a value it refuses, is
//! the user's error and names the key.

use std::collections::BTreeMap;
use std::path::Path;

use cnet_core::{Error, Result, Sandbox};

/// Writes the sysctls of the whole namespace (not those of one interface) at `netns_path`.
pub(super) fn write_namespace(netns_path: &Path, sysctls: &BTreeMap<String, String>) -> Result<()> {
    let these = sysctls.iter().filter(|(k, _)| cnet_core::sysctl::interface_of(k).is_none());
    write(netns_path, these.map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// Writes the sandbox's sysctls of interface `ifname`, which has just joined it.
pub(super) fn write_interface(sandbox: &Sandbox, ifname: &str) -> Result<()> {
    let these = sandbox.sysctls.iter().filter(|(k, _)| cnet_core::sysctl::interface_of(k) == Some(ifname));
    write(Path::new(&sandbox.netns_path), these.map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// One throwaway thread in the namespace writes them in order, stopping at the first refused.
fn write(netns_path: &Path, sysctls: Vec<(String, String)>) -> Result<()> {
    if sysctls.is_empty() {
        return Ok(());
    }
    let written = cnet_kernel::netns::run_in(netns_path, move || {
        for (key, value) in sysctls {
            if let Err(e) = cnet_kernel::set_sysctl(&key, &value) {
                return Err(Box::new((key, value, e)));
            }
            tracing::debug!(%key, %value, "sysctl written in the sandbox");
        }
        Ok(())
    })
    .map_err(|e| Error::internal(format!("entering namespace {}: {e}", netns_path.display())))?;
    written.map_err(|refused| {
        let (key, value, e) = *refused;
        match e.errno() {
            Some(nix::libc::ENOENT) => {
                Error::invalid(format!("sysctl {key:?} does not exist in a container's network namespace"))
            }
            Some(nix::libc::EINVAL | nix::libc::ERANGE) => {
                Error::invalid(format!("invalid value {value:?} for sysctl {key}"))
            }
            Some(nix::libc::EPERM | nix::libc::EACCES) => {
                Error::invalid(format!("sysctl {key} cannot be written in a container's network namespace"))
            }
            _ => Error::internal(format!("writing sysctl {key}={value}: {e}")),
        }
    })
}
