//! Applying one layer (a tar stream) to a root filesystem, as Docker does: entries replace what lower
//! layers left, `.wh.NAME` deletes NAME, `.wh..wh..opq` empties its directory of everything lower
//! layers put there. Modes, owners, mtimes, symbolic and hard links are kept; device nodes are skipped.
//!
//! Safety: entry names with `..` or a leading `/` are refused, so are hard links whose target does and
//! relative symbolic links that climb above the root. Parent directories are resolved with
//! [`resolve_dir`], so a link planted by one entry can never lead a later one outside the root.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, DirBuilder};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::error::{Context, Error, Result};
use super::scope::{link_escapes, relative_components, resolve_dir};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";

/// Applies the tar stream `reader` to `root`. `source` names the layer in error messages
/// (e.g. `layer 2 (blobs/sha256/ab…) of /tmp/app.tar`).
pub(crate) fn apply_layer(root: &Path, reader: impl Read, source: &str) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let bad_tar = |e: io::Error| Error::invalid(format!("{source} is not a valid tar archive: {e}"));
    let mut layer = Layer { root, source, unpacked: HashSet::new() };
    for entry in archive.entries().map_err(bad_tar)? {
        let mut entry = entry.map_err(bad_tar)?;
        layer.apply(&mut entry)?;
    }
    Ok(())
}

/// One layer being applied: `unpacked` holds every path (relative to the root, links resolved) this
/// layer made, which an opaque whiteout must keep.
struct Layer<'a> {
    root: &'a Path,
    source: &'a str,
    unpacked: HashSet<PathBuf>,
}

impl Layer<'_> {
    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let raw = entry
            .path()
            .map_err(|e| Error::invalid(format!("{}: unreadable entry name: {e}", self.source)))?
            .into_owned();
        let what = || self.source.to_string();
        let components = relative_components(&raw, &what)?;
        let Some((name, parents)) = components.split_last() else {
            return Ok(()); // the root directory itself: the store decides its mode
        };
        if name.as_bytes().starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(&raw, name, parents);
        }
        let kind = entry.header().entry_type();
        match kind {
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName | EntryType::GNULongLink => {
                return Ok(()); // consumed by the tar reader; never a file
            }
            EntryType::Regular
            | EntryType::Continuous
            | EntryType::GNUSparse
            | EntryType::Directory
            | EntryType::Symlink
            | EntryType::Link
            | EntryType::Fifo
            | EntryType::Char
            | EntryType::Block => {}
            other => {
                return Err(Error::invalid(format!(
                    "{}: entry '{}' has an unsupported type ({:?})",
                    self.source,
                    raw.display(),
                    other
                )));
            }
        }

        let parent = resolve_dir(self.root, parents, true)?.expect("resolve_dir creates what is missing");
        self.unpacked.extend(parent.created);
        if matches!(kind, EntryType::Char | EntryType::Block) {
            // No mknod: the runtime gives containers their own /dev. Its directory is kept.
            tracing::debug!(entry = %raw.display(), source = self.source, "skipping a device node");
            return Ok(());
        }
        let rel = parent.rel.join(name);
        let target = self.root.join(&rel);

        let link_source = match kind {
            EntryType::Link => Some(self.link_source(entry, &raw)?),
            _ => None,
        };
        // A hard link to itself (some tar writers emit them) is already in place.
        if link_source.as_ref() == Some(&target) {
            self.unpacked.insert(rel);
            return Ok(());
        }
        self.clear_for(&target, kind == EntryType::Directory)?;

        match (kind, link_source) {
            (EntryType::Directory, _) => self.make_dir(entry, &target)?,
            (EntryType::Symlink, _) => self.make_symlink(entry, &raw, &parent.rel, &target)?,
            (EntryType::Link, Some(source)) => {
                fs::hard_link(&source, &target)
                    .context(|| format!("linking {} to {}", target.display(), source.display()))?;
            }
            (EntryType::Fifo, _) => self.make_fifo(entry, &target)?,
            _ => {
                entry.unpack(&target).map_err(|e| Error::Io {
                    context: format!("{}: writing '{}' to {}", self.source, raw.display(), target.display()),
                    source: e,
                })?;
            }
        }
        self.unpacked.insert(rel);
        Ok(())
    }

    /// Removes whatever lower layers left at `target`, unless both are directories (which merge).
    fn clear_for(&self, target: &Path, is_dir: bool) -> Result<()> {
        match fs::symlink_metadata(target) {
            Ok(md) if md.is_dir() && is_dir => Ok(()),
            Ok(md) if md.is_dir() => fs::remove_dir_all(target).context(|| format!("removing {}", target.display())),
            Ok(_) => fs::remove_file(target).context(|| format!("removing {}", target.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context(|| format!("inspecting {}", target.display())),
        }
    }

    fn make_dir<R: Read>(&self, entry: &tar::Entry<R>, target: &Path) -> Result<()> {
        if !target.is_dir() {
            DirBuilder::new().mode(0o700).create(target).context(|| format!("creating {}", target.display()))?;
        }
        self.set_owner(entry, target)?;
        self.set_mode(entry, target)
    }

    fn make_symlink<R: Read>(&self, entry: &tar::Entry<R>, raw: &Path, dir_rel: &Path, target: &Path) -> Result<()> {
        let link = self.link_name(entry, raw)?;
        if link_escapes(dir_rel, &link) {
            return Err(Error::invalid(format!(
                "{}: symbolic link '{}' -> '{}' climbs out of the root filesystem; refusing the tarball",
                self.source,
                raw.display(),
                link.display()
            )));
        }
        symlink(&link, target).context(|| format!("creating link {}", target.display()))?;
        self.set_owner(entry, target)
    }

    fn make_fifo<R: Read>(&self, entry: &tar::Entry<R>, target: &Path) -> Result<()> {
        nix::unistd::mkfifo(target, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| Error::Io { context: format!("creating fifo {}", target.display()), source: e.into() })?;
        self.set_owner(entry, target)?;
        self.set_mode(entry, target)
    }

    /// The existing file a hard-link entry points to, resolved inside the root. It must already be there:
    /// hard links name a file of this layer or of a lower one.
    fn link_source<R: Read>(&self, entry: &tar::Entry<R>, raw: &Path) -> Result<PathBuf> {
        let link = self.link_name(entry, raw)?;
        let what = || format!("{}: hard link '{}'", self.source, raw.display());
        let components = relative_components(&link, &what)?;
        let missing = || {
            Error::invalid(format!(
                "{}: hard link '{}' points to '{}', which is not in the image",
                self.source,
                raw.display(),
                link.display()
            ))
        };
        let (name, parents) = components.split_last().ok_or_else(missing)?;
        let parent = resolve_dir(self.root, parents, false)?.ok_or_else(missing)?;
        let source = self.root.join(parent.rel).join(name);
        match fs::symlink_metadata(&source) {
            Ok(md) if md.is_dir() => Err(Error::invalid(format!(
                "{}: hard link '{}' points to directory '{}'",
                self.source,
                raw.display(),
                link.display()
            ))),
            Ok(_) => Ok(source),
            Err(_) => Err(missing()),
        }
    }

    fn link_name<R: Read>(&self, entry: &tar::Entry<R>, raw: &Path) -> Result<PathBuf> {
        match entry.link_name() {
            Ok(Some(link)) if !link.as_os_str().is_empty() => Ok(link.into_owned()),
            Ok(_) => Err(Error::invalid(format!("{}: link '{}' has no target", self.source, raw.display()))),
            Err(e) => Err(Error::invalid(format!("{}: link '{}': {e}", self.source, raw.display()))),
        }
    }

    fn set_owner<R: Read>(&self, entry: &tar::Entry<R>, target: &Path) -> Result<()> {
        let header = entry.header();
        let id = |v: io::Result<u64>| v.ok().and_then(|v| u32::try_from(v).ok()).unwrap_or(0);
        lchown(target, Some(id(header.uid())), Some(id(header.gid())))
            .context(|| format!("setting the owner of {}", target.display()))
    }

    /// Sets the mode, special bits included; after [`Self::set_owner`], which would clear set-id bits.
    fn set_mode<R: Read>(&self, entry: &tar::Entry<R>, target: &Path) -> Result<()> {
        let mode = entry.header().mode().unwrap_or(0o755) & 0o7777;
        fs::set_permissions(target, fs::Permissions::from_mode(mode))
            .context(|| format!("setting the mode of {}", target.display()))
    }

    /// `.wh.NAME` removes NAME from the lower layers; `.wh..wh..opq` empties its directory of them.
    fn whiteout(&mut self, raw: &Path, name: &OsString, parents: &[OsString]) -> Result<()> {
        let Some(parent) = resolve_dir(self.root, parents, false)? else {
            return Ok(()); // nothing below to hide
        };
        let bytes = name.as_bytes();
        if bytes == WHITEOUT_OPAQUE {
            return self.clear_lower(&parent.rel);
        }
        let hidden = &bytes[WHITEOUT_PREFIX.len()..];
        if hidden.starts_with(WHITEOUT_PREFIX) {
            return Ok(()); // other `.wh..wh.` names are aufs bookkeeping, not files
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(Error::invalid(format!("{}: whiteout '{}' names no file", self.source, raw.display())));
        }
        let target = self.root.join(&parent.rel).join(std::ffi::OsStr::from_bytes(hidden));
        self.clear_for(&target, false)
    }

    /// Removes everything under `dir_rel` that this layer did not make.
    fn clear_lower(&self, dir_rel: &Path) -> Result<()> {
        let dir = self.root.join(dir_rel);
        for child in fs::read_dir(&dir).context(|| format!("reading {}", dir.display()))? {
            let child = child.context(|| format!("reading {}", dir.display()))?;
            let rel = dir_rel.join(child.file_name());
            let is_dir = child.file_type().context(|| format!("inspecting {}", child.path().display()))?.is_dir();
            if !self.unpacked.contains(&rel) {
                self.clear_for(&child.path(), false)?;
            } else if is_dir {
                self.clear_lower(&rel)?;
            }
        }
        Ok(())
    }
}
