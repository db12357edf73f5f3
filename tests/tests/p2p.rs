//! End-to-end tests of the p2p driver through the `cnet` CLI, each against a cnetd of its own in
//! its own namespaces (see the kit in `tests/src`): a network is one veth pair between two
//! containers; its end without a container is parked, down, in cnetd's namespace as
//! `p2p<netid12>`. Addresses are the test-only 192.0.2.0/24 and 198.51.100.0/24, inside the
//! test's namespaces. They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test p2p`.

use std::time::Duration;

use cnet_tests::{SIGKILL, TestHost, wait_for};
use serde_json::Value;

/// How long a test waits for a state it needs (generous: two copies of the suite may share 2 cores).
const WAIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------ helpers

/// `cnet network create -d p2p ARGS… NAME`; returns the network's id.
fn create(host: &TestHost, name: &str, args: &[&str]) -> String {
    let mut all = vec!["network", "create", "-d", "p2p"];
    all.extend_from_slice(args);
    all.push(name);
    let id = host.cnet_ok(&all).trim().to_string();
    assert_eq!(id.len(), 64, "`network create` did not print an id: {id:?}");
    id
}

/// `cnet run -d --name NAME --network NETWORK ARGS… busybox sleep 1000`.
fn sleeper(host: &TestHost, name: &str, network: &str, args: &[&str]) {
    let mut all = vec!["run", "-d", "--name", name, "--network", network];
    all.extend_from_slice(args);
    all.extend_from_slice(&["busybox", "sleep", "1000"]);
    host.cnet_ok(&all);
}

/// The parked end's name for the network with this id.
fn parked(network_id: &str) -> String {
    format!("p2p{}", &network_id[..12])
}

/// The host namespace's links named like parked ends.
fn parked_links(host: &TestHost) -> Vec<String> {
    host.links_starting("p2p")
}

/// A non-empty string field of a JSON value, or a panic naming it.
fn field(json: &Value, key: &str) -> String {
    match json[key].as_str() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => panic!("no {key} in {json:#}"),
    }
}

/// The container's network namespace (`NetworkSettings.SandboxKey`).
fn sandbox_key(host: &TestHost, container: &str) -> String {
    field(&host.inspect(container)["NetworkSettings"], "SandboxKey")
}

/// The container's endpoint on `network` as `cnet inspect` shows it.
fn endpoint_of(host: &TestHost, container: &str, network: &str) -> Value {
    let json = host.inspect(container);
    match json["NetworkSettings"]["Networks"].get(network) {
        Some(ep) => ep.clone(),
        None => panic!("{container} is not on {network}: {:#}", json["NetworkSettings"]),
    }
}

/// `ip -o link show dev IFNAME` inside the container's namespace (fails the test if it fails).
fn link_line(host: &TestHost, container: &str, ifname: &str) -> String {
    host.run_in_ok(&sandbox_key(host, container), &format!("ip -o link show dev {ifname}"))
}

/// Whether an `ip -o link` line shows carrier (operstate UP, LOWER_UP), or its loss by a link
/// that is itself still up (NO-CARRIER with the UP flag; a veth whose peer is down reports
/// operstate DOWN, a stacked link LOWERLAYERDOWN). Anything else fails the test: an unexpected
/// line must not read as either answer.
fn has_carrier(line: &str) -> bool {
    let up = line.contains("LOWER_UP") && line.contains("state UP");
    let lost = line.contains("<NO-CARRIER,")
        && line.contains(",UP>")
        && (line.contains("state DOWN") || line.contains("state LOWERLAYERDOWN"));
    assert!(up != lost, "neither carrier nor its loss in: {line}");
    up
}

fn wait_carrier(host: &TestHost, container: &str, want: bool) {
    wait_for(&format!("{container}'s eth0 to have carrier {want}"), WAIT, || {
        has_carrier(&link_line(host, container, "eth0")) == want
    });
}

/// One ping from a container, by `cnet exec` (two tries of up to 2 s: neighbour resolution).
fn pings(host: &TestHost, from: &str, to: &str) -> bool {
    (0..2).any(|_| host.cnet(&["exec", from, "ping", "-c", "1", "-W", "2", to]).status.success())
}

/// The IPv4 addresses (`a.b.c.d/len`) of eth0 in the container's namespace.
fn ipv4_of(host: &TestHost, container: &str) -> Vec<String> {
    let out = host.run_in_ok(&sandbox_key(host, container), "ip -o -4 addr show dev eth0");
    out.lines().filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1)).map(str::to_string).collect()
}

// ------------------------------------------------------------------------------------ tests

#[test]
fn two_containers_on_a_slash_31_reach_each_other_over_one_veth_pair() {
    let host = TestHost::with_cnetd();
    let links_before = host.links();
    create(&host, "l1", &["--subnet", "192.0.2.0/31"]);
    let net = host.network_inspect("l1");
    assert_eq!(net["Driver"], "p2p", "{net:#}");
    assert_eq!(net["IPAM"]["Config"], serde_json::json!([{ "Subnet": "192.0.2.0/31" }]), "no gateway: {net:#}");
    assert_eq!(host.links(), links_before, "creating a p2p network made links");

    sleeper(&host, "ca", "l1", &[]);
    sleeper(&host, "cb", "l1", &[]);
    // A /31 has no network or broadcast address: both addresses go to the two ends.
    let (ip_a, ip_b) =
        (field(&endpoint_of(&host, "ca", "l1"), "IPAddress"), field(&endpoint_of(&host, "cb", "l1"), "IPAddress"));
    assert_eq!((ip_a.as_str(), ip_b.as_str()), ("192.0.2.0", "192.0.2.1"));
    for (name, ip) in [("ca", &ip_a), ("cb", &ip_b)] {
        assert_eq!(ipv4_of(&host, name), [format!("{ip}/31")]);
        let details = host.run_in_ok(&sandbox_key(&host, name), "ip -d link show dev eth0");
        assert!(details.contains("veth"), "{name}'s eth0 is not a veth: {details}");
        let routes = host.run_in_ok(&sandbox_key(&host, name), "ip route");
        assert!(routes.contains("192.0.2.0/31 dev eth0"), "{name}: {routes}");
        assert!(!routes.contains("default"), "a p2p link gave {name} a default route: {routes}");
    }
    assert!(pings(&host, "ca", &ip_b), "a cannot ping b");
    assert!(pings(&host, "cb", &ip_a), "b cannot ping a");
    // The pair lives in the two containers: nothing in the host namespace, parked or otherwise.
    assert_eq!(host.links(), links_before, "the link left something in the host namespace");
    let table = host.nft_table();
    assert!(!table.contains("192.0.2."), "a p2p network has no firewall rules:\n{table}");

    host.cnet_ok(&["rm", "-f", "ca", "cb"]);
    host.assert_nothing_left("l1");
    host.cnet_ok(&["network", "rm", "l1"]);
    assert_eq!(host.links(), links_before, "links left after network rm");
}

#[test]
fn without_a_subnet_the_ends_have_no_address_but_carrier() {
    let host = TestHost::with_cnetd();
    create(&host, "bare", &[]);
    assert_eq!(host.network_inspect("bare")["IPAM"]["Config"], serde_json::json!([]));
    sleeper(&host, "ca", "bare", &[]);
    sleeper(&host, "cb", "bare", &[]);
    for name in ["ca", "cb"] {
        assert_eq!(endpoint_of(&host, name, "bare")["IPAddress"], "", "{name} got an address");
        assert_eq!(ipv4_of(&host, name), Vec::<String>::new(), "{name}'s eth0 has an IPv4 address");
        wait_carrier(&host, name, true);
    }
    // The two ends are one link: addresses the test adds by hand reach across it.
    host.run_in_ok(&sandbox_key(&host, "ca"), "ip addr add 198.51.100.1/24 dev eth0");
    host.run_in_ok(&sandbox_key(&host, "cb"), "ip addr add 198.51.100.2/24 dev eth0");
    assert!(pings(&host, "ca", "198.51.100.2"), "a cannot ping b over the bare link");
    host.cnet_ok(&["rm", "-f", "ca", "cb"]);
    host.assert_nothing_left("bare");
    host.cnet_ok(&["network", "rm", "bare"]);
    assert_eq!(parked_links(&host), Vec::<String>::new());
}

#[test]
fn a_lone_end_loses_carrier_and_a_new_peer_brings_it_back() {
    let host = TestHost::with_cnetd();
    let id = create(&host, "l3", &["--subnet", "192.0.2.0/31"]);
    sleeper(&host, "ca", "l3", &[]);
    // Alone: a's end is up, its peer parked and down, so a has no carrier.
    assert_eq!(parked_links(&host), [parked(&id)]);
    assert!(!has_carrier(&link_line(&host, "ca", "eth0")));
    sleeper(&host, "cb", "l3", &[]);
    assert_eq!(parked_links(&host), Vec::<String>::new(), "the second join left the parked end");
    wait_carrier(&host, "ca", true);
    assert!(pings(&host, "ca", "192.0.2.1"), "a cannot ping b");

    // b removed: a keeps its interface and address, without carrier; b's end is parked again.
    host.cnet_ok(&["rm", "-f", "cb"]);
    wait_carrier(&host, "ca", false);
    assert_eq!(ipv4_of(&host, "ca"), ["192.0.2.0/31"]);
    assert_eq!(parked_links(&host), [parked(&id)]);
    let parked_line = host.ns().run_ok(&format!("ip -o link show dev {}", parked(&id)));
    assert!(parked_line.contains("state DOWN"), "the parked end is not down: {parked_line}");

    // A new container takes the parked end (and b's address, free again).
    sleeper(&host, "cc", "l3", &[]);
    assert_eq!(field(&endpoint_of(&host, "cc", "l3"), "IPAddress"), "192.0.2.1");
    wait_carrier(&host, "ca", true);
    wait_carrier(&host, "cc", true);
    assert!(pings(&host, "ca", "192.0.2.1"), "a cannot ping c");
    assert!(pings(&host, "cc", "192.0.2.0"), "c cannot ping a");

    // The same through disconnect and connect of a running container.
    host.cnet_ok(&["network", "disconnect", "l3", "cc"]);
    wait_carrier(&host, "ca", false);
    let c_links = host.run_in_ok(&sandbox_key(&host, "cc"), "ip -o link show");
    assert!(!c_links.contains("eth0"), "disconnect left eth0 in c: {c_links}");
    host.cnet_ok(&["network", "connect", "l3", "cc"]);
    wait_carrier(&host, "ca", true);
    assert!(pings(&host, "cc", "192.0.2.0"), "c cannot ping a after connecting again");

    // The last one out takes the pair with it.
    host.cnet_ok(&["rm", "-f", "cc"]);
    assert_eq!(parked_links(&host), [parked(&id)]);
    host.cnet_ok(&["rm", "-f", "ca"]);
    assert_eq!(parked_links(&host), Vec::<String>::new(), "the last leave left the parked end");
    host.assert_nothing_left("l3");
    host.cnet_ok(&["network", "rm", "l3"]);
}

#[test]
fn a_third_endpoint_is_refused_and_leaves_nothing() {
    let host = TestHost::with_cnetd();
    create(&host, "l4", &["--subnet", "192.0.2.0/31"]);
    sleeper(&host, "ca", "l4", &[]);
    sleeper(&host, "cb", "l4", &[]);
    host.cnet_ok(&["run", "-d", "--name", "cc", "busybox", "sleep", "1000"]);
    let c_links = host.run_in_ok(&sandbox_key(&host, "cc"), "ip -o link show");

    let err = host.cnet_err(&["network", "connect", "l4", "cc"]);
    for needle in ["network l4", "at most 2 endpoints", "containers ca and cb"] {
        assert!(err.contains(needle), "no {needle:?} in the refusal: {err}");
    }
    let mut on_it = host.network_containers("l4");
    on_it.sort();
    assert_eq!(on_it.len(), 2, "endpoints on l4 after the refusal: {on_it:?}");
    assert!(host.inspect("cc")["NetworkSettings"]["Networks"].get("l4").is_none(), "c is on l4");
    assert_eq!(host.run_in_ok(&sandbox_key(&host, "cc"), "ip -o link show"), c_links, "the refusal changed c's links");
    assert_eq!(parked_links(&host), Vec::<String>::new());

    // `cnet run` onto the full link fails the same way, and leaves no container or sandbox.
    let (dirs, sandboxes) = (host.container_dirs().len(), host.sandbox_ids().len());
    let err = host.cnet_err(&["run", "-d", "--name", "cd", "--network", "l4", "busybox", "sleep", "1000"]);
    assert!(err.contains("containers ca and cb"), "{err}");
    assert_eq!((host.container_dirs().len(), host.sandbox_ids().len()), (dirs, sandboxes), "cnet run left things");

    // No lease leaked: with b gone, c takes the link and b's address.
    host.cnet_ok(&["rm", "-f", "cb"]);
    host.cnet_ok(&["network", "connect", "l4", "cc"]);
    assert_eq!(field(&endpoint_of(&host, "cc", "l4"), "IPAddress"), "192.0.2.1");
    assert!(pings(&host, "ca", "192.0.2.1"), "a cannot ping c");

    // Published ports are refused before the link is touched.
    host.cnet_ok(&["network", "disconnect", "l4", "cc"]);
    let err =
        host.cnet_err(&["run", "-d", "--name", "ce", "--network", "l4", "-p", "8080:80", "busybox", "sleep", "1000"]);
    assert!(err.contains("publishes no ports"), "{err}");
    assert_eq!(host.network_containers("l4").len(), 1);
    host.cnet_ok(&["rm", "-f", "ca", "cc"]);
    host.assert_nothing_left("l4");
}

#[test]
fn mtu_and_mac_apply_and_bad_options_are_named() {
    let host = TestHost::with_cnetd();
    let err = host.cnet_err(&["network", "create", "-d", "p2p", "-o", "parent=eth0", "bad"]);
    assert!(err.contains("\"parent\"") && err.contains("p2p"), "{err}");
    let err = host.cnet_err(&["network", "create", "-d", "p2p", "-o", "com.docker.network.driver.mtu=big", "bad"]);
    assert!(err.contains("\"big\"") && err.contains("com.docker.network.driver.mtu"), "{err}");
    let err =
        host.cnet_err(&["network", "create", "-d", "p2p", "--subnet", "192.0.2.0/30", "--gateway", "192.0.2.1", "bad"]);
    assert!(err.contains("--gateway 192.0.2.1"), "{err}");
    assert!(!host.cnet_ok(&["network", "ls"]).contains("bad"), "a refused network exists");

    // A /30 without a gateway: its two host addresses go to the two ends, a static one first.
    let id = create(&host, "jumbo", &["--subnet", "192.0.2.4/30", "-o", "com.docker.network.driver.mtu=9000"]);
    sleeper(&host, "ca", "jumbo", &["--ip", "192.0.2.6"]);
    assert!(link_line(&host, "ca", "eth0").contains("mtu 9000"), "{}", link_line(&host, "ca", "eth0"));
    let parked_line = host.ns().run_ok(&format!("ip -o link show dev {}", parked(&id)));
    assert!(parked_line.contains("mtu 9000"), "the parked end: {parked_line}");
    sleeper(&host, "cb", "jumbo", &["--mac-address", "02:42:c0:00:02:99"]);
    let b = link_line(&host, "cb", "eth0");
    assert!(b.contains("mtu 9000") && b.contains("02:42:c0:00:02:99"), "{b}");
    assert_eq!(ipv4_of(&host, "ca"), ["192.0.2.6/30"]);
    assert_eq!(ipv4_of(&host, "cb"), ["192.0.2.5/30"]);
    assert!(pings(&host, "ca", "192.0.2.5"), "a cannot ping b");
    host.cnet_ok(&["rm", "-f", "ca", "cb"]);
    host.assert_nothing_left("jumbo");
}

#[test]
fn the_link_survives_a_cnetd_crash_and_restart_cleans_orphans() {
    let mut host = TestHost::with_cnetd();
    let id = create(&host, "l6", &["--subnet", "192.0.2.0/31"]);
    sleeper(&host, "ca", "l6", &[]);
    sleeper(&host, "cb", "l6", &[]);
    assert!(pings(&host, "ca", "192.0.2.1"));

    host.kill_cnetd(SIGKILL);
    // A parked-looking end no record claims (as if left by a crash) goes at restart; so does
    // its peer, with it.
    host.ns().run_ok("ip link add p2p0123456789ab type veth peer name p2ptestpeer0");
    host.start_cnetd();
    assert_eq!(parked_links(&host), Vec::<String>::new(), "restart kept an orphan parked end");
    assert!(pings(&host, "ca", "192.0.2.1"), "a cannot ping b after the restart");
    assert!(pings(&host, "cb", "192.0.2.0"), "b cannot ping a after the restart");

    // A leave cut short after it parked b's end, before b's record went: restart moves it back.
    let (key_a, key_b) = (sandbox_key(&host, "ca"), sandbox_key(&host, "cb"));
    host.kill_cnetd(SIGKILL);
    host.run_in_ok(&key_b, &format!("ip link set eth0 netns {}", host.ns().pid()));
    host.ns().run_ok(&format!("ip link set eth0 name {}", parked(&id)));
    host.start_cnetd();
    assert_eq!(parked_links(&host), Vec::<String>::new(), "restart left b's end parked");
    assert_eq!(ipv4_of(&host, "cb"), ["192.0.2.1/31"]);
    assert!(pings(&host, "ca", "192.0.2.1"), "a cannot ping b after its end came back");

    // The pair gone altogether while cnetd was down: restart makes it again between the two.
    host.kill_cnetd(SIGKILL);
    host.run_in_ok(&key_a, "ip link del eth0");
    host.start_cnetd();
    assert_eq!(ipv4_of(&host, "ca"), ["192.0.2.0/31"]);
    assert_eq!(ipv4_of(&host, "cb"), ["192.0.2.1/31"]);
    assert!(pings(&host, "cb", "192.0.2.0"), "b cannot ping a after the link was made again");

    // A lone end across a crash: its parked peer is kept, and taken by the next container.
    host.cnet_ok(&["rm", "-f", "cb"]);
    wait_carrier(&host, "ca", false);
    host.kill_cnetd(SIGKILL);
    host.start_cnetd();
    assert_eq!(parked_links(&host), [parked(&id)], "restart lost the parked end");
    sleeper(&host, "cc", "l6", &[]);
    wait_carrier(&host, "ca", true);
    assert!(pings(&host, "cc", "192.0.2.0"), "c cannot ping a");

    host.cnet_ok(&["rm", "-f", "ca", "cc"]);
    host.assert_nothing_left("l6");
    host.cnet_ok(&["network", "rm", "l6"]);
    assert_eq!(parked_links(&host), Vec::<String>::new());
}

/// A link's subnet is only in its two containers (no route on the host): links reuse addresses,
/// as two labs with the same addressing plan do, and a bridge may take a subnet a link has. Two
/// bridges still may not share one.
#[test]
fn links_may_reuse_a_subnet_and_do_not_block_bridges() {
    let host = TestHost::with_cnetd();
    create(&host, "l1", &["--subnet", "192.0.2.0/31"]);
    create(&host, "l2", &["--subnet", "192.0.2.0/31"]);
    sleeper(&host, "a1", "l1", &[]);
    sleeper(&host, "b1", "l1", &[]);
    sleeper(&host, "a2", "l2", &[]);
    sleeper(&host, "b2", "l2", &[]);
    assert!(pings(&host, "a1", "192.0.2.1") && pings(&host, "a2", "192.0.2.1"), "two links, one subnet");
    host.cnet_ok(&["network", "create", "--subnet", "192.0.2.0/24", "br1"]);
    let err = host.cnet_err(&["network", "create", "--subnet", "192.0.2.128/25", "br2"]);
    assert!(err.contains("overlaps with network br1"), "{err}");
    host.cnet_ok(&["rm", "-f", "a1", "b1", "a2", "b2"]);
    host.cnet_ok(&["network", "rm", "l1", "l2", "br1"]);
}
