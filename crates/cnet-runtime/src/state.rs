//! The changing part of a container's record, `state.json`: written only by the container's
//! supervisor while it runs (and by the CLI before one exists), always atomically (write a
//! temporary file, rename it over the old one).

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Context, Result, at};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    /// Exited, waiting for the restart policy's back-off.
    Restarting,
    Exited,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// The container's init process (pid 1 inside), as the host sees it; 0 when not running.
    pub pid: i32,
    /// The supervisor process; 0 when none runs.
    pub supervisor_pid: i32,
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    /// Stopped by `cnet stop`/`kill`: the restart policy does not apply.
    pub manually_stopped: bool,
    /// Why the last start failed.
    pub error: String,
}

pub const STATE_FILE: &str = "state.json";

impl State {
    pub fn load(dir: &Path) -> Result<State> {
        let path = dir.join(STATE_FILE);
        let text = fs::read(&path).context(|| at("reading", &path))?;
        serde_json::from_slice(&text).context(|| at("parsing", &path))
    }

    /// Writes `state.json` atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(STATE_FILE), &serde_json::to_vec(self).expect("state serializes"))
    }

    /// The state as it really is: a container whose supervisor died (killed, or the machine
    /// rebooted) is not running any more, whatever the file says.
    pub fn reconciled(mut self, id: &str) -> State {
        if matches!(self.status, Status::Running | Status::Restarting) && !supervisor_alive(self.supervisor_pid, id) {
            self.status = Status::Exited;
            if self.exit_code == 0 {
                self.exit_code = 137;
            }
            self.pid = 0;
            self.supervisor_pid = 0;
        }
        self
    }

    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Restarting)
    }
}

/// Whether `pid` is the supervisor of container `id` (a recycled pid is not).
pub fn supervisor_alive(pid: i32, id: &str) -> bool {
    if pid <= 0 {
        return false;
    }
    match fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let program = args.first().and_then(|a| a.rsplit(|b| *b == b'/').next());
            // `cnet __supervise ID`: a supervisor started before cnet-supervise existed, which
            // keeps its container until that ends.
            let supervisor =
                program == Some(crate::SUPERVISOR_BINARY.as_bytes()) || args.contains(&b"__supervise".as_slice());
            supervisor && args.contains(&id.as_bytes())
        }
        Err(_) => false,
    }
}

/// Writes `path` by renaming a fully written temporary file over it.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::File::create(&tmp).context(|| at("creating", &tmp))?;
    f.write_all(data).context(|| at("writing", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).context(|| at("renaming into place", path))
}
