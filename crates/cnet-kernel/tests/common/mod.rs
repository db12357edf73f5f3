//! Hermetic harness: every test runs on its own std::thread that first unshares a fresh network
//! namespace (so bridges, veths and routes it makes die with it), brings `lo` up there and runs a
//! current-thread tokio runtime. Namespace bind mounts go under a private temp dir that is
//! unmounted and removed afterwards, even when the test panics.

#![allow(dead_code)]

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::Command,
};

use nix::sched::{CloneFlags, unshare};

/// A temp dir for namespace files; on drop every namespace mounted in it is removed, then the dir.
pub struct TestDir {
    pub path: PathBuf,
}

impl TestDir {
    fn new() -> TestDir {
        let path = std::env::temp_dir().join(format!("cnet-kernel-test-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&path).expect("creating the test dir");
        TestDir { path }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for entry in entries.flatten() {
                if let Err(e) = cnet_kernel::netns::remove(&entry.path()) {
                    eprintln!("cleanup: {e}");
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs `test` as described in the module doc; panics (never skips) when not root.
pub fn hermetic<F, Fut>(test: F)
where
    F: FnOnce(PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    assert!(
        nix::unistd::geteuid().is_root(),
        "cnet-kernel integration tests need root (netlink, unshare, mount): run them as root"
    );
    let thread = std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET) for the test");
        run(&["ip", "link", "set", "lo", "up"]);
        let dir = TestDir::new();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        rt.block_on(test(dir.path.clone()));
        drop(rt);
        drop(dir);
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Runs a test-only command (in the test thread's namespace) and returns its stdout; panics with
/// its stderr when it fails.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command inside the namespace bound at `ns` (`nsenter --net=PATH …`).
pub fn run_in(ns: &Path, args: &[&str]) -> String {
    let net = format!("--net={}", ns.display());
    let mut all = vec!["nsenter", net.as_str()];
    all.extend_from_slice(args);
    run(&all)
}

/// One ICMP echo from inside the namespace at `ns` to `addr` (extra `args` such as `-I eth1` go
/// before the address); panics if no reply comes within 2 s. Uses iputils `ping` when installed,
/// else busybox's (scripts/setup.sh installs busybox-static).
pub fn ping(ns: &Path, args: &[&str], addr: &str) -> String {
    let have_ping =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|dir| dir.join("ping").is_file());
    let mut all: Vec<&str> = if have_ping { vec!["ping"] } else { vec!["busybox", "ping"] };
    if addr.contains(':') {
        all.push("-6");
    }
    all.extend_from_slice(&["-c", "1", "-W", "2"]);
    all.extend_from_slice(args);
    all.push(addr);
    run_in(ns, &all)
}
