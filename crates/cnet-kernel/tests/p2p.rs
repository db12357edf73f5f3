//! Point-to-point veth pairs whose lone end is parked in the daemon's namespace, through real
//! netlink, each test in its own network namespace (see `common`); `ip` checks the results.

mod common;

use cnet_kernel::{InterfaceConfig, Kernel, NetnsHandle, netns};
use common::{hermetic, ping, run, run_in};
use ipnetwork::IpNetwork;

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

fn cfg(name: &str, addr: &str, mac_last: u8) -> InterfaceConfig {
    InterfaceConfig {
        name: name.into(),
        mac: Some([0x02, 0x42, 0xc0, 0x00, 0x02, mac_last]),
        mtu: Some(1400),
        addresses: vec![net(addr)],
        ..Default::default()
    }
}

async fn sandbox(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, NetnsHandle) {
    let path = dir.join(name);
    netns::create(&path).unwrap();
    let ns = NetnsHandle::open(&path).await.unwrap();
    (path, ns)
}

fn link_line(ns: &std::path::Path, dev: &str) -> String {
    run_in(ns, &["ip", "-o", "link", "show", "dev", dev])
}

#[test]
fn a_pair_is_parked_taken_and_parked_again() {
    hermetic(|dir| async move {
        let k = Kernel::connect().await.unwrap();
        let (a_path, a) = sandbox(&dir, "a").await;
        let (b_path, b) = sandbox(&dir, "b").await;

        k.create_veth_with_parked_peer("p2ptest0", &a, &cfg("eth0", "192.0.2.0/31", 1)).await.unwrap();
        let parked = k.link_by_name("p2ptest0").await.unwrap().expect("the parked end is here");
        assert_eq!((parked.kind.as_deref(), parked.up, parked.mtu), (Some("veth"), false, Some(1400)));
        let eth0 = link_line(&a_path, "eth0");
        assert!(
            eth0.contains("NO-CARRIER") && eth0.contains("mtu 1400") && eth0.contains("02:42:c0:00:02:01"),
            "{eth0}"
        );

        k.unpark_into("p2ptest0", &b, &cfg("eth1", "192.0.2.1/31", 2)).await.unwrap();
        assert!(k.link_by_name("p2ptest0").await.unwrap().is_none(), "the parked end stayed");
        let eth1 = b.link_by_name("eth1").await.unwrap().expect("b's end is eth1");
        assert_eq!((eth1.up, eth1.mtu, eth1.mac), (true, Some(1400), Some([0x02, 0x42, 0xc0, 0x00, 0x02, 2])));
        ping(&a_path, &[], "192.0.2.1");
        ping(&b_path, &[], "192.0.2.0");

        // b's end goes back: down, without its address, named as parked; a loses carrier only.
        k.park(&b, "eth1", "p2ptest0").await.unwrap();
        assert!(b.link_by_name("eth1").await.unwrap().is_none());
        let parked = k.link_by_name("p2ptest0").await.unwrap().expect("parked again");
        assert!(!parked.up);
        assert!(k.addresses("p2ptest0").await.unwrap().is_empty(), "the parked end kept an address");
        let eth0 = link_line(&a_path, "eth0");
        assert!(eth0.contains("NO-CARRIER"), "{eth0}");
        assert_eq!(a.addresses("eth0").await.unwrap(), [net("192.0.2.0/31")]);

        // The end's name taken in the daemon's namespace (a host with its own eth0): it still
        // comes back, under the parked name.
        k.unpark_into("p2ptest0", &b, &cfg("eth0", "192.0.2.1/31", 2)).await.unwrap();
        run(&["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer"]);
        k.park(&b, "eth0", "p2ptest0").await.unwrap();
        assert!(k.link_by_name("p2ptest0").await.unwrap().is_some());

        // A configuration that fails once moved in (a route via an address of another family)
        // parks the end again: a keeps its link.
        let mut bad = cfg("eth0", "192.0.2.1/31", 2);
        bad.routes = vec![(net("10.0.0.0/8"), Some("192.0.2.77".parse().unwrap()))];
        bad.addresses.clear();
        assert!(k.unpark_into("p2ptest0", &b, &bad).await.is_err());
        assert!(k.link_by_name("p2ptest0").await.unwrap().is_some(), "a failed unpark did not park again");
        assert!(b.links().await.unwrap().iter().all(|l| l.name == "lo"), "a failed unpark left a link in b");
        assert!(a.link_by_name("eth0").await.unwrap().is_some(), "a lost its end");

        // Deleting the parked end deletes the pair.
        k.delete_link("p2ptest0").await.unwrap();
        assert!(a.link_by_name("eth0").await.unwrap().is_none());
    });
}
