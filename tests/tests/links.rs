//! End-to-end tests of link state (`cnet link set NODE:IFACE …`, `cnet link ls`) through the CLI,
//! each against a cnetd of its own in its own namespaces (see the kit in `tests/src`). A link is
//! a p2p network between two containers on the test-only 192.0.2.0/31; the qdiscs are read from
//! the host side with `tc` inside the sandbox's namespace (busybox has no tc). Shaping needs
//! kernel features this machine may lack (sch_netem here): each test probes the kernel and
//! asserts either the working shaping or the error that names the missing module, never skips.
//! They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test links`.

use std::time::Duration;

use cnet_tests::{Ns, SIGKILL, TestHost, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------ helpers

/// Whether this kernel has the qdisc `kind`: `tc qdisc add` of it (with `args`) on a veth in a
/// namespace of the test's own, which goes with it.
fn kernel_has_qdisc(kind: &str, args: &str) -> bool {
    let ns = Ns::new();
    ns.run_ok("ip link add probe0 type veth peer name probe1");
    let out = ns.run(&format!("tc qdisc add dev probe0 root {kind} {args}"));
    if out.status.success() {
        return true;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    // Anything but "no such kind" is a broken probe, not an answer.
    assert!(err.contains("qdisc kind is unknown"), "probing {kind} failed otherwise: {err}");
    false
}

/// A p2p network on 192.0.2.0/31 and two containers on it, each end named eth1.
fn two_ends(host: &TestHost, network: &str) {
    host.cnet_ok(&["network", "create", "-d", "p2p", "--subnet", "192.0.2.0/31", network]);
    for name in ["ca", "cb"] {
        let net = format!("name={network},driver-opt=com.docker.network.endpoint.ifname=eth1");
        host.cnet_ok(&["run", "-d", "--name", name, "--network", &net, "busybox", "sleep", "1000"]);
    }
}

fn sandbox_key(host: &TestHost, container: &str) -> String {
    match host.inspect(container)["NetworkSettings"]["SandboxKey"].as_str() {
        Some(k) if !k.is_empty() => k.to_string(),
        _ => panic!("{container} has no SandboxKey"),
    }
}

/// `ip -o link show dev eth1` in the container's namespace.
fn link_line(host: &TestHost, container: &str) -> String {
    host.run_in_ok(&sandbox_key(host, container), "ip -o link show dev eth1")
}

/// Carrier of an interface that is itself up: LOWER_UP and state UP, or its loss (NO-CARRIER, a
/// veth whose peer is down reporting state DOWN). Anything else fails the test.
fn has_carrier(line: &str) -> bool {
    let up = line.contains("LOWER_UP") && line.contains("state UP");
    let lost = line.contains("<NO-CARRIER,") && line.contains(",UP") && line.contains("state DOWN");
    assert!(up != lost, "neither carrier nor its loss of an up link in: {line}");
    up
}

fn wait_carrier(host: &TestHost, container: &str, want: bool) {
    wait_for(&format!("{container}'s eth1 to have carrier {want}"), WAIT, || {
        has_carrier(&link_line(host, container)) == want
    });
}

fn pings(host: &TestHost, from: &str, to: &str) -> bool {
    (0..2).any(|_| host.cnet(&["exec", from, "ping", "-c", "1", "-W", "2", to]).status.success())
}

/// `tc qdisc show dev eth1` in the container's namespace.
fn qdiscs(host: &TestHost, container: &str) -> String {
    host.run_in_ok(&sandbox_key(host, container), "tc qdisc show dev eth1")
}

/// `cnet link ls --format json ARGS…`, parsed.
fn links_json(host: &TestHost, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["link", "ls", "--format", "json"];
    all.extend_from_slice(args);
    let out = host.cnet_ok(&all);
    match serde_json::from_str(&out) {
        Ok(Value::Array(links)) => links,
        other => panic!("`cnet {}` did not print a JSON array ({other:?}):\n{out}", all.join(" ")),
    }
}

/// The one link of `links` on `network`.
fn link_on<'a>(links: &'a [Value], network: &str) -> &'a Value {
    let found: Vec<&Value> = links.iter().filter(|l| l["Network"] == network).collect();
    assert_eq!(found.len(), 1, "not one link on {network}: {links:#?}");
    found[0]
}

// ------------------------------------------------------------------------------------ tests

#[test]
fn down_takes_the_peers_carrier_and_up_brings_it_back() {
    let host = TestHost::with_cnetd();
    two_ends(&host, "l1");
    wait_carrier(&host, "cb", true);
    assert!(pings(&host, "ca", "192.0.2.1"), "a cannot ping b before anything was set");
    let table = host.cnet_ok(&["link", "ls"]);
    assert!(table.starts_with("NETWORK "), "{table}");
    let row = table.lines().find(|l| l.starts_with("l1 ")).unwrap_or_else(|| panic!("no l1 in:\n{table}"));
    for cell in ["ca:eth1", "cb:eth1", "up/up", "1500"] {
        assert!(row.contains(cell), "no {cell} in {row}");
    }

    assert_eq!(host.cnet_ok(&["link", "set", "ca:eth1", "down"]).trim(), "ca:eth1");
    let a = link_line(&host, "ca");
    assert!(!a.contains(",UP") && !a.contains("<UP"), "a's end is not down: {a}");
    wait_carrier(&host, "cb", false);
    assert!(!pings(&host, "ca", "192.0.2.1"), "a pings b with its end down");
    assert!(!pings(&host, "cb", "192.0.2.0"), "b pings a with a's end down");
    let links = links_json(&host, &[]);
    let ends = &link_on(&links, "l1")["Ends"];
    assert_eq!((ends[0]["Container"].as_str(), ends[0]["State"].as_str()), (Some("ca"), Some("down")), "{ends:#}");
    assert_eq!(
        (ends[1]["Container"].as_str(), ends[1]["State"].as_str()),
        (Some("cb"), Some("no-carrier")),
        "{ends:#}"
    );
    assert_eq!(ends[1]["OperState"], "down", "a veth whose peer is down: {ends:#}");

    host.cnet_ok(&["link", "set", "ca:eth1", "up"]);
    wait_carrier(&host, "cb", true);
    wait_carrier(&host, "ca", true);
    assert!(pings(&host, "ca", "192.0.2.1"), "a cannot ping b after up");
    let links = links_json(&host, &[]);
    let ends = &link_on(&links, "l1")["Ends"];
    assert_eq!((ends[0]["State"].as_str(), ends[1]["State"].as_str()), (Some("up"), Some("up")), "{ends:#}");

    // An MTU of one end.
    host.cnet_ok(&["link", "set", "cb:eth1", "--mtu", "1400"]);
    assert!(link_line(&host, "cb").contains("mtu 1400"), "{}", link_line(&host, "cb"));
    let row = host.cnet_ok(&["link", "ls"]).lines().find(|l| l.starts_with("l1 ")).map(str::to_string);
    assert!(row.as_deref().is_some_and(|r| r.contains("1500/1400")), "{row:?}");

    // An endpoint of another driver may go down and up too.
    host.cnet_ok(&["run", "-d", "--name", "cc", "busybox", "sleep", "1000"]);
    host.cnet_ok(&["link", "set", "cc:eth0", "down"]);
    let c = host.run_in_ok(&sandbox_key(&host, "cc"), "ip -o link show dev eth0");
    assert!(!c.contains(",UP") && !c.contains("<UP"), "cc's eth0 is not down: {c}");
    host.cnet_ok(&["link", "set", "cc:eth0", "up"]);
    let c = host.run_in_ok(&sandbox_key(&host, "cc"), "ip -o link show dev eth0");
    assert!(c.contains(",UP") || c.contains("<UP"), "cc's eth0 is not up: {c}");
    let listed = links_json(&host, &[]);
    assert_eq!(listed.len(), 1, "only p2p networks are links: {listed:#?}");

    host.cnet_ok(&["rm", "-f", "ca", "cb", "cc"]);
    host.assert_nothing_left("l1");
}

#[test]
fn a_rate_is_a_tbf_and_delay_needs_netem() {
    let host = TestHost::with_cnetd();
    two_ends(&host, "l2");
    let has_tbf = kernel_has_qdisc("tbf", "rate 1mbit burst 32kbit latency 400ms");
    let has_netem = kernel_has_qdisc("netem", "delay 10ms");

    let out = host.cnet(&["link", "set", "ca:eth1", "--rate", "1mbit"]);
    if has_tbf {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let q = qdiscs(&host, "ca");
        assert!(q.contains("qdisc tbf") && q.contains("root") && q.contains("rate 1Mbit"), "{q}");
        assert!(!qdiscs(&host, "cb").contains("tbf"), "the other direction was shaped too");
        let links = links_json(&host, &[]);
        assert_eq!(link_on(&links, "l2")["Ends"][0]["Rate"], "1mbit", "{links:#?}");
        let table = host.cnet_ok(&["link", "ls"]);
        assert!(table.contains("ca:eth1 rate 1mbit"), "{table}");
        assert!(pings(&host, "ca", "192.0.2.1"), "a cannot ping b through the tbf");
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("sch_tbf"), "no tbf, yet: {err}");
    }

    let before = qdiscs(&host, "ca");
    let out = host.cnet(&[
        "link",
        "set",
        "ca:eth1",
        "--delay",
        "10ms",
        "--jitter",
        "1ms",
        "--loss",
        "0.1%",
        "--corrupt",
        "0.1%",
    ]);
    if has_netem {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let q = qdiscs(&host, "ca");
        assert!(q.contains("qdisc netem") && q.contains("delay 10ms"), "{q}");
        let links = links_json(&host, &[]);
        let end = &link_on(&links, "l2")["Ends"][0];
        assert_eq!((end["Delay"].as_str(), end["Loss"].as_str()), (Some("10ms"), Some("0.1%")), "{end:#}");
        assert_eq!((end["Jitter"].as_str(), end["Corrupt"].as_str()), (Some("1ms"), Some("0.1%")), "{end:#}");
        assert!(end.get("Rate").is_none(), "the new shaping replaces the rate: {end:#}");
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a delay without netem succeeded");
        assert!(
            err.contains("the kernel has no netem (sch_netem): delay, jitter, loss and corruption need it"),
            "{err}"
        );
        // Refused means unchanged: the kernel's qdisc and the recorded shaping.
        assert_eq!(qdiscs(&host, "ca"), before);
        let links = links_json(&host, &[]);
        let end = &link_on(&links, "l2")["Ends"][0];
        assert_eq!(end.get("Rate").is_some(), has_tbf, "{end:#}");
        assert!(end.get("Delay").is_none(), "{end:#}");
    }

    // --rate none takes every shaping off: the interface is back to its default qdisc.
    host.cnet_ok(&["link", "set", "ca:eth1", "--rate", "none"]);
    let q = qdiscs(&host, "ca");
    assert!(!q.contains("tbf") && !q.contains("netem"), "{q}");
    let links = links_json(&host, &[]);
    assert!(link_on(&links, "l2")["Ends"][0].get("Rate").is_none(), "{links:#?}");
    assert!(pings(&host, "ca", "192.0.2.1"));

    host.cnet_ok(&["rm", "-f", "ca", "cb"]);
    host.assert_nothing_left("l2");
}

#[test]
fn settings_come_back_after_a_restart_that_remade_the_link() {
    let mut host = TestHost::with_cnetd();
    two_ends(&host, "l3");
    let has_tbf = kernel_has_qdisc("tbf", "rate 1mbit burst 32kbit latency 400ms");
    let rate: &[&str] = if has_tbf { &["--rate", "2mbit"] } else { &[] };
    let mut args = vec!["link", "set", "ca:eth1", "down", "--mtu", "1400"];
    args.extend_from_slice(rate);
    host.cnet_ok(&args);
    wait_carrier(&host, "cb", false);

    // The pair gone while cnetd was down: the p2p driver makes it again (up, MTU of the
    // network, no qdisc), and what `link set` set is put back on a's end.
    host.kill_cnetd(SIGKILL);
    host.run_in_ok(&sandbox_key(&host, "ca"), "ip link del eth1");
    host.start_cnetd();
    let a = link_line(&host, "ca");
    assert!(a.contains("mtu 1400") && !a.contains(",UP") && !a.contains("<UP"), "a's end after restart: {a}");
    wait_carrier(&host, "cb", false);
    if has_tbf {
        let q = qdiscs(&host, "ca");
        assert!(q.contains("qdisc tbf") && q.contains("rate 2Mbit"), "{q}");
    }
    // A restart that finds everything in place changes nothing.
    host.kill_cnetd(SIGKILL);
    host.start_cnetd();
    assert!(!link_line(&host, "ca").contains("<UP"), "{}", link_line(&host, "ca"));

    host.cnet_ok(&["link", "set", "ca:eth1", "up"]);
    wait_carrier(&host, "cb", true);
    assert!(pings(&host, "cb", "192.0.2.0"), "b cannot ping a after up");

    // The settings go with the endpoint: connected again, the end is fresh.
    host.cnet_ok(&["network", "disconnect", "l3", "ca"]);
    host.cnet_ok(&["network", "connect", "--driver-opt", "com.docker.network.endpoint.ifname=eth1", "l3", "ca"]);
    let a = link_line(&host, "ca");
    assert!(a.contains("mtu 1500") && a.contains(",UP"), "{a}");
    let q = qdiscs(&host, "ca");
    assert!(!q.contains("tbf"), "the old endpoint's qdisc stayed on the end: {q}");
    let links = links_json(&host, &[]);
    let end = &link_on(&links, "l3")["Ends"][0];
    assert!(end.get("Rate").is_none() && end["MTU"] == 1500, "{end:#}");
    host.cnet_ok(&["rm", "-f", "ca", "cb"]);
    host.assert_nothing_left("l3");
}

#[test]
fn bad_references_are_named_and_labs_filter_the_list() {
    let host = TestHost::with_cnetd();
    two_ends(&host, "l4");
    for (args, needle) in [
        (vec!["link", "set", "nosuch:eth1", "down"], "no such container: nosuch"),
        (vec!["link", "set", "ca:eth9", "down"], "container ca has no interface eth9 (its interfaces: eth1)"),
        (vec!["link", "set", "ca", "down"], "invalid link end \"ca\""),
        (vec!["link", "set", "ca:eth1", "--rate", "fast"], "invalid rate \"fast\""),
        (vec!["link", "set", "ca:eth1", "--jitter", "1ms"], "--jitter 1ms needs --delay"),
        (vec!["link", "set", "ca:eth1"], "nothing to set on ca:eth1"),
        (vec!["link", "set", "ca:eth1", "sideways"], "sideways"),
    ] {
        let err = host.cnet_err(&args);
        assert!(err.contains(needle), "`cnet {}`: no {needle:?} in {err}", args.join(" "));
    }
    assert!(has_carrier(&link_line(&host, "ca")), "a refusal changed a's end");

    // A lab's links carry its label; `link ls LAB` shows only those.
    host.cnet_ok(&["network", "create", "-d", "p2p", "--label", "cnet.lab=lab1", "lab1-link"]);
    let all = links_json(&host, &[]);
    assert_eq!(all.len(), 2, "{all:#?}");
    let lab = links_json(&host, &["lab1"]);
    assert_eq!(lab.len(), 1, "{lab:#?}");
    assert_eq!(lab[0]["Network"], "lab1-link");
    assert_eq!(lab[0]["Ends"], serde_json::json!([]));
    assert_eq!(links_json(&host, &["--filter", "label=cnet.lab=lab1"]).len(), 1);
    assert_eq!(links_json(&host, &["nolab"]).len(), 0);
    let table = host.cnet_ok(&["link", "ls", "lab1"]);
    assert!(table.lines().nth(1).is_some_and(|r| r.starts_with("lab1-link") && r.contains("-/-")), "{table}");

    host.cnet_ok(&["rm", "-f", "ca", "cb"]);
    host.assert_nothing_left("l4");
}
