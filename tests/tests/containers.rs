//! End-to-end tests of containers through the `cnet` CLI: the runtime (`cnet run`, `exec`,
//! `stop`, `rm`…) against a cnetd of its own, each test in its own namespaces (see the kit in
//! `tests/src`). They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test containers`.

use std::time::{Duration, Instant};

use cnet_tests::{TestHost, wait_for};

// ------------------------------------------------------------------------------------ helpers

fn host() -> TestHost {
    let mut host = TestHost::new();
    host.start_cnetd();
    host
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
    let ip2 = host.ip_of("c2");

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

    assert_eq!(host.network_containers("private-network").len(), 2);
    host.cnet_ok(&["rm", "-f", "c1", "c2"]);
    assert_eq!(host.cnet_ok(&["ps", "-aq"]), "");
    host.assert_nothing_left("private-network");
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
    assert_eq!(host.container_dirs(), Vec::<String>::new());
    assert_eq!(host.sandbox_ids(), Vec::<String>::new());
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
    let nets = host.inspect("live")["NetworkSettings"]["Networks"].clone();
    assert!(nets.get("n1").is_some() && nets.get("n2").is_some(), "{nets:#}");

    host.cnet_ok(&["network", "disconnect", "n2", "live"]);
    assert!(!host.cnet(&["exec", "live", "ip", "link", "show", "eth1"]).status.success());
    host.cnet_ok(&["rm", "-f", "live"]);
    host.assert_nothing_left("n2");
}

#[test]
fn stop_kills_a_process_that_ignores_sigterm_after_the_grace_period() {
    let host = host();
    host.cnet_ok(&["run", "-d", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; sleep 1000"]);
    let started = Instant::now();
    host.cnet_ok(&["stop", "-t", "2", "stubborn"]);
    // The grace period was waited for (a lower bound, which load cannot break); that the process
    // was then killed shows in its exit code below.
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "stop -t 2 returned after {took:?}, before the grace period ended");
    let state = host.inspect("stubborn")["State"].clone();
    assert_eq!(state["Status"], "exited", "{state:#}");
    assert_eq!(state["ExitCode"], 137, "{state:#}");
    assert_eq!(state["Running"], false);

    // Started again, it keeps its sandbox and address.
    let ip = host.ip_of("stubborn");
    host.cnet_ok(&["start", "stubborn"]);
    assert_eq!(host.inspect("stubborn")["State"]["Status"], "running");
    assert_eq!(host.ip_of("stubborn"), ip);
    host.cnet_ok(&["rm", "-f", "stubborn"]);
    host.assert_nothing_left("bridge");
}

#[test]
fn rm_refuses_a_running_container_without_force() {
    let host = host();
    host.cnet_ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "1000"]);
    let err = host.cnet_err(&["rm", "busy"]);
    assert!(err.contains("container is running"), "{err}");
    host.cnet_ok(&["rm", "-f", "busy"]);
    host.assert_nothing_left("bridge");
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
    host.assert_nothing_left("private-network");

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
    let logs_dir = host.container_dirs();
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
        let s = host.inspect("flaky");
        s["State"]["Status"] == "exited" && s["RestartCount"] == 2
    });
    let s = host.inspect("flaky");
    assert_eq!(s["State"]["ExitCode"], 3);
    assert_eq!(s["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(s["HostConfig"]["RestartPolicy"]["MaximumRetryCount"], 2);
    assert_eq!(host.cnet_ok(&["logs", "flaky"]), "try\ntry\ntry\n");
    host.cnet_ok(&["rm", "flaky"]);
    host.assert_nothing_left("bridge");
}

#[test]
fn bad_input_fails_cleanly_and_leaves_nothing() {
    let host = host();
    host.cnet_ok(&["network", "create", "--subnet", "10.77.0.0/24", "lab"]);
    host.cnet_ok(&["run", "-d", "--network", "lab", "--name", "taken", "busybox", "sleep", "1000"]);
    let before = (host.container_dirs(), host.sandbox_ids(), host.network_containers("lab"));

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
        let after = (host.container_dirs(), host.sandbox_ids(), host.network_containers("lab"));
        assert_eq!(after, before, "cnet {args:?} left something behind");
    }
    host.cnet_ok(&["rm", "-f", "taken"]);
    host.assert_nothing_left("lab");
}

#[test]
fn ids_prefixes_and_generated_names() {
    let host = host();
    let id = host.cnet_ok(&["run", "-d", "busybox", "sleep", "1000"]).trim().to_string();
    let name = host.inspect(&id[..5])["Name"].as_str().unwrap().trim_start_matches('/').to_string();
    assert!(name.contains('_'), "generated name {name:?}");
    assert_eq!(host.inspect(&name)["Id"], id.as_str());
    let err = host.cnet_err(&["inspect", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
    host.cnet_ok(&["rm", "-f", &id[..8]]);
    host.assert_nothing_left("bridge");
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
