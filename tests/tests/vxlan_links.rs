//! End-to-end tests of the vxlan driver: point-to-point links between containers on different
//! hosts, carried by VXLAN, with the VNI allocated in etcd. Simulated hosts as in `overlay.rs`
//! (namespaces on an underlay bridge, 192.0.2.1-3, etcd at 192.0.2.100 in its own namespace);
//! "containers" are cnetd sandboxes probed with ping, `ip` and `bridge` run inside their
//! namespaces. They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test vxlan_links`.

use std::time::{Duration, Instant};

use cnet_api::v1::{
    ConnectRequest, CreateNetworkRequest, Endpoint, Ipam, IpamConfig, Network, NetworkRef, PortBinding, Sandbox,
};
use cnet_tests::{Api, Lab, SIGKILL, TestHost, addr_of};

const IFNAME: &str = "com.docker.network.endpoint.ifname";
const VNI: &str = "com.docker.network.driver.overlay.vxlanid_list";

/// `-d vxlan NAME` with `subnet` (none: no addresses) and `options`.
fn vxlan(name: &str, subnet: Option<&str>, options: &[(&str, &str)]) -> CreateNetworkRequest {
    CreateNetworkRequest {
        name: name.into(),
        driver: "vxlan".into(),
        ipam: subnet.map(|s| Ipam {
            driver: String::new(),
            config: vec![IpamConfig { subnet: s.into(), ..Default::default() }],
        }),
        options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    }
}

/// Polls `check` every 100 ms until it holds, panicking with `what` after `secs` seconds.
async fn eventually<F: AsyncFnMut() -> bool>(secs: u64, what: &str, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "not within {secs}s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls a synchronous `check` (a look at the kernel) like [`eventually`].
fn wait(what: &str, check: impl FnMut() -> bool) {
    cnet_tests::wait_for(what, Duration::from_secs(15), check)
}

/// A lab of `n` hosts, every cnetd started, and an API to each.
async fn lab_of(n: usize) -> (Lab, Vec<Api>) {
    let mut lab = Lab::new(n);
    for i in 0..n {
        lab.start_cnetd(i);
    }
    let mut apis = Vec::new();
    for i in 0..n {
        apis.push(lab.host(i).api().await);
    }
    (lab, apis)
}

/// Creates the network on the first API and waits until every host lists it.
async fn create_everywhere(apis: &mut [Api], req: CreateNetworkRequest) -> Network {
    let net = apis[0]
        .networks
        .create_network(req)
        .await
        .unwrap_or_else(|s| panic!("creating a vxlan network: {s:?}"))
        .into_inner();
    for api in apis.iter_mut() {
        eventually(10, &format!("network {} is listed on every host", net.name), async || {
            api.network_names().await.contains(&net.name)
        })
        .await;
    }
    net
}

fn connect_request(sandbox: &Sandbox, network: &str, ifname: &str) -> ConnectRequest {
    ConnectRequest {
        sandbox: sandbox.id.clone(),
        network: network.into(),
        driver_opts: [(IFNAME.to_string(), ifname.to_string())].into(),
        ..Default::default()
    }
}

/// Connects the sandbox to `network` with the interface name `ifname`.
async fn join(api: &mut Api, sandbox: &Sandbox, network: &str, ifname: &str) -> Endpoint {
    api.connect_with(connect_request(sandbox, network, ifname)).await
}

/// A new sandbox named `name`, joined to `network` as `ifname`.
async fn node(api: &mut Api, name: &str, network: &str, ifname: &str) -> (Sandbox, Endpoint) {
    let sandbox = api.create_sandbox(name).await;
    let ep = join(api, &sandbox, network, ifname).await;
    (sandbox, ep)
}

/// The destinations of the all-zero FDB entry of `ifname` in the sandbox (`bridge fdb show`);
/// fails the test if `bridge` fails (a missing device included).
fn default_destinations(host: &TestHost, sandbox: &Sandbox, ifname: &str) -> Vec<String> {
    let out = host.run_in_ok(&sandbox.netns_path, &format!("bridge fdb show dev {ifname}"));
    out.lines()
        .filter(|l| l.starts_with("00:00:00:00:00:00 "))
        .filter_map(|l| l.split(" dst ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `ip -d -o link show dev IFNAME` in the sandbox (fails the test if it fails).
fn link_details(host: &TestHost, sandbox: &Sandbox, ifname: &str) -> String {
    host.run_in_ok(&sandbox.netns_path, &format!("ip -d -o link show dev {ifname}"))
}

/// The VXLAN devices of a namespace (`ip -o link show type vxlan`), by name.
fn vxlan_devices(host: &TestHost, netns_path: Option<&str>) -> Vec<String> {
    let script = "ip -o link show type vxlan";
    let out = match netns_path {
        Some(path) => host.run_in_ok(path, script),
        None => {
            host.wait_background_work();
            host.ns().run_ok(script)
        }
    };
    cnet_tests::parse_links(&out)
}

/// The keys etcd holds under /cnet/v1/ (etcdctl failing fails the test).
fn etcd_keys(lab: &Lab) -> Vec<String> {
    let out = lab.etcd().etcdctl_ok(&["get", "--prefix", "--keys-only", "/cnet/v1/"]);
    out.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

fn vni_of(net: &Network) -> u32 {
    net.options.get(VNI).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no VNI recorded: {net:?}"))
}

#[tokio::test]
async fn a_link_across_two_hosts_with_names_mtu_a_limit_of_two_and_a_clean_removal() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_of(3).await;
    // An overlay network first: the link's VNI comes from the same allocation, so it is the next.
    let ov = create_everywhere(
        &mut apis,
        CreateNetworkRequest { name: "ov".into(), driver: "overlay".into(), ..Default::default() },
    )
    .await;
    let net = create_everywhere(&mut apis, vxlan("l1", Some("10.99.0.0/31"), &[])).await;
    assert_eq!(net.scope, "global");
    assert_eq!(net.driver, "vxlan");
    assert_eq!(vni_of(&net), vni_of(&ov) + 1, "VNIs are shared with overlay networks");
    let vni = vni_of(&net);
    let ipam = net.ipam.as_ref().expect("ipam");
    assert_eq!(ipam.config.len(), 1, "only the given subnet: {ipam:?}");
    assert!(ipam.config[0].gateway.is_empty(), "a link has no gateway: {ipam:?}");

    let (a, a_ep) = node(&mut apis[0], "a", "l1", "eth1").await;
    let (b, b_ep) = node(&mut apis[1], "b", "l1", "p1").await;
    assert_eq!(a_ep.interface_name, "eth1");
    assert_eq!(b_ep.interface_name, "p1");
    let mut addresses = [a_ep.ipv4_address.clone(), b_ep.ipv4_address.clone()];
    addresses.sort();
    assert_eq!(addresses, ["10.99.0.0/31", "10.99.0.1/31"], "both addresses of the /31");
    assert!(a_ep.ipv4_gateway.is_empty() && b_ep.ipv4_gateway.is_empty());

    assert!(lab.host(0).reaches(&a.netns_path, &b_ep.ipv4_address), "a -> b across hosts");
    assert!(lab.host(1).reaches(&b.netns_path, &a_ep.ipv4_address), "b -> a across hosts");

    // Each end is the VXLAN device itself, named as asked, underlay MTU minus 50, towards the peer.
    let a_link = link_details(lab.host(0), &a, "eth1");
    for want in ["mtu 1450", &format!("vxlan id {vni} "), "local 192.0.2.1 ", "dstport 4789", "nolearning"] {
        assert!(a_link.contains(want), "{want:?} in {a_link}");
    }
    assert!(!a_link.contains(" proxy"), "ARP must cross the link: {a_link}");
    assert!(link_details(lab.host(1), &b, "p1").contains("local 192.0.2.2 "));
    assert_eq!(default_destinations(lab.host(0), &a, "eth1"), ["192.0.2.2"]);
    assert_eq!(default_destinations(lab.host(1), &b, "p1"), ["192.0.2.1"]);
    // No default route, nothing in the hosts' own namespaces.
    let routes = lab.host(0).run_in_ok(&a.netns_path, "ip route show default");
    assert!(routes.trim().is_empty(), "{routes}");
    for i in 0..3 {
        assert_eq!(vxlan_devices(lab.host(i), None), Vec::<String>::new(), "host{}", i + 1);
    }

    // A third endpoint is refused, from a third host and from a host with an end, naming the two.
    for (i, name, holders) in [
        (2usize, "c", "containers a (on node host1) and b (on node host2)"),
        (0, "d", "containers a and b (on node host2)"),
    ] {
        let sandbox = apis[i].create_sandbox(name).await;
        let err = apis[i].sandboxes.connect_network(connect_request(&sandbox, "l1", "eth9")).await.unwrap_err();
        let msg = err.message();
        assert!(
            msg.contains("network l1 (driver vxlan) takes at most 2 endpoints") && msg.contains(holders),
            "{name} on host{}: {msg}",
            i + 1
        );
        // Nothing was made for it.
        let links = lab.host(i).run_in_ok(&sandbox.netns_path, "ip -o link show");
        assert!(!links.contains("eth9"), "{links}");
    }
    let on_l1 = etcd_keys(&lab).into_iter().filter(|k| k.contains(&format!("/endpoints/{}/", net.id))).count();
    assert_eq!(on_l1, 2, "two endpoints registered");

    // The peer leaves: a keeps its interface, its entry goes, traffic stops.
    apis[1].disconnect(&b.id, "l1").await;
    wait("a's FDB entry goes with b", || default_destinations(lab.host(0), &a, "eth1").is_empty());
    assert!(link_details(lab.host(0), &a, "eth1").contains("vxlan"), "a keeps eth1");
    assert!(!lab.host(0).ping_once(&a.netns_path, &b_ep.ipv4_address), "no traffic without the peer");
    // It comes back: the entry and the traffic too.
    let b_ep = join(&mut apis[1], &b, "l1", "p1").await;
    wait("a's FDB entry comes back", || default_destinations(lab.host(0), &a, "eth1") == ["192.0.2.2"]);
    assert!(lab.host(0).reaches(&a.netns_path, &b_ep.ipv4_address), "a -> b again");

    // Removal: refused while ends are joined, then clean everywhere.
    let err = apis[2].networks.remove_network(NetworkRef { network: "l1".into() }).await.unwrap_err();
    assert!(err.message().contains("active endpoints"), "{}", err.message());
    apis[0].disconnect(&a.id, "l1").await;
    apis[1].disconnect(&b.id, "l1").await;
    apis[2].networks.remove_network(NetworkRef { network: "l1".into() }).await.expect("removing l1");
    for api in apis.iter_mut() {
        eventually(10, "l1 is gone on every host", async || !api.network_names().await.iter().any(|n| n == "l1")).await;
    }
    let keys = etcd_keys(&lab);
    assert!(keys.iter().any(|k| k.contains(&ov.id)), "the overlay network is still there: {keys:?}");
    let left: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains(&net.id) || k.ends_with(&format!("/vnis/{vni}")) || k.ends_with("/l1"))
        .collect();
    assert!(left.is_empty(), "keys of l1 left in etcd: {left:?}");
    for (i, sandbox) in [(0, &a), (1, &b)] {
        assert_eq!(vxlan_devices(lab.host(i), None), Vec::<String>::new(), "host{}", i + 1);
        assert_eq!(
            vxlan_devices(lab.host(i), Some(&sandbox.netns_path)),
            Vec::<String>::new(),
            "sandbox on host{}",
            i + 1
        );
    }
    assert_eq!(vxlan_devices(lab.host(2), None), Vec::<String>::new());
}

#[tokio::test]
async fn a_link_without_subnet_carries_frames_and_the_mtu_option_is_applied() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_of(3).await;
    create_everywhere(&mut apis, vxlan("bare", None, &[("com.docker.network.driver.mtu", "1400")])).await;
    let (a, a_ep) = node(&mut apis[0], "a", "bare", "e1").await;
    let (b, b_ep) = node(&mut apis[1], "b", "bare", "e1").await;
    assert!(a_ep.ipv4_address.is_empty() && b_ep.ipv4_address.is_empty(), "no subnet, no address");
    assert!(link_details(lab.host(0), &a, "e1").contains("mtu 1400"));
    // Addresses of the user's own, made inside the containers: the link carries whatever they send.
    lab.host(0).run_in_ok(&a.netns_path, "ip addr add 198.51.100.1/30 dev e1");
    lab.host(1).run_in_ok(&b.netns_path, "ip addr add 198.51.100.2/30 dev e1");
    assert!(lab.host(0).reaches(&a.netns_path, "198.51.100.2"), "a -> b over a link without a subnet");

    // Without addresses to run out of, the limit of two still holds cluster-wide when two hosts
    // race for the second place: b leaves, then host2 and host3 join at once.
    apis[1].disconnect(&b.id, "bare").await;
    let c = apis[2].create_sandbox("c").await;
    let (mut api2, mut api3) = (lab.host(1).api().await, lab.host(2).api().await);
    let (r2, r3) = tokio::join!(
        api2.sandboxes.connect_network(connect_request(&b, "bare", "e1")),
        api3.sandboxes.connect_network(connect_request(&c, "bare", "e1")),
    );
    let refused: Vec<String> =
        [&r2, &r3].iter().filter_map(|r| r.as_ref().err()).map(|e| e.message().to_string()).collect();
    assert_eq!(refused.len(), 1, "exactly one of the two joins is refused: {r2:?} {r3:?}");
    assert!(refused[0].contains("takes at most 2 endpoints"), "{}", refused[0]);
    let keys = etcd_keys(&lab).into_iter().filter(|k| k.contains("/endpoints/")).count();
    assert_eq!(keys, 2, "two endpoints in etcd");
}

#[tokio::test]
async fn both_ends_on_one_host_are_a_veth_pair_and_the_one_left_gets_its_vxlan_back() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_of(2).await;
    create_everywhere(&mut apis, vxlan("same", Some("10.98.0.0/31"), &[])).await;
    let (a, a_ep) = node(&mut apis[0], "a", "same", "x1").await;
    let (b, b_ep) = node(&mut apis[0], "b", "same", "x2").await;
    assert!(lab.host(0).reaches(&a.netns_path, &b_ep.ipv4_address), "a -> b on one host");
    assert!(link_details(lab.host(0), &a, "x1").contains("veth"), "{}", link_details(lab.host(0), &a, "x1"));
    assert!(link_details(lab.host(0), &b, "x2").contains("veth"));
    let a_addr = lab.host(0).run_in_ok(&a.netns_path, "ip -o addr show dev x1");
    assert!(a_addr.contains(&a_ep.ipv4_address), "a keeps its address: {a_addr}");
    assert_eq!(vxlan_devices(lab.host(0), None), Vec::<String>::new());

    // b leaves: a's end is a VXLAN device again, and reaches a peer on another host.
    apis[0].disconnect(&b.id, "same").await;
    let a_link = link_details(lab.host(0), &a, "x1");
    assert!(a_link.contains("vxlan id") && a_link.contains("mtu 1450"), "{a_link}");
    let (c, c_ep) = node(&mut apis[1], "c", "same", "x3").await;
    wait("a points at c's host", || default_destinations(lab.host(0), &a, "x1") == ["192.0.2.2"]);
    assert!(lab.host(0).reaches(&a.netns_path, &c_ep.ipv4_address), "a -> c across hosts");
    assert!(lab.host(1).reaches(&c.netns_path, &a_ep.ipv4_address), "c -> a across hosts");
    assert_eq!(vxlan_devices(lab.host(0), None), Vec::<String>::new());
    let b_links = lab.host(0).run_in_ok(&b.netns_path, "ip -o link show");
    assert!(!b_links.contains("x2"), "b's end went: {b_links}");
}

#[tokio::test]
async fn a_killed_cnetd_keeps_the_link_restores_a_broken_end_and_sweeps_strays() {
    cnet_tests::require_root();
    let (mut lab, mut apis) = lab_of(2).await;
    create_everywhere(&mut apis, vxlan("k1", Some("10.97.0.0/31"), &[])).await;
    let (a, a_ep) = node(&mut apis[0], "a", "k1", "eth1").await;
    let (b, b_ep) = node(&mut apis[1], "b", "k1", "eth1").await;
    assert!(lab.host(0).reaches(&a.netns_path, &b_ep.ipv4_address));

    // Traffic keeps flowing while host2's cnetd is killed and started again.
    let ping_log = lab.host(0).dir().join("ping.log");
    let log_file = std::fs::File::create(&ping_log).expect("create ping.log");
    let mut pinger = lab
        .host(0)
        .in_netns(&a.netns_path, "busybox")
        .args(["ping", "-c", "40", "-i", "0.1", addr_of(&b_ep.ipv4_address)])
        .stdout(log_file)
        .spawn()
        .expect("start ping");
    let replies = || {
        let log = std::fs::read_to_string(&ping_log).unwrap_or_else(|e| panic!("reading {}: {e}", ping_log.display()));
        log.matches(" bytes from ").count()
    };
    wait("the first ping replies", || replies() >= 5);
    drop(apis);
    lab.host_mut(1).kill_cnetd(SIGKILL);
    let at_kill = replies();
    wait("ping replies while host2's cnetd is down", || replies() >= (at_kill + 5).min(40));
    lab.start_cnetd(1);
    let status = pinger.wait().expect("wait for ping");
    let text = std::fs::read_to_string(&ping_log).expect("read ping.log");
    assert!(status.success() && text.contains("40 packets received"), "traffic stopped during the restart:\n{text}");
    assert_eq!(default_destinations(lab.host(1), &b, "eth1"), ["192.0.2.1"], "b's entry kept");

    // Killed again; meanwhile b's end is deleted and a stray link with the driver's staging name
    // (and a vxlan device of someone else) appear: the restart makes b's end again and sweeps
    // the stray, nothing else.
    lab.host_mut(1).kill_cnetd(SIGKILL);
    lab.host(1).run_in_ok(&b.netns_path, "ip link del eth1");
    let stray = "vxl0123456789ab";
    lab.host(1).ns().run_ok(&format!(
        "ip link add {stray} type vxlan id 77 dstport 4789 local 192.0.2.2 && \
         ip link add theirs type vxlan id 78 dstport 4790 local 192.0.2.2"
    ));
    lab.start_cnetd(1);
    assert_eq!(vxlan_devices(lab.host(1), None), ["theirs"], "the stray is swept, someone else's device kept");
    let b_link = link_details(lab.host(1), &b, "eth1");
    assert!(b_link.contains("vxlan id") && b_link.contains("mtu 1450"), "b's end is made again: {b_link}");
    let b_addr = lab.host(1).run_in_ok(&b.netns_path, "ip -o addr show dev eth1");
    assert!(b_addr.contains(&b_ep.ipv4_address), "with its address: {b_addr}");
    wait("b's end points at a's host after the resync", || {
        default_destinations(lab.host(1), &b, "eth1") == ["192.0.2.1"]
    });
    assert!(lab.host(1).reaches(&b.netns_path, &a_ep.ipv4_address), "b -> a after the restart");
    assert_eq!(default_destinations(lab.host(0), &a, "eth1"), ["192.0.2.2"], "a's entry kept");
}

#[tokio::test]
async fn bad_input_is_refused_by_name_and_leaves_nothing() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_of(2).await;
    create_everywhere(&mut apis, vxlan("good", Some("10.96.0.0/31"), &[(VNI, "6000")])).await;
    let before = etcd_keys(&lab);
    let with_gateway = CreateNetworkRequest {
        ipam: Some(Ipam {
            driver: String::new(),
            config: vec![IpamConfig {
                subnet: "10.95.0.0/30".into(),
                gateway: "10.95.0.1".into(),
                ..Default::default()
            }],
        }),
        ..vxlan("gw", None, &[])
    };
    let cases: Vec<(CreateNetworkRequest, &str)> = vec![
        (with_gateway, "invalid --gateway 10.95.0.1 for the vxlan driver"),
        (vxlan("opt", None, &[("parent", "eth0")]), "unknown option \"parent\" for the vxlan driver"),
        (vxlan("mtu", None, &[("com.docker.network.driver.mtu", "big")]), "\"big\""),
        (vxlan("vni", None, &[(VNI, "seven")]), "\"seven\""),
        (vxlan("samevni", None, &[(VNI, "6000")]), "6000 is already used by network good"),
        (vxlan("good", None, &[]), "already exists"),
    ];
    for (req, expected) in cases {
        let name = req.name.clone();
        let err = apis[1].networks.create_network(req).await.unwrap_err();
        assert!(err.message().contains(expected), "{name}: {}", err.message());
    }
    assert_eq!(etcd_keys(&lab), before, "nothing new in etcd");

    // Published ports are refused, naming the network, with nothing made.
    let sandbox = apis[0].create_sandbox("p").await;
    let req = ConnectRequest {
        ports: vec![PortBinding { container_port: 80, protocol: "tcp".into(), ..Default::default() }],
        ..connect_request(&sandbox, "good", "eth1")
    };
    let err = apis[0].sandboxes.connect_network(req).await.unwrap_err();
    assert!(err.message().contains("network good is a vxlan link: it publishes no ports"), "{}", err.message());
    let links = lab.host(0).run_in_ok(&sandbox.netns_path, "ip -o link show");
    assert!(!links.contains("eth1"), "{links}");
    // (The network's generation counter is bumped by every attach, by design: it is what makes a
    // removal fail rather than race an attach. It goes with the network.)
    let after: Vec<String> = etcd_keys(&lab).into_iter().filter(|k| !k.contains("/netgen/")).collect();
    assert_eq!(after, before, "no lease or endpoint left in etcd");
    assert_eq!(vxlan_devices(lab.host(0), None), Vec::<String>::new());

    // Without the cluster flags there is no vxlan driver, and cnetd says why.
    let mut plain = TestHost::new();
    plain.start_cnetd();
    let err = plain.cnet_err(&["network", "create", "-d", "vxlan", "x"]);
    assert!(err.contains("vxlan links need a cluster store"), "{err}");
}
