//! The runtime's directory: `<root>/containers/<id>/` (one per container, see [`crate::container`]),
//! `<root>/names/<name>` (a symlink to the id: creating it is how a name is claimed, atomically),
//! `<root>/images/` (the image store, [`cnet_image`]).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use cnet_image::ImageStore;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;

use crate::container::{CONFIG_FILE, Container, load};
use crate::error::{Context, Error, Result, at};

/// The lock taken by every change to `names/` but a plain claim (see [`Runtime::release_name`]).
const NAMES_LOCK: &str = "names.lock";

/// The runtime: where its state lives, the cnetd socket, and how to start a supervisor.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: PathBuf,
    socket: PathBuf,
    /// The CLI's binary, next to which the supervisor binary is looked for.
    cli_exe: PathBuf,
}

impl Runtime {
    /// Opens (creating if needed) the runtime's directories under `root`.
    pub fn open(root: &Path, socket: &Path, cli_exe: &Path) -> Result<Runtime> {
        for sub in ["containers", "names"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).context(|| at("creating", &dir))?;
        }
        Ok(Runtime { root: root.to_path_buf(), socket: socket.to_path_buf(), cli_exe: cli_exe.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The supervisor binary (`cnet-supervise`) started for each container: looked for only when
    /// one is started, so commands that start none work without it.
    pub fn supervisor_exe(&self) -> Result<PathBuf> {
        crate::find_supervisor(&self.cli_exe)
    }

    pub fn images(&self) -> Result<ImageStore> {
        Ok(ImageStore::open(&self.root.join("images"))?)
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// Every complete container (directories without a `config.json` are creations in progress).
    pub fn list(&self) -> Result<Vec<Container>> {
        let dir = self.root.join("containers");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).context(|| at("reading", &dir))? {
            let entry = entry.context(|| at("reading", &dir))?;
            match load(&entry.path()) {
                Ok(c) => out.push(c),
                Err(Error::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| b.config.created.cmp(&a.config.created));
        Ok(out)
    }

    /// Docker's lookup: a full id, then a name, then a unique id prefix.
    pub fn find(&self, reference: &str) -> Result<Container> {
        let reference = reference.strip_prefix('/').unwrap_or(reference);
        let missing = || Error::NoSuchContainer(reference.to_string());
        if reference.is_empty() || reference.contains("..") || reference.contains('/') {
            return Err(missing());
        }
        if reference.len() == 64
            && let Ok(c) = load(&self.container_dir(reference))
        {
            return Ok(c);
        }
        if let Ok(id) = fs::read_link(self.root.join("names").join(reference))
            && let Ok(c) = load(&self.container_dir(&id.to_string_lossy()))
        {
            return Ok(c);
        }
        if !reference.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(missing());
        }
        let dir = self.root.join("containers");
        let mut hits = Vec::new();
        for entry in fs::read_dir(&dir).context(|| at("reading", &dir))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(reference) && entry.path().join(CONFIG_FILE).exists() {
                hits.push(name);
            }
        }
        match hits.len() {
            0 => Err(missing()),
            1 => load(&self.container_dir(&hits[0])),
            _ => Err(Error::Invalid(format!("multiple IDs found with provided prefix: {reference}"))),
        }
    }

    /// Claims `name` for container `id`; Docker's message if another container has it (the
    /// holder's id is [`Runtime::name_holder`]).
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<()> {
        let link = self.root.join("names").join(name);
        loop {
            match std::os::unix::fs::symlink(id, &link) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    let _names = self.lock_names()?;
                    let owner = self.name_holder(name).unwrap_or_default();
                    if !owner.is_empty() && self.container_dir(&owner).exists() {
                        return Err(Error::Conflict(format!(
                            "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". \
                             You have to remove (or rename) that container to be able to reuse that name."
                        )));
                    }
                    // A claim whose container directory is gone is nobody's: take it over.
                    let _ = fs::remove_file(&link);
                }
                Err(e) => return Err(Error::Io { context: at("creating", &link), source: e }),
            }
        }
    }

    /// The id of the container that claimed `name`, if any.
    pub fn name_holder(&self, name: &str) -> Option<String> {
        fs::read_link(self.root.join("names").join(name)).ok().map(|p| p.to_string_lossy().into_owned())
    }

    /// Gives `name` up, if container `id` holds it.
    pub fn release_name(&self, name: &str, id: &str) {
        let Ok(_names) = self.lock_names() else { return };
        let link = self.root.join("names").join(name);
        if fs::read_link(&link).is_ok_and(|p| p.as_os_str() == id) {
            let _ = fs::remove_file(&link);
        }
    }

    /// Removes every name claim whose container directory is gone (a process killed between
    /// removing a container's directory and giving up its name); the names released.
    pub fn release_dangling_names(&self) -> Result<Vec<String>> {
        let _names = self.lock_names()?;
        let dir = self.root.join("names");
        let mut released = Vec::new();
        for entry in fs::read_dir(&dir).context(|| at("reading", &dir))? {
            let entry = entry.context(|| at("reading", &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(target) = fs::read_link(entry.path()) else { continue };
            if !self.container_dir(&target.to_string_lossy()).exists() {
                let _ = fs::remove_file(entry.path());
                released.push(name);
            }
        }
        Ok(released)
    }

    /// Every change to `names/` other than a plain claim (taking a dead claim over, giving one
    /// up) happens under this lock: otherwise one process could read a dead claim, another
    /// replace it with a live one, and the first remove the live one.
    fn lock_names(&self) -> Result<Flock<File>> {
        let path = self.root.join(NAMES_LOCK);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .context(|| at("opening", &path))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| Error::Io { context: at("locking", &path), source: std::io::Error::from(errno) })
    }

    /// Whether any container uses the image with this id.
    pub fn containers_using_image(&self, image_id: &str) -> Result<Vec<Container>> {
        Ok(self.list()?.into_iter().filter(|c| c.config.image_id == image_id).collect())
    }
}
