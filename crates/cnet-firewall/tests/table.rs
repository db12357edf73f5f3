//! The table as nft lists it after each operation (root; each test in its own network namespace).

mod common;

use cnet_firewall::{Error, Firewall, NetworkRules, PortRule, Proto};
use common::{chains, elems, in_netns, listing, map_entries, net, rules, sh, values};
use serde_json::{Value, json};

const TABLE: &str = "cnettest";

fn web() -> NetworkRules {
    net(
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "br-0123456789ab",
        &["172.18.0.0/16", "fd00:18::/64"],
    )
}

/// Internal, icc=false.
fn backend() -> NetworkRules {
    NetworkRules { internal: true, icc: false, ..net("fedcba9876543210", "br-fedcba987654", &["172.19.0.0/16"]) }
}

fn pair(a: &str, b: &str) -> Value {
    json!({ "concat": [a, b] })
}

fn pfx(addr: &str, len: u32) -> Value {
    json!({ "prefix": { "addr": addr, "len": len } })
}

fn own(addr: &str, len: u32, br: &str) -> Value {
    json!({ "concat": [pfx(addr, len), br] })
}

/// The elements that `web` and `backend` together must produce, set by set.
fn assert_web_and_backend(l: &Value) {
    let (w, b) = ("br-0123456789ab", "br-fedcba987654");
    assert_eq!(values(l, "bridges"), vec![json!(w), json!(b)]);
    assert_eq!(values(l, "bridge_self"), vec![pair(w, w), pair(b, b)]);
    assert_eq!(values(l, "icc_off"), vec![pair(b, b)]);
    assert_eq!(values(l, "internal"), vec![json!(b)]);
    // backend is internal, so only web is masqueraded.
    assert_eq!(values(l, "masq4"), vec![pfx("172.18.0.0", 16)]);
    assert_eq!(values(l, "masq4_own"), vec![own("172.18.0.0", 16, w)]);
    assert_eq!(values(l, "masq6"), vec![pfx("fd00:18::", 64)]);
    assert_eq!(values(l, "masq6_own"), vec![own("fd00:18::", 64, w)]);
    // Published ports reached from their own bridge: never on internal networks.
    assert_eq!(values(l, "hairpin4"), vec![own("172.18.0.0", 16, w)]);
    assert_eq!(values(l, "hairpin6"), vec![own("fd00:18::", 64, w)]);
}

fn assert_base_layout(l: &Value) {
    assert_eq!(
        chains(l),
        [
            "forward",
            "output",
            "postrouting",
            "prerouting",
            "raw_output",
            "raw_prerouting",
            "vxlan_plaintext",
            "vxlan_strangers"
        ]
    );
    assert_eq!(rules(l, "raw_prerouting").len(), 6, "{l:#}");
    assert_eq!(rules(l, "raw_output").len(), 1, "{l:#}");
    assert_eq!(rules(l, "forward").len(), 15, "{l:#}");
    assert_eq!(rules(l, "postrouting").len(), 5, "{l:#}");
    assert_eq!(rules(l, "prerouting").len(), 4, "{l:#}");
    assert_eq!(rules(l, "output").len(), 4, "{l:#}");
}

#[test]
fn ensure_table_creates_once_and_never_flushes() {
    in_netns(|| async {
        let fw = Firewall::new(TABLE);
        assert_eq!(fw.table(), TABLE);
        assert!(!fw.table_exists().await.unwrap());
        fw.ensure_table().await.unwrap();
        assert!(fw.table_exists().await.unwrap());
        let empty = listing(&fw).await;
        assert_base_layout(&empty);

        fw.ensure_table().await.unwrap();
        assert_eq!(listing(&fw).await, empty);

        fw.add_network(&web()).await.unwrap();
        let with_web = listing(&fw).await;
        fw.ensure_table().await.unwrap();
        assert_eq!(listing(&fw).await, with_web, "ensure_table must not flush");
        assert_base_layout(&with_web);
    });
}

#[test]
fn add_two_networks_then_list_the_rules() {
    in_netns(|| async {
        let fw = Firewall::new(TABLE);
        fw.ensure_table().await.unwrap();
        fw.add_network(&web()).await.unwrap();
        fw.add_network(&backend()).await.unwrap();
        let l = listing(&fw).await;
        assert_base_layout(&l);
        assert_web_and_backend(&l);
        // Every element is labelled with its network's short id.
        for (value, comment) in elems(&l, "bridges") {
            let expected = if value == "br-0123456789ab" { "0123456789ab" } else { "fedcba987654" };
            assert_eq!(comment.as_deref(), Some(expected));
        }

        // The rules as nft prints them.
        let text = sh(&format!("nft list chain inet {TABLE} forward"));
        for line in [
            "iifname . oifname @icc_off drop",
            "iifname . oifname @bridge_self accept",
            "iifname @internal drop",
            "oifname @internal drop",
            "iifname @bridges oifname @bridges drop",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        let text = sh(&format!("nft list chain inet {TABLE} postrouting"));
        for line in [
            "ip saddr @masq4 ip saddr . oifname != @masq4_own masquerade",
            "ip6 saddr @masq6 ip6 saddr . oifname != @masq6_own masquerade",
            "ct status dnat ip saddr . oifname @hairpin4 masquerade",
            "ct status dnat ip6 saddr . oifname @hairpin6 masquerade",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    });
}

#[test]
fn adding_twice_duplicates_nothing() {
    in_netns(|| async {
        let fw = Firewall::new(TABLE);
        fw.ensure_table().await.unwrap();
        fw.add_network(&web()).await.unwrap();
        fw.add_network(&backend()).await.unwrap();
        let once = listing(&fw).await;
        fw.add_network(&web()).await.unwrap();
        fw.add_network(&backend()).await.unwrap();
        assert_eq!(listing(&fw).await, once);
    });
}

#[test]
fn removing_one_network_keeps_the_other() {
    in_netns(|| async {
        let fw = Firewall::new(TABLE);
        fw.ensure_table().await.unwrap();
        fw.add_network(&backend()).await.unwrap();
        let backend_only = listing(&fw).await;
        fw.add_network(&web()).await.unwrap();

        fw.remove_network(&web()).await.unwrap();
        let l = listing(&fw).await;
        assert_eq!(l, backend_only);
        assert_eq!(values(&l, "bridges"), vec![json!("br-fedcba987654")]);
        assert!(values(&l, "masq4").is_empty());
        assert!(values(&l, "masq6_own").is_empty());
        assert_base_layout(&l);

        // Missing is no error, and changes nothing.
        fw.remove_network(&web()).await.unwrap();
        assert_eq!(listing(&fw).await, backend_only);

        fw.remove_network(&backend()).await.unwrap();
        let empty = listing(&fw).await;
        for set in ["bridges", "bridge_self", "icc_off", "internal", "masq4", "masq4_own", "hairpin4", "hairpin6"] {
            assert!(values(&empty, set).is_empty(), "{set} not empty: {empty:#}");
        }
        assert_base_layout(&empty);
    });
}

/// Removals deferred, then the same networks made again: nft applies the removals and the
/// addition in one transaction (an element added, deleted and added again), and the table ends
/// exactly as if each had been applied alone.
#[test]
fn deferred_removals_then_the_same_network_again() {
    in_netns(|| async {
        let fw = Firewall::new(TABLE);
        fw.ensure_table().await.unwrap();
        fw.add_network(&backend()).await.unwrap();
        let backend_only = listing(&fw).await;
        fw.add_network(&web()).await.unwrap();
        let both = listing(&fw).await;
        assert_web_and_backend(&both);

        fw.remove_network_later(&web()).await.unwrap();
        fw.remove_network_later(&backend()).await.unwrap();
        assert_eq!(fw.pending(), 2);
        fw.add_network(&web()).await.unwrap();
        assert_eq!(fw.pending(), 0);
        let l = listing(&fw).await;
        assert_eq!(values(&l, "bridges"), vec![json!("br-0123456789ab")], "{l:#}");
        assert!(values(&l, "internal").is_empty(), "{l:#}");

        fw.remove_network_later(&web()).await.unwrap();
        fw.add_network(&backend()).await.unwrap();
        assert_eq!(listing(&fw).await, backend_only);
        fw.remove_network_later(&backend()).await.unwrap();
        fw.flush().await.unwrap();
        let empty = listing(&fw).await;
        for set in ["bridges", "bridge_self", "icc_off", "internal", "masq4", "masq4_own"] {
            assert!(values(&empty, set).is_empty(), "{set} not empty: {empty:#}");
        }
    });
}

#[test]
fn sync_after_delete_table_restores_exactly() {
    in_netns(|| async {
        let fw = Firewall::new(TABLE);
        fw.ensure_table().await.unwrap();
        fw.add_network(&web()).await.unwrap();
        fw.add_network(&backend()).await.unwrap();
        let incremental = listing(&fw).await;

        fw.delete_table().await.unwrap();
        assert!(!fw.table_exists().await.unwrap());
        fw.delete_table().await.unwrap(); // missing is no error
        // Without the table, adding fails loudly and removing is a no-op.
        let err = fw.add_network(&web()).await.unwrap_err();
        assert!(matches!(err, Error::TableMissing { .. }), "{err:?}");
        fw.remove_network(&web()).await.unwrap();
        assert!(!fw.table_exists().await.unwrap());

        fw.sync(&[web(), backend()], &[]).await.unwrap();
        let synced = listing(&fw).await;
        assert_eq!(synced, incremental, "sync must equal the incremental adds");
        assert_web_and_backend(&synced);

        fw.sync(&[web(), backend()], &[]).await.unwrap();
        assert_eq!(listing(&fw).await, synced, "sync twice must give the same table");
    });
}

#[test]
fn sync_leaves_no_leftovers() {
    in_netns(|| async {
        let fw = Firewall::new(TABLE);
        fw.ensure_table().await.unwrap();
        fw.add_network(&backend()).await.unwrap();
        let backend_only = listing(&fw).await;
        fw.add_network(&web()).await.unwrap();
        // Someone added a rule by hand: sync removes it too.
        sh(&format!("nft add rule inet {TABLE} forward iifname lo drop"));

        fw.sync(&[backend()], &[]).await.unwrap();
        assert_eq!(listing(&fw).await, backend_only);

        fw.sync(&[], &[]).await.unwrap();
        let empty = listing(&fw).await;
        assert!(values(&empty, "bridges").is_empty());
        assert_base_layout(&empty);
    });
}

#[test]
fn never_touches_other_tables() {
    in_netns(|| async {
        // Another program's tables, one of them with a concat-data map, which the nftables crate
        // cannot parse in `list ruleset` output: cnet must never need to list it.
        sh("nft -f - <<'EOF'
table inet other {
    map m { type ipv4_addr . inet_service : ipv4_addr . inet_service; }
    chain forward { type filter hook forward priority 10; policy accept; iifname lo counter accept; }
}
table ip cnettest {
    chain c { }
}
EOF");
        let before = sh("nft list table inet other; nft list table ip cnettest");

        let fw = Firewall::new(TABLE);
        fw.ensure_table().await.unwrap();
        fw.add_network(&web()).await.unwrap();
        fw.sync(&[web(), backend()], &[]).await.unwrap();
        fw.remove_network(&web()).await.unwrap();
        assert!(fw.table_exists().await.unwrap());
        fw.delete_table().await.unwrap();
        assert!(!fw.table_exists().await.unwrap());

        assert_eq!(sh("nft list table inet other; nft list table ip cnettest"), before);
    });
}

#[test]
fn invalid_rules_change_nothing() {
    in_netns(|| async {
        let fw = Firewall::new(TABLE);
        fw.ensure_table().await.unwrap();
        fw.add_network(&web()).await.unwrap();
        let before = listing(&fw).await;

        let wildcard = NetworkRules { bridge: "br-*".into(), ..backend() };
        let err = fw.add_network(&wildcard).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");

        // Two masqueraded networks with overlapping subnets cannot be synced.
        let overlapping = net("aaaa", "br-aaaa", &["172.18.128.0/17"]);
        let err = fw.sync(&[web(), overlapping], &[]).await.unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");

        assert_eq!(listing(&fw).await, before);
    });
}

fn port(proto: Proto, host: Option<&str>, host_port: u16, dest: &str, dest_port: u16) -> PortRule {
    PortRule {
        proto,
        host_addr: host.map(|h| h.parse().unwrap()),
        host_port,
        dest: dest.parse().unwrap(),
        dest_port,
        owner: "web".into(),
        routed: false,
    }
}

#[test]
fn ports_are_map_elements_and_survive_a_deleted_table() {
    in_netns(|| async {
        let fw = Firewall::new(TABLE);
        fw.ensure_table().await.unwrap();
        fw.add_network(&web()).await.unwrap();
        let no_ports = listing(&fw).await;
        let wild = port(Proto::Tcp, None, 8080, "172.18.0.2", 80);
        let local = port(Proto::Udp, Some("127.0.0.1"), 5353, "172.18.0.2", 53);
        let six = port(Proto::Tcp, Some("::1"), 8080, "fd00:18::2", 80);
        fw.add_ports(&[wild.clone(), local.clone(), six.clone()]).await.unwrap();
        let l = listing(&fw).await;
        let c = |v: Value| json!({ "concat": v });
        let web = Some("web".to_string());
        assert_eq!(
            map_entries(&l, "dnat4_any_addr"),
            vec![(c(json!(["tcp", 8080])), json!("172.18.0.2"), web.clone())]
        );
        assert_eq!(map_entries(&l, "dnat4_any_port"), vec![(c(json!(["tcp", 8080])), json!(80), web.clone())]);
        assert_eq!(
            map_entries(&l, "dnat4_addr"),
            vec![(c(json!(["127.0.0.1", "udp", 5353])), json!("172.18.0.2"), web.clone())]
        );
        assert_eq!(map_entries(&l, "dnat4_port"), vec![(c(json!(["127.0.0.1", "udp", 5353])), json!(53), web.clone())]);
        assert_eq!(map_entries(&l, "dnat6_addr"), vec![(c(json!(["::1", "tcp", 8080])), json!("fd00:18::2"), web)]);
        assert!(map_entries(&l, "dnat6_any_addr").is_empty());
        // Every published container port, for trusted interfaces and routed networks.
        assert_eq!(
            values(&l, "published4"),
            vec![c(json!(["172.18.0.2", "tcp", 80])), c(json!(["172.18.0.2", "udp", 53]))]
        );
        assert_eq!(values(&l, "published6"), vec![c(json!(["fd00:18::2", "tcp", 80]))]);
        assert_base_layout(&l);

        // A second way to the same container port: the port stays open until both are gone.
        let again = port(Proto::Tcp, None, 8081, "172.18.0.2", 80);
        fw.add_ports(std::slice::from_ref(&again)).await.unwrap();
        fw.remove_ports(std::slice::from_ref(&wild)).await.unwrap();
        assert_eq!(values(&listing(&fw).await, "published4").len(), 2, "172.18.0.2 tcp 80 is still published");
        fw.remove_ports(std::slice::from_ref(&again)).await.unwrap();
        assert_eq!(values(&listing(&fw).await, "published4"), vec![c(json!(["172.18.0.2", "udp", 53]))]);
        fw.add_ports(std::slice::from_ref(&wild)).await.unwrap();
        assert_eq!(listing(&fw).await, l);

        // The same key with other data is refused, and nothing changes.
        let clash = port(Proto::Tcp, None, 8080, "172.18.0.9", 80);
        assert!(fw.add_ports(&[clash]).await.is_err());
        assert_eq!(listing(&fw).await, l);

        // Deleted by hand: repair rebuilds exactly; so does sync from the records.
        sh(&format!("nft delete table inet {TABLE}"));
        assert!(fw.repair().await.unwrap());
        assert!(!fw.repair().await.unwrap());
        assert_eq!(listing(&fw).await, l);
        fw.sync(&[self::web()], &[wild.clone(), local.clone(), six.clone()]).await.unwrap();
        assert_eq!(listing(&fw).await, l);

        // Deleted by hand, then a change: the change rebuilds it too.
        sh(&format!("nft delete table inet {TABLE}"));
        let extra = port(Proto::Tcp, None, 9090, "172.18.0.3", 90);
        fw.add_ports(std::slice::from_ref(&extra)).await.unwrap();
        fw.remove_ports(std::slice::from_ref(&extra)).await.unwrap();
        assert_eq!(listing(&fw).await, l);

        fw.remove_ports(&[wild, local.clone(), six]).await.unwrap();
        fw.remove_ports(&[local]).await.unwrap(); // missing is no error
        assert_eq!(listing(&fw).await, no_ports);
    });
}
