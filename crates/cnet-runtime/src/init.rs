//! Phase 2 of the namespace dance: the container's init process. The supervisor (phase 1, see
//! [`crate::supervisor`]) `clone`s it into new mount, pid, uts and ipc namespaces; it then
//!
//! 1. dies with the supervisor ([`set_parent_death_signal`]),
//! 2. joins the sandbox's network namespace ([`join_network_namespace`]),
//! 3. sets the hostname ([`set_hostname`]),
//! 4. builds and pivots into its root filesystem ([`crate::rootfs::prepare`]),
//! 5. enters the working directory and takes its stdio ([`enter_working_dir`], [`take_stdio`]),
//! 6. resolves the program in `$PATH`, reports [`InitMessage::Ready`] and `execve`s it (as pid 1
//!    of the new pid namespace), or reports why it could not.
//!
//! It runs in a child made by `clone` of a single-threaded process, so it may allocate; it never
//! returns to the supervisor's code (it execs or `_exit`s).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
use nix::unistd::{chdir, execve, sethostname, setsid};

use crate::channel::InitMessage;

/// Everything init needs, prepared by the supervisor before `clone`.
pub struct InitArgs {
    /// The container directory (holds `upper/`, `work/`, the `/etc` files).
    pub dir: PathBuf,
    /// The image's root filesystem.
    pub lower: PathBuf,
    /// The sandbox's network namespace.
    pub netns: OwnedFd,
    pub hostname: String,
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    /// The container's stdin, stdout, stderr (a pty slave thrice with `-t`).
    pub stdio: [RawFd; 3],
    pub tty: bool,
    /// The init end of the channel to the supervisor (close-on-exec).
    pub channel: OwnedFd,
}

/// Docker's default `PATH`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The body of the init process; the return value is its exit status if it could not exec.
pub fn run(args: &InitArgs) -> isize {
    if let Err(message) = setup(args) {
        let _ = InitMessage::SetupFailed { message }.send(&args.channel);
        return 125;
    }
    let (errno, exit_code, message) = exec(args);
    let _ = InitMessage::ExecFailed { errno, exit_code, message }.send(&args.channel);
    exit_code as isize
}

fn setup(args: &InitArgs) -> Result<(), String> {
    set_parent_death_signal()?;
    restore_signals()?;
    join_network_namespace(&args.netns)?;
    set_hostname(&args.hostname)?;
    crate::rootfs::prepare(&args.dir, &args.lower)?;
    enter_working_dir(&args.working_dir)?;
    take_stdio(args.stdio, args.tty)
}

/// SIGKILL when the supervisor dies, so no container outlives it (the whole pid namespace goes
/// with its init).
pub fn set_parent_death_signal() -> Result<(), String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("setting the parent-death signal: {e}"))
}

/// The supervisor blocks and ignores signals for itself; the container starts with defaults.
fn restore_signals() -> Result<(), String> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|e| format!("unblocking signals: {e}"))?;
    // SAFETY: restoring the default disposition installs no handler.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map_err(|e| format!("restoring SIGPIPE: {e}"))?;
    Ok(())
}

/// `setns(netns, CLONE_NEWNET)`: the sandbox cnetd made (or the host's, for `--network host`).
pub fn join_network_namespace(netns: &OwnedFd) -> Result<(), String> {
    setns(netns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("joining the sandbox's network namespace: {e}"))
}

/// In the container's own uts namespace.
pub fn set_hostname(hostname: &str) -> Result<(), String> {
    sethostname(hostname).map_err(|e| format!("setting the hostname {hostname:?}: {e}"))
}

/// `-w`: created if missing, as Docker does.
pub fn enter_working_dir(dir: &str) -> Result<(), String> {
    let dir = if dir.is_empty() { "/" } else { dir };
    std::fs::create_dir_all(dir).map_err(|e| format!("creating the working directory {dir}: {e}"))?;
    chdir(dir).map_err(|e| format!("entering the working directory {dir}: {e}"))
}

/// A new session; stdio on fds 0-2; with a tty, the pty slave becomes the controlling terminal.
pub fn take_stdio(stdio: [RawFd; 3], tty: bool) -> Result<(), String> {
    setsid().map_err(|e| format!("setsid: {e}"))?;
    for (target, fd) in stdio.into_iter().enumerate() {
        // SAFETY: plain dup2 on descriptors the supervisor opened for this process.
        if unsafe { libc::dup2(fd, target as RawFd) } < 0 {
            return Err(format!("connecting fd {target}: {}", std::io::Error::last_os_error()));
        }
    }
    if tty {
        // SAFETY: TIOCSCTTY on stdin, the pty slave, takes no pointer.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
            return Err(format!("setting the controlling terminal: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Where `program` is, searched in `path` as `exec.LookPath` does, or Docker's message for why not.
pub fn look_path(program: &str, path: &str) -> Result<PathBuf, (i32, i32, String)> {
    let not_found = || (libc::ENOENT, 127, format!("exec: \"{program}\": executable file not found in $PATH"));
    let check = |p: &Path| -> Result<(), (i32, i32, String)> {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
            Ok(_) => Err((libc::EACCES, 126, format!("exec: \"{program}\": permission denied"))),
            Err(e) => Err((
                e.raw_os_error().unwrap_or(libc::ENOENT),
                127,
                format!("exec: \"{program}\": stat {program}: no such file or directory"),
            )),
        }
    };
    if program.contains('/') {
        return check(Path::new(program)).map(|()| PathBuf::from(program));
    }
    if program.is_empty() {
        return Err(not_found());
    }
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(program);
        if check(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(not_found())
}

/// Resolves the program, reports `Ready` and execs. Returns only on failure: (errno, exit code, message).
fn exec(args: &InitArgs) -> (i32, i32, String) {
    let path_var = args.env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(DEFAULT_PATH).to_string();
    let program = match look_path(&args.path, &path_var) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let cstr =
        |s: &str| CString::new(s.as_bytes()).map_err(|_| (libc::EINVAL, 125, format!("{s:?} contains a NUL byte")));
    let prepared = (|| {
        let file = cstr(&program.to_string_lossy())?;
        let argv = std::iter::once(&args.path).chain(&args.args).map(|a| cstr(a)).collect::<Result<Vec<_>, _>>()?;
        let envp = args.env.iter().map(|e| cstr(e)).collect::<Result<Vec<_>, _>>()?;
        Ok::<_, (i32, i32, String)>((file, argv, envp))
    })();
    let (file, argv, envp) = match prepared {
        Ok(p) => p,
        Err(e) => return e,
    };
    if InitMessage::Ready.send(&args.channel).is_err() {
        return (libc::EPIPE, 125, "the supervisor went away".into());
    }
    let _ = args.channel.as_raw_fd();
    let errno = execve(&file, &argv, &envp).unwrap_err();
    let code = if errno == nix::errno::Errno::ENOENT { 127 } else { 126 };
    (errno as i32, code, format!("exec: \"{}\": {}", args.path, errno.desc().to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_path_messages() {
        assert_eq!(look_path("sh", "/nonexistent:/bin").unwrap(), PathBuf::from("/bin/sh"));
        let (_, code, msg) = look_path("nosuchcmd", "/bin").unwrap_err();
        assert_eq!(code, 127);
        assert_eq!(msg, "exec: \"nosuchcmd\": executable file not found in $PATH");
        let (_, code, _) = look_path("/etc/passwd", "/bin").unwrap_err();
        assert_eq!(code, 126);
    }
}
