//! Processes the kit starts and must not outlive the test binary.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process. Test
//! threads come and go (and tokio's blocking threads exit when idle), so every long-lived child is
//! forked by one spawner thread that lives as long as the process: when the test binary dies, for
//! any reason, the kernel SIGKILLs its namespace holders and daemons, and their namespaces go.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

type Job = (Command, mpsc::Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("cnet-kit-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the kit's spawner thread");
        Mutex::new(tx)
    })
}

/// Spawns `cmd` so that it is SIGKILLed when the test process dies (see the module docs).
/// The caller owns the child: kill and reap it (or wrap it in a [`Bg`]).
pub fn spawn_tied(mut cmd: Command) -> io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: the closure only makes two syscalls, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            // The parent may have died between fork and prctl.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(io::Error::from(nix::errno::Errno::ESRCH));
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send((cmd, tx))
        .expect("the kit's spawner thread is gone");
    rx.recv().expect("the kit's spawner thread did not answer")
}

/// Sends `sig` to the child and reaps it, waiting at most `timeout`. `None` if it had not exited by
/// then (it is then still running and unreaped).
pub(crate) fn signal_and_wait(child: &mut Child, sig: Signal, timeout: Duration) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = kill(Pid::from_raw(child.id() as i32), sig);
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// SIGKILLs and reaps the child.
pub(crate) fn kill_and_reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A background process (a web server, a DNS server, …) killed and reaped when dropped.
/// Start it with [`crate::Ns::spawn`] or [`Bg::start`]; it runs in its own process group, and the
/// whole group is killed.
pub struct Bg {
    child: Child,
    what: String,
}

impl Bg {
    /// Starts `cmd` tied to the test process, in a new process group.
    pub fn start(mut cmd: Command) -> Bg {
        cmd.process_group(0);
        let what = format!("{cmd:?}");
        let child = spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        Bg { child, what }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if it has already exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Panics (naming the command) if it has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.try_wait() {
            panic!("{} exited: {status}", self.what);
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(-(self.child.id() as i32)), Signal::SIGKILL);
        kill_and_reap(&mut self.child);
    }
}
