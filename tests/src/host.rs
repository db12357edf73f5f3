//! A simulated host running its own cnetd.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use cnet_api::v1::InfoRequest;
use cnet_api::v1::system_service_client::SystemServiceClient;
use nix::sys::signal::Signal;

use crate::proc::{kill_and_reap, signal_and_wait, spawn_tied};
use crate::{Api, Ns, addr_of, bin, block_on, describe_output, os, tail};

/// How long cnetd gets to answer its first Info call.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long cnetd gets to exit after a signal.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Upper bound for one `cnet` CLI call (it is killed after that).
const CLI_TIMEOUT_SECS: u32 = 60;

/// A host of its own: a network namespace with a private mount namespace, a temporary directory
/// holding `run/` and `state/`, and (once started) a cnetd in that namespace:
/// `cnetd --socket DIR/run/cnetd.sock --run-dir DIR/run --state-dir DIR/state`, with `RUST_LOG=info`
/// and its output appended to `DIR/cnetd.log`.
///
/// Dropping it kills cnetd, then the namespaces (so every bridge, veth, nft table and sandbox netns
/// bind mount goes with them), then removes the directory.
pub struct TestHost {
    cnetd: Option<Child>,
    starts: u32,
    // Field order matters: the namespaces must be gone before the directory is removed.
    ns: Ns,
    dir: tempfile::TempDir,
}

impl TestHost {
    /// A fresh host; cnetd is not started.
    pub fn new() -> TestHost {
        let ns = Ns::with_mount_ns();
        let dir = tempfile::Builder::new().prefix("cnet-test-").tempdir().expect("create a temporary directory");
        for sub in ["run", "state"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create run/ and state/");
        }
        TestHost { cnetd: None, starts: 0, ns, dir }
    }

    /// A fresh host with its cnetd started (see [`TestHost::start_cnetd`]).
    pub fn with_cnetd() -> TestHost {
        let mut host = TestHost::new();
        host.start_cnetd();
        host
    }

    /// The host's namespaces.
    pub fn ns(&self) -> &Ns {
        &self.ns
    }

    /// The temporary directory holding `run/`, `state/` and `cnetd.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir().join("run")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir().join("state")
    }

    /// The container runtime's root (`cnet --root`): `DIR/runtime`.
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir().join("runtime")
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("cnetd.sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir().join("cnetd.log")
    }

    /// Everything cnetd has logged so far (all its runs; each begins with a `==== cnet-tests` line).
    pub fn log(&self) -> String {
        match std::fs::read_to_string(self.log_path()) {
            Ok(log) => log,
            // Only a host whose cnetd never started has no log.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.starts == 0 => String::new(),
            Err(e) => panic!("cannot read {}: {e}", self.log_path().display()),
        }
    }

    /// The last lines of the log, for panic messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log(), 40)
    }

    /// The pid of the running cnetd, if any.
    pub fn cnetd_pid(&self) -> Option<u32> {
        self.cnetd.as_ref().map(Child::id)
    }

    /// Starts cnetd inside the host and waits (up to 10 s) until it answers an Info call on its
    /// socket; panics with the log tail if it exits or does not answer.
    pub fn start_cnetd(&mut self) {
        self.start_daemon(&bin("cnetd"));
    }

    /// [`TestHost::start_cnetd`] with another binary taking cnetd's flags (a stand-in daemon, a
    /// release build…).
    pub fn start_daemon(&mut self, cnetd: &Path) {
        self.start_daemon_with(cnetd, &[]);
    }

    /// [`TestHost::start_cnetd`] with extra flags (e.g. `--dns 198.51.100.2`). A restart needs them
    /// again.
    pub fn start_cnetd_with(&mut self, args: &[&str]) {
        self.start_daemon_with(&bin("cnetd"), args);
    }

    /// [`TestHost::start_cnetd_with`] with extra environment variables (e.g. the test-only
    /// `CNET_TEST_ABORT_AT=STEP`, which makes cnetd abort at that step). A restart drops them.
    pub fn start_cnetd_with_env(&mut self, args: &[&str], env: &[(&str, &str)]) {
        self.start_daemon_full(&bin("cnetd"), args, env);
    }

    fn start_daemon_with(&mut self, cnetd: &Path, args: &[&str]) {
        self.start_daemon_full(cnetd, args, &[]);
    }

    fn start_daemon_full(&mut self, cnetd: &Path, args: &[&str], env: &[(&str, &str)]) {
        assert!(self.cnetd.is_none(), "cnetd is already running");
        self.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open cnetd.log");
        writeln!(log, "==== cnet-tests: start #{} of cnetd ====", self.starts).expect("write cnetd.log");
        let mut cmd = self.ns.cmd(cnetd);
        cmd.arg("--socket")
            .arg(self.socket())
            .arg("--run-dir")
            .arg(self.run_dir())
            .arg("--state-dir")
            .arg(self.state_dir());
        // cnetd's lab agent runs lab parts with the runtime of this host's containers (stand-in
        // daemons take no such flag).
        if cnetd.file_name().is_some_and(|n| n == "cnetd") {
            cmd.arg("--runtime-root").arg(self.runtime_dir());
        }
        cmd.args(args)
            .envs(env.iter().copied())
            .env("RUST_LOG", std::env::var("CNET_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(log.try_clone().expect("dup cnetd.log"))
            .stderr(log);
        let child = spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot start {}: {e}", cnetd.display()));
        let pid = child.id();
        self.cnetd = Some(child);

        let socket = self.socket();
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_error;
        loop {
            if let Some(child) = self.cnetd.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.cnetd = None;
                panic!("cnetd exited during startup with {status}; log tail:\n{}", self.log_tail());
            }
            match probe_info(&socket) {
                Ok(info_pid) => {
                    if info_pid != 0 && info_pid != pid {
                        panic!(
                            "the daemon on {} reports pid {info_pid}, but the cnetd started is {pid}",
                            socket.display()
                        );
                    }
                    return;
                }
                Err(e) => last_error = e,
            }
            if Instant::now() > deadline {
                panic!(
                    "cnetd did not answer Info on {} within {START_TIMEOUT:?} (last error: {last_error}); \
                     log tail:\n{}",
                    socket.display(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `sig` (`SIGKILL` for crash tests, `SIGTERM` for a clean stop) to cnetd and reaps it,
    /// returning its exit status. Panics if cnetd is not running or has not exited 15 s later.
    ///
    /// A graceful stop waits for connected clients to answer the daemon's GOAWAY: drop your [`Api`]
    /// first, or call this from `spawn_blocking` in a multi-thread runtime, since a client whose
    /// runtime is blocked in this call cannot answer.
    pub fn kill_cnetd(&mut self, sig: i32) -> ExitStatus {
        let signal = Signal::try_from(sig).unwrap_or_else(|e| panic!("bad signal {sig}: {e}"));
        let mut child = self.cnetd.take().expect("cnetd is not running");
        match signal_and_wait(&mut child, signal, STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                kill_and_reap(&mut child);
                panic!("cnetd did not exit within {STOP_TIMEOUT:?} of {signal}; log tail:\n{}", self.log_tail());
            }
        }
    }

    /// A gRPC channel to cnetd (`cnet_api::connect` on the socket).
    pub async fn channel(&self) -> tonic::transport::Channel {
        let socket = self.socket();
        cnet_api::connect(&socket)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to cnetd at {}: {e:?}", socket.display()))
    }

    /// The typed clients of cnetd, on a new channel (make a new one after a restart).
    pub async fn api(&self) -> Api {
        Api::new(self.channel().await, self.log_path())
    }

    /// Runs the `cnet` CLI inside the host: `cnet -H SOCKET --root DIR/runtime args…` (killed after 60 s).
    pub fn cnet(&self, args: &[&str]) -> Output {
        self.cnet_command(CLI_TIMEOUT_SECS, args).output().unwrap_or_else(|e| panic!("cannot run cnet {args:?}: {e}"))
    }

    /// The command [`TestHost::cnet`] runs, not yet started, killed after `timeout_secs` (for a CLI
    /// that runs in the background, such as `logs -f` or `wait`).
    pub fn cnet_command(&self, timeout_secs: u32, args: &[&str]) -> Command {
        let mut cmd = self.ns.cmd("timeout");
        cmd.args(["-k", "5", &timeout_secs.to_string()])
            .arg(bin("cnet"))
            .arg("-H")
            .arg(self.socket())
            .arg("--root")
            .arg(self.runtime_dir())
            .args(args)
            .env_remove("CNET_SOCKET");
        cmd
    }

    /// Runs the CLI, panics (with its output and cnetd's log tail) unless it succeeds, and returns
    /// its stdout.
    pub fn cnet_ok(&self, args: &[&str]) -> String {
        let out = self.cnet(args);
        if !out.status.success() {
            panic!(
                "{}\n--- cnetd log tail ---\n{}",
                describe_output(&format!("cnet {}", args.join(" ")), &out),
                self.log_tail()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the CLI, panics unless it fails cleanly (a non-zero exit, not a crash or a timeout),
    /// and returns its stderr.
    pub fn cnet_err(&self, args: &[&str]) -> String {
        let out = self.cnet(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let what = format!("cnet {}", args.join(" "));
        assert!(!out.status.success(), "expected `{what}` to fail\n{}", describe_output(&what, &out));
        assert!(
            matches!(out.status.code(), Some(code) if code != 124 && code != 137 && code < 128)
                && !stderr.contains("panicked"),
            "`{what}` crashed or hung instead of failing cleanly\n{}",
            describe_output(&what, &out)
        );
        stderr
    }

    /// A command run inside a sandbox netns made by cnetd (`netns_path` as returned in
    /// `Sandbox.netns_path`): `nsenter -t HOLDER -m -- nsenter --net=PATH -- program`. The netns
    /// bind mount exists only in the host's private mount namespace, hence the two steps.
    pub fn in_netns(&self, netns_path: &str, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(self.ns.pid().to_string())
            .arg("-m")
            .arg("--")
            .arg("nsenter")
            .arg(os(format!("--net={netns_path}")))
            .arg("--")
            .arg(program)
            .stdin(Stdio::null());
        cmd
    }

    /// `sh -c script` inside a sandbox netns; its output whatever the exit status.
    pub fn run_in(&self, netns_path: &str, script: &str) -> Output {
        self.in_netns(netns_path, "sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run nsenter: {e}"))
    }

    /// `sh -c script` inside a sandbox netns; panics unless it succeeds; returns stdout.
    pub fn run_in_ok(&self, netns_path: &str, script: &str) -> String {
        let out = self.run_in(netns_path, script);
        if !out.status.success() {
            panic!("{}", describe_output(&format!("`{script}` in sandbox netns {netns_path}"), &out));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One `ping -c1 -W1` from the sandbox netns: for asserting that something is NOT reachable.
    pub fn ping_once(&self, netns_path: &str, ip: &str) -> bool {
        let ip = addr_of(ip);
        self.run_in(netns_path, &format!("busybox ping -c 1 -W 1 {ip}")).status.success()
    }

    /// Whether the sandbox reaches `ip` (CIDR accepted) by ping: up to 3 tries of one second each,
    /// so that neighbour resolution and a port coming up do not make it flaky.
    pub fn reaches(&self, netns_path: &str, ip: &str) -> bool {
        (0..3).any(|_| self.ping_once(netns_path, ip))
    }

    /// The links in the host namespace, once cnetd (if it runs) has deleted the links it left
    /// to its background deleter: the host as cnetd leaves it.
    pub fn links(&self) -> Vec<String> {
        self.wait_background_work();
        self.ns.links()
    }

    /// Whether the host namespace has link `name` once cnetd's background deletions are done:
    /// a bridge `network rm` left to the deleter is gone, not "still there for a moment".
    pub fn has_link(&self, name: &str) -> bool {
        self.links().iter().any(|l| l == name)
    }

    /// Waits (up to 10 s, then fails the test) until cnetd reports no pending link deletion and
    /// no pending firewall change: the host as cnetd leaves it. A cnetd that does not answer
    /// (killed, or not started) has none to wait for.
    pub fn wait_background_work(&self) {
        if self.cnetd.is_none() {
            return;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let out = self.cnet(&["info"]);
            if !out.status.success() {
                return;
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let pending = |what: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(what))
                    .unwrap_or_else(|| panic!("`cnet info` shows no {what:?} line:\n{text}"))
                    .trim()
                    .to_string()
            };
            let (links, rules) = (pending("Pending Link Deletions: "), pending("Pending Firewall Changes: "));
            if links == "0" && rules == "0" {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cnetd still has {links} link deletions and {rules} firewall changes pending after 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The links of the host namespace whose names start with `prefix` (`br-`, `veth`).
    pub fn links_starting(&self, prefix: &str) -> Vec<String> {
        let mut links: Vec<String> = self.links().into_iter().filter(|l| l.starts_with(prefix)).collect();
        links.sort();
        links
    }

    /// `nft list table inet cnet` in the host namespace; fails the test if `nft` fails, the table
    /// missing included (ask [`TestHost::has_nft_table`] first where that is a possible outcome).
    pub fn nft_table(&self) -> String {
        self.wait_background_work();
        self.ns.run_ok("nft list table inet cnet")
    }

    /// Whether the host namespace has the `inet cnet` table; fails the test if `nft list tables`
    /// itself fails.
    pub fn has_nft_table(&self) -> bool {
        self.wait_background_work();
        self.ns.run_ok("nft list tables").lines().any(|l| l.trim() == "table inet cnet")
    }

    /// The files under `run/netns/` as the host sees them (inside its mount namespace).
    pub fn netns_files(&self) -> Vec<String> {
        let dir = self.run_dir().join("netns");
        let out = self.ns.run_ok(&format!("[ ! -d '{0}' ] || ls -A '{0}'", dir.display()));
        out.lines().map(str::to_string).collect()
    }
}

impl Default for TestHost {
    fn default() -> Self {
        TestHost::new()
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.cnetd.take() {
            kill_and_reap(&mut child);
        }
        // Then `ns` drops (killing whatever is left inside), then `dir` is removed.
    }
}

/// One Info call with a short timeout; Ok(pid reported by the daemon).
fn probe_info(socket: &Path) -> Result<u32, String> {
    if !socket.exists() {
        return Err(format!("{} does not exist", socket.display()));
    }
    block_on(async {
        let call = async {
            let channel = cnet_api::connect(socket).await.map_err(|e| format!("connect: {e:?}"))?;
            let info =
                SystemServiceClient::new(channel).info(InfoRequest {}).await.map_err(|e| format!("Info: {e}"))?;
            Ok(info.into_inner().pid)
        };
        tokio::time::timeout(Duration::from_secs(2), call)
            .await
            .unwrap_or_else(|_| Err("Info timed out after 2 s".to_string()))
    })
}
