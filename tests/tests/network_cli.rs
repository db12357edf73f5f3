//! End-to-end tests of cnet's networking features through the `cnet` CLI, each against a cnetd of
//! its own in its own namespaces (see the kit in `tests/src`): `cnet network prune` and
//! `network ls --filter/-q`; the `-p` forms of `cnet run` (`127.0.0.1::80`, port ranges, `/udp`,
//! `[v6]:HOST:CONTAINER`), each proven with a real client; `cnet run --ip`; `--ipv6` networks;
//! the `host` and `none` networks; the flags and bridge options of `cnet network create`
//! (`--aux-address`, `--attachable`, `--label`, `bridge.name`, `enable_icc`,
//! `enable_ip_masquerade`, `driver.mtu`, `--internal`) and the default subnet skipping the host's
//! routes; `CNET_SOCKET` and `cnetd --nft-table`. They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test network_cli`.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::File;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use cnet_tests::{Bg, Ns, TestHost, Upstream, bin, describe_output, fetch, wait_for};
use serde_json::Value;

/// The host's address on its link to the [`Upstream`] (device `up0`).
const HOST_ADDR: &str = "198.51.100.1";
/// How long a test waits for a state it needs (generous: two copies of the suite may share 2 cores).
const WAIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------ helpers

/// A host whose uplink to an [`Upstream`] exists before its cnetd starts, as on a real machine.
fn host_with_upstream() -> (TestHost, Upstream) {
    let mut host = TestHost::new();
    let upstream = Upstream::new(&host);
    host.start_cnetd();
    (host, upstream)
}

/// A container shell script serving `port-P\n` on each port P with busybox httpd.
fn serve_script(ports: &[u16]) -> String {
    let mut script = String::new();
    for p in ports {
        script.push_str(&format!(
            "mkdir -p /www/{p} && echo port-{p} > /www/{p}/index.html && httpd -f -p {p} -h /www/{p} & "
        ));
    }
    script.push_str("wait");
    script
}

/// `cnet run -d --name NAME ARGS… busybox sh -c SCRIPT`; returns the id.
fn run_d(host: &TestHost, name: &str, args: &[&str], script: &str) -> String {
    let mut all = vec!["run", "-d", "--name", name];
    all.extend_from_slice(args);
    all.extend_from_slice(&["busybox", "sh", "-c", script]);
    let id = host.cnet_ok(&all).trim().to_string();
    assert_eq!(id.len(), 64, "`cnet run -d` did not print an id: {id:?}");
    id
}

/// `cnet run -d --name NAME ARGS… busybox sleep 1000`.
fn sleeper(host: &TestHost, name: &str, args: &[&str]) -> String {
    run_d(host, name, args, "exec sleep 1000")
}

/// Waits until the container's own httpd answers on `port` from inside it.
fn wait_serving(host: &TestHost, container: &str, port: u16) {
    let url = format!("http://127.0.0.1:{port}/");
    wait_for(&format!("httpd in {container} to answer on :{port}"), WAIT, || {
        host.cnet(&["exec", container, "timeout", "5", "wget", "-q", "-O", "-", &url]).status.success()
    });
}

fn body(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fetches `url` from `ns` (10 s at most) and asserts the body is `want`.
fn assert_fetch(ns: &Ns, who: &str, url: &str, want: &str) {
    let out = ns.run(&fetch(url, 10));
    assert!(out.status.success() && body(&out) == want, "{}", describe_output(&format!("{who} -> {url}"), &out));
}

/// Asserts that a client (busybox ping or wget, under `timeout`) failed the way a client fails
/// when nothing answers: exit 1 (no reply, refused, unreachable), 124 (coreutils' `timeout`) or
/// 143 (busybox's `timeout`); not because it could not run at all (cnet's own 125-127, a missing
/// program), which would make the check vacuous.
fn assert_no_answer(what: &str, out: &Output) {
    assert!(
        matches!(out.status.code(), Some(1 | 124 | 143)),
        "{}",
        describe_output(&format!("{what} should have failed for want of an answer"), out)
    );
}

/// Fetches `url` from `ns` (3 s at most) and asserts that nothing answers.
fn assert_no_fetch(ns: &Ns, who: &str, url: &str) {
    assert_no_answer(&format!("{who} -> {url}"), &ns.run(&fetch(url, 3)));
}

/// `cnet port C` as sorted lines.
fn port_lines(host: &TestHost, container: &str) -> Vec<String> {
    let mut lines: Vec<String> = host.cnet_ok(&["port", container]).lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// The NAME column of `cnet network ls ARGS…` (the header is checked, so that a changed output
/// format fails the test instead of reading as "nothing listed").
fn ls_names(host: &TestHost, args: &[&str]) -> Vec<String> {
    let mut all = vec!["network", "ls"];
    all.extend_from_slice(args);
    let out = host.cnet_ok(&all);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_else(|| panic!("`cnet {}` printed nothing", all.join(" ")));
    let cols: Vec<&str> = header.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cols, ["NETWORK ID", "NAME", "DRIVER", "SCOPE"], "`cnet {}` header:\n{out}", all.join(" "));
    let mut names: Vec<String> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cells.len(), 4, "`cnet {}`: bad row {l:?}:\n{out}", all.join(" "));
            cells[1].to_string()
        })
        .collect();
    names.sort();
    names
}

fn strings(items: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// `NetworkSettings.Networks.NET` of `cnet inspect C`; panics if the container is not on it.
fn endpoint_of(host: &TestHost, container: &str, network: &str) -> Value {
    let json = host.inspect(container);
    match json["NetworkSettings"]["Networks"].get(network) {
        Some(ep) => ep.clone(),
        None => panic!("{container} is not on {network}: {:#}", json["NetworkSettings"]),
    }
}

/// A non-empty string field of a JSON value, or a panic naming it.
fn field(json: &Value, key: &str) -> String {
    match json[key].as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => panic!("no {key} in {json:#}"),
    }
}

/// The container's IPv4 address on `network`.
fn ip_on(host: &TestHost, container: &str, network: &str) -> String {
    field(&endpoint_of(host, container, network), "IPAddress")
}

/// The container's network namespace (`NetworkSettings.SandboxKey`).
fn sandbox_key(host: &TestHost, container: &str) -> String {
    field(&host.inspect(container)["NetworkSettings"], "SandboxKey")
}

/// The link names of `ip -o link` output.
fn link_names(ip_o_link: &str) -> Vec<String> {
    cnet_tests::parse_links(ip_o_link)
}

/// What a failed `cnet run` may leave: container directories, sandboxes, endpoints on `network`.
fn leftovers(host: &TestHost, network: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut eps = host.network_containers(network);
    eps.sort();
    (host.container_dirs(), host.sandbox_ids(), eps)
}

/// `cnet run ARGS…` must fail with exit code 125 and every one of `needles` in its error, leaving
/// nothing behind.
fn run_refused(host: &TestHost, network: &str, args: &[&str], needles: &[&str]) {
    let before = leftovers(host, network);
    let out = host.cnet(args);
    let what = format!("cnet {}", args.join(" "));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{}", describe_output(&what, &out));
    for needle in needles {
        assert!(stderr.contains(needle), "`{what}`: expected {needle:?} in the error: {stderr}");
    }
    assert_eq!(leftovers(host, network), before, "`{what}` left something behind");
}

/// The client addresses in a `busybox httpd -vv` log (`[::ffff:10.0.0.2]:41234: url:/`).
fn httpd_clients(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(": url:"))
        .map(|l| {
            let addr = l
                .strip_prefix('[')
                .and_then(|l| l.split_once("]:"))
                .map(|(a, _)| a)
                .unwrap_or_else(|| panic!("unexpected httpd log line {l:?}"));
            addr.strip_prefix("::ffff:").unwrap_or(addr).to_string()
        })
        .collect()
}

/// A UDP server in a container's network namespace that answers each datagram with
/// `from <peer address>`; returns once it answers on 127.0.0.1.
fn udp_echo(host: &TestHost, netns: &str, port: u16) -> Bg {
    let script = format!(
        "$s=IO::Socket::INET->new(LocalPort=>{port},Proto=>'udp') or die $!; \
         while($s->recv($m,1000)){{ $s->send('from '.$s->peerhost) }}"
    );
    let mut cmd = host.in_netns(netns, "perl");
    cmd.args(["-MIO::Socket::INET", "-e", &script]);
    let mut bg = Bg::start(cmd);
    wait_for(&format!("the UDP echo server on :{port} to answer"), WAIT, || {
        bg.assert_running();
        host.run_in(netns, &udp_ask("127.0.0.1", port)).status.success()
    });
    bg
}

/// A shell command sending a UDP datagram to addr:port and printing the answer: up to 10 tries
/// half a second apart, failing after that.
fn udp_ask(addr: &str, port: u16) -> String {
    format!(
        "timeout 15 perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(PeerAddr=>\"{addr}:{port}\",Proto=>\"udp\") \
         or die; for (1..10) {{ $m=\"\"; $s->send(\"hi\"); eval {{ local $SIG{{ALRM}}=sub{{die}}; alarm 1; \
         $s->recv($m,1000); alarm 0 }}; if (length $m) {{ print $m; exit 0 }} select(undef,undef,undef,0.5) }} exit 1'"
    )
}

/// `cnet exec C ping -c 1 -W 1 IP`: one try, for asserting unreachability.
fn ping_once(host: &TestHost, container: &str, ip: &str) -> Output {
    host.cnet(&["exec", container, "ping", "-c", "1", "-W", "1", ip])
}

/// Asserts that one ping from the container to `ip` gets no answer.
fn assert_no_ping(host: &TestHost, container: &str, ip: &str) {
    assert_no_answer(&format!("{container} pinging {ip}"), &ping_once(host, container, ip));
}

/// Waits until `cnet exec C ping [-6] IP` succeeds (neighbour discovery, DAD).
fn wait_ping(host: &TestHost, container: &str, ip: &str) {
    let v6 = ip.contains(':');
    wait_for(&format!("{container} to ping {ip}"), WAIT, || {
        let mut args = vec!["exec", container, "ping"];
        if v6 {
            args.push("-6");
        }
        args.extend_from_slice(&["-c", "1", "-W", "1", ip]);
        host.cnet(&args).status.success()
    });
}

/// The `Subnet`s of a network's IPAM config.
fn subnets(host: &TestHost, network: &str) -> Vec<String> {
    let json = host.network_inspect(network);
    let config = json["IPAM"]["Config"].as_array().unwrap_or_else(|| panic!("no IPAM.Config: {json:#}"));
    config.iter().map(|c| field(c, "Subnet")).collect()
}

// ------------------------------------------------------------------------------------ prune, ls

#[test]
fn prune_removes_every_unused_user_network_and_names_them() {
    let host = TestHost::with_cnetd();
    for net in ["unused-a", "unused-b", "in-use"] {
        host.cnet_ok(&["network", "create", net]);
    }
    let in_use_id = field(&host.network_inspect("in-use"), "Id");
    sleeper(&host, "user", &["--network", "in-use"]);
    assert_eq!(host.links_starting("br-").len(), 3, "{:?}", host.links());

    // Without -f and without a terminal to ask on, it refuses and removes nothing.
    let err = host.cnet_err(&["network", "prune"]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(ls_names(&host, &[]), strings(&["bridge", "host", "in-use", "none", "unused-a", "unused-b"]));

    let out = host.cnet_ok(&["network", "prune", "-f"]);
    assert_eq!(out, "Deleted Networks:\nunused-a\nunused-b\n");
    assert_eq!(ls_names(&host, &[]), strings(&["bridge", "host", "in-use", "none"]));
    assert_eq!(host.links_starting("br-"), [format!("br-{}", &in_use_id[..12])], "bridges of pruned networks left");
    assert!(host.has_link("cnet0"), "{:?}", host.links());
    let user = host.cnet_ok(&["exec", "user", "ip", "-o", "addr", "show", "eth0"]);
    assert!(user.contains("inet "), "the container on in-use lost its address: {user}");

    // Nothing left to prune: no output. A stopped container keeps its network too (it keeps its
    // sandbox and address for `cnet start`).
    assert_eq!(host.cnet_ok(&["network", "prune", "--force"]), "");
    let ip = host.ip_of("user");
    host.cnet_ok(&["stop", "-t", "1", "user"]);
    assert_eq!(host.inspect("user")["State"]["Status"], "exited");
    assert_eq!(host.cnet_ok(&["network", "prune", "-f"]), "");
    assert_eq!(ls_names(&host, &[]), strings(&["bridge", "host", "in-use", "none"]));
    host.cnet_ok(&["start", "user"]);
    assert_eq!(host.ip_of("user"), ip);
    // Once its container is gone, the last one goes too.
    host.cnet_ok(&["rm", "-f", "user"]);
    assert_eq!(host.cnet_ok(&["network", "prune", "-f"]), "Deleted Networks:\nin-use\n");
    assert_eq!(ls_names(&host, &[]), strings(&["bridge", "host", "none"]));
    assert_eq!(host.links_starting("br-"), Vec::<String>::new());
}

#[test]
fn network_ls_filters_and_quiet() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "--label", "tier=web", "--label", "env=prod", "front-a"]);
    host.cnet_ok(&["network", "create", "--label", "tier=db", "front-b"]);
    host.cnet_ok(&["network", "create", "back"]);
    let back_id = field(&host.network_inspect("back"), "Id");
    let front_a_id = field(&host.network_inspect("front-a"), "Id");

    let all = strings(&["back", "bridge", "front-a", "front-b", "host", "none"]);
    assert_eq!(ls_names(&host, &[]), all);
    let cases: &[(&[&str], &[&str])] = &[
        (&["-f", "name=front"], &["front-a", "front-b"]),
        (&["--filter", "name=back", "--filter", "name=front-b"], &["back", "front-b"]),
        (&["-f", "driver=host"], &["host"]),
        (&["-f", "driver=bridge"], &["back", "bridge", "front-a", "front-b"]),
        (&["-f", "label=tier"], &["front-a", "front-b"]),
        (&["-f", "label=tier=web"], &["front-a"]),
        (&["-f", "label=env=prod", "-f", "name=front"], &["front-a"]),
        (&["-f", "label=env=prod", "-f", "name=back"], &[]),
        (&["-f", "type=builtin"], &["bridge", "host", "none"]),
        (&["-f", "type=custom"], &["back", "front-a", "front-b"]),
        (&["-f", &format!("id={}", &back_id[..10])], &["back"]),
        (&["-f", "scope=local"], &["back", "bridge", "front-a", "front-b", "host", "none"]),
        (&["-f", "name=nosuch"], &[]),
    ];
    for (args, want) in cases {
        assert_eq!(ls_names(&host, args), strings(want), "cnet network ls {args:?}");
    }

    // -q: ids only, 12 characters (64 with --no-trunc), as many as the table has rows.
    let quiet = host.cnet_ok(&["network", "ls", "-q"]);
    let ids: Vec<&str> = quiet.lines().collect();
    assert_eq!(ids.len(), all.len(), "{quiet}");
    assert!(ids.iter().all(|id| id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit())), "{quiet}");
    assert_eq!(host.cnet_ok(&["network", "ls", "-q", "-f", "label=tier=web"]), format!("{}\n", &front_a_id[..12]));
    assert_eq!(
        host.cnet_ok(&["network", "ls", "--quiet", "--no-trunc", "-f", "name=front-a"]),
        format!("{front_a_id}\n")
    );
    assert_eq!(host.cnet_ok(&["network", "ls", "-q", "-f", "name=nosuch"]), "");

    // Unknown filters are refused, naming them.
    let err = host.cnet_err(&["network", "ls", "-f", "colour=blue"]);
    assert!(err.contains("colour"), "{err}");
    let err = host.cnet_err(&["network", "ls", "-f", "type=weird"]);
    assert!(err.contains("weird"), "{err}");
}

// ------------------------------------------------------------------------------------ -p forms

#[test]
fn publish_on_loopback_with_a_host_port_cnetd_picks() {
    let (host, upstream) = host_with_upstream();
    host.cnet_ok(&["network", "create", "web-net"]);
    run_d(&host, "web", &["--network", "web-net", "-p", "127.0.0.1::80", "-p", "8081:80"], &serve_script(&[80]));
    wait_serving(&host, "web", 80);

    let lines = port_lines(&host, "web");
    let chosen = lines
        .iter()
        .find_map(|l| l.strip_prefix("80/tcp -> 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no 127.0.0.1 binding in `cnet port web`:\n{lines:#?}"));
    let chosen: u16 = chosen.parse().unwrap_or_else(|_| panic!("bad host port {chosen:?} in {lines:?}"));
    assert!(chosen >= 49153, "cnetd picked {chosen}, outside Docker's ephemeral range");
    assert_eq!(lines, strings(&["80/tcp -> 0.0.0.0:8081", &format!("80/tcp -> 127.0.0.1:{chosen}")]));
    let ports = &host.inspect("web")["NetworkSettings"]["Ports"]["80/tcp"];
    let bindings = ports.as_array().unwrap_or_else(|| panic!("no Ports.80/tcp: {ports:#}"));
    assert!(
        bindings.iter().any(|b| b["HostIp"] == "127.0.0.1" && b["HostPort"] == chosen.to_string().as_str()),
        "{ports:#}"
    );

    // Reachable on 127.0.0.1 from the host.
    assert_fetch(host.ns(), "host", &format!("http://127.0.0.1:{chosen}/"), "port-80\n");
    // The host's other address serves the port published on every address, from the host and from
    // outside...
    assert_fetch(host.ns(), "host", &format!("http://{HOST_ADDR}:8081/"), "port-80\n");
    assert_fetch(upstream.ns(), "upstream", &format!("http://{HOST_ADDR}:8081/"), "port-80\n");
    // ...but not the one published on 127.0.0.1 only.
    assert_no_fetch(host.ns(), "host", &format!("http://{HOST_ADDR}:{chosen}/"));
    assert_no_fetch(upstream.ns(), "upstream", &format!("http://{HOST_ADDR}:{chosen}/"));
}

#[test]
fn publish_a_port_range() {
    let (host, upstream) = host_with_upstream();
    host.cnet_ok(&["network", "create", "web-net"]);
    run_d(&host, "web", &["--network", "web-net", "-p", "8000-8010:80-90"], &serve_script(&[80, 85, 90]));
    for p in [80, 85, 90] {
        wait_serving(&host, "web", p);
    }

    let want: Vec<String> = (0..=10).map(|i| format!("{}/tcp -> 0.0.0.0:{}", 80 + i, 8000 + i)).collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(port_lines(&host, "web"), want_sorted);
    assert_eq!(host.cnet_ok(&["port", "web", "85/tcp"]), "85/tcp -> 0.0.0.0:8005\n");

    for (host_port, container_port) in [(8000, 80), (8005, 85), (8010, 90)] {
        let want = format!("port-{container_port}\n");
        assert_fetch(upstream.ns(), "upstream", &format!("http://{HOST_ADDR}:{host_port}/"), &want);
        assert_fetch(host.ns(), "host", &format!("http://127.0.0.1:{host_port}/"), &want);
    }
    let ps = host.cnet_ok(&["ps"]);
    assert!(ps.contains("0.0.0.0:8005->85/tcp"), "{ps}");
}

#[test]
fn publish_udp() {
    let (host, upstream) = host_with_upstream();
    host.cnet_ok(&["network", "create", "udp-net"]);
    sleeper(&host, "echo", &["--network", "udp-net", "-p", "8080:80/udp"]);
    assert_eq!(port_lines(&host, "echo"), ["80/udp -> 0.0.0.0:8080"]);
    let _server = udp_echo(&host, &sandbox_key(&host, "echo"), 80);

    // From outside, through the host's address, with the client's address kept.
    let out = upstream.ns().run(&udp_ask(HOST_ADDR, 8080));
    assert_eq!(body(&out), format!("from {}", upstream.addr()), "{}", describe_output("upstream -> udp 8080", &out));
    // From the host itself, on 127.0.0.1.
    let out = host.ns().run(&udp_ask("127.0.0.1", 8080));
    assert!(body(&out).starts_with("from "), "{}", describe_output("host -> udp 127.0.0.1:8080", &out));
}

#[test]
fn publish_on_ipv6_host_addresses() {
    let mut host = TestHost::new();
    let upstream = Upstream::new(&host);
    host.ns().run_ok("ip addr add 2001:db8:1::1/64 dev up0 nodad");
    upstream.ns().run_ok("ip addr add 2001:db8:1::2/64 dev eth0 nodad");
    host.start_cnetd();
    host.cnet_ok(&["network", "create", "--ipv6", "--subnet", "fd00:c0de:6::/64", "six"]);
    let args = ["--network", "six", "-p", "[::1]:8086:80", "-p", "[2001:db8:1::1]:8087:80", "-p", "8088:80"];
    run_d(&host, "web", &args, &serve_script(&[80]));
    wait_serving(&host, "web", 80);

    let lines = port_lines(&host, "web");
    for want in ["80/tcp -> [::1]:8086", "80/tcp -> [2001:db8:1::1]:8087", "80/tcp -> 0.0.0.0:8088"] {
        assert!(lines.iter().any(|l| l == want), "no {want:?} in `cnet port web`: {lines:#?}");
    }

    // [::1] from the host (relayed by cnetd).
    assert_fetch(host.ns(), "host", "http://[::1]:8086/", "port-80\n");
    // The documentation address from outside and from the host.
    assert_fetch(upstream.ns(), "upstream", "http://[2001:db8:1::1]:8087/", "port-80\n");
    assert_fetch(host.ns(), "host", "http://[2001:db8:1::1]:8087/", "port-80\n");
    // The wildcard binding on the host's IPv4 address...
    assert_fetch(upstream.ns(), "upstream", &format!("http://{HOST_ADDR}:8088/"), "port-80\n");
    // (on IPv6 too)...
    assert_fetch(upstream.ns(), "upstream", "http://[2001:db8:1::1]:8088/", "port-80\n");
    // ...while 8087 and 8086 answer on their own address only.
    assert_no_fetch(upstream.ns(), "upstream", &format!("http://{HOST_ADDR}:8087/"));
    assert_no_fetch(upstream.ns(), "upstream", "http://[2001:db8:1::1]:8086/");

    // An IPv6 host address needs an --ipv6 network.
    host.cnet_ok(&["network", "create", "four"]);
    let args = ["run", "-d", "--network", "four", "-p", "[::1]:8090:80", "busybox", "true"];
    run_refused(&host, "four", &args, &["::1", "create it with --ipv6"]);
}

// ------------------------------------------------------------------------------------ --ip

#[test]
fn run_with_a_static_ip_and_its_refusals() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "--subnet", "10.77.0.0/24", "lab"]);
    sleeper(&host, "fixed", &["--network", "lab", "--ip", "10.77.0.50"]);
    assert_eq!(host.ip_of("fixed"), "10.77.0.50");
    assert_eq!(ip_on(&host, "fixed", "lab"), "10.77.0.50");
    let eth0 = host.cnet_ok(&["exec", "fixed", "ip", "-o", "addr", "show", "eth0"]);
    assert!(eth0.contains("inet 10.77.0.50/24"), "{eth0}");
    let containers = host.network_inspect("lab")["Containers"].clone();
    assert!(
        containers.as_object().is_some_and(|c| c.values().any(|e| e["IPv4Address"] == "10.77.0.50/24")),
        "{containers:#}"
    );

    sleeper(&host, "other", &["--network", "lab"]);
    assert_ne!(host.ip_of("other"), "10.77.0.50");
    wait_ping(&host, "other", "10.77.0.50");

    for (ip, needle) in [
        ("10.77.0.50", "already in use"),
        ("10.77.0.1", "reserved"),
        ("10.77.1.5", "not in the network's subnet"),
        ("10.77.0.255", "broadcast"),
        ("10.77.0.300", "invalid IPv4 address"),
    ] {
        let args = ["run", "-d", "--network", "lab", "--ip", ip, "busybox", "sleep", "1000"];
        run_refused(&host, "lab", &args, &[ip, needle]);
    }
    run_refused(
        &host,
        "bridge",
        &["run", "-d", "--ip", "172.17.0.50", "busybox", "true"],
        &["user specified IP address is supported on user defined networks only"],
    );

    // Released with its container, the address can be taken again.
    host.cnet_ok(&["rm", "-f", "fixed"]);
    sleeper(&host, "again", &["--network", "lab", "--ip", "10.77.0.50"]);
    assert_eq!(host.ip_of("again"), "10.77.0.50");
    wait_ping(&host, "other", "10.77.0.50");
    host.cnet_ok(&["rm", "-f", "again", "other"]);
    host.assert_nothing_left("lab");
}

// ------------------------------------------------------------------------------------ IPv6

/// An interface of an IPv4-only network has no IPv6 address, not even a link-local one: it sends
/// no DAD, router solicitation or MLD report for its bridge to flood to every other port (with
/// 1000 containers on a bridge that chatter doubled a connect). One of an IPv6 network has both.
#[test]
fn ipv4_only_interfaces_have_no_ipv6_address_and_ipv6_ones_have_a_link_local() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "four"]);
    host.cnet_ok(&["network", "create", "--ipv6", "--subnet", "fd00:c0de:9::/64", "sixes"]);
    sleeper(&host, "c4", &["--network", "four"]);
    sleeper(&host, "c6", &["--network", "sixes"]);
    // /proc/net/if_inet6: one line per address, the interface's name last (tentative ones too).
    let addresses = |c: &str| host.cnet_ok(&["exec", c, "cat", "/proc/net/if_inet6"]);
    let on_eth0 = |text: &str| text.lines().filter(|l| l.ends_with(" eth0")).map(str::to_string).collect::<Vec<_>>();
    std::thread::sleep(Duration::from_millis(300));
    let four = addresses("c4");
    assert_eq!(on_eth0(&four), Vec::<String>::new(), "c4's eth0 has IPv6 addresses:\n{four}");
    assert!(four.lines().any(|l| l.ends_with(" lo")), "c4 has no ::1 on lo:\n{four}");
    let six = addresses("c6");
    let six_eth0 = on_eth0(&six);
    assert!(six_eth0.iter().any(|l| l.starts_with("fe80")), "c6's eth0 has no link-local address:\n{six}");
    assert!(six_eth0.iter().any(|l| l.starts_with("fd00c0de0009")), "c6's eth0 has no fd00:c0de:9:: address:\n{six}");
}

#[test]
fn ipv6_networks_give_containers_v6_addresses_and_names() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "--ipv6", "--subnet", "fd00:c0de:7::/64", "six"]);
    let net = host.network_inspect("six");
    assert_eq!(net["EnableIPv6"], true, "{net:#}");
    let six_subnets = subnets(&host, "six");
    assert!(six_subnets.iter().any(|s| s == "fd00:c0de:7::/64"), "{six_subnets:?}");
    assert!(six_subnets.iter().any(|s| !s.contains(':')), "no IPv4 subnet as well: {six_subnets:?}");

    sleeper(&host, "ca", &["--network", "six"]);
    sleeper(&host, "cb", &["--network", "six"]);
    let a6 = field(&endpoint_of(&host, "ca", "six"), "GlobalIPv6Address");
    let b6 = field(&endpoint_of(&host, "cb", "six"), "GlobalIPv6Address");
    assert!(a6.starts_with("fd00:c0de:7::") && b6.starts_with("fd00:c0de:7::"), "{a6} {b6}");
    assert_ne!(a6, b6);
    let eth0 = host.cnet_ok(&["exec", "ca", "ip", "-o", "-6", "addr", "show", "eth0"]);
    assert!(eth0.contains(&format!("inet6 {a6}/64")), "{eth0}");
    wait_ping(&host, "ca", &b6);
    wait_ping(&host, "cb", &a6);

    // The embedded DNS answers AAAA with the v6 address.
    let out = host.cnet_ok(&["exec", "ca", "nslookup", "-type=AAAA", "cb", "127.0.0.11"]);
    assert!(out.contains(&b6), "AAAA of b ({b6}) not in:\n{out}");

    // --ipv6 without a v6 subnet: one is chosen (a unique-local /64).
    host.cnet_ok(&["network", "create", "--ipv6", "auto6"]);
    let auto = subnets(&host, "auto6");
    let v6 = auto.iter().find(|s| s.contains(':')).unwrap_or_else(|| panic!("no IPv6 subnet: {auto:?}"));
    assert!(v6.starts_with("fd") && v6.ends_with("/64"), "{v6}");
    sleeper(&host, "cc", &["--network", "auto6"]);
    let c6 = field(&endpoint_of(&host, "cc", "auto6"), "GlobalIPv6Address");
    let prefix = v6.trim_end_matches("/64").trim_end_matches(':');
    assert!(c6.starts_with(prefix), "{c6} not in {v6}");

    // A network without --ipv6 gives none.
    host.cnet_ok(&["network", "create", "four"]);
    sleeper(&host, "cd", &["--network", "four"]);
    let d = endpoint_of(&host, "cd", "four");
    assert_eq!(d["GlobalIPv6Address"], "", "{d:#}");
}

// ------------------------------------------------------------------------------------ host, none

#[test]
fn host_and_none_networks() {
    let (host, upstream) = host_with_upstream();
    for (name, driver) in [("host", "host"), ("none", "none")] {
        let net = host.network_inspect(name);
        assert_eq!(net["Driver"], driver, "{net:#}");
        assert_eq!(net["Scope"], "local", "{net:#}");
        assert_eq!(net["IPAM"]["Config"], serde_json::json!([]), "{name} has IPAM config: {net:#}");
        let err = host.cnet_err(&["network", "rm", name]);
        assert!(err.contains(name), "{err}");
    }
    assert_eq!(ls_names(&host, &["-f", "type=builtin"]), strings(&["bridge", "host", "none"]));
    host.cnet_ok(&["network", "create", "lab"]);

    // On `host`: the host's interfaces and addresses, and a server on the host's own address,
    // reached from outside with no rule of cnet's.
    run_d(
        &host,
        "hostweb",
        &["--network", "host"],
        "mkdir -p /www && echo hostweb > /www/index.html && exec httpd -f -p 198.51.100.1:8099 -h /www",
    );
    let up0 = host.cnet_ok(&["exec", "hostweb", "ip", "-o", "addr", "show", "up0"]);
    assert!(up0.contains(&format!("inet {HOST_ADDR}/24")), "{up0}");
    wait_for("hostweb to serve on 198.51.100.1:8099", WAIT, || {
        host.ns().run(&fetch(&format!("http://{HOST_ADDR}:8099/"), 5)).status.success()
    });
    assert_fetch(upstream.ns(), "upstream", &format!("http://{HOST_ADDR}:8099/"), "hostweb\n");
    let table = host.nft_table();
    assert!(!table.contains("8099"), "a host-network server needs no rule, yet:\n{table}");

    // On `none`: only lo, up, and no routes.
    sleeper(&host, "iso", &["--network", "none"]);
    let links = host.cnet_ok(&["exec", "iso", "ip", "-o", "link"]);
    assert_eq!(link_names(&links), ["lo"], "{links}");
    assert!(links.contains("LOOPBACK,UP"), "lo is down: {links}");
    let out = ping_once(&host, "iso", "127.0.0.1");
    assert!(out.status.success(), "{}", describe_output("iso pinging its own lo", &out));
    assert_eq!(host.cnet_ok(&["exec", "iso", "ip", "route"]), "");
    sleeper(&host, "normal", &[]);
    wait_ping(&host, "normal", upstream.addr());
    assert_no_ping(&host, "iso", upstream.addr());

    // A container on a user network can be connected to another one...
    host.cnet_ok(&["network", "connect", "lab", "normal"]);
    assert_eq!(host.network_containers("lab").len(), 1);
    host.cnet_ok(&["network", "disconnect", "lab", "normal"]);
    // ...but those on host and none cannot, and nothing changes.
    for c in ["hostweb", "iso"] {
        let err = host.cnet_err(&["network", "connect", "lab", c]);
        assert!(err.contains("cannot be") && err.contains("connected"), "connect {c}: {err}");
        assert_eq!(host.network_containers("lab"), Vec::<String>::new(), "connecting {c} left an endpoint");
    }
    let links = host.cnet_ok(&["exec", "iso", "ip", "-o", "link"]);
    assert_eq!(link_names(&links), ["lo"], "{links}");
    // Neither can be combined with another network at run.
    for special in ["host", "none"] {
        run_refused(
            &host,
            "lab",
            &["run", "-d", "--network", special, "--network", "lab", "busybox", "true"],
            &["cannot attach both user-defined and non-user-defined network-modes"],
        );
    }
    host.cnet_ok(&["rm", "-f", "hostweb", "iso", "normal"]);
    host.assert_nothing_left("lab");
    assert_eq!(ls_names(&host, &["-f", "type=builtin"]), strings(&["bridge", "host", "none"]));
}

// ------------------------------------------------------------------------------------ create flags

#[test]
fn bridge_name_mtu_labels_and_attachable() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&[
        "network",
        "create",
        "--subnet",
        "10.44.0.0/24",
        "-o",
        "com.docker.network.bridge.name=labbr0",
        "--opt",
        "com.docker.network.driver.mtu=1400",
        "--label",
        "team=net",
        "--attachable",
        "lab",
    ]);
    host.cnet_ok(&["network", "create", "plain"]);
    let lab = host.network_inspect("lab");
    assert_eq!(lab["Options"]["com.docker.network.bridge.name"], "labbr0", "{lab:#}");
    assert_eq!(lab["Options"]["com.docker.network.driver.mtu"], "1400", "{lab:#}");
    assert_eq!(lab["Labels"], serde_json::json!({"team": "net"}), "{lab:#}");
    assert_eq!(lab["Attachable"], true, "{lab:#}");
    let plain = host.network_inspect("plain");
    assert_eq!(plain["Attachable"], false, "{plain:#}");
    assert_eq!(plain["Labels"], serde_json::json!({}), "{plain:#}");
    assert_eq!(ls_names(&host, &["-f", "label=team=net"]), ["lab"]);

    // The device has the name asked for (and no br-<id> was made for it).
    let lab_id = field(&lab, "Id");
    assert!(host.has_link("labbr0"), "{:?}", host.links());
    assert!(!host.has_link(&format!("br-{}", &lab_id[..12])), "{:?}", host.links());
    assert!(host.ns().addrs("labbr0").contains("inet 10.44.0.1/24"), "{}", host.ns().addrs("labbr0"));

    sleeper(&host, "small", &["--network", "lab"]);
    sleeper(&host, "usual", &["--network", "plain"]);
    let mtu = host.cnet_ok(&["exec", "small", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu.trim(), "1400");
    let mtu = host.cnet_ok(&["exec", "usual", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu.trim(), "1500");
    let ports = host.ns().run_ok("ip -o link show master labbr0");
    assert_eq!(link_names(&ports).len(), 1, "one port on labbr0 expected:\n{ports}");
    // The host side of the pair has the same MTU, or the bridge would drop what it cannot fit.
    assert!(ports.contains(" mtu 1400 "), "the host side of small's veth:\n{ports}");
    wait_ping(&host, "small", "10.44.0.1");

    host.cnet_ok(&["rm", "-f", "small", "usual"]);
    host.cnet_ok(&["network", "rm", "lab"]);
    assert!(!host.has_link("labbr0"), "labbr0 left: {:?}", host.links());
}

#[test]
fn aux_addresses_are_never_leased() {
    let host = TestHost::with_cnetd();
    // 10.66.0.0/29: .1 the gateway, .2 and .3 aux, .4-.6 for containers, .7 broadcast.
    host.cnet_ok(&[
        "network",
        "create",
        "--subnet",
        "10.66.0.0/29",
        "--aux-address",
        "router=10.66.0.2",
        "--aux-address",
        "printer=10.66.0.3",
        "tiny",
    ]);
    let net = host.network_inspect("tiny");
    assert_eq!(
        net["IPAM"]["Config"][0]["AuxiliaryAddresses"],
        serde_json::json!({"router": "10.66.0.2", "printer": "10.66.0.3"}),
        "{net:#}"
    );
    let mut ips = BTreeSet::new();
    for c in ["c1", "c2", "c3"] {
        sleeper(&host, c, &["--network", "tiny"]);
        ips.insert(host.ip_of(c));
    }
    assert_eq!(ips, BTreeSet::from(["10.66.0.4".to_string(), "10.66.0.5".into(), "10.66.0.6".into()]));
    // The pool is full: the aux addresses are not handed out even now...
    let before = leftovers(&host, "tiny");
    let err = host.cnet_err(&["run", "-d", "--network", "tiny", "busybox", "sleep", "1000"]);
    assert!(err.contains("no available IPv4 addresses") && err.contains("10.66.0.0/29 is exhausted"), "{err}");
    assert_eq!(leftovers(&host, "tiny"), before, "a refused run left something");
    // ...nor can they be asked for.
    for aux in ["10.66.0.2", "10.66.0.3"] {
        let args = ["run", "-d", "--network", "tiny", "--ip", aux, "busybox", "true"];
        run_refused(&host, "tiny", &args, &[aux, "reserved"]);
    }
    // A freed address is leased again.
    host.cnet_ok(&["rm", "-f", "c2"]);
    let freed = ips.iter().find(|ip| !["c1", "c3"].iter().any(|c| host.ip_of(c) == **ip)).cloned();
    sleeper(&host, "c4", &["--network", "tiny"]);
    assert_eq!(Some(host.ip_of("c4")), freed);
    host.cnet_ok(&["rm", "-f", "c1", "c3", "c4"]);
    host.assert_nothing_left("tiny");
}

#[test]
fn icc_false_isolates_the_containers_of_a_network() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "--subnet", "10.33.0.0/24", "open"]);
    host.cnet_ok(&[
        "network",
        "create",
        "--subnet",
        "10.34.0.0/24",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "closed",
    ]);
    sleeper(&host, "ca", &["--network", "open"]);
    run_d(&host, "cb", &["--network", "open"], &serve_script(&[80]));
    sleeper(&host, "cc", &["--network", "closed"]);
    run_d(&host, "cd", &["--network", "closed"], &serve_script(&[80]));
    let (b, d) = (host.ip_of("cb"), host.ip_of("cd"));
    wait_serving(&host, "cb", 80);
    wait_serving(&host, "cd", 80);

    // On a normal network, containers reach each other.
    wait_ping(&host, "ca", &b);
    let out = host.cnet(&["exec", "ca", "timeout", "5", "wget", "-q", "-O", "-", &format!("http://{b}/")]);
    assert_eq!(body(&out), "port-80\n", "{}", describe_output("a -> b", &out));

    // With icc off: c reaches its gateway, the host reaches d's server, but c reaches nothing of d.
    wait_ping(&host, "cc", "10.34.0.1");
    assert_fetch(host.ns(), "host", &format!("http://{d}/"), "port-80\n");
    assert_no_ping(&host, "cc", &d);
    let out = host.cnet(&["exec", "cc", "timeout", "3", "wget", "-q", "-O", "-", &format!("http://{d}/")]);
    assert_no_answer("cc -> cd's httpd", &out);
}

#[test]
fn masquerade_off_keeps_the_container_address_and_internal_has_no_way_out() {
    let (host, upstream) = host_with_upstream();
    // The upstream can route back to every container subnet here, so only NAT (or its absence)
    // decides which address it sees, and only the firewall keeps --internal in.
    for subnet in ["10.55.0.0/24", "10.56.0.0/24", "10.57.0.0/24"] {
        upstream.ns().run_ok(&format!("ip route add {subnet} via {HOST_ADDR}"));
    }
    let www = tempfile::Builder::new().prefix("cnet-masq-www-").tempdir().expect("temp dir");
    std::fs::write(www.path().join("index.html"), "upstream\n").expect("write index.html");
    let log_path = www.path().join("httpd.log");
    let mut cmd = upstream.ns().cmd("busybox");
    cmd.args(["httpd", "-f", "-vv", "-p", "8080", "-h", www.path().to_str().expect("utf-8 path")])
        .stderr(File::create(&log_path).expect("create the httpd log"));
    let mut httpd = Bg::start(cmd);
    wait_for("the upstream's logging httpd", WAIT, || {
        httpd.assert_running();
        upstream.ns().run(&fetch("http://127.0.0.1:8080/", 2)).status.success()
    });
    let clients = || httpd_clients(&std::fs::read_to_string(&log_path).expect("read the httpd log"));
    let url = format!("http://{}:8080/", upstream.addr());

    host.cnet_ok(&["network", "create", "--subnet", "10.56.0.0/24", "masq"]);
    host.cnet_ok(&[
        "network",
        "create",
        "--subnet",
        "10.55.0.0/24",
        "-o",
        "com.docker.network.bridge.enable_ip_masquerade=false",
        "nomasq",
    ]);
    host.cnet_ok(&["network", "create", "--subnet", "10.57.0.0/24", "--internal", "inside"]);
    assert_eq!(host.network_inspect("inside")["Internal"], true);

    let get = |c: &str, secs: &str| host.cnet(&["exec", c, "timeout", secs, "wget", "-q", "-O", "-", &url]);
    sleeper(&host, "cm", &["--network", "masq"]);
    let out = get("cm", "10");
    assert_eq!(body(&out), "upstream\n", "{}", describe_output("m -> upstream", &out));
    assert_eq!(clients().last().map(String::as_str), Some(HOST_ADDR), "masq was not masqueraded: {:?}", clients());

    sleeper(&host, "cn", &["--network", "nomasq"]);
    let n_ip = host.ip_of("cn");
    let out = get("cn", "10");
    assert_eq!(body(&out), "upstream\n", "{}", describe_output("n -> upstream", &out));
    assert_eq!(clients().last(), Some(&n_ip), "nomasq was masqueraded: {:?}", clients());

    // --internal: no default route and no way out, though the upstream could answer.
    sleeper(&host, "ci", &["--network", "inside"]);
    let routes = host.cnet_ok(&["exec", "ci", "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    assert!(host.cnet_ok(&["exec", "cm", "ip", "route"]).contains("default via 10.56.0.1"));
    let seen = clients().len();
    assert_no_answer("ci -> the upstream's httpd", &get("ci", "3"));
    assert_no_ping(&host, "ci", upstream.addr());
    assert_eq!(clients().len(), seen, "the upstream saw a request from the internal network: {:?}", clients());
    // It publishes nothing, and says so.
    let args = ["run", "-d", "--network", "inside", "-p", "8090:80", "busybox", "true"];
    run_refused(&host, "inside", &args, &["internal", "8090"]);
    // Containers of an internal network still reach each other.
    sleeper(&host, "cj", &["--network", "inside"]);
    wait_ping(&host, "cj", &host.ip_of("ci"));
}

#[test]
fn default_subnets_skip_the_hosts_routes() {
    let host = TestHost::with_cnetd();
    host.ns().run_ok(
        "ip link add cnetrt0 type veth peer name cnetrt1 && ip link set cnetrt1 up && ip link set cnetrt0 up && \
         ip route add 172.19.0.0/16 dev cnetrt0 && ip route add 172.21.5.0/24 dev cnetrt0",
    );
    for (net, want) in [("n1", "172.18.0.0/16"), ("n2", "172.20.0.0/16"), ("n3", "172.22.0.0/16")] {
        host.cnet_ok(&["network", "create", net]);
        assert_eq!(subnets(&host, net), [want], "{net}");
    }
    sleeper(&host, "cc", &["--network", "n2"]);
    let ip = host.ip_of("cc");
    assert!(ip.starts_with("172.20."), "{ip}");
}

// ------------------------------------------------------------------------------------ config

/// `cnet --root RUNTIME ARGS…` inside the host with `CNET_SOCKET=socket` and no `-H`.
fn cnet_with_env(host: &TestHost, socket: impl AsRef<OsStr>, args: &[&str]) -> Output {
    let mut cmd = host.ns().cmd("timeout");
    cmd.args(["-k", "5", "60"])
        .arg(bin("cnet"))
        .arg("--root")
        .arg(host.runtime_dir())
        .args(args)
        .env("CNET_SOCKET", socket);
    cmd.output().unwrap_or_else(|e| panic!("cannot run cnet {args:?}: {e}"))
}

#[test]
fn cnet_socket_variable_and_a_named_nft_table() {
    let mut host = TestHost::new();
    let upstream = Upstream::new(&host);
    host.start_cnetd_with(&["--nft-table", "cnettest"]);
    let ok = |args: &[&str]| {
        let out = cnet_with_env(&host, host.socket(), args);
        assert!(out.status.success(), "{}", describe_output(&format!("CNET_SOCKET=… cnet {}", args.join(" ")), &out));
        body(&out)
    };

    // The CLI finds the daemon through CNET_SOCKET alone.
    ok(&["network", "create", "envnet"]);
    assert!(ls_names(&host, &[]).contains(&"envnet".to_string()));
    let id = ok(&[
        "run",
        "-d",
        "--network",
        "envnet",
        "--name",
        "web",
        "-p",
        "8080:80",
        "busybox",
        "sh",
        "-c",
        &serve_script(&[80]),
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    wait_serving(&host, "web", 80);
    assert_eq!(ok(&["port", "web"]), "80/tcp -> 0.0.0.0:8080\n");

    // A CNET_SOCKET that points nowhere is the one used (the error names it), and -H beats it.
    let missing: PathBuf = host.dir().join("nowhere.sock");
    let out = cnet_with_env(&host, &missing, &["network", "ls"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe_output("cnet network ls with a wrong CNET_SOCKET", &out));
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    let socket = host.socket();
    let out = cnet_with_env(&host, &missing, &["-H", socket.to_str().expect("utf-8 path"), "network", "ls"]);
    assert!(out.status.success() && body(&out).contains("envnet"), "{}", describe_output("-H over CNET_SOCKET", &out));
    // Docker's unix:// form works in the variable too.
    let out = cnet_with_env(&host, format!("unix://{}", socket.display()), &["network", "ls"]);
    assert!(out.status.success() && body(&out).contains("envnet"), "{}", describe_output("CNET_SOCKET=unix://…", &out));

    // cnetd --nft-table: the rules live in that table, and there is no `inet cnet`.
    let tables = host.ns().run_ok("nft list tables");
    assert!(tables.lines().any(|l| l.trim() == "table inet cnettest"), "{tables}");
    assert!(!host.has_nft_table(), "an inet cnet table exists:\n{tables}");
    let table = host.ns().run_ok("nft list table inet cnettest");
    assert!(table.contains("8080"), "the published port is not in inet cnettest:\n{table}");
    assert_fetch(upstream.ns(), "upstream", &format!("http://{HOST_ADDR}:8080/"), "port-80\n");

    // Deleted by hand, that table (and no other) is put back by the watcher.
    host.ns().run_ok("nft delete table inet cnettest");
    wait_for("cnetd to put inet cnettest back with the port of web", WAIT, || {
        let out = host.ns().run("nft list table inet cnettest");
        out.status.success() && body(&out).contains("8080")
    });
    assert!(!host.has_nft_table(), "cnetd made an inet cnet table:\n{}", host.ns().run_ok("nft list tables"));
    assert_fetch(upstream.ns(), "upstream", &format!("http://{HOST_ADDR}:8080/"), "port-80\n");

    ok(&["rm", "-f", "web"]);
    host.wait_background_work();
    let table = host.ns().run_ok("nft list table inet cnettest");
    assert!(!table.contains("8080"), "8080 left in inet cnettest:\n{table}");
    assert_no_fetch(upstream.ns(), "upstream", &format!("http://{HOST_ADDR}:8080/"));
}

/// cnetd puts its table back as soon as nftables announces the deletion (a `delete table`, a
/// `flush ruleset`), long before its timer (`--firewall-check-interval`, 30 s by default) would;
/// `0` turns both off, so the table stays deleted until the next start of cnetd puts it back.
#[test]
fn a_deleted_table_comes_back_at_once_unless_the_watcher_is_off() {
    let mut host = TestHost::new();
    host.start_cnetd();
    host.cnet_ok(&["network", "create", "watched"]);
    assert!(host.has_nft_table(), "cnetd made its table");
    let soon = Duration::from_secs(5);
    host.ns().run_ok("nft delete table inet cnet");
    wait_for("cnetd to hear of the deletion and put the table back", soon, || host.has_nft_table());
    host.ns().run_ok("nft flush ruleset");
    wait_for("cnetd to put the table back after a flush of the ruleset", soon, || host.has_nft_table());
    let table = host.ns().run_ok("nft list table inet cnet");
    let subnet = &subnets(&host, "watched")[0];
    assert!(table.contains(subnet.as_str()), "{subnet} of watched is not in the rebuilt table:\n{table}");

    host.kill_cnetd(cnet_tests::SIGTERM);
    host.start_cnetd_with(&["--firewall-check-interval", "0"]);
    assert!(host.has_nft_table(), "a start of cnetd makes the table");
    host.ns().run_ok("nft delete table inet cnet");
    // An observation window, not a synchronisation: the table came back within a second above.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!host.has_nft_table(), "the table came back with the watcher turned off");

    host.kill_cnetd(cnet_tests::SIGTERM);
    host.start_cnetd();
    assert!(host.has_nft_table(), "the next start of cnetd puts the table back");
}

/// cnet deletes only what it made: `bridge.name` naming a link that is not a bridge is refused and
/// the link left as it was; a bridge the user made is used, kept across a restart of cnetd, and
/// left in place (without cnet's address) by `network rm`.
#[test]
fn a_bridge_name_of_the_users_is_used_or_refused_but_never_deleted() {
    let mut host = TestHost::with_cnetd();
    let bridge_name = |name: &str| format!("com.docker.network.bridge.name={name}");

    // A veth with an address, and an existing bridge of the user's with an address of its own.
    host.ns().run_ok(
        "ip link add uveth0 type veth peer name uveth1 && ip addr add 192.0.2.9/24 dev uveth0 && \
         ip link add userbr0 type bridge && ip addr add 203.0.113.1/24 dev userbr0 && ip link set userbr0 up",
    );
    let err = host.cnet_err(&["network", "create", "-o", &bridge_name("uveth0"), "onveth"]);
    assert!(err.contains("uveth0") && err.contains("not a bridge"), "{err}");
    assert!(host.ns().addrs("uveth0").contains("inet 192.0.2.9/24"), "the veth was changed or deleted");
    assert!(!ls_names(&host, &[]).contains(&"onveth".to_string()), "a network was left behind");

    host.cnet_ok(&["network", "create", "--subnet", "10.99.0.0/24", "-o", &bridge_name("userbr0"), "onuser"]);
    assert!(host.ns().addrs("userbr0").contains("inet 10.99.0.1/24"), "{}", host.ns().addrs("userbr0"));
    sleeper(&host, "c1", &["--network", "onuser"]);
    wait_ping(&host, "c1", "10.99.0.1");

    // A restart of cnetd keeps the user's bridge (it is not an orphan of cnet's).
    host.kill_cnetd(cnet_tests::SIGKILL);
    host.start_cnetd();
    assert!(host.has_link("userbr0"), "a restart removed the user's bridge");
    wait_ping(&host, "c1", "10.99.0.1");

    host.cnet_ok(&["rm", "-f", "c1"]);
    host.cnet_ok(&["network", "rm", "onuser"]);
    assert!(host.has_link("userbr0"), "network rm deleted the user's bridge");
    let addrs = host.ns().addrs("userbr0");
    assert!(addrs.contains("inet 203.0.113.1/24") && !addrs.contains("10.99.0.1"), "{addrs}");

    // A bridge cnet made for bridge.name goes with its network.
    host.cnet_ok(&["network", "create", "-o", &bridge_name("madebr0"), "made"]);
    assert!(host.has_link("madebr0"));
    host.cnet_ok(&["network", "rm", "made"]);
    assert!(!host.has_link("madebr0"), "the bridge cnet made was left behind");
}

/// `--ip` is taken only on a network whose subnet the user gave (Docker's rule); on one whose
/// subnet IPAM chose it is refused, naming the address, and nothing is left.
#[test]
fn a_static_ip_needs_a_user_configured_subnet() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "--subnet", "10.78.0.0/24", "given"]);
    host.cnet_ok(&["network", "create", "auto"]);
    sleeper(&host, "fixed", &["--network", "given", "--ip", "10.78.0.40"]);
    assert_eq!(ip_on(&host, "fixed", "given"), "10.78.0.40");
    let auto_subnet = subnets(&host, "auto").into_iter().next().expect("auto has a subnet");
    let wanted = auto_subnet.replace(".0.0/16", ".0.40");
    assert_ne!(wanted, auto_subnet, "auto's subnet is a /16 ending in .0.0: {auto_subnet}");
    let out = host.cnet(&["run", "-d", "--network", "auto", "--ip", &wanted, "busybox", "sleep", "100"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains(&wanted) && stderr.contains("user configured subnets"), "{stderr}");
    host.cnet_ok(&["rm", "-f", "fixed"]);
    host.assert_nothing_left("auto");
}

/// A neighbour on the host's LAN cannot reach a port published on 127.0.0.1 by sending a TCP SYN
/// with a loopback destination to the host's MAC (moby#49325): such frames are dropped before any
/// DNAT. The same hand-made SYN to the host's own address reaches a port published on every
/// address, which proves the probe.
#[test]
fn a_neighbour_cannot_reach_loopback_ports_with_hand_made_frames() {
    let (host, upstream) = host_with_upstream();
    host.cnet_ok(&["create", "lo-net"]);
    run_d(&host, "web", &["--network", "lo-net", "-p", "127.0.0.1:8080:80", "-p", "8081:80"], &serve_script(&[80]));
    wait_serving(&host, "web", 80);
    // From the host itself the loopback binding serves.
    assert_fetch(host.ns(), "host", "http://127.0.0.1:8080/", "port-80\n");
    let mac_of = |ns: &Ns, dev: &str| {
        let link = ns.run_ok(&format!("ip -o link show dev {dev}"));
        let mac = link.split("link/ether ").nth(1).and_then(|rest| rest.split_whitespace().next());
        mac.unwrap_or_else(|| panic!("no MAC in {link}")).to_string()
    };
    let (host_mac, neighbour_mac) = (mac_of(host.ns(), "up0"), mac_of(upstream.ns(), "eth0"));
    let probe = |dst: &str, port: u16| {
        let out = upstream
            .ns()
            .cmd(bin("syn-probe"))
            .args(["eth0", &neighbour_mac, "198.51.100.2", &host_mac, dst, &port.to_string(), "2000"])
            .output()
            .expect("run syn-probe");
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(matches!(out.status.code(), Some(0 | 1 | 3)), "{}", describe_output("syn-probe", &out));
        stdout
    };
    assert_eq!(probe(HOST_ADDR, 8081), "SYN-ACK", "the probe reaches a port published on every address");
    assert_eq!(probe("127.0.0.1", 8080), "no answer", "a loopback destination from the LAN reached 127.0.0.1:8080");
    assert_eq!(probe("127.0.0.1", 8081), "no answer", "a loopback destination from the LAN reached :8081");
}

/// A port published on every address answers the host at [::1] too, as Docker's proxy does (many
/// clients try `localhost` as ::1 first), on an IPv4-only network and on an IPv6 one, where the
/// DNAT of ::1 used to hang the connection.
#[test]
fn ports_on_every_address_answer_the_host_at_ipv6_loopback() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "four"]);
    host.cnet_ok(&["network", "create", "--ipv6", "six"]);
    run_d(&host, "web4", &["--network", "four", "-p", "8090:80"], &serve_script(&[80]));
    run_d(&host, "web6", &["--network", "six", "-p", "8091:80"], &serve_script(&[80]));
    wait_serving(&host, "web4", 80);
    wait_serving(&host, "web6", 80);
    for port in [8090, 8091] {
        assert_fetch(host.ns(), "host", &format!("http://127.0.0.1:{port}/"), "port-80\n");
        assert_fetch(host.ns(), "host", &format!("http://[::1]:{port}/"), "port-80\n");
    }
    host.cnet_ok(&["rm", "-f", "web4", "web6"]);
    let out = host.ns().run(&fetch("http://[::1]:8090/", 3));
    assert!(!out.status.success(), "[::1]:8090 still answers after rm: {out:?}");
}

/// Gateway modes (Docker 28): by default (`nat`) a neighbour on the host's LAN that routes the
/// container subnets via the host reaches only published ports (moby#48724); a
/// `gateway_mode_ipv4=nat-unprotected` network lets it reach any port; an unknown mode is refused
/// by name.
#[test]
fn a_lan_neighbour_reaches_only_published_ports_unless_nat_unprotected() {
    let (host, upstream) = host_with_upstream();
    let mode = |m: &str| format!("com.docker.network.bridge.gateway_mode_ipv4={m}");
    host.cnet_ok(&["network", "create", "--subnet", "10.81.0.0/24", "guarded"]);
    host.cnet_ok(&["network", "create", "--subnet", "10.82.0.0/24", "-o", &mode("nat-unprotected"), "open"]);
    run_d(&host, "gw", &["--network", "guarded", "-p", "8081:80"], &serve_script(&[80]));
    run_d(&host, "op", &["--network", "open"], &serve_script(&[80]));
    wait_serving(&host, "gw", 80);
    wait_serving(&host, "op", 80);
    upstream.ns().run_ok("ip route add 10.81.0.0/24 via 198.51.100.1 && ip route add 10.82.0.0/24 via 198.51.100.1");
    let (g_ip, o_ip) = (ip_on(&host, "gw", "guarded"), ip_on(&host, "op", "open"));

    assert_fetch(upstream.ns(), "neighbour", &format!("http://{HOST_ADDR}:8081/"), "port-80\n");
    assert_fetch(upstream.ns(), "neighbour", &format!("http://{o_ip}/"), "port-80\n");
    assert_no_fetch(upstream.ns(), "neighbour", &format!("http://{g_ip}/"));
    assert!(!upstream.ns().run(&format!("busybox ping -c 1 -W 1 {g_ip}")).status.success(), "ping reached {g_ip}");
    // The containers still reach the neighbour (replies come back).
    assert!(host.cnet(&["exec", "gw", "ping", "-c", "1", "-W", "2", "198.51.100.2"]).status.success());
    let options = &host.network_inspect("open")["Options"];
    assert_eq!(options["com.docker.network.bridge.gateway_mode_ipv4"], "nat-unprotected", "{options:#}");

    let err = host.cnet_err(&["network", "create", "-o", &mode("bogus"), "bogus-net"]);
    assert!(err.contains("bogus") && err.contains("gateway_mode_ipv4"), "{err}");
    assert!(!ls_names(&host, &[]).iter().any(|n| n == "bogus-net"));
}

/// Gateway mode `routed`: no NAT either way; a LAN neighbour that routes the subnet via the host
/// reaches the published container port at the container's own address (the host port is not
/// used) and ICMP, nothing else. `trusted_host_interfaces`: from the LAN interface, a nat
/// network's published container ports are reached directly too. `isolated`: an internal network
/// whose bridge has no address, so not even the host reaches it.
#[test]
fn routed_isolated_and_trusted_host_interfaces() {
    let (host, upstream) = host_with_upstream();
    let opt = |key: &str, value: &str| format!("com.docker.network.bridge.{key}={value}");
    let routed = opt("gateway_mode_ipv4", "routed");
    host.cnet_ok(&["network", "create", "--subnet", "10.84.0.0/24", "-o", &routed, "routed"]);
    let trusted = opt("trusted_host_interfaces", "up0");
    host.cnet_ok(&["network", "create", "--subnet", "10.85.0.0/24", "-o", &trusted, "trusting"]);
    run_d(&host, "rt", &["--network", "routed", "-p", "8084:80"], &serve_script(&[80, 81]));
    run_d(&host, "tr", &["--network", "trusting", "-p", "8085:80"], &serve_script(&[80, 81]));
    for (c, port) in [("rt", 80), ("rt", 81), ("tr", 80), ("tr", 81)] {
        wait_serving(&host, c, port);
    }
    let (r_ip, t_ip) = (ip_on(&host, "rt", "routed"), ip_on(&host, "tr", "trusting"));
    // The neighbour has no route back yet: only a masqueraded ping could be answered.
    assert_no_ping(&host, "rt", upstream.addr());
    upstream.ns().run_ok("ip route add 10.84.0.0/24 via 198.51.100.1 && ip route add 10.85.0.0/24 via 198.51.100.1");
    wait_ping(&host, "rt", upstream.addr());

    assert_fetch(upstream.ns(), "neighbour", &format!("http://{r_ip}:80/"), "port-80\n");
    assert_no_fetch(upstream.ns(), "neighbour", &format!("http://{r_ip}:81/"));
    assert_no_fetch(upstream.ns(), "neighbour", &format!("http://{HOST_ADDR}:8084/"));
    let ping = upstream.ns().run(&format!("busybox ping -c 1 -W 2 {r_ip}"));
    assert!(ping.status.success(), "{}", describe_output("neighbour -> routed container", &ping));

    assert_fetch(upstream.ns(), "neighbour", &format!("http://{t_ip}:80/"), "port-80\n");
    assert_fetch(upstream.ns(), "neighbour", &format!("http://{HOST_ADDR}:8085/"), "port-80\n");
    assert_no_fetch(upstream.ns(), "neighbour", &format!("http://{t_ip}:81/"));
    let options = &host.network_inspect("routed")["Options"];
    assert_eq!(options["com.docker.network.bridge.gateway_mode_ipv4"], "routed", "{options:#}");

    let isolated = opt("gateway_mode_ipv4", "isolated");
    let err = host.cnet_err(&["network", "create", "-o", &isolated, "not-internal"]);
    assert!(err.contains("isolated") && err.contains("internal"), "{err}");
    assert!(!ls_names(&host, &[]).iter().any(|n| n == "not-internal"));
    host.cnet_ok(&["network", "create", "--internal", "--subnet", "10.86.0.0/24", "-o", &isolated, "iso"]);
    sleeper(&host, "i1", &["--network", "iso"]);
    sleeper(&host, "i2", &["--network", "iso"]);
    let i2 = host.ip_of("i2");
    wait_ping(&host, "i1", &i2);
    let id = field(&host.network_inspect("iso"), "Id");
    let bridge = format!("br-{}", &id[..12]);
    let addrs = host.ns().run_ok(&format!("ip -o addr show dev {bridge}"));
    assert!(!addrs.contains("inet "), "the isolated bridge has an IPv4 address: {addrs}");
    assert!(!host.ns().run(&format!("busybox ping -c 1 -W 1 {i2}")).status.success(), "the host reached {i2}");
}

/// `--format`: Docker's one-liners work unchanged on `inspect`, `network inspect`, `ps` and
/// `network ls` (Go templates over the same JSON, `table`, `json`), and a bad template is refused.
#[test]
fn format_templates_as_docker_takes_them() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "--subnet", "10.77.0.0/24", "--label", "team=net", "fmtnet"]);
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "tier=front",
        "--network",
        "fmtnet",
        "busybox",
        "sleep",
        "100",
    ]);
    let ip = host.cnet_ok(&["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", "web"]);
    assert_eq!(ip.trim(), host.ip_of("web"));
    assert_eq!(host.cnet_ok(&["inspect", "--format", "{{index .Config.Labels \"tier\"}}", "web"]), "front\n");
    assert_eq!(host.cnet_ok(&["inspect", "-f", "{{json .State.Running}}", "web"]), "true\n");
    let net = host.cnet_ok(&["network", "inspect", "-f", "{{.Name}} {{index .Labels \"team\"}}", "fmtnet"]);
    assert_eq!(net, "fmtnet net\n");
    assert_eq!(
        host.cnet_ok(&["ps", "--format", "table {{.Names}}\\t{{.Labels}}"]),
        "NAMES   LABELS\nweb     tier=front\n"
    );
    let ls = host.cnet_ok(&["network", "ls", "--filter", "label=team", "--format", "{{.Name}}/{{.Driver}}"]);
    assert_eq!(ls, "fmtnet/bridge\n");
    let lines = host.cnet_ok(&["ps", "--format", "json"]);
    let row: Value = serde_json::from_str(lines.trim()).expect("one JSON line per container");
    assert_eq!(row["Names"], "web", "{row:#}");
    let images = host.cnet_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l == "busybox:latest"), "{images}");
    let err = host.cnet_err(&["inspect", "-f", "{{.State", "web"]);
    assert!(err.contains("{{.State"), "{err}");
    host.cnet_ok(&["rm", "-f", "web"]);
    host.assert_nothing_left("fmtnet");
}
