//! `cnet lab`: a lab file deployed, used and destroyed on a test host of its own.

use cnet_tests::{TestHost, describe_output};
use serde_json::Value;

/// Four routers in a ring with a diagonal, a host on r1 and one on r3: 6 nodes, 7 links, static
/// routes so that h1 reaches h2 over r1 -> r2 -> r3.
const RING: &str = r#"
name: ring
topology:
  defaults:
    image: busybox
    cmd: sleep 1000
  kinds:
    linux:
      sysctls:
        net.ipv4.ip_forward: 1
  nodes:
    r1:
      exec: ["ip route add 10.3.3.0/31 via 10.0.12.1"]
    r2:
      exec: ["ip route add 10.3.3.0/31 via 10.0.23.1", "ip route add 10.1.1.0/31 via 10.0.12.0"]
    r3:
      exec: ["ip route add 10.1.1.0/31 via 10.0.23.0"]
    r4: {}
    h1:
      exec: ["ip route add 10.3.3.0/31 via 10.1.1.0"]
    h2:
      exec: ["ip route add 10.1.1.0/31 via 10.3.3.0"]
  links:
    - endpoints: ["r1:eth1", "r2:eth1"]
      ipv4: [10.0.12.0/31, 10.0.12.1/31]
    - endpoints: ["r2:eth2", "r3:eth1"]
      ipv4: [10.0.23.0/31, 10.0.23.1/31]
    - endpoints: ["r3:eth2", "r4:eth1"]
      ipv4: [10.0.34.0/31, 10.0.34.1/31]
    - endpoints: ["r4:eth2", "r1:eth2"]
      ipv4: [10.0.41.0/31, 10.0.41.1/31]
    - endpoints: ["r1:eth3", "r3:eth3"]
      ipv4: [10.0.13.0/31, 10.0.13.1/31]
      mtu: 9000
    - endpoints: ["r1:eth4", "h1:eth1"]
      ipv4: [10.1.1.0/31, 10.1.1.1/31]
    - endpoints: ["r3:eth4", "h2:eth1"]
      ipv4: [10.3.3.0/31, 10.3.3.1/31]
"#;

fn write(host: &TestHost, name: &str, text: &str) -> String {
    let path = host.dir().join(name);
    std::fs::write(&path, text).expect("write the lab file");
    path.display().to_string()
}

fn networks(host: &TestHost) -> Vec<String> {
    let out = host.cnet_ok(&["network", "ls", "-q", "--no-trunc"]);
    let mut names: Vec<String> =
        out.lines().map(|id| host.network_inspect(id)["Name"].as_str().expect("a network name").to_string()).collect();
    names.sort();
    names
}

fn assert_lab_gone(host: &TestHost, before: &[String]) {
    assert_eq!(host.cnet_ok(&["ps", "-aq"]), "", "containers left");
    assert_eq!(host.container_dirs(), Vec::<String>::new(), "container directories left");
    assert_eq!(host.name_claims(), Vec::<String>::new(), "names left");
    assert_eq!(host.sandbox_ids(), Vec::<String>::new(), "sandboxes left");
    assert_eq!(networks(host), before, "networks left");
    for prefix in ["p2p", "veth", "br-"] {
        assert_eq!(host.links_starting(prefix), Vec::<String>::new(), "{prefix}* links left");
    }
    let netns: Vec<String> = host.netns_files().into_iter().filter(|f| f != "host").collect();
    assert_eq!(netns, Vec::<String>::new(), "namespaces left");
}

#[test]
fn a_ring_lab_deploys_routes_end_to_end_and_is_destroyed_without_a_trace() {
    let host = TestHost::with_cnetd();
    let before = networks(&host);
    let file = write(&host, "ring.yml", RING);
    let out = host.cnet_ok(&["lab", "deploy", "-t", &file]);
    for node in ["r1", "r2", "r3", "r4", "h1", "h2"] {
        assert!(out.contains(&format!("clab-ring-{node}")), "deploy does not list {node}:\n{out}");
    }
    // End to end over the static routes, and the path really is r1 -> r2 -> r3.
    let ping = host.cnet(&["lab", "exec", "-t", &file, "h1", "--", "ping", "-c", "2", "-W", "2", "10.3.3.1"]);
    assert!(ping.status.success(), "{}", describe_output("h1 -> h2", &ping));
    let trace = host.cnet_ok(&["lab", "exec", "--name", "ring", "h1", "--", "traceroute", "-n", "-w", "2", "10.3.3.1"]);
    for hop in ["10.1.1.0", "10.0.12.1", "10.0.23.1", "10.3.3.1"] {
        assert!(trace.contains(hop), "hop {hop} missing:\n{trace}");
    }
    // Interfaces by the file's names, with their addresses and MTU, and eth0 on the management
    // network.
    let json: Value = serde_json::from_str(&host.cnet_ok(&["lab", "inspect", "--name", "ring", "--format", "json"]))
        .expect("inspect json");
    let nodes = json.as_array().expect("a list of nodes");
    assert_eq!(nodes.len(), 6, "{json:#}");
    let r1 = nodes.iter().find(|n| n["node"] == "r1").expect("r1");
    let ifaces: Vec<&str> = r1["interfaces"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(ifaces, ["eth0", "eth1", "eth2", "eth3", "eth4"], "{r1:#}");
    assert_eq!(r1["interfaces"][0]["network"], "clab");
    assert!(r1["interfaces"][1]["addresses"][0].as_str().unwrap().starts_with("10.0.12.0/31"), "{r1:#}");
    let mtu = host.cnet_ok(&["exec", "clab-ring-r3", "cat", "/sys/class/net/eth3/mtu"]);
    assert_eq!(mtu.trim(), "9000");
    let forwarding = host.cnet_ok(&["exec", "clab-ring-r2", "cat", "/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(forwarding.trim(), "1");
    // The nodes carry the lab's labels, which `ps --filter` selects by.
    let listed = host.cnet_ok(&["ps", "-q", "--filter", "label=cnet.lab=ring"]);
    assert_eq!(listed.lines().count(), 6, "{listed}");
    let hosts = host.cnet_ok(&["ps", "-q", "--filter", "label=containerlab=ring", "--filter", "name=clab-ring-h"]);
    assert_eq!(hosts.lines().count(), 2, "{hosts}");
    assert_eq!(host.cnet_ok(&["ps", "-q", "--filter", "label=cnet.lab=other"]), "");
    assert!(host.cnet_err(&["ps", "--filter", "colour=blue"]).contains("colour=blue"));
    // exec --all runs in every node.
    let all = host.cnet_ok(&["lab", "exec", "--name", "ring", "--all", "--", "hostname"]);
    for node in ["r1", "r2", "r3", "r4", "h1", "h2"] {
        assert!(all.contains(&format!("--- {node} ---\n{node}\n")), "{all}");
    }
    // Pictures of the lab, from its file.
    let dot = host.cnet_ok(&["lab", "graph", "-t", &file, "--format", "dot"]);
    assert!(dot.contains("\"r1\" -> \"r2\" [dir=none, label=\"eth1 10.0.12.0/31 - eth1 10.0.12.1/31\"]"), "{dot}");
    let mermaid = host.cnet_ok(&["lab", "graph", "-t", &file, "--format", "mermaid"]);
    assert!(mermaid.starts_with("graph LR\n") && mermaid.contains("h1 ---|"), "{mermaid}");
    let svg_path = host.dir().join("ring.svg");
    host.cnet_ok(&["lab", "graph", "-t", &file, "-o", svg_path.to_str().unwrap()]);
    let svg = std::fs::read_to_string(&svg_path).expect("the picture");
    assert!(svg.contains("<svg") && svg.contains("10.3.3.1/31"), "{svg}");
    assert!(host.cnet_err(&["lab", "graph", "-t", &file, "--format", "png"]).contains("png"));
    // A second deploy of the same lab is refused, and changes nothing.
    let err = host.cnet_err(&["lab", "deploy", "-t", &file]);
    assert!(err.contains("ring") && err.contains("deployed"), "{err}");

    // apply: one node fewer (h2 and its link), one link more (r2 - r4); nothing else changes.
    let ifindex = |c: &str, dev: &str| host.cnet_ok(&["exec", c, "cat", &format!("/sys/class/net/{dev}/ifindex")]);
    let untouched = ["r1", "r2", "r3", "r4", "h1"].map(|n| host.inspect(&format!("clab-ring-{n}"))["Id"].clone());
    let r1_eth1 = ifindex("clab-ring-r1", "eth1");
    let r3_eth3 = ifindex("clab-ring-r3", "eth3");
    let changed = RING
        .replace("    h2:\n      exec: [\"ip route add 10.1.1.0/31 via 10.3.3.0\"]\n", "")
        .replace("    - endpoints: [\"r3:eth4\", \"h2:eth1\"]\n      ipv4: [10.3.3.0/31, 10.3.3.1/31]\n", "")
        + "    - endpoints: [\"r2:eth3\", \"r4:eth3\"]\n      ipv4: [10.0.24.0/31, 10.0.24.1/31]\n";
    let file2 = write(&host, "ring2.yml", &changed);
    let plan = host.cnet_ok(&["lab", "apply", "-t", &file2, "--dry-run"]);
    let expected = "- link h2:eth1,r3:eth4\n- node h2 (clab-ring-h2)\n+ link r2:eth3,r4:eth3\n\
                    + end r2 of link r2:eth3,r4:eth3\n+ end r4 of link r2:eth3,r4:eth3\n";
    assert_eq!(plan, expected);
    assert_eq!(host.inspect("clab-ring-h2")["State"]["Running"], true, "--dry-run changed something");
    assert_eq!(host.cnet_ok(&["lab", "apply", "-t", &file2]), expected);
    assert!(host.cnet_err(&["inspect", "clab-ring-h2"]).contains("clab-ring-h2"), "h2 is still there");
    let ping = host.cnet(&["exec", "clab-ring-r2", "ping", "-c", "1", "-W", "2", "10.0.24.1"]);
    assert!(ping.status.success(), "{}", describe_output("r2 -> r4 over the new link", &ping));
    for (n, id) in ["r1", "r2", "r3", "r4", "h1"].iter().zip(&untouched) {
        assert_eq!(&host.inspect(&format!("clab-ring-{n}"))["Id"], id, "{n} was made again");
    }
    assert_eq!(ifindex("clab-ring-r1", "eth1"), r1_eth1, "an untouched link was made again");
    assert_eq!(ifindex("clab-ring-r3", "eth3"), r3_eth3, "an untouched link was made again");
    assert_eq!(host.cnet_ok(&["lab", "apply", "-t", &file2]), "lab ring: nothing to change\n");

    // A link's MTU and rate change in place: same interfaces, new settings on both ends.
    let tuned = changed.replace("      mtu: 9000\n", "      mtu: 1400\n").replace(
        "      ipv4: [10.0.12.0/31, 10.0.12.1/31]\n",
        "      ipv4: [10.0.12.0/31, 10.0.12.1/31]\n      rate: 10mbit\n",
    );
    let file3 = write(&host, "ring3.yml", &tuned);
    let expected = "~ link r1:eth1,r2:eth1: mtu 1500, shaping rate 10mbit\n\
                    ~ link r1:eth3,r3:eth3: mtu 1400, shaping none\n";
    assert_eq!(host.cnet_ok(&["lab", "apply", "-t", &file3]), expected);
    assert_eq!(ifindex("clab-ring-r1", "eth1"), r1_eth1, "a tuned link was made again");
    assert_eq!(ifindex("clab-ring-r3", "eth3"), r3_eth3, "a tuned link was made again");
    for (c, dev) in [("clab-ring-r1", "eth3"), ("clab-ring-r3", "eth3")] {
        assert_eq!(host.cnet_ok(&["exec", c, "cat", &format!("/sys/class/net/{dev}/mtu")]).trim(), "1400");
    }
    let links = host.cnet_ok(&["link", "ls", "ring"]);
    let shaped = links.lines().find(|l| l.starts_with("ring-r1.eth1-r2.eth1")).unwrap_or_default();
    assert!(
        shaped.contains("clab-ring-r1:eth1 rate 10mbit") && shaped.contains("clab-ring-r2:eth1 rate 10mbit"),
        "{links}"
    );
    assert_eq!(host.cnet_ok(&["lab", "apply", "-t", &file3]), "lab ring: nothing to change\n");
    let ping = host.cnet(&["exec", "clab-ring-r1", "ping", "-c", "1", "-W", "2", "10.0.12.1"]);
    assert!(ping.status.success(), "{}", describe_output("r1 -> r2 over the shaped link", &ping));
    // `link set` takes the lab's node names, as the file writes them.
    assert_eq!(host.cnet_ok(&["link", "set", "r1:eth1", "down"]).trim(), "clab-ring-r1:eth1");
    let state = host.cnet_ok(&["exec", "clab-ring-r2", "cat", "/sys/class/net/eth1/carrier"]);
    assert_eq!(state.trim(), "0", "r2 still has carrier with r1's end down");
    host.cnet_ok(&["link", "set", "--lab", "ring", "r1:eth1", "up"]);
    let err = host.cnet_err(&["link", "set", "--lab", "ring", "h2:eth1", "down"]);
    assert!(err.contains("lab ring has no node h2"), "{err}");

    let out = host.cnet_ok(&["lab", "destroy", "-t", &file]);
    assert!(out.contains("5 containers") && out.contains("7 networks"), "{out}");
    assert_lab_gone(&host, &before);
    let err = host.cnet_err(&["lab", "destroy", "--name", "ring"]);
    assert!(err.contains("ring"), "{err}");
}

/// A containerlab file (kind linux, the extended link form, a management network of its own)
/// deploys unchanged, with containerlab's container names.
#[test]
fn a_containerlab_file_deploys_unchanged() {
    let host = TestHost::with_cnetd();
    let before = networks(&host);
    std::fs::create_dir_all(host.dir().join("files")).expect("mkdir");
    std::fs::write(host.dir().join("files/motd"), "hello from the lab\n").expect("write motd");
    let file = write(
        &host,
        "clab.yml",
        "name: srl01\nmgmt:\n  network: labmgmt\n  ipv4-subnet: 172.100.100.0/24\ntopology:\n  kinds:\n    linux:\n      image: busybox\n  nodes:\n    client1:\n      kind: linux\n      cmd: sleep 1000\n      group: clients\n    client2:\n      kind: linux\n      cmd: sleep 1000\n      binds:\n        - files/motd:/etc/motd:ro\n  links:\n    - type: veth\n      endpoints:\n        - node: client1\n          interface: eth1\n          mac: 02:00:00:00:01:01\n        - node: client2\n          interface: eth1\n",
    );
    host.cnet_ok(&["lab", "deploy", "-t", &file]);
    // binds are relative to the lab file, as in containerlab.
    assert_eq!(host.cnet_ok(&["exec", "clab-srl01-client2", "cat", "/etc/motd"]), "hello from the lab\n");
    let links = host.cnet_ok(&["exec", "clab-srl01-client1", "ip", "-o", "link"]);
    assert!(links.contains("eth1") && links.contains("02:00:00:00:01:01"), "{links}");
    let addr = host.cnet_ok(&["exec", "clab-srl01-client2", "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains("172.100.100."), "{addr}");
    let carrier = host.cnet_ok(&["exec", "clab-srl01-client2", "cat", "/sys/class/net/eth1/carrier"]);
    assert_eq!(carrier.trim(), "1");
    // A container of the user's on the lab's management network is no part of the lab.
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "tagged",
        "--label",
        "team=net",
        "-l",
        "bare",
        "--network",
        "labmgmt",
        "busybox",
        "sleep",
        "100",
    ]);
    let labels = &host.inspect("tagged")["Config"]["Labels"];
    assert_eq!(labels["team"], "net", "{labels:#}");
    assert_eq!(labels["bare"], "", "{labels:#}");
    host.cnet_ok(&["lab", "destroy", "--name", "srl01"]);
    assert_eq!(host.cnet_ok(&["ps", "-q", "--filter", "label=team=net"]).lines().count(), 1, "destroy took tagged");
    host.cnet_ok(&["rm", "-f", "tagged"]);
    // The management network stayed while tagged was on it; it is the lab's to remove, but not
    // any more once the lab is gone: the user removes it.
    host.cnet_ok(&["network", "rm", "labmgmt"]);
    assert_lab_gone(&host, &before);
}

/// Bad files fail with an error naming the line or the node, and create nothing.
#[test]
fn bad_lab_files_are_refused_and_create_nothing() {
    let host = TestHost::with_cnetd();
    let before = networks(&host);
    for (what, text, needles) in [
        ("unknown node", RING.replace("\"r4:eth2\", \"r1:eth2\"", "\"r9:eth2\", \"r1:eth2\""), vec!["r9", "line 30"]),
        (
            "interface used twice",
            RING.replace("\"r3:eth4\", \"h2:eth1\"", "\"r3:eth1\", \"h2:eth1\""),
            vec!["r3", "eth1", "line 37", "line 26"],
        ),
        (
            "three ends",
            RING.replace("\"r1:eth4\", \"h1:eth1\"", "\"r1:eth4\", \"h1:eth1\", \"h2:eth5\""),
            vec!["link 6", "exactly two"],
        ),
        ("missing image", RING.replace("    r4: {}", "    r4: {image: nosuchimage}"), vec!["r4", "nosuchimage"]),
        ("YAML syntax", RING.replace("    r4: {}", "    r4: {image: [busybox}"), vec!["line 18"]),
    ] {
        let file = write(&host, "bad.yml", &text);
        let err = host.cnet_err(&["lab", "deploy", "-t", &file]);
        for needle in needles {
            assert!(err.contains(needle), "{what}: {needle:?} not in the error: {err}");
        }
        assert_lab_gone(&host, &before);
    }
}

/// An apply killed half-way (the CLI dies while making a node) is finished by the next apply, and
/// the lab is still destroyed without a trace.
#[test]
fn an_apply_cut_short_converges_on_the_next_one() {
    let host = TestHost::with_cnetd();
    let before = networks(&host);
    let two = "name: duo\ntopology:\n  defaults: {image: busybox, cmd: sleep 1000}\n  nodes:\n    a: {}\n    b: {}\n  links:\n    - endpoints: [a:eth1, b:eth1]\n      ipv4: [10.5.0.0/31, 10.5.0.1/31]\n";
    let file = write(&host, "duo.yml", two);
    host.cnet_ok(&["lab", "deploy", "-t", &file]);
    let three = format!(
        "{}    - endpoints: [b:eth2, c:eth1]\n      ipv4: [10.5.1.0/31, 10.5.1.1/31]\n",
        two.replace("    b: {}\n", "    b: {}\n    c: {}\n")
    );
    let file3 = write(&host, "trio.yml", &three);
    for step in ["create:sandbox", "create:connected"] {
        let out = host
            .cnet_command(60, &["lab", "apply", "-t", &file3])
            .env("CNET_TEST_ABORT_AT", step)
            .output()
            .expect("run cnet");
        assert!(!out.status.success(), "{step}: the apply succeeded though the CLI aborted");
    }
    host.cnet_ok(&["lab", "apply", "-t", &file3]);
    let ping = host.cnet(&["exec", "clab-duo-c", "ping", "-c", "1", "-W", "2", "10.5.1.0"]);
    assert!(ping.status.success(), "{}", describe_output("c -> b", &ping));
    assert_eq!(host.cnet_ok(&["lab", "apply", "-t", &file3]), "lab duo: nothing to change\n");
    host.cnet_ok(&["lab", "destroy", "--name", "duo"]);
    assert_lab_gone(&host, &before);
}

/// The repository's lab examples deploy and do what their READMEs show.
#[test]
fn the_ring_example_routes_h1_to_h2() {
    let host = TestHost::with_cnetd();
    let before = networks(&host);
    let file = example("ring/ring.yml");
    host.cnet_ok(&["lab", "deploy", "-t", &file]);
    let ping = || host.cnet(&["lab", "exec", "--name", "ring", "h1", "--", "ping", "-c", "1", "-W", "2", "10.3.3.10"]);
    let out = ping();
    assert!(out.status.success(), "{}", describe_output("h1 -> h2", &out));
    // The README's story: the r2-r3 link down breaks the path, routes the other way round mend it.
    host.cnet_ok(&["link", "set", "clab-ring-r2:eth2", "down"]);
    assert!(!ping().status.success(), "h1 reached h2 with the r2-r3 link down");
    host.cnet_ok(&[
        "lab",
        "exec",
        "--name",
        "ring",
        "r1",
        "--",
        "ip",
        "route",
        "replace",
        "10.3.3.0/24",
        "via",
        "10.0.41.0",
    ]);
    host.cnet_ok(&[
        "lab",
        "exec",
        "--name",
        "ring",
        "r3",
        "--",
        "ip",
        "route",
        "replace",
        "10.1.1.0/24",
        "via",
        "10.0.34.1",
    ]);
    let out = ping();
    assert!(out.status.success(), "{}", describe_output("h1 -> h2 over r4", &out));
    host.cnet_ok(&["lab", "destroy", "-t", &file]);
    assert_lab_gone(&host, &before);
}

/// The OSPF example: its image built offline from the .debs `scripts/setup.sh` keeps, its routers
/// converge (r1 reaches r3's loopback over routes BIRD learnt).
#[test]
fn the_ospf_example_converges() {
    let host = TestHost::with_cnetd();
    let before = networks(&host);
    let debs: Vec<String> = std::fs::read_dir(LAB_DEBS)
        .unwrap_or_else(|e| {
            panic!("{LAB_DEBS}: {e}: run ./scripts/setup.sh, which keeps the .debs of the OSPF example there")
        })
        .map(|e| e.expect("a .deb").path().display().to_string())
        .filter(|p| p.ends_with(".deb"))
        .collect();
    assert!(debs.iter().any(|d| d.contains("/bird2_")), "no bird2 .deb in {LAB_DEBS}: run ./scripts/setup.sh");
    let cli = format!(
        "{} -H {} --root {}",
        cnet_tests::bin("cnet").display(),
        host.socket().display(),
        host.runtime_dir().display()
    );
    let build =
        host.ns().cmd("bash").arg(example("ospf/build-image.sh")).args(&debs).env("CNET", cli).output().expect("build");
    assert!(build.status.success(), "{}", describe_output("build-image.sh", &build));
    let file = example("ospf/ospf.yml");
    host.cnet_ok(&["lab", "deploy", "-t", &file]);
    cnet_tests::wait_for("r1 to reach r3's loopback over OSPF", std::time::Duration::from_secs(60), || {
        host.cnet(&["exec", "clab-ospf-r1", "ping", "-c", "1", "-W", "1", "10.255.0.3"]).status.success()
    });
    let routes = host.cnet_ok(&["exec", "clab-ospf-r1", "ip", "route"]);
    // Learnt from BIRD (metric 32), over r2 and r4 at equal cost.
    assert!(routes.lines().any(|l| l.starts_with("10.255.0.3 ") && l.contains("metric 32")), "{routes}");
    // The r1-r2 link down: OSPF finds r2 the other way round the ring.
    let to_r2 = || host.cnet_ok(&["exec", "clab-ospf-r1", "ip", "route", "show", "10.255.0.2"]);
    cnet_tests::wait_for("r1 to route to r2 directly", std::time::Duration::from_secs(30), || {
        to_r2().contains("via 10.0.12.1 dev eth1")
    });
    host.cnet_ok(&["link", "set", "clab-ospf-r1:eth1", "down"]);
    cnet_tests::wait_for("r1 to route to r2 over r4", std::time::Duration::from_secs(30), || {
        to_r2().contains("via 10.0.41.0 dev eth2")
    });
    // r2 learns its way back on its own (its end lost carrier): the ping works once it has.
    cnet_tests::wait_for("r1 to reach r2 over r4", std::time::Duration::from_secs(30), || {
        host.cnet(&["exec", "clab-ospf-r1", "ping", "-c", "1", "-W", "1", "10.255.0.2"]).status.success()
    });
    host.cnet_ok(&["lab", "destroy", "-t", &file]);
    assert_lab_gone(&host, &before);
}

const LAB_DEBS: &str = "/var/cache/cnet/debs";

fn example(path: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/labs").join(path).display().to_string()
}

/// A lab's own networks (`networks:`) are made with it, joined by its nodes after their links,
/// and removed with it; a crash of cnetd in the middle of an apply is finished by the next apply.
#[test]
fn lab_networks_and_a_cnetd_crash_during_apply() {
    let mut host = TestHost::with_cnetd();
    let before = networks(&host);
    let two = "name: netlab\ntopology:\n  defaults: {image: busybox, cmd: sleep 1000}\n  nodes:\n    a: {networks: [lan]}\n    b: {networks: [lan]}\n  links:\n    - endpoints: [a:eth1, b:eth1]\nnetworks:\n  lan:\n    subnet: 10.66.0.0/24\n";
    let file = write(&host, "netlab.yml", two);
    host.cnet_ok(&["lab", "deploy", "-t", &file]);
    let addr = host.cnet_ok(&["exec", "clab-netlab-a", "ip", "-o", "-4", "addr", "show", "eth2"]);
    assert!(addr.contains("10.66.0."), "a's eth2 is not on the lab's network: {addr}");
    let b_lan = host.cnet_ok(&[
        "inspect",
        "-f",
        "{{(index .NetworkSettings.Networks \"netlab-lan\").IPAddress}}",
        "clab-netlab-b",
    ]);
    let ping = host.cnet(&["exec", "clab-netlab-a", "ping", "-c", "1", "-W", "2", b_lan.trim()]);
    assert!(ping.status.success(), "{}", describe_output("a -> b over the lab's network", &ping));

    // cnetd dies while the apply connects the new node c.
    let three = two.replace("    b: {networks: [lan]}\n", "    b: {networks: [lan]}\n    c: {}\n").replace(
        "    - endpoints: [a:eth1, b:eth1]\n",
        "    - endpoints: [a:eth1, b:eth1]\n    - endpoints: [b:eth3, c:eth1]\n",
    );
    let file3 = write(&host, "netlab3.yml", &three);
    host.kill_cnetd(cnet_tests::SIGKILL);
    host.start_cnetd_with_env(&[], &[("CNET_TEST_ABORT_AT", "connect:attached")]);
    let out = host.cnet(&["lab", "apply", "-t", &file3]);
    assert!(!out.status.success(), "the apply succeeded though cnetd aborted");
    assert!(
        host.log().contains("connect:attached"),
        "cnetd did not abort at the step:\n{}\n{}",
        describe_output("apply", &out),
        host.log_tail()
    );
    host.kill_cnetd(cnet_tests::SIGKILL);
    host.start_cnetd();
    host.cnet_ok(&["lab", "apply", "-t", &file3]);
    assert_eq!(host.cnet_ok(&["lab", "apply", "-t", &file3]), "lab netlab: nothing to change\n");
    let carrier = host.cnet_ok(&["exec", "clab-netlab-c", "cat", "/sys/class/net/eth1/carrier"]);
    assert_eq!(carrier.trim(), "1", "c's link to b is not up");
    host.cnet_ok(&["lab", "destroy", "--name", "netlab"]);
    assert_lab_gone(&host, &before);
}

/// A lab's own networks of the other drivers: macvlan on a host interface and an overlay of the
/// host's cluster, joined by the nodes and removed with the lab.
#[test]
fn a_lab_joins_macvlan_and_overlay_networks_of_its_own() {
    let mut cluster = cnet_tests::Lab::new(1);
    cluster.start_all();
    let host = cluster.host(0);
    let before = networks(host);
    let text = "name: mixed\ntopology:\n  defaults: {image: busybox, cmd: sleep 1000}\n  nodes:\n    \
                a: {networks: [lan, ov]}\n    b: {networks: [lan, ov]}\nnetworks:\n  \
                lan: {driver: macvlan, subnet: 198.51.100.0/24, options: {parent: eth0}}\n  \
                ov: {driver: overlay, subnet: 10.77.0.0/24}\n";
    let file = write(host, "mixed.yml", text);
    host.cnet_ok(&["lab", "deploy", "-t", &file]);
    let drivers =
        host.cnet_ok(&["network", "ls", "--filter", "label=cnet.lab=mixed", "--format", "{{.Name}} {{.Driver}}"]);
    assert_eq!(drivers, "mixed-lan macvlan\nmixed-ov overlay\n");
    for (net, dev, prefix) in [("mixed-lan", "eth1", "198.51.100."), ("mixed-ov", "eth2", "10.77.0.")] {
        let template = format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}");
        let b_addr = host.cnet_ok(&["inspect", "-f", &template, "clab-mixed-b"]);
        assert!(b_addr.starts_with(prefix), "b on {net}: {b_addr}");
        let a_dev = host.cnet_ok(&["exec", "clab-mixed-a", "ip", "-o", "-4", "addr", "show", dev]);
        assert!(a_dev.contains(prefix), "a's {dev} is not on {net}: {a_dev}");
        let ping = host.cnet(&["exec", "clab-mixed-a", "ping", "-c", "1", "-W", "2", b_addr.trim()]);
        assert!(ping.status.success(), "{}", describe_output(&format!("a -> b over {net}"), &ping));
    }
    host.cnet_ok(&["lab", "destroy", "--name", "mixed"]);
    assert_lab_gone(host, &before);
}
