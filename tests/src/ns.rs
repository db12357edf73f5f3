//! Namespaces held by a child process, and veth links between them.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::proc::{Bg, kill_and_reap, spawn_tied};
use crate::{describe_output, require_root};

/// A new network namespace (and optionally a private mount namespace), kept alive by a holder
/// process (`unshare --net [--mount --propagation private] -- sleep infinity`) with `lo` up.
///
/// Dropping it kills every process still inside its namespaces (the holder included) and reaps the
/// holder, so the namespaces and everything in them (links, routes, nft tables, the bind mounts of
/// a private mount namespace) are destroyed by the kernel.
pub struct Ns {
    holder: Child,
    mount: bool,
}

impl Ns {
    /// A network namespace (a fake upstream host, a LAN host, a client).
    pub fn new() -> Ns {
        Ns::start(false)
    }

    /// A network namespace with a private mount namespace: a "test host" whose mounts (cnetd's
    /// netns bind mounts, a tmpfs, …) are invisible to the real host and vanish with it.
    pub fn with_mount_ns() -> Ns {
        Ns::start(true)
    }

    fn start(mount: bool) -> Ns {
        require_root();
        let mut cmd = Command::new("unshare");
        cmd.arg("--net");
        if mount {
            cmd.args(["--mount", "--propagation", "private"]);
        }
        cmd.args(["--", "sleep", "infinity"]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let holder = spawn_tied(cmd)
            .unwrap_or_else(|e| panic!("cannot start a namespace holder with unshare (util-linux): {e}"));
        let mut ns = Ns { holder, mount };
        ns.wait_ready();
        ns.run_ok("ip link set lo up");
        ns
    }

    /// Waits until unshare has made the namespaces and exec'd `sleep`: before that, entering
    /// `/proc/PID/ns/net` would enter the namespace of the test itself.
    fn wait_ready(&mut self) {
        let pid = self.pid();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.holder.try_wait() {
                let mut err = String::new();
                if let Some(mut stderr) = self.holder.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("the namespace holder (unshare) exited with {status}: {err}");
            }
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "sleep" {
                break;
            }
            if Instant::now() > deadline {
                panic!("the namespace holder {pid} did not become ready within 10 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let own = std::fs::read_link("/proc/self/ns/net").expect("read /proc/self/ns/net");
        let its = std::fs::read_link(format!("/proc/{pid}/ns/net")).expect("read holder's netns");
        assert_ne!(own, its, "the namespace holder {pid} is in the test's own netns");
    }

    /// The holder's pid: `nsenter -t PID`, `ip link set X netns PID`.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// Whether this namespace has a private mount namespace.
    pub fn has_mount_ns(&self) -> bool {
        self.mount
    }

    /// `nsenter -t PID -n [-m] -- program`: a command to run inside; add args and run it.
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t").arg(self.pid().to_string()).arg("-n");
        if self.mount {
            cmd.arg("-m");
        }
        cmd.arg("--").arg(program).stdin(Stdio::null());
        cmd
    }

    /// Runs `sh -c script` inside and returns its output (whatever the exit status).
    pub fn run(&self, script: &str) -> Output {
        self.cmd("sh").arg("-c").arg(script).output().unwrap_or_else(|e| panic!("cannot run nsenter (util-linux): {e}"))
    }

    /// Runs `sh -c script` inside, panics (with its stdout and stderr) unless it succeeds, and
    /// returns its stdout.
    pub fn run_ok(&self, script: &str) -> String {
        let out = self.run(script);
        if !out.status.success() {
            panic!("{}", describe_output(&format!("`{script}` in netns of {}", self.pid()), &out));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `program args…` inside as a background process, killed when the [`Bg`] drops.
    /// Run it in the foreground (`httpd -f`, not daemonizing) so the kit keeps hold of it.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Bg {
        let mut cmd = self.cmd(program);
        cmd.args(args);
        Bg::start(cmd)
    }

    /// The names of the links in this namespace (`eth0`, not `eth0@if7`).
    pub fn links(&self) -> Vec<String> {
        parse_links(&self.run_ok("ip -o link show"))
    }

    /// Whether a link named `name` exists here.
    pub fn has_link(&self, name: &str) -> bool {
        self.links().iter().any(|l| l == name)
    }

    /// `ip -o addr show dev DEV` inside (panics if the device does not exist).
    pub fn addrs(&self, dev: &str) -> String {
        self.run_ok(&format!("ip -o addr show dev {dev}"))
    }

    /// Kills every process in this namespace's net (and mount) namespace, the holder last.
    fn kill_everything_inside(&mut self) {
        let pid = self.pid();
        let kinds: &[&str] = if self.mount { &["net", "mnt"] } else { &["net"] };
        let ours: Vec<(String, std::path::PathBuf)> = kinds
            .iter()
            .filter_map(|k| {
                let link = std::fs::read_link(format!("/proc/{pid}/ns/{k}")).ok()?;
                // Never match the test's own namespaces (a holder that died would make that
                // "everything on the machine").
                let own = std::fs::read_link(format!("/proc/self/ns/{k}")).ok()?;
                (link != own).then(|| (k.to_string(), link))
            })
            .collect();
        if ours.len() == kinds.len() {
            let me = std::process::id();
            for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Some(other) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                if other == pid || other == me {
                    continue;
                }
                let inside = ours
                    .iter()
                    .any(|(k, link)| std::fs::read_link(format!("/proc/{other}/ns/{k}")).ok().as_ref() == Some(link));
                if inside {
                    let _ = kill(Pid::from_raw(other as i32), Signal::SIGKILL);
                }
            }
        }
        kill_and_reap(&mut self.holder);
    }
}

impl Default for Ns {
    fn default() -> Self {
        Ns::new()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        self.kill_everything_inside();
    }
}

/// A veth pair between two namespaces, addressed (unless the address is empty) and up:
/// `link(&a, "up0", "198.51.100.1/24", &b, "eth0", "198.51.100.2/24")`. The pair is created directly
/// in the two namespaces; it never exists in the test's own.
pub fn link(a: &Ns, a_if: &str, a_addr: &str, b: &Ns, b_if: &str, b_addr: &str) {
    let out = Command::new("ip")
        .args(["link", "add", a_if, "netns", &a.pid().to_string()])
        .args(["type", "veth", "peer", "name", b_if, "netns", &b.pid().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip (iproute2): {e}"));
    if !out.status.success() {
        panic!("{}", describe_output(&format!("creating veth {a_if}<->{b_if}"), &out));
    }
    for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        if addr.is_empty() {
            ns.run_ok(&format!("ip link set {ifname} up"));
        } else {
            ns.run_ok(&format!("ip addr add {addr} dev {ifname} && ip link set {ifname} up"));
        }
    }
}

/// The names of the links in the namespace the tests run in.
pub fn host_links() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip (iproute2): {e}"));
    assert!(out.status.success(), "{}", describe_output("ip -o link show", &out));
    parse_links(&String::from_utf8_lossy(&out.stdout))
}

/// Link names from `ip -o link show` output (`2: eth0@if3: <…>` gives `eth0`).
pub fn parse_links(ip_o_link: &str) -> Vec<String> {
    ip_o_link
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect()
}
