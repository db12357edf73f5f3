//! Removing a container that does not run: its sandbox (in cnetd), its directory, its name. Both
//! `cnet rm` ([`crate::lifecycle::remove`]) and a `--rm` container's supervisor ([`crate::supervisor`])
//! end a container this way.

use std::fs;
use std::io::ErrorKind;

use crate::container::Container;
use crate::error::{Error, Result, at};
use crate::network::Cnetd;
use crate::runtime::Runtime;

/// Removes a container that does not run: its sandbox (endpoints, leases, netns) and its files.
pub async fn remove_stopped(rt: &Runtime, c: &Container, cnetd: &mut Cnetd) -> Result<()> {
    cnetd.remove_sandbox(c.id()).await?;
    match fs::remove_dir_all(&c.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io { context: at("removing", &c.dir), source: e }),
    }
    rt.release_name(c.name(), c.id());
    Ok(())
}
