//! Multi-host labs: an etcd server in a namespace of its own, and several [`TestHost`]s joined by
//! an underlay bridge, as DESIGN.md §6 describes ("hosts for multi-host tests are namespaces joined
//! by an underlay bridge in yet another namespace; etcd listens on that underlay").
//!
//! ```text
//!   host1 (TestHost)      host2 (TestHost)      hostN …          etcd (Ns)
//!   eth0 192.0.2.1/24     eth0 192.0.2.2/24     192.0.2.N/24     eth0 192.0.2.100/24
//!        |                     |                     |                |
//!   +----h1--------------------h2--------------------hN-------------etcd----+
//!   |                         br0 (bridge)        underlay (Ns)             |
//!   +-----------------------------------------------------------------------+
//! ```
//!
//! Every name and address lives inside the lab's own namespaces, so labs run in parallel with each
//! other and with every other test, and dropping a [`Lab`] leaves nothing behind.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::proc::{kill_and_reap, signal_and_wait, spawn_tied};
use crate::{Ns, TestHost, describe_output, link, tail, unique_name};

/// etcd's client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// The underlay subnet of a [`Lab`]: host `i` is `192.0.2.(i+1)`, etcd is [`LAB_ETCD_ADDR`].
pub const LAB_SUBNET: &str = "192.0.2.0/24";
/// The address etcd listens on in a [`Lab`].
pub const LAB_ETCD_ADDR: &str = "192.0.2.100";
/// The bridge joining the lab, inside the underlay namespace.
pub const LAB_BRIDGE: &str = "br0";
/// The MTU of the underlay links.
pub const LAB_MTU: u32 = 1500;

/// How long etcd gets to answer `/health` after a start.
const ETCD_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long etcd gets to exit after SIGTERM before it is SIGKILLed.
const ETCD_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The time limit of one HTTP request to etcd, in seconds.
const HTTP_TIMEOUT_SECS: &str = "5";

/// An etcd server (Debian's `etcd`, 3.4) in a network namespace of its own, with its data and its
/// log in a temporary directory:
///
/// `etcd --name NAME --data-dir DIR/data --listen-client-urls http://ADDR:2379
/// --advertise-client-urls http://ADDR:2379 --listen-peer-urls http://127.0.0.1:2380 …`
///
/// The peer port is on the namespace's loopback and unused (a one-member cluster). Make `ADDR`
/// exist in [`Etcd::ns`] (link the namespace somewhere) before [`Etcd::start`], unless it is
/// `127.0.0.1`. [`Etcd::stop`] and [`Etcd::kill`] keep the data, so a test can take etcd down and
/// bring it back with everything it held.
///
/// Keys can be read and written without `etcdctl` (which Debian ships apart, in `etcd-client`):
/// [`Etcd::put`], [`Etcd::get`] and [`Etcd::get_prefix`] speak etcd's JSON gateway
/// (`POST /v3/kv/…`) with `busybox wget`, from etcd's namespace or (`*_from`) any other.
///
/// Dropping it kills etcd, then the namespace, then removes the directory.
pub struct Etcd {
    child: Option<Child>,
    starts: u32,
    name: String,
    addr: String,
    // Field order: the namespace goes before the directory.
    ns: Ns,
    dir: tempfile::TempDir,
}

impl Etcd {
    /// A namespace of its own and a directory for an etcd that will listen on `addr` (an IPv4
    /// address, no prefix length); etcd is not started.
    pub fn new(addr: &str) -> Etcd {
        assert!(addr.parse::<std::net::Ipv4Addr>().is_ok(), "Etcd::new wants an IPv4 address, not {addr:?}");
        let ns = Ns::new();
        let dir = tempfile::Builder::new().prefix("cnet-etcd-").tempdir().expect("create etcd's temporary directory");
        Etcd { child: None, starts: 0, name: unique_name("cnetetcd"), addr: addr.to_string(), ns, dir }
    }

    /// The namespace etcd runs in.
    pub fn ns(&self) -> &Ns {
        &self.ns
    }

    /// The member name (`--name`), unique to this server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address it listens on for clients.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The temporary directory holding `data/` and `etcd.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `--data-dir`: kept across [`Etcd::stop`] and [`Etcd::start`].
    pub fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir().join("etcd.log")
    }

    /// Everything etcd has logged so far (all its runs; each begins with a `==== cnet-tests` line).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last lines of the log, for panic messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log(), 30)
    }

    /// `etcd://ADDR:2379`, the value of cnetd's `--cluster-store`.
    pub fn endpoint(&self) -> String {
        format!("etcd://{}:{ETCD_CLIENT_PORT}", self.addr)
    }

    /// `http://ADDR:2379`, for `etcdctl --endpoints` and HTTP clients.
    pub fn client_url(&self) -> String {
        format!("http://{}:{ETCD_CLIENT_PORT}", self.addr)
    }

    /// The pid of the running etcd, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether etcd is running (it has been started and has not exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// Starts etcd (again, on the same data if it ran before) and waits until it answers
    /// `GET /health` with `"health":"true"`; panics with the log tail if it exits or does not
    /// answer within 30 s.
    pub fn start(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "etcd {} is already running", self.name);
        self.starts += 1;
        let mut log = OpenOptions::new().create(true).append(true).open(self.log_path()).expect("open etcd.log");
        writeln!(log, "==== cnet-tests: start #{} of etcd {} ====", self.starts, self.name).expect("write etcd.log");
        let client = self.client_url();
        let peer = "http://127.0.0.1:2380";
        let mut cmd = self.ns.cmd("etcd");
        cmd.arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer])
            .arg("--initial-cluster")
            .arg(format!("{}={peer}", self.name))
            .arg("--initial-cluster-token")
            .arg(&self.name)
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            // No environment from the caller: etcd reads ETCD_* variables as flags.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into()))
            .stdout(log.try_clone().expect("dup etcd.log"))
            .stderr(log);
        let child = spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot start etcd (Debian's etcd-server package): {e}"));
        self.child = Some(child);
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + ETCD_START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                panic!("etcd {} exited during startup with {status}; log tail:\n{}", self.name, self.log_tail());
            }
            let out = self.http_in(&self.ns, "GET", "/health", None);
            let body = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && body.contains("\"health\":\"true\"") {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "etcd {} did not answer {}/health within {ETCD_START_TIMEOUT:?} (last answer: {}{}); \
                     log tail:\n{}",
                    self.name,
                    self.client_url(),
                    body.trim(),
                    String::from_utf8_lossy(&out.stderr).trim(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops etcd with SIGTERM (SIGKILL if it has not exited 10 s later) and returns its exit
    /// status; the data stays. Panics if it is not running.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM)
    }

    /// Kills etcd with SIGKILL (a crash) and returns its exit status; the data stays (etcd syncs
    /// its log before it acknowledges a write). Panics if it is not running.
    pub fn kill(&mut self) -> ExitStatus {
        self.signal(Signal::SIGKILL)
    }

    fn signal(&mut self, signal: Signal) -> ExitStatus {
        let mut child = self.child.take().unwrap_or_else(|| panic!("etcd {} is not running", self.name));
        match signal_and_wait(&mut child, signal, ETCD_STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                child.wait().unwrap_or_else(|e| panic!("cannot reap etcd {}: {e}", self.name))
            }
        }
    }

    /// Runs `etcdctl --endpoints http://ADDR:2379 args…` (API v3) inside etcd's namespace and
    /// returns its output whatever the exit status, e.g. `etcd.etcdctl(&["get", "--prefix",
    /// "/cnet/"])`. Panics if `etcdctl` is not installed (Debian's `etcd-client` package).
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        self.etcdctl_from(&self.ns, args)
    }

    /// [`Etcd::etcdctl`] run inside another namespace (a host of the lab).
    pub fn etcdctl_from(&self, ns: &Ns, args: &[&str]) -> Output {
        if !on_path("etcdctl") {
            panic!(
                "etcdctl is not installed: it is in Debian's etcd-client package (apt-get install etcd-client); \
                 Etcd::put, Etcd::get and Etcd::get_prefix need only busybox"
            );
        }
        let mut cmd = ns.cmd("timeout");
        cmd.args(["-k", "5", "30", "etcdctl", "--endpoints", &self.client_url(), "--dial-timeout", "5s"])
            .args(args)
            .env("ETCDCTL_API", "3");
        cmd.output().unwrap_or_else(|e| panic!("cannot run etcdctl {args:?}: {e}"))
    }

    /// [`Etcd::etcdctl`], panicking (with its output and etcd's log tail) unless it succeeds;
    /// returns its stdout.
    pub fn etcdctl_ok(&self, args: &[&str]) -> String {
        let out = self.etcdctl(args);
        if !out.status.success() {
            panic!(
                "{}\n--- etcd log tail ---\n{}",
                describe_output(&format!("etcdctl {}", args.join(" ")), &out),
                self.log_tail()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sets `key` to `value`, from etcd's own namespace.
    pub fn put(&self, key: &str, value: &str) {
        self.put_from(&self.ns, key, value)
    }

    /// Sets `key` to `value` from another namespace (a host of the lab), over the network; panics
    /// unless etcd acknowledges it.
    pub fn put_from(&self, ns: &Ns, key: &str, value: &str) {
        let body = serde_json::json!({ "key": b64(key.as_bytes()), "value": b64(value.as_bytes()) });
        let answer = self.kv_call(ns, "/v3/kv/put", &body);
        assert!(answer.get("header").is_some(), "etcd did not acknowledge put {key}: {answer}");
    }

    /// [`Etcd::put_from`] returning an error (the request's output) instead of panicking when etcd
    /// does not answer: for "etcd is down" assertions.
    pub fn try_put_from(&self, ns: &Ns, key: &str, value: &str) -> Result<(), String> {
        let body = serde_json::json!({ "key": b64(key.as_bytes()), "value": b64(value.as_bytes()) });
        let out = self.http_in(ns, "POST", "/v3/kv/put", Some(&body.to_string()));
        if out.status.success() {
            Ok(())
        } else {
            Err(describe_output(&format!("put {key} to {}", self.client_url()), &out))
        }
    }

    /// The value of `key`, read from etcd's own namespace.
    pub fn get(&self, key: &str) -> Option<String> {
        self.get_from(&self.ns, key)
    }

    /// The value of `key`, read from another namespace.
    pub fn get_from(&self, ns: &Ns, key: &str) -> Option<String> {
        let body = serde_json::json!({ "key": b64(key.as_bytes()) });
        kvs(&self.kv_call(ns, "/v3/kv/range", &body)).into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Every key starting with `prefix` (`""` for all) and its value, in key order (values as
    /// lossy UTF-8), read from etcd's own namespace: what `etcdctl get --prefix` shows.
    pub fn get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.get_prefix_from(&self.ns, prefix)
    }

    /// [`Etcd::get_prefix`] from another namespace.
    pub fn get_prefix_from(&self, ns: &Ns, prefix: &str) -> Vec<(String, String)> {
        let (key, end) = prefix_range(prefix.as_bytes());
        let body = serde_json::json!({ "key": b64(&key), "range_end": b64(&end) });
        kvs(&self.kv_call(ns, "/v3/kv/range", &body))
    }

    /// Deletes every key starting with `prefix` (`""` for all), from etcd's own namespace; returns
    /// how many there were.
    pub fn delete_prefix(&self, prefix: &str) -> u64 {
        let (key, end) = prefix_range(prefix.as_bytes());
        let body = serde_json::json!({ "key": b64(&key), "range_end": b64(&end) });
        let answer = self.kv_call(&self.ns, "/v3/kv/deleterange", &body);
        answer.get("deleted").and_then(|d| d.as_str()).and_then(|d| d.parse().ok()).unwrap_or(0)
    }

    /// POSTs `body` to etcd's JSON gateway from `ns`; panics (with etcd's log tail) unless it
    /// answers with JSON.
    fn kv_call(&self, ns: &Ns, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let out = self.http_in(ns, "POST", path, Some(&body.to_string()));
        if !out.status.success() {
            panic!(
                "{}\n--- etcd log tail ---\n{}",
                describe_output(&format!("POST {}{path} {body}", self.client_url()), &out),
                self.log_tail()
            );
        }
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "etcd answered POST {path} with something that is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        // Every answer of the KV service carries a header; an error (`{"error": …}`) has none, and
        // must not be read as "no keys".
        if answer.get("header").is_none() {
            panic!("etcd answered POST {path} {body} with an error: {answer}");
        }
        answer
    }

    /// `timeout 5 busybox wget -q -O - [--post-data BODY] http://ADDR:2379PATH` inside `ns`.
    fn http_in(&self, ns: &Ns, method: &str, path: &str, body: Option<&str>) -> Output {
        let mut cmd = ns.cmd("timeout");
        cmd.args(["-k", "2", HTTP_TIMEOUT_SECS, "busybox", "wget", "-q", "-O", "-"]);
        match (method, body) {
            ("POST", Some(body)) => {
                cmd.args(["--header", "Content-Type: application/json", "--post-data", body]);
            }
            ("GET", None) => {}
            other => panic!("unsupported request {other:?}"),
        }
        cmd.arg(format!("{}{path}", self.client_url()))
            .output()
            .unwrap_or_else(|e| panic!("cannot run nsenter/busybox wget: {e}"))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_and_reap(&mut child);
        }
        // Then `ns` drops (killing whatever is left inside), then `dir` is removed.
    }
}

/// A multi-host lab: an underlay namespace with a bridge ([`LAB_BRIDGE`]), an [`Etcd`] on it at
/// [`LAB_ETCD_ADDR`]`/24` (running), and `n` [`TestHost`]s named `host1`…`hostN`, each with an
/// `eth0` on the bridge at `192.0.2.(i+1)/24` (MTU 1500). cnetd is not started:
/// [`Lab::start_cnetd`] starts it with the cluster flags.
///
/// The underlay side of host `i`'s veth is `h{i+1}` and etcd's is `etcd`, both in the underlay
/// namespace ([`Lab::set_host_link`] unplugs and replugs a host).
///
/// Dropping it removes the hosts (their cnetd, namespaces and directories), then etcd, then the
/// underlay, leaving nothing on the machine.
pub struct Lab {
    // Field order is the teardown order: hosts, etcd, underlay.
    hosts: Vec<TestHost>,
    etcd: Etcd,
    underlay: Ns,
}

impl Lab {
    /// Builds a lab of `n_hosts` hosts (1 to 99) with etcd running and answering.
    pub fn new(n_hosts: usize) -> Lab {
        assert!((1..=99).contains(&n_hosts), "a lab has 1 to 99 hosts, not {n_hosts}");
        let underlay = Ns::new();
        underlay.run_ok(&format!("ip link add {LAB_BRIDGE} type bridge && ip link set {LAB_BRIDGE} mtu {LAB_MTU} up"));

        let mut etcd = Etcd::new(LAB_ETCD_ADDR);
        link(&underlay, "etcd", "", etcd.ns(), "eth0", &format!("{LAB_ETCD_ADDR}/24"));
        underlay.run_ok(&format!("ip link set etcd mtu {LAB_MTU} master {LAB_BRIDGE}"));
        etcd.ns().run_ok(&format!("ip link set eth0 mtu {LAB_MTU}"));
        // etcd elects itself while the hosts are made.
        etcd.spawn();

        let mut hosts = Vec::with_capacity(n_hosts);
        for i in 0..n_hosts {
            let host = TestHost::new();
            let port = format!("h{}", i + 1);
            link(&underlay, &port, "", host.ns(), "eth0", &format!("{}/24", lab_address(i)));
            underlay.run_ok(&format!("ip link set {port} mtu {LAB_MTU} master {LAB_BRIDGE}"));
            host.ns().run_ok(&format!("ip link set eth0 mtu {LAB_MTU}"));
            hosts.push(host);
        }
        let mut lab = Lab { hosts, etcd, underlay };
        lab.etcd.wait_ready();
        lab
    }

    /// How many hosts the lab has.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Always false: a lab has at least one host.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Host `i` (0-based; its name is `host{i+1}`).
    pub fn host(&self, i: usize) -> &TestHost {
        self.check(i);
        &self.hosts[i]
    }

    pub fn host_mut(&mut self, i: usize) -> &mut TestHost {
        self.check(i);
        &mut self.hosts[i]
    }

    /// All the hosts, in order.
    pub fn hosts(&self) -> &[TestHost] {
        &self.hosts
    }

    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    pub fn etcd_mut(&mut self) -> &mut Etcd {
        &mut self.etcd
    }

    /// The underlay namespace holding the bridge.
    pub fn underlay(&self) -> &Ns {
        &self.underlay
    }

    /// Host `i`'s underlay address, `192.0.2.(i+1)`.
    pub fn address(&self, i: usize) -> String {
        self.check(i);
        lab_address(i)
    }

    /// Host `i`'s name, `host{i+1}` (its `--node-name`).
    pub fn name(&self, i: usize) -> String {
        self.check(i);
        format!("host{}", i + 1)
    }

    /// The cluster flags of host `i`: `--cluster-store etcd://192.0.2.100:2379 --cluster-advertise
    /// 192.0.2.(i+1) --node-name host{i+1}`.
    pub fn cluster_args(&self, i: usize) -> Vec<String> {
        vec![
            "--cluster-store".into(),
            self.etcd.endpoint(),
            "--cluster-advertise".into(),
            self.address(i),
            "--node-name".into(),
            self.name(i),
        ]
    }

    /// Starts cnetd on host `i` with [`Lab::cluster_args`] and waits until it answers.
    pub fn start_cnetd(&mut self, i: usize) {
        self.start_cnetd_with_extra(i, &[]);
    }

    /// [`Lab::start_cnetd`] with more flags after the cluster flags (e.g. `--cluster-ttl 5`).
    pub fn start_cnetd_with_extra(&mut self, i: usize, extra: &[&str]) {
        let mut args = self.cluster_args(i);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.host_mut(i).start_cnetd_with(&args);
    }

    /// Starts cnetd on every host (concurrently) and waits until all of them answer.
    pub fn start_all(&mut self) {
        let args: Vec<Vec<String>> = (0..self.len()).map(|i| self.cluster_args(i)).collect();
        let results: Vec<std::thread::Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .hosts
                .iter_mut()
                .zip(&args)
                .map(|(host, args)| {
                    s.spawn(move || {
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        host.start_cnetd_with(&args);
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        for result in results {
            if let Err(panic) = result {
                std::panic::resume_unwind(panic);
            }
        }
    }

    /// Unplugs (`up == false`) or replugs host `i` from the underlay bridge: its port `h{i+1}` in
    /// the underlay namespace goes down or up (the host keeps its `eth0` and address).
    pub fn set_host_link(&self, i: usize, up: bool) {
        self.check(i);
        let state = if up { "up" } else { "down" };
        self.underlay.run_ok(&format!("ip link set h{} {state}", i + 1));
    }

    /// `busybox ping -c 1 -W 2 ADDR` from host `from` (retried 3 times): whether it answers.
    pub fn ping(&self, from: usize, addr: &str) -> bool {
        let host = self.host(from);
        (0..3).any(|_| host.ns().run(&format!("busybox ping -c 1 -W 2 {addr}")).status.success())
    }

    fn check(&self, i: usize) {
        assert!(i < self.hosts.len(), "the lab has {} hosts (0-based), there is no host {i}", self.hosts.len());
    }
}

/// Host `i`'s address on a lab's underlay.
fn lab_address(i: usize) -> String {
    format!("192.0.2.{}", i + 1)
}

/// Whether `program` is an executable file in `$PATH`.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The `[key, range_end)` of every key starting with `prefix`, as etcd's clients compute it
/// (`clientv3.GetPrefixRangeEnd`); `\0`,`\0` (every key) for an empty prefix.
fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (vec![0], vec![0]);
    }
    let mut end = prefix.to_vec();
    while let Some(last) = end.last_mut() {
        if *last < 0xff {
            *last += 1;
            return (prefix.to_vec(), end);
        }
        end.pop();
    }
    // Every byte is 0xff: no upper bound.
    (prefix.to_vec(), vec![0])
}

/// The `kvs` of a range answer, decoded.
fn kvs(answer: &serde_json::Value) -> Vec<(String, String)> {
    let field = |kv: &serde_json::Value, name: &str| {
        let text = kv.get(name).and_then(|v| v.as_str()).unwrap_or("");
        String::from_utf8_lossy(&unb64(text).unwrap_or_else(|| panic!("etcd sent bad base64 in {kv}"))).into_owned()
    };
    answer
        .get("kvs")
        .and_then(|kvs| kvs.as_array())
        .map(|kvs| kvs.iter().map(|kv| (field(kv, "key"), field(kv, "value"))).collect())
        .unwrap_or_default()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what etcd's JSON gateway wants for bytes).
fn b64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` if it is not base64.
fn unb64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("/cnet/nodes/", "L2NuZXQvbm9kZXMv"),
        ] {
            assert_eq!(b64(plain.as_bytes()), encoded);
            assert_eq!(unb64(encoded).unwrap(), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unb64(&b64(&all)).unwrap(), all);
        assert!(unb64("a!b").is_none());
    }

    #[test]
    fn programs_on_path() {
        assert!(on_path("sh"));
        assert!(!on_path("cnet-no-such-program"));
    }

    #[test]
    fn prefix_ranges() {
        assert_eq!(prefix_range(b"/cnet/"), (b"/cnet/".to_vec(), b"/cnet0".to_vec()));
        assert_eq!(prefix_range(b"a\xff"), (b"a\xff".to_vec(), b"b".to_vec()));
        assert_eq!(prefix_range(b"\xff"), (b"\xff".to_vec(), vec![0]));
        assert_eq!(prefix_range(b""), (vec![0], vec![0]));
    }
}
