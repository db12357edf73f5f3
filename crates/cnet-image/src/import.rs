//! Building an image from a tarball in a work directory: decompress (gzip) to an uncompressed tar,
//! find out what it holds, then apply its layers to `rootfs/` in order. The store commits the result.

use std::fs::{self, DirBuilder, File};
use std::io::{self, BufReader};

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::archive::{Bundle, Compression, Kind, compression, decompressed};
use super::error::{Context, Error, Result};
use super::fsutil::{disk_usage, is_rfc3339_utc, now_rfc3339, random_id};
use super::layer::apply_layer;
use super::{ImageConfig, ImageRecord, ROOTFS_DIR};

/// What [`build`] made.
pub(crate) enum Built {
    /// The tarball holds an image the store already has (same config digest); nothing was unpacked.
    Existing(String),
    /// A new image in the work directory: `rootfs/` is complete; the record is to be written beside it.
    New(ImageRecord),
}

/// Builds the image of `tarball` in `work`. `wanted` (`name:tag`) picks the image when a saved archive
/// holds several; `known` says whether the store already has an image id.
pub(crate) fn build(work: &Path, tarball: &Path, wanted: &str, known: &dyn Fn(&str) -> bool) -> Result<Built> {
    let source = tarball.display().to_string();
    let tar_path = uncompressed(tarball, work, &source)?;
    let bundle = Bundle::open(&tar_path, &source)?;
    let saved = match bundle.kind() {
        Kind::RootFs => None,
        Kind::DockerSave => Some(bundle.docker_save_image(wanted)?),
        Kind::OciLayout => Some(bundle.oci_image(wanted)?),
    };
    if let Some(id) = saved.as_ref().and_then(|s| s.id.as_ref())
        && known(id)
    {
        return Ok(Built::Existing(id.clone()));
    }

    let rootfs = work.join(ROOTFS_DIR);
    DirBuilder::new().mode(0o755).create(&rootfs).context(|| format!("creating {}", rootfs.display()))?;
    let (id, config, created) = match saved {
        None => {
            let file = File::open(&tar_path).context(|| format!("opening {}", tar_path.display()))?;
            apply_layer(&rootfs, BufReader::new(file), &source)?;
            (random_id(), ImageConfig::default(), None)
        }
        Some(saved) => {
            for (i, layer) in saved.layers.iter().enumerate() {
                let what = format!("layer {} ({layer}) of {source}", i + 1);
                let reader = decompressed(bundle.open_member(layer)?, &|| what.clone())?;
                apply_layer(&rootfs, reader, &what)?;
            }
            (saved.id.unwrap_or_else(random_id), saved.config, saved.created)
        }
    };
    if tar_path != tarball {
        fs::remove_file(&tar_path).context(|| format!("removing {}", tar_path.display()))?;
    }
    Ok(Built::New(ImageRecord {
        id,
        config,
        created: created.filter(|c| is_rfc3339_utc(c)).unwrap_or_else(now_rfc3339),
        size: disk_usage(&rootfs)?,
    }))
}

/// `tarball` itself when it is an uncompressed tar, else its gzip content decompressed into `work`
/// (the saved-image reader seeks, which a gzip stream cannot).
fn uncompressed(tarball: &Path, work: &Path, source: &str) -> Result<PathBuf> {
    let mut file = match File::open(tarball) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotFound(format!("open {source}: no such file")));
        }
        Err(e) => return Err(e).context(|| format!("opening {source}")),
    };
    if file.metadata().context(|| format!("inspecting {source}"))?.is_dir() {
        return Err(Error::invalid(format!("{source} is a directory, not a tarball")));
    }
    let mut head = [0u8; 8];
    let n = read_head(&mut file, &mut head).context(|| format!("reading {source}"))?;
    if n == 0 {
        return Err(Error::invalid(format!("{source} is empty, not a tarball")));
    }
    match compression(&head[..n], &|| source.to_string())? {
        Compression::None => Ok(tarball.to_path_buf()),
        kind @ (Compression::Gzip | Compression::Zstd) => {
            let dest = work.join("archive.tar");
            let mut out = File::create(&dest).context(|| format!("creating {}", dest.display()))?;
            let file = File::open(tarball).context(|| format!("opening {source}"))?;
            let mut reader = decompressed(file, &|| source.to_string())?;
            io::copy(&mut reader, &mut out).map_err(|e| match e.kind() {
                io::ErrorKind::InvalidInput
                | io::ErrorKind::InvalidData
                | io::ErrorKind::UnexpectedEof
                | io::ErrorKind::Other => {
                    let kind = if kind == Compression::Gzip { "gzip" } else { "zstd" };
                    Error::invalid(format!("{source}: bad {kind} data: {e}"))
                }
                _ => Error::Io { context: format!("decompressing {source} into {}", dest.display()), source: e },
            })?;
            Ok(dest)
        }
    }
}

fn read_head(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
