//! The built-in `busybox:latest` image, made from the host's static busybox: no registry needed.

use std::fs::{self, DirBuilder};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::ImageConfig;
use super::error::{Context, Error, Result};

pub(crate) const NAME: &str = "busybox";
pub(crate) const TAG: &str = "latest";

/// Where the static busybox comes from; `CNET_BUSYBOX` overrides it.
pub(crate) const DEFAULT_BINARY: &str = "/bin/busybox";
pub(crate) const BINARY_ENV: &str = "CNET_BUSYBOX";

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The directories of the root filesystem and their modes.
const DIRS: &[(&str, u32)] = &[
    ("bin", 0o755),
    ("etc", 0o755),
    ("proc", 0o555),
    ("sys", 0o555),
    ("dev", 0o755),
    ("tmp", 0o1777),
    ("root", 0o700),
    ("var", 0o755),
];

/// Files of /etc. hosts, resolv.conf and hostname are placeholders the runtime mounts over.
const ETC_FILES: &[(&str, &str)] = &[
    ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
    ("etc/group", "root:x:0:\nnobody:x:65534:\n"),
    ("etc/hosts", ""),
    ("etc/resolv.conf", ""),
    ("etc/hostname", ""),
];

/// The busybox binary to use: `$CNET_BUSYBOX`, else /bin/busybox.
pub(crate) fn binary() -> PathBuf {
    std::env::var_os(BINARY_ENV).filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| DEFAULT_BINARY.into())
}

/// Makes the busybox root filesystem in the empty directory `rootfs` from `busybox`, which must be
/// statically linked (the container has no libc); returns the image config.
pub(crate) fn build(rootfs: &Path, busybox: &Path) -> Result<ImageConfig> {
    check_static(busybox)?;
    let applets = applets(busybox)?;

    for (dir, mode) in DIRS {
        let path = rootfs.join(dir);
        DirBuilder::new().mode(0o755).create(&path).context(|| format!("creating {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
            .context(|| format!("setting the mode of {}", path.display()))?;
    }

    let bin = rootfs.join("bin");
    let dest = bin.join("busybox");
    fs::copy(busybox, &dest).context(|| format!("copying {} to {}", busybox.display(), dest.display()))?;
    fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
        .context(|| format!("setting the mode of {}", dest.display()))?;
    let mut names: Vec<&str> = applets.iter().map(String::as_str).collect();
    names.push("sh");
    names.sort_unstable();
    names.dedup();
    for applet in names {
        let link = bin.join(applet);
        symlink("busybox", &link).context(|| format!("creating link {}", link.display()))?;
    }

    for (file, content) in ETC_FILES {
        let path = rootfs.join(file);
        fs::write(&path, content).context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
            .context(|| format!("setting the mode of {}", path.display()))?;
    }

    Ok(ImageConfig { env: vec![PATH_ENV.to_string()], cmd: vec!["sh".to_string()], ..ImageConfig::default() })
}

/// `busybox --list`: the applet names (those that could be a file name in /bin).
fn applets(busybox: &Path) -> Result<Vec<String>> {
    let out =
        Command::new(busybox).arg("--list").output().context(|| format!("running {} --list", busybox.display()))?;
    if !out.status.success() {
        return Err(Error::invalid(format!(
            "{} --list failed ({}): {}",
            busybox.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let list = String::from_utf8_lossy(&out.stdout);
    Ok(list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox" && *a != "." && *a != ".." && !a.contains('/'))
        .map(str::to_string)
        .collect())
}

/// Refuses a missing, non-ELF or dynamically linked busybox (one with a `PT_INTERP` program header),
/// which would fail in the container with a baffling "no such file or directory".
fn check_static(busybox: &Path) -> Result<()> {
    let hint = "the built-in busybox image needs a statically linked busybox \
                (apt-get install busybox-static, or point CNET_BUSYBOX at one)";
    let mut bytes = Vec::new();
    fs::File::open(busybox)
        .and_then(|f| f.take(1 << 20).read_to_end(&mut bytes))
        .context(|| format!("{hint}: reading {}", busybox.display()))?;
    match elf_interpreter(&bytes) {
        Some(false) => Ok(()),
        Some(true) => Err(Error::invalid(format!("{} is dynamically linked; {hint}", busybox.display()))),
        None => Err(Error::invalid(format!("{} is not an ELF executable; {hint}", busybox.display()))),
    }
}

/// Whether the ELF image `b` (its first bytes) asks for an interpreter; `None` if it is not ELF.
fn elf_interpreter(b: &[u8]) -> Option<bool> {
    const PT_INTERP: u32 = 3;
    if b.get(..4)? != b"\x7fELF" {
        return None;
    }
    let little = match b.get(5)? {
        1 => true,
        2 => false,
        _ => return None,
    };
    let int = |at: usize, len: usize| -> Option<u64> {
        let s = b.get(at..at + len)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if little { s[len - 1 - i] } else { s[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    // (e_phoff, e_phentsize, e_phnum) offsets for ELFCLASS32 and ELFCLASS64.
    let (phoff, phentsize, phnum) = match b.get(4)? {
        1 => (int(0x1c, 4)?, int(0x2a, 2)?, int(0x2c, 2)?),
        2 => (int(0x20, 8)?, int(0x36, 2)?, int(0x38, 2)?),
        _ => return None,
    };
    let mut interp = false;
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).ok()?;
        interp |= int(at, 4)? == u64::from(PT_INTERP);
    }
    Some(interp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_headers() {
        let host = fs::read("/bin/busybox").unwrap();
        assert_eq!(elf_interpreter(&host), Some(false), "/bin/busybox should be static");
        let dynamic = fs::read("/bin/ls").unwrap();
        assert_eq!(elf_interpreter(&dynamic), Some(true));
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), None);
        let err = check_static(Path::new("/bin/ls")).unwrap_err().to_string();
        assert!(err.contains("/bin/ls is dynamically linked"), "{err}");
        let err = check_static(Path::new("/nonexistent/busybox")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/busybox") && err.contains("busybox-static"), "{err}");
    }
}
