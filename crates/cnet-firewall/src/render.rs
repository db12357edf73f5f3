//! Pure rendering of the table into nftables batches: no I/O, unit-tested against expected JSON.
//!
//! The table (shown here as `nft list table inet cnet` prints it):
//!
//! ```text
//! table inet cnet {
//!     set bridges     { type ifname; }                             # every cnet bridge
//!     set bridge_self { type ifname . ifname; }                    # "br" . "br" for every bridge
//!     set icc_off     { type ifname . ifname; }                    # "br" . "br" where icc=false
//!     set internal    { type ifname; }                             # bridges of internal networks
//!     set masq4       { type ipv4_addr; flags interval; }          # subnets to masquerade
//!     set masq4_own   { type ipv4_addr . ifname; flags interval; } # subnet . its own bridge
//!     set masq6       { type ipv6_addr; flags interval; }
//!     set masq6_own   { type ipv6_addr . ifname; flags interval; }
//!     set hairpin4    { type ipv4_addr . ifname; flags interval; } # subnet . its own bridge, every
//!     set hairpin6    { type ipv6_addr . ifname; flags interval; } #   network that is not internal
//!     set unprotected4 { type ifname; }                            # gateway mode nat-unprotected
//!     set unprotected6 { type ifname; }
//!     set routed4     { type ifname; }                             # gateway mode routed
//!     set routed6     { type ifname; }
//!     set trusted     { type ifname . ifname; }                    # trusted host interface . bridge
//!     set published4  { type ipv4_addr . inet_proto . inet_service; } # every published container
//!     set published6  { type ipv6_addr . inet_proto . inet_service; } #   address . protocol . port
//!     set vxlan_peers4 { type ipv4_addr; }                         # the other hosts' VTEPs
//!     set vxlan_peers6 { type ipv6_addr; }
//!     # published ports, one pair of maps per kind (nft 1.0.6 cannot do concatenated map data):
//!     map dnat4_addr     { type ipv4_addr . inet_proto . inet_service : ipv4_addr; }    # on one host address
//!     map dnat4_port     { type ipv4_addr . inet_proto . inet_service : inet_service; }
//!     map dnat4_any_addr { type inet_proto . inet_service : ipv4_addr; }                # on every host address
//!     map dnat4_any_port { type inet_proto . inet_service : inet_service; }
//!     map dnat6_addr, dnat6_port, dnat6_any_addr, dnat6_any_port                        # the same for IPv6
//!
//!     chain forward {
//!         type filter hook forward priority filter; policy accept;
//!         iifname . oifname @icc_off drop
//!         iifname . oifname @bridge_self accept
//!         iifname @internal drop
//!         oifname @internal drop
//!         ct status dnat accept                          # published ports, from any network
//!         oifname @bridges ct state established,related accept
//!         oifname @routed4 ip daddr . meta l4proto . th dport @published4 accept   # routed
//!         oifname @routed6 ip6 daddr . meta l4proto . th dport @published6 accept
//!         oifname @routed4 meta l4proto icmp accept
//!         oifname @routed6 meta l4proto ipv6-icmp accept
//!         iifname . oifname @trusted ip daddr . meta l4proto . th dport @published4 accept
//!         iifname . oifname @trusted ip6 daddr . meta l4proto . th dport @published6 accept
//!         iifname @bridges oifname @bridges drop
//!         meta nfproto ipv4 oifname @bridges oifname != @unprotected4 drop   # gateway mode nat
//!         meta nfproto ipv6 oifname @bridges oifname != @unprotected6 drop
//!     }
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         ct status dnat ip saddr . oifname @hairpin4 masquerade      # hairpin
//!         ct status dnat ip6 saddr . oifname @hairpin6 masquerade
//!         ip saddr 127.0.0.0/8 oifname @bridges masquerade            # from the host's 127.0.0.1
//!         ip saddr @masq4 ip saddr . oifname != @masq4_own masquerade
//!         ip6 saddr @masq6 ip6 saddr . oifname != @masq6_own masquerade
//!     }
//!     chain prerouting {
//!         type nat hook prerouting priority dstnat; policy accept;
//!         meta nfproto ipv4 fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @dnat4_addr : ip daddr . meta l4proto . th dport map @dnat4_port
//!         meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @dnat4_any_addr : meta l4proto . th dport map @dnat4_any_port
//!         (the same two for ipv6)
//!     }
//!     chain output { type nat hook output priority -100; ... }   # the same four rules, for the host itself,
//!                                                                # but [::1] goes to cnet-ports' relay
//!     chain raw_prerouting {
//!         type filter hook prerouting priority raw; policy accept;
//!         iifname != "lo" ip daddr 127.0.0.0/8 drop                # a neighbour's forged loopback
//!         iifname != "lo" ip6 daddr ::1 drop                       #   destination, before any DNAT
//!         udp dport 4789 jump vxlan_plaintext                      # the VXLAN guard
//!         udp dport 4789 ip saddr != @vxlan_peers4 fib daddr type local jump vxlan_strangers
//!         udp dport 4789 ip6 saddr != @vxlan_peers6 fib daddr type local jump vxlan_strangers
//!         udp dport 4789 notrack                                   # VXLAN tunnels: not tracked
//!     }
//!     chain raw_output {
//!         type filter hook output priority raw; policy accept;
//!         udp dport 4789 notrack
//!     }
//!     chain vxlan_strangers {                                      # rewritten when the VNIs change:
//!         @th,96,24 4096 drop                                      #   one rule per cnet VNI
//!     }
//!     chain vxlan_plaintext {
//!         @th,96,24 4097 iifname != "wg-0123456789ab" drop         #   one per encrypted network's VNI
//!     }
//! }
//! ```
//!
//! **The VXLAN guard.** The kernel's VXLAN device takes a packet from any source that names its
//! VNI: a neighbour on the underlay could put frames onto an overlay segment or a cross-host link,
//! past every rule of the networks (Docker leaves port 4789 to the user's firewall, and its
//! encrypted overlays got the plaintext check only after CVE-2023-28840). So a packet that names
//! one of cnet's VNIs must come from another host of the cluster (`vxlan_peers*`: the VTEPs of the
//! other nodes' endpoints) and, for an encrypted network, through its WireGuard link (a peer's
//! address is easily forged on the underlay; WireGuard's is not). Packets for other VNIs, another
//! program's tunnels on the same port, pass untouched, as do packets routed through the host.
//! nft 1.0.6 cannot declare a set keyed by a raw payload in JSON (`typeof @th,96,24` exists only in
//! its text syntax), so the VNIs are rules in two chains of their own, flushed and refilled with
//! the peer sets in one transaction ([`vxlan_guard`]); the tunnels' own packets, from peers, cost
//! a set lookup and a jump into a chain that holds the encrypted VNIs only.
//!
//! VXLAN's UDP packets (overlay networks, links across hosts) are left out of connection tracking
//! both ways, as Cilium does for its tunnels: a tunnel packet is never NATed and no rule asks its
//! state, yet each tunnelled flow (the outer source port is a hash of the inner flow) would cost a
//! conntrack entry in a table of bounded size, and every packet a lookup in it on each host (the
//! throughput effect, 1-2 points of the underlay in A/B pairs, is within the spread of the
//! vxlan-link bench: benches/results.md).
//! A port published as `4789/udp` would not be DNATed; on a host that is a VXLAN endpoint that
//! port is the tunnels' own.
//!
//! The chains and rules never change after the table is made (but for the VXLAN guard's two
//! chains, above). A network is only set elements
//! (labelled with a comment holding its short id), so adding or removing one is a constant number of
//! element commands whatever the number of networks, and each packet costs a few hash lookups.
//! Verdict maps (`iifname vmap @…` to per-network chains) were the other candidate, but the
//! `nftables` crate 0.6 cannot declare a map whose data type is `verdict` (`SetType` has no such
//! variant), and the flat sets need no per-network chains at all.
//!
//! Published ports are elements of the `dnat*` maps, so a packet costs two hash lookups whatever the
//! number of ports (and only the first packet of a connection: nat chains see nothing else). A
//! port on one host address is keyed (address . protocol . port); a port on every address
//! (`-p 8080:80`) is keyed (protocol . port) and matched for any packet whose destination is local
//! (`fib daddr type local`), which covers every address the host has or will have. The `output`
//! chain does the same for connections the host itself opens: to 127.0.0.1 this needs
//! `route_localnet=1` on the bridge (the bridge driver sets it) and the 127.0.0.0/8 masquerade, or
//! the reply could not come back. A container reaching a published port on its own bridge is
//! masqueraded (hairpin), or the reply would go straight back over the bridge, un-NATed (and to a
//! container reaching its own port, straight back inside its own namespace). The hairpin rules
//! key on the source subnet and the output bridge, not on the input interface: with the kernel's
//! bridge netfilter on (`bridge-nf-call-iptables`), such a packet is DNATed and bridged straight
//! back, and the nat postrouting hook sees no input interface;
//! `ct status dnat accept` lets published ports through the isolation between networks.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use nftables::batch::Batch;
use nftables::expr::{
    CT, Elem, Expression, Fib, FibFlag, FibResult, Map as ExprMap, Meta, MetaKey, NamedExpression, Payload,
    PayloadBase, PayloadField, PayloadRaw, Prefix,
};
use nftables::schema::{
    Chain, Element, FlushObject, Map, NfCmd, NfListObject, Nftables, Rule, Set, SetFlag, SetType, SetTypeValue, Table,
};
use nftables::stmt::{JumpTarget, Match, NAT, NATFamily, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::{GatewayMode, NetworkRules, PortRule, VxlanGuard};

pub const SET_BRIDGES: &str = "bridges";
pub const SET_BRIDGE_SELF: &str = "bridge_self";
pub const SET_ICC_OFF: &str = "icc_off";
pub const SET_INTERNAL: &str = "internal";
pub const SET_MASQ4: &str = "masq4";
pub const SET_MASQ4_OWN: &str = "masq4_own";
pub const SET_MASQ6: &str = "masq6";
pub const SET_MASQ6_OWN: &str = "masq6_own";
pub const SET_HAIRPIN4: &str = "hairpin4";
pub const SET_HAIRPIN6: &str = "hairpin6";
pub const SET_UNPROTECTED4: &str = "unprotected4";
pub const SET_UNPROTECTED6: &str = "unprotected6";
pub const SET_ROUTED4: &str = "routed4";
pub const SET_ROUTED6: &str = "routed6";
pub const SET_TRUSTED: &str = "trusted";
pub const SET_PUBLISHED4: &str = "published4";
pub const SET_PUBLISHED6: &str = "published6";
pub const SET_VXLAN_PEERS4: &str = "vxlan_peers4";
pub const SET_VXLAN_PEERS6: &str = "vxlan_peers6";

pub const MAP_DNAT4_ADDR: &str = "dnat4_addr";
pub const MAP_DNAT4_PORT: &str = "dnat4_port";
pub const MAP_DNAT4_ANY_ADDR: &str = "dnat4_any_addr";
pub const MAP_DNAT4_ANY_PORT: &str = "dnat4_any_port";
pub const MAP_DNAT6_ADDR: &str = "dnat6_addr";
pub const MAP_DNAT6_PORT: &str = "dnat6_port";
pub const MAP_DNAT6_ANY_ADDR: &str = "dnat6_any_addr";
pub const MAP_DNAT6_ANY_PORT: &str = "dnat6_any_port";

pub const CHAIN_FORWARD: &str = "forward";
pub const CHAIN_POSTROUTING: &str = "postrouting";
pub const CHAIN_PREROUTING: &str = "prerouting";
pub const CHAIN_OUTPUT: &str = "output";
/// Before conntrack and any DNAT: what must never reach a published port at all, and what
/// conntrack should not see.
pub const CHAIN_RAW_PREROUTING: &str = "raw_prerouting";
/// Before conntrack, for the host's own packets: what conntrack should not see.
pub const CHAIN_RAW_OUTPUT: &str = "raw_output";
/// Regular chains, rewritten whole when cnet's VNIs change: a VXLAN packet for one of them from
/// a source that is not a peer, or in plaintext for an encrypted network, is dropped here.
pub const CHAIN_VXLAN_STRANGERS: &str = "vxlan_strangers";
pub const CHAIN_VXLAN_PLAINTEXT: &str = "vxlan_plaintext";

/// The UDP port of cnet's VXLAN tunnels (IANA's), whose packets conntrack skips.
pub const VXLAN_PORT: u16 = 4789;

/// nft's named priorities: `filter`, `srcnat`, `dstnat`.
const PRIO_FILTER: i32 = 0;
const PRIO_SRCNAT: i32 = 100;
const PRIO_DSTNAT: i32 = -100;
const PRIO_RAW: i32 = -300;

struct SetSpec {
    name: &'static str,
    key: &'static [SetType],
    interval: bool,
}

const SETS: [SetSpec; 19] = [
    SetSpec { name: SET_BRIDGES, key: &[SetType::Ifname], interval: false },
    SetSpec { name: SET_BRIDGE_SELF, key: &[SetType::Ifname, SetType::Ifname], interval: false },
    SetSpec { name: SET_ICC_OFF, key: &[SetType::Ifname, SetType::Ifname], interval: false },
    SetSpec { name: SET_INTERNAL, key: &[SetType::Ifname], interval: false },
    SetSpec { name: SET_MASQ4, key: &[SetType::Ipv4Addr], interval: true },
    SetSpec { name: SET_MASQ4_OWN, key: &[SetType::Ipv4Addr, SetType::Ifname], interval: true },
    SetSpec { name: SET_MASQ6, key: &[SetType::Ipv6Addr], interval: true },
    SetSpec { name: SET_MASQ6_OWN, key: &[SetType::Ipv6Addr, SetType::Ifname], interval: true },
    SetSpec { name: SET_HAIRPIN4, key: &[SetType::Ipv4Addr, SetType::Ifname], interval: true },
    SetSpec { name: SET_HAIRPIN6, key: &[SetType::Ipv6Addr, SetType::Ifname], interval: true },
    SetSpec { name: SET_UNPROTECTED4, key: &[SetType::Ifname], interval: false },
    SetSpec { name: SET_UNPROTECTED6, key: &[SetType::Ifname], interval: false },
    SetSpec { name: SET_ROUTED4, key: &[SetType::Ifname], interval: false },
    SetSpec { name: SET_ROUTED6, key: &[SetType::Ifname], interval: false },
    SetSpec { name: SET_TRUSTED, key: &[SetType::Ifname, SetType::Ifname], interval: false },
    SetSpec { name: SET_PUBLISHED4, key: ADDR4_PROTO_PORT, interval: false },
    SetSpec { name: SET_PUBLISHED6, key: ADDR6_PROTO_PORT, interval: false },
    SetSpec { name: SET_VXLAN_PEERS4, key: &[SetType::Ipv4Addr], interval: false },
    SetSpec { name: SET_VXLAN_PEERS6, key: &[SetType::Ipv6Addr], interval: false },
];

struct MapSpec {
    name: &'static str,
    key: &'static [SetType],
    data: SetType,
}

const PROTO_PORT: &[SetType] = &[SetType::InetProto, SetType::InetService];
const ADDR4_PROTO_PORT: &[SetType] = &[SetType::Ipv4Addr, SetType::InetProto, SetType::InetService];
const ADDR6_PROTO_PORT: &[SetType] = &[SetType::Ipv6Addr, SetType::InetProto, SetType::InetService];

const MAPS: [MapSpec; 8] = [
    MapSpec { name: MAP_DNAT4_ADDR, key: ADDR4_PROTO_PORT, data: SetType::Ipv4Addr },
    MapSpec { name: MAP_DNAT4_PORT, key: ADDR4_PROTO_PORT, data: SetType::InetService },
    MapSpec { name: MAP_DNAT4_ANY_ADDR, key: PROTO_PORT, data: SetType::Ipv4Addr },
    MapSpec { name: MAP_DNAT4_ANY_PORT, key: PROTO_PORT, data: SetType::InetService },
    MapSpec { name: MAP_DNAT6_ADDR, key: ADDR6_PROTO_PORT, data: SetType::Ipv6Addr },
    MapSpec { name: MAP_DNAT6_PORT, key: ADDR6_PROTO_PORT, data: SetType::InetService },
    MapSpec { name: MAP_DNAT6_ANY_ADDR, key: PROTO_PORT, data: SetType::Ipv6Addr },
    MapSpec { name: MAP_DNAT6_ANY_PORT, key: PROTO_PORT, data: SetType::InetService },
];

/// Creates the table with everything in it. `create` (not `add`) for the table itself: if it exists
/// already, nft fails the whole transaction and nothing is changed or duplicated.
pub fn create_table(table: &str) -> Batch<'static> {
    let mut batch = Batch::new();
    batch.add_cmd(NfCmd::Create(NfListObject::Table(table_obj(table))));
    for obj in layout(table) {
        batch.add(obj);
    }
    batch
}

/// Adds one network's set elements. Adding twice is harmless: sets hold an element once.
pub fn add_network(table: &str, net: &NetworkRules) -> Batch<'static> {
    let mut batch = Batch::new();
    add_network_elements(&mut batch, table, net);
    batch
}

fn add_network_elements(batch: &mut Batch<'static>, table: &str, net: &NetworkRules) {
    for (set, elems) in elements(net) {
        let elems = elems.into_iter().map(|e| labelled(e, net.short_id())).collect();
        batch.add(element(table, set, elems));
    }
}

/// Removes networks' set elements, in one transaction. Each is added first, so a missing one
/// (which nft's `delete` would reject) is no error: the transaction adds and deletes it.
pub fn remove_networks(table: &str, nets: &[NetworkRules]) -> Batch<'static> {
    let mut batch = Batch::new();
    let all: Vec<_> = nets.iter().flat_map(elements).collect();
    for (set, elems) in &all {
        batch.add(element(table, set, elems.clone()));
    }
    for (set, elems) in all {
        batch.delete(element(table, set, elems));
    }
    batch
}

/// [`remove_networks`] and then [`add_network`] of each of `added`, in one transaction.
pub fn pending(table: &str, removed: &[NetworkRules], added: &[NetworkRules]) -> Batch<'static> {
    let mut batch = remove_networks(table, removed);
    for net in added {
        add_network_elements(&mut batch, table, net);
    }
    batch
}

/// Replaces the table by exactly these networks, published ports and VXLAN guard: delete it
/// (added first, so a missing table is no error) and create it again with all elements, in one
/// transaction.
pub fn sync(table: &str, nets: &[NetworkRules], ports: &[PortRule], guard: &VxlanGuard) -> Batch<'static> {
    let mut batch = delete_table(table);
    batch.add(NfListObject::Table(table_obj(table)));
    for obj in layout(table) {
        batch.add(obj);
    }
    for net in nets {
        batch.add_all(add_network(table, net).to_nftables().objects.into_owned());
    }
    if !ports.is_empty() {
        batch.add_all(add_ports(table, ports).to_nftables().objects.into_owned());
    }
    for obj in vxlan_guard_objects(table, guard) {
        batch.add(obj);
    }
    batch
}

/// Makes the VXLAN guard exactly `guard`, in one transaction: the peer sets and the two VNI
/// chains are flushed and filled again (a few elements and rules, whatever changed).
pub fn vxlan_guard(table: &str, guard: &VxlanGuard) -> Batch<'static> {
    let mut batch = Batch::new();
    for name in [SET_VXLAN_PEERS4, SET_VXLAN_PEERS6] {
        let spec = SETS.iter().find(|spec| spec.name == name).expect("a set of the layout");
        batch.add_cmd(NfCmd::Flush(FlushObject::Set(Box::new(set(table, spec)))));
    }
    for name in [CHAIN_VXLAN_STRANGERS, CHAIN_VXLAN_PLAINTEXT] {
        batch.add_cmd(NfCmd::Flush(FlushObject::Chain(regular_chain(table, name))));
    }
    for obj in vxlan_guard_objects(table, guard) {
        batch.add(obj);
    }
    batch
}

/// The guard's set elements and VNI rules (added to the layout's empty sets and chains).
fn vxlan_guard_objects(table: &str, guard: &VxlanGuard) -> Vec<NfListObject<'static>> {
    let mut objs = vec![];
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = guard.peers.iter().partition(|a| a.is_ipv4());
    for (set, peers) in [(SET_VXLAN_PEERS4, v4), (SET_VXLAN_PEERS6, v6)] {
        if !peers.is_empty() {
            objs.push(element(table, set, peers.iter().map(|a| string(&a.to_string())).collect()));
        }
    }
    for (&vni, tunnel) in &guard.vnis {
        let names_vni = Statement::Match(Match { left: vni_field(), right: Expression::Number(vni), op: Operator::EQ });
        objs.push(rule(
            table,
            CHAIN_VXLAN_STRANGERS,
            vec![names_vni.clone(), drop()],
            format!("VNI {vni}: only from the cluster's hosts"),
        ));
        if let Some(tunnel) = tunnel {
            let not_through_tunnel =
                Statement::Match(Match { left: meta(MetaKey::Iifname), right: string(tunnel), op: Operator::NEQ });
            objs.push(rule(
                table,
                CHAIN_VXLAN_PLAINTEXT,
                vec![names_vni, not_through_tunnel, drop()],
                format!("VNI {vni} is encrypted: only through {tunnel}"),
            ));
        }
    }
    objs
}

/// The VNI of a VXLAN packet: the 24 bits after the UDP header (8 bytes) and VXLAN's flags (1
/// byte) and reserved bits (3 bytes).
fn vni_field() -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadRaw(PayloadRaw {
        base: PayloadBase::TH,
        offset: 96,
        len: 24,
    })))
}

/// Publishes ports: one element in the address map and one in the port map for each, labelled
/// with its owner. Keys must be new (the caller checks conflicts): nft refuses an existing key
/// with other data, and then the whole transaction.
pub fn add_ports(table: &str, ports: &[PortRule]) -> Batch<'static> {
    let mut batch = Batch::new();
    for (map, elems) in port_elements(ports, true) {
        batch.add(element(table, map, elems));
    }
    batch
}

/// Unpublishes ports. Each element is added first, so a missing one is no error. A container port
/// that `kept` ports (those still published) also open stays in the `published` sets.
pub fn remove_ports(table: &str, ports: &[PortRule], kept: &[PortRule]) -> Batch<'static> {
    let still_open: HashSet<_> = kept.iter().map(PortRule::target).collect();
    let gone: Vec<PortRule> = ports.iter().filter(|p| !still_open.contains(&p.target())).cloned().collect();
    let mut elems = port_elements(ports, false);
    elems.retain(|(map, _)| *map != SET_PUBLISHED4 && *map != SET_PUBLISHED6);
    elems.extend(published_elements(&gone, false));
    let mut batch = Batch::new();
    for (map, elems) in &elems {
        batch.add(element(table, map, elems.clone()));
    }
    for (map, elems) in elems {
        batch.delete(element(table, map, elems));
    }
    batch
}

/// The map elements of published ports, per map (in the order of [`MAPS`]), then their
/// `published` set elements; empty maps and sets left out. Routed ports have no map elements.
fn port_elements(ports: &[PortRule], label: bool) -> Vec<(&'static str, Vec<Expression<'static>>)> {
    let mut out: Vec<(&'static str, Vec<Expression<'static>>)> = MAPS.iter().map(|m| (m.name, vec![])).collect();
    for p in ports.iter().filter(|p| !p.routed) {
        let proto = || string(p.proto.as_str());
        let port = || Expression::Number(u32::from(p.host_port));
        let key = match p.host_addr {
            Some(addr) => concat(vec![string(&addr.to_string()), proto(), port()]),
            None => concat(vec![proto(), port()]),
        };
        let key = if label && !p.owner.is_empty() { labelled(key, &p.owner) } else { key };
        let (addr_map, port_map) = match (p.is_ipv4(), p.host_addr.is_some()) {
            (true, true) => (MAP_DNAT4_ADDR, MAP_DNAT4_PORT),
            (true, false) => (MAP_DNAT4_ANY_ADDR, MAP_DNAT4_ANY_PORT),
            (false, true) => (MAP_DNAT6_ADDR, MAP_DNAT6_PORT),
            (false, false) => (MAP_DNAT6_ANY_ADDR, MAP_DNAT6_ANY_PORT),
        };
        for (map, data) in
            [(addr_map, string(&p.dest.to_string())), (port_map, Expression::Number(u32::from(p.dest_port)))]
        {
            let slot = out.iter_mut().find(|(m, _)| *m == map).expect("every map is listed");
            slot.1.push(Expression::List(vec![key.clone(), data]));
        }
    }
    out.retain(|(_, elems)| !elems.is_empty());
    out.extend(published_elements(ports, label));
    out
}

/// The `published` set elements (container address . protocol . port) of ports, each once.
fn published_elements(ports: &[PortRule], label: bool) -> Vec<(&'static str, Vec<Expression<'static>>)> {
    let mut seen = HashSet::new();
    let mut v4 = vec![];
    let mut v6 = vec![];
    for p in ports.iter().filter(|p| seen.insert(p.target())) {
        let key = concat(vec![
            string(&p.dest.to_string()),
            string(p.proto.as_str()),
            Expression::Number(u32::from(p.dest_port)),
        ]);
        let key = if label && !p.owner.is_empty() { labelled(key, &p.owner) } else { key };
        if p.is_ipv4() { v4.push(key) } else { v6.push(key) }
    }
    [(SET_PUBLISHED4, v4), (SET_PUBLISHED6, v6)].into_iter().filter(|(_, elems)| !elems.is_empty()).collect()
}

/// Deletes the table; added first, so a missing table is no error.
pub fn delete_table(table: &str) -> Batch<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table_obj(table)));
    batch.delete(NfListObject::Table(table_obj(table)));
    batch
}

/// The sets, chains and rules of the table (without the table object itself).
pub fn layout(table: &str) -> Vec<NfListObject<'static>> {
    let mut objs: Vec<NfListObject<'static>> =
        SETS.iter().map(|spec| NfListObject::Set(Box::new(set(table, spec)))).collect();
    objs.extend(MAPS.iter().map(|spec| NfListObject::Map(Box::new(map(table, spec)))));
    objs.extend([
        chain(table, CHAIN_FORWARD, NfChainType::Filter, NfHook::Forward, PRIO_FILTER),
        chain(table, CHAIN_POSTROUTING, NfChainType::NAT, NfHook::Postrouting, PRIO_SRCNAT),
        chain(table, CHAIN_PREROUTING, NfChainType::NAT, NfHook::Prerouting, PRIO_DSTNAT),
        chain(table, CHAIN_OUTPUT, NfChainType::NAT, NfHook::Output, PRIO_DSTNAT),
        chain(table, CHAIN_RAW_PREROUTING, NfChainType::Filter, NfHook::Prerouting, PRIO_RAW),
        chain(table, CHAIN_RAW_OUTPUT, NfChainType::Filter, NfHook::Output, PRIO_RAW),
        NfListObject::Chain(regular_chain(table, CHAIN_VXLAN_STRANGERS)),
        NfListObject::Chain(regular_chain(table, CHAIN_VXLAN_PLAINTEXT)),
    ]);
    // A packet for a loopback address that did not come in by `lo` is a neighbour's forgery: the
    // kernel's martian check would drop it, but only after the DNAT of prerouting sent it to a
    // container whose port is published on 127.0.0.1 or ::1 (moby#49325). Drop it first.
    for (ip, net, comment) in [
        ("ip", "127.0.0.0/8", "loopback destinations only from lo (IPv4)"),
        ("ip6", "::1/128", "loopback destinations only from lo (IPv6)"),
    ] {
        objs.push(rule(
            table,
            CHAIN_RAW_PREROUTING,
            vec![
                Statement::Match(Match {
                    left: meta(MetaKey::Iifname),
                    right: Expression::String("lo".into()),
                    op: Operator::NEQ,
                }),
                Statement::Match(Match {
                    left: payload(ip, "daddr"),
                    right: prefix(&net.parse().expect("a valid prefix")),
                    op: Operator::EQ,
                }),
                drop(),
            ],
            comment,
        ));
    }
    let vxlan = || {
        Statement::Match(Match {
            left: payload("udp", "dport"),
            right: Expression::Number(u32::from(VXLAN_PORT)),
            op: Operator::EQ,
        })
    };
    let jump = |chain: &str| Statement::Jump(JumpTarget { target: owned(chain) });
    // The VXLAN guard, before conntrack (a dropped forgery costs no entry). The plaintext check
    // comes first: a peer's address is easily forged on the underlay.
    objs.push(rule(
        table,
        CHAIN_RAW_PREROUTING,
        vec![vxlan(), jump(CHAIN_VXLAN_PLAINTEXT)],
        "VXLAN of encrypted networks only through their tunnel",
    ));
    for (ip, peers, comment) in [
        ("ip", SET_VXLAN_PEERS4, "VXLAN for cnet's VNIs only from the cluster's hosts (IPv4)"),
        ("ip6", SET_VXLAN_PEERS6, "VXLAN for cnet's VNIs only from the cluster's hosts (IPv6)"),
    ] {
        objs.push(rule(
            table,
            CHAIN_RAW_PREROUTING,
            vec![
                vxlan(),
                Statement::Match(Match { left: payload(ip, "saddr"), right: set_ref(peers), op: Operator::NEQ }),
                fib_daddr_is_local(),
                jump(CHAIN_VXLAN_STRANGERS),
            ],
            comment,
        ));
    }
    for chain in [CHAIN_RAW_PREROUTING, CHAIN_RAW_OUTPUT] {
        objs.push(rule(table, chain, vec![vxlan(), Statement::Notrack], "VXLAN tunnels: no connection tracking"));
    }
    let iif_oif = || concat(vec![meta(MetaKey::Iifname), meta(MetaKey::Oifname)]);
    let forward = [
        (vec![is(iif_oif(), SET_ICC_OFF), drop()], "icc=false: nothing between the ports of one bridge"),
        (vec![is(iif_oif(), SET_BRIDGE_SELF), Statement::Accept(None)], "traffic that stays on one bridge"),
        (vec![is(meta(MetaKey::Iifname), SET_INTERNAL), drop()], "internal: nothing out of the bridge"),
        (vec![is(meta(MetaKey::Oifname), SET_INTERNAL), drop()], "internal: nothing into the bridge"),
        (vec![ct_status_dnat(), Statement::Accept(None)], "published ports, from any network"),
        (
            vec![
                is(meta(MetaKey::Oifname), SET_BRIDGES),
                Statement::Match(Match {
                    left: Expression::Named(NamedExpression::CT(CT {
                        key: Cow::Borrowed("state"),
                        family: None,
                        dir: None,
                    })),
                    right: Expression::List(vec![string("established"), string("related")]),
                    op: Operator::IN,
                }),
                Statement::Accept(None),
            ],
            "replies to what the containers opened",
        ),
    ];
    let target = |ip: &'static str| concat(vec![payload(ip, "daddr"), meta(MetaKey::L4proto), payload("th", "dport")]);
    let l4proto =
        |name: &str| Statement::Match(Match { left: meta(MetaKey::L4proto), right: string(name), op: Operator::EQ });
    let direct = [
        (
            vec![is(meta(MetaKey::Oifname), SET_ROUTED4), is(target("ip"), SET_PUBLISHED4), Statement::Accept(None)],
            "gateway mode routed: published container ports (IPv4)",
        ),
        (
            vec![is(meta(MetaKey::Oifname), SET_ROUTED6), is(target("ip6"), SET_PUBLISHED6), Statement::Accept(None)],
            "gateway mode routed: published container ports (IPv6)",
        ),
        (
            vec![is(meta(MetaKey::Oifname), SET_ROUTED4), l4proto("icmp"), Statement::Accept(None)],
            "gateway mode routed: ICMP",
        ),
        (
            vec![is(meta(MetaKey::Oifname), SET_ROUTED6), l4proto("ipv6-icmp"), Statement::Accept(None)],
            "gateway mode routed: ICMPv6",
        ),
        (
            vec![is(iif_oif(), SET_TRUSTED), is(target("ip"), SET_PUBLISHED4), Statement::Accept(None)],
            "trusted host interfaces: published container ports (IPv4)",
        ),
        (
            vec![is(iif_oif(), SET_TRUSTED), is(target("ip6"), SET_PUBLISHED6), Statement::Accept(None)],
            "trusted host interfaces: published container ports (IPv6)",
        ),
        (
            vec![is(meta(MetaKey::Iifname), SET_BRIDGES), is(meta(MetaKey::Oifname), SET_BRIDGES), drop()],
            "nothing between two cnet bridges",
        ),
    ];
    for (expr, comment) in forward.into_iter().chain(direct) {
        objs.push(rule(table, CHAIN_FORWARD, expr, comment));
    }
    // Gateway mode nat (the default): from outside, a container is reached only through a
    // published port; routing the subnet via the host gets nothing else (Docker 28, moby#48724).
    for (nfproto, unprotected) in [("ipv4", SET_UNPROTECTED4), ("ipv6", SET_UNPROTECTED6)] {
        objs.push(rule(
            table,
            CHAIN_FORWARD,
            vec![
                Statement::Match(Match { left: meta(MetaKey::Nfproto), right: string(nfproto), op: Operator::EQ }),
                is(meta(MetaKey::Oifname), SET_BRIDGES),
                Statement::Match(Match {
                    left: meta(MetaKey::Oifname),
                    right: set_ref(unprotected),
                    op: Operator::NEQ,
                }),
                drop(),
            ],
            "gateway mode nat: only published ports from outside",
        ));
    }
    for (proto, set) in [("ip", SET_HAIRPIN4), ("ip6", SET_HAIRPIN6)] {
        objs.push(rule(
            table,
            CHAIN_POSTROUTING,
            vec![
                ct_status_dnat(),
                is(concat(vec![payload(proto, "saddr"), meta(MetaKey::Oifname)]), set),
                Statement::Masquerade(None),
            ],
            "hairpin: a published port reached from its own bridge",
        ));
    }
    objs.push(rule(
        table,
        CHAIN_POSTROUTING,
        vec![
            Statement::Match(Match {
                left: payload("ip", "saddr"),
                right: prefix(&"127.0.0.0/8".parse().expect("a valid prefix")),
                op: Operator::EQ,
            }),
            is(meta(MetaKey::Oifname), SET_BRIDGES),
            Statement::Masquerade(None),
        ],
        "published ports reached from the host on 127.0.0.0/8",
    ));
    for (proto, set, own, comment) in [
        ("ip", SET_MASQ4, SET_MASQ4_OWN, "outbound NAT from IPv4 subnets"),
        ("ip6", SET_MASQ6, SET_MASQ6_OWN, "outbound NAT from IPv6 subnets"),
    ] {
        let saddr = || payload(proto, "saddr");
        let expr = vec![
            is(saddr(), set),
            Statement::Match(Match {
                left: concat(vec![saddr(), meta(MetaKey::Oifname)]),
                right: set_ref(own),
                op: Operator::NEQ,
            }),
            Statement::Masquerade(None),
        ];
        objs.push(rule(table, CHAIN_POSTROUTING, expr, comment));
    }
    for chain in [CHAIN_PREROUTING, CHAIN_OUTPUT] {
        for (ip, family, addr_map, port_map, any_addr, any_port) in [
            ("ip", NATFamily::IP, MAP_DNAT4_ADDR, MAP_DNAT4_PORT, MAP_DNAT4_ANY_ADDR, MAP_DNAT4_ANY_PORT),
            ("ip6", NATFamily::IP6, MAP_DNAT6_ADDR, MAP_DNAT6_PORT, MAP_DNAT6_ANY_ADDR, MAP_DNAT6_ANY_PORT),
        ] {
            let one = || concat(vec![payload(ip, "daddr"), meta(MetaKey::L4proto), payload("th", "dport")]);
            let any = || concat(vec![meta(MetaKey::L4proto), payload("th", "dport")]);
            objs.push(rule(
                table,
                chain,
                dnat_rule(ip, family, one, addr_map, port_map),
                "published ports on one host address",
            ));
            let mut every = dnat_rule(ip, family, any, any_addr, any_port);
            if chain == CHAIN_OUTPUT && ip == "ip6" {
                // The host's own connections to [::1]:PORT go to cnet-ports' relay, which listens
                // there: a DNAT of ::1 towards a container is dropped by the kernel (it never routes
                // ::1 out of lo), so the connection would hang.
                every.insert(
                    1,
                    Statement::Match(Match {
                        left: payload("ip6", "daddr"),
                        right: prefix(&"::1/128".parse().expect("a valid prefix")),
                        op: Operator::NEQ,
                    }),
                );
            }
            objs.push(rule(table, chain, every, "published ports on every host address"));
        }
    }
    objs
}

/// `meta nfproto F fib daddr type local dnat F to KEY map @addr_map : KEY map @port_map`
fn dnat_rule(
    ip: &'static str,
    family: NATFamily,
    key: impl Fn() -> Expression<'static>,
    addr_map: &str,
    port_map: &str,
) -> Vec<Statement<'static>> {
    let lookup =
        |map: &str| Expression::Named(NamedExpression::Map(Box::new(ExprMap { key: key(), data: set_ref(map) })));
    vec![
        Statement::Match(Match {
            left: meta(MetaKey::Nfproto),
            right: string(if ip == "ip" { "ipv4" } else { "ipv6" }),
            op: Operator::EQ,
        }),
        fib_daddr_is_local(),
        Statement::DNAT(Some(NAT {
            addr: Some(lookup(addr_map)),
            family: Some(family),
            port: Some(lookup(port_map)),
            flags: None,
        })),
    ]
}

/// `fib daddr type local`: the packet is for this host.
fn fib_daddr_is_local() -> Statement<'static> {
    Statement::Match(Match {
        left: Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: HashSet::from([FibFlag::Daddr]),
        })),
        right: string("local"),
        op: Operator::EQ,
    })
}

/// `ct status dnat`
fn ct_status_dnat() -> Statement<'static> {
    Statement::Match(Match {
        left: Expression::Named(NamedExpression::CT(CT { key: Cow::Borrowed("status"), family: None, dir: None })),
        right: string("dnat"),
        op: Operator::IN,
    })
}

/// The elements that stand for one network, per set, in a fixed order; empty sets left out.
fn elements(net: &NetworkRules) -> Vec<(&'static str, Vec<Expression<'static>>)> {
    let br = || string(&net.bridge);
    let pair = || concat(vec![br(), br()]);
    let mut out = vec![(SET_BRIDGES, vec![br()]), (SET_BRIDGE_SELF, vec![pair()])];
    if !net.icc {
        out.push((SET_ICC_OFF, vec![pair()]));
    }
    if net.internal {
        out.push((SET_INTERNAL, vec![br()]));
    }
    for (mode, set) in [(net.gateway_v4, SET_UNPROTECTED4), (net.gateway_v6, SET_UNPROTECTED6)] {
        if mode == GatewayMode::NatUnprotected {
            out.push((set, vec![br()]));
        }
    }
    for (mode, set) in [(net.gateway_v4, SET_ROUTED4), (net.gateway_v6, SET_ROUTED6)] {
        if mode == GatewayMode::Routed {
            out.push((set, vec![br()]));
        }
    }
    if !net.trusted_interfaces.is_empty() {
        out.push((SET_TRUSTED, net.trusted_interfaces.iter().map(|i| concat(vec![string(i), br()])).collect()));
    }
    let nets = net.networks();
    if !net.internal {
        for (v4, set) in [(true, SET_HAIRPIN4), (false, SET_HAIRPIN6)] {
            let own: Vec<Expression<'static>> =
                nets.iter().filter(|n| n.is_ipv4() == v4).map(|n| concat(vec![prefix(n), br()])).collect();
            if !own.is_empty() {
                out.push((set, own));
            }
        }
    }
    for (v4, set, own) in [(true, SET_MASQ4, SET_MASQ4_OWN), (false, SET_MASQ6, SET_MASQ6_OWN)] {
        let family: Vec<&IpNetwork> = nets.iter().filter(|n| n.is_ipv4() == v4).collect();
        if family.is_empty() || !net.masquerades_family(v4) {
            continue;
        }
        out.push((set, family.iter().map(|n| prefix(n)).collect()));
        out.push((own, family.iter().map(|n| concat(vec![prefix(n), br()])).collect()));
    }
    out
}

fn table_obj(table: &str) -> Table<'static> {
    Table { family: NfFamily::INet, name: owned(table), handle: None }
}

fn set(table: &str, spec: &SetSpec) -> Set<'static> {
    let set_type = match spec.key {
        [one] => SetTypeValue::Single(*one),
        many => SetTypeValue::Concatenated(Cow::Borrowed(many)),
    };
    Set {
        family: NfFamily::INet,
        table: owned(table),
        name: Cow::Borrowed(spec.name),
        handle: None,
        set_type,
        policy: None,
        flags: spec.interval.then(|| HashSet::from([SetFlag::Interval])),
        elem: None,
        timeout: None,
        gc_interval: None,
        size: None,
        comment: None,
    }
}

fn map(table: &str, spec: &MapSpec) -> Map<'static> {
    Map {
        family: NfFamily::INet,
        table: owned(table),
        name: Cow::Borrowed(spec.name),
        handle: None,
        set_type: SetTypeValue::Concatenated(Cow::Borrowed(spec.key)),
        map: SetTypeValue::Single(spec.data),
        policy: None,
        flags: None,
        elem: None,
        timeout: None,
        gc_interval: None,
        size: None,
        comment: None,
    }
}

/// A batch as the JSON nft reads. The `nftables` crate (0.6) writes the `notrack` statement as the
/// bare string `"notrack"`, which nft refuses; nft's schema has `{"notrack": null}`. Only the
/// statements of rules are rewritten (a set element may be an interface named "notrack").
pub fn nft_json(nftables: &Nftables<'_>) -> serde_json::Value {
    let mut json = serde_json::to_value(nftables).expect("an nft batch is JSON");
    let commands = json.get_mut("nftables").and_then(serde_json::Value::as_array_mut);
    for command in commands.into_iter().flatten() {
        let rules = command.as_object_mut().into_iter().flat_map(|c| c.values_mut());
        for rule in rules.filter_map(|object| object.get_mut("rule")) {
            let statements = rule.get_mut("expr").and_then(serde_json::Value::as_array_mut);
            for statement in statements.into_iter().flatten() {
                if statement.as_str() == Some("notrack") {
                    *statement = serde_json::json!({ "notrack": null });
                }
            }
        }
    }
    json
}

fn chain(table: &str, name: &'static str, kind: NfChainType, hook: NfHook, prio: i32) -> NfListObject<'static> {
    NfListObject::Chain(Chain {
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..regular_chain(table, name)
    })
}

/// A chain with no hook, entered only by a jump.
fn regular_chain(table: &str, name: &'static str) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: owned(table),
        name: Cow::Borrowed(name),
        newname: None,
        handle: None,
        _type: None,
        hook: None,
        prio: None,
        dev: None,
        policy: None,
    }
}

fn rule(
    table: &str,
    chain: &'static str,
    expr: Vec<Statement<'static>>,
    comment: impl Into<Cow<'static, str>>,
) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: owned(table),
        chain: Cow::Borrowed(chain),
        expr: Cow::Owned(expr),
        handle: None,
        index: None,
        comment: Some(comment.into()),
    })
}

fn element(table: &str, set: &'static str, elem: Vec<Expression<'static>>) -> NfListObject<'static> {
    NfListObject::Element(Element {
        family: NfFamily::INet,
        table: owned(table),
        name: Cow::Borrowed(set),
        elem: Cow::Owned(elem),
    })
}

/// An element carrying the network's short id as its comment, so a listing shows whose it is.
fn labelled(val: Expression<'static>, short_id: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Elem(Elem {
        val: Box::new(val),
        timeout: None,
        expires: None,
        comment: Some(owned(short_id)),
        counter: None,
    }))
}

/// `left @set` (a set lookup).
fn is(left: Expression<'static>, set: &str) -> Statement<'static> {
    Statement::Match(Match { left, right: set_ref(set), op: Operator::EQ })
}

fn drop() -> Statement<'static> {
    Statement::Drop(None)
}

fn set_ref(set: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(format!("@{set}")))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: Cow::Borrowed(protocol),
        field: Cow::Borrowed(field),
    })))
}

fn concat(parts: Vec<Expression<'static>>) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(parts))
}

fn prefix(net: &IpNetwork) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(Expression::String(Cow::Owned(net.network().to_string()))),
        len: u32::from(net.prefix()),
    }))
}

fn string(s: &str) -> Expression<'static> {
    Expression::String(owned(s))
}

fn owned(s: &str) -> Cow<'static, str> {
    Cow::Owned(s.to_owned())
}

#[cfg(test)]
mod tests;
