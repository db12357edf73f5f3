//! VXLAN links, their FDB entries, permanent neighbours and the address-to-link lookup through
//! real netlink, each test in its own network namespace (see `common`); `ip` and `bridge` check
//! the results. The last test carries traffic between two "hosts" over a VXLAN.

mod common;

use std::{net::IpAddr, path::Path};

use cnet_kernel::{Error, InterfaceConfig, Kernel, NetnsHandle, VxlanSpec, format_mac, netns};
use common::{hermetic, ping, run, run_in};
use ipnetwork::IpNetwork;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

fn spec(name: &str, vni: u32, local: &str) -> VxlanSpec {
    VxlanSpec { name: name.into(), vni, local: ip(local), port: 4789, underlay: None, mtu: None }
}

/// An underlay link `ul0` (a veth: this kernel has no dummy links) holding `addr`.
fn underlay(addr: &str) {
    run(&["ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul0p"]);
    run(&["ip", "addr", "add", addr, "dev", "ul0"]);
    run(&["ip", "link", "set", "ul0", "up"]);
}

const MAC_A: [u8; 6] = [0x02, 0x42, 0x0a, 0x63, 0x00, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x42, 0x0a, 0x63, 0x00, 0x02];

#[test]
fn vxlan_is_created_down_without_learning_and_with_proxy() {
    hermetic(|_dir| async move {
        let k = Kernel::connect().await.unwrap();
        underlay("10.91.0.1/24");
        let s = VxlanSpec { underlay: Some("ul0".into()), mtu: Some(1400), ..spec("vx0", 4242, "10.91.0.1") };
        k.create_vxlan(&s).await.unwrap();
        let shown = run(&["ip", "-d", "link", "show", "dev", "vx0"]);
        // No remote or group (ip prints them between the id and local).
        for want in ["vxlan id 4242 local 10.91.0.1 dev ul0 ", "dstport 4789 ", "nolearning ", "proxy ", "mtu 1400 "] {
            assert!(shown.contains(want), "no {want:?} in:\n{shown}");
        }
        for unwanted in ["l2miss", "l3miss", ",UP"] {
            assert!(!shown.contains(unwanted), "{unwanted:?} in:\n{shown}");
        }
        let link = k.link_by_name("vx0").await.unwrap().unwrap();
        assert_eq!((link.kind.as_deref(), link.up, link.mtu), (Some("vxlan"), false, Some(1400)));
        assert_eq!(k.vxlan_vni("vx0").await.unwrap(), Some(4242));
        assert_eq!(k.vxlan_vni("ul0").await.unwrap(), None);
        assert_eq!(k.vxlan_vni("nosuch0").await.unwrap(), None);

        // Again: fine, whatever else differs; the link is the same one.
        k.create_vxlan(&s).await.unwrap();
        k.create_vxlan(&spec("vx0", 4242, "10.91.0.1")).await.unwrap();
        assert_eq!(k.link_by_name("vx0").await.unwrap().unwrap().index, link.index);

        // The name taken by a vxlan of another VNI, or by a link of another kind.
        let err = k.create_vxlan(&spec("vx0", 7, "10.91.0.1")).await.unwrap_err();
        assert!(matches!(err, Error::LinkConflict { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "link \"vx0\" exists but is a vxlan link with VNI 4242, not a vxlan link with VNI 7"
        );
        let err = k.create_vxlan(&spec("ul0", 7, "10.91.0.1")).await.unwrap_err();
        assert_eq!(err.to_string(), "link \"ul0\" exists but is a veth link, not a vxlan link with VNI 7");
        assert_eq!(k.vxlan_vni("vx0").await.unwrap(), Some(4242));

        // The VNI and port taken under another name: the kernel's EEXIST, with the request named.
        let err = k.create_vxlan(&spec("vx1", 4242, "10.91.0.1")).await.unwrap_err();
        assert_eq!(err.errno(), Some(nix::libc::EEXIST), "{err}");
        assert!(err.to_string().contains("create vxlan vx1 (VNI 4242"), "{err}");
        assert!(k.link_by_name("vx1").await.unwrap().is_none());
        // Same VNI on another port is another VXLAN segment.
        k.create_vxlan(&VxlanSpec { port: 4790, ..spec("vx1", 4242, "10.91.0.1") }).await.unwrap();
        assert!(run(&["ip", "-d", "link", "show", "dev", "vx1"]).contains("dstport 4790 "));

        // Refused before asking the kernel, or for a missing underlay.
        let err = k.create_vxlan(&spec("vx2", 1 << 24, "10.91.0.1")).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
        let err = k.create_vxlan(&VxlanSpec { port: 0, ..spec("vx2", 1, "10.91.0.1") }).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
        let missing = VxlanSpec { underlay: Some("nosuch0".into()), ..spec("vx2", 1, "10.91.0.1") };
        let err = k.create_vxlan(&missing).await.unwrap_err();
        assert!(err.is_not_found() && err.to_string().contains("nosuch0"), "{err}");
        assert!(k.link_by_name("vx2").await.unwrap().is_none());

        // An IPv6 VTEP address.
        k.create_vxlan(&spec("vx6", 6, "fd00:91::1")).await.unwrap();
        let shown = run(&["ip", "-d", "link", "show", "dev", "vx6"]);
        assert!(shown.contains("vxlan id 6 ") && shown.contains("local fd00:91::1 "), "{shown}");
    });
}

#[test]
fn fdb_entries_are_added_replaced_listed_and_deleted() {
    hermetic(|_dir| async move {
        let k = Kernel::connect().await.unwrap();
        k.create_vxlan(&spec("vx0", 42, "10.91.0.1")).await.unwrap();
        // As a bridge port, the dump also has the bridge's entries for the port (no destination).
        k.ensure_bridge("br0", None).await.unwrap();
        k.set_controller("vx0", "br0").await.unwrap();
        assert_eq!(k.vxlan_fdb_entries("vx0").await.unwrap(), vec![]);

        k.add_vxlan_fdb("vx0", MAC_A, ip("10.91.0.2")).await.unwrap();
        k.add_vxlan_fdb("vx0", MAC_A, ip("10.91.0.2")).await.unwrap();
        k.add_vxlan_fdb("vx0", MAC_B, ip("10.91.0.3")).await.unwrap();
        let mut entries = k.vxlan_fdb_entries("vx0").await.unwrap();
        entries.sort();
        assert_eq!(entries, vec![(MAC_A, ip("10.91.0.2")), (MAC_B, ip("10.91.0.3"))]);
        let shown = run(&["bridge", "fdb", "show", "dev", "vx0"]);
        for want in ["02:42:0a:63:00:01 dst 10.91.0.2 self permanent", "02:42:0a:63:00:02 dst 10.91.0.3 self permanent"]
        {
            assert!(shown.contains(want), "no {want:?} in:\n{shown}");
        }

        // Replacing points the MAC elsewhere (the peer moved).
        k.add_vxlan_fdb("vx0", MAC_B, ip("10.91.0.4")).await.unwrap();
        let mut entries = k.vxlan_fdb_entries("vx0").await.unwrap();
        entries.sort();
        assert_eq!(entries, vec![(MAC_A, ip("10.91.0.2")), (MAC_B, ip("10.91.0.4"))]);
        assert!(!run(&["bridge", "fdb", "show", "dev", "vx0"]).contains("10.91.0.3"));

        // Entries of other devices are not listed.
        k.create_vxlan(&spec("vx1", 43, "10.91.0.1")).await.unwrap();
        k.add_vxlan_fdb("vx1", MAC_A, ip("10.91.0.9")).await.unwrap();
        assert_eq!(k.vxlan_fdb_entries("vx1").await.unwrap(), vec![(MAC_A, ip("10.91.0.9"))]);
        assert_eq!(k.vxlan_fdb_entries("vx0").await.unwrap().len(), 2);

        k.del_vxlan_fdb("vx0", MAC_B, ip("10.91.0.4")).await.unwrap();
        assert_eq!(k.vxlan_fdb_entries("vx0").await.unwrap(), vec![(MAC_A, ip("10.91.0.2"))]);
        let shown = run(&["bridge", "fdb", "show", "dev", "vx0"]);
        assert!(!shown.contains("02:42:0a:63:00:02"), "{shown}");
        // Missing entries (by MAC or by destination) and missing devices are fine.
        k.del_vxlan_fdb("vx0", MAC_B, ip("10.91.0.4")).await.unwrap();
        k.del_vxlan_fdb("vx0", MAC_A, ip("10.91.0.7")).await.unwrap();
        k.del_vxlan_fdb("nosuch0", MAC_A, ip("10.91.0.2")).await.unwrap();
        assert_eq!(k.vxlan_fdb_entries("vx0").await.unwrap(), vec![(MAC_A, ip("10.91.0.2"))]);

        let err = k.add_vxlan_fdb("nosuch0", MAC_A, ip("10.91.0.2")).await.unwrap_err();
        assert!(err.is_not_found() && err.to_string().contains("nosuch0"), "{err}");
        let err = k.vxlan_fdb_entries("nosuch0").await.unwrap_err();
        assert!(err.is_not_found(), "{err}");

        // IPv6 VTEPs.
        k.create_vxlan(&spec("vx6", 6, "fd00:91::1")).await.unwrap();
        k.add_vxlan_fdb("vx6", MAC_B, ip("fd00:91::2")).await.unwrap();
        assert_eq!(k.vxlan_fdb_entries("vx6").await.unwrap(), vec![(MAC_B, ip("fd00:91::2"))]);
        assert!(
            run(&["bridge", "fdb", "show", "dev", "vx6"]).contains("02:42:0a:63:00:02 dst fd00:91::2 self permanent")
        );
        k.del_vxlan_fdb("vx6", MAC_B, ip("fd00:91::2")).await.unwrap();
        assert_eq!(k.vxlan_fdb_entries("vx6").await.unwrap(), vec![]);
    });
}

#[test]
fn permanent_neighbours_are_added_replaced_listed_and_deleted() {
    hermetic(|_dir| async move {
        let k = Kernel::connect().await.unwrap();
        k.create_vxlan(&spec("vx0", 42, "10.91.0.1")).await.unwrap();
        k.create_vxlan(&spec("vx1", 43, "10.91.0.1")).await.unwrap();
        assert_eq!(k.permanent_neighbours("vx0").await.unwrap(), vec![]);

        k.add_neighbour("vx0", ip("10.99.0.2"), MAC_A).await.unwrap();
        k.add_neighbour("vx0", ip("10.99.0.2"), MAC_A).await.unwrap();
        k.add_neighbour("vx0", ip("fd00:99::2"), MAC_A).await.unwrap();
        k.add_neighbour("vx0", ip("10.99.0.3"), MAC_A).await.unwrap();
        // Replaced: the address moved to another MAC.
        k.add_neighbour("vx0", ip("10.99.0.3"), MAC_B).await.unwrap();
        // Not listed: another device's entries, and entries that are not permanent.
        k.add_neighbour("vx1", ip("10.99.0.4"), MAC_B).await.unwrap();
        run(&["ip", "neigh", "add", "10.99.0.5", "lladdr", &format_mac(&MAC_B), "dev", "vx0", "nud", "reachable"]);

        let mut neighbours = k.permanent_neighbours("vx0").await.unwrap();
        neighbours.sort();
        assert_eq!(neighbours, vec![(ip("10.99.0.2"), MAC_A), (ip("10.99.0.3"), MAC_B), (ip("fd00:99::2"), MAC_A)]);
        assert_eq!(k.permanent_neighbours("vx1").await.unwrap(), vec![(ip("10.99.0.4"), MAC_B)]);
        let shown = run(&["ip", "neigh", "show", "dev", "vx0"]);
        for want in [
            "10.99.0.2 lladdr 02:42:0a:63:00:01 PERMANENT",
            "10.99.0.3 lladdr 02:42:0a:63:00:02 PERMANENT",
            "fd00:99::2 lladdr 02:42:0a:63:00:01 PERMANENT",
        ] {
            assert!(shown.contains(want), "no {want:?} in:\n{shown}");
        }

        k.del_neighbour("vx0", ip("10.99.0.2")).await.unwrap();
        k.del_neighbour("vx0", ip("fd00:99::2")).await.unwrap();
        assert_eq!(k.permanent_neighbours("vx0").await.unwrap(), vec![(ip("10.99.0.3"), MAC_B)]);
        let shown = run(&["ip", "neigh", "show", "dev", "vx0"]);
        assert!(!shown.contains("10.99.0.2 ") && !shown.contains("fd00:99::2"), "{shown}");
        // Missing entries and devices are fine.
        k.del_neighbour("vx0", ip("10.99.0.2")).await.unwrap();
        k.del_neighbour("vx0", ip("fd00:99::2")).await.unwrap();
        k.del_neighbour("nosuch0", ip("10.99.0.3")).await.unwrap();

        let err = k.add_neighbour("nosuch0", ip("10.99.0.2"), MAC_A).await.unwrap_err();
        assert!(err.is_not_found() && err.to_string().contains("nosuch0"), "{err}");
        assert!(k.permanent_neighbours("nosuch0").await.unwrap_err().is_not_found());
    });
}

#[test]
fn link_with_address_finds_the_holder() {
    hermetic(|_dir| async move {
        let k = Kernel::connect().await.unwrap();
        underlay("10.91.0.1/24");
        run(&["ip", "link", "set", "ul0", "mtu", "1400"]);
        run(&["ip", "addr", "add", "10.91.1.1/24", "dev", "ul0"]);
        run(&["ip", "addr", "add", "fd00:91::1/64", "dev", "ul0", "nodad"]);
        let ul0 = k.link_by_name("ul0").await.unwrap().unwrap();
        for addr in ["10.91.0.1", "10.91.1.1", "fd00:91::1"] {
            let found = k.link_with_address(ip(addr)).await.unwrap();
            assert_eq!(found.as_ref(), Some(&ul0), "{addr}");
        }
        assert_eq!(ul0.mtu, Some(1400));
        assert_eq!(k.link_with_address(ip("127.0.0.1")).await.unwrap().unwrap().name, "lo");
        assert_eq!(k.link_with_address(ip("::1")).await.unwrap().unwrap().name, "lo");
        // In the subnet is not on the link; nor is the peer of a point-to-point address.
        for addr in ["10.91.0.2", "10.91.1.0", "fd00:91::2", "192.0.2.1"] {
            assert_eq!(k.link_with_address(ip(addr)).await.unwrap(), None, "{addr}");
        }
        run(&["ip", "addr", "add", "10.93.0.1", "peer", "10.93.0.2", "dev", "ul0p"]);
        assert_eq!(k.link_with_address(ip("10.93.0.1")).await.unwrap().unwrap().name, "ul0p");
        assert_eq!(k.link_with_address(ip("10.93.0.2")).await.unwrap(), None);
    });
}

/// One overlay host: in the namespace of `k`, bridge `br0` + vxlan `vx0` (VNI 4242, over `ul0`
/// holding `vtep`) + a veth into the container namespace at `container`, whose `eth0` has
/// 10.99.0.`n`/24 and MAC 02:42:0a:63:00:0`n`. Then the peer (`peer_n`, behind `peer_vtep`) is
/// programmed in: an FDB entry and a neighbour.
async fn overlay_host(k: &Kernel, n: u8, vtep: &str, container: &Path, peer_n: u8, peer_vtep: &str) {
    let link = k.link_with_address(ip(vtep)).await.unwrap().expect("the VTEP address is on ul0");
    assert_eq!(link.name, "ul0");
    let mtu = link.mtu.unwrap() - 50;
    k.ensure_bridge("br0", Some(mtu)).await.unwrap();
    let s = VxlanSpec {
        name: "vx0".into(),
        vni: 4242,
        local: ip(vtep),
        port: 4789,
        underlay: Some(link.name.clone()),
        mtu: Some(mtu),
    };
    k.create_vxlan(&s).await.unwrap();
    k.set_controller("vx0", "br0").await.unwrap();
    netns::create(container).unwrap();
    let ns = NetnsHandle::open(container).await.unwrap();
    let cfg = InterfaceConfig {
        name: "eth0".into(),
        mac: Some([0x02, 0x42, 0x0a, 0x63, 0x00, n]),
        mtu: Some(mtu),
        addresses: vec![net(&format!("10.99.0.{n}/24"))],
        ..Default::default()
    };
    k.create_veth_in_sandbox("veth0", "br0", &ns, &cfg).await.unwrap();
    let peer_mac = [0x02, 0x42, 0x0a, 0x63, 0x00, peer_n];
    k.add_vxlan_fdb("vx0", peer_mac, ip(peer_vtep)).await.unwrap();
    k.add_neighbour("vx0", ip(&format!("10.99.0.{peer_n}")), peer_mac).await.unwrap();
}

#[test]
fn containers_on_two_hosts_talk_over_the_vxlan() {
    hermetic(|dir| async move {
        // Host A is the test's namespace, host B another; a veth pair is the underlay.
        let host_b = dir.join("host-b");
        netns::create(&host_b).unwrap();
        let b = host_b.display().to_string();
        run(&["ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", &b]);
        run(&["ip", "addr", "add", "10.91.0.1/24", "dev", "ul0"]);
        run(&["ip", "link", "set", "ul0", "up"]);
        run_in(&host_b, &["ip", "addr", "add", "10.91.0.2/24", "dev", "ul0"]);
        run_in(&host_b, &["ip", "link", "set", "ul0", "up"]);
        run_in(&host_b, &["ip", "link", "set", "lo", "up"]);

        let k = Kernel::connect().await.unwrap();
        let ca = dir.join("ca");
        overlay_host(&k, 1, "10.91.0.1", &ca, 2, "10.91.0.2").await;
        // Host B's own Kernel lives on a thread in B, with a runtime of its own.
        let cb = dir.join("cb");
        let cb2 = cb.clone();
        netns::run_in(&host_b, move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let kb = Kernel::connect().await.unwrap();
                overlay_host(&kb, 2, "10.91.0.2", &cb2, 1, "10.91.0.1").await;
            });
        })
        .unwrap();

        ping(&ca, &[], "10.99.0.2");
        ping(&cb, &[], "10.99.0.1");
        // ARP was answered by the local proxy, from the neighbour entry.
        let arp = run_in(&ca, &["ip", "neigh", "show", "10.99.0.2"]);
        assert!(arp.contains("lladdr 02:42:0a:63:00:02"), "{arp}");
        // Nothing was learnt: the vxlan FDB holds just what was programmed.
        assert_eq!(k.vxlan_fdb_entries("vx0").await.unwrap(), vec![(MAC_B, ip("10.91.0.2"))]);

        // Without the FDB entry the peer is unreachable (no default remote, no flooding).
        k.del_vxlan_fdb("vx0", MAC_B, ip("10.91.0.2")).await.unwrap();
        let shown = run(&["bridge", "fdb", "show", "dev", "vx0"]);
        assert!(!shown.contains("dst 10.91.0.2"), "{shown}");
        let lost = std::panic::catch_unwind(|| ping(&ca, &[], "10.99.0.2"));
        assert!(lost.is_err(), "ping went through without an FDB entry");
        k.add_vxlan_fdb("vx0", MAC_B, ip("10.91.0.2")).await.unwrap();
        ping(&ca, &[], "10.99.0.2");
    });
}

#[test]
fn a_host_leg_macvlan_on_the_vxlan_is_made_once() {
    hermetic(|_dir| async move {
        let k = Kernel::connect().await.unwrap();
        underlay("10.91.0.1/24");
        k.create_vxlan(&spec("vx0", 4242, "10.91.0.1")).await.unwrap();
        k.set_up("vx0").await.unwrap();
        k.ensure_macvlan("ov0", "vx0", cnet_kernel::MacVlanMode::Bridge, Some(1400)).await.unwrap();
        let shown = run(&["ip", "-d", "link", "show", "dev", "ov0"]);
        for want in ["ov0@vx0", "mtu 1400 ", "macvlan mode bridge", ",UP"] {
            assert!(shown.contains(want), "no {want:?} in:\n{shown}");
        }
        // Again: kept as it is.
        k.ensure_macvlan("ov0", "vx0", cnet_kernel::MacVlanMode::Bridge, Some(1400)).await.unwrap();
        let e = k.ensure_macvlan("ov1", "nosuch0", cnet_kernel::MacVlanMode::Bridge, None).await.unwrap_err();
        assert!(e.to_string().contains("nosuch0"), "{e}");
        // The leg goes with its parent.
        k.delete_link("vx0").await.unwrap();
        assert!(k.link_by_name("ov0").await.unwrap().is_none());
    });
}
