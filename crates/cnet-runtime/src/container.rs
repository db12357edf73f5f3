//! A container as found on disk, and how it is read.
//!
//! A container directory holds `config.json` (written once), `state.json` (see [`crate::state`]),
//! `container.log` (JSON lines), `hostname`, `hosts`, `resolv.conf` (bind-mounted into the
//! container), `upper/` and `work/` (the overlay's writable layer), `rootfs/` (its mount point, in
//! the container's mount namespace only) and `supervisor.sock` while a supervisor runs.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result, at};
use crate::spec::ContainerConfig;
use crate::state::State;

pub const CONFIG_FILE: &str = "config.json";

/// A container as found on disk.
#[derive(Debug, Clone)]
pub struct Container {
    pub config: ContainerConfig,
    /// Reconciled with the processes that really run (see [`State::reconciled`]).
    pub state: State,
    pub dir: PathBuf,
}

impl Container {
    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Reads the record again (after a command changed it).
    pub fn reload(&self) -> Result<Container> {
        load(&self.dir)
    }
}

/// Loads the container in `dir`.
pub fn load(dir: &Path) -> Result<Container> {
    let path = dir.join(CONFIG_FILE);
    let text = fs::read(&path).context(|| at("reading", &path))?;
    let config: ContainerConfig = serde_json::from_slice(&text).context(|| at("parsing", &path))?;
    let state = State::load(dir).unwrap_or_default().reconciled(&config.id);
    Ok(Container { config, state, dir: dir.to_path_buf() })
}
