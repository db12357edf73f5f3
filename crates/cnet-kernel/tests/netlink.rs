//! Links, addresses, routes and sandboxes through real netlink, each test in its own network
//! namespace (see `common`). Needs root; `ip`, `nsenter` and `ping` (or busybox's) check the
//! results.

mod common;

use cnet_kernel::{Error, InterfaceConfig, Kernel, NetnsHandle, get_sysctl, netns};
use common::{hermetic, ping, run, run_in};
use ipnetwork::IpNetwork;

fn net(s: &str) -> IpNetwork {
    s.parse().unwrap()
}

/// `ip route` output has a line starting with `start` that also contains `also`.
fn assert_route(routes: &str, start: &str, also: &str) {
    assert!(
        routes.lines().any(|l| l.starts_with(start) && l.contains(also)),
        "no route {start:?} ({also:?}) in:\n{routes}"
    );
}

#[test]
fn ensure_bridge_is_idempotent_and_takes_addresses() {
    hermetic(|_dir| async move {
        let k = Kernel::connect().await.unwrap();
        assert!(k.link_by_name("cnt-br0").await.unwrap().is_none());

        let index = k.ensure_bridge("cnt-br0", Some(1400)).await.unwrap();
        let again = k.ensure_bridge("cnt-br0", Some(1400)).await.unwrap();
        assert_eq!(index, again);
        let br = k.link_by_name("cnt-br0").await.unwrap().unwrap();
        assert_eq!(br.index, index);
        assert_eq!(br.kind.as_deref(), Some("bridge"));
        assert_eq!(br.mtu, Some(1400));
        assert!(br.up);
        let mac = br.mac.expect("a bridge has a MAC");
        assert_eq!(mac[0] & 0x03, 0x02, "random locally administered unicast MAC");

        // Down and with another MTU: ensure_bridge puts both right again, keeping the index.
        run(&["ip", "link", "set", "cnt-br0", "down", "mtu", "1300"]);
        assert_eq!(k.ensure_bridge("cnt-br0", Some(1400)).await.unwrap(), index);
        let br = k.link_by_name("cnt-br0").await.unwrap().unwrap();
        assert!(br.up);
        assert_eq!(br.mtu, Some(1400));
        // No MTU given: the current one stays.
        assert_eq!(k.ensure_bridge("cnt-br0", None).await.unwrap(), index);
        assert_eq!(k.link_by_name("cnt-br0").await.unwrap().unwrap().mtu, Some(1400));

        for _ in 0..2 {
            k.add_address("cnt-br0", net("10.99.0.1/24")).await.unwrap();
            k.add_address("cnt-br0", net("fd00:99::1/64")).await.unwrap();
        }
        let addrs = k.addresses("cnt-br0").await.unwrap();
        assert!(addrs.contains(&net("10.99.0.1/24")), "{addrs:?}");
        assert!(addrs.contains(&net("fd00:99::1/64")), "{addrs:?}");
        let shown = run(&["ip", "-o", "addr", "show", "dev", "cnt-br0"]);
        assert!(shown.contains("inet 10.99.0.1/24"), "{shown}");
        assert!(shown.contains("inet6 fd00:99::1/64"), "{shown}");
        assert!(!shown.contains("tentative"), "IPv6 address added without DAD: {shown}");

        // Another link's addresses are not listed (filtered by index).
        assert!(k.addresses("lo").await.unwrap().iter().all(|a| a.ip().is_loopback()));

        assert!(k.links().await.unwrap().iter().any(|l| l.name == "cnt-br0"));
        assert!(matches!(k.add_address("nosuchlink0", net("10.98.0.1/24")).await, Err(Error::LinkNotFound { .. })));
        k.delete_link("cnt-br0").await.unwrap();
        assert!(k.link_by_name("cnt-br0").await.unwrap().is_none());
    });
}

#[test]
fn ensure_bridge_refuses_a_link_of_another_kind() {
    hermetic(|_dir| async move {
        let k = Kernel::connect().await.unwrap();
        k.ensure_bridge("cnt-br1", None).await.unwrap();
        k.create_veth_on_bridge("vethkind1", "cnpkind1", "cnt-br1", None).await.unwrap();
        let err = k.ensure_bridge("vethkind1", None).await.unwrap_err();
        assert!(matches!(err, Error::NotABridge { .. }), "{err}");
        assert!(err.to_string().contains("veth"), "{err}");
    });
}

#[test]
fn veth_on_bridge_moves_into_a_sandbox_that_reaches_the_bridge() {
    hermetic(|dir| async move {
        let k = Kernel::connect().await.unwrap();
        let br = k.ensure_bridge("cnt-br0", Some(1400)).await.unwrap();
        k.add_address("cnt-br0", net("10.99.0.1/24")).await.unwrap();
        k.add_address("cnt-br0", net("fd00:99::1/64")).await.unwrap();

        k.create_veth_on_bridge("vethtest1", "cnptest1", "cnt-br0", Some(1400)).await.unwrap();
        let host = k.link_by_name("vethtest1").await.unwrap().unwrap();
        assert_eq!(host.controller, Some(br));
        assert!(host.up);
        assert_eq!(host.mtu, Some(1400));
        assert_eq!(host.kind.as_deref(), Some("veth"));
        let peer = k.link_by_name("cnptest1").await.unwrap().unwrap();
        assert!(!peer.up, "the peer stays down until configured");
        assert_eq!(peer.mtu, Some(1400));
        assert_eq!(peer.controller, None);

        let sandbox = dir.join("sb1");
        netns::create(&sandbox).unwrap();
        assert!(netns::is_mounted(&sandbox));
        let cfg = InterfaceConfig {
            name: "eth0".into(),
            mac: Some([0x02, 0x42, 0x0a, 0x63, 0x00, 0x02]),
            mtu: Some(1400),
            addresses: vec![net("10.99.0.2/24"), net("fd00:99::2/64")],
            gateway_v4: Some("10.99.0.1".parse().unwrap()),
            gateway_v6: Some("fd00:99::1".parse().unwrap()),
            routes: vec![
                (net("10.100.0.0/16"), None),
                (net("10.101.0.0/16"), Some("10.99.0.254".parse().unwrap())),
                (net("fd00:101::/64"), Some("fd00:99::254".parse().unwrap())),
            ],
        };
        k.move_into_sandbox("cnptest1", &sandbox, &cfg).await.unwrap();
        assert!(k.link_by_name("cnptest1").await.unwrap().is_none(), "the peer left this namespace");

        // From inside, through our own handle ...
        let ns = NetnsHandle::open(&sandbox).await.unwrap();
        let links = ns.links().await.unwrap();
        let eth0 = links.iter().find(|l| l.name == "eth0").unwrap_or_else(|| panic!("{links:?}"));
        assert!(eth0.up);
        assert_eq!(eth0.mtu, Some(1400));
        assert_eq!(eth0.mac, cfg.mac);
        assert!(links.iter().any(|l| l.name == "lo" && l.up), "{links:?}");
        let addrs = ns.addresses("eth0").await.unwrap();
        assert!(addrs.contains(&net("10.99.0.2/24")), "{addrs:?}");
        assert!(addrs.contains(&net("fd00:99::2/64")), "{addrs:?}");
        let dsts = ns.route_destinations().await.unwrap();
        assert!(dsts.contains(&net("10.99.0.0/24")), "{dsts:?}");
        assert!(dsts.contains(&net("10.100.0.0/16")), "{dsts:?}");
        let dad = ns.run(|| get_sysctl("net.ipv6.conf.eth0.accept_dad")).await.unwrap().unwrap();
        assert_eq!(dad, "0");

        // ... and through the real tools.
        let shown = run_in(&sandbox, &["ip", "-o", "addr", "show", "dev", "eth0"]);
        assert!(shown.contains("inet 10.99.0.2/24"), "{shown}");
        assert!(shown.contains("inet6 fd00:99::2/64"), "{shown}");
        assert!(!shown.contains("tentative"), "{shown}");
        let link = run_in(&sandbox, &["ip", "-o", "link", "show", "dev", "eth0"]);
        assert!(link.contains("link/ether 02:42:0a:63:00:02"), "{link}");
        assert!(link.contains("mtu 1400"), "{link}");
        let routes = run_in(&sandbox, &["ip", "route", "show"]);
        assert_route(&routes, "default via 10.99.0.1 dev eth0", "");
        assert_route(&routes, "10.100.0.0/16 dev eth0", "scope link");
        assert_route(&routes, "10.101.0.0/16 via 10.99.0.254 dev eth0", "");
        let routes6 = run_in(&sandbox, &["ip", "-6", "route", "show"]);
        assert_route(&routes6, "default via fd00:99::1 dev eth0", "");
        assert_route(&routes6, "fd00:101::/64 via fd00:99::254 dev eth0", "");

        ping(&sandbox, &[], "10.99.0.1");
        ping(&sandbox, &[], "fd00:99::1");

        // Deleting the sandbox side removes the pair; deleting again is fine.
        ns.delete_link("eth0").await.unwrap();
        ns.delete_link("eth0").await.unwrap();
        assert!(ns.link_by_name("eth0").await.unwrap().is_none());
        assert!(k.link_by_name("vethtest1").await.unwrap().is_none());
        k.delete_link("vethtest1").await.unwrap();

        drop(ns);
        netns::remove(&sandbox).unwrap();
        assert!(!netns::is_mounted(&sandbox));
        assert!(!sandbox.exists());
        netns::remove(&sandbox).unwrap();
    });
}

#[test]
fn move_into_an_open_handle_and_reuse_it() {
    hermetic(|dir| async move {
        let k = Kernel::connect().await.unwrap();
        k.ensure_bridge("cnt-br2", None).await.unwrap();
        k.add_address("cnt-br2", net("10.97.0.1/24")).await.unwrap();
        let sandbox = dir.join("sb2");
        netns::create(&sandbox).unwrap();
        let ns = NetnsHandle::open(&sandbox).await.unwrap();
        for (i, host, peer) in [(0, "vethmulti0", "cnpmulti0"), (1, "vethmulti1", "cnpmulti1")] {
            k.create_veth_on_bridge(host, peer, "cnt-br2", None).await.unwrap();
            let cfg = InterfaceConfig {
                name: format!("eth{i}"),
                addresses: vec![net(&format!("10.97.0.{}/24", 10 + i))],
                ..Default::default()
            };
            k.move_into(peer, &ns, &cfg).await.unwrap();
        }
        let names: Vec<String> = ns.links().await.unwrap().into_iter().map(|l| l.name).collect();
        assert!(names.contains(&"eth0".to_string()) && names.contains(&"eth1".to_string()), "{names:?}");
        assert_eq!(ns.path(), sandbox.as_path());
        ping(&sandbox, &["-I", "eth1"], "10.97.0.1");
    });
}

#[test]
fn a_failed_configuration_leaves_nothing_in_the_sandbox() {
    hermetic(|dir| async move {
        let k = Kernel::connect().await.unwrap();
        k.ensure_bridge("cnt-br3", None).await.unwrap();
        k.create_veth_on_bridge("vethfail1", "cnpfail1", "cnt-br3", None).await.unwrap();
        let sandbox = dir.join("sb3");
        netns::create(&sandbox).unwrap();
        // The gateway is not on any subnet of the interface: the default route is refused, after
        // the rename and the address went through.
        let cfg = InterfaceConfig {
            name: "eth0".into(),
            addresses: vec![net("10.96.0.2/24")],
            gateway_v4: Some("192.0.2.1".parse().unwrap()),
            ..Default::default()
        };
        let err = k.move_into_sandbox("cnpfail1", &sandbox, &cfg).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("192.0.2.1") && msg.contains("eth0"), "{msg}");
        assert!(msg.contains(&sandbox.display().to_string()), "error names the sandbox: {msg}");

        let ns = NetnsHandle::open(&sandbox).await.unwrap();
        let names: Vec<String> = ns.links().await.unwrap().into_iter().map(|l| l.name).collect();
        assert_eq!(names, vec!["lo".to_string()]);
        // The pair went with it.
        assert!(k.link_by_name("vethfail1").await.unwrap().is_none());

        // A link that does not exist cannot be moved, and nothing appears in the sandbox.
        let err = k.move_into_sandbox("cnpnothere", &sandbox, &cfg).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert_eq!(ns.links().await.unwrap().len(), 1);

        // An invalid config is refused before anything moves.
        k.create_veth_on_bridge("vethfail2", "cnpfail2", "cnt-br3", None).await.unwrap();
        let bad = InterfaceConfig { name: "a/b".into(), ..Default::default() };
        assert!(matches!(k.move_into_sandbox("cnpfail2", &sandbox, &bad).await, Err(Error::Invalid { .. })));
        assert!(k.link_by_name("cnpfail2").await.unwrap().is_some());
    });
}

#[test]
fn deleting_a_missing_link_is_fine() {
    hermetic(|dir| async move {
        let k = Kernel::connect().await.unwrap();
        k.delete_link("cnt-missing0").await.unwrap();
        assert!(k.link_by_name("cnt-missing0").await.unwrap().is_none());
        let sandbox = dir.join("sb4");
        netns::create(&sandbox).unwrap();
        let ns = NetnsHandle::open(&sandbox).await.unwrap();
        ns.delete_link("eth7").await.unwrap();
        assert!(k.set_up("cnt-missing0").await.unwrap_err().is_not_found());
        assert!(k.create_veth_on_bridge("vethx", "cnpx", "cnt-nobridge", None).await.unwrap_err().is_not_found());
    });
}

#[test]
fn route_destinations_include_bridge_subnets() {
    hermetic(|_dir| async move {
        let k = Kernel::connect().await.unwrap();
        k.ensure_bridge("cnt-br5", None).await.unwrap();
        k.add_address("cnt-br5", net("10.95.0.1/24")).await.unwrap();
        k.add_address("cnt-br5", net("fd00:95::1/64")).await.unwrap();
        run(&["ip", "route", "add", "default", "via", "10.95.0.254"]);
        run(&["ip", "route", "add", "10.94.0.0/16", "via", "10.95.0.254"]);
        run(&["ip", "route", "add", "10.93.0.0/16", "via", "10.95.0.254", "table", "100"]);
        let dsts = k.route_destinations().await.unwrap();
        assert!(dsts.contains(&net("10.95.0.0/24")), "{dsts:?}");
        assert!(dsts.contains(&net("10.94.0.0/16")), "{dsts:?}");
        assert!(dsts.contains(&net("fd00:95::/64")), "{dsts:?}");
        assert!(!dsts.iter().any(|d| d.prefix() == 0), "no default routes: {dsts:?}");
        assert!(!dsts.contains(&net("10.93.0.0/16")), "main table only: {dsts:?}");
    });
}

#[test]
fn netns_create_remove_bind_and_run_in() {
    hermetic(|dir| async move {
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &str| std::fs::metadata(p).unwrap().ino();

        // Parent directories are created; a second create on a live namespace is refused.
        let path = dir.join("nested/deeper/ns1");
        netns::create(&path).unwrap();
        assert!(netns::is_mounted(&path));
        let err = netns::create(&path).unwrap_err();
        assert_eq!(err.errno(), Some(nix::libc::EEXIST), "{err}");
        assert!(netns::is_mounted(&path), "a refused create leaves the namespace alone");

        // run_in really runs inside it, where lo is up.
        let p = path.clone();
        let inside =
            netns::run_in(&path, move || std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()).unwrap();
        assert_eq!(inside, std::fs::metadata(&p).unwrap().ino());
        assert_ne!(inside, ino("/proc/thread-self/ns/net"));
        let lo = run_in(&path, &["ip", "-o", "link", "show", "lo"]);
        assert!(lo.contains("UP"), "{lo}");
        let ns = NetnsHandle::open(&path).await.unwrap();
        assert_eq!(ns.run(|| 7).await.unwrap(), 7);
        drop(ns);

        netns::remove(&path).unwrap();
        assert!(!netns::is_mounted(&path));
        assert!(!path.exists());
        netns::remove(&path).unwrap();
        assert!(netns::run_in(&path, || ()).is_err());
        assert!(NetnsHandle::open(&path).await.is_err());

        // Not a namespace: setns refuses, nothing runs.
        let plain = dir.join("plain");
        std::fs::write(&plain, b"").unwrap();
        assert!(!netns::is_mounted(&plain));
        assert!(netns::run_in(&plain, || ()).is_err());
        std::fs::remove_file(&plain).unwrap();

        // bind_current: this thread's (the daemon's) namespace, idempotent.
        let host = dir.join("host");
        netns::bind_current(&host).unwrap();
        netns::bind_current(&host).unwrap();
        assert!(netns::is_mounted(&host));
        assert_eq!(std::fs::metadata(&host).unwrap().ino(), ino("/proc/thread-self/ns/net"));
        // A path bound to another namespace is not silently re-pointed.
        let other = dir.join("other");
        netns::create(&other).unwrap();
        assert!(netns::bind_current(&other).is_err());
        netns::remove(&other).unwrap();
        netns::remove(&host).unwrap();
        assert!(!host.exists());
        // Only one mount was made by the two binds.
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&dir.display().to_string()), "{mounts}");
    });
}

#[test]
fn sysctls_follow_the_calling_thread() {
    hermetic(|dir| async move {
        // The test thread's own (fresh) namespace.
        cnet_kernel::set_sysctl("net.ipv4.ip_forward", "1").unwrap();
        assert_eq!(get_sysctl("net.ipv4.ip_forward").unwrap(), "1");
        assert_eq!(get_sysctl("net/ipv4/ip_forward").unwrap(), "1");

        // Interface names with dots.
        let k = Kernel::connect().await.unwrap();
        k.ensure_bridge("br.test", None).await.unwrap();
        cnet_kernel::set_interface_sysctl("ipv4", "br.test", "forwarding", "0").unwrap();
        assert_eq!(get_sysctl("net/ipv4/conf/br.test/forwarding").unwrap(), "0");
        cnet_kernel::set_interface_sysctl("ipv6", "br.test", "accept_dad", "0").unwrap();
        assert_eq!(get_sysctl("net/ipv6/conf/br.test/accept_dad").unwrap(), "0");

        // Another namespace keeps its own value. (A new namespace's IPv4 settings are inherited
        // from the host's, so set one there rather than assume its default.)
        let sandbox = dir.join("sb6");
        netns::create(&sandbox).unwrap();
        netns::run_in(&sandbox, || cnet_kernel::set_sysctl("net.ipv4.ip_forward", "0")).unwrap().unwrap();
        let inside = netns::run_in(&sandbox, || get_sysctl("net.ipv4.ip_forward")).unwrap().unwrap();
        assert_eq!(inside, "0");
        assert_eq!(get_sysctl("net.ipv4.ip_forward").unwrap(), "1", "the test's own namespace is untouched");

        let err = get_sysctl("net.ipv4.no_such_key").unwrap_err();
        assert!(err.to_string().contains("/proc/sys/net/ipv4/no_such_key"), "{err}");
        assert!(cnet_kernel::set_sysctl("net/../../etc/x", "1").is_err());
    });
}

#[test]
fn veth_created_in_the_sandbox_is_configured_there() {
    hermetic(|dir| async move {
        let k = Kernel::connect().await.unwrap();
        let br = k.ensure_bridge("cnt-br8", None).await.unwrap();
        k.add_address("cnt-br8", net("10.91.0.1/24")).await.unwrap();
        k.add_address("cnt-br8", net("fd00:91::1/64")).await.unwrap();
        let sandbox = dir.join("sb8");
        netns::create(&sandbox).unwrap();
        let ns = NetnsHandle::open(&sandbox).await.unwrap();
        let cfg = InterfaceConfig {
            name: "eth0".into(),
            mac: Some([0x02, 0x42, 0x0a, 0x5b, 0x00, 0x02]),
            mtu: Some(1450),
            addresses: vec![net("10.91.0.2/24"), net("fd00:91::2/64")],
            gateway_v4: Some("10.91.0.1".parse().unwrap()),
            gateway_v6: Some("fd00:91::1".parse().unwrap()),
            routes: vec![(net("10.90.0.0/16"), None)],
        };
        k.create_veth_in_sandbox("vethfast1", "cnt-br8", &ns, &cfg).await.unwrap();
        let host = k.link_by_name("vethfast1").await.unwrap().unwrap();
        assert_eq!(host.controller, Some(br));
        assert!(host.up);
        assert_eq!(host.mtu, Some(1450));
        let eth0 = ns.link_by_name("eth0").await.unwrap().unwrap();
        assert!(eth0.up);
        assert_eq!((eth0.mac, eth0.mtu), (cfg.mac, cfg.mtu));
        let shown = run_in(&sandbox, &["ip", "-o", "addr", "show", "dev", "eth0"]);
        assert!(shown.contains("inet 10.91.0.2/24") && shown.contains("inet6 fd00:91::2/64"), "{shown}");
        assert!(!shown.contains("tentative"), "{shown}");
        let routes = run_in(&sandbox, &["ip", "route", "show"]);
        assert_route(&routes, "default via 10.91.0.1 dev eth0", "");
        assert_route(&routes, "10.90.0.0/16 dev eth0", "scope link");
        assert_route(&run_in(&sandbox, &["ip", "-6", "route", "show"]), "default via fd00:91::1 dev eth0", "");
        ping(&sandbox, &[], "10.91.0.1");
        ping(&sandbox, &[], "fd00:91::1");

        // A second interface with a name already taken fails at creation, leaving nothing.
        let err = k.create_veth_in_sandbox("vethfast2", "cnt-br8", &ns, &cfg).await.unwrap_err();
        assert!(err.to_string().contains("vethfast2"), "{err}");
        assert!(k.link_by_name("vethfast2").await.unwrap().is_none());
        // A failure after creation deletes the pair: no host end, no sandbox end.
        let bad = InterfaceConfig {
            name: "eth1".into(),
            addresses: vec![net("10.91.0.3/24")],
            gateway_v4: Some("192.0.2.1".parse().unwrap()),
            ..Default::default()
        };
        assert!(k.create_veth_in_sandbox("vethfast3", "cnt-br8", &ns, &bad).await.is_err());
        assert!(k.link_by_name("vethfast3").await.unwrap().is_none());
        assert!(ns.link_by_name("eth1").await.unwrap().is_none());
    });
}
