//! The container's root filesystem, built inside its new mount namespace (so none of these
//! mounts is ever visible on the host, and all of them vanish with the container): an overlay of
//! the image (lower) and the container's `upper/` + `work/`, then `/proc`, a read-only `/sys`, a
//! minimal `/dev`, and `/etc/{resolv.conf,hosts,hostname}` bound from the container directory;
//! finally `pivot_root` into it.
//!
//! Each step is one function; [`prepare`] calls them in order.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root};

/// The host device nodes bound into the container's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Files the runtime writes in the container directory and binds over `/etc/<name>`.
pub const ETC_FILES: &[&str] = &["resolv.conf", "hosts", "hostname"];

type Step<T = ()> = Result<T, String>;

fn sys(what: impl FnOnce() -> String) -> impl FnOnce(nix::errno::Errno) -> String {
    move |e| format!("{}: {e}", what())
}

fn io(what: impl FnOnce() -> String) -> impl FnOnce(std::io::Error) -> String {
    move |e| format!("{}: {e}", what())
}

/// All the steps, in order. `dir` is the container directory, `lower` the image's root filesystem.
pub fn prepare(dir: &Path, lower: &Path) -> Step {
    // The binds are in the container's config (read here, in the container's own process).
    let binds = crate::container::load(dir).map(|c| c.config.binds).map_err(|e| format!("reading the config: {e}"))?;
    make_mounts_private()?;
    let root = mount_overlay(dir, lower)?;
    mount_proc(&root)?;
    mount_sys(&root)?;
    mount_dev(&root)?;
    bind_etc_files(dir, &root)?;
    bind_volumes(&root, &binds)?;
    pivot_into(&root)
}

/// `-v HOST:CONTAINER[:ro]`: each host path bound at its place in the root (a directory or a file
/// made there for it first), read-only by a second, remounting bind where asked.
pub fn bind_volumes(root: &Path, binds: &[crate::spec::Bind]) -> Step {
    for b in binds {
        let target = root.join(b.target.strip_prefix("/").unwrap_or(&b.target));
        if b.source.is_dir() {
            ensure_dir(&target)?;
        } else {
            if let Some(parent) = target.parent() {
                ensure_dir(parent)?;
            }
            ensure_file(&target)?;
        }
        mount(Some(&b.source), &target, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(sys(|| format!("binding {} at {}", b.source.display(), b.target.display())))?;
        if b.read_only {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
            mount(None::<&str>, &target, None::<&str>, flags, None::<&str>)
                .map_err(sys(|| format!("making {} read-only", b.target.display())))?;
        }
    }
    Ok(())
}

/// Nothing mounted from here on propagates back to the host.
pub fn make_mounts_private() -> Step {
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(sys(|| "making / private".into()))
}

/// `mount -t overlay -o lowerdir=IMAGE,upperdir=DIR/upper,workdir=DIR/work overlay DIR/rootfs`.
pub fn mount_overlay(dir: &Path, lower: &Path) -> Step<PathBuf> {
    let root = dir.join("rootfs");
    for sub in ["upper", "work", "rootfs"] {
        fs::create_dir_all(dir.join(sub)).map_err(io(|| format!("creating {}", dir.join(sub).display())))?;
    }
    let options = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        dir.join("upper").display(),
        dir.join("work").display()
    );
    mount(Some("overlay"), &root, Some("overlay"), MsFlags::empty(), Some(options.as_str()))
        .map_err(sys(|| format!("mounting the overlay ({options}) on {}", root.display())))?;
    Ok(root)
}

fn ensure_dir(path: &Path) -> Step {
    fs::create_dir_all(path).map_err(io(|| format!("creating {}", path.display())))
}

fn ensure_file(path: &Path) -> Step {
    if !path.exists() {
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io(|| format!("creating {}", path.display())))?;
    }
    Ok(())
}

/// A new `/proc` (of the container's pid namespace).
pub fn mount_proc(root: &Path) -> Step {
    let target = root.join("proc");
    ensure_dir(&target)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), &target, Some("proc"), flags, None::<&str>).map_err(sys(|| "mounting /proc".into()))
}

/// A read-only `/sys` (showing the sandbox's network devices).
pub fn mount_sys(root: &Path) -> Step {
    let target = root.join("sys");
    ensure_dir(&target)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
    mount(Some("sysfs"), &target, Some("sysfs"), flags, None::<&str>).map_err(sys(|| "mounting /sys".into()))
}

/// A tmpfs `/dev` with the host's harmless device nodes bound in, a private devpts instance, a
/// `/dev/shm` and the usual symlinks.
pub fn mount_dev(root: &Path) -> Step {
    let dev = root.join("dev");
    ensure_dir(&dev)?;
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(sys(|| "mounting /dev".into()))?;
    for name in DEVICES {
        let target = dev.join(name);
        ensure_file(&target)?;
        let source = Path::new("/dev").join(name);
        mount(Some(&source), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(sys(|| format!("binding {} into the container", source.display())))?;
    }
    let pts = dev.join("pts");
    ensure_dir(&pts)?;
    mount(
        Some("devpts"),
        &pts,
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )
    .map_err(sys(|| "mounting /dev/pts".into()))?;
    let shm = dev.join("shm");
    ensure_dir(&shm)?;
    mount(
        Some("shm"),
        &shm,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(sys(|| "mounting /dev/shm".into()))?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(link)).map_err(io(|| format!("creating /dev/{link}")))?;
    }
    Ok(())
}

/// Binds `DIR/{resolv.conf,hosts,hostname}` over the image's `/etc` files.
pub fn bind_etc_files(dir: &Path, root: &Path) -> Step {
    let etc = root.join("etc");
    ensure_dir(&etc)?;
    for name in ETC_FILES {
        let source = dir.join(name);
        let target = etc.join(name);
        if fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
            fs::remove_file(&target).map_err(io(|| format!("replacing the symlink /etc/{name}")))?;
        }
        ensure_file(&target)?;
        mount(Some(&source), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(sys(|| format!("binding {} over /etc/{name}", source.display())))?;
    }
    Ok(())
}

/// `pivot_root` into `root` and detach the old root, so nothing of the host stays reachable.
pub fn pivot_into(root: &Path) -> Step {
    chdir(root).map_err(sys(|| format!("entering {}", root.display())))?;
    pivot_root(".", ".").map_err(sys(|| format!("pivot_root into {}", root.display())))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys(|| "detaching the old root".into()))?;
    chdir("/").map_err(sys(|| "entering /".into()))
}
