//! Self-tests of the namespace test kit. They need root but not cnetd.

use std::path::Path;
use std::time::{Duration, Instant};

use cnet_tests::{Ns, TestHost, Upstream, fetch, host_links, link, unique_name};

/// Whether `pid` is gone (or a zombie, which holds no namespaces), waiting up to 2 s.
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
            Err(e) => panic!("cannot read /proc/{pid}/stat: {e}"),
        };
        // pid (comm) STATE ...
        let state = stat.rsplit(") ").next().and_then(|rest| rest.chars().next());
        if state == Some('Z') {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pids of processes whose network namespace is `netns` (a `/proc/PID/ns/net` link target).
fn processes_in(netns: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok().as_deref() == Some(netns))
        .collect()
}

#[test]
fn two_linked_namespaces_ping_each_other() {
    let a = Ns::new();
    let b = Ns::new();
    let (a_if, b_if) = (unique_name("kta"), unique_name("ktb"));
    link(&a, &a_if, "192.0.2.1/24", &b, &b_if, "192.0.2.2/24");
    a.run_ok("busybox ping -c 1 -W 2 192.0.2.2");
    b.run_ok("busybox ping -c 1 -W 2 192.0.2.1");
    assert!(a.has_link(&a_if) && !a.has_link(&b_if), "{:?}", a.links());
    assert!(b.has_link(&b_if), "{:?}", b.links());
    let host = host_links();
    assert!(!host.contains(&a_if) && !host.contains(&b_if), "{host:?}");
    assert!(a.addrs(&a_if).contains("inet 192.0.2.1/24"));
}

#[test]
fn lo_is_up_and_namespaces_are_distinct() {
    let a = Ns::new();
    let b = Ns::with_mount_ns();
    for ns in [&a, &b] {
        ns.run_ok("busybox ping -c 1 -W 2 127.0.0.1");
        assert_eq!(ns.links(), ["lo"]);
    }
    let net = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(net(a.pid()), net(b.pid()));
    assert_ne!(net(a.pid()), std::fs::read_link("/proc/self/ns/net").unwrap());
    assert!(b.has_mount_ns() && !a.has_mount_ns());
}

#[test]
fn mount_namespace_is_private() {
    let ns = Ns::with_mount_ns();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    ns.run_ok(&format!("mount -t tmpfs cnet-kit-tmpfs {d} && echo inside > {d}/marker"));
    assert_eq!(ns.run_ok(&format!("cat {d}/marker")), "inside\n");
    assert!(ns.run_ok("cat /proc/self/mountinfo").contains(&d.to_string()));
    // Not visible from the test's own mount namespace.
    assert!(!dir.path().join("marker").exists());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&d.to_string()), "{mountinfo}");
    drop(ns);
    // With the namespace gone, nothing is mounted there and the directory goes away cleanly.
    let path = dir.path().to_path_buf();
    dir.close().unwrap();
    assert!(!path.exists());
}

#[test]
fn drop_kills_everything_and_leaves_no_links() {
    let before = host_links();
    let a = Ns::with_mount_ns();
    let b = Ns::new();
    let (a_if, b_if) = (unique_name("ktd"), unique_name("kte"));
    link(&a, &a_if, "203.0.113.1/24", &b, &b_if, "203.0.113.2/24");
    let bridge = unique_name("ktbr");
    a.run_ok(&format!("ip link add {bridge} type bridge && ip link set {bridge} up"));
    // A stray daemon (reparented away from the kit) and a kit-managed background process.
    let stray: u32 = b.run_ok("sleep 1000 >/dev/null 2>&1 </dev/null & echo $!").trim().parse().unwrap();
    let bg = a.spawn("sleep", &["1000"]);
    let bg_pid = bg.pid();
    let (a_pid, b_pid) = (a.pid(), b.pid());
    let a_net = std::fs::read_link(format!("/proc/{a_pid}/ns/net")).unwrap();
    let b_net = std::fs::read_link(format!("/proc/{b_pid}/ns/net")).unwrap();
    assert!(processes_in(&b_net).contains(&stray));

    drop(bg);
    drop(a);
    drop(b);

    for pid in [a_pid, b_pid, stray, bg_pid] {
        assert!(gone(pid), "process {pid} is still alive after the drop");
    }
    assert_eq!(processes_in(&a_net), Vec::<u32>::new());
    assert_eq!(processes_in(&b_net), Vec::<u32>::new());
    let after = host_links();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(new.is_empty(), "new links in the host namespace: {new:?}");
}

#[test]
fn drop_cleans_up_after_a_panic() {
    let pid = std::sync::Mutex::new(0);
    let result = std::panic::catch_unwind(|| {
        let ns = Ns::with_mount_ns();
        *pid.lock().unwrap() = ns.pid();
        ns.run_ok("exit 3");
    });
    let err = result.unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("exit 3") && msg.contains("exit status: 3"), "{msg}");
    let pid = *pid.lock().unwrap();
    assert!(pid != 0 && gone(pid), "holder {pid} survived the panic");
}

#[test]
fn upstream_serves_its_file_to_a_third_namespace() {
    let host = TestHost::new();
    let up = Upstream::new(&host);
    let body = host.ns().run_ok(&fetch(&up.url(), 5));
    assert_eq!(body, up.body());

    let client = Ns::new();
    link(up.ns(), "c0", "203.0.113.1/24", &client, "eth0", "203.0.113.2/24");
    let body = client.run_ok(&fetch("http://203.0.113.1/hello.txt", 5));
    assert_eq!(body, up.body());

    // No route back to anything else: only NAT can make a container reach it.
    let routes = up.ns().run_ok("ip route");
    assert!(!routes.contains("default"), "{routes}");
    assert_eq!(up.addr(), "198.51.100.2");
    assert!(host.has_link("up0"));
}

#[test]
fn test_host_runs_commands_in_bind_mounted_netns_and_cleans_up() {
    let host = TestHost::new();
    let netns_dir = host.run_dir().join("netns");
    let path = netns_dir.join("sb1");
    let p = path.display().to_string();
    // What cnetd does for a sandbox: a netns bind-mounted at run/netns/<id>, in the host's own
    // private mount namespace.
    host.ns().run_ok(&format!("mkdir -p {} && touch {p} && unshare --net={p} true", netns_dir.display()));
    assert_eq!(host.netns_files(), ["sb1"]);
    let out = host.in_netns(&p, "ip").args(["-o", "link"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(cnet_tests::parse_links(&String::from_utf8_lossy(&out.stdout)), ["lo"]);
    host.run_in_ok(&p, "ip link add kv0 type veth peer name kv1");
    assert!(!host.has_link("kv0"));
    assert!(host.run_in_ok(&p, "ip -o link").contains("kv0"));
    // The bind mount is not on the real host.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(&p), "{mountinfo}");
    assert!(!host.has_nft_table());
    assert!(host.links_starting("br-").is_empty());

    let dir = host.dir().to_path_buf();
    let holder = host.ns().pid();
    drop(host);
    assert!(gone(holder), "holder {holder} survived");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[test]
fn cnet_binaries_are_found() {
    use std::os::unix::fs::PermissionsExt;
    for name in ["cnetd", "cnet"] {
        let path = cnet_tests::bin(name);
        let mode = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode();
        assert!(mode & 0o111 != 0, "{} is not executable", path.display());
    }
}

#[test]
fn a_missing_binary_is_explained() {
    let empty = tempfile::tempdir().unwrap();
    let err = std::panic::catch_unwind(|| cnet_tests::bin_in("cnetd", &[empty.path().to_path_buf()])).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().expect("the panic carries a message");
    assert!(msg.contains("cargo build --workspace --bins") && msg.contains("cnetd"), "{msg}");
}

/// The stand-in daemon `src/bin/fake-cnetd.rs` (cargo builds it for the integration tests).
fn fake_cnetd() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_fake-cnetd"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_lifecycle_start_info_sigterm_restart_sigkill() {
    let mut host = TestHost::new();
    host.start_daemon(&fake_cnetd());
    let pid = host.cnetd_pid().unwrap();
    // cnetd runs inside the host's namespaces.
    let net = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(net(pid), net(host.ns().pid()));
    let mut api = host.api().await;
    let info = api.info().await;
    assert_eq!(info.pid, pid);
    assert_eq!(info.run_dir, host.run_dir().display().to_string());
    assert_eq!(info.state_dir, host.state_dir().display().to_string());
    drop(api);

    // A graceful stop waits for the dropped client's connection to close, which needs a runtime
    // that is not blocked in `kill_cnetd`.
    let (status, mut host) =
        tokio::task::spawn_blocking(move || (host.kill_cnetd(cnet_tests::SIGTERM), host)).await.unwrap();
    assert!(status.success(), "{status}");
    assert!(host.cnetd_pid().is_none());
    assert!(gone(pid));

    host.start_daemon(&fake_cnetd());
    let pid = host.cnetd_pid().unwrap();
    assert_eq!(host.api().await.info().await.pid, pid);
    let status = host.kill_cnetd(cnet_tests::SIGKILL);
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    let log = host.log();
    assert!(log.contains("start #1") && log.contains("start #2"), "{log}");
    assert!(log.contains("fake cnetd stopped"), "{log}");

    // A daemon left running is killed by the drop.
    host.start_daemon(&fake_cnetd());
    let pid = host.cnetd_pid().unwrap();
    let dir = host.dir().to_path_buf();
    drop(host);
    assert!(gone(pid), "cnetd {pid} survived the drop");
    assert!(!dir.exists());
}

#[test]
fn start_reports_a_daemon_that_dies() {
    let mut host = TestHost::new();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        host.start_daemon(std::path::Path::new("/bin/false"))
    }))
    .unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("exited during startup"), "{msg}");
    assert!(host.cnetd_pid().is_none());
}

#[tokio::test]
async fn cli_talks_to_the_daemon_inside_the_host() {
    let mut host = TestHost::new();
    host.start_daemon(&fake_cnetd());
    let out = host.cnet_ok(&["info"]);
    let pid = host.cnetd_pid().unwrap();
    assert!(out.contains(&pid.to_string()), "{out}");
}

/// A connected client must answer the daemon's GOAWAY for a graceful stop to finish, so its
/// runtime has to keep running while the test thread blocks in `kill_cnetd`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_connected_client() {
    let mut host = TestHost::new();
    host.start_daemon(&fake_cnetd());
    let mut api = host.api().await;
    api.info().await;
    // kill_cnetd fails the test if the daemon has not exited within its deadline.
    let (status, _host) =
        tokio::task::spawn_blocking(move || (host.kill_cnetd(cnet_tests::SIGTERM), host)).await.unwrap();
    assert!(status.success(), "{status}");
    drop(api);
}

// ---- Multi-host labs: etcd and an underlay bridge (cnet_tests::Lab, cnet_tests::Etcd) ----

/// The network namespace link of a process (`/proc/PID/ns/net`).
fn netns_of(pid: u32) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap()
}

#[test]
fn lab_hosts_and_etcd_reach_each_other_over_the_underlay() {
    cnet_tests::require_root();
    let lab = cnet_tests::Lab::new(3);
    assert_eq!(lab.len(), 3);
    assert_eq!(lab.etcd().endpoint(), "etcd://192.0.2.100:2379");
    assert_eq!(lab.etcd().client_url(), "http://192.0.2.100:2379");
    for i in 0..3 {
        let host = lab.host(i);
        assert_eq!(lab.address(i), format!("192.0.2.{}", i + 1));
        assert_eq!(lab.name(i), format!("host{}", i + 1));
        assert_eq!(host.links(), ["lo", "eth0"]);
        let eth0 = host.ns().run_ok("ip -o link show dev eth0");
        assert!(eth0.contains("mtu 1500") && eth0.contains("state UP"), "{eth0}");
        assert!(host.ns().addrs("eth0").contains(&format!("inet 192.0.2.{}/24", i + 1)));
        assert!(host.cnetd_pid().is_none(), "the lab does not start cnetd by itself");
        assert_eq!(
            lab.cluster_args(i),
            [
                "--cluster-store",
                "etcd://192.0.2.100:2379",
                "--cluster-advertise",
                &format!("192.0.2.{}", i + 1),
                "--node-name",
                &format!("host{}", i + 1)
            ]
        );
        for other in 0..3 {
            if other != i {
                assert!(lab.ping(i, &lab.address(other)), "host{} does not reach host{}", i + 1, other + 1);
            }
        }
        assert!(lab.ping(i, "192.0.2.100"), "host{} does not reach etcd", i + 1);
        lab.etcd().ns().run_ok(&format!("busybox ping -c 1 -W 2 {}", lab.address(i)));
    }
    // The hosts and etcd hang off one bridge in the underlay namespace.
    let ports = lab.underlay().run_ok("ip -o link show master br0");
    let mut ports = cnet_tests::parse_links(&ports);
    ports.sort();
    assert_eq!(ports, ["etcd", "h1", "h2", "h3"]);
    // All in namespaces of their own.
    let nets: std::collections::HashSet<_> = lab
        .hosts()
        .iter()
        .map(|h| netns_of(h.ns().pid()))
        .chain([netns_of(lab.etcd().ns().pid()), netns_of(lab.underlay().pid()), netns_of(std::process::id())])
        .collect();
    assert_eq!(nets.len(), 6);
    // A host unplugged from the bridge is cut off; plugged back, it is reachable again.
    lab.set_host_link(2, false);
    assert!(!lab.host(0).ns().run("busybox ping -c 1 -W 1 192.0.2.3").status.success());
    lab.set_host_link(2, true);
    assert!(lab.ping(0, "192.0.2.3"));
}

#[test]
fn lab_etcd_serves_put_and_get_from_a_host() {
    cnet_tests::require_root();
    let lab = cnet_tests::Lab::new(2);
    let etcd = lab.etcd();
    let (h1, h2) = (lab.host(0).ns(), lab.host(1).ns());
    // Over the underlay, from host1's namespace; read back from host2's and from etcd's own.
    etcd.put_from(h1, "/cnet/test/a", "value of a");
    etcd.put_from(h1, "/cnet/test/b", "{\"json\": [1, 2]}");
    etcd.put_from(h2, "/other/c", "c");
    assert_eq!(etcd.get_from(h2, "/cnet/test/a").as_deref(), Some("value of a"));
    assert_eq!(etcd.get("/cnet/test/b").as_deref(), Some("{\"json\": [1, 2]}"));
    assert_eq!(etcd.get("/cnet/test/nothing"), None);
    assert_eq!(
        etcd.get_prefix_from(h2, "/cnet/"),
        [("/cnet/test/a".to_string(), "value of a".to_string()), ("/cnet/test/b".into(), "{\"json\": [1, 2]}".into())]
    );
    assert_eq!(etcd.get_prefix("").len(), 3);
    assert_eq!(etcd.delete_prefix("/cnet/"), 2);
    assert_eq!(etcd.get_prefix(""), [("/other/c".to_string(), "c".to_string())]);
    // etcd listens on the underlay address only (its peer port on its own loopback).
    let listening = etcd.ns().run_ok("cat /proc/net/tcp");
    // /proc/net/tcp: little-endian address, port in hex, state 0A = LISTEN.
    assert!(listening.contains("640200C0:094B 00000000:0000 0A"), "nothing listens on 192.0.2.100:2379\n{listening}");
    assert!(listening.contains("0100007F:094C 00000000:0000 0A"), "nothing listens on 127.0.0.1:2380\n{listening}");
    assert_eq!(listening.matches(" 0A ").count(), 2, "etcd listens elsewhere too\n{listening}");
    assert!(etcd.log().contains(etcd.name()), "{}", etcd.log_tail());
}

/// `Etcd::etcdctl` runs Debian's etcdctl (package etcd-client, installed by scripts/setup.sh)
/// inside a namespace.
#[test]
fn lab_etcdctl_works() {
    cnet_tests::require_root();
    let lab = cnet_tests::Lab::new(1);
    let etcd = lab.etcd();
    let out = etcd.etcdctl_from(lab.host(0).ns(), &["put", "/cnet/ctl", "from-etcdctl"]);
    assert!(out.status.success(), "{}", cnet_tests::describe_output("etcdctl put", &out));
    assert_eq!(etcd.etcdctl_ok(&["get", "--prefix", "/cnet/"]), "/cnet/ctl\nfrom-etcdctl\n");
    assert_eq!(etcd.get("/cnet/ctl").as_deref(), Some("from-etcdctl"));
    // A failed call is an error, not an empty answer.
    let out = etcd.etcdctl(&["get", "--prefix", "/cnet/", "--nosuchflag"]);
    assert!(!out.status.success(), "{}", cnet_tests::describe_output("etcdctl with a bad flag", &out));
}

#[test]
fn lab_etcd_stop_and_kill_keep_the_data() {
    cnet_tests::require_root();
    let mut lab = cnet_tests::Lab::new(1);
    lab.etcd().put_from(lab.host(0).ns(), "/cnet/keep", "1");
    let first = lab.etcd().pid().unwrap();

    // Down: nothing answers from the host, and the process is gone.
    let status = lab.etcd_mut().stop();
    // etcd exits on SIGTERM by itself (Go re-raises the signal after its handlers): SIGKILL, the
    // fallback after 10 s, means it did not stop.
    assert!(
        status.code() == Some(0) || std::os::unix::process::ExitStatusExt::signal(&status) == Some(cnet_tests::SIGTERM),
        "etcd did not stop on SIGTERM: {status}"
    );
    assert!(gone(first), "etcd {first} survived stop()");
    assert!(lab.etcd().pid().is_none() && !lab.etcd_mut().is_running());
    assert!(lab.etcd().try_put_from(lab.host(0).ns(), "/cnet/while-down", "x").is_err());
    assert!(lab.etcd().data_dir().join("member").is_dir());

    // Up again on the same data.
    lab.etcd_mut().start();
    assert!(lab.etcd_mut().is_running());
    assert_ne!(lab.etcd().pid(), Some(first));
    assert_eq!(lab.etcd().get_from(lab.host(0).ns(), "/cnet/keep").as_deref(), Some("1"));
    assert_eq!(lab.etcd().get("/cnet/while-down"), None);

    // A crash loses nothing acknowledged either.
    lab.etcd().put("/cnet/before-crash", "2");
    let status = lab.etcd_mut().kill();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
    lab.etcd_mut().start();
    let keys: Vec<String> = lab.etcd().get_prefix("/cnet/").into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["/cnet/before-crash", "/cnet/keep"]);
    let log = lab.etcd().log();
    assert!(log.contains("start #1") && log.contains("start #3"), "{log}");
}

#[test]
fn etcd_start_reports_a_server_that_cannot_listen() {
    cnet_tests::require_root();
    // Nothing in its namespace has 192.0.2.100: etcd cannot bind and exits.
    let mut etcd = cnet_tests::Etcd::new("192.0.2.100");
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| etcd.start())).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("exited during startup") && msg.contains("cannot assign requested address"), "{msg}");
    assert!(etcd.pid().is_none());
    // On loopback it needs no link.
    let mut local = cnet_tests::Etcd::new("127.0.0.1");
    local.start();
    local.put("k", "v");
    assert_eq!(local.get("k").as_deref(), Some("v"));
}

#[test]
fn dropping_a_lab_leaves_nothing() {
    cnet_tests::require_root();
    let links_before = host_links();
    let netns_before = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap().stdout;
    let mut lab = cnet_tests::Lab::new(3);
    // Something long-lived in every namespace, as cnetd and containers will be.
    let strays: Vec<u32> = lab
        .hosts()
        .iter()
        .map(|h| h.ns().run_ok("sleep 1000 >/dev/null 2>&1 </dev/null & echo $!").trim().parse().unwrap())
        .collect();
    let holders: Vec<u32> =
        lab.hosts().iter().map(|h| h.ns().pid()).chain([lab.etcd().ns().pid(), lab.underlay().pid()]).collect();
    let nets: Vec<_> = holders.iter().map(|&pid| netns_of(pid)).collect();
    let etcd_pid = lab.etcd().pid().unwrap();
    let etcd_name = lab.etcd().name().to_string();
    let dirs: Vec<std::path::PathBuf> =
        lab.hosts().iter().map(|h| h.dir().to_path_buf()).chain([lab.etcd().dir().to_path_buf()]).collect();
    assert!(dirs.iter().all(|d| d.is_dir()));
    // Nothing of the lab is in the test's own namespace.
    let links = host_links();
    for name in ["br0", "h1", "h2", "h3", "etcd"] {
        assert!(links_before.contains(&name.to_string()) || !links.contains(&name.to_string()), "{links:?}");
    }
    lab.etcd_mut().stop();
    lab.etcd_mut().start();
    let etcd_pid2 = lab.etcd().pid().unwrap();

    drop(lab);

    for pid in holders.iter().chain(&strays).chain([&etcd_pid, &etcd_pid2]) {
        assert!(gone(*pid), "process {pid} is still alive after the lab was dropped");
    }
    for net in &nets {
        assert_eq!(processes_in(net), Vec::<u32>::new(), "processes left in {}", net.display());
    }
    for dir in &dirs {
        assert!(!dir.exists(), "{} was not removed", dir.display());
    }
    // No etcd of this lab anywhere on the machine.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&cmdline).contains(&etcd_name), "{entry:?} still runs etcd {etcd_name}");
    }
    let after = host_links();
    let new: Vec<&String> = after.iter().filter(|l| !links_before.contains(l)).collect();
    assert!(
        new.iter().all(|l| !["br0", "h1", "h2", "h3", "etcd"].contains(&l.as_str())),
        "the lab's links appeared in the test's namespace: {new:?}"
    );
    // No named namespace appeared (labs make none), and no bind mount holds one of the lab's.
    let netns_after = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap().stdout;
    assert_eq!(String::from_utf8_lossy(&netns_after), String::from_utf8_lossy(&netns_before));
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for net in &nets {
        let net = net.display().to_string();
        assert!(!mountinfo.contains(&net), "{net} is still mounted:\n{mountinfo}");
    }
}
