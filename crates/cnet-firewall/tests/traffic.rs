//! Real packets through the table: masquerade, isolation between networks, internal, icc=false.
//!
//! The test thread's namespace is the "host": bridges brA, brB, brC (internal) and an uplink to an
//! "outside" namespace that has no route back to the container subnets, so a ping to it can only be
//! answered if it was masqueraded. Containers are `unshare -n sleep` processes entered with nsenter.
//! (IPv4 only; the IPv6 rules are checked by listing in tests/table.rs.)

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cnet_firewall::{Firewall, GatewayMode, NetworkRules, PortRule, Proto, VxlanGuard};
use common::{in_netns, net, sh};

const TABLE: &str = "cnettraffic";
const OUTSIDE: &str = "192.0.2.2";

/// A network namespace held by a sleeping child process; killed on drop.
struct Netns {
    child: Child,
}

impl Netns {
    fn new() -> Netns {
        let child =
            Command::new("unshare").args(["-n", "sleep", "600"]).stdin(Stdio::null()).spawn().expect("spawn unshare");
        let ns = Netns { child };
        // Wait until the child has left our namespace, or links would be moved into our own.
        let ours = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let theirs = PathBuf::from(format!("/proc/{}/ns/net", ns.pid()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(&theirs).ok().as_ref() == Some(&ours) {
            assert!(Instant::now() < deadline, "unshare -n did not get its namespace");
            std::thread::sleep(Duration::from_millis(10));
        }
        ns
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid().to_string(), "-n", "sh", "-c", cmd]);
        c
    }

    fn sh(&self, cmd: &str) {
        let out = self.command(cmd).output().unwrap();
        assert!(out.status.success(), "`{cmd}` in netns failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// One ping with a one-second timeout.
    fn ping_once(&self, dst: &str) -> bool {
        self.command(&format!("busybox ping -c 1 -W 1 {dst}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// Up to three pings, so a slow first ARP does not fail a test that expects success.
    fn reaches(&self, dst: &str) -> bool {
        (0..3).any(|_| self.ping_once(dst))
    }

    /// Whether a TCP connection to `dst:port` gets an answer from [`Netns::serve`]'s httpd (it
    /// answers a bare newline with an error and closes) within two seconds.
    fn connects(&self, dst: &str, port: u16) -> bool {
        self.command(&format!("echo | busybox nc -w 2 {dst} {port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// An httpd listening on `port` in this namespace until the returned child is dropped.
    fn serve(&self, port: u16) -> Server {
        let child = self
            .command(&format!("exec busybox httpd -f -p {port} -h /proc/sys"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn httpd");
        let server = Server(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.connects("127.0.0.1", port) {
            assert!(Instant::now() < deadline, "httpd on port {port} does not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }
}

/// A server process in a test namespace; killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A "container" on `bridge`: veth `host_if` on the bridge, its peer as eth0 inside.
fn container(bridge: &str, host_if: &str, addr: &str, gateway: &str) -> Netns {
    let ns = Netns::new();
    sh(&format!(
        "ip link add {host_if} type veth peer name {host_if}p && \
         ip link set {host_if}p netns {pid} && ip link set {host_if} master {bridge} up",
        pid = ns.pid()
    ));
    ns.sh(&format!(
        "ip link set lo up && ip link set {host_if}p name eth0 && ip addr add {addr} dev eth0 && \
         ip link set eth0 up && ip route add default via {gateway}"
    ));
    ns
}

fn bridge(name: &str, addr: &str) {
    sh(&format!("ip link add {name} type bridge && ip addr add {addr} dev {name} && ip link set {name} up"));
}

fn rules(id: &str, bridge: &str, subnet: &str) -> NetworkRules {
    net(id, bridge, &[subnet])
}

/// A namespace with no route back to the container subnets, on veth `up0` (192.0.2.1, the host's
/// end) <-> 192.0.2.2.
fn outside() -> Netns {
    let outside = Netns::new();
    sh(&format!(
        "ip link add up0 type veth peer name up0p && ip link set up0p netns {} && \
         ip addr add 192.0.2.1/24 dev up0 && ip link set up0 up",
        outside.pid()
    ));
    outside.sh("ip link set lo up && ip addr add 192.0.2.2/24 dev up0p && ip link set up0p up");
    outside
}

#[test]
fn masquerade_isolation_internal_and_icc() {
    in_netns(|| async {
        // The host: forwarding on, bridged IPv4 through the inet hooks (br_netfilter; for icc=false).
        sh("echo 1 > /proc/sys/net/ipv4/ip_forward");
        sh("echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables");
        bridge("brA", "10.10.1.1/24");
        bridge("brB", "10.10.2.1/24");
        bridge("brC", "10.10.3.1/24");
        let a1 = container("brA", "va1", "10.10.1.2/24", "10.10.1.1");
        let a2 = container("brA", "va2", "10.10.1.3/24", "10.10.1.1");
        let b1 = container("brB", "vb1", "10.10.2.2/24", "10.10.2.1");
        let c1 = container("brC", "vc1", "10.10.3.2/24", "10.10.3.1");
        // The outside: no route back to 10.10.0.0/16.
        let outside = outside();

        // Without cnet's table: everything is routed, nothing is masqueraded.
        assert!(a1.reaches("10.10.1.3"), "a1 -> a2 on one bridge");
        assert!(a1.reaches("10.10.2.2"), "a1 -> b1 is routed by the host");
        assert!(c1.reaches("10.10.1.2"), "c1 -> a1 is routed by the host");
        assert!(!a1.ping_once(OUTSIDE), "the outside cannot answer without NAT");

        let net_a = rules("aaaaaaaaaaaa", "brA", "10.10.1.0/24");
        let net_b = rules("bbbbbbbbbbbb", "brB", "10.10.2.0/24");
        let net_c = NetworkRules { internal: true, ..rules("cccccccccccc", "brC", "10.10.3.0/24") };
        let fw = Firewall::new(TABLE);
        fw.sync(&[net_a.clone(), net_b.clone(), net_c.clone()], &[]).await.unwrap();

        assert!(a1.reaches(OUTSIDE), "masquerade: a1 -> outside");
        // A neighbour that routes the container subnets via the host reaches nothing (gateway mode
        // nat), unless the network is nat-unprotected.
        outside.sh("ip route add 10.10.0.0/16 via 192.0.2.1");
        assert!(!outside.ping_once("10.10.1.2"), "gateway mode nat: outside -> a1 directly");
        fw.remove_network(&net_a).await.unwrap();
        let unprotected = NetworkRules { gateway_v4: GatewayMode::NatUnprotected, ..net_a.clone() };
        fw.add_network(&unprotected).await.unwrap();
        assert!(outside.reaches("10.10.1.2"), "nat-unprotected: outside -> a1 directly");
        assert!(!outside.ping_once("10.10.2.2"), "B is still protected");
        fw.remove_network(&unprotected).await.unwrap();
        fw.add_network(&net_a).await.unwrap();
        assert!(!outside.ping_once("10.10.1.2"), "protected again");
        assert!(b1.reaches(OUTSIDE), "masquerade: b1 -> outside");
        assert!(a1.reaches("10.10.1.3"), "icc: a1 -> a2");
        assert!(a1.reaches("10.10.1.1"), "a1 -> its gateway");
        assert!(!a1.ping_once("10.10.2.2"), "isolation: a1 -> b1");
        assert!(!b1.ping_once("10.10.1.2"), "isolation: b1 -> a1");
        assert!(!c1.ping_once(OUTSIDE), "internal: c1 -> outside");
        assert!(!c1.ping_once("10.10.1.2"), "internal: c1 -> a1");
        assert!(!a1.ping_once("10.10.3.2"), "internal: a1 -> c1");

        // icc=false on A: its containers lose each other, but keep the outside.
        fw.remove_network(&net_a).await.unwrap();
        let no_icc = NetworkRules { icc: false, ..net_a.clone() };
        fw.add_network(&no_icc).await.unwrap();
        assert!(!a1.ping_once("10.10.1.3"), "icc=false: a1 -> a2");
        assert!(!a2.ping_once("10.10.1.2"), "icc=false: a2 -> a1");
        assert!(a1.reaches(OUTSIDE), "icc=false still masquerades");
        fw.remove_network(&no_icc).await.unwrap();
        fw.add_network(&net_a).await.unwrap();
        assert!(a1.reaches("10.10.1.3"), "icc back on: a1 -> a2");

        // Removing B lifts its isolation (A still isolates itself from cnet bridges it knows).
        fw.remove_network(&net_b).await.unwrap();
        assert!(a1.reaches("10.10.2.2"), "B removed: a1 -> b1");

        fw.delete_table().await.unwrap();
        assert!(c1.reaches("10.10.1.2"), "no table: c1 -> a1 again");
    });
}

#[test]
fn routed_mode_and_trusted_interfaces() {
    in_netns(|| async {
        sh("echo 1 > /proc/sys/net/ipv4/ip_forward");
        bridge("brR", "10.20.1.1/24");
        let a1 = container("brR", "vr1", "10.20.1.2/24", "10.20.1.1");
        let outside = outside();
        let _web = a1.serve(80);
        let _other = a1.serve(81);
        let port80 = |routed: bool| PortRule {
            proto: Proto::Tcp,
            host_addr: None,
            host_port: if routed { 0 } else { 8080 },
            dest: "10.20.1.2".parse().unwrap(),
            dest_port: 80,
            owner: "a1".into(),
            routed,
        };
        let nat = rules("dddddddddddd", "brR", "10.20.1.0/24");
        let routed = NetworkRules { gateway_v4: GatewayMode::Routed, ..nat.clone() };
        let fw = Firewall::new(TABLE);
        fw.sync(std::slice::from_ref(&routed), &[port80(true)]).await.unwrap();

        // Without a route back, a1 reaches the outside only if it is masqueraded: routed is not.
        assert!(!a1.ping_once(OUTSIDE), "routed: no masquerade");
        outside.sh("ip route add 10.20.0.0/16 via 192.0.2.1");
        assert!(a1.reaches(OUTSIDE), "routed: a1 -> outside with its own address");
        assert!(outside.reaches("10.20.1.2"), "routed: ICMP from outside");
        assert!(outside.connects("10.20.1.2", 80), "routed: the published container port");
        assert!(!outside.connects("10.20.1.2", 81), "routed: an unpublished port is dropped");
        assert!(!outside.connects("192.0.2.1", 8080), "routed: no host port");
        fw.remove_ports(&[port80(true)]).await.unwrap();
        assert!(!outside.connects("10.20.1.2", 80), "routed: unpublished again");

        // Gateway mode nat: published ports only through the host address, unless the packets come
        // in by a trusted interface.
        fw.remove_network(&routed).await.unwrap();
        fw.add_network(&nat).await.unwrap();
        fw.add_ports(&[port80(false)]).await.unwrap();
        assert!(outside.connects("192.0.2.1", 8080), "nat: the host port");
        assert!(!outside.connects("10.20.1.2", 80), "nat: not at the container's address");
        fw.remove_network(&nat).await.unwrap();
        let trusting = NetworkRules { trusted_interfaces: vec!["up0".into()], ..nat.clone() };
        fw.add_network(&trusting).await.unwrap();
        assert!(outside.connects("10.20.1.2", 80), "trusted: the published container port");
        assert!(!outside.connects("10.20.1.2", 81), "trusted: an unpublished port is still dropped");
        assert!(!outside.ping_once("10.20.1.2"), "trusted: nothing else");
        fw.remove_network(&trusting).await.unwrap();
        fw.add_network(&NetworkRules { trusted_interfaces: vec!["other0".into()], ..nat }).await.unwrap();
        assert!(!outside.connects("10.20.1.2", 80), "another interface is trusted, not up0");

        fw.delete_table().await.unwrap();
    });
}

/// The conntrack entries of the calling thread's namespace, one line each (fails the test when
/// they cannot be read: an unreadable table is not an empty one).
fn conntrack_entries() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/thread-self/net/nf_conntrack")
        .expect("/proc/thread-self/net/nf_conntrack (a kernel with nf_conntrack's procfs)");
    text.lines().map(str::to_string).collect()
}

#[test]
fn vxlan_packets_are_not_tracked_both_ways() {
    in_netns(|| async {
        let outside = outside();
        let fw = Firewall::new(TABLE);
        fw.sync(&[], &[]).await.unwrap();
        // In: from the outside to the host's VXLAN port, and to the port above it as the control.
        outside.sh("bash -c 'echo x > /dev/udp/192.0.2.1/4789; echo x > /dev/udp/192.0.2.1/4790'");
        // Out: from the host itself.
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.send_to(b"x", (OUTSIDE, cnet_firewall::VXLAN_PORT)).unwrap();
        sock.send_to(b"x", (OUTSIDE, 4791)).unwrap();
        let entries = conntrack_entries();
        let tracked =
            |dport: u16| entries.iter().any(|e| e.contains(" udp ") && e.contains(&format!(" dport={dport} ")));
        assert!(tracked(4790) && tracked(4791), "the controls are tracked (conntrack is on here): {entries:#?}");
        assert!(!tracked(4789), "VXLAN packets are not tracked, in or out: {entries:#?}");
        fw.delete_table().await.unwrap();
    });
}

/// Sends one VXLAN packet for `vni` from `src`, an address of `ns`, to the host: at 192.0.2.1
/// (or 2001:db8::1) by up0, or from 198.51.100.0/24 at 198.51.100.1 by wg-guardtest.
fn send_vxlan(ns: &Netns, src: &str, vni: u32) {
    let dst = match src {
        _ if src.starts_with("198.51.100.") => "198.51.100.1",
        _ if src.contains(':') => "2001:db8::1",
        _ => "192.0.2.1",
    };
    let netns = std::fs::File::open(format!("/proc/{}/ns/net", ns.pid())).unwrap();
    let src: std::net::IpAddr = src.parse().unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let sock = std::net::UdpSocket::bind((src, 0)).unwrap();
        sock.send_to(&cnet_tests::vxlan_broadcast_frame(vni), (dst, cnet_firewall::VXLAN_PORT)).unwrap();
    })
    .join()
    .unwrap();
}

/// Packets received by `dev` (of the calling thread's namespace).
fn rx_packets(dev: &str) -> u64 {
    cnet_tests::rx_packets_in(&std::fs::read_to_string("/proc/thread-self/net/dev").unwrap(), dev)
}

/// Waits until `dev` has received `count` packets, and a moment more for any that should not
/// have come.
fn received(dev: &str, count: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(3);
    while rx_packets(dev) < count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    rx_packets(dev)
}

#[test]
fn vxlan_for_cnets_vnis_only_from_peers_and_encrypted_ones_only_through_their_tunnel() {
    in_netns(|| async {
        // The outside holds a stranger (192.0.2.2) and a peer (192.0.2.3) on up0, and the peer
        // 198.51.100.2 and a stranger (.3) behind a link named as an encrypted network's tunnel.
        let outside = outside();
        outside.sh("ip addr add 192.0.2.3/24 dev up0p");
        sh(&format!(
            "ip link add wg-guardtest type veth peer name tunp && ip link set tunp netns {} && \
             ip addr add 198.51.100.1/24 dev wg-guardtest && ip link set wg-guardtest up",
            outside.pid()
        ));
        outside
            .sh("ip addr add 198.51.100.2/24 dev tunp && ip addr add 198.51.100.3/24 dev tunp && ip link set tunp up");
        // And over IPv6: the host 2001:db8::1, a stranger ::2 and a peer ::3.
        sh("ip addr add 2001:db8::1/64 dev up0 nodad");
        outside.sh("ip addr add 2001:db8::2/64 dev up0p nodad && ip addr add 2001:db8::3/64 dev up0p nodad");
        // cnet's VNIs 4096, 4097 (encrypted) and 4098 (over IPv6), and 5000, another program's.
        for (dev, vni, local) in [
            ("vxplain", 4096, "192.0.2.1"),
            ("vxsecret", 4097, "192.0.2.1"),
            ("vxsix", 4098, "2001:db8::1"),
            ("vxtheirs", 5000, "192.0.2.1"),
        ] {
            sh(&format!(
                "ip link add {dev} type vxlan id {vni} dstport 4789 local {local} nolearning && ip link set {dev} up"
            ));
        }
        let fw = Firewall::new(TABLE);
        fw.sync(&[], &[]).await.unwrap();

        // Without a guard the kernel takes a stranger's frame: what this test must see stopped.
        send_vxlan(&outside, "192.0.2.2", 4096);
        assert_eq!(received("vxplain", 1), 1, "a VXLAN device takes any source's packets");

        let guard = VxlanGuard {
            vnis: [(4096, None), (4097, Some("wg-guardtest".to_string())), (4098, None)].into(),
            peers: ["192.0.2.3", "198.51.100.2", "2001:db8::3"].iter().map(|a| a.parse().unwrap()).collect(),
        };
        fw.set_vxlan_guard(guard.clone()).await.unwrap();
        // The stranger's packet first, then the peer's: only the second arrives.
        send_vxlan(&outside, "192.0.2.2", 4096);
        send_vxlan(&outside, "192.0.2.3", 4096);
        assert_eq!(received("vxplain", 2), 2, "only the peer's packet reached VNI 4096");
        send_vxlan(&outside, "2001:db8::2", 4098);
        send_vxlan(&outside, "2001:db8::3", 4098);
        assert_eq!(received("vxsix", 1), 1, "only the peer's packet reached VNI 4098, over IPv6");
        // Another program's VNI is not cnet's business.
        send_vxlan(&outside, "192.0.2.2", 5000);
        assert_eq!(received("vxtheirs", 1), 1, "a VNI that is not cnet's takes anyone's packets");
        // The encrypted network's VNI: a peer's address in plaintext on the underlay is refused,
        // the same through the tunnel link is taken.
        send_vxlan(&outside, "192.0.2.3", 4097);
        send_vxlan(&outside, "198.51.100.2", 4097);
        assert_eq!(received("vxsecret", 1), 1, "VNI 4097 only through wg-guardtest");
        // A stranger through the tunnel link is a stranger still.
        send_vxlan(&outside, "198.51.100.3", 4097);
        assert_eq!(received("vxsecret", 1), 1, "VNI 4097 only from a peer");

        // The guard is replaced whole: without VNIs nothing is dropped any more.
        fw.set_vxlan_guard(VxlanGuard::default()).await.unwrap();
        send_vxlan(&outside, "192.0.2.2", 4096);
        send_vxlan(&outside, "192.0.2.3", 4097);
        assert_eq!(received("vxplain", 3), 3, "an empty guard drops nothing");
        assert_eq!(received("vxsecret", 2), 2, "an empty guard drops nothing");
        fw.delete_table().await.unwrap();
    });
}
