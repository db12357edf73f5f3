//! Small file-system helpers of the store: work directories that vanish unless kept, atomic writes,
//! disk usage, timestamps and ids.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{Context, Result};

/// Names of everything the store makes before it is committed: `.tmp-<pid>-<random>`. Left-overs of a
/// process that died are removed when the store is next opened.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// A fresh name for a temporary file or directory inside `dir`.
pub(crate) fn tmp_path(dir: &Path) -> PathBuf {
    let suffix: [u8; 8] = rand::random();
    dir.join(format!("{TMP_PREFIX}{}-{}", std::process::id(), hex::encode(suffix)))
}

/// The pid in a temporary name, if it is one.
pub(crate) fn tmp_owner(name: &str) -> Option<i32> {
    name.strip_prefix(TMP_PREFIX)?.split('-').next()?.parse().ok()
}

/// Whether process `pid` is alive (`kill(pid, 0)`).
pub(crate) fn process_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    !matches!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None), Err(Errno::ESRCH))
}

/// A directory in the store where an image is built; removed on drop unless [`WorkDir::keep`] moved it.
#[derive(Debug)]
pub(crate) struct WorkDir {
    path: PathBuf,
    armed: bool,
}

impl WorkDir {
    pub(crate) fn new(store_root: &Path) -> Result<WorkDir> {
        let path = tmp_path(store_root);
        DirBuilder::new().mode(0o700).create(&path).context(|| format!("creating {}", path.display()))?;
        Ok(WorkDir { path, armed: true })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the work directory to `dest`; it is no longer removed on drop.
    pub(crate) fn keep(mut self, dest: &Path) -> Result<()> {
        fs::rename(&self.path, dest).context(|| format!("renaming {} to {}", self.path.display(), dest.display()))?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = fs::remove_dir_all(&self.path)
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove a work directory");
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, synced, then renamed over it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tmp_path(dir);
    let write = || -> io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
        .context(|| format!("writing {}", path.display()))
}

/// Removes `path`, a file or a directory tree; absent is fine.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Bytes of the files and links under `root`, each hard-linked file counted once. Links are not followed.
pub(crate) fn disk_usage(root: &Path) -> Result<u64> {
    fn walk(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> Result<u64> {
        let mut total = 0;
        for entry in fs::read_dir(dir).context(|| format!("reading {}", dir.display()))? {
            let entry = entry.context(|| format!("reading {}", dir.display()))?;
            let md = entry.metadata().context(|| format!("inspecting {}", entry.path().display()))?;
            if md.is_dir() {
                total += walk(&entry.path(), seen)?;
            } else if md.nlink() < 2 || seen.insert((md.dev(), md.ino())) {
                total += md.len();
            }
        }
        Ok(total)
    }
    walk(root, &mut HashSet::new())
}

/// A new random image id: 64 hex digits.
pub(crate) fn random_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Now as RFC 3339 (UTC, seconds), as Docker prints an image's `Created`.
pub(crate) fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// Whether `s` looks like an RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SS[.frac]Z`).
pub(crate) fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && s.ends_with('Z')
        && (b.len() == 20 || (b[19] == b'.' && digits(20..b.len() - 1) && b.len() > 21))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let now = now_rfc3339();
        assert!(is_rfc3339_utc(&now), "{now}");
        assert!(now.as_str() > "2024-01-01T00:00:00Z");
        assert!(is_rfc3339_utc("2023-05-19T20:19:19.123456789Z"));
        assert!(!is_rfc3339_utc("2023-05-19T20:19:19+02:00"));
        assert!(!is_rfc3339_utc("2023-05-19T20:19:19.Z"));
    }

    #[test]
    fn temporary_names() {
        let p = tmp_path(Path::new("/x"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(tmp_owner(name), Some(std::process::id() as i32));
        assert!(process_alive(std::process::id() as i32));
        assert_eq!(tmp_owner("repositories.json"), None);
    }
}
