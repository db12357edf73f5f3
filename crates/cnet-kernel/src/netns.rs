//! Network namespaces bound at paths (`/run/cnet/netns/<id>`), like `ip netns add/del`.
//!
//! `setns()` and `unshare()` change only the calling thread, so every function here that enters or
//! creates a namespace does it on a throwaway `std::thread` that exits afterwards; the caller's
//! thread (a tokio worker, say) never changes namespace.

use std::{
    fs::{self, File},
    io,
    os::unix::fs::MetadataExt,
    panic::{AssertUnwindSafe, catch_unwind, resume_unwind},
    path::Path,
    sync::Arc,
};

use nix::{
    errno::Errno,
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, setns, unshare},
    sys::statfs::statfs,
};
use rtnetlink::{
    LinkUnspec,
    packet_core::{NLM_F_ACK, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload},
    packet_route::RouteNetlinkMessage,
    sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE},
};

use crate::{Error, Result};

/// The calling thread's own network namespace.
const THREAD_SELF_NS: &str = "/proc/thread-self/ns/net";
/// `statfs().f_type` of nsfs, the filesystem of namespace files and their bind mounts.
const NSFS_MAGIC: i64 = 0x6e73_6673;
/// `statfs().f_type` of tmpfs.
const TMPFS_MAGIC: i64 = 0x0102_1994;
/// `lo` has this index in every network namespace.
const LOOPBACK_IFINDEX: u32 = 1;

/// A new network namespace bind-mounted at `path` (parent dirs created, file created empty, like
/// `ip netns add`), with `lo` up inside. Done on a throwaway std::thread with unshare(CLONE_NEWNET)
/// and mount(MS_BIND) of /proc/thread-self/ns/net. On any failure nothing is left at `path`.
///
/// A path that already holds a live namespace is an error (`EEXIST`); a stale empty file is reused.
pub fn create(path: &Path) -> Result<()> {
    if is_mounted(path) {
        return Err(Error::netns(path, "create", io::Error::from_raw_os_error(nix::libc::EEXIST)));
    }
    prepare_mount_point(path)?;
    let target = path.to_path_buf();
    let result = run_on_thread(path, move || -> Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::netns(&target, "unshare(CLONE_NEWNET)", e))?;
        set_loopback_up().map_err(|e| Error::netns(&target, "set lo up", e))?;
        mount(Some(THREAD_SELF_NS), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| Error::netns(&target, "bind mount", e))
    })
    .and_then(|r| r);
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// umount2(MNT_DETACH) and unlink; a missing path is not an error.
pub fn remove(path: &Path) -> Result<()> {
    // Only namespace mounts are taken down (a stacked one too), never whatever else lives there.
    for _ in 0..16 {
        if !is_mounted(path) {
            break;
        }
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(Errno::EINVAL | Errno::ENOENT) => break,
            Err(e) => return Err(Error::netns(path, "umount", e)),
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::netns(path, "unlink", e)),
    }
}

/// Binds the calling process's (daemon's) own netns at `path` (used as the sandbox of
/// `--network host`). Idempotent: a path already bound to this namespace is left as it is; one
/// bound to another namespace is an error.
///
/// "Own" is the calling thread's namespace, which is the process's unless the thread called
/// `setns()`/`unshare()` itself (as the hermetic tests do).
pub fn bind_current(path: &Path) -> Result<()> {
    if is_mounted(path) {
        if same_namespace(path, Path::new(THREAD_SELF_NS)) {
            return Ok(());
        }
        return Err(Error::netns(
            path,
            "bind current netns",
            io::Error::new(io::ErrorKind::AlreadyExists, "already bound to another network namespace"),
        ));
    }
    prepare_mount_point(path)?;
    mount(Some(THREAD_SELF_NS), path, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(|e| {
        let _ = fs::remove_file(path);
        Error::netns(path, "bind mount", e)
    })
}

/// Keeps the directory of namespace files in memory: creates `dir` and mounts a tmpfs on it,
/// unless it is on a tmpfs already (under Debian's /run, say) or holds anything (namespaces of an
/// earlier run bound on the disk, which a mount would hide). The files are runtime handles, each an
/// empty bind-mount target: on a disk every one costs an inode allocation (ext4 scans its bitmap
/// past recently deleted inodes, a cost that grows with churn) and every removal a deletion, and a
/// reboot leaves them behind. Returns whether it mounted.
pub fn keep_in_memory(dir: &Path) -> Result<bool> {
    fs::create_dir_all(dir).map_err(|e| Error::netns(dir, "create directory", e))?;
    if filesystem_type(dir).map_err(|e| Error::netns(dir, "statfs", e))? == TMPFS_MAGIC {
        return Ok(false);
    }
    if fs::read_dir(dir).map_err(|e| Error::netns(dir, "read directory", e))?.next().is_some() {
        return Ok(false);
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("cnet-netns"), dir, Some("tmpfs"), flags, Some("mode=0755,size=1m"))
        .map_err(|e| Error::netns(dir, "mount tmpfs", e))?;
    Ok(true)
}

fn filesystem_type(path: &Path) -> nix::Result<i64> {
    // f_type is i64 on glibc x86_64 but narrower elsewhere, hence the cast.
    #[allow(clippy::unnecessary_cast)]
    statfs(path).map(|s| s.filesystem_type().0 as i64)
}

/// True when `path` is a live namespace bind mount (its filesystem is nsfs).
pub fn is_mounted(path: &Path) -> bool {
    filesystem_type(path).is_ok_and(|t| t == NSFS_MAGIC)
}

/// Runs `f` on a throwaway thread inside the namespace at `path` (for sysctls or binding sockets
/// there). Blocks the caller until `f` returns; a panic in `f` is resumed on the caller.
pub fn run_in<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let ns = open(path)?;
    let target = path.to_path_buf();
    run_on_thread(path, move || -> Result<T> {
        setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| Error::netns(&target, "setns", e))?;
        drop(ns);
        Ok(f())
    })?
}

/// Opens the namespace file at `path` (for `setns` or `IFLA_NET_NS_FD`).
pub(crate) fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::netns(path, "open", e))
}

/// Like [`run_in`] for an already open namespace, awaiting the thread instead of blocking on it.
pub(crate) async fn run_in_async<T: Send + 'static>(
    ns: &Arc<File>,
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let ns = Arc::clone(ns);
    let target = path.to_path_buf();
    spawn(path, move || {
        let r = setns(&*ns, CloneFlags::CLONE_NEWNET).map_err(|e| Error::netns(&target, "setns", e)).map(|()| {
            drop(ns);
            catch_unwind(AssertUnwindSafe(f))
        });
        let _ = tx.send(r);
    })?;
    match rx.await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(panic))) => resume_unwind(panic),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::netns(path, "netns thread", io::Error::other("thread died"))),
    }
}

fn spawn(path: &Path, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name("cnet-netns".into())
        .spawn(f)
        .map(drop)
        .map_err(|e| Error::netns(path, "spawn thread", e))
}

/// Runs `f` on a fresh thread and waits for it, resuming its panic here.
fn run_on_thread<T: Send + 'static>(path: &Path, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let handle = std::thread::Builder::new()
        .name("cnet-netns".into())
        .spawn(f)
        .map_err(|e| Error::netns(path, "spawn thread", e))?;
    match handle.join() {
        Ok(v) => Ok(v),
        Err(panic) => resume_unwind(panic),
    }
}

/// Parent directories and the empty file that the namespace is bind-mounted on.
fn prepare_mount_point(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| Error::netns(path, "create parent directory", e))?;
    }
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
        .map_err(|e| Error::netns(path, "create mount point", e))
}

fn same_namespace(a: &Path, b: &Path) -> bool {
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// `ip link set lo up` in the calling thread's namespace, over a blocking netlink socket (no
/// runtime needed on the throwaway thread).
fn set_loopback_up() -> io::Result<()> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    let link = LinkUnspec::new_with_index(LOOPBACK_IFINDEX).up().build();
    let mut msg = NetlinkMessage::from(RouteNetlinkMessage::SetLink(link));
    msg.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    msg.header.sequence_number = 1;
    msg.finalize();
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket.send(&buf, 0)?;
    let (reply, _) = socket.recv_from_full()?;
    let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply).map_err(io::Error::other)?;
    match reply.payload {
        NetlinkPayload::Error(e) if e.code.is_none() => Ok(()),
        NetlinkPayload::Error(e) => Err(e.to_io()),
        other => Err(io::Error::other(format!("unexpected netlink reply: {other:?}"))),
    }
}
