//! End-to-end tests of containers through the `cnet` CLI: the runtime (`cnet run`, `exec`,
//! `stop`, `rm`…) against a cnetd of its own, each test in its own namespaces (see the kit in
//! `tests/src`). They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test containers`.

use std::time::{Duration, Instant};

use cnet_tests::{TestHost, block_on};

// ------------------------------------------------------------------------------------ helpers

fn host() -> TestHost {
    let mut host = TestHost::new();
    host.start_cnetd();
    host
}

/// `cnet inspect C`'s one object.
fn inspect(host: &TestHost, c: &str) -> serde_json::Value {
    let out = host.cnet_ok(&["inspect", c]);
    let json: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect output is not JSON ({e}):\n{out}"));
    json[0].clone()
}

fn ip_of(host: &TestHost, c: &str) -> String {
    let ip = inspect(host, c)["NetworkSettings"]["IPAddress"].as_str().unwrap_or_default().to_string();
    assert!(!ip.is_empty(), "{c} has no IP address");
    ip
}

/// The container directories of the runtime.
fn container_dirs(host: &TestHost) -> Vec<String> {
    match std::fs::read_dir(host.runtime_dir().join("containers")) {
        Ok(entries) => entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => vec![],
    }
}

fn sandboxes(host: &TestHost) -> Vec<String> {
    block_on(async { host.api().await.list_sandboxes().await }).into_iter().map(|s| s.id).collect()
}

/// The container ids in `cnet network inspect NET`'s `Containers`.
fn network_containers(host: &TestHost, net: &str) -> Vec<String> {
    let out = host.cnet_ok(&["network", "inspect", net]);
    let json: serde_json::Value = serde_json::from_str(&out).expect("network inspect is JSON");
    json[0]["Containers"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Nothing of any container is left: no container directory, no sandbox (netns file), no
/// endpoint on `net`, no host-side veth, no overlay mount in the host's mount namespace.
fn assert_nothing_left(host: &TestHost, net: &str) {
    assert_eq!(container_dirs(host), Vec::<String>::new(), "container directories left");
    assert_eq!(sandboxes(host), Vec::<String>::new(), "sandboxes left");
    let netns: Vec<String> = host.netns_files().into_iter().filter(|f| f != "host").collect();
    assert_eq!(netns, Vec::<String>::new(), "netns files left (besides cnetd's own `host`)");
    assert_eq!(network_containers(host, net), Vec::<String>::new(), "endpoints (leases) left on {net}");
    assert_eq!(host.links_starting("veth"), Vec::<String>::new(), "veths left in the host namespace");
    // Only this test's runtime counts: the machine may have overlay mounts of its own (podman's
    // storage, say), which the test host's mount namespace inherits.
    let mounts = host.ns().run_ok("cat /proc/self/mountinfo");
    let runtime = host.runtime_dir().display().to_string();
    let ours: Vec<&str> = mounts.lines().filter(|l| l.contains("overlay") && l.contains(&runtime)).collect();
    assert!(ours.is_empty(), "overlay mounts of the runtime left on the host:\n{}", ours.join("\n"));
}

fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------------------------------ tests

#[test]
fn containers_on_a_network_reach_each_other_and_rm_leaves_nothing() {
    let host = host();
    host.cnet_ok(&["create", "private-network"]);
    let a = host.cnet_ok(&["run", "-d", "--network", "private-network", "--name", "c1", "busybox", "sleep", "1000"]);
    let a = a.trim();
    assert_eq!(a.len(), 64, "run -d prints the id: {a:?}");
    host.cnet_ok(&["run", "-d", "--network", "private-network", "--name", "c2", "busybox", "sleep", "1000"]);
    let ip2 = ip_of(&host, "c2");

    let ping = host.cnet_ok(&["exec", &a[..12], "ping", "-c", "1", "-W", "2", &ip2]);
    assert!(ping.contains("1 packets received"), "{ping}");

    let ps = host.cnet_ok(&["ps"]);
    let header = ps.lines().next().unwrap();
    for col in ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"] {
        assert!(header.contains(col), "{ps}");
    }
    assert!(ps.contains("c1") && ps.contains("c2") && ps.contains("Up "), "{ps}");
    assert_eq!(host.cnet_ok(&["ps", "-q"]).lines().count(), 2);

    let top = host.cnet_ok(&["top", "c1"]);
    assert!(top.contains("sleep 1000"), "{top}");
    assert_eq!(host.cnet(&["exec", "c1", "sh", "-c", "exit 7"]).status.code(), Some(7));
    let hostname = host.cnet_ok(&["exec", "c1", "hostname"]);
    assert_eq!(hostname.trim(), "c1");

    assert_eq!(network_containers(&host, "private-network").len(), 2);
    host.cnet_ok(&["rm", "-f", "c1", "c2"]);
    assert_eq!(host.cnet_ok(&["ps", "-aq"]), "");
    assert_nothing_left(&host, "private-network");
}

#[test]
fn host_network_sees_the_hosts_interfaces_and_none_only_lo() {
    let host = host();
    host.ns().run_ok("ip link add cnettest0 type veth peer name cnettest1");
    let links = host.cnet_ok(&["run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"]);
    assert!(links.contains("cnettest0"), "{links}");

    let links = host.cnet_ok(&["run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"]);
    let names: Vec<&str> = links.lines().filter_map(|l| l.split(':').nth(1)).map(str::trim).collect();
    assert_eq!(names, ["lo"], "{links}");
    assert_eq!(container_dirs(&host), Vec::<String>::new());
    assert_eq!(sandboxes(&host), Vec::<String>::new());
}

#[test]
fn network_connect_and_disconnect_are_live() {
    let host = host();
    host.cnet_ok(&["create", "n1"]);
    host.cnet_ok(&["create", "n2"]);
    host.cnet_ok(&["run", "-d", "--network", "n1", "--name", "live", "busybox", "sleep", "1000"]);
    assert!(!host.cnet(&["exec", "live", "ip", "link", "show", "eth1"]).status.success());

    host.cnet_ok(&["network", "connect", "n2", "live"]);
    let eth1 = host.cnet_ok(&["exec", "live", "ip", "-o", "addr", "show", "eth1"]);
    assert!(eth1.contains("inet "), "{eth1}");
    let nets = inspect(&host, "live")["NetworkSettings"]["Networks"].clone();
    assert!(nets.get("n1").is_some() && nets.get("n2").is_some(), "{nets:#}");

    host.cnet_ok(&["network", "disconnect", "n2", "live"]);
    assert!(!host.cnet(&["exec", "live", "ip", "link", "show", "eth1"]).status.success());
    host.cnet_ok(&["rm", "-f", "live"]);
    assert_nothing_left(&host, "n2");
}

#[test]
fn stop_kills_a_process_that_ignores_sigterm_after_the_grace_period() {
    let host = host();
    host.cnet_ok(&["run", "-d", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; sleep 1000"]);
    let started = Instant::now();
    host.cnet_ok(&["stop", "-t", "2", "stubborn"]);
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(6), "stop -t 2 took {took:?}");
    let state = inspect(&host, "stubborn")["State"].clone();
    assert_eq!(state["Status"], "exited", "{state:#}");
    assert_eq!(state["ExitCode"], 137, "{state:#}");
    assert_eq!(state["Running"], false);

    // Started again, it keeps its sandbox and address.
    let ip = ip_of(&host, "stubborn");
    host.cnet_ok(&["start", "stubborn"]);
    assert_eq!(inspect(&host, "stubborn")["State"]["Status"], "running");
    assert_eq!(ip_of(&host, "stubborn"), ip);
    host.cnet_ok(&["rm", "-f", "stubborn"]);
    assert_nothing_left(&host, "bridge");
}

#[test]
fn rm_refuses_a_running_container_without_force() {
    let host = host();
    host.cnet_ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "1000"]);
    let err = host.cnet_err(&["rm", "busy"]);
    assert!(err.contains("container is running"), "{err}");
    host.cnet_ok(&["rm", "-f", "busy"]);
    assert_nothing_left(&host, "bridge");
}

#[test]
fn foreground_rm_streams_output_passes_the_exit_code_and_leaves_nothing() {
    let host = host();
    host.cnet_ok(&["create", "private-network"]);
    let out = host.cnet(&[
        "run",
        "--rm",
        "--network",
        "private-network",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_nothing_left(&host, "private-network");

    // /etc files come from the sandbox.
    let hosts = host.cnet_ok(&[
        "run",
        "--rm",
        "--network",
        "private-network",
        "--name",
        "named",
        "busybox",
        "cat",
        "/etc/hosts",
        "/etc/hostname",
    ]);
    assert!(hosts.contains("named"), "{hosts}");
    let logs_dir = container_dirs(&host);
    assert!(logs_dir.is_empty());
}

#[test]
fn restart_on_failure_restarts_n_times_then_stops() {
    let host = host();
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo try; exit 3",
    ]);
    wait_for("flaky to give up", Duration::from_secs(15), || {
        let s = inspect(&host, "flaky");
        s["State"]["Status"] == "exited" && s["RestartCount"] == 2
    });
    let s = inspect(&host, "flaky");
    assert_eq!(s["State"]["ExitCode"], 3);
    assert_eq!(s["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(s["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    assert_eq!(host.cnet_ok(&["logs", "flaky"]), "try\ntry\ntry\n");
    host.cnet_ok(&["rm", "flaky"]);
    assert_nothing_left(&host, "bridge");
}

#[test]
fn bad_input_fails_cleanly_and_leaves_nothing() {
    let host = host();
    host.cnet_ok(&["network", "create", "--subnet", "10.77.0.0/24", "lab"]);
    host.cnet_ok(&["run", "-d", "--network", "lab", "--name", "taken", "busybox", "sleep", "1000"]);
    let before = (container_dirs(&host), sandboxes(&host), network_containers(&host, "lab"));

    let cases: &[(&[&str], &str, i32)] = &[
        (&["run", "-d", "nosuchimage"], "Unable to find image 'nosuchimage:latest' locally", 125),
        (&["run", "-d", "--name", "taken", "busybox", "true"], "is already in use", 125),
        (
            &["run", "--network", "lab", "busybox", "nosuchcmd"],
            "exec: \"nosuchcmd\": executable file not found in $PATH",
            127,
        ),
        (&["run", "-d", "--network", "nosuchnet", "busybox", "true"], "nosuchnet", 125),
        (&["run", "-d", "--network", "lab", "--ip", "10.88.0.5", "busybox", "true"], "10.88.0.5", 125),
    ];
    for (args, message, code) in cases {
        let out = host.cnet(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "cnet {args:?}: {stderr}");
        assert!(stderr.contains(message), "cnet {args:?}: expected {message:?} in: {stderr}");
        let after = (container_dirs(&host), sandboxes(&host), network_containers(&host, "lab"));
        assert_eq!(after, before, "cnet {args:?} left something behind");
    }
    host.cnet_ok(&["rm", "-f", "taken"]);
    assert_nothing_left(&host, "lab");
}

#[test]
fn ids_prefixes_and_generated_names() {
    let host = host();
    let id = host.cnet_ok(&["run", "-d", "busybox", "sleep", "1000"]).trim().to_string();
    let name = inspect(&host, &id[..5])["Name"].as_str().unwrap().trim_start_matches('/').to_string();
    assert!(name.contains('_'), "generated name {name:?}");
    assert_eq!(inspect(&host, &name)["Id"], id.as_str());
    let err = host.cnet_err(&["inspect", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    host.cnet_ok(&["rm", "-f", &id[..8]]);
    assert_nothing_left(&host, "bridge");
}

#[test]
fn published_ports_show_in_port_and_ps_and_serve_through_the_host() {
    let host = host();
    host.cnet_ok(&["create", "web-net"]);
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "web-net",
        "-p",
        "8080:80",
        "--expose",
        "81",
        "-P",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello-web > /www/index.html && httpd -f -p 80 -h /www",
    ]);
    let ports = host.cnet_ok(&["port", "web"]);
    assert!(ports.contains("80/tcp -> 0.0.0.0:8080"), "cnet port:\n{ports}");
    // -P published the exposed 81 on a port cnetd chose, and `port` shows the chosen one.
    let random = ports
        .lines()
        .find(|l| l.starts_with("81/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("81/tcp not published by -P:\n{ports}"));
    assert!(!random.ends_with(":0"), "random port not resolved: {random}");
    let ps = host.cnet_ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "cnet ps:\n{ps}");
    assert!(!ps.contains(":0->"), "cnet ps shows an unresolved port:\n{ps}");
    let mut body = String::new();
    wait_for("the published port to serve", Duration::from_secs(10), || {
        body = host
            .ns()
            .run("timeout 2 busybox wget -q -O - http://127.0.0.1:8080/")
            .stdout
            .iter()
            .map(|&b| b as char)
            .collect();
        body.contains("hello-web")
    });
    let missing = host.cnet_err(&["port", "web", "9999"]);
    assert!(missing.contains("9999"), "{missing}");
    host.cnet_ok(&["rm", "-f", "web"]);
}
