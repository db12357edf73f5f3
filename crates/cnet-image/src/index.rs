//! `repositories.json`: which tag names which image, and which images the store holds. It is the only
//! record that changes; it is replaced atomically, and every change is made under the store's lock
//! (`flock` on `.lock`), so concurrent CLIs never lose each other's tags. Readers need no lock.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::error::{Context, Error, Result};
use super::fsutil::write_atomic;

pub(crate) const INDEX_FILE: &str = "repositories.json";
pub(crate) const LOCK_FILE: &str = ".lock";

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Index {
    /// `name:tag` → image id.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Every image the store holds, tagged or not. A directory not listed here is a left-over.
    #[serde(default)]
    pub images: BTreeSet<String>,
    /// `name@sha256:…` (the manifest digest an image was pulled by) → image id. A digest does not keep
    /// an image: it goes with the image's last tag.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digests: BTreeMap<String, String>,
}

impl Index {
    pub(crate) fn read(root: &Path) -> Result<Index> {
        let path = root.join(INDEX_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(e).context(|| format!("reading {}", path.display())),
        }
    }

    pub(crate) fn write(&self, root: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).context(|| "encoding the image index".to_string())?;
        write_atomic(&root.join(INDEX_FILE), &bytes)
    }

    /// The digest references (`name@sha256:…`) of image `id`, sorted.
    pub(crate) fn digests_of(&self, id: &str) -> Vec<String> {
        self.digests.iter().filter(|(_, v)| *v == id).map(|(k, _)| k.clone()).collect()
    }

    /// Forgets image `id`: its tags, its digests and itself.
    pub(crate) fn forget(&mut self, id: &str) {
        self.images.remove(id);
        self.tags.retain(|_, v| v != id);
        self.digests.retain(|_, v| v != id);
    }

    /// The tags of image `id`, as `(name, tag)`, sorted.
    pub(crate) fn tags_of(&self, id: &str) -> Vec<(String, String)> {
        self.tags.iter().filter(|(_, v)| *v == id).filter_map(|(k, _)| split_key(k)).collect()
    }
}

/// The index key of `name:tag`.
pub(crate) fn key(name: &str, tag: &str) -> String {
    format!("{name}:{tag}")
}

/// `name:tag` back into its parts (a name may hold ':' only before a '/', as `localhost:5000/app`;
/// tags never hold one).
pub(crate) fn split_key(key: &str) -> Option<(String, String)> {
    key.rsplit_once(':').map(|(n, t)| (n.to_string(), t.to_string()))
}

/// The store's exclusive lock, released on drop.
pub(crate) struct StoreLock {
    _flock: Flock<File>,
}

impl StoreLock {
    pub(crate) fn acquire(root: &Path) -> Result<StoreLock> {
        let path = root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .context(|| format!("opening {}", path.display()))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map(|flock| StoreLock { _flock: flock })
            .map_err(|(_, errno)| Error::Io { context: format!("locking {}", path.display()), source: errno.into() })
    }
}
