//! What the commands on the local runtime (containers, images, a container's networks) share: where
//! the runtime lives and where cnetd listens.

use std::path::PathBuf;

use anyhow::Context as _;
use cnet_runtime::Runtime;
use cnet_runtime::network::Cnetd;

use crate::cli::Cli;
use crate::client::Daemon;

/// What every command on the local runtime needs: where the runtime lives and where cnetd listens.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub root: PathBuf,
    pub socket: PathBuf,
}

impl Ctx {
    pub fn new(cli: &Cli) -> Ctx {
        Ctx { root: cli.root.clone(), socket: cli.host.clone() }
    }

    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        let exe = std::env::current_exe().context("finding the cnet binary")?;
        Ok(Runtime::open(&self.root, &self.socket, &exe)?)
    }

    pub async fn cnetd(&self) -> anyhow::Result<Cnetd> {
        Ok(Cnetd::new(&Daemon::connect(&self.socket).await?))
    }
}
