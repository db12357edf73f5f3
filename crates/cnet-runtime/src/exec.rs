//! `cnet exec`: a new process in a running container. The CLI forks a helper that joins the
//! container's namespaces through `/proc/PID/ns/*` (ipc, uts, net, pid, mnt, then its root), and
//! forks again so the program lands in the container's pid namespace; the helper passes the
//! program's exit code through. Without `-t` the program gets the CLI's own stdio; with `-t` a
//! pty whose master the CLI relays.
//!
//! Everything the children need (paths, argv, env, messages) is prepared before the first fork;
//! the children only make system calls.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sched::{CloneFlags, setns};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork};

use crate::container::Container;
use crate::error::{Context, Error, Result};

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub interactive: bool,
    pub tty: bool,
}

/// The namespaces joined, in this order (the mount namespace last: it changes what paths mean).
const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid(format!("{s:?} contains a NUL byte")))
}

/// Runs the command in the container; returns its exit code (126/127 as Docker when it cannot run).
pub fn exec(c: &Container, opts: &ExecOptions) -> Result<i32> {
    if !c.state.is_running() || c.state.pid <= 0 {
        return Err(Error::Conflict(format!("Error response from daemon: container {} is not running", c.id())));
    }
    let Some(program) = opts.command.first() else {
        return Err(Error::Invalid("exec requires at least one command argument".into()));
    };
    let pid = c.state.pid;
    let mut ns_files = Vec::new();
    for (name, flag) in NAMESPACES {
        let path = format!("/proc/{pid}/ns/{name}");
        ns_files.push((File::open(&path).context(|| format!("opening {path}"))?, *flag));
    }
    let root = File::open(format!("/proc/{pid}/root")).context(|| format!("opening /proc/{pid}/root"))?;

    let mut env = crate::lifecycle::merge_env(&c.config.hostname, opts.tty, &c.config.env, &opts.env);
    env.retain(|e| !e.is_empty());
    let path_var = env.iter().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(crate::init::DEFAULT_PATH).to_string();
    let candidates: Vec<CString> = if program.contains('/') {
        vec![cstring(program)?]
    } else {
        path_var
            .split(':')
            .map(|d| cstring(&format!("{}/{program}", if d.is_empty() { "." } else { d })))
            .collect::<Result<_>>()?
    };
    let argv: Vec<CString> = opts.command.iter().map(|a| cstring(a)).collect::<Result<_>>()?;
    let envp: Vec<CString> = env.iter().map(|e| cstring(e)).collect::<Result<_>>()?;
    let workdir = cstring(opts.working_dir.as_deref().filter(|w| !w.is_empty()).unwrap_or(&c.config.working_dir))?;
    let not_found = if program.contains('/') {
        format!(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": stat {program}: no such file or directory\n"
        )
    } else {
        format!(
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": executable file not found in $PATH\n"
        )
    };
    let denied = format!(
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": permission denied\n"
    );
    let devnull = File::open("/dev/null").context(|| "opening /dev/null".into())?;
    let pty = if opts.tty { Some(nix::pty::openpty(None, None).context(|| "allocating a pty".into())?) } else { None };
    let stdio: [RawFd; 3] = match &pty {
        Some(p) => [p.slave.as_raw_fd(); 3],
        None if opts.interactive => [0, 1, 2],
        None => [devnull.as_raw_fd(), 1, 2],
    };

    let child = Child {
        ns_files: &ns_files,
        root: &root,
        workdir: &workdir,
        candidates: &candidates,
        argv: &argv,
        envp: &envp,
        stdio,
        tty: opts.tty,
        not_found: &not_found,
        denied: &denied,
    };
    // SAFETY: the child only makes system calls on data prepared above, then execs or _exits.
    let helper = match unsafe { fork() }.context(|| "fork".into())? {
        ForkResult::Child => child.helper(),
        ForkResult::Parent { child } => child,
    };
    let relay = pty.map(|p| {
        drop(p.slave);
        relay_pty(p.master, opts.interactive)
    });
    let code = wait_code(helper);
    if let Some(mut restore) = relay {
        restore.finish();
    }
    Ok(code)
}

struct Child<'a> {
    ns_files: &'a [(File, CloneFlags)],
    root: &'a File,
    workdir: &'a CString,
    candidates: &'a [CString],
    argv: &'a [CString],
    envp: &'a [CString],
    stdio: [RawFd; 3],
    tty: bool,
    not_found: &'a str,
    denied: &'a str,
}

impl Child<'_> {
    /// The helper: joins the namespaces, forks the program into the pid namespace, passes its
    /// exit code through.
    fn helper(&self) -> ! {
        for (f, flag) in self.ns_files {
            if setns(f, *flag).is_err() {
                die(125, "cnet exec: cannot join the container's namespaces\n");
            }
        }
        // SAFETY: system calls only.
        unsafe {
            if libc::fchdir(self.root.as_raw_fd()) != 0 || libc::chroot(c".".as_ptr()) != 0 {
                die(125, "cnet exec: cannot enter the container's root\n");
            }
        }
        // SAFETY: as above.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => self.program(),
            Ok(ForkResult::Parent { child }) => {
                let code = wait_code(child);
                // SAFETY: leaving the helper without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            Err(_) => die(125, "cnet exec: fork failed\n"),
        }
    }

    fn program(&self) -> ! {
        // SAFETY: system calls only, on prepared data.
        unsafe {
            if libc::chdir(self.workdir.as_ptr()) != 0 {
                libc::chdir(c"/".as_ptr());
            }
            if self.tty {
                libc::setsid();
            }
            for (target, fd) in self.stdio.into_iter().enumerate() {
                if fd != target as RawFd {
                    libc::dup2(fd, target as RawFd);
                }
            }
            if self.tty {
                libc::ioctl(0, libc::TIOCSCTTY, 0);
            }
            let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
            argv.push(std::ptr::null());
            let mut envp: Vec<*const libc::c_char> = self.envp.iter().map(|a| a.as_ptr()).collect();
            envp.push(std::ptr::null());
            let mut denied = false;
            for c in self.candidates {
                libc::execve(c.as_ptr(), argv.as_ptr(), envp.as_ptr());
                if *libc::__errno_location() == libc::EACCES {
                    denied = true;
                }
            }
            if denied { die(126, self.denied) } else { die(127, self.not_found) }
        }
    }
}

fn die(code: i32, message: &str) -> ! {
    // SAFETY: write(2) and _exit(2).
    unsafe {
        libc::write(2, message.as_ptr().cast(), message.len());
        libc::_exit(code)
    }
}

fn wait_code(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            Err(_) => return 125,
        }
    }
}

/// Relays a pty master to the CLI's terminal (raw mode when stdin is one) until the program ends.
pub struct PtyRelay {
    saved: Option<nix::sys::termios::Termios>,
    output: Option<std::thread::JoinHandle<()>>,
}

impl PtyRelay {
    fn finish(&mut self) {
        if let Some(h) = self.output.take() {
            let _ = h.join();
        }
        if let Some(t) = self.saved.take() {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, &t);
        }
    }
}

fn relay_pty(master: OwnedFd, interactive: bool) -> PtyRelay {
    use nix::sys::termios;
    let saved = termios::tcgetattr(std::io::stdin()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(std::io::stdin(), termios::SetArg::TCSANOW, &raw);
    }
    let mut reader = File::from(master);
    if interactive && let Ok(mut writer) = reader.try_clone() {
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin();
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || writer.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    let output = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut out = std::io::stdout();
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                break;
            }
        }
    });
    PtyRelay { saved, output: Some(output) }
}
