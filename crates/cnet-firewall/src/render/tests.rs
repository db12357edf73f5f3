//! Rendering against the JSON nft must receive.

use nftables::batch::Batch;
use serde_json::{Value, json};

use super::*;
use crate::Proto;

/// `udp dport 4789 notrack`, as nft's JSON has it.
fn notrack_vxlan() -> Value {
    json!([vxlan_dport(), { "notrack": null }])
}

fn vxlan_dport() -> Value {
    json!({ "match": { "op": "==", "left": { "payload": { "protocol": "udp", "field": "dport" } }, "right": 4789 } })
}

fn fib_local() -> Value {
    json!({ "match": { "op": "==", "left": { "fib": { "result": "type", "flags": ["daddr"] } }, "right": "local" } })
}

/// `@th,96,24 <vni>`: a VXLAN packet's VNI.
fn names_vni(vni: u32) -> Value {
    json!({ "match": { "op": "==", "left": { "payload": { "base": "th", "offset": 96, "len": 24 } }, "right": vni } })
}

/// `udp dport 4789 IP saddr != @PEERS fib daddr type local jump vxlan_strangers`
fn from_strangers(ip: &str, peers: &str, comment: &str) -> Value {
    rule(
        "raw_prerouting",
        json!([
            vxlan_dport(),
            { "match": { "op": "!=", "left": { "payload": { "protocol": ip, "field": "saddr" } }, "right": format!("@{peers}") } },
            fib_local(),
            { "jump": { "target": "vxlan_strangers" } }
        ]),
        comment,
    )
}

fn regular_chain(name: &str) -> Value {
    json!({ "add": { "chain": { "family": "inet", "table": "t", "name": name } } })
}

fn to_json(batch: Batch<'_>) -> Value {
    nft_json(&batch.to_nftables())
}

/// `{"nftables": [...]}` with the given commands.
fn doc(cmds: Vec<Value>) -> Value {
    json!({ "nftables": cmds })
}

fn web() -> NetworkRules {
    NetworkRules {
        id: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        bridge: "br-0123456789ab".into(),
        subnets: vec!["172.18.0.0/16".parse().unwrap(), "fd00:1::/64".parse().unwrap()],
        masquerade: true,
        internal: false,
        icc: true,
        gateway_v4: crate::GatewayMode::Nat,
        gateway_v6: crate::GatewayMode::Nat,
        trusted_interfaces: vec![],
    }
}

fn backend() -> NetworkRules {
    NetworkRules {
        id: "fedcba9876543210".into(),
        bridge: "br-fedcba987654".into(),
        subnets: vec!["172.19.0.0/16".parse().unwrap()],
        masquerade: true,
        internal: true,
        icc: false,
        gateway_v4: crate::GatewayMode::Nat,
        gateway_v6: crate::GatewayMode::Nat,
        trusted_interfaces: vec![],
    }
}

fn set(name: &str, ty: Value, interval: bool) -> Value {
    let mut set = json!({ "family": "inet", "table": "t", "name": name, "type": ty });
    if interval {
        set["flags"] = json!(["interval"]);
    }
    json!({ "add": { "set": set } })
}

fn chain(name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({ "add": { "chain": {
        "family": "inet", "table": "t", "name": name,
        "type": kind, "hook": hook, "prio": prio, "policy": "accept"
    } } })
}

fn rule(chain: &str, expr: Value, comment: &str) -> Value {
    json!({ "add": { "rule": {
        "family": "inet", "table": "t", "chain": chain, "expr": expr, "comment": comment
    } } })
}

fn lookup(left: Value, set: &str) -> Value {
    json!({ "match": { "op": "==", "left": left, "right": format!("@{set}") } })
}

fn meta(key: &str) -> Value {
    json!({ "meta": { "key": key } })
}

fn iif_oif() -> Value {
    json!({ "concat": [meta("iifname"), meta("oifname")] })
}

fn masq_rule(proto: &str, set: &str, own: &str, comment: &str) -> Value {
    let saddr = json!({ "payload": { "protocol": proto, "field": "saddr" } });
    rule(
        "postrouting",
        json!([
            lookup(saddr.clone(), set),
            { "match": {
                "op": "!=",
                "left": { "concat": [saddr, meta("oifname")] },
                "right": format!("@{own}")
            } },
            { "masquerade": null }
        ]),
        comment,
    )
}

fn nat_mode_rule(nfproto: &str, unprotected: &str) -> Value {
    rule(
        "forward",
        json!([
            { "match": { "op": "==", "left": meta("nfproto"), "right": nfproto } },
            lookup(meta("oifname"), "bridges"),
            { "match": { "op": "!=", "left": meta("oifname"), "right": format!("@{unprotected}") } },
            { "drop": null }
        ]),
        "gateway mode nat: only published ports from outside",
    )
}

/// Every `add` that [`layout`] renders for table "t".
fn expected_layout() -> Vec<Value> {
    let mut out = vec![
        set("bridges", json!("ifname"), false),
        set("bridge_self", json!(["ifname", "ifname"]), false),
        set("icc_off", json!(["ifname", "ifname"]), false),
        set("internal", json!("ifname"), false),
        set("masq4", json!("ipv4_addr"), true),
        set("masq4_own", json!(["ipv4_addr", "ifname"]), true),
        set("masq6", json!("ipv6_addr"), true),
        set("masq6_own", json!(["ipv6_addr", "ifname"]), true),
        set("hairpin4", json!(["ipv4_addr", "ifname"]), true),
        set("hairpin6", json!(["ipv6_addr", "ifname"]), true),
        set("unprotected4", json!("ifname"), false),
        set("unprotected6", json!("ifname"), false),
        set("routed4", json!("ifname"), false),
        set("routed6", json!("ifname"), false),
        set("trusted", json!(["ifname", "ifname"]), false),
        set("published4", json!(["ipv4_addr", "inet_proto", "inet_service"]), false),
        set("published6", json!(["ipv6_addr", "inet_proto", "inet_service"]), false),
        set("vxlan_peers4", json!("ipv4_addr"), false),
        set("vxlan_peers6", json!("ipv6_addr"), false),
        map("dnat4_addr", json!(["ipv4_addr", "inet_proto", "inet_service"]), "ipv4_addr"),
        map("dnat4_port", json!(["ipv4_addr", "inet_proto", "inet_service"]), "inet_service"),
        map("dnat4_any_addr", json!(["inet_proto", "inet_service"]), "ipv4_addr"),
        map("dnat4_any_port", json!(["inet_proto", "inet_service"]), "inet_service"),
        map("dnat6_addr", json!(["ipv6_addr", "inet_proto", "inet_service"]), "ipv6_addr"),
        map("dnat6_port", json!(["ipv6_addr", "inet_proto", "inet_service"]), "inet_service"),
        map("dnat6_any_addr", json!(["inet_proto", "inet_service"]), "ipv6_addr"),
        map("dnat6_any_port", json!(["inet_proto", "inet_service"]), "inet_service"),
        chain("forward", "filter", "forward", 0),
        chain("postrouting", "nat", "postrouting", 100),
        chain("prerouting", "nat", "prerouting", -100),
        chain("output", "nat", "output", -100),
        chain("raw_prerouting", "filter", "prerouting", -300),
        chain("raw_output", "filter", "output", -300),
        regular_chain("vxlan_strangers"),
        regular_chain("vxlan_plaintext"),
        rule(
            "raw_prerouting",
            json!([
                { "match": { "op": "!=", "left": meta("iifname"), "right": "lo" } },
                { "match": { "op": "==", "left": { "payload": { "protocol": "ip", "field": "daddr" } }, "right": pfx("127.0.0.0", 8) } },
                { "drop": null }
            ]),
            "loopback destinations only from lo (IPv4)",
        ),
        rule(
            "raw_prerouting",
            json!([
                { "match": { "op": "!=", "left": meta("iifname"), "right": "lo" } },
                { "match": { "op": "==", "left": { "payload": { "protocol": "ip6", "field": "daddr" } }, "right": pfx("::1", 128) } },
                { "drop": null }
            ]),
            "loopback destinations only from lo (IPv6)",
        ),
        rule(
            "raw_prerouting",
            json!([vxlan_dport(), { "jump": { "target": "vxlan_plaintext" } }]),
            "VXLAN of encrypted networks only through their tunnel",
        ),
        from_strangers("ip", "vxlan_peers4", "VXLAN for cnet's VNIs only from the cluster's hosts (IPv4)"),
        from_strangers("ip6", "vxlan_peers6", "VXLAN for cnet's VNIs only from the cluster's hosts (IPv6)"),
        rule("raw_prerouting", notrack_vxlan(), "VXLAN tunnels: no connection tracking"),
        rule("raw_output", notrack_vxlan(), "VXLAN tunnels: no connection tracking"),
        rule(
            "forward",
            json!([lookup(iif_oif(), "icc_off"), { "drop": null }]),
            "icc=false: nothing between the ports of one bridge",
        ),
        rule(
            "forward",
            json!([lookup(iif_oif(), "bridge_self"), { "accept": null }]),
            "traffic that stays on one bridge",
        ),
        rule(
            "forward",
            json!([lookup(meta("iifname"), "internal"), { "drop": null }]),
            "internal: nothing out of the bridge",
        ),
        rule(
            "forward",
            json!([lookup(meta("oifname"), "internal"), { "drop": null }]),
            "internal: nothing into the bridge",
        ),
        rule("forward", json!([ct_dnat(), { "accept": null }]), "published ports, from any network"),
        rule(
            "forward",
            json!([
                lookup(meta("oifname"), "bridges"),
                { "match": { "op": "in", "left": { "ct": { "key": "state" } }, "right": ["established", "related"] } },
                { "accept": null }
            ]),
            "replies to what the containers opened",
        ),
        direct_rule(
            lookup(meta("oifname"), "routed4"),
            "ip",
            "published4",
            "gateway mode routed: published container ports (IPv4)",
        ),
        direct_rule(
            lookup(meta("oifname"), "routed6"),
            "ip6",
            "published6",
            "gateway mode routed: published container ports (IPv6)",
        ),
        rule(
            "forward",
            json!([lookup(meta("oifname"), "routed4"), { "match": { "op": "==", "left": meta("l4proto"), "right": "icmp" } }, { "accept": null }]),
            "gateway mode routed: ICMP",
        ),
        rule(
            "forward",
            json!([lookup(meta("oifname"), "routed6"), { "match": { "op": "==", "left": meta("l4proto"), "right": "ipv6-icmp" } }, { "accept": null }]),
            "gateway mode routed: ICMPv6",
        ),
        direct_rule(
            lookup(iif_oif(), "trusted"),
            "ip",
            "published4",
            "trusted host interfaces: published container ports (IPv4)",
        ),
        direct_rule(
            lookup(iif_oif(), "trusted"),
            "ip6",
            "published6",
            "trusted host interfaces: published container ports (IPv6)",
        ),
        rule(
            "forward",
            json!([
                lookup(meta("iifname"), "bridges"),
                lookup(meta("oifname"), "bridges"),
                { "drop": null }
            ]),
            "nothing between two cnet bridges",
        ),
        nat_mode_rule("ipv4", "unprotected4"),
        nat_mode_rule("ipv6", "unprotected6"),
        rule(
            "postrouting",
            json!([ct_dnat(), lookup(saddr_oif("ip"), "hairpin4"), { "masquerade": null }]),
            "hairpin: a published port reached from its own bridge",
        ),
        rule(
            "postrouting",
            json!([ct_dnat(), lookup(saddr_oif("ip6"), "hairpin6"), { "masquerade": null }]),
            "hairpin: a published port reached from its own bridge",
        ),
        rule(
            "postrouting",
            json!([
                { "match": {
                    "op": "==",
                    "left": { "payload": { "protocol": "ip", "field": "saddr" } },
                    "right": pfx("127.0.0.0", 8)
                } },
                lookup(meta("oifname"), "bridges"),
                { "masquerade": null }
            ]),
            "published ports reached from the host on 127.0.0.0/8",
        ),
        masq_rule("ip", "masq4", "masq4_own", "outbound NAT from IPv4 subnets"),
        masq_rule("ip6", "masq6", "masq6_own", "outbound NAT from IPv6 subnets"),
    ];
    for chain in ["prerouting", "output"] {
        for (ip, nfproto, v) in [("ip", "ipv4", "4"), ("ip6", "ipv6", "6")] {
            let one = json!({ "concat": [
                { "payload": { "protocol": ip, "field": "daddr" } },
                meta("l4proto"),
                { "payload": { "protocol": "th", "field": "dport" } }
            ] });
            let any = json!({ "concat": [meta("l4proto"), { "payload": { "protocol": "th", "field": "dport" } }] });
            for (key, maps, comment) in [
                (one, ["addr", "port"], "published ports on one host address"),
                (any, ["any_addr", "any_port"], "published ports on every host address"),
            ] {
                let mut statements = vec![
                    json!({ "match": { "op": "==", "left": meta("nfproto"), "right": nfproto } }),
                    json!({ "match": { "op": "==", "left": { "fib": { "result": "type", "flags": ["daddr"] } }, "right": "local" } }),
                    json!({ "dnat": {
                        "family": ip,
                        "addr": { "map": { "key": key.clone(), "data": format!("@dnat{v}_{}", maps[0]) } },
                        "port": { "map": { "key": key, "data": format!("@dnat{v}_{}", maps[1]) } }
                    } }),
                ];
                if chain == "output" && ip == "ip6" && maps[0] == "any_addr" {
                    // The host's [::1] goes to the relay.
                    statements.insert(
                        1,
                        json!({ "match": { "op": "!=", "left": { "payload": { "protocol": "ip6", "field": "daddr" } }, "right": pfx("::1", 128) } }),
                    );
                }
                out.push(rule(chain, json!(statements), comment));
            }
        }
    }
    out
}

/// `<first> ip daddr . meta l4proto . th dport @published accept`
fn direct_rule(first: Value, ip: &str, published: &str, comment: &str) -> Value {
    let target = json!({ "concat": [
        { "payload": { "protocol": ip, "field": "daddr" } },
        meta("l4proto"),
        { "payload": { "protocol": "th", "field": "dport" } }
    ] });
    rule("forward", json!([first, lookup(target, published), { "accept": null }]), comment)
}

fn saddr_oif(ip: &str) -> Value {
    json!({ "concat": [{ "payload": { "protocol": ip, "field": "saddr" } }, meta("oifname")] })
}

fn ct_dnat() -> Value {
    json!({ "match": { "op": "in", "left": { "ct": { "key": "status" } }, "right": "dnat" } })
}

fn map(name: &str, key: Value, data: &str) -> Value {
    json!({ "add": { "map": { "family": "inet", "table": "t", "name": name, "type": key, "map": data } } })
}

fn table(cmd: &str) -> Value {
    json!({ cmd: { "table": { "family": "inet", "name": "t" } } })
}

fn element(cmd: &str, set: &str, elems: Value) -> Value {
    json!({ cmd: { "element": { "family": "inet", "table": "t", "name": set, "elem": elems } } })
}

/// An element with its network's short id as comment (the crate serialises the unset fields as null).
fn labelled(val: Value, short_id: &str) -> Value {
    json!({ "elem": {
        "val": val, "timeout": null, "expires": null, "comment": short_id, "counter": null
    } })
}

fn pfx(addr: &str, len: u32) -> Value {
    json!({ "prefix": { "addr": addr, "len": len } })
}

fn pair(a: Value, b: Value) -> Value {
    json!({ "concat": [a, b] })
}

/// The plain elements of [`web`], per set.
fn web_elements() -> Vec<(&'static str, Vec<Value>)> {
    let br = || json!("br-0123456789ab");
    vec![
        ("bridges", vec![br()]),
        ("bridge_self", vec![pair(br(), br())]),
        ("hairpin4", vec![pair(pfx("172.18.0.0", 16), br())]),
        ("hairpin6", vec![pair(pfx("fd00:1::", 64), br())]),
        ("masq4", vec![pfx("172.18.0.0", 16)]),
        ("masq4_own", vec![pair(pfx("172.18.0.0", 16), br())]),
        ("masq6", vec![pfx("fd00:1::", 64)]),
        ("masq6_own", vec![pair(pfx("fd00:1::", 64), br())]),
    ]
}

/// [`backend`] is internal (so no NAT) with icc=false.
fn backend_elements() -> Vec<(&'static str, Vec<Value>)> {
    let br = || json!("br-fedcba987654");
    vec![
        ("bridges", vec![br()]),
        ("bridge_self", vec![pair(br(), br())]),
        ("icc_off", vec![pair(br(), br())]),
        ("internal", vec![br()]),
    ]
}

fn adds(elements: Vec<(&str, Vec<Value>)>, short_id: &str) -> Vec<Value> {
    elements
        .into_iter()
        .map(|(set, elems)| {
            let elems = elems.into_iter().map(|e| labelled(e, short_id)).collect();
            element("add", set, Value::Array(elems))
        })
        .collect()
}

#[test]
fn create_table_creates_the_table_then_adds_the_layout() {
    let mut expected = vec![table("create")];
    expected.extend(expected_layout());
    assert_eq!(to_json(create_table("t")), doc(expected));
}

#[test]
fn add_network_adds_labelled_elements_only() {
    let expected = adds(web_elements(), "0123456789ab");
    assert_eq!(to_json(add_network("t", &web())), doc(expected));

    let expected = adds(backend_elements(), "fedcba987654");
    assert_eq!(to_json(add_network("t", &backend())), doc(expected));
}

#[test]
fn add_network_normalises_subnets_and_skips_nat_when_asked() {
    let net = NetworkRules {
        subnets: vec!["10.1.2.3/24".parse().unwrap(), "10.1.2.0/24".parse().unwrap()],
        icc: true,
        ..backend()
    };
    // internal: no NAT even though masquerade is set.
    let mut expected = adds(backend_elements(), "fedcba987654");
    expected.remove(2); // icc_off
    assert_eq!(to_json(add_network("t", &net)), doc(expected));

    let nat = NetworkRules { internal: false, ..net.clone() };
    let br = || json!("br-fedcba987654");
    let expected = adds(
        vec![
            ("bridges", vec![br()]),
            ("bridge_self", vec![pair(br(), br())]),
            ("hairpin4", vec![pair(pfx("10.1.2.0", 24), br())]),
            ("masq4", vec![pfx("10.1.2.0", 24)]),
            ("masq4_own", vec![pair(pfx("10.1.2.0", 24), br())]),
        ],
        "fedcba987654",
    );
    assert_eq!(to_json(add_network("t", &nat)), doc(expected));

    let no_nat = NetworkRules { masquerade: false, ..nat };
    let expected = adds(
        vec![
            ("bridges", vec![br()]),
            ("bridge_self", vec![pair(br(), br())]),
            ("hairpin4", vec![pair(pfx("10.1.2.0", 24), br())]),
        ],
        "fedcba987654",
    );
    assert_eq!(to_json(add_network("t", &no_nat)), doc(expected));
}

#[test]
fn remove_network_adds_then_deletes_plain_elements() {
    let mut expected: Vec<Value> =
        web_elements().into_iter().map(|(set, elems)| element("add", set, Value::Array(elems))).collect();
    expected.extend(web_elements().into_iter().map(|(set, elems)| element("delete", set, Value::Array(elems))));
    assert_eq!(to_json(remove_networks("t", &[web()])), doc(expected));
}

#[test]
fn sync_replaces_the_table_with_exactly_the_given_networks() {
    let mut expected = vec![table("add"), table("delete"), table("add")];
    expected.extend(expected_layout());
    expected.extend(adds(web_elements(), "0123456789ab"));
    expected.extend(adds(backend_elements(), "fedcba987654"));
    assert_eq!(to_json(sync("t", &[web(), backend()], &[], &VxlanGuard::default())), doc(expected));

    let mut empty = vec![table("add"), table("delete"), table("add")];
    empty.extend(expected_layout());
    assert_eq!(to_json(sync("t", &[], &[], &VxlanGuard::default())), doc(empty.clone()));

    empty.extend(to_json(add_ports("t", &ports()))["nftables"].as_array().unwrap().iter().cloned());
    assert_eq!(to_json(sync("t", &[], &ports(), &VxlanGuard::default())), doc(empty.clone()));

    empty.extend(guard_adds());
    assert_eq!(to_json(sync("t", &[], &ports(), &guard())), doc(empty));
}

/// Two VNIs, the second of an encrypted network, and a peer of each family.
fn guard() -> VxlanGuard {
    VxlanGuard {
        vnis: [(4096, None), (4097, Some("wg-0123456789ab".to_string()))].into(),
        peers: ["192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap(), "192.0.2.3".parse().unwrap()].into(),
    }
}

/// What [`guard`] adds to the layout's empty sets and chains.
fn guard_adds() -> Vec<Value> {
    vec![
        json!({ "add": { "element": { "family": "inet", "table": "t", "name": "vxlan_peers4", "elem": ["192.0.2.3", "192.0.2.7"] } } }),
        json!({ "add": { "element": { "family": "inet", "table": "t", "name": "vxlan_peers6", "elem": ["2001:db8::7"] } } }),
        rule("vxlan_strangers", json!([names_vni(4096), { "drop": null }]), "VNI 4096: only from the cluster's hosts"),
        rule("vxlan_strangers", json!([names_vni(4097), { "drop": null }]), "VNI 4097: only from the cluster's hosts"),
        rule(
            "vxlan_plaintext",
            json!([
                names_vni(4097),
                { "match": { "op": "!=", "left": meta("iifname"), "right": "wg-0123456789ab" } },
                { "drop": null }
            ]),
            "VNI 4097 is encrypted: only through wg-0123456789ab",
        ),
    ]
}

#[test]
fn the_vxlan_guard_is_replaced_whole_in_one_transaction() {
    let flush_set = |name: &str, ty: &str| json!({ "flush": { "set": { "family": "inet", "table": "t", "name": name, "type": ty } } });
    let flush_chain = |name: &str| json!({ "flush": { "chain": { "family": "inet", "table": "t", "name": name } } });
    let flushes = vec![
        flush_set("vxlan_peers4", "ipv4_addr"),
        flush_set("vxlan_peers6", "ipv6_addr"),
        flush_chain("vxlan_strangers"),
        flush_chain("vxlan_plaintext"),
    ];
    let mut expected = flushes.clone();
    expected.extend(guard_adds());
    assert_eq!(to_json(vxlan_guard("t", &guard())), doc(expected));
    // An empty guard empties both sets and both chains: nothing is dropped any more.
    assert_eq!(to_json(vxlan_guard("t", &VxlanGuard::default())), doc(flushes));
}

#[test]
fn a_vxlan_guard_with_a_bad_vni_or_tunnel_name_is_refused_naming_it() {
    for (vni, tunnel, named) in [
        (0, None, "VNI 0"),
        (1 << 24, None, "VNI 16777216"),
        (4096, Some("wg-0123456789abcdef"), "wg-0123456789abcdef"),
        (4096, Some("wg 1"), "wg 1"),
    ] {
        let guard = VxlanGuard { vnis: [(vni, tunnel.map(str::to_string))].into(), peers: Default::default() };
        let err = guard.validate().unwrap_err().to_string();
        assert!(err.contains(named), "{err}");
    }
    guard().validate().unwrap();
}

fn ports() -> Vec<PortRule> {
    let rule = |proto, host: Option<&str>, host_port, dest: &str, dest_port, owner: &str| PortRule {
        proto,
        host_addr: host.map(|h| h.parse().unwrap()),
        host_port,
        dest: dest.parse().unwrap(),
        dest_port,
        owner: owner.into(),
        routed: false,
    };
    vec![
        rule(Proto::Tcp, None, 8080, "172.18.0.2", 80, "web"),
        rule(Proto::Udp, Some("127.0.0.1"), 5353, "172.18.0.2", 53, "web"),
        rule(Proto::Tcp, None, 8080, "fd00:1::2", 80, "web"),
        rule(Proto::Tcp, Some("::1"), 9000, "fd00:1::2", 90, ""),
        rule(Proto::Tcp, None, 8081, "172.18.0.3", 81, "db"),
        rule(Proto::Tcp, Some("172.18.0.9"), 8082, "172.18.0.2", 80, "web"),
    ]
}

fn entry(key: Value, data: Value) -> Value {
    json!([key, data])
}

#[test]
fn add_ports_adds_a_labelled_pair_of_elements_per_port() {
    let c = |parts: Value| json!({ "concat": parts });
    let l = |v: Value, owner: &str| labelled(v, owner);
    let expected = vec![
        element(
            "add",
            "dnat4_addr",
            json!([
                entry(l(c(json!(["127.0.0.1", "udp", 5353])), "web"), json!("172.18.0.2")),
                entry(l(c(json!(["172.18.0.9", "tcp", 8082])), "web"), json!("172.18.0.2"))
            ]),
        ),
        element(
            "add",
            "dnat4_port",
            json!([
                entry(l(c(json!(["127.0.0.1", "udp", 5353])), "web"), json!(53)),
                entry(l(c(json!(["172.18.0.9", "tcp", 8082])), "web"), json!(80))
            ]),
        ),
        element(
            "add",
            "dnat4_any_addr",
            json!([
                entry(l(c(json!(["tcp", 8080])), "web"), json!("172.18.0.2")),
                entry(l(c(json!(["tcp", 8081])), "db"), json!("172.18.0.3"))
            ]),
        ),
        element(
            "add",
            "dnat4_any_port",
            json!([
                entry(l(c(json!(["tcp", 8080])), "web"), json!(80)),
                entry(l(c(json!(["tcp", 8081])), "db"), json!(81))
            ]),
        ),
        element("add", "dnat6_addr", json!([entry(c(json!(["::1", "tcp", 9000])), json!("fd00:1::2"))])),
        element("add", "dnat6_port", json!([entry(c(json!(["::1", "tcp", 9000])), json!(90))])),
        element("add", "dnat6_any_addr", json!([entry(l(c(json!(["tcp", 8080])), "web"), json!("fd00:1::2"))])),
        element("add", "dnat6_any_port", json!([entry(l(c(json!(["tcp", 8080])), "web"), json!(80))])),
        // 172.18.0.2 tcp 80 once, though two rules lead there.
        element(
            "add",
            "published4",
            json!([
                l(c(json!(["172.18.0.2", "tcp", 80])), "web"),
                l(c(json!(["172.18.0.2", "udp", 53])), "web"),
                l(c(json!(["172.18.0.3", "tcp", 81])), "db")
            ]),
        ),
        element(
            "add",
            "published6",
            json!([l(c(json!(["fd00:1::2", "tcp", 80])), "web"), c(json!(["fd00:1::2", "tcp", 90]))]),
        ),
    ];
    assert_eq!(to_json(add_ports("t", &ports())), doc(expected));
    assert_eq!(to_json(add_ports("t", &[])), doc(vec![]));
}

#[test]
fn remove_ports_adds_then_deletes_plain_elements() {
    let c = |parts: Value| json!({ "concat": parts });
    let one = &ports()[..1];
    let elems = |cmd: &str, published: bool| {
        let mut out = vec![
            element(cmd, "dnat4_any_addr", json!([entry(c(json!(["tcp", 8080])), json!("172.18.0.2"))])),
            element(cmd, "dnat4_any_port", json!([entry(c(json!(["tcp", 8080])), json!(80))])),
        ];
        if published {
            out.push(element(cmd, "published4", json!([c(json!(["172.18.0.2", "tcp", 80]))])));
        }
        out
    };
    let mut expected = elems("add", true);
    expected.extend(elems("delete", true));
    assert_eq!(to_json(remove_ports("t", one, &[])), doc(expected));
    // Another rule still leads to 172.18.0.2 tcp 80: it stays open.
    let mut expected = elems("add", false);
    expected.extend(elems("delete", false));
    assert_eq!(to_json(remove_ports("t", one, &ports()[5..])), doc(expected));
}

#[test]
fn routed_ports_open_the_container_port_and_publish_no_host_port() {
    let c = |parts: Value| json!({ "concat": parts });
    let routed = PortRule { routed: true, host_port: 0, ..ports()[0].clone() };
    assert!(crate::rules::validate_ports(&[routed.clone(), routed.clone()]).is_ok(), "no host port to clash");
    let expected = vec![element("add", "published4", json!([labelled(c(json!(["172.18.0.2", "tcp", 80])), "web")]))];
    assert_eq!(to_json(add_ports("t", &[routed])), doc(expected));
}

#[test]
fn gateway_modes_and_trusted_interfaces_are_elements() {
    let br = || json!("br-0123456789ab");
    let net = NetworkRules {
        gateway_v4: GatewayMode::Routed,
        gateway_v6: GatewayMode::NatUnprotected,
        trusted_interfaces: vec!["eth3".into(), "vxlan.1".into()],
        ..web()
    };
    let expected = adds(
        vec![
            ("bridges", vec![br()]),
            ("bridge_self", vec![pair(br(), br())]),
            ("unprotected6", vec![br()]),
            ("routed4", vec![br()]),
            ("trusted", vec![pair(json!("eth3"), br()), pair(json!("vxlan.1"), br())]),
            ("hairpin4", vec![pair(pfx("172.18.0.0", 16), br())]),
            ("hairpin6", vec![pair(pfx("fd00:1::", 64), br())]),
            // routed: no NAT for IPv4.
            ("masq6", vec![pfx("fd00:1::", 64)]),
            ("masq6_own", vec![pair(pfx("fd00:1::", 64), br())]),
        ],
        "0123456789ab",
    );
    assert_eq!(to_json(add_network("t", &net)), doc(expected));
}

#[test]
fn port_rules_are_validated() {
    let mut p = ports();
    assert!(crate::rules::validate_ports(&p).is_ok());
    p.push(p[0].clone());
    assert!(crate::rules::validate_ports(&p).is_err());
    let bad = |f: fn(&mut PortRule)| {
        let mut r = ports()[0].clone();
        f(&mut r);
        r.validate().unwrap_err()
    };
    bad(|r| r.host_port = 0);
    bad(|r| r.dest_port = 0);
    bad(|r| r.host_addr = Some("::1".parse().unwrap()));
    bad(|r| r.host_addr = Some("0.0.0.0".parse().unwrap()));
    bad(|r| r.owner = "a\"b".into());
}

#[test]
fn delete_table_tolerates_a_missing_table() {
    assert_eq!(to_json(delete_table("t")), doc(vec![table("add"), table("delete")]));
}

#[test]
fn only_rule_statements_become_nfts_notrack_object() {
    let named_notrack = NetworkRules { bridge: "notrack".into(), ..web() };
    let json = to_json(add_network("t", &named_notrack)).to_string();
    assert!(json.contains(r#""val":"notrack""#), "an interface named notrack stays a string: {json}");
    assert!(json.contains(r#""concat":["notrack","notrack"]"#), "in a concatenation too: {json}");
    assert!(!json.contains(r#"{"notrack":null}"#), "{json}");
    assert!(to_json(create_table("t")).to_string().contains(r#"{"notrack":null}"#));
}
