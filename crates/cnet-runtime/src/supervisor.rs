//! Phase 1 of the namespace dance: the supervisor, one per running container.
//!
//! The CLI starts it (the `cnet-supervise` binary, see [`spawn`]) in a new session, detached, with its
//! stdio on `/dev/null` and `supervisor.log`, and with one end of a socketpair as fd 3. It stays in
//! the host's namespaces (so the test kit, which kills everything in a host's namespaces, kills
//! it; and the container, whose init dies with it, goes too). It
//!
//! - `clone`s the container's init into new mount, pid, uts and ipc namespaces ([`spawn_init`],
//!   phase 2 in [`crate::init`]) and learns over a typed channel whether the program runs;
//! - answers the first client (the CLI, on fd 3) with [`Message::Started`] or
//!   [`Message::StartFailed`];
//! - owns the container's stdio: pipes, or a pty master with `-t`. Output goes to
//!   `container.log` and to attached clients; input comes from an attached client. So a `-d`
//!   container never depends on a CLI, and a foreground `cnet run` is just a client that attached
//!   from the start (on the socketpair, so no output is missed);
//! - serves `supervisor.sock` in the container directory for later clients (`stop`, `kill`,
//!   `rm -f`, `wait`): [`Message`]s in [`Frame`]s;
//! - reaps the init, records the exit code in `state.json`, applies the restart policy (the
//!   sandbox, and so the IP address, is kept), and with `--rm` removes the container at the end.
//!
//! It is single-threaded (one `poll` loop), which `clone` and the parent-death signal of the init
//! rely on.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl, open};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, kill, signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, pipe2};

use crate::channel::{Frame, FrameBuffer, InitMessage, Message};
use crate::container::Container;
use crate::error::{Context, Error, Result, at};
use crate::init::{self, InitArgs};
use crate::logs::{LogWriter, Stream};
use crate::network::PUBLISH_TIMEOUT;
use crate::runtime::Runtime;
use crate::spec::ContainerConfig;
use crate::state::{State, Status};
use crate::time::now_rfc3339;

/// The control socket in the container directory.
pub const SOCKET: &str = "supervisor.sock";
/// The supervisor's own stderr.
pub const SUPERVISOR_LOG: &str = "supervisor.log";
/// The fd on which a supervisor finds its first client.
const FIRST_CLIENT_FD: RawFd = 3;
/// What one read of a container's output or of a client takes at most: small, as the buffer is on
/// the stack and every page of it the supervisor ever touched stays its own for its whole life.
const IO_CHUNK: usize = 8 * 1024;
/// How long output may still arrive after the init exited (a grandchild kept a pipe open).
const DRAIN: Duration = Duration::from_millis(500);

/// Gives the heap's free pages back to the kernel. A report to cnetd builds a tokio runtime and a
/// gRPC connection and drops them; without this, the allocator keeps their pages, and a
/// supervisor lives as long as its container.
fn release_free_memory() {
    // First: reading smaps allocates.
    drop_clean_executable_pages();
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe { libc::malloc_trim(0) };
}

/// Takes the executable's clean read-only pages (its code, its constants) out of this process's
/// page tables. The kernel maps them generously (fault-around maps neighbours of every page
/// touched), so after start-up and a report nearly all 1.7 MiB of code is mapped in every
/// supervisor, and counted in its PSS; the supervisor then sleeps in `poll` for the container's
/// whole life and runs a few pages of it (faulted one by one from now on: MADV_RANDOM). Dropped, they come back from the page cache on the
/// next touch, unchanged: a running executable's file cannot be written (ETXTBSY), and only
/// mappings this process never wrote (not even by relocation) are dropped.
fn drop_clean_executable_pages() {
    let (Ok(exe), Ok(smaps)) = (std::fs::read_link("/proc/self/exe"), std::fs::read_to_string("/proc/self/smaps"))
    else {
        return;
    };
    for (start, end) in clean_read_only_mappings(&smaps, &exe.to_string_lossy()) {
        // SAFETY: the range is a whole mapping of this process, read-only and never written:
        // MADV_RANDOM only stops the kernel mapping neighbours at each fault, MADV_DONTNEED only
        // unmaps its pages, which later accesses fault in again from the file.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_RANDOM);
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// The address ranges of `path`'s read-only mappings that this process never wrote (no page of
/// them copied to anonymous memory, as relocations copy them), from the text of
/// `/proc/self/smaps`. (`Private_Dirty` would not tell: a file page not yet written back since
/// the file was made is dirty too.)
fn clean_read_only_mappings(smaps: &str, path: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut candidate = None;
    for line in smaps.lines() {
        if line.starts_with(|c: char| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            candidate = match (fields.first().and_then(|r| r.split_once('-')), fields.get(1), fields.get(5)) {
                (Some((start, end)), Some(perms), Some(mapped)) if *mapped == path && !perms.contains('w') => {
                    usize::from_str_radix(start, 16).ok().zip(usize::from_str_radix(end, 16).ok())
                }
                _ => None,
            };
        } else if let Some(copied) = line.strip_prefix("Anonymous:")
            && let Some(range) = candidate.take()
            && copied.trim().trim_end_matches("kB").trim() == "0"
        {
            found.push(range);
        }
    }
    found
}

// ------------------------------------------------------------------ starting one (the CLI side)

/// Starts the supervisor of container `c` and returns the first client connection: it receives
/// `Started`/`StartFailed` and, with `attach`, the output until `Exited`.
pub fn spawn(rt: &Runtime, c: &Container, attach: bool) -> Result<UnixStream> {
    let (ours, theirs) = UnixStream::pair().context(|| "creating a socketpair".into())?;
    let log_path = c.dir.join(SUPERVISOR_LOG);
    let log = File::create(&log_path).context(|| at("creating", &log_path))?;
    let exe = rt.supervisor_exe()?;
    let mut cmd = Command::new(&exe);
    cmd.arg("--root").arg(rt.root()).arg("-H").arg(rt.socket()).arg(c.id());
    if attach {
        cmd.arg("--attach");
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    let fd = theirs.as_raw_fd();
    // SAFETY: setsid and dup2 are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(io::Error::from)?;
            if libc::dup2(fd, FIRST_CLIENT_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn().context(|| format!("starting the supervisor {}", exe.display()))?;
    Ok(ours)
}

/// Connects to the supervisor of the container in `dir` (the path goes through `/proc/self/fd`,
/// since a container directory can be longer than a socket address allows).
pub fn connect(dir: &Path) -> io::Result<UnixStream> {
    let dirfd = File::open(dir)?;
    UnixStream::connect(format!("/proc/self/fd/{}/{SOCKET}", dirfd.as_raw_fd()))
}

/// Sends one request and reads the reply (skipping output frames).
pub fn request(dir: &Path, message: Message) -> io::Result<Message> {
    let mut stream = connect(dir)?;
    Frame::Message(message).write_to(&mut stream)?;
    loop {
        match Frame::read_from(&mut stream)? {
            Some(Frame::Message(m)) => return Ok(m),
            Some(_) => {}
            None => return Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
}

// ------------------------------------------------------------------ the supervisor process

/// The container's process while it runs: its pid and the supervisor's ends of its stdio.
struct Running {
    pid: Pid,
    /// stdout and stderr pipes, or the pty master (as stdout).
    outputs: Vec<(OwnedFd, Stream)>,
    /// Where client input goes: a pipe, or a dup of the pty master.
    stdin: Option<OwnedFd>,
    pty: Option<RawFd>,
    exit: Option<i32>,
    exited_at: Option<Instant>,
    kill_at: Option<Instant>,
}

struct Client {
    stream: UnixStream,
    buf: FrameBuffer,
    attached: bool,
    waiting: bool,
}

struct Supervisor {
    rt: Runtime,
    config: ContainerConfig,
    dir: PathBuf,
    state: State,
    log: LogWriter,
    listener: UnixListener,
    signals: SignalFd,
    clients: Vec<Client>,
    /// Held for the supervisor's life: the reaper leaves a supervised container alone, and finds
    /// it when the supervisor dies (the kernel drops the lock with the process).
    _lock: crate::reaper::DirLock,
}

/// The body of `cnet-supervise ID`; returns the process's exit status.
pub fn main(rt: &Runtime, id: &str, attach: bool) -> i32 {
    // SAFETY: fd 3 was set up by `spawn`; it is checked before use.
    let first = (fcntl(unsafe { std::os::fd::BorrowedFd::borrow_raw(FIRST_CLIENT_FD) }, FcntlArg::F_GETFD).is_ok())
        .then(|| unsafe { UnixStream::from_raw_fd(FIRST_CLIENT_FD) });
    if let Some(f) = &first {
        let _ = fcntl(f, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    }
    match Supervisor::new(rt, id) {
        Ok(mut s) => s.run(first, attach),
        Err(e) => {
            eprintln!("cnet supervisor {id}: {e}");
            if let Some(mut f) = first {
                let _ =
                    Frame::Message(Message::StartFailed { message: e.to_string(), exit_code: 125 }).write_to(&mut f);
            }
            125
        }
    }
}

impl Supervisor {
    fn new(rt: &Runtime, id: &str) -> Result<Supervisor> {
        let c = rt.find(id)?;
        let lock = crate::reaper::DirLock::shared(&c.dir)?;
        // SAFETY: ignoring SIGPIPE installs no handler (a client that went away is an EPIPE).
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) }.context(|| "ignoring SIGPIPE".into())?;
        let mut mask = SigSet::empty();
        for s in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            mask.add(s);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).context(|| "blocking signals".into())?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context(|| "creating a signalfd".into())?;
        let dirfd = File::open(&c.dir).context(|| at("opening", &c.dir))?;
        let sock = format!("/proc/self/fd/{}/{SOCKET}", dirfd.as_raw_fd());
        let _ = fs::remove_file(&sock);
        let listener = UnixListener::bind(&sock).context(|| at("listening on", &c.dir.join(SOCKET)))?;
        listener.set_nonblocking(true).context(|| "setting the listener non-blocking".into())?;
        let log = LogWriter::open(&c.dir)?;
        let mut state = c.state.clone();
        state.supervisor_pid = std::process::id() as i32;
        state.manually_stopped = false;
        state.error.clear();
        Ok(Supervisor {
            rt: rt.clone(),
            config: c.config,
            dir: c.dir,
            state,
            log,
            listener,
            signals,
            clients: vec![],
            _lock: lock,
        })
    }

    fn save(&self) {
        if let Err(e) = self.state.save(&self.dir) {
            eprintln!("cnet supervisor {}: {e}", self.config.id);
        }
    }

    fn run(&mut self, mut first: Option<UnixStream>, attach: bool) -> i32 {
        let mut started_once = false;
        let code = loop {
            let running = match spawn_init(&self.config, &self.dir) {
                Ok(r) => r,
                Err(Error::Start { message, exit_code }) => {
                    eprintln!("cnet supervisor {}: {message}", self.config.id);
                    self.state.status = Status::Exited;
                    self.state.exit_code = exit_code;
                    self.state.error = message.clone();
                    self.state.pid = 0;
                    self.state.finished_at = now_rfc3339();
                    if let Some(mut f) = first.take() {
                        let _ = Frame::Message(Message::StartFailed { message, exit_code }).write_to(&mut f);
                    }
                    break exit_code;
                }
                Err(e) => {
                    self.state.status = Status::Exited;
                    self.state.exit_code = 125;
                    self.state.error = e.to_string();
                    if let Some(mut f) = first.take() {
                        let _ = Frame::Message(Message::StartFailed { message: e.to_string(), exit_code: 125 })
                            .write_to(&mut f);
                    }
                    break 125;
                }
            };
            self.state.status = Status::Running;
            self.state.pid = running.pid.as_raw();
            self.state.started_at = now_rfc3339();
            self.state.exit_code = 0;
            self.save();
            started_once = true;
            // Started: from now on it is a container like any other, whatever happens to `run`.
            let _ = fs::remove_file(self.dir.join(crate::reaper::RUN_PENDING));
            crate::checkpoint("supervise:started");
            if let Some(mut f) = first.take() {
                let ok = Frame::Message(Message::Started { pid: running.pid.as_raw() }).write_to(&mut f).is_ok();
                if ok {
                    self.add_client(f, attach);
                }
            }
            // After `run` was told, so an event never delays a start. The report also gives back
            // what starting the container allocated and freed.
            self.report("start", &[]);
            let code = self.supervise(running);
            // Before anyone waiting is told (and `rm -f` removes the sandbox), so `die` comes
            // before the `disconnect` it causes, as in Docker.
            self.report("die", &[("exitCode", code.to_string())]);
            self.state.exit_code = code;
            self.state.pid = 0;
            self.state.finished_at = now_rfc3339();
            let policy = self.config.restart;
            if !policy.should_restart(code, self.state.restart_count, self.state.manually_stopped) {
                self.state.status = Status::Exited;
                break code;
            }
            self.state.status = Status::Restarting;
            self.save();
            // Docker's back-off: 100 ms, doubling with each restart (capped here at 2 s).
            let backoff = Duration::from_millis(100 << self.state.restart_count.min(4)).min(Duration::from_secs(2));
            self.wait_idle(Instant::now() + backoff);
            if self.state.manually_stopped {
                self.state.status = Status::Exited;
                break code;
            }
            self.state.restart_count += 1;
        };
        self.state.supervisor_pid = 0;
        self.save();
        if self.config.auto_remove && started_once {
            self.remove_container();
        }
        self.notify_exit(code);
        let _ = fs::remove_file(self.dir.join(SOCKET));
        0
    }

    /// `--rm`: the sandbox (and its leases) then the directory go.
    fn remove_container(&mut self) {
        let rt = self.rt.clone();
        let id = self.config.id.clone();
        let result =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string()).and_then(
                |tokio| {
                    tokio.block_on(async {
                        let c = rt.find(&id).map_err(|e| e.to_string())?;
                        let mut cnetd = crate::network::Cnetd::connect(rt.socket()).await.map_err(|e| e.to_string())?;
                        crate::removal::remove_stopped(&rt, &c, &mut cnetd).await.map_err(|e| e.to_string())
                    })
                },
            );
        if let Err(e) = result {
            eprintln!("cnet supervisor {id}: removing the container: {e}");
        }
    }

    /// Tells cnetd (and so `cnet events`) what happened to the container; cnetd being slow or
    /// away costs at most [`PUBLISH_TIMEOUT`] and a line in `supervisor.log`, never the container.
    fn report(&self, action: &str, extra: &[(&str, String)]) {
        let event = crate::network::container_event(action, &self.config, extra);
        let socket = self.rt.socket().to_path_buf();
        let sent =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string()).and_then(
                |tokio| {
                    tokio.block_on(async {
                        let publish = async {
                            let mut cnetd = crate::network::Cnetd::connect(&socket).await?;
                            cnetd.publish(event).await
                        };
                        match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
                            Ok(sent) => sent.map_err(|e| e.to_string()),
                            Err(_) => Err(format!("cnetd did not answer within {PUBLISH_TIMEOUT:?}")),
                        }
                    })
                },
            );
        if let Err(e) = sent {
            eprintln!("cnet supervisor {}: cannot report the container's {action} to cnetd: {e}", self.config.id);
        }
        release_free_memory();
    }

    fn notify_exit(&mut self, code: i32) {
        for c in &mut self.clients {
            if c.attached || c.waiting {
                let _ = Frame::Message(Message::Exited { exit_code: code }).write_to(&mut c.stream);
            }
        }
        self.clients.clear();
    }

    fn add_client(&mut self, stream: UnixStream, attached: bool) {
        self.clients.push(Client { stream, buf: FrameBuffer::default(), attached, waiting: false });
    }

    /// Between a exit and a restart: serve clients until `until`.
    fn wait_idle(&mut self, until: Instant) {
        while Instant::now() < until && !self.state.manually_stopped {
            self.poll_once(None, Some(until));
        }
    }

    /// Relays output and serves clients until the container's init has exited (and its output
    /// is drained); returns the exit code.
    fn supervise(&mut self, mut running: Running) -> i32 {
        loop {
            if let Some(code) = running.exit
                && (running.outputs.is_empty() || running.exited_at.is_some_and(|t| t.elapsed() > DRAIN))
            {
                for (_, stream) in running.outputs.drain(..) {
                    self.log.flush(stream);
                }
                return code;
            }
            let deadline = [running.kill_at, running.exited_at.map(|t| t + DRAIN)].into_iter().flatten().min();
            self.poll_once(Some(&mut running), deadline);
            if let Some(at) = running.kill_at
                && Instant::now() >= at
                && running.exit.is_none()
            {
                let _ = kill(running.pid, Signal::SIGKILL);
                running.kill_at = None;
            }
        }
    }

    /// One round of `poll` over the signalfd, the listener, the container's output and the clients.
    fn poll_once(&mut self, mut running: Option<&mut Running>, deadline: Option<Instant>) {
        let mut fds = vec![pollfd(self.signals.as_fd().as_raw_fd()), pollfd(self.listener.as_raw_fd())];
        let outputs = running.as_ref().map_or(0, |r| r.outputs.len());
        if let Some(r) = running.as_ref() {
            fds.extend(r.outputs.iter().map(|(fd, _)| pollfd(fd.as_raw_fd())));
        }
        fds.extend(self.clients.iter().map(|c| pollfd(c.stream.as_raw_fd())));
        let timeout = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).as_millis().min(60_000) as i32 + 1,
            None => -1,
        };
        // SAFETY: `fds` is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n <= 0 {
            return;
        }
        if fds[0].revents != 0 {
            self.on_signals(running.as_deref_mut());
        }
        if fds[1].revents != 0 {
            while let Ok((stream, _)) = self.listener.accept() {
                let _ = stream.set_nonblocking(false);
                self.add_client(stream, false);
            }
        }
        if let Some(r) = running.as_deref_mut() {
            let mut closed = Vec::new();
            for (i, p) in fds[2..2 + outputs].iter().enumerate() {
                if p.revents != 0 && !self.on_output(r, i) {
                    closed.push(i);
                }
            }
            for i in closed.into_iter().rev() {
                let (_, stream) = r.outputs.remove(i);
                self.log.flush(stream);
            }
        }
        let mut gone = Vec::new();
        let ready: Vec<usize> =
            fds[2 + outputs..].iter().enumerate().filter(|(_, p)| p.revents != 0).map(|(i, _)| i).collect();
        for i in ready {
            if !self.on_client(i, running.as_deref_mut()) {
                gone.push(i);
            }
        }
        for i in gone.into_iter().rev() {
            self.clients.remove(i);
        }
    }

    fn on_signals(&mut self, mut running: Option<&mut Running>) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => loop {
                    match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::Exited(pid, code)) => record_exit(running.as_deref_mut(), pid, code),
                        Ok(WaitStatus::Signaled(pid, sig, _)) => {
                            record_exit(running.as_deref_mut(), pid, 128 + sig as i32)
                        }
                        Ok(WaitStatus::StillAlive) | Err(_) => break,
                        Ok(_) => {}
                    }
                },
                // The supervisor itself is asked to stop (shutdown): stop the container for good.
                Ok(_) => self.stop(running.as_deref_mut(), Duration::from_secs(10)),
                Err(_) => {}
            }
        }
    }

    /// Reads one chunk of output; false at end-of-file.
    fn on_output(&mut self, r: &mut Running, i: usize) -> bool {
        let (fd, stream) = (&r.outputs[i].0, r.outputs[i].1);
        let mut buf = [0u8; IO_CHUNK];
        // SAFETY: reading into a buffer of the given length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            return true;
        }
        if n <= 0 {
            // EOF, or EIO on a pty master whose slave is closed.
            return false;
        }
        let data = &buf[..n as usize];
        self.log.write(stream, data);
        let frame = match stream {
            Stream::Stdout => Frame::Stdout(data.to_vec()),
            Stream::Stderr => Frame::Stderr(data.to_vec()),
        }
        .encode();
        self.clients.retain_mut(|c| !c.attached || c.stream.write_all(&frame).is_ok());
        true
    }

    /// Reads from client `i` and handles its complete frames; false if it has gone.
    fn on_client(&mut self, i: usize, mut running: Option<&mut Running>) -> bool {
        let mut buf = [0u8; IO_CHUNK];
        let n = match self.clients[i].stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        self.clients[i].buf.extend(&buf[..n]);
        loop {
            let frame = match self.clients[i].buf.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return true,
                Err(_) => return false,
            };
            let reply = match frame {
                Frame::Stdin(data) => {
                    if let Some(fd) = running.as_ref().and_then(|r| r.stdin.as_ref()) {
                        let _ = write_all_fd(fd.as_raw_fd(), &data);
                    }
                    None
                }
                Frame::StdinEof => {
                    if let Some(r) = running.as_deref_mut()
                        && r.pty.is_none()
                    {
                        r.stdin = None;
                    }
                    None
                }
                Frame::Stdout(_) | Frame::Stderr(_) => None,
                Frame::Message(m) => self.on_request(i, m, running.as_deref_mut()),
            };
            if let Some(reply) = reply
                && Frame::Message(reply).write_to(&mut self.clients[i].stream).is_err()
            {
                return false;
            }
        }
    }

    fn on_request(&mut self, i: usize, m: Message, running: Option<&mut Running>) -> Option<Message> {
        match m {
            Message::Attach => {
                self.clients[i].attached = true;
                Some(Message::Done)
            }
            Message::Wait => {
                self.clients[i].waiting = true;
                None
            }
            Message::Stop { timeout_secs } => {
                self.clients[i].waiting = true;
                self.stop(running, Duration::from_secs(timeout_secs));
                None
            }
            Message::Kill { signal } => {
                let Some(r) = running.filter(|r| r.exit.is_none()) else {
                    return Some(Message::Failed { message: format!("container {} is not running", self.config.id) });
                };
                let sig = match Signal::try_from(signal) {
                    Ok(s) => s,
                    Err(_) => return Some(Message::Failed { message: format!("invalid signal: {signal}") }),
                };
                self.state.manually_stopped = true;
                match kill(r.pid, sig) {
                    Ok(()) => Some(Message::Done),
                    Err(e) => Some(Message::Failed { message: format!("sending {sig}: {e}") }),
                }
            }
            Message::Resize { rows, cols } => {
                if let Some(pty) = running.and_then(|r| r.pty) {
                    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
                    // SAFETY: TIOCSWINSZ reads a winsize.
                    unsafe { libc::ioctl(pty, libc::TIOCSWINSZ, &ws) };
                }
                Some(Message::Done)
            }
            other => Some(Message::Failed { message: format!("unexpected request {other:?}") }),
        }
    }

    /// SIGTERM now, SIGKILL after `grace`; no restart afterwards.
    fn stop(&mut self, running: Option<&mut Running>, grace: Duration) {
        self.state.manually_stopped = true;
        if let Some(r) = running.filter(|r| r.exit.is_none()) {
            if grace.is_zero() {
                let _ = kill(r.pid, Signal::SIGKILL);
            } else {
                let _ = kill(r.pid, Signal::SIGTERM);
                r.kill_at = Some(Instant::now() + grace);
            }
        }
    }
}

fn record_exit(running: Option<&mut Running>, pid: Pid, code: i32) {
    if let Some(r) = running
        && r.pid == pid
    {
        r.exit = Some(code);
        r.exited_at = Some(Instant::now());
    }
}

fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd { fd, events: libc::POLLIN, revents: 0 }
}

fn write_all_fd(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: writing from a valid buffer.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        data = &data[n as usize..];
    }
    Ok(())
}

fn set_cloexec(fd: &OwnedFd) -> Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).context(|| "setting close-on-exec".into())?;
    Ok(())
}

/// Makes the container's stdio and `clone`s its init (see [`crate::init`]); returns once the
/// program runs, or with Docker's exit code for why it could not start.
fn spawn_init(config: &ContainerConfig, dir: &Path) -> Result<Running> {
    let netns = open(config.netns_path.as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .context(|| format!("opening the sandbox's network namespace {}", config.netns_path))?;
    // (the child's ends, kept open until the clone; the supervisor's ends)
    let mut child_ends: Vec<OwnedFd> = Vec::new();
    let mut outputs = Vec::new();
    let (stdio, stdin, pty) = if config.tty {
        let pty = nix::pty::openpty(None, None).context(|| "allocating a pty".into())?;
        set_cloexec(&pty.master)?;
        set_cloexec(&pty.slave)?;
        let slave = pty.slave.as_raw_fd();
        let master_raw = pty.master.as_raw_fd();
        let input = pty.master.try_clone().context(|| "duplicating the pty master".into())?;
        child_ends.push(pty.slave);
        outputs.push((pty.master, Stream::Stdout));
        ([slave; 3], Some(input), Some(master_raw))
    } else {
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).context(|| "creating the stdout pipe".into())?;
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).context(|| "creating the stderr pipe".into())?;
        let (in_child, in_ours) = if config.open_stdin {
            let (r, w) = pipe2(OFlag::O_CLOEXEC).context(|| "creating the stdin pipe".into())?;
            (r, Some(w))
        } else {
            (
                open("/dev/null", OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                    .context(|| "opening /dev/null".into())?,
                None,
            )
        };
        let stdio = [in_child.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
        child_ends.extend([in_child, out_w, err_w]);
        outputs.push((out_r, Stream::Stdout));
        outputs.push((err_r, Stream::Stderr));
        (stdio, in_ours, None)
    };
    let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .context(|| "creating the init channel".into())?;
    let mut env = config.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={}", init::DEFAULT_PATH));
    }
    let args = InitArgs {
        dir: dir.to_path_buf(),
        lower: config.image_rootfs.clone(),
        netns,
        hostname: config.hostname.clone(),
        path: config.path.clone(),
        args: config.args.clone(),
        env,
        working_dir: config.working_dir.clone(),
        stdio,
        tty: config.tty,
        channel: theirs,
    };
    let mut stack = vec![0u8; 4 << 20];
    let flags =
        CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    // SAFETY: the supervisor is single-threaded; the child only runs `init::run` on its own stack
    // and a copy of the supervisor's memory, then execs or exits.
    let pid = unsafe { nix::sched::clone(Box::new(|| init::run(&args)), &mut stack, flags, Some(libc::SIGCHLD)) }
        .context(|| "cloning the container's init into new namespaces".into())?;
    drop(args);
    drop(child_ends);
    let failed = |message: String, exit_code: i32| {
        let _ = waitpid(pid, None);
        Err(Error::Start { message, exit_code })
    };
    let mut ready = false;
    loop {
        match InitMessage::recv(&ours) {
            Ok(Some(InitMessage::Ready)) => ready = true,
            Ok(None) if ready => break,
            Ok(None) => return failed("the container's init died during setup".into(), 125),
            Ok(Some(InitMessage::SetupFailed { message })) => {
                return failed(format!("failed to set up the container: {message}"), 125);
            }
            Ok(Some(InitMessage::ExecFailed { exit_code, message, .. })) => return failed(message, exit_code),
            Err(e) => return failed(format!("reading from the container's init: {e}"), 125),
        }
    }
    Ok(Running { pid, outputs, stdin, pty, exit: None, exited_at: None, kill_at: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_mappings_of_the_executable_are_dropped() {
        let smaps = "\
00200000-002af000 r--p 00000000 fe:00 5392728 /bin/sup
Rss:                 248 kB
Private_Dirty:        12 kB
Anonymous:             0 kB
002af000-00467000 r-xp 000ae000 fe:00 5392728 /bin/sup
Anonymous:             0 kB
00467000-00485000 r--p 00265000 fe:00 5392728 /bin/sup
Anonymous:            16 kB
00485000-00488000 rw-p 00282000 fe:00 5392728 /bin/sup
Anonymous:             0 kB
7f0000000000-7f0000001000 r-xp 00000000 fe:00 1 /lib/libc.so.6
Anonymous:             0 kB
";
        assert_eq!(clean_read_only_mappings(smaps, "/bin/sup"), [(0x200000, 0x2af000), (0x2af000, 0x467000)]);
    }

    #[test]
    fn this_process_has_its_code_among_them_and_runs_on_once_it_is_dropped() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        assert!(!clean_read_only_mappings(&smaps, &exe.to_string_lossy()).is_empty(), "no clean code mapping found");
        // Dropped under this very code, which goes on running (from the page cache).
        drop_clean_executable_pages();
        assert_eq!(format!("{:?}", clean_read_only_mappings(&smaps, "/nowhere")), "[]");
    }
}
