//! One lab file over several hosts (`host:` on its nodes): three simulated hosts (namespaces on an
//! underlay bridge, each with its cnetd in the cluster of an etcd of the test's own), the lab
//! deployed, applied and destroyed from different hosts, with real containers of each host's
//! runtime. Needs root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test lab_hosts`.

use cnet_tests::{Lab, TestHost, describe_output};
use serde_json::Value;

/// a on host1, b and c on host2, d wherever the lab is deployed from; b-c a link on host2, a-b
/// and a-d links across hosts.
const SPREAD: &str = "\
name: spread
topology:
  defaults: {image: busybox, cmd: sleep 1000}
  nodes:
    a: {host: host1}
    b: {host: host2}
    c: {host: host2}
    d: {}
  links:
    - endpoints: [b:eth1, c:eth1]
      ipv4: [10.7.0.0/31, 10.7.0.1/31]
    - endpoints: [a:eth1, b:eth2]
      ipv4: [10.7.1.0/31, 10.7.1.1/31]
    - endpoints: [a:eth2, d:eth1]
      ipv4: [10.7.2.0/31, 10.7.2.1/31]
";

fn write(host: &TestHost, name: &str, text: &str) -> String {
    let path = host.dir().join(name);
    std::fs::write(&path, text).expect("write the lab file");
    path.display().to_string()
}

/// The containers of a host, by name.
fn containers(host: &TestHost) -> Vec<String> {
    let out = host.cnet_ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<String> = out.lines().map(str::to_string).collect();
    names.sort();
    names
}

/// The names of the networks a host sees that carry the lab's label.
fn lab_networks(host: &TestHost, lab: &str) -> Vec<String> {
    let out = host.cnet_ok(&["network", "ls", "--filter", &format!("label=cnet.lab={lab}"), "--format", "{{.Name}}"]);
    let mut names: Vec<String> = out.lines().map(str::to_string).collect();
    names.sort();
    names
}

fn ping(host: &TestHost, container: &str, ip: &str) -> bool {
    let out = host.cnet(&["exec", container, "ping", "-c", "1", "-W", "2", ip]);
    out.status.success()
}

/// Nothing of the lab on any host, and nothing of it in etcd (a read of etcd that fails panics).
fn assert_gone_everywhere(cluster: &Lab, lab: &str) {
    for host in cluster.hosts() {
        assert_eq!(containers(host), Vec::<String>::new(), "containers left on {}", host.dir().display());
        assert_eq!(lab_networks(host, lab), Vec::<String>::new(), "networks of the lab left");
        assert_eq!(host.sandbox_ids(), Vec::<String>::new(), "sandboxes left");
        for prefix in ["p2p", "veth", "vx"] {
            let left: Vec<String> =
                host.links_starting(prefix).into_iter().filter(|l| !l.starts_with("vxlan_sys")).collect();
            assert_eq!(left, Vec::<String>::new(), "{prefix}* links left");
        }
    }
    for prefix in ["/cnet/v1/labs/", "/cnet/v1/labreports/"] {
        assert_eq!(cluster.etcd().get_prefix(prefix), vec![], "keys left under {prefix}");
    }
}

#[test]
fn a_lab_over_three_hosts_is_deployed_applied_and_destroyed_from_any_host() {
    let mut cluster = Lab::new(3);
    cluster.start_all();
    let file = write(cluster.host(2), "spread.yml", SPREAD);

    // From host3: a on host1, b and c on host2, d here.
    let out = cluster.host(2).cnet_ok(&["lab", "deploy", "-t", &file]);
    for (node, host) in [("a", "host1"), ("b", "host2"), ("c", "host2"), ("d", "host3")] {
        let line = out.lines().find(|l| l.starts_with(&format!("{node} "))).unwrap_or_else(|| panic!("{node}:\n{out}"));
        assert!(line.contains(host) && line.contains(&format!("clab-spread-{node}")), "{node} on {host}?\n{out}");
    }
    assert_eq!(containers(cluster.host(0)), ["clab-spread-a"]);
    assert_eq!(containers(cluster.host(1)), ["clab-spread-b", "clab-spread-c"]);
    assert_eq!(containers(cluster.host(2)), ["clab-spread-d"]);

    // The link on host2 is a veth pair; the links across hosts carry traffic, with the file's
    // interface names.
    assert!(ping(cluster.host(1), "clab-spread-b", "10.7.0.1"), "b -> c on host2");
    assert!(ping(cluster.host(0), "clab-spread-a", "10.7.1.1"), "a on host1 -> b on host2");
    assert!(ping(cluster.host(2), "clab-spread-d", "10.7.2.0"), "d on host3 -> a on host1");
    let addrs = cluster.host(0).cnet_ok(&["exec", "clab-spread-a", "ip", "-o", "-4", "addr", "show", "eth1"]);
    assert!(addrs.contains("10.7.1.0/31"), "{addrs}");

    // Any host shows the whole lab.
    let json: Value =
        serde_json::from_str(&cluster.host(0).cnet_ok(&["lab", "inspect", "--name", "spread", "--format", "json"]))
            .expect("inspect json");
    let hosts: Vec<(&str, &str)> = json
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| (n["node"].as_str().unwrap(), n["host"].as_str().unwrap()))
        .collect();
    assert_eq!(hosts, [("a", "host1"), ("b", "host2"), ("c", "host2"), ("d", "host3")], "{json:#}");

    // From host1: d moves to host1 (its link to a becomes a veth pair there), the b-c link goes.
    let moved = SPREAD
        .replace("    d: {}", "    d: {host: host1}")
        .replace("    - endpoints: [b:eth1, c:eth1]\n      ipv4: [10.7.0.0/31, 10.7.0.1/31]\n", "");
    let file1 = write(cluster.host(0), "spread.yml", &moved);
    cluster.host(0).cnet_ok(&["lab", "apply", "-t", &file1]);
    assert_eq!(containers(cluster.host(0)), ["clab-spread-a", "clab-spread-d"]);
    assert_eq!(containers(cluster.host(1)), ["clab-spread-b", "clab-spread-c"]);
    assert_eq!(containers(cluster.host(2)), Vec::<String>::new(), "d stayed on host3");
    assert!(ping(cluster.host(0), "clab-spread-d", "10.7.2.0"), "d -> a on host1");
    assert!(ping(cluster.host(0), "clab-spread-a", "10.7.1.1"), "a -> b across hosts after the apply");
    let ifaces = cluster.host(1).cnet_ok(&["exec", "clab-spread-c", "ls", "/sys/class/net"]);
    assert!(!ifaces.contains("eth1"), "c kept the removed link's interface: {ifaces}");
    // Applying the same file again changes nothing.
    let again = cluster.host(1).cnet_ok(&["lab", "apply", "-t", &file1]);
    assert!(again.contains("0 links across hosts removed"), "{again}");

    // From host2, the lab goes from every host, and from etcd.
    let out = cluster.host(1).cnet_ok(&["lab", "destroy", "--name", "spread"]);
    assert!(out.contains("host1") && out.contains("host2") && out.contains("host3"), "{out}");
    assert_gone_everywhere(&cluster, "spread");
    let err = cluster.host(0).cnet_err(&["lab", "destroy", "--name", "spread"]);
    assert!(err.contains("no lab named spread"), "{err}");
}

#[test]
fn a_lab_that_fails_on_one_host_is_removed_from_all_and_bad_hosts_are_named() {
    let mut cluster = Lab::new(2);
    cluster.start_all();

    // A host that is not in the cluster: refused before anything is made.
    let file = write(cluster.host(0), "bad.yml", &SPREAD.replace("{host: host2}", "{host: host9}"));
    let err = cluster.host(0).cnet_err(&["lab", "deploy", "-t", &file]);
    assert!(err.contains("host9") && err.contains("not a node of the cluster"), "{err}");
    assert_gone_everywhere(&cluster, "spread");

    // host2's part fails (no such image there): every host's part goes, and the links across hosts.
    let text = SPREAD.replace("    c: {host: host2}", "    c: {host: host2, image: nosuchimage}");
    let file = write(cluster.host(0), "fails.yml", &text);
    let out = cluster.host(0).cnet(&["lab", "deploy", "-t", &file]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe_output("deploy", &out));
    assert!(stderr.contains("host host2") && stderr.contains("nosuchimage"), "{stderr}");
    assert_gone_everywhere(&cluster, "spread");

    // Without a cluster, a file that names hosts is refused with what it needs.
    let single = TestHost::with_cnetd();
    let file = write(&single, "spread.yml", SPREAD);
    let err = single.cnet_err(&["lab", "deploy", "-t", &file]);
    assert!(err.contains("--cluster-store") && err.contains("host host1"), "{err}");
    assert_eq!(containers(&single), Vec::<String>::new());
}

#[test]
fn a_cnetd_killed_during_a_deploy_finishes_its_part_when_it_is_back() {
    let mut cluster = Lab::new(2);
    cluster.start_all();
    let file = write(cluster.host(0), "spread.yml", SPREAD);
    let deploy = cluster.host(0).cnet_command(120, &["lab", "deploy", "-t", &file]).spawn().expect("start the deploy");
    // host2's cnetd dies while its part runs (or is about to): the part left running finishes
    // or fails, and the restarted cnetd's agent runs the part again, after it.
    std::thread::sleep(std::time::Duration::from_millis(300));
    cluster.host_mut(1).kill_cnetd(cnet_tests::SIGKILL);
    cluster.start_cnetd(1);
    let out = deploy.wait_with_output().expect("wait for the deploy");
    assert!(
        out.status.success(),
        "{}\n--- host2's cnetd log ---\n{}",
        describe_output("deploy across a killed cnetd", &out),
        cluster.host(1).log_tail()
    );
    assert_eq!(containers(cluster.host(1)), ["clab-spread-b", "clab-spread-c"]);
    assert!(ping(cluster.host(1), "clab-spread-b", "10.7.0.1"), "b -> c on host2");
    assert!(ping(cluster.host(0), "clab-spread-a", "10.7.1.1"), "a on host1 -> b on host2");

    cluster.host(1).cnet_ok(&["lab", "destroy", "--name", "spread"]);
    assert_gone_everywhere(&cluster, "spread");
}
