//! End-to-end tests of the endpoint options of `cnet run --network name=N,…` and `cnet network
//! connect`, as Docker 28 spells them: the interface name inside the container
//! (`driver-opt=com.docker.network.endpoint.ifname=…`, bridge and p2p networks), the MAC address
//! (`mac-address=`), the gateway priority (`gw-priority`: which network gives the default route,
//! moved by connect and disconnect); and `cnet run --sysctl` of the container's network namespace.
//! Every refusal is checked for its message and for leaving nothing. Each test runs a cnetd of its
//! own in its own namespaces (see the kit in `tests/src`); no packet leaves them. They need root
//! and the binaries built: `cargo build --workspace --bins && cargo test -p cnet-tests --test
//! endpoint_opts`.

use std::time::Duration;

use cnet_tests::{TestHost, describe_output, parse_links, wait_for};
use serde_json::Value;

const IFNAME: &str = "com.docker.network.endpoint.ifname";
/// How long a test waits for a state it needs (generous: two copies of the suite may share 2 cores).
const WAIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------ helpers

/// `cnet run -d --name NAME ARGS… busybox sleep 1000`.
fn sleeper(host: &TestHost, name: &str, args: &[&str]) {
    let mut all = vec!["run", "-d", "--name", name];
    all.extend_from_slice(args);
    all.extend_from_slice(&["busybox", "sleep", "1000"]);
    let id = host.cnet_ok(&all).trim().to_string();
    assert_eq!(id.len(), 64, "`cnet run -d` did not print an id: {id:?}");
}

/// The interface names inside the container (`ip -o link`), which must list `lo` at least.
fn links_of(host: &TestHost, container: &str) -> Vec<String> {
    let out = host.cnet_ok(&["exec", container, "ip", "-o", "link"]);
    let names = parse_links(&out);
    assert!(names.iter().any(|n| n == "lo"), "`ip -o link` in {container} did not list lo: {out}");
    names
}

/// The default routes inside the container (`ip route`, which must list the container's own
/// subnets, so an empty answer is never a failed lookup).
fn default_routes(host: &TestHost, container: &str) -> Vec<String> {
    let out = host.cnet_ok(&["exec", container, "ip", "route"]);
    assert!(out.lines().any(|l| l.contains("scope link")), "`ip route` in {container} listed no subnet: {out}");
    out.lines().filter(|l| l.starts_with("default")).map(str::to_string).collect()
}

/// `NetworkSettings.Networks.NET` of `cnet inspect C`, which must be there.
fn endpoint_of(host: &TestHost, container: &str, network: &str) -> Value {
    let json = host.inspect(container);
    match json.pointer(&format!("/NetworkSettings/Networks/{network}")) {
        Some(ep) => ep.clone(),
        None => panic!("{container} is not on {network}: {json:#}"),
    }
}

fn sysctl_in(host: &TestHost, container: &str, path: &str) -> String {
    host.cnet_ok(&["exec", container, "cat", &format!("/proc/sys/{path}")]).trim().to_string()
}

/// What a refused command may leave: container directories, sandboxes, endpoints on `networks`.
fn leftovers(host: &TestHost, networks: &[&str]) -> (Vec<String>, Vec<String>, Vec<Vec<String>>) {
    let eps = networks
        .iter()
        .map(|n| {
            let mut on = host.network_containers(n);
            on.sort();
            on
        })
        .collect();
    let mut sandboxes = host.sandbox_ids();
    sandboxes.sort();
    (host.container_dirs(), sandboxes, eps)
}

/// `cnet ARGS…` must fail with every one of `needles` in its error and leave nothing behind (on
/// `networks`, and no container or sandbox); `cnet run` must exit 125, as Docker's does.
fn refused(host: &TestHost, networks: &[&str], args: &[&str], needles: &[&str]) {
    let before = leftovers(host, networks);
    let out = host.cnet(args);
    let what = format!("cnet {}", args.join(" "));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe_output(&what, &out));
    if args[0] == "run" {
        assert_eq!(out.status.code(), Some(125), "{}", describe_output(&what, &out));
    }
    for needle in needles {
        assert!(stderr.contains(needle), "`{what}`: expected {needle:?} in the error: {stderr}");
    }
    assert_eq!(leftovers(host, networks), before, "`{what}` left something behind");
}

// ------------------------------------------------------------------------------------ tests

#[test]
fn the_interface_name_is_chosen_on_run_and_on_connect() {
    let host = TestHost::with_cnetd();
    for n in ["ifa", "ifb", "ifc"] {
        host.cnet_ok(&["network", "create", n]);
    }
    sleeper(&host, "c1", &["--network", &format!("name=ifa,driver-opt={IFNAME}=eth3")]);
    assert_eq!(links_of(&host, "c1"), ["lo", "eth3"]);
    let addr = host.cnet_ok(&["exec", "c1", "ip", "-o", "addr", "show", "dev", "eth3"]);
    assert!(addr.contains(&format!("inet {}/", host.ip_of("c1"))), "{addr}");
    let ep = endpoint_of(&host, "c1", "ifa");
    assert_eq!(ep["DriverOpts"][IFNAME], "eth3", "{ep:#}");
    assert_eq!(ep["GwPriority"], 0, "{ep:#}");
    // The default route goes out of the chosen name too.
    assert_eq!(default_routes(&host, "c1").len(), 1);
    assert!(default_routes(&host, "c1")[0].contains("dev eth3"), "{:?}", default_routes(&host, "c1"));

    // On connect; the next automatic name is still eth0.
    host.cnet_ok(&["network", "connect", "--driver-opt", &format!("{IFNAME}=lan5"), "ifb", "c1"]);
    assert_eq!(links_of(&host, "c1"), ["lo", "eth3", "lan5"]);
    assert_eq!(endpoint_of(&host, "c1", "ifb")["DriverOpts"][IFNAME], "lan5");
    host.cnet_ok(&["network", "connect", "ifc", "c1"]);
    assert_eq!(links_of(&host, "c1"), ["lo", "eth3", "lan5", "eth0"]);
    host.cnet_ok(&["network", "disconnect", "ifc", "c1"]);
    // With a static IPv6 address and an alias: the IPv6 default route is elected on its own.
    host.cnet_ok(&["network", "create", "--ipv6", "--subnet", "10.65.0.0/24", "--subnet", "fd00:65::/64", "ifv6"]);
    host.cnet_ok(&[
        "network",
        "connect",
        "--ip6",
        "fd00:65::9",
        "--alias",
        "six",
        "--driver-opt",
        &format!("{IFNAME}=v6net"),
        "ifv6",
        "c1",
    ]);
    let addr = host.cnet_ok(&["exec", "c1", "ip", "-o", "addr", "show", "dev", "v6net"]);
    assert!(addr.contains("inet6 fd00:65::9/64"), "{addr}");
    assert_eq!(endpoint_of(&host, "c1", "ifv6")["Aliases"], serde_json::json!(["six"]));
    let routes6 = host.cnet_ok(&["exec", "c1", "ip", "-6", "route"]);
    assert!(routes6.contains("default via fd00:65::1 dev v6net"), "{routes6}");
    assert!(default_routes(&host, "c1")[0].contains("dev eth3"), "the IPv4 default route moved");

    // A name another endpoint has, or that a link of the container has, is refused by name.
    let opt = |name: &str| format!("{IFNAME}={name}");
    refused(
        &host,
        &["ifc"],
        &["network", "connect", "--driver-opt", &opt("eth3"), "ifc", "c1"],
        &["interface eth3 already exists in container c1", "network ifa"],
    );
    refused(
        &host,
        &["ifc"],
        &["network", "connect", "--driver-opt", &opt("lo"), "ifc", "c1"],
        &["interface lo already exists in container c1"],
    );
    let key = host.inspect("c1")["NetworkSettings"]["SandboxKey"].as_str().expect("a SandboxKey").to_string();
    host.run_in_ok(&key, "ip link add mine0 type veth peer name mine1");
    let links = links_of(&host, "c1");
    assert!(links.contains(&"mine0".to_string()), "{links:?}");
    refused(
        &host,
        &["ifc"],
        &["network", "connect", "--driver-opt", &opt("mine0"), "ifc", "c1"],
        &["interface mine0 already exists in container c1"],
    );
    // Not a Linux interface name, or an option no driver takes: refused, naming it.
    refused(&host, &["ifc"], &["network", "connect", "--driver-opt", &opt("a/b"), "ifc", "c1"], &["\"a/b\"", IFNAME]);
    refused(
        &host,
        &["ifc"],
        &["network", "connect", "--driver-opt", &opt("sixteen-chars-xx"), "ifc", "c1"],
        &["\"sixteen-chars-xx\""],
    );
    refused(
        &host,
        &["ifc"],
        &["network", "connect", "--driver-opt", "com.example.speed=fast", "ifc", "c1"],
        &["unknown endpoint driver option \"com.example.speed\"", "network ifc"],
    );
    assert_eq!(links_of(&host, "c1"), links, "a refusal changed c1's links");

    // The same refusals at run leave no container, sandbox or endpoint.
    refused(
        &host,
        &["ifa"],
        &["run", "-d", "--name", "c2", "--network", &format!("name=ifa,driver-opt={}", opt("lo")), "busybox"],
        &["interface lo already exists"],
    );
    refused(
        &host,
        &["ifa"],
        &["run", "-d", "--name", "c2", "--network", "name=ifa,driver-opt=colour=red", "busybox"],
        &["\"colour\""],
    );
    refused(
        &host,
        &["ifa"],
        &["run", "-d", "--name", "c2", "--network", "name=ifa,colour=red", "busybox"],
        &["\"colour\""],
    );
    refused(
        &host,
        &["ifa", "ifb"],
        &[
            "run",
            "-d",
            "--name",
            "c2",
            "--network",
            &format!("name=ifa,driver-opt={}", opt("eth7")),
            "--network",
            &format!("name=ifb,driver-opt={}", opt("eth7")),
            "busybox",
        ],
        &["interface eth7 already exists in container c2"],
    );

    host.cnet_ok(&["rm", "-f", "c1"]);
    for n in ["ifa", "ifb", "ifc", "ifv6"] {
        host.assert_nothing_left(n);
    }
}

#[test]
fn a_p2p_link_keeps_the_chosen_names_through_park_and_unpark() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "-d", "p2p", "--subnet", "192.0.2.0/31", "wire"]);
    sleeper(&host, "ra", &["--network", &format!("name=wire,driver-opt={IFNAME}=to-rb")]);
    sleeper(&host, "rb", &["--network", &format!("name=wire,driver-opt={IFNAME}=to-ra")]);
    assert_eq!(links_of(&host, "ra"), ["lo", "to-rb"]);
    // The second end was parked, then moved in and renamed to the chosen name.
    assert_eq!(links_of(&host, "rb"), ["lo", "to-ra"]);
    // The far end's carrier may come a moment after the join.
    let ping = |from: &str, to: &str| {
        wait_for(&format!("{from} to ping {to}"), WAIT, || {
            host.cnet(&["exec", from, "ping", "-c", "1", "-W", "2", to]).status.success()
        })
    };
    ping("ra", "192.0.2.1");

    // b leaves (its end parked again) and comes back under another name.
    host.cnet_ok(&["network", "disconnect", "wire", "rb"]);
    assert_eq!(links_of(&host, "rb"), ["lo"]);
    assert_eq!(links_of(&host, "ra"), ["lo", "to-rb"], "a lost its end when b left");
    host.cnet_ok(&["network", "connect", "--driver-opt", &format!("{IFNAME}=uplink"), "wire", "rb"]);
    assert_eq!(links_of(&host, "rb"), ["lo", "uplink"]);
    ping("rb", "192.0.2.0");

    host.cnet_ok(&["rm", "-f", "ra", "rb"]);
    host.assert_nothing_left("wire");
}

#[test]
fn the_mac_address_of_the_long_syntax_is_the_interfaces() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "macs"]);
    sleeper(&host, "m1", &["--network", "name=macs,mac-address=02:42:0a:0b:0c:0d,alias=mm"]);
    let link = host.cnet_ok(&["exec", "m1", "ip", "-o", "link", "show", "eth0"]);
    assert!(link.contains("link/ether 02:42:0a:0b:0c:0d"), "{link}");
    let ep = endpoint_of(&host, "m1", "macs");
    assert_eq!(ep["MacAddress"], "02:42:0a:0b:0c:0d", "{ep:#}");
    assert_eq!(ep["Aliases"], serde_json::json!(["mm"]), "{ep:#}");
    // A multicast MAC, or one given twice, is refused before anything is made.
    refused(
        &host,
        &["macs"],
        &["run", "-d", "--name", "m2", "--network", "name=macs,mac-address=01:00:5e:00:00:01", "busybox"],
        &["01:00:5e:00:00:01"],
    );
    refused(
        &host,
        &["macs"],
        &[
            "run",
            "-d",
            "--name",
            "m2",
            "--network",
            "name=macs,mac-address=02:42:0a:0b:0c:0e",
            "--mac-address",
            "02:42:0a:0b:0c:0f",
            "busybox",
        ],
        &["conflicting options", "--mac-address"],
    );
    host.cnet_ok(&["rm", "-f", "m1"]);
    host.assert_nothing_left("macs");
}

#[test]
fn the_gateway_priority_picks_and_moves_the_default_route() {
    let host = TestHost::with_cnetd();
    for (n, subnet) in [("gwa", "10.61.0.0/24"), ("gwb", "10.62.0.0/24"), ("gwc", "10.63.0.0/24")] {
        host.cnet_ok(&["network", "create", "--subnet", subnet, n]);
    }
    host.cnet_ok(&["network", "create", "--internal", "--subnet", "10.64.0.0/24", "gwi"]);
    let via = |c: &str| {
        let routes = default_routes(&host, c);
        assert_eq!(routes.len(), 1, "{c} has not exactly one default route: {routes:?}");
        routes[0].split_whitespace().nth(2).unwrap_or_default().to_string()
    };

    // The higher priority wins over the order of --network and over the names.
    sleeper(&host, "g1", &["--network", "gwa", "--network", "name=gwb,gw-priority=1"]);
    assert_eq!(via("g1"), "10.62.0.1");
    assert_eq!(endpoint_of(&host, "g1", "gwb")["GwPriority"], 1);
    // A tie goes to the network name that sorts first (Docker's rule), whatever the order.
    sleeper(&host, "g2", &["--network", "gwb", "--network", "gwa"]);
    assert_eq!(via("g2"), "10.61.0.1");
    assert!(default_routes(&host, "g2")[0].contains("dev eth1"), "{:?}", default_routes(&host, "g2"));

    // Connecting a network of higher priority moves the route there; disconnecting moves it back.
    host.cnet_ok(&["network", "connect", "--gw-priority", "5", "gwc", "g1"]);
    assert_eq!(via("g1"), "10.63.0.1");
    assert_eq!(endpoint_of(&host, "g1", "gwc")["GwPriority"], 5);
    host.cnet_ok(&["network", "disconnect", "gwc", "g1"]);
    assert_eq!(via("g1"), "10.62.0.1");
    // A lower one, or an internal network whatever its priority, changes nothing.
    host.cnet_ok(&["network", "connect", "--gw-priority", "-3", "gwc", "g1"]);
    assert_eq!(via("g1"), "10.62.0.1");
    host.cnet_ok(&["network", "connect", "--gw-priority", "100", "gwi", "g1"]);
    assert_eq!(via("g1"), "10.62.0.1");
    // Disconnecting a network that does not hold the route leaves it where it is; the holder's
    // going hands it to the next (gwc, at -3, is the only one left with a gateway besides gwa).
    host.cnet_ok(&["network", "disconnect", "gwi", "g1"]);
    assert_eq!(via("g1"), "10.62.0.1");
    host.cnet_ok(&["network", "disconnect", "gwb", "g1"]);
    assert_eq!(via("g1"), "10.61.0.1");
    host.cnet_ok(&["network", "disconnect", "gwa", "g1"]);
    assert_eq!(via("g1"), "10.63.0.1");

    refused(&host, &["gwc"], &["network", "connect", "--gw-priority", "high", "gwc", "g2"], &["high"]);
    refused(
        &host,
        &["gwa"],
        &["run", "-d", "--name", "g3", "--network", "name=gwa,gw-priority=x", "busybox"],
        &["invalid gw-priority \"x\""],
    );
    host.cnet_ok(&["rm", "-f", "g1", "g2"]);
    for n in ["gwa", "gwb", "gwc", "gwi"] {
        host.assert_nothing_left(n);
    }
}

#[test]
fn sysctls_of_the_network_namespace_are_set_in_the_container() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "routed"]);
    let host_before = host.ns().run_ok("cat /proc/sys/net/ipv4/conf/all/rp_filter /proc/sys/net/ipv4/ip_forward");
    sleeper(
        &host,
        "router",
        &[
            "--network",
            "routed",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "net.ipv4.conf.all.rp_filter=0",
            // A key of an interface that joins later: written when it does.
            "--sysctl",
            "net.ipv4.conf.eth0.rp_filter=2",
            "--sysctl",
            "net/ipv4/conf/eth1/forwarding=0",
        ],
    );
    assert_eq!(sysctl_in(&host, "router", "net/ipv4/ip_forward"), "1");
    assert_eq!(sysctl_in(&host, "router", "net/ipv4/conf/all/rp_filter"), "0");
    assert_eq!(sysctl_in(&host, "router", "net/ipv4/conf/eth0/rp_filter"), "2");
    host.cnet_ok(&["network", "connect", "bridge", "router"]);
    assert_eq!(sysctl_in(&host, "router", "net/ipv4/conf/eth1/forwarding"), "0");
    // The host's own stay as they were.
    assert_eq!(
        host.ns().run_ok("cat /proc/sys/net/ipv4/conf/all/rp_filter /proc/sys/net/ipv4/ip_forward"),
        host_before
    );
    let sysctls = host.inspect("router")["HostConfig"]["Sysctls"].clone();
    assert_eq!(sysctls["net.ipv4.ip_forward"], "1", "{sysctls:#}");
    assert_eq!(sysctls["net.ipv4.conf.all.rp_filter"], "0", "{sysctls:#}");
    assert_eq!(sysctls.as_object().map(|o| o.len()), Some(4), "{sysctls:#}");

    // Refused by name, leaving nothing: other namespaces' keys, net.* on the host's own network,
    // keys the kernel does not have, values it refuses.
    let run = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["run", "-d", "--name", "bad", "--network", "routed"];
        v.extend_from_slice(extra);
        v.push("busybox");
        v
    };
    refused(&host, &["routed"], &run(&["--sysctl", "kernel.shmmax=1"]), &["\"kernel.shmmax\"", "net.*"]);
    refused(
        &host,
        &["routed"],
        &["run", "-d", "--name", "bad", "--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox"],
        &["\"net.ipv4.ip_forward\"", "host network"],
    );
    refused(
        &host,
        &["routed"],
        &run(&["--sysctl", "net.ipv4.no_such_key=1"]),
        &["\"net.ipv4.no_such_key\"", "does not exist"],
    );
    refused(&host, &["routed"], &run(&["--sysctl", "net.ipv4.ip_forward=abc"]), &["\"abc\"", "net.ipv4.ip_forward"]);
    // A key of the first interface with a value the kernel refuses fails its connect.
    refused(
        &host,
        &["routed"],
        &run(&["--sysctl", "net.ipv4.conf.eth0.forwarding=on"]),
        &["\"on\"", "net.ipv4.conf.eth0.forwarding"],
    );

    host.cnet_ok(&["rm", "-f", "router"]);
    host.assert_nothing_left("routed");
}
