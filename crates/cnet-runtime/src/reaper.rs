//! Finding and removing what a killed process left: a creation cut short (a directory without
//! `config.json`), a `run` whose CLI died before its container started (the [`RUN_PENDING`]
//! marker is still there), and a `--rm` container whose supervisor died before removing it.
//!
//! Whoever works on a container directory holds a shared `flock` on it ([`DirLock`]): the CLI
//! from the creation until its `run` has a started container, the supervisor for its whole life,
//! `rm` while it removes. The kernel drops the lock with the process, so a directory on which an
//! exclusive lock can be taken has nobody working on it, and its state on disk says all there is.
//! Sharing the lock lets the CLI hand the container to its supervisor with no moment unlocked.

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::container::{CONFIG_FILE, load};
use crate::error::{Error, Result, at};
use crate::network::Cnetd;
use crate::runtime::Runtime;

/// A container directory is made under this prefix and locked before it is renamed to its id; one
/// left under it is a creation killed in its first instant.
pub const TMP_PREFIX: &str = ".new-";

/// Present from the creation of a container by `run` until it has started: a directory that has
/// it and nobody's lock is a `run` whose CLI was killed.
pub const RUN_PENDING: &str = "run.pending";

/// A shared lock on a container directory: "somebody is working on this container".
#[derive(Debug)]
pub struct DirLock {
    _flock: Flock<File>,
}

impl DirLock {
    /// Takes the shared lock on `dir` (it never waits: shared locks only wait for the reaper's
    /// exclusive one, which is held for a moment and never blocks).
    pub fn shared(dir: &Path) -> Result<DirLock> {
        let mut file = File::open(dir).map_err(|e| Error::Io { context: at("opening", dir), source: e })?;
        loop {
            match Flock::lock(file, FlockArg::LockSharedNonblock) {
                Ok(flock) => return Ok(DirLock { _flock: flock }),
                Err((again, nix::errno::Errno::EWOULDBLOCK)) => {
                    file = again;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err((_, errno)) => {
                    return Err(Error::Io { context: at("locking", dir), source: std::io::Error::from(errno) });
                }
            }
        }
    }
}

/// Why a container directory is abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abandoned {
    /// No `config.json`: its creation was cut short.
    Creation,
    /// `run` created it but died before it started.
    Run,
    /// A `--rm` container that ran and is not running, but was not removed.
    AutoRemove,
}

/// What to reap in one container directory: the exclusive lock (held while it is reaped) and why.
struct Orphan {
    id: String,
    dir: PathBuf,
    why: Abandoned,
    _lock: Flock<File>,
}

/// The exclusive lock on a directory that nobody works on (`None` when somebody does, or it is
/// gone).
fn lock_unused(dir: &Path) -> Option<Flock<File>> {
    File::open(dir).ok().and_then(|f| Flock::lock(f, FlockArg::LockExclusiveNonblock).ok())
}

/// Whether container directory `dir` is abandoned; if so, it stays locked until reaped.
fn orphan(dir: &Path) -> Option<Orphan> {
    let lock = lock_unused(dir)?;
    let why = if !dir.join(CONFIG_FILE).exists() {
        Abandoned::Creation
    } else if dir.join(RUN_PENDING).exists() {
        Abandoned::Run
    } else {
        let c = load(dir).ok()?;
        let ran = !c.state.started_at.is_empty();
        if !(c.config.auto_remove && ran && !c.state.is_running()) {
            return None;
        }
        Abandoned::AutoRemove
    };
    let id = dir.file_name()?.to_string_lossy().into_owned();
    Some(Orphan { id, dir: dir.to_path_buf(), why, _lock: lock })
}

/// Checks one container (by id) and reaps it if it is abandoned; whether it was.
pub async fn reap_one(rt: &Runtime, cnetd: &mut Cnetd, id: &str) -> Result<bool> {
    match orphan(&rt.container_dir(id)) {
        Some(o) => {
            remove(rt, cnetd, o).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Reaps every abandoned container, and name claims whose container directory is gone; the ids
/// reaped. cnetd is dialled only when there is something to reap.
pub async fn reap(rt: &Runtime, socket: &Path) -> Result<Vec<String>> {
    let dir = rt.root().join("containers");
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| Error::Io { context: at("reading", &dir), source: e })? {
        let entry = entry.map_err(|e| Error::Io { context: at("reading", &dir), source: e })?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            // Nothing but the empty directory exists yet: no sandbox, no name.
            if let Some(_lock) = lock_unused(&path) {
                let _ = fs::remove_dir_all(&path);
            }
        } else if let Some(o) = orphan(&path) {
            found.push(o);
        }
    }
    let mut reaped = Vec::new();
    if !found.is_empty() {
        let mut cnetd = Cnetd::connect(socket).await?;
        for o in found {
            let id = o.id.clone();
            remove(rt, &mut cnetd, o).await?;
            reaped.push(id);
        }
    }
    rt.release_dangling_names()?;
    Ok(reaped)
}

/// Its sandbox in cnetd (endpoints, leases, published ports, DNS names, netns), then its name
/// (while its directory still exists, so nobody takes the name over meanwhile), then the directory.
async fn remove(rt: &Runtime, cnetd: &mut Cnetd, o: Orphan) -> Result<()> {
    tracing::info!(container = %o.id, why = ?o.why, "reaping an abandoned container");
    cnetd.remove_sandbox(&o.id).await?;
    if let Ok(c) = load(&o.dir) {
        rt.release_name(c.name(), &o.id);
    }
    match fs::remove_dir_all(&o.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::Io { context: at("removing", &o.dir), source: e }),
    }
    rt.release_dangling_names()?;
    Ok(())
}
