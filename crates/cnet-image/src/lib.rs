//! cnet-image is the image store of cnet: the built-in busybox image, imported tarballs (root
//! filesystem tarballs, `docker save` archives, the OCI image layout) and images pulled from a
//! registry (by `cnet-registry`, which downloads and verifies the blobs and hands them to a
//! [`Stage`]). It owns reference parsing (Docker's `[domain/]name[:tag][@digest]`, ids and id
//! prefixes), the safe unpacking of layers (plain, gzip or zstd tars), and the store's directory; it
//! hands the runtime an [`Image`]: a read-only root filesystem and its config.
//!
//! What it must never do: contact a registry or the network, know about containers (whether a
//! container uses an image is for the caller to check), depend on another cnet crate, or let a
//! tarball write outside the directory it is unpacked into.
//!
//! The store lives in one directory (e.g. `/var/lib/cnet/runtime/images`):
//!
//! | path | what |
//! |---|---|
//! | `repositories.json` | `name:tag` → image id, `name@digest` → image id, and the set of images held (see `index.rs`) |
//! | `<id>/rootfs/` | the image's root filesystem: the read-only lower directory of overlayfs |
//! | `<id>/image.json` | id, config, creation time, size |
//! | `.lock` | `flock`ed for every change, so concurrent CLIs serialize their commits |
//! | `.tmp-<pid>-<random>` | work in progress, renamed into place when complete |
//!
//! An image is built in a work directory and renamed into place under the lock, then tagged; a failure
//! leaves nothing behind, and the left-overs of a killed process are removed when the store is next
//! opened. Retagging never deletes an image a container may still run on: the old one stays, untagged
//! (`<none>:<none>`), until removed by id. No registry is ever contacted from here.

mod archive;
mod busybox;
mod error;
mod fsutil;
mod import;
mod index;
mod layer;
mod reference;
mod scope;
#[cfg(test)]
mod tests;

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::{Error, Result};
pub use reference::{DEFAULT_TAG, DOCKER_HUB, DOCKER_HUB_API, Reference, parse_reference};

use error::Context;
use fsutil::{WorkDir, disk_usage, now_rfc3339, process_alive, random_id, remove_any, tmp_owner, tmp_path};
use import::Built;
use index::{Index, StoreLock, key, split_key};
use reference::{id_prefix, is_full_id};

/// The name and tag shown for an image no tag names any more.
pub const UNTAGGED: &str = "<none>";

const ROOTFS_DIR: &str = "rootfs";
const RECORD_FILE: &str = "image.json";

/// An image: a root filesystem and how to run it. One value per tag; an image with two tags is listed
/// twice, with the same id and rootfs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    /// 64 hex digits: the digest of the config for saved images, random otherwise.
    pub id: String,
    /// `busybox`; [`UNTAGGED`] for an untagged image.
    pub name: String,
    /// `latest`; [`UNTAGGED`] for an untagged image.
    pub tag: String,
    /// The read-only lower directory for overlayfs.
    pub rootfs: PathBuf,
    pub config: ImageConfig,
    /// RFC 3339.
    pub created: String,
    /// Bytes of the files in the root filesystem.
    pub size: u64,
}

impl Image {
    /// `name:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }

    /// The first 12 digits of the id, as tables show it.
    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// How to run an image (Docker's `Config`, the fields cnet uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    /// `KEY=value`.
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub entrypoint: Vec<String>,
    pub working_dir: String,
    /// `80/tcp`, sorted.
    pub exposed_ports: Vec<String>,
}

/// What `<id>/image.json` holds: the image apart from its tags and location.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    pub id: String,
    pub config: ImageConfig,
    pub created: String,
    pub size: u64,
}

impl ImageRecord {
    fn write(&self, dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).context(|| "encoding an image record".to_string())?;
        fsutil::write_atomic(&dir.join(RECORD_FILE), &bytes)
    }
}

/// How a reference matched.
enum Match {
    Tag,
    Id,
    /// `name@digest`, with that key.
    Digest(String),
}

/// The image store under one directory.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// The store under `root` (e.g. /var/lib/cnet/runtime/images), created if missing. Left-overs of
    /// processes killed mid-import are removed.
    pub fn open(root: &Path) -> Result<ImageStore> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .context(|| format!("creating {}", root.display()))?;
        let store = ImageStore { root: root.to_path_buf() };
        store.collect_garbage()?;
        Ok(store)
    }

    /// The directory of the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Finds an image by `name[:tag]` (tag defaults to `latest`), by full id, or by unique id prefix
    /// (at least 4 hex digits, `sha256:` optional). `busybox:latest` is built in: made from the host's
    /// static busybox on first use. An unknown image is [`Error::NotFound`]:
    /// `Unable to find image 'NAME:TAG' locally`.
    pub fn resolve(&self, reference: &str) -> Result<Image> {
        let index = Index::read(&self.root)?;
        if let Some((image, _)) = self.lookup(&index, reference)? {
            return Ok(image);
        }
        let parsed = Reference::parse(reference)?;
        if parsed.digest.is_none() && parsed.name() == busybox::NAME && parsed.tag_or_default() == busybox::TAG {
            return self.create_busybox();
        }
        Err(Error::NotFound(format!("Unable to find image '{parsed}' locally")))
    }

    /// Whether the store holds image `id` (64 hex digits).
    pub fn has_image(&self, id: &str) -> Result<bool> {
        Ok(Index::read(&self.root)?.images.contains(id))
    }

    /// A work directory in the store to build an image in (see [`Stage`]); removed, with whatever is
    /// in it, unless committed.
    pub fn stage(&self) -> Result<Stage> {
        Ok(Stage { store: self.clone(), work: WorkDir::new(&self.root)? })
    }

    /// Names image `id`, which the store holds, `name:tag` (when `tag` is given; an existing tag moves)
    /// and `name@digest` (when `digest` is given). [`Error::NotFound`] if the image is gone.
    pub fn tag_image(&self, id: &str, name: &str, tag: Option<&str>, digest: Option<&str>) -> Result<Image> {
        self.commit(None, id, name, tag, digest, true)
    }

    /// Imports `tarball` as `reference` (`name[:tag]`): a root filesystem tarball, or a `docker save`
    /// archive (also the OCI image layout), gzip or not. An existing tag is moved to the new image; the
    /// image it named stays, untagged if no other tag names it.
    pub fn import(&self, tarball: &Path, reference: &str) -> Result<Image> {
        let (name, tag) = parse_reference(reference)?;
        let work = WorkDir::new(&self.root)?;
        let known = |id: &str| Index::read(&self.root).is_ok_and(|index| index.images.contains(id));
        match import::build(work.path(), tarball, &key(&name, &tag), &known)? {
            Built::Existing(id) => {
                drop(work);
                self.commit(None, &id, &name, Some(&tag), None, true)
            }
            Built::New(record) => {
                record.write(work.path())?;
                self.commit(Some(work), &record.id, &name, Some(&tag), None, true)
            }
        }
    }

    /// Every image, one entry per tag and one per untagged image, sorted by name, tag and id.
    pub fn list(&self) -> Result<Vec<Image>> {
        let index = Index::read(&self.root)?;
        let tagged = index.tags.iter().filter_map(|(k, id)| split_key(k).map(|(n, t)| (id.clone(), n, t)));
        // An untagged image pulled by digest shows its repository name, as Docker's `<none>` tag does.
        let untagged = index.images.iter().filter(|id| !index.tags.values().any(|v| v == *id)).map(|id| {
            let name = index
                .digests_of(id)
                .first()
                .and_then(|d| d.split_once('@').map(|(n, _)| n.to_string()))
                .unwrap_or_else(|| UNTAGGED.to_string());
            (id.clone(), name, UNTAGGED.to_string())
        });
        let mut images = Vec::new();
        for (id, name, tag) in tagged.chain(untagged) {
            match self.load(&id, &name, &tag) {
                Ok(image) => images.push(image),
                Err(Error::NotFound(_)) => {} // removed since the index was read
                Err(e) => return Err(e),
            }
        }
        images.sort_by(|a, b| (&a.name, &a.tag, &a.id).cmp(&(&b.name, &b.tag, &b.id)));
        Ok(images)
    }

    /// Removes the image by reference. By tag: the tag goes, and the image with it unless another tag
    /// names it. By digest (`name@sha256:…`): the digest goes, and the image with it unless a tag or
    /// another digest names it. By id: the image and its tag go; an image with several tags is
    /// [`Error::Conflict`]. Digests go with the image. Whether a container uses the image is for the
    /// caller to check.
    pub fn remove(&self, reference: &str) -> Result<Image> {
        let (image, doomed) = {
            let _lock = StoreLock::acquire(&self.root)?;
            let mut index = Index::read(&self.root)?;
            let Some((image, matched)) = self.lookup(&index, reference)? else {
                let shown = Reference::parse(reference).map(|r| r.to_string()).unwrap_or(reference.to_string());
                return Err(Error::NotFound(format!("No such image: {shown}")));
            };
            match &matched {
                Match::Tag => {
                    index.tags.remove(&key(&image.name, &image.tag));
                }
                Match::Digest(k) => {
                    index.digests.remove(k);
                }
                Match::Id => {
                    let tags = index.tags_of(&image.id);
                    if tags.len() > 1 {
                        let names: Vec<String> = tags.iter().map(|(n, t)| key(n, t)).collect();
                        return Err(Error::Conflict(format!(
                            "unable to remove image {} by id: it is tagged {}; remove the tags by name",
                            image.short_id(),
                            names.join(", ")
                        )));
                    }
                    for (n, t) in tags {
                        index.tags.remove(&key(&n, &t));
                    }
                }
            }
            // A digest keeps the image only against the removal of another of its digests.
            let last = !index.tags.values().any(|v| *v == image.id)
                && (!matches!(matched, Match::Digest(_)) || index.digests_of(&image.id).is_empty());
            if last {
                index.forget(&image.id);
            }
            index.write(&self.root)?;
            // Out of sight under the lock, deleted after it: a crash leaves a `.tmp-` left-over.
            let mut doomed = None;
            if last {
                let (dir, tmp) = (self.root.join(&image.id), tmp_path(&self.root));
                match fs::rename(&dir, &tmp) {
                    Ok(()) => doomed = Some(tmp),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).context(|| format!("renaming {} to {}", dir.display(), tmp.display())),
                }
            }
            (image, doomed)
        };
        if let Some(doomed) = doomed {
            fs::remove_dir_all(&doomed).context(|| format!("removing {}", doomed.display()))?;
        }
        Ok(image)
    }

    /// The image `reference` names in `index`: a tag first, then an id or unique id prefix.
    /// `Ok(None)` when nothing matches a valid reference.
    fn lookup(&self, index: &Index, reference: &str) -> Result<Option<(Image, Match)>> {
        let parsed = Reference::parse(reference);
        if let Ok(r) = &parsed {
            let name = r.name();
            if let Some(digest) = &r.digest {
                let k = format!("{name}@{digest}");
                return match index.digests.get(&k) {
                    Some(id) => {
                        let tag = index.tags_of(id).into_iter().find(|(n, _)| *n == name).map(|(_, t)| t);
                        let tag = tag.unwrap_or_else(|| UNTAGGED.to_string());
                        self.load(id, &name, &tag).map(|image| Some((image, Match::Digest(k))))
                    }
                    None => Ok(None),
                };
            }
            let tag = r.tag_or_default();
            if let Some(id) = index.tags.get(&key(&name, tag)) {
                return self.load(id, &name, tag).map(|image| Some((image, Match::Tag)));
            }
        }
        if let Some(prefix) = id_prefix(reference) {
            let ids: Vec<&String> = index.images.iter().filter(|id| id.starts_with(prefix)).collect();
            match ids.as_slice() {
                [] => {}
                [id] => {
                    let (name, tag) = index
                        .tags_of(id)
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| (UNTAGGED.to_string(), UNTAGGED.to_string()));
                    return self.load(id, &name, &tag).map(|image| Some((image, Match::Id)));
                }
                many => {
                    return Err(Error::invalid(format!(
                        "image id prefix '{reference}' is ambiguous: it matches {} images",
                        many.len()
                    )));
                }
            }
        }
        parsed.map(|_| None)
    }

    /// Image `id` as tagged `name:tag`.
    fn load(&self, id: &str, name: &str, tag: &str) -> Result<Image> {
        let dir = self.root.join(id);
        let path = dir.join(RECORD_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!("No such image: {id} (its files are gone)")));
            }
            Err(e) => return Err(e).context(|| format!("reading {}", path.display())),
        };
        let record: ImageRecord = serde_json::from_slice(&bytes).context(|| format!("reading {}", path.display()))?;
        Ok(Image {
            id: record.id,
            name: name.to_string(),
            tag: tag.to_string(),
            rootfs: dir.join(ROOTFS_DIR),
            config: record.config,
            created: record.created,
            size: record.size,
        })
    }

    /// Builds `busybox:latest` and commits it, unless another process committed one meanwhile: then
    /// that one is used and ours discarded.
    fn create_busybox(&self) -> Result<Image> {
        let work = WorkDir::new(&self.root)?;
        let rootfs = work.path().join(ROOTFS_DIR);
        DirBuilder::new().mode(0o755).create(&rootfs).context(|| format!("creating {}", rootfs.display()))?;
        let config = busybox::build(&rootfs, &busybox::binary())?;
        let record = ImageRecord { id: random_id(), config, created: now_rfc3339(), size: disk_usage(&rootfs)? };
        record.write(work.path())?;
        self.commit(Some(work), &record.id, busybox::NAME, Some(busybox::TAG), None, false)
    }

    /// Under the lock: moves the image built in `work` into place as `<root>/<id>` (unless the store has
    /// image `id` already) and tags it `name:tag` (and `name@digest`). With `replace` unset an existing
    /// tag wins and its image is returned instead.
    fn commit(
        &self,
        work: Option<WorkDir>,
        id: &str,
        name: &str,
        tag: Option<&str>,
        digest: Option<&str>,
        replace: bool,
    ) -> Result<Image> {
        let _lock = StoreLock::acquire(&self.root)?;
        let mut index = Index::read(&self.root)?;
        if !replace
            && let Some(tag) = tag
            && let Some(winner) = index.tags.get(&key(name, tag))
        {
            return self.load(winner, name, tag);
        }
        if !index.images.contains(id) {
            let Some(work) = work else {
                return Err(Error::Conflict(format!("image {id} was removed during the import; import it again")));
            };
            let dest = self.root.join(id);
            remove_any(&dest).context(|| format!("removing the left-over {}", dest.display()))?;
            work.keep(&dest)?;
            index.images.insert(id.to_string());
        }
        if let Some(tag) = tag {
            index.tags.insert(key(name, tag), id.to_string());
        }
        if let Some(digest) = digest {
            index.digests.insert(format!("{name}@{digest}"), id.to_string());
        }
        index.write(&self.root)?;
        self.load(id, name, tag.unwrap_or(UNTAGGED))
    }

    /// Removes what killed processes left: work directories of dead processes, image directories the
    /// index does not list; and forgets images whose directory is gone.
    fn collect_garbage(&self) -> Result<()> {
        let _lock = StoreLock::acquire(&self.root)?;
        let mut index = Index::read(&self.root)?;
        for entry in fs::read_dir(&self.root).context(|| format!("reading {}", self.root.display()))? {
            let entry = entry.context(|| format!("reading {}", self.root.display()))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let stale = match tmp_owner(name) {
                Some(pid) => !process_alive(pid),
                None => is_full_id(name) && !index.images.contains(name),
            };
            if stale && let Err(e) = remove_any(&entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "could not remove a left-over");
            }
        }
        let gone: Vec<String> =
            index.images.iter().filter(|id| !self.root.join(id).join(RECORD_FILE).exists()).cloned().collect();
        if !gone.is_empty() {
            for id in &gone {
                index.forget(id);
            }
            index.write(&self.root)?;
        }
        Ok(())
    }
}

/// An image being built in the store from downloaded blobs: layers are applied to its `rootfs/` one by
/// one, bottom first, then [`Stage::commit`] moves it into place and names it. Dropped uncommitted, it
/// leaves nothing behind (and a killed process's stage is removed when the store is next opened).
#[derive(Debug)]
pub struct Stage {
    store: ImageStore,
    work: WorkDir,
}

impl Stage {
    /// The work directory: blobs may be downloaded here; everything but the image goes at commit.
    pub fn path(&self) -> &Path {
        self.work.path()
    }

    /// Applies the layer tarball at `blob` (plain, gzip or zstd, told by its first bytes) to the root
    /// filesystem. `what` names the layer in errors.
    pub fn apply_layer(&self, blob: &Path, what: &str) -> Result<()> {
        let rootfs = self.rootfs()?;
        let file = fs::File::open(blob).context(|| format!("opening {}", blob.display()))?;
        let reader = archive::decompressed(file, &|| what.to_string())?;
        layer::apply_layer(&rootfs, reader, what)
    }

    /// Commits the image as `id` (the digest of its config, 64 hex digits) with the config document
    /// `config` (Docker's or OCI's JSON), named `name:tag` (if `tag`) and `name@digest` (if `digest`).
    /// Files other than the root filesystem are removed first.
    pub fn commit(self, id: &str, config: &[u8], name: &str, tag: Option<&str>, digest: Option<&str>) -> Result<Image> {
        if !reference::is_full_id(id) {
            return Err(Error::invalid(format!("'{id}' is not an image id (64 hex digits)")));
        }
        let rootfs = self.rootfs()?;
        for entry in fs::read_dir(self.path()).context(|| format!("reading {}", self.path().display()))? {
            let entry = entry.context(|| format!("reading {}", self.path().display()))?;
            if entry.file_name() != ROOTFS_DIR {
                remove_any(&entry.path()).context(|| format!("removing {}", entry.path().display()))?;
            }
        }
        let (config, created) = archive::parse_config(config, &format!("the config of {name}"))?;
        let record = ImageRecord {
            id: id.to_string(),
            config,
            created: created.filter(|c| fsutil::is_rfc3339_utc(c)).unwrap_or_else(now_rfc3339),
            size: disk_usage(&rootfs)?,
        };
        record.write(self.path())?;
        let Stage { store, work } = self;
        store.commit(Some(work), id, name, tag, digest, true)
    }

    /// `rootfs/`, made on first use.
    fn rootfs(&self) -> Result<PathBuf> {
        let rootfs = self.path().join(ROOTFS_DIR);
        match DirBuilder::new().mode(0o755).create(&rootfs) {
            Ok(()) => Ok(rootfs),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(rootfs),
            Err(e) => Err(e).context(|| format!("creating {}", rootfs.display())),
        }
    }
}
