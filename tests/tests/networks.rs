//! End-to-end tests of cnetd's networks, sandboxes and endpoints, each against its own cnetd in
//! its own namespaces (see the kit in `tests/src`). They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use cnet_api::v1::{CreateNetworkRequest, CreateSandboxRequest, Ipam, IpamConfig, Network, NetworkRef};
use cnet_tests::{Api, SIGKILL, SIGTERM, TestHost, Upstream, addr_of, fetch};
use tonic::Code;

// ------------------------------------------------------------------------------------ helpers

/// A host with cnetd started, and a client of it.
async fn daemon() -> (TestHost, Api) {
    let mut host = TestHost::new();
    host.start_cnetd();
    let api = host.api().await;
    (host, api)
}

/// `br-<first 12 of the id>`: the bridge of a user network.
fn bridge_of(net: &Network) -> String {
    format!("br-{}", &net.id[..12])
}

/// The network's first IPAM config: (subnet, gateway).
fn ipv4_config(net: &Network) -> (String, String) {
    let config = net
        .ipam
        .as_ref()
        .and_then(|ipam| ipam.config.first())
        .unwrap_or_else(|| panic!("network {} has no IPAM config: {net:?}", net.name));
    (config.subnet.clone(), addr_of(&config.gateway).to_string())
}

/// Whether `ip` (an address or a CIDR) lies in `subnet` (a.b.c.d/len).
fn in_subnet(ip: &str, subnet: &str) -> bool {
    let ip: Ipv4Addr = addr_of(ip).parse().unwrap();
    let (net, len) = subnet.split_once('/').unwrap();
    let (net, len): (Ipv4Addr, u32) = (net.parse().unwrap(), len.parse().unwrap());
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

/// Whether a `network ls` table has a row naming `name`.
fn lists(ls: &str, name: &str) -> bool {
    ls.lines().any(|line| line.split_whitespace().any(|cell| cell == name))
}

/// The chain names in `nft list table` output.
fn chains(nft: &str) -> BTreeSet<String> {
    nft.lines()
        .filter_map(|l| l.trim().strip_prefix("chain "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// (sandbox id, IPv4 CIDR) of every endpoint of the network, sorted.
fn endpoints(net: &Network) -> Vec<(String, String)> {
    let mut eps: Vec<(String, String)> =
        net.endpoints.iter().map(|e| (e.sandbox_id.clone(), e.ipv4_address.clone())).collect();
    eps.sort();
    eps
}

/// `cnet network inspect NAME`: Docker's shape, a JSON array of one object (`Id`, `Name`,
/// `Containers: {sandbox id: {IPv4Address, …}}`, …); returns that object.
fn inspect_cli(host: &TestHost, name: &str) -> serde_json::Value {
    let out = host.cnet_ok(&["network", "inspect", name]);
    let json: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect output is not JSON ({e}):\n{out}"));
    match json {
        serde_json::Value::Array(mut items) if items.len() == 1 => items.remove(0),
        other => panic!("inspect {name} is not an array of one network: {other:#}"),
    }
}

fn create_request(name: &str) -> CreateNetworkRequest {
    CreateNetworkRequest { name: name.into(), ..Default::default() }
}

// ------------------------------------------------------------------------------------ built-ins

#[tokio::test]
async fn builtin_networks_exist() {
    let (host, mut api) = daemon().await;

    let ls = host.cnet_ok(&["network", "ls"]);
    for name in ["bridge", "host", "none"] {
        assert!(lists(&ls, name), "`cnet network ls` does not list {name}:\n{ls}");
    }
    let networks = api.list_networks().await;
    for name in ["bridge", "host", "none"] {
        let net = networks
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("ListNetworks has no {name}: {networks:?}"));
        assert!(net.builtin, "{name} is not marked builtin: {net:?}");
        assert_eq!(net.id.len(), 64, "ids are 64 hex: {net:?}");
    }
    let bridge = api.network("bridge").await;
    assert_eq!(bridge.driver, "bridge");
    assert_eq!(ipv4_config(&bridge).0, "172.17.0.0/16");

    assert!(host.has_link("cnet0"), "no cnet0: {:?}", host.links());
    let addrs = host.ns().addrs("cnet0");
    assert!(addrs.contains("inet 172.17.0.1/16"), "cnet0: {addrs}");
}

// ------------------------------------------------------------------------------------ connectivity

#[tokio::test]
async fn sandboxes_on_one_network_reach_each_other() {
    let (host, mut api) = daemon().await;
    host.cnet_ok(&["network", "create", "net1"]);
    let net = api.network("net1").await;
    let (subnet, gateway) = ipv4_config(&net);
    assert!(host.has_link(&bridge_of(&net)), "{:?}", host.links());

    let (a, ea) = api.sandbox_on("a", "net1").await;
    let (b, eb) = api.sandbox_on("b", "net1").await;
    for (sb, ep) in [(&a, &ea), (&b, &eb)] {
        assert_eq!(ep.interface_name, "eth0", "{ep:?}");
        assert_eq!(ep.network_id, net.id);
        assert!(ep.ipv4_address.contains('/'), "not CIDR: {ep:?}");
        assert!(in_subnet(&ep.ipv4_address, &subnet), "{ep:?} not in {subnet}");
        assert!(
            sb.netns_path.starts_with(host.run_dir().join("netns").to_str().unwrap()),
            "netns not under run/netns: {sb:?}"
        );
        let eth0 = host.run_in_ok(&sb.netns_path, "ip -o addr show dev eth0");
        assert!(eth0.contains(&format!("inet {}", ep.ipv4_address)), "{eth0}");
        let routes = host.run_in_ok(&sb.netns_path, "ip route");
        assert!(routes.contains(&format!("default via {gateway}")), "{routes}");
    }
    assert_ne!(ea.ipv4_address, eb.ipv4_address);

    assert!(host.reaches(&a.netns_path, &eb.ipv4_address), "a cannot ping b");
    assert!(host.reaches(&b.netns_path, &ea.ipv4_address), "b cannot ping a");
    assert!(host.reaches(&a.netns_path, &gateway), "a cannot ping its gateway");
}

#[tokio::test]
async fn sandboxes_on_different_networks_are_isolated() {
    let (host, mut api) = daemon().await;
    host.cnet_ok(&["network", "create", "neta"]);
    host.cnet_ok(&["network", "create", "netb"]);
    let (a, ea) = api.sandbox_on("a", "neta").await;
    let (b, eb) = api.sandbox_on("b", "netb").await;
    let (subnet_a, gw_a) = ipv4_config(&api.network("neta").await);
    let (subnet_b, gw_b) = ipv4_config(&api.network("netb").await);
    assert_ne!(subnet_a, subnet_b);

    assert!(host.reaches(&a.netns_path, &gw_a), "a cannot ping its gateway {gw_a}");
    assert!(host.reaches(&b.netns_path, &gw_b), "b cannot ping its gateway {gw_b}");
    assert!(!host.ping_once(&a.netns_path, &eb.ipv4_address), "a (neta) pings b (netb) at {}", eb.ipv4_address);
    assert!(!host.ping_once(&b.netns_path, &ea.ipv4_address), "b (netb) pings a (neta) at {}", ea.ipv4_address);
}

#[tokio::test]
async fn outbound_nat_except_on_internal_networks() {
    let mut host = TestHost::new();
    // The host's uplink exists before the daemon starts, as on a real machine.
    let upstream = Upstream::new(&host);
    host.start_cnetd();
    let mut api = host.api().await;
    host.cnet_ok(&["network", "create", "outnet"]);
    host.cnet_ok(&["network", "create", "--internal", "innet"]);
    assert!(api.network("innet").await.internal);

    let forwarding = host.ns().run_ok("cat /proc/sys/net/ipv4/ip_forward");
    assert_eq!(forwarding.trim(), "1", "cnetd did not enable ip_forward");

    let (out, _) = api.sandbox_on("out", "outnet").await;
    let body = host.run_in_ok(&out.netns_path, &fetch(&upstream.url(), 10));
    assert_eq!(body, upstream.body());

    let (inside, _) = api.sandbox_on("inside", "innet").await;
    let attempt = host.run_in(&inside.netns_path, &fetch(&upstream.url(), 2));
    assert!(!attempt.status.success(), "a sandbox on an --internal network reached the upstream: {attempt:?}");
}

// ------------------------------------------------------------------------------------ restarts

#[tokio::test]
async fn restart_keeps_networks_endpoints_and_addresses() {
    let (mut host, mut api) = daemon().await;
    host.cnet_ok(&["network", "create", "persist"]);
    let net = api.network("persist").await;
    let (a, ea) = api.sandbox_on("a", "persist").await;
    let (b, eb) = api.sandbox_on("b", "persist").await;
    let before = endpoints(&api.network("persist").await);
    assert_eq!(before.len(), 2, "{before:?}");
    drop(api);

    host.kill_cnetd(SIGKILL);
    // The kernel state does not need the daemon.
    assert!(host.reaches(&a.netns_path, &eb.ipv4_address), "a→b with cnetd down");
    assert!(host.reaches(&b.netns_path, &ea.ipv4_address), "b→a with cnetd down");

    host.start_cnetd();
    let mut api = host.api().await;
    let after = api.network("persist").await;
    assert_eq!(after.id, net.id);
    assert_eq!(endpoints(&after), before, "endpoints changed across the restart");
    let inspect = inspect_cli(&host, "persist");
    assert_eq!(inspect["Id"], net.id.as_str(), "{inspect:#}");
    assert_eq!(inspect["Name"], "persist");
    let mut containers: Vec<(String, String)> = inspect["Containers"]
        .as_object()
        .unwrap_or_else(|| panic!("no Containers: {inspect:#}"))
        .iter()
        .map(|(id, c)| (id.clone(), c["IPv4Address"].as_str().unwrap_or_default().to_string()))
        .collect();
    containers.sort();
    assert_eq!(containers, before, "`cnet network inspect` after the restart: {inspect:#}");
    let a_again = api.sandbox(&a.id).await;
    assert_eq!(a_again.netns_path, a.netns_path);
    assert_eq!(a_again.endpoints.len(), 1, "{a_again:?}");
    assert_eq!(a_again.endpoints[0].ipv4_address, ea.ipv4_address);

    assert!(host.reaches(&a.netns_path, &eb.ipv4_address), "a→b after restart");
    assert!(host.reaches(&b.netns_path, &ea.ipv4_address), "b→a after restart");

    let (c, ec) = api.sandbox_on("c", "persist").await;
    assert!(
        ec.ipv4_address != ea.ipv4_address && ec.ipv4_address != eb.ipv4_address,
        "the new sandbox got a leased address: {} (a {}, b {})",
        ec.ipv4_address,
        ea.ipv4_address,
        eb.ipv4_address
    );
    assert!(host.reaches(&c.netns_path, &ea.ipv4_address), "c→a");
    assert_eq!(api.network("persist").await.endpoints.len(), 3);
}

#[tokio::test]
async fn restart_recreates_a_deleted_bridge() {
    let (mut host, mut api) = daemon().await;
    host.cnet_ok(&["network", "create", "persist"]);
    let net = api.network("persist").await;
    let (_a, _ea) = api.sandbox_on("a", "persist").await;
    let bridge = bridge_of(&net);
    let (subnet, gateway) = ipv4_config(&net);
    let prefix = subnet.split('/').nth(1).unwrap();
    drop(api);

    host.kill_cnetd(SIGKILL);
    host.ns().run_ok(&format!("ip link del {bridge}"));
    host.start_cnetd();

    assert!(host.has_link(&bridge), "{bridge} not recreated: {:?}", host.links());
    let addrs = host.ns().addrs(&bridge);
    assert!(addrs.contains(&format!("inet {gateway}/{prefix}")), "{bridge}: {addrs}");
    let link = host.ns().run_ok(&format!("ip -o link show dev {bridge}"));
    let flags = link.split('<').nth(1).and_then(|f| f.split('>').next()).unwrap_or("");
    assert!(flags.split(',').any(|f| f == "UP"), "{bridge} is not up: {link}");
}

#[tokio::test]
async fn restart_reattaches_endpoints_to_a_recreated_bridge() {
    let (mut host, mut api) = daemon().await;
    host.cnet_ok(&["network", "create", "persist"]);
    let net = api.network("persist").await;
    let (a, ea) = api.sandbox_on("a", "persist").await;
    let (b, eb) = api.sandbox_on("b", "persist").await;
    drop(api);

    host.kill_cnetd(SIGKILL);
    host.ns().run_ok(&format!("ip link del {}", bridge_of(&net)));
    assert!(!host.ping_once(&a.netns_path, &eb.ipv4_address), "a→b with no bridge?");
    host.start_cnetd();

    assert!(host.reaches(&a.netns_path, &eb.ipv4_address), "a→b: endpoints not re-attached to the recreated bridge");
    assert!(host.reaches(&b.netns_path, &ea.ipv4_address), "b→a");
}

#[tokio::test]
async fn restart_removes_orphan_bridges_only() {
    let (mut host, _api) = daemon().await;
    host.kill_cnetd(SIGKILL);
    // An orphan by cnet's naming convention, and a bridge of somebody else's.
    host.ns().run_ok("ip link add br-deadbeef0000 type bridge");
    host.ns().run_ok("ip link add keepme0 type bridge");
    host.start_cnetd();

    let links = host.links();
    assert!(!links.iter().any(|l| l == "br-deadbeef0000"), "orphan br-deadbeef0000 not removed: {links:?}");
    assert!(links.iter().any(|l| l == "keepme0"), "a foreign bridge was removed: {links:?}");
    assert!(links.iter().any(|l| l == "cnet0"), "{links:?}");
}

/// The filesystem type of `path` and the number of mounts on it, as `host` sees them.
fn fs_and_mounts(host: &TestHost, path: &std::path::Path) -> (String, usize) {
    let fs = host.ns().run_ok(&format!("stat -f -c %T '{}'", path.display())).trim().to_string();
    let mountinfo = host.ns().run_ok("cat /proc/self/mountinfo");
    let target = path.display().to_string();
    (fs, mountinfo.lines().filter(|l| l.split_whitespace().nth(4) == Some(target.as_str())).count())
}

/// Namespace files live on a tmpfs of cnetd's (the test's run directory is wherever TMPDIR is,
/// the disk in CI), mounted once: a restart after a kill -9 finds the first run's namespaces
/// there, not hidden under a second mount.
#[tokio::test]
async fn namespace_files_live_in_memory_across_restarts() {
    let (mut host, mut api) = daemon().await;
    let dir = host.run_dir().join("netns");
    assert_eq!(fs_and_mounts(&host, &dir).0, "tmpfs");
    let (sandbox, _) = api.sandbox_on("kept", "bridge").await;
    drop(api);
    host.kill_cnetd(SIGKILL);
    host.start_cnetd();
    let (fs, mounts) = fs_and_mounts(&host, &dir);
    assert_eq!(fs, "tmpfs");
    assert!(mounts <= 1, "{mounts} mounts on {}", dir.display());
    let path = std::path::Path::new(&sandbox.netns_path);
    assert_eq!(fs_and_mounts(&host, path).0, "nsfs", "the sandbox's namespace after the restart");
    assert_eq!(host.api().await.sandbox(&sandbox.id).await.netns_path, sandbox.netns_path);
}

/// A namespace directory that holds files when cnetd starts (namespaces bound on the disk by an
/// older cnetd) is not mounted over: that would hide them. cnetd keeps using it as it is.
#[tokio::test]
async fn a_populated_namespace_directory_is_not_mounted_over() {
    let mut host = TestHost::new();
    let dir = host.run_dir().join("netns");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("from-before"), "").unwrap();
    let (disk, _) = fs_and_mounts(&host, &host.run_dir());
    host.start_cnetd();
    let _api = host.api().await;
    assert_eq!(fs_and_mounts(&host, &dir), (disk, 0), "the directory was mounted over");
    assert!(!dir.join("from-before").exists(), "the orphan file was not removed at start");
}

/// SIGTERM with a client still connected (its runtime keeps running, so it can answer the
/// daemon's GOAWAY): cnetd exits 0 (within `kill_cnetd`'s deadline) and removes its socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cnetd_cleanly() {
    let (mut host, mut api) = daemon().await;
    host.cnet_ok(&["network", "create", "net1"]);
    api.sandbox_on("a", "net1").await;
    let socket = host.socket();
    let (status, host) = tokio::task::spawn_blocking(move || (host.kill_cnetd(SIGTERM), host)).await.unwrap();
    assert!(status.success(), "cnetd exited with {status} on SIGTERM; log:\n{}", host.log_tail());
    assert!(!socket.exists(), "cnetd left its socket {}", socket.display());
    drop(api);
}

// ------------------------------------------------------------------------------------ bad input

#[tokio::test]
async fn cli_rejects_bad_input_and_leaves_nothing_behind() {
    let (host, mut api) = daemon().await;
    host.cnet_ok(&["network", "create", "dupnet7"]);
    host.cnet_ok(&["network", "create", "busynet9"]);
    let busy = api.network("busynet9").await;
    api.sandbox_on("a", "busynet9").await;
    let names = api.network_names().await;
    let bridges = host.links_starting("br-");
    assert_eq!(bridges.len(), 2, "{bridges:?}");

    let err = host.cnet_err(&["network", "create", "--driver", "nosuchdriver", "badnet1"]);
    assert!(err.contains("nosuchdriver"), "unknown driver: {err}");

    let err = host.cnet_err(&["network", "create", "--subnet", "300.1.0.0/16", "badnet2"]);
    assert!(err.contains("300.1.0.0/16"), "invalid subnet: {err}");

    let err = host.cnet_err(&["network", "create", "dupnet7"]);
    assert!(err.contains("dupnet7"), "duplicate name: {err}");

    let err = host.cnet_err(&["network", "rm", "busynet9"]);
    assert!(err.contains("busynet9") || err.contains(&busy.id[..12]), "rm of a network with endpoints: {err}");

    let err = host.cnet_err(&["network", "rm", "bridge"]);
    assert!(err.contains("bridge"), "rm of a built-in: {err}");

    assert_eq!(api.network_names().await, names, "networks changed");
    assert_eq!(host.links_starting("br-"), bridges, "bridges changed");
    assert!(host.has_link("cnet0"));
    assert_eq!(api.network("busynet9").await.endpoints.len(), 1);
    let ls = host.cnet_ok(&["network", "ls"]);
    assert!(!lists(&ls, "badnet1") && !lists(&ls, "badnet2"), "{ls}");
}

#[tokio::test]
async fn api_rejects_bad_input_with_the_documented_codes() {
    let (host, mut api) = daemon().await;
    host.cnet_ok(&["network", "create", "dupnet7"]);
    host.cnet_ok(&["network", "create", "busynet9"]);
    api.sandbox_on("a", "busynet9").await;
    let names = api.network_names().await;
    let bridges = host.links_starting("br-");

    let subnet =
        |s: &str| Ipam { driver: String::new(), config: vec![IpamConfig { subnet: s.into(), ..Default::default() }] };
    let cases = [
        (
            CreateNetworkRequest { driver: "nosuchdriver".into(), ..create_request("badnet1") },
            Code::InvalidArgument,
            "nosuchdriver",
        ),
        (
            CreateNetworkRequest { ipam: Some(subnet("300.1.0.0/16")), ..create_request("badnet2") },
            Code::InvalidArgument,
            "300.1.0.0/16",
        ),
        (create_request("dupnet7"), Code::AlreadyExists, "dupnet7"),
    ];
    for (req, code, named) in cases {
        let status =
            api.networks.create_network(req.clone()).await.expect_err(&format!("CreateNetwork {req:?} succeeded"));
        assert_eq!(status.code(), code, "{req:?}: {status:?}");
        assert!(status.message().contains(named), "{req:?}: {status:?}");
    }
    for (network, code) in
        [("busynet9", Code::FailedPrecondition), ("bridge", Code::FailedPrecondition), ("nosuchnet", Code::NotFound)]
    {
        let status = api
            .networks
            .remove_network(NetworkRef { network: network.into() })
            .await
            .expect_err(&format!("RemoveNetwork({network}) succeeded"));
        assert_eq!(status.code(), code, "RemoveNetwork({network}): {status:?}");
    }

    // A sandbox's DNS servers must be addresses, its extra hosts name:ip; nothing is made.
    let netns_before = host.netns_files();
    for (req, named) in [
        (CreateSandboxRequest { dns_servers: vec!["notanip".into()], ..Default::default() }, "notanip"),
        (CreateSandboxRequest { extra_hosts: vec!["nocolon".into()], ..Default::default() }, "nocolon"),
    ] {
        let status =
            api.sandboxes.create_sandbox(req.clone()).await.expect_err(&format!("CreateSandbox {req:?} succeeded"));
        assert_eq!(status.code(), Code::InvalidArgument, "{req:?}: {status:?}");
        assert!(status.message().contains(named), "{req:?}: {status:?}");
    }
    assert_eq!(host.netns_files(), netns_before, "a refused sandbox left a namespace");

    assert_eq!(api.network_names().await, names, "networks changed");
    assert_eq!(host.links_starting("br-"), bridges, "bridges changed");
}

#[test]
fn cli_without_a_daemon_says_how_to_start_it() {
    let host = TestHost::new();
    let err = host.cnet_err(&["network", "ls"]);
    let socket = host.socket().display().to_string();
    assert!(err.contains("cnetd"), "does not mention cnetd: {err}");
    assert!(err.contains(&socket), "does not name the socket {socket}: {err}");
}

// ------------------------------------------------------------------------------------ cleanup

#[tokio::test]
async fn teardown_leaves_nothing_behind() {
    let (host, mut api) = daemon().await;
    let chains_before = chains(&host.nft_table());
    let veths_before = host.links_starting("veth");
    // Daemon-wide files (cnetd binds its own netns at run/netns/host) stay; per-sandbox ones go.
    let netns_before = host.netns_files();

    host.cnet_ok(&["network", "create", "tmpnet"]);
    let net = api.network("tmpnet").await;
    let (subnet, _) = ipv4_config(&net);
    let sandbox = api.create_sandbox("a").await;
    api.connect(&sandbox.id, "tmpnet").await;
    assert_eq!(host.netns_files().len(), netns_before.len() + 1, "{:?}", host.netns_files());
    assert!(host.links_starting("veth").len() > veths_before.len());

    api.disconnect(&sandbox.id, "tmpnet").await;
    assert_eq!(host.links_starting("veth"), veths_before, "veth left after disconnect");
    api.remove_sandbox(&sandbox.id).await;
    host.cnet_ok(&["network", "rm", "tmpnet"]);

    assert_eq!(host.links_starting("br-"), Vec::<String>::new());
    assert_eq!(host.links_starting("veth"), veths_before);
    assert_eq!(host.netns_files(), netns_before, "sandbox netns files left");
    let nft = host.nft_table();
    let left: Vec<String> = chains(&nft).difference(&chains_before).cloned().collect();
    assert!(left.is_empty(), "chains left: {left:?}\n{nft}");
    assert!(
        !nft.contains(&net.id[..12]) && !nft.contains(&subnet),
        "rules of tmpnet ({}, {subnet}) left:\n{nft}",
        &net.id[..12]
    );
    assert!(!api.network_names().await.contains(&"tmpnet".to_string()));
    assert!(api.list_sandboxes().await.is_empty());
}
