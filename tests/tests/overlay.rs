//! End-to-end tests of overlay networks: three simulated hosts (namespaces on an underlay bridge,
//! 192.0.2.1-3) each running cnetd with `--cluster-store` pointing at an etcd of the test's own
//! (192.0.2.100, in its own namespace). "Containers" are cnetd sandboxes, probed with real clients
//! (ping, dig) run inside their namespaces. They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test overlay`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cnet_api::v1::{
    ConnectRequest, CreateNetworkRequest, Endpoint, Ipam, IpamConfig, ListNodesRequest, Network, NetworkRef, Sandbox,
};
use cnet_tests::{Api, Lab, SIGKILL, TestHost, addr_of, bin};
use tonic::Code;

/// How long a call that needs etcd may take to fail while etcd is down: cnetd bounds its etcd calls
/// at 4 s, so a call still pending after this has hung.
const FAIL_FAST: Duration = Duration::from_secs(10);

fn overlay(name: &str) -> CreateNetworkRequest {
    CreateNetworkRequest { name: name.into(), driver: "overlay".into(), ..Default::default() }
}

async fn create(api: &mut Api, req: CreateNetworkRequest) -> Network {
    api.networks.create_network(req).await.unwrap_or_else(|s| panic!("creating an overlay network: {s:?}")).into_inner()
}

/// Polls `check` every 100 ms until it holds, panicking with `what` after `secs` seconds.
async fn eventually<F: AsyncFnMut() -> bool>(secs: u64, what: &str, mut check: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "not within {secs}s: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `dig +short @127.0.0.11 NAME` in the sandbox. dig fails (and so does the test) when the
/// resolver does not answer at all, so an empty list means an answer without records.
fn resolve(host: &TestHost, sandbox: &Sandbox, name: &str) -> Vec<String> {
    let out = host.run_in_ok(&sandbox.netns_path, &format!("dig +time=2 +tries=1 +short @127.0.0.11 {name}"));
    out.lines().map(str::to_string).collect()
}

/// Stops etcd, kills host1's cnetd with SIGKILL and starts it again: whatever host1 knows of the
/// other hosts after this came from its own store, since no resync can have come.
async fn restart_host1_with_etcd_down(lab: &mut Lab) {
    lab.etcd_mut().stop();
    lab.host_mut(0).kill_cnetd(SIGKILL);
    lab.start_cnetd(0);
    let mut api = lab.host(0).api().await;
    assert!(!api.info().await.cluster.expect("cluster info").connected, "etcd is down: no resync can have come");
}

async fn has_network(api: &mut Api, name: &str) -> bool {
    api.network_names().await.iter().any(|n| n == name)
}

/// Creates a network on the first host and waits (up to 5 s) until every host lists it.
async fn create_everywhere(apis: &mut [Api], req: CreateNetworkRequest) -> Network {
    let net = create(&mut apis[0], req).await;
    for api in apis.iter_mut() {
        eventually(5, &format!("network {} is listed on every host", net.name), async || {
            has_network(api, &net.name).await
        })
        .await;
    }
    net
}

/// The addresses of the VTEPs the host's VXLAN device of `net` sends to (`bridge fdb show`).
fn fdb_vteps(host: &TestHost, net: &Network) -> BTreeSet<String> {
    let out = host.ns().run_ok(&format!("bridge fdb show dev vx-{}", &net.id[..12]));
    out.lines()
        .filter_map(|l| l.split(" dst ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// A lab of three hosts, all cnetds started (with `extra` flags) and an API to each.
async fn lab_with(extra: &[&str]) -> (Lab, Vec<Api>) {
    lab_of(3, extra).await
}

/// A lab of `hosts` hosts, all cnetds started (with `extra` flags) and an API to each.
async fn lab_of(hosts: usize, extra: &[&str]) -> (Lab, Vec<Api>) {
    let mut lab = Lab::new(hosts);
    for i in 0..hosts {
        lab.start_cnetd_with_extra(i, extra);
    }
    let mut apis = Vec::new();
    for i in 0..hosts {
        apis.push(lab.host(i).api().await);
    }
    (lab, apis)
}

#[tokio::test]
async fn one_network_across_three_hosts_by_ip_and_name() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_with(&[]).await;
    let net = create(&mut apis[0], overlay("ov")).await;
    assert_eq!(net.scope, "global");
    assert_eq!(net.options.get("com.docker.network.driver.overlay.vxlanid_list").map(String::as_str), Some("4096"));
    let subnet = &net.ipam.as_ref().unwrap().config[0].subnet;
    assert!(subnet.starts_with("10.") && subnet.ends_with("/24"), "{subnet}");
    for api in apis.iter_mut().skip(1) {
        eventually(5, "the network is listed on every host", async || has_network(api, "ov").await).await;
        assert_eq!(api.network("ov").await.id, net.id);
    }

    let mut boxes: Vec<(Sandbox, Endpoint)> = Vec::new();
    for (i, api) in apis.iter_mut().enumerate() {
        let sandbox = api.create_sandbox(&format!("c{}", i + 1)).await;
        let ep = api
            .connect_with(ConnectRequest {
                sandbox: sandbox.id.clone(),
                network: "ov".into(),
                aliases: vec![format!("alias{}", i + 1)],
                ..Default::default()
            })
            .await;
        boxes.push((sandbox, ep));
    }
    // The container's MTU is the underlay's (1500) minus VXLAN's 50.
    let link = lab.host(0).run_in_ok(&boxes[0].0.netns_path, "ip -o link show eth0");
    assert!(link.contains("mtu 1450"), "{link}");

    for (i, (sandbox, _)) in boxes.iter().enumerate() {
        let host = lab.host(i);
        for (j, (_, ep)) in boxes.iter().enumerate() {
            if i == j {
                continue;
            }
            assert!(host.reaches(&sandbox.netns_path, &ep.ipv4_address), "c{} -> c{} by IP", i + 1, j + 1);
            let ip = addr_of(&ep.ipv4_address).to_string();
            let name = format!("c{}", j + 1);
            for query in [name.clone(), format!("{name}.ov"), format!("alias{}", j + 1)] {
                assert_eq!(resolve(host, sandbox, &query), std::slice::from_ref(&ip), "c{} resolving {query}", i + 1);
            }
            let by_name =
                host.run_in(&sandbox.netns_path, &format!("busybox ping -c1 -W2 $(dig +short @127.0.0.11 {name})"));
            assert!(by_name.status.success(), "c{} pings {name} by name: {by_name:?}", i + 1);
        }
    }
    // Remote endpoints are static entries towards their hosts' VTEPs.
    assert_eq!(fdb_vteps(lab.host(0), &net), BTreeSet::from(["192.0.2.2".to_string(), "192.0.2.3".to_string()]));

    // Nodes and inspect, through the CLI.
    let nodes = lab.host(1).cnet_ok(&["node", "ls"]);
    for (i, addr) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
        let row = nodes.lines().find(|l| l.contains(addr)).unwrap_or_else(|| panic!("{addr} missing:\n{nodes}"));
        assert!(row.contains(&format!("host{}", i + 1)) && row.contains("ready"), "{row}");
        assert!(row.trim_end().ends_with('1'), "one endpoint on host{}: {row}", i + 1);
    }
    let formatted = lab.host(1).cnet_ok(&["node", "ls", "--format", "{{.Name}} {{.Address}} {{.State}} {{.Self}}"]);
    let mut rows: Vec<&str> = formatted.lines().collect();
    rows.sort();
    assert_eq!(
        rows,
        ["host1 192.0.2.1 ready false", "host2 192.0.2.2 ready true", "host3 192.0.2.3 ready false"],
        "{formatted}"
    );
    let info = lab.host(2).cnet_ok(&["info"]);
    assert!(info.contains("Cluster Store: etcd://192.0.2.100:2379") && info.contains("Node Name: host3"), "{info}");
    let inspect = lab.host(0).cnet_ok(&["network", "inspect", "ov"]);
    for node in ["host1", "host2", "host3"] {
        assert!(inspect.contains(&format!("\"Node\": \"{node}\"")), "{node} in\n{inspect}");
    }
}

#[tokio::test]
async fn fifteen_containers_at_once_get_fifteen_addresses() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_with(&[]).await;
    create_everywhere(&mut apis, overlay("busy")).await;
    let mut tasks = Vec::new();
    for i in 0..15 {
        let channel = lab.host(i % 3).channel().await;
        let log = lab.host(i % 3).dir().join("cnetd.log");
        tasks.push(tokio::spawn(async move {
            let mut api = Api::new(channel, log);
            let sandbox = api.create_sandbox(&format!("s{i}")).await;
            api.connect(&sandbox.id, "busy").await.ipv4_address
        }));
    }
    let mut addresses = BTreeSet::new();
    for t in tasks {
        addresses.insert(t.await.unwrap());
    }
    assert_eq!(addresses.len(), 15, "{addresses:?}");
    let leases = lab.etcd().etcdctl_ok(&["get", "--prefix", "--keys-only", "/cnet/v1/ips/"]);
    let keys = leases.lines().filter(|l| !l.is_empty()).count();
    assert_eq!(keys, 15, "{leases}");
}

#[tokio::test]
async fn overlay_networks_are_isolated_from_each_other_and_from_bridges() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_with(&[]).await;
    create_everywhere(&mut apis, overlay("red")).await;
    create_everywhere(&mut apis, overlay("blue")).await;
    let (red1, _) = apis[0].sandbox_on("red1", "red").await;
    let (_, red2) = apis[1].sandbox_on("red2", "red").await;
    let (blue1, blue1_ep) = apis[0].sandbox_on("blue1", "blue").await;
    let (_, blue2) = apis[1].sandbox_on("blue2", "blue").await;
    let (_, local) = apis[0].sandbox_on("local", "bridge").await;
    assert!(lab.host(0).reaches(&red1.netns_path, &red2.ipv4_address), "red1 -> red2");
    assert!(lab.host(0).reaches(&blue1.netns_path, &blue2.ipv4_address), "blue1 -> blue2");
    assert!(!lab.host(0).ping_once(&red1.netns_path, &blue2.ipv4_address), "red1 must not reach blue2");
    assert!(!lab.host(0).ping_once(&red1.netns_path, &blue1_ep.ipv4_address), "red1 must not reach blue1 on its host");
    assert!(!lab.host(0).ping_once(&red1.netns_path, &local.ipv4_address), "red1 must not reach a bridge network");
    // Out through its own host, with NAT: the etcd host on the underlay has no route to 10.0.0.0/8.
    assert!(lab.host(0).reaches(&red1.netns_path, "192.0.2.100"), "red1 reaches the underlay through NAT");
}

#[tokio::test]
async fn killed_cnetd_restarts_without_stopping_traffic() {
    cnet_tests::require_root();
    let (mut lab, mut apis) = lab_with(&[]).await;
    create_everywhere(&mut apis, overlay("steady")).await;
    let (a, _) = apis[0].sandbox_on("a", "steady").await;
    let (_, b) = apis[1].sandbox_on("b", "steady").await;
    assert!(lab.host(0).reaches(&a.netns_path, &b.ipv4_address));
    // 60 pings, 0.1 s apart; host2's cnetd is killed once replies flow, and started again once
    // more replies have come while it was down.
    let ping_log = lab.host(0).dir().join("ping.log");
    let log_file = std::fs::File::create(&ping_log).expect("create ping.log");
    let mut pinger = lab
        .host(0)
        .in_netns(&a.netns_path, "busybox")
        .args(["ping", "-c", "60", "-i", "0.1", addr_of(&b.ipv4_address)])
        .stdout(log_file)
        .spawn()
        .expect("start ping");
    let replies = || {
        let log = std::fs::read_to_string(&ping_log).unwrap_or_else(|e| panic!("reading {}: {e}", ping_log.display()));
        log.matches(" bytes from ").count()
    };
    cnet_tests::wait_for("the first ping replies", Duration::from_secs(10), || replies() >= 5);
    drop(apis);
    lab.host_mut(1).kill_cnetd(SIGKILL);
    let at_kill = replies();
    cnet_tests::wait_for("ping replies while host2's cnetd is down", Duration::from_secs(10), || {
        replies() >= (at_kill + 5).min(60)
    });
    lab.start_cnetd(1);
    let status = pinger.wait().expect("wait for ping");
    let text = std::fs::read_to_string(&ping_log).expect("read ping.log");
    assert!(status.success() && text.contains("60 packets received"), "traffic stopped during the restart:\n{text}");

    // The restarted host still knows the others, and they it.
    let mut api1 = lab.host(1).api().await;
    let (c, _) = api1.sandbox_on("c", "steady").await;
    let net = api1.network("steady").await;
    let a_ep = net.endpoints.iter().find(|e| e.name == "a").unwrap_or_else(|| panic!("a is not listed: {net:?}"));
    assert_eq!(a_ep.node, "host1");
    assert!(lab.host(1).reaches(&c.netns_path, &a_ep.ipv4_address), "a new container on the restarted host");
    let log = lab.host(1).log();
    assert!(!log.contains("this node's lease expired"), "the lease must be taken back, not granted anew:\n{log}");
}

#[tokio::test]
async fn a_host_gone_longer_than_the_ttl_loses_its_endpoints() {
    cnet_tests::require_root();
    let (mut lab, mut apis) = lab_with(&["--cluster-ttl", "2s"]).await;
    // A subnet of the user's, so that the address can be asked for by --ip below (as in Docker).
    let req = CreateNetworkRequest {
        ipam: Some(Ipam {
            driver: String::new(),
            config: vec![IpamConfig { subnet: "10.60.0.0/24".into(), ..Default::default() }],
        }),
        ..overlay("ttl")
    };
    let net = create_everywhere(&mut apis, req).await;
    let (a, _) = apis[0].sandbox_on("a", "ttl").await;
    let (_, gone) = apis[2].sandbox_on("gone", "ttl").await;
    assert!(lab.host(0).reaches(&a.netns_path, &gone.ipv4_address));
    assert!(fdb_vteps(lab.host(0), &net).contains("192.0.2.3"));
    drop(apis);
    lab.host_mut(2).kill_cnetd(SIGKILL);

    let mut api0 = lab.host(0).api().await;
    eventually(10, "host1 drops host3's endpoint", async || {
        !api0.network("ttl").await.endpoints.iter().any(|e| e.name == "gone")
    })
    .await;
    assert!(!fdb_vteps(lab.host(0), &net).contains("192.0.2.3"), "the FDB entry towards host3 is gone");
    let nodes = api0.system.list_nodes(ListNodesRequest {}).await.unwrap().into_inner().nodes;
    let host3 = nodes.iter().find(|n| n.name == "host3").expect("host3 is still listed");
    assert_eq!(host3.state, "down");

    // Its address went back to the pool: another host may take it now.
    let taker = api0.create_sandbox("taker").await;
    api0.connect_with(ConnectRequest {
        sandbox: taker.id.clone(),
        network: "ttl".into(),
        ipv4_address: addr_of(&gone.ipv4_address).into(),
        ..Default::default()
    })
    .await;

    // When host3 comes back its endpoint cannot be registered again: reported, never duplicated.
    lab.start_cnetd_with_extra(2, &["--cluster-ttl", "2s"]);
    let mut api2 = lab.host(2).api().await;
    eventually(10, "the conflict is reported in inspect", async || {
        api2.sandbox("gone").await.endpoints.iter().any(|e| !e.conflict.is_empty())
    })
    .await;
    let conflict = api2.sandbox("gone").await.endpoints[0].conflict.clone();
    assert!(conflict.contains(addr_of(&gone.ipv4_address)), "{conflict}");
    assert!(lab.host(2).log().contains("cannot register this endpoint again"), "{}", lab.host(2).log_tail());
    let holders: Vec<String> = api0
        .network("ttl")
        .await
        .endpoints
        .iter()
        .filter(|e| e.ipv4_address == gone.ipv4_address)
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(holders, ["taker"], "one holder of the address");
}

#[tokio::test]
async fn etcd_down_keeps_traffic_and_fails_new_attaches_fast() {
    cnet_tests::require_root();
    let (mut lab, mut apis) = lab_with(&[]).await;
    create_everywhere(&mut apis, overlay("sturdy")).await;
    let (a, _) = apis[0].sandbox_on("a", "sturdy").await;
    let (_, b) = apis[1].sandbox_on("b", "sturdy").await;
    assert!(lab.host(0).reaches(&a.netns_path, &b.ipv4_address));

    lab.etcd_mut().stop();
    assert!(lab.host(0).reaches(&a.netns_path, &b.ipv4_address), "existing containers keep talking");
    eventually(10, "cnetd notices that etcd is gone", async || {
        !apis[0].info().await.cluster.expect("cluster info").connected
    })
    .await;
    let late = apis[0].create_sandbox("late").await;
    let attach = apis[0].sandboxes.connect_network(ConnectRequest {
        sandbox: late.id.clone(),
        network: "sturdy".into(),
        ..Default::default()
    });
    let err = tokio::time::timeout(FAIL_FAST, attach)
        .await
        .unwrap_or_else(|_| panic!("an overlay attach with etcd down did not fail within {FAIL_FAST:?}"))
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("cluster store"), "{}", err.message());
    // Local networks are unaffected.
    let (_, local) = apis[0].sandbox_on("local", "bridge").await;
    assert!(!local.ipv4_address.is_empty());
    // Nothing half-made: the sandbox has no interface left behind.
    let links = lab.host(0).run_in_ok(&late.netns_path, "ip -o link show");
    assert_eq!(links.lines().count(), 1, "only lo: {links}");

    lab.etcd_mut().start();
    eventually(20, "attaching works again once etcd is back", async || {
        apis[0]
            .sandboxes
            .connect_network(ConnectRequest {
                sandbox: late.id.clone(),
                network: "sturdy".into(),
                ..Default::default()
            })
            .await
            .is_ok()
    })
    .await;
    let late_ep = apis[0].sandbox(&late.id).await.endpoints[0].ipv4_address.clone();
    let mut api1 = lab.host(1).api().await;
    eventually(5, "the new endpoint reached host2", async || {
        api1.network("sturdy").await.endpoints.iter().any(|e| e.ipv4_address == late_ep)
    })
    .await;
    assert!(lab.host(1).reaches(&apis[1].sandbox("b").await.netns_path, &late_ep));
}

#[tokio::test]
async fn removal_is_refused_while_any_host_has_endpoints_and_then_global() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_with(&[]).await;
    let net = create_everywhere(&mut apis, overlay("doomed")).await;
    let (s, _) = apis[0].sandbox_on("holder", "doomed").await;
    let short = &net.id[..12];
    assert_eq!(lab.host(0).links_starting("vx-"), [format!("vx-{short}")]);
    assert!(lab.host(1).links_starting("vx-").is_empty(), "no device where there is no local endpoint");
    let err = apis[2].networks.remove_network(NetworkRef { network: "doomed".into() }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("holder on host1"), "{}", err.message());

    apis[0].remove_sandbox(&s.id).await;
    assert!(lab.host(0).links_starting("vx-").is_empty(), "devices go with the last local endpoint");
    assert!(lab.host(0).links_starting("ov-").is_empty());
    apis[2].networks.remove_network(NetworkRef { network: "doomed".into() }).await.unwrap();
    for api in apis.iter_mut() {
        eventually(5, "the network is gone everywhere", async || !has_network(api, "doomed").await).await;
    }
    let left = lab.etcd().etcdctl_ok(&["get", "--prefix", "--keys-only", "/cnet/v1/"]);
    assert!(!left.contains(&net.id) && !left.contains("/vnis/") && !left.contains("/names/"), "{left}");
}

#[tokio::test]
async fn bad_input_is_refused_and_leaves_nothing() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_with(&[]).await;
    create(
        &mut apis[0],
        CreateNetworkRequest {
            ipam: Some(Ipam {
                driver: String::new(),
                config: vec![IpamConfig { subnet: "10.9.0.0/16".into(), ..Default::default() }],
            }),
            options: [("com.docker.network.driver.overlay.vxlanid_list".to_string(), "5000".to_string())].into(),
            ..overlay("first")
        },
    )
    .await;
    let before = lab.etcd().etcdctl_ok(&["get", "--prefix", "--keys-only", "/cnet/v1/"]);
    assert!(before.contains("/names/first"), "the first network is in etcd: {before}");
    let cases: Vec<(CreateNetworkRequest, &str)> = vec![
        (
            CreateNetworkRequest {
                ipam: Some(Ipam {
                    driver: String::new(),
                    config: vec![IpamConfig { subnet: "10.9.8.0/24".into(), ..Default::default() }],
                }),
                ..overlay("overlapping")
            },
            "overlaps with network first",
        ),
        (
            CreateNetworkRequest {
                options: [("com.docker.network.driver.overlay.vxlanid_list".to_string(), "5000".to_string())].into(),
                ..overlay("samevni")
            },
            "5000 is already used by network first",
        ),
        (
            CreateNetworkRequest { options: [("encrypted".to_string(), String::new())].into(), ..overlay("secret") },
            "encrypted",
        ),
        (overlay("first"), "already exists"),
        // IPv6: one subnet per family, an IPv6 subnet only with --ipv6, and room for IPv6's MTU.
        (
            CreateNetworkRequest {
                enable_ipv6: true,
                ipam: Some(Ipam {
                    driver: String::new(),
                    config: vec![
                        IpamConfig { subnet: "fd00:80::/64".into(), ..Default::default() },
                        IpamConfig { subnet: "fd00:81::/64".into(), ..Default::default() },
                    ],
                }),
                ..overlay("twosix")
            },
            "one IPv6 subnet at most, got fd00:80::/64, fd00:81::/64",
        ),
        (
            CreateNetworkRequest {
                ipam: Some(Ipam {
                    driver: String::new(),
                    config: vec![IpamConfig { subnet: "fd00:82::/64".into(), ..Default::default() }],
                }),
                ..overlay("noflag")
            },
            "subnet fd00:82::/64 is IPv6: pass --ipv6",
        ),
        (
            CreateNetworkRequest {
                enable_ipv6: true,
                options: [("com.docker.network.driver.mtu".to_string(), "1200".to_string())].into(),
                ..overlay("tiny")
            },
            "IPv6 needs an MTU of at least 1280",
        ),
    ];
    for (req, expected) in cases {
        let name = req.name.clone();
        let err = apis[1].networks.create_network(req).await.unwrap_err();
        assert!(err.message().contains(expected), "{name}: {}", err.message());
    }
    let after = lab.etcd().etcdctl_ok(&["get", "--prefix", "--keys-only", "/cnet/v1/"]);
    assert_eq!(before, after, "nothing new in etcd");
    assert!(lab.host(1).links_starting("vx-").is_empty() && lab.host(1).links_starting("ov-").is_empty());

    // A host without a cluster store says which flags enable overlay networks.
    let mut plain = TestHost::new();
    plain.start_cnetd();
    let err = plain.cnet_err(&["network", "create", "-d", "overlay", "ov"]);
    assert!(err.contains("--cluster-store") && err.contains("--cluster-advertise"), "{err}");

    // An advertise address that is not on the host: cnetd refuses to start, naming it.
    let out = lab
        .host(1)
        .ns()
        .cmd(bin("cnetd"))
        .arg("--socket")
        .arg(lab.host(1).dir().join("bad/cnetd.sock"))
        .arg("--run-dir")
        .arg(lab.host(1).dir().join("bad/run"))
        .arg("--state-dir")
        .arg(lab.host(1).dir().join("bad/state"))
        .args(["--cluster-store", "etcd://192.0.2.100:2379"])
        .args(["--cluster-advertise", "192.0.2.77", "--node-name", "bad"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("192.0.2.77"), "{stderr}");
}

#[tokio::test]
async fn advertise_takes_an_interface_name() {
    cnet_tests::require_root();
    let mut lab = Lab::new(1);
    let store = lab.etcd().endpoint();
    lab.host_mut(0).start_cnetd_with(&["--cluster-store", &store, "--cluster-advertise", "eth0", "--node-name", "n1"]);
    let mut api = lab.host(0).api().await;
    let info = api.info().await.cluster.expect("cluster info");
    assert_eq!((info.node.as_str(), info.advertise.as_str()), ("n1", "192.0.2.1"));
    let nodes = api.system.list_nodes(ListNodesRequest {}).await.unwrap().into_inner().nodes;
    assert_eq!(nodes.len(), 1);
    assert_eq!((nodes[0].address.as_str(), nodes[0].state.as_str(), nodes[0].self_), ("192.0.2.1", "ready", true));
}

/// etcd's current revision.
fn etcd_revision(lab: &Lab) -> i64 {
    let out = lab.etcd().etcdctl_ok(&["get", "/cnet/v1/", "--prefix", "--keys-only", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("etcdctl JSON ({e}): {out}"));
    v["header"]["revision"].as_i64().unwrap_or_else(|| panic!("no revision in {out}"))
}

#[tokio::test]
async fn a_restarted_host_catches_up_even_after_a_compaction() {
    cnet_tests::require_root();
    let (mut lab, mut apis) = lab_with(&[]).await;
    create_everywhere(&mut apis, overlay("catchup")).await;
    let (watcher, _) = apis[1].sandbox_on("watcher", "catchup").await;
    let (old, old_ep) = apis[0].sandbox_on("old", "catchup").await;
    assert!(lab.host(1).reaches(&watcher.netns_path, &old_ep.ipv4_address));

    // host2's cnetd is away while host1 changes things, and etcd forgets the history.
    lab.host_mut(1).kill_cnetd(SIGKILL);
    apis[0].remove_sandbox(&old.id).await;
    let (_, new_ep) = apis[0].sandbox_on("new", "catchup").await;
    let revision = etcd_revision(&lab);
    lab.etcd().etcdctl_ok(&["compact", &revision.to_string()]);

    lab.start_cnetd(1);
    let mut api1 = lab.host(1).api().await;
    eventually(5, "host2 knows the new endpoint and forgot the old one", async || {
        let eps = api1.network("catchup").await.endpoints;
        eps.iter().any(|e| e.name == "new") && !eps.iter().any(|e| e.name == "old")
    })
    .await;
    let host = lab.host(1);
    assert_eq!(resolve(host, &watcher, "new"), [addr_of(&new_ep.ipv4_address).to_string()]);
    assert!(resolve(host, &watcher, "old").is_empty(), "the old name is gone");
    assert!(host.reaches(&watcher.netns_path, &new_ep.ipv4_address));
    // Exactly the endpoints there are now (the new one may reuse the old one's address).
    let neigh = host.ns().run_ok("ip neigh show nud permanent");
    let ips: Vec<&str> = neigh.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(ips, [addr_of(&new_ep.ipv4_address)], "neighbour entries:\n{neigh}\n{}", host.log_tail());
}

#[tokio::test]
async fn cnetd_starts_while_etcd_is_down_and_joins_when_it_is_back() {
    cnet_tests::require_root();
    let mut lab = Lab::new(1);
    lab.etcd_mut().stop();
    lab.start_cnetd(0);
    let mut api = lab.host(0).api().await;
    assert!(!api.info().await.cluster.expect("cluster info").connected);
    let err = tokio::time::timeout(FAIL_FAST, api.networks.create_network(overlay("early")))
        .await
        .unwrap_or_else(|_| panic!("an overlay create with etcd down did not fail within {FAIL_FAST:?}"))
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let info = lab.host(0).cnet_ok(&["info"]);
    assert!(info.contains("Cluster Store Status: unreachable"), "{info}");
    // Local networks work meanwhile.
    let (_, local) = api.sandbox_on("local", "bridge").await;
    assert!(!local.ipv4_address.is_empty());

    lab.etcd_mut().start();
    eventually(20, "connected once etcd is up", async || api.info().await.cluster.is_some_and(|c| c.connected)).await;
    create(&mut api, overlay("late")).await;
}

#[tokio::test]
async fn a_node_name_in_use_by_a_live_node_is_refused() {
    cnet_tests::require_root();
    let mut lab = Lab::new(2);
    lab.start_cnetd(0);
    let store = lab.etcd().endpoint();
    let second = lab.address(1);
    lab.host_mut(1).start_cnetd_with(&[
        "--cluster-store",
        &store,
        "--cluster-advertise",
        &second,
        "--node-name",
        "host1",
    ]);
    let mut api = lab.host(1).api().await;
    eventually(10, "the clash is logged", async || lab.host(1).log().contains("is taken by another live node")).await;
    assert!(!api.info().await.cluster.expect("cluster info").connected);
    let nodes = lab.host(0).cnet_ok(&["node", "ls"]);
    assert!(nodes.contains("192.0.2.1") && !nodes.contains("192.0.2.2"), "the first node keeps its record:\n{nodes}");
}

#[tokio::test]
async fn neighbours_on_one_host_and_published_ports() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_with(&[]).await;
    create_everywhere(&mut apis, overlay("web")).await;
    let (a, a_ep) = apis[0].sandbox_on("a1", "web").await;
    let (_, b_ep) = apis[0].sandbox_on("b1", "web").await;
    let (c, _) = apis[1].sandbox_on("c2", "web").await;
    let host = lab.host(0);
    // Two containers of one host reach each other (and by name) without leaving it.
    assert!(host.reaches(&a.netns_path, &b_ep.ipv4_address), "a1 -> b1");
    assert_eq!(resolve(host, &a, "b1"), [addr_of(&b_ep.ipv4_address).to_string()]);
    // The host reaches its containers through its leg on the segment.
    assert!(host.ns().run(&format!("busybox ping -c1 -W2 {}", addr_of(&a_ep.ipv4_address))).status.success());

    // A published port on host1, reached on host1's underlay address from host2 itself and from a
    // container on host2 (out through its own host's NAT).
    let sandbox = apis[0].create_sandbox("p1").await;
    apis[0]
        .connect_with(ConnectRequest {
            sandbox: sandbox.id.clone(),
            network: "web".into(),
            ports: vec![cnet_api::v1::PortBinding {
                protocol: "tcp".into(),
                host_ip: String::new(),
                host_port: 8080,
                container_port: 80,
            }],
            ..Default::default()
        })
        .await;
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "hello from p1\n").unwrap();
    let mut httpd = host.in_netns(&sandbox.netns_path, "busybox");
    httpd.args(["httpd", "-f", "-p", "80", "-h", www.path().to_str().unwrap()]);
    let _httpd = cnet_tests::Bg::start(httpd);
    let url = "http://192.0.2.1:8080/";
    cnet_tests::wait_for(&format!("{url} to serve host2"), Duration::from_secs(10), || {
        let out = lab.host(1).ns().run(&cnet_tests::fetch(url, 2));
        String::from_utf8_lossy(&out.stdout).contains("hello from p1")
    });
    let out = lab.host(1).run_in(&c.netns_path, &cnet_tests::fetch(url, 5));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello from p1"), "from c2: {out:?}");
    // And from a container of the same network on the same host, through its gateway (hairpin).
    let out = host.run_in(&a.netns_path, &cnet_tests::fetch(url, 5));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello from p1"), "from a1: {out:?}");
}

#[tokio::test]
async fn subnet_gateway_ip_range_and_internal() {
    cnet_tests::require_root();
    let mut lab = Lab::new(1);
    lab.start_cnetd(0);
    let mut api = lab.host(0).api().await;
    create(
        &mut api,
        CreateNetworkRequest {
            ipam: Some(Ipam {
                driver: String::new(),
                config: vec![IpamConfig {
                    subnet: "10.50.0.0/24".into(),
                    gateway: "10.50.0.254".into(),
                    ip_range: "10.50.0.128/25".into(),
                    ..Default::default()
                }],
            }),
            options: [("com.docker.network.driver.mtu".to_string(), "1400".to_string())].into(),
            ..overlay("ranged")
        },
    )
    .await;
    let (s, ep) = api.sandbox_on("r1", "ranged").await;
    assert_eq!(ep.ipv4_address, "10.50.0.128/24");
    assert_eq!(ep.ipv4_gateway, "10.50.0.254");
    let host = lab.host(0);
    let route = host.run_in_ok(&s.netns_path, "ip route show default");
    assert!(route.contains("via 10.50.0.254"), "{route}");
    assert!(host.run_in_ok(&s.netns_path, "ip -o link show eth0").contains("mtu 1400"));

    create(&mut api, CreateNetworkRequest { internal: true, ..overlay("sealed") }).await;
    let (t, _) = api.sandbox_on("t1", "sealed").await;
    let route = host.run_in_ok(&t.netns_path, "ip route show default");
    assert!(route.trim().is_empty(), "an internal network has no way out: {route}");
    assert!(!host.ping_once(&t.netns_path, "192.0.2.100"), "no NAT out of an internal network");

    // Gateway modes apply to this host's leg as to a bridge: routed means no NAT, so the
    // underlay, which has no route back, cannot answer.
    let mode = "com.docker.network.bridge.gateway_mode_ipv4".to_string();
    let routed = [(mode.clone(), "routed".to_string())].into();
    create(&mut api, CreateNetworkRequest { options: routed, ..overlay("direct") }).await;
    let (d, _) = api.sandbox_on("d1", "direct").await;
    assert!(host.reaches(&s.netns_path, "192.0.2.100"), "nat: r1 reaches the underlay");
    assert!(!host.ping_once(&d.netns_path, "192.0.2.100"), "routed: d1 was masqueraded");
    let bogus = CreateNetworkRequest { options: [(mode, "bogus".to_string())].into(), ..overlay("bogus") };
    let err = api.networks.create_network(bogus).await.expect_err("gateway mode bogus");
    assert!(err.message().contains("bogus"), "{err:?}");
}

/// Names of other hosts' containers resolve from the first query after a restart of cnetd, even
/// with etcd down (so no resync can come): cnetd keeps them in its local store. A restart without
/// the cluster flags leaves them aside, with a warning.
#[tokio::test]
async fn remote_names_resolve_at_once_after_a_restart_even_with_etcd_down() {
    cnet_tests::require_root();
    let (mut lab, mut apis) = lab_with(&[]).await;
    create_everywhere(&mut apis, overlay("names")).await;
    let (a, _) = apis[0].sandbox_on("a", "names").await;
    let (_, b) = apis[1].sandbox_on("b", "names").await;
    let b_ip = addr_of(&b.ipv4_address).to_string();
    eventually(10, "host1 resolves b", async || resolve(lab.host(0), &a, "b") == [b_ip.clone()]).await;
    drop(apis);
    restart_host1_with_etcd_down(&mut lab).await;
    assert_eq!(resolve(lab.host(0), &a, "b"), std::slice::from_ref(&b_ip), "the first query after the restart");
    assert!(lab.host(0).reaches(&a.netns_path, &b_ip), "and the data plane is there too");

    // Started without the cluster flags, cnetd leaves the cached endpoints of the other hosts
    // aside (no resync would ever replace them) and says what that costs.
    lab.host_mut(0).kill_cnetd(SIGKILL);
    lab.host_mut(0).start_cnetd();
    let log = lab.host(0).log();
    assert!(
        log.contains("other nodes' overlay endpoints, but cnetd runs without --cluster-store"),
        "no warning of the endpoints left aside: {log}"
    );
}

/// `dig +short @127.0.0.11 NAME AAAA` in the sandbox (see [`resolve`]).
fn resolve_v6(host: &TestHost, sandbox: &Sandbox, name: &str) -> Vec<String> {
    resolve(host, sandbox, &format!("{name} AAAA"))
}

/// The permanent IPv6 neighbours (address, MAC) of the host's VXLAN device of `net`.
fn v6_neighbours(host: &TestHost, net: &Network) -> BTreeSet<(String, String)> {
    let out = host.ns().run_ok(&format!("ip -6 neigh show dev vx-{} nud permanent", &net.id[..12]));
    out.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let ip = words.next()?;
            let mac = words.skip_while(|w| *w != "lladdr").nth(1)?;
            Some((ip.to_string(), mac.to_string()))
        })
        .collect()
}

/// The address leases of `net` in etcd (`ips/<net>/<ip>` keys), as addresses.
fn etcd_leases(lab: &Lab, net: &Network) -> BTreeSet<String> {
    let prefix = format!("/cnet/v1/ips/{}/", net.id);
    let out = lab.etcd().etcdctl_ok(&["get", "--prefix", "--keys-only", &prefix]);
    out.lines().filter_map(|l| l.strip_prefix(&prefix)).map(str::to_string).collect()
}

/// Issue 16: `--ipv6` overlay networks. (Containers are not named `a` or `b`: `dig a` asks for
/// the A record of the root.) Each container gets an IPv6 address too, unique in the
/// cluster, and a default route via the network's IPv6 gateway on its own host's leg; the VXLAN
/// devices hold a permanent neighbour entry for every remote IPv6 address, from which the kernel
/// answers neighbour solicitations; names resolve to AAAA records wherever the container runs.
#[tokio::test]
async fn dual_stack_across_hosts_by_address_and_name() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_with(&[]).await;
    let made = lab.host(0).cnet_ok(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--ipv6",
        "--subnet",
        "10.70.0.0/24",
        "--subnet",
        "fd00:70::/64",
        "dual",
    ]);
    assert!(!made.trim().is_empty(), "network create prints the id");
    for api in apis.iter_mut() {
        eventually(5, "the network is listed on every host", async || has_network(api, "dual").await).await;
    }
    let net = apis[1].network("dual").await;
    assert!(net.enable_ipv6, "{net:?}");
    let (a, a_ep) = apis[0].sandbox_on("ca", "dual").await;
    let (b, b_ep) = apis[1].sandbox_on("cb", "dual").await;
    for ep in [&a_ep, &b_ep] {
        assert!(ep.ipv6_address.starts_with("fd00:70::") && ep.ipv6_address.ends_with("/64"), "{ep:?}");
        assert_eq!(ep.ipv6_gateway, "fd00:70::1", "{ep:?}");
    }
    let (a6, b6) = (addr_of(&a_ep.ipv6_address).to_string(), addr_of(&b_ep.ipv6_address).to_string());
    assert_ne!(a6, b6, "two hosts handed out one IPv6 address");
    let (h1, h2) = (lab.host(0), lab.host(1));
    let route = h1.run_in_ok(&a.netns_path, "ip -6 route show default");
    assert!(route.contains("via fd00:70::1 dev eth0"), "a's IPv6 default route: {route}");
    // The distributed gateway: each host's leg holds the IPv6 gateway address too.
    let leg = format!("ov-{}", &net.id[..12]);
    for host in [h1, h2] {
        let addrs = host.ns().run_ok(&format!("ip -6 -o addr show dev {leg}"));
        assert!(addrs.contains("fd00:70::1/64"), "the gateway on {leg}: {addrs}");
    }

    // Names, in AAAA records, on both sides once each host has heard of the other's container.
    eventually(5, "a resolves b's AAAA record", async || resolve_v6(h1, &a, "cb") == [b6.clone()]).await;
    eventually(5, "b resolves a's AAAA record", async || resolve_v6(h2, &b, "ca") == [a6.clone()]).await;
    assert_eq!(resolve_v6(h1, &a, "cb.dual"), std::slice::from_ref(&b6));
    assert_eq!(resolve(h1, &a, "cb"), [addr_of(&b_ep.ipv4_address).to_string()], "and A as before");

    // The VXLAN device's neighbour entries: b's IPv6 address -> b's MAC on host1, and a's on host2.
    assert!(v6_neighbours(h1, &net).contains(&(b6.clone(), b_ep.mac_address.clone())), "{:?}", v6_neighbours(h1, &net));
    assert!(v6_neighbours(h2, &net).contains(&(a6.clone(), a_ep.mac_address.clone())), "{:?}", v6_neighbours(h2, &net));

    // ping6 by address and by name, both ways.
    assert!(h1.reaches(&a.netns_path, &b6), "a -> b by IPv6 address\n{}", h1.log_tail());
    assert!(h2.reaches(&b.netns_path, &a6), "b -> a by IPv6 address");
    for (host, sandbox, name) in [(h1, &a, "cb"), (h2, &b, "ca")] {
        let by_name =
            host.run_in(&sandbox.netns_path, &format!("busybox ping -6 -c1 -W2 $(dig +short @127.0.0.11 {name} AAAA)"));
        assert!(by_name.status.success(), "ping6 {name} by name: {by_name:?}");
    }
    // a learnt b's MAC from host1's VXLAN device (its neighbour table answers the solicitation),
    // and its gateway's from its own host's leg: neighbour discovery stays on the host.
    let learnt = h1.run_in_ok(&a.netns_path, &format!("ip -6 neigh show {b6}"));
    assert!(learnt.contains(&b_ep.mac_address), "a's neighbour entry for b: {learnt}");
    h1.run_in_ok(&a.netns_path, "busybox ping -6 -c1 -W2 fd00:70::1");
    let gateway = h1.run_in_ok(&a.netns_path, "ip -6 neigh show fd00:70::1");
    let leg_link = h1.ns().run_ok(&format!("ip -o link show dev {leg}"));
    let leg_mac = leg_link.split("link/ether ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or_default();
    assert!(!leg_mac.is_empty(), "{leg}'s MAC: {leg_link}");
    assert!(gateway.contains(leg_mac), "a's gateway is host1's leg ({leg_mac}): {gateway}");

    // Both addresses of both containers are leased in etcd, and given back on removal: no leaked
    // lease, neighbour entry or record.
    let leases = etcd_leases(&lab, &net);
    for ip in [&a6, &b6] {
        assert!(leases.contains(ip.as_str()), "{ip} is not leased in etcd: {leases:?}");
    }
    apis[1].remove_sandbox(&b.id).await;
    eventually(5, "host1 forgets b's IPv6 neighbour entry", async || {
        !v6_neighbours(h1, &net).iter().any(|(ip, _)| *ip == b6)
    })
    .await;
    assert!(resolve_v6(h1, &a, "cb").is_empty(), "b's AAAA record is gone");
    let leases = etcd_leases(&lab, &net);
    assert_eq!(
        leases,
        BTreeSet::from([addr_of(&a_ep.ipv4_address).to_string(), a6.clone()]),
        "only a's leases are left"
    );
    let records =
        lab.etcd().etcdctl_ok(&["get", "--prefix", "--keys-only", &format!("/cnet/v1/endpoints/{}/", net.id)]);
    assert_eq!(records.lines().filter(|l| !l.is_empty()).count(), 1, "only a's endpoint record is left: {records}");
}

/// `--ipv6` without an IPv6 subnet: cnetd picks one as for a bridge network (a unique-local
/// fd00:0:0:N::/64), clear of every node's networks, and the addresses are unique cluster-wide
/// when containers on three hosts attach at once.
#[tokio::test]
async fn ipv6_subnets_are_chosen_clear_of_every_node_and_addresses_are_unique() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_with(&[]).await;
    // A local IPv6 bridge network on host2 takes the first default IPv6 subnet.
    let local =
        create(&mut apis[1], CreateNetworkRequest { name: "local6".into(), enable_ipv6: true, ..Default::default() })
            .await;
    let local_v6 = local.ipam.as_ref().unwrap().config.iter().find(|c| c.subnet.contains(':')).unwrap().subnet.clone();
    assert_eq!(local_v6, "fd00:0:0:1::/64");
    eventually(5, "host2 publishes its local subnets", async || {
        lab.etcd().etcdctl_ok(&["get", "/cnet/v1/nodes/host2"]).contains("fd00:0:0:1::/64")
    })
    .await;
    let net = create_everywhere(&mut apis, CreateNetworkRequest { enable_ipv6: true, ..overlay("auto6") }).await;
    let subnets: Vec<String> = net.ipam.as_ref().unwrap().config.iter().map(|c| c.subnet.clone()).collect();
    assert_eq!(subnets.len(), 2, "{subnets:?}");
    assert!(subnets[0].starts_with("10.") && subnets[0].ends_with("/24"), "IPv4 first: {subnets:?}");
    assert_eq!(subnets[1], "fd00:0:0:2::/64", "clear of host2's local network: {subnets:?}");

    let mut tasks = Vec::new();
    for i in 0..6 {
        let channel = lab.host(i % 3).channel().await;
        let log = lab.host(i % 3).dir().join("cnetd.log");
        tasks.push(tokio::spawn(async move {
            let mut api = Api::new(channel, log);
            let sandbox = api.create_sandbox(&format!("s{i}")).await;
            api.connect(&sandbox.id, "auto6").await.ipv6_address
        }));
    }
    let mut addresses = BTreeSet::new();
    for t in tasks {
        let v6 = t.await.unwrap();
        assert!(v6.starts_with("fd00:0:0:2::"), "{v6}");
        addresses.insert(v6);
    }
    assert_eq!(addresses.len(), 6, "{addresses:?}");
    assert_eq!(etcd_leases(&lab, &net).len(), 12, "an IPv4 and an IPv6 lease per container");
}

/// Encrypted networks need WireGuard, which this machine's kernel lacks (the refusal is checked in
/// `bad_input_is_refused_and_leaves_nothing`; examples/vm-lab's `test` runs them on Debian's
/// kernel). What holds without it: `network rotate-key` refuses networks that have no key, naming
/// them, and leaves etcd as it was; a WireGuard link name of cnet's (`wg-<12 hex>`) that no
/// network claims is removed when cnetd starts again after a kill -9.
#[tokio::test]
async fn rotate_key_refuses_networks_without_a_key_and_stray_wireguard_links_are_swept() {
    cnet_tests::require_root();
    let (mut lab, mut apis) = lab_with(&[]).await;
    let net = create(&mut apis[0], overlay("clear")).await;
    let before = lab.etcd().etcdctl_ok(&["get", "--prefix", "--keys-only", "/cnet/v1/"]);
    assert!(before.contains(&net.id) && !before.contains("/secrets/"), "{before}");
    let err = lab.host(1).cnet_err(&["network", "rotate-key", "clear"]);
    assert!(err.contains("clear") && err.contains("not encrypted"), "{err}");
    let err = lab.host(1).cnet_err(&["network", "rotate-key", "bridge"]);
    assert!(err.contains("bridge") && err.contains("not an encrypted overlay network"), "{err}");
    let err = lab.host(1).cnet_err(&["network", "rotate-key", "nosuchnet"]);
    assert!(err.contains("nosuchnet"), "{err}");
    let after = lab.etcd().etcdctl_ok(&["get", "--prefix", "--keys-only", "/cnet/v1/"]);
    assert_eq!(before, after, "nothing changed in etcd");

    // A stray link with the name of an encrypted network's WireGuard link (a bridge: this kernel
    // has no WireGuard) goes at the restart's sweep; a look-alike name of someone else stays.
    lab.host(1).ns().run_ok("ip link add wg-0123456789ab type bridge && ip link add wg-lan type bridge");
    drop(apis);
    lab.host_mut(1).kill_cnetd(SIGKILL);
    lab.start_cnetd(1);
    let _api = lab.host(1).api().await;
    cnet_tests::wait_for("the stray wg- link swept", Duration::from_secs(10), || {
        lab.host(1).links_starting("wg-") == ["wg-lan"]
    });
}

/// cnetd killed between an address's lease in etcd and the endpoint's registration: the restarted
/// cnetd takes its etcd lease back (so the address key would live on), and its resync releases
/// the address its records do not have, so the same static address is free again.
#[tokio::test]
async fn an_attach_cut_short_by_a_kill_leaves_no_address_leased() {
    cnet_tests::require_root();
    let mut lab = Lab::new(1);
    let mut args = lab.cluster_args(0);
    args.push("--cluster-ttl".into());
    args.push("60s".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    lab.host_mut(0).start_cnetd_with_env(&args, &[("CNET_TEST_ABORT_AT", "connect:attached")]);
    let mut api = lab.host(0).api().await;
    let net = CreateNetworkRequest {
        ipam: Some(Ipam {
            driver: String::new(),
            config: vec![IpamConfig { subnet: "10.51.0.0/24".into(), ..Default::default() }],
        }),
        ..overlay("cut")
    };
    let net = create(&mut api, net).await;
    api.create_sandbox("first").await;
    let static_ip = ConnectRequest {
        sandbox: "first".into(),
        network: "cut".into(),
        ipv4_address: "10.51.0.7".into(),
        ..Default::default()
    };
    assert!(api.sandboxes.connect_network(static_ip.clone()).await.is_err(), "cnetd was to abort in the connect");
    let leased = lab.etcd().get_prefix(&format!("/cnet/v1/ips/{}/", net.id));
    assert_eq!(leased.len(), 1, "the abort was to come after the lease: {leased:?}");
    let _ = lab.host_mut(0).kill_cnetd(SIGKILL);
    lab.host_mut(0).start_cnetd_with(&args);
    let mut api = lab.host(0).api().await;
    eventually(10, "the stale lease released by the resync", async || {
        lab.etcd().get_prefix(&format!("/cnet/v1/ips/{}/", net.id)).is_empty()
    })
    .await;
    api.create_sandbox("second").await;
    let ep = api.connect_with(ConnectRequest { sandbox: "second".into(), ..static_ip }).await;
    assert_eq!(addr_of(&ep.ipv4_address), "10.51.0.7");
}

/// Sends, with bash from `ns`'s own address, one VXLAN packet for `vni` to `dst`'s VXLAN port.
fn send_vxlan_from(ns: &cnet_tests::Ns, dst: &str, vni: u32) {
    let escaped: String = cnet_tests::vxlan_broadcast_frame(vni).iter().map(|b| format!("\\x{b:02x}")).collect();
    ns.run_ok(&format!("bash -c \"printf '{escaped}' > /dev/udp/{dst}/4789\""));
}

/// Packets `dev` of `ns` has received (`/proc/net/dev` there).
fn rx_packets(ns: &cnet_tests::Ns, dev: &str) -> u64 {
    cnet_tests::rx_packets_in(&ns.run_ok("cat /proc/net/dev"), dev)
}

#[tokio::test]
async fn a_stranger_on_the_underlay_cannot_put_frames_on_an_overlay() {
    cnet_tests::require_root();
    let (lab, mut apis) = lab_of(2, &[]).await;
    let net = create_everywhere(&mut apis, overlay("ov")).await;
    let vni: u32 = net.options["com.docker.network.driver.overlay.vxlanid_list"].parse().unwrap();
    let mut boxes = Vec::new();
    for (i, api) in apis.iter_mut().enumerate() {
        let sandbox = api.create_sandbox(&format!("c{}", i + 1)).await;
        let ep = api.connect(&sandbox.id, "ov").await;
        boxes.push((sandbox, ep));
    }
    assert!(lab.host(0).reaches(&boxes[0].0.netns_path, &boxes[1].1.ipv4_address), "c1 -> c2");

    // A stranger on the underlay (on no host of the cluster) sends host1 a frame for the
    // network's VNI, then host2 (a peer) sends one: only the peer's reaches the VXLAN device.
    let vx = format!("vx-{}", &net.id[..12]);
    let host1 = lab.host(0).ns();
    let before = rx_packets(host1, &vx);
    lab.underlay().run_ok(&format!("ip addr add 192.0.2.50/24 dev {}", cnet_tests::LAB_BRIDGE));
    send_vxlan_from(lab.underlay(), "192.0.2.1", vni);
    send_vxlan_from(lab.host(1).ns(), "192.0.2.1", vni);
    eventually(5, "the peer's frame reaches host1's VXLAN device", async || rx_packets(host1, &vx) > before).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx_packets(host1, &vx), before + 1, "the stranger's frame was dropped, the peer's taken");
}

#[tokio::test]
async fn a_burst_of_remote_endpoints_resolves_and_survives_a_restart_with_etcd_down() {
    cnet_tests::require_root();
    let (mut lab, mut apis) = lab_of(2, &[]).await;
    create_everywhere(&mut apis, overlay("burst")).await;
    let (a, _) = apis[0].sandbox_on("a", "burst").await;
    // Twelve attaches at once on host2: host1's watch brings their endpoints in a burst, which
    // it applies in batches (one write of its cache for each).
    let mut tasks = Vec::new();
    for i in 0..12 {
        let channel = lab.host(1).channel().await;
        let log = lab.host(1).dir().join("cnetd.log");
        tasks.push(tokio::spawn(async move {
            let mut api = Api::new(channel, log);
            let (_, ep) = api.sandbox_on(&format!("b{i}"), "burst").await;
            (format!("b{i}"), addr_of(&ep.ipv4_address).to_string())
        }));
    }
    let mut named = Vec::new();
    for t in tasks {
        named.push(t.await.unwrap());
    }
    for (name, ip) in &named {
        eventually(10, &format!("host1 resolves {name}"), async || resolve(lab.host(0), &a, name) == [ip.clone()])
            .await;
    }
    // A name that resolves is in the cache: after a restart without etcd, every one still does.
    drop(apis);
    restart_host1_with_etcd_down(&mut lab).await;
    for (name, ip) in &named {
        assert_eq!(resolve(lab.host(0), &a, name), std::slice::from_ref(ip), "{name} after the restart");
    }
    assert!(lab.host(0).reaches(&a.netns_path, &named[11].1), "and the data plane is there too");
}
