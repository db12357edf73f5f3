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
#[tracing::instrument(level = "debug", name = "remove", skip_all, fields(container = %c.id()))]
pub async fn remove_stopped(rt: &Runtime, c: &Container, cnetd: &mut Cnetd) -> Result<()> {
    // Somebody works on it: the reaper leaves it alone meanwhile.
    let _lock = match crate::reaper::DirLock::shared(&c.dir) {
        Ok(lock) => Some(lock),
        Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    cnetd.remove_sandbox(c.id()).await?;
    match fs::remove_dir_all(&c.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io { context: at("removing", &c.dir), source: e }),
    }
    rt.release_name(c.name(), c.id());
    cnetd.report("destroy", &c.config, &[]).await;
    Ok(())
}
