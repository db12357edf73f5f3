//! Lab files: containerlab's own, cnet's additions, and every kind of bad file.

use super::*;

const RING: &str = "\
name: ring
topology:
  defaults:
    image: busybox
  nodes:
    r1:
      kind: linux
      cmd: sleep infinity
      sysctls:
        net.ipv4.ip_forward: 1
      exec:
        - ip route add 10.0.2.0/31 via 10.0.1.1
    r2:
      env:
        ROLE: router
    h1:
      image: alpine
      networks: [lan]
  links:
    - endpoints: [\"r1:eth1\", \"r2:eth1\"]
      ipv4: [10.0.1.0/31, 10.0.1.1/31]
      mtu: 9000
    - endpoints:
        - r2:eth2
        - h1:eth1
networks:
  lan:
    subnet: 10.9.0.0/24
";

fn err(text: &str) -> String {
    Lab::parse("lab.yml", text).unwrap_err().to_string()
}

#[test]
fn a_lab_with_defaults_links_and_networks() {
    let lab = Lab::parse("lab.yml", RING).unwrap();
    assert_eq!(lab.name, "ring");
    assert_eq!(lab.mgmt.network, "clab");
    assert_eq!(lab.mgmt.ipv4_subnet.to_string(), "172.20.20.0/24");
    let r1 = lab.node("r1").unwrap();
    assert_eq!(r1.container, "clab-ring-r1");
    assert_eq!(r1.image, "busybox");
    assert_eq!(r1.cmd, ["sleep", "infinity"]);
    assert_eq!(r1.sysctls["net.ipv4.ip_forward"], "1");
    assert_eq!(r1.exec, ["ip route add 10.0.2.0/31 via 10.0.1.1"]);
    assert_eq!(lab.node("r2").unwrap().env["ROLE"], "router");
    assert_eq!(lab.node("h1").unwrap().image, "alpine");
    assert_eq!(lab.node("h1").unwrap().networks, ["lan"]);
    assert_eq!(lab.links.len(), 2);
    let l1 = &lab.links[0];
    assert_eq!(l1.key(), "r1:eth1,r2:eth1");
    assert_eq!(l1.mtu, Some(9000));
    assert_eq!(l1.network, "ring-r1.eth1-r2.eth1");
    assert_eq!(l1.ends[0].ipv4.unwrap().to_string(), "10.0.1.0/31");
    assert_eq!(l1.subnets(), vec!["10.0.1.0/31".parse::<IpNetwork>().unwrap()]);
    // Ends are sorted: the link's identity does not depend on the file's order.
    assert_eq!(lab.links[1].key(), "h1:eth1,r2:eth2");
    assert!(lab.links[1].subnets().is_empty());
    assert_eq!(lab.networks[0].network, "ring-lan");
    assert_eq!(lab.networks[0].driver, "bridge");
    let labels = lab.node_labels(r1);
    assert_eq!(labels[LABEL_LAB], "ring");
    assert_eq!(labels[LABEL_CLAB], "ring");
    assert_eq!(labels[LABEL_NODE], "r1");
    assert_eq!(lab.link_labels(l1)[LABEL_LINK], "r1:eth1,r2:eth1");
    let r2_links: Vec<&str> = lab.links_of("r2").iter().map(|(_, e)| e.interface.as_str()).collect();
    assert_eq!(r2_links, ["eth1", "eth2"]);
}

/// A file written for containerlab, with fields cnet has no use for, deploys unchanged.
#[test]
fn a_containerlab_file_is_taken_as_it_is() {
    let text = "\
name: srl-free
prefix: __lab-name
mgmt:
  network: custom_mgmt
  ipv4-subnet: 172.100.100.0/24
  mtu: 1500
topology:
  kinds:
    linux:
      image: ghcr.io/hellt/network-multitool
  nodes:
    client1:
      kind: linux
      group: clients
      mgmt-ipv4: 172.100.100.11
    client2:
      kind: linux
      startup-delay: 2
  links:
    - type: veth
      endpoints:
        - node: client1
          interface: eth1
          mac: 02:00:00:00:00:01
        - node: client2
          interface: eth1
";
    let lab = Lab::parse("clab.yml", text).unwrap();
    assert_eq!(lab.mgmt.network, "custom_mgmt");
    assert_eq!(lab.node("client1").unwrap().container, "srl-free-client1");
    assert_eq!(lab.node("client1").unwrap().image, "ghcr.io/hellt/network-multitool");
    assert_eq!(lab.node("client1").unwrap().mgmt_ipv4.as_deref(), Some("172.100.100.11"));
    assert_eq!(lab.links[0].ends[0].mac.as_deref(), Some("02:00:00:00:00:01"));
    let no_prefix = text.replace("prefix: __lab-name", "prefix: \"\"");
    assert_eq!(Lab::parse("clab.yml", &no_prefix).unwrap().node("client2").unwrap().container, "client2");
}

#[test]
fn bad_files_name_the_line_and_the_node() {
    let e = err("name: x\ntopology:\n  nodes:\n    r1: {image: busybox\n");
    assert!(e.starts_with("lab.yml: line"), "{e}");
    let e = err(&RING.replace("\"r1:eth1\", \"r2:eth1\"", "\"r1:eth1\", \"r9:eth1\""));
    assert!(e.contains("line 20") && e.contains("r9") && e.contains("topology.nodes"), "{e}");
    let e = err(&RING.replace("- r2:eth2", "- r1:eth1"));
    assert!(e.contains("line 23") && e.contains("already used by the link on line 20"), "{e}");
    let e = err(&RING.replace("        - h1:eth1\n", "        - h1:eth1\n        - r1:eth5\n"));
    assert!(e.contains("link 2") && e.contains("exactly two endpoints") && e.contains("3"), "{e}");
    let e = err(&RING.replace("  defaults:\n    image: busybox\n", ""));
    assert!(e.contains("line 4") && e.contains("node r1") && e.contains("no image"), "{e}");
    let e = err(&RING.replace("      kind: linux", "      kind: srl"));
    assert!(e.contains("node r1") && e.contains("srl"), "{e}");
    let e = err(&RING.replace("networks: [lan]", "networks: [wan]"));
    assert!(e.contains("node h1") && e.contains("wan"), "{e}");
    let e = err(&RING.replace("10.0.1.1/31]", "10.0.3.1/31]"));
    assert!(e.contains("link 1") && e.contains("one subnet"), "{e}");
    let e = err(&RING.replace("\"r1:eth1\"", "\"r1:eth0\""));
    assert!(e.contains("management"), "{e}");
    let binds = Lab::parse(
        "lab.yml",
        &RING.replace("      env:\n", "      binds:\n        - cfg/r2.conf:/etc/r2.conf:ro\n      env:\n"),
    )
    .unwrap();
    assert_eq!(binds.node("r2").unwrap().binds, ["cfg/r2.conf:/etc/r2.conf:ro"]);
    let e = err(&RING.replace("name: ring", "name: \"bad name\""));
    assert!(e.contains("bad name"), "{e}");
    let e = err(&RING.replace("      mtu: 9000\n", "      mtu: 9000\n      rate: fast\n"));
    assert!(e.contains("line 20") && e.contains("link 1") && e.contains("rate \"fast\""), "{e}");
    let e = err(&RING.replace("      mtu: 9000\n", "      mtu: 9000\n      jitter: 1ms\n"));
    assert!(e.contains("link 1") && e.contains("jitter") && e.contains("delay"), "{e}");
    let e = err(&RING.replace("      mtu: 9000\n", "      mtu: 0\n"));
    assert!(e.contains("link 1") && e.contains("mtu 0"), "{e}");
}

#[test]
fn a_link_shapes_what_both_ends_send() {
    let text =
        RING.replace("      mtu: 9000\n", "      mtu: 9000\n      rate: 10mbit\n      delay: 5ms\n      loss: 0.5%\n");
    let lab = Lab::parse("lab.yml", &text).unwrap();
    let s = lab.links[0].shaping;
    assert_eq!((s.rate_bps, s.delay_us, s.loss_ppm, s.jitter_us), (10_000_000, 5_000, 5_000, 0));
    assert!(lab.links[1].shaping.is_empty());
    // Shaping and MTU are changed in place, so they are no part of the link's fingerprint.
    let plain = Lab::parse("lab.yml", RING).unwrap();
    assert_eq!(lab.link_fingerprint(&lab.links[0]), plain.link_fingerprint(&plain.links[0]));
    let readdressed =
        Lab::parse("lab.yml", &RING.replace("10.0.1.0/31, 10.0.1.1/31", "10.0.1.2/31, 10.0.1.3/31")).unwrap();
    assert_ne!(readdressed.link_fingerprint(&readdressed.links[0]), plain.link_fingerprint(&plain.links[0]));
}

#[test]
fn shell_words_split_as_a_shell_does() {
    assert_eq!(
        file::shell_words("sh -c 'echo a b' \"x\\\"y\" z\\ w").unwrap(),
        ["sh", "-c", "echo a b", "x\"y", "z w"]
    );
    assert!(file::shell_words("echo 'open").is_err());
    assert_eq!(file::shell_words("  ").unwrap(), Vec::<String>::new());
}

const SPREAD: &str = "\
name: spread
topology:
  defaults: {image: busybox}
  nodes:
    a: {host: vm1}
    b: {host: vm2}
    c: {}
  links:
    - endpoints: [a:eth1, b:eth1]
    - endpoints: [b:eth2, c:eth1]
    - endpoints: [a:eth2, c:eth2]
";

#[test]
fn nodes_on_hosts_are_placed_and_each_host_gets_its_part() {
    let mut lab = Lab::parse("spread.yml", SPREAD).unwrap();
    assert!(lab.spans_hosts());
    assert!(!Lab::parse("ring.yml", RING).unwrap().spans_hosts());
    // c names no host: it runs where the lab is deployed from.
    let placement = lab.placement("vm1");
    assert_eq!(
        placement,
        BTreeMap::from([("a".into(), "vm1".into()), ("b".into(), "vm2".into()), ("c".into(), "vm1".into())])
    );
    let mut one_host = lab.clone();
    one_host.place(&lab.nodes.iter().map(|n| (n.name.clone(), "vm1".to_string())).collect());
    let one_host_fingerprints: Vec<String> = one_host.links.iter().map(|l| one_host.link_fingerprint(l)).collect();
    lab.place(&placement);
    assert_eq!(lab.hosts(), ["vm1", "vm2"]);
    let drivers: Vec<(String, &str)> = lab.links.iter().map(|l| (l.key(), lab.link_driver(l))).collect();
    assert_eq!(
        drivers,
        [("a:eth1,b:eth1".into(), "vxlan"), ("b:eth2,c:eth1".into(), "vxlan"), ("a:eth2,c:eth2".into(), "p2p")]
    );

    let networks: Vec<&str> = lab.links.iter().map(|l| l.network.as_str()).collect();
    assert_eq!(networks, ["spread-a.eth1-b.eth1-vx", "spread-b.eth2-c.eth1-vx", "spread-a.eth2-c.eth2"]);
    let vm1 = lab.part("vm1");
    assert_eq!(vm1.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(vm1.links.len(), 3, "vm1 has an end of every link");
    let vm2 = lab.part("vm2");
    assert_eq!(vm2.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["b"]);
    assert_eq!(vm2.links.iter().map(Link::key).collect::<Vec<_>>(), ["a:eth1,b:eth1", "b:eth2,c:eth1"]);
    assert!(lab.part("vm3").nodes.is_empty() && lab.part("vm3").links.is_empty());
    // A part sees a link's driver, and so its fingerprint, as the whole lab does.
    for part in [&vm1, &vm2] {
        for link in &part.links {
            let whole = lab.links.iter().find(|l| l.key() == link.key()).unwrap();
            assert_eq!(part.link_driver(link), lab.link_driver(whole), "{}", link.key());
            assert_eq!(part.link_fingerprint(link), lab.link_fingerprint(whole), "{}", link.key());
        }
    }
    // Crossing hosts changes a link's fingerprint (it is made again with the other driver); a
    // link on one host keeps the fingerprint of a lab on one host.
    let placed: Vec<String> = lab.links.iter().map(|l| lab.link_fingerprint(l)).collect();
    assert_ne!(placed[0], one_host_fingerprints[0]);
    assert_eq!(placed[2], one_host_fingerprints[2]);
}

#[test]
fn a_bad_host_is_named() {
    let e = err("name: t\ntopology:\n  nodes:\n    a: {image: busybox, host: \"vm 1\"}\n");
    assert!(e.contains("line 4") && e.contains("node a") && e.contains("host \"vm 1\""), "{e}");
    // The defaults can put every node on one host.
    let lab = Lab::parse("t.yml", "name: t\ntopology:\n  defaults: {image: busybox, host: vm2}\n  nodes:\n    a: {}\n")
        .unwrap();
    assert_eq!(lab.nodes[0].host.as_deref(), Some("vm2"));
}
