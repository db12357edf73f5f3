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
//!
//!     chain forward {
//!         type filter hook forward priority filter; policy accept;
//!         iifname . oifname @icc_off drop
//!         iifname . oifname @bridge_self accept
//!         iifname @internal drop
//!         oifname @internal drop
//!         iifname @bridges oifname @bridges drop
//!     }
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         ip saddr @masq4 ip saddr . oifname != @masq4_own masquerade
//!         ip6 saddr @masq6 ip6 saddr . oifname != @masq6_own masquerade
//!     }
//!     chain prerouting { type nat hook prerouting priority dstnat; policy accept; }  # published ports
//!     chain output { type nat hook output priority dstnat; policy accept; }          # published ports
//! }
//! ```
//!
//! The chains and rules never change after the table is made. A network is only set elements
//! (labelled with a comment holding its short id), so adding or removing one is a constant number of
//! element commands whatever the number of networks, and each packet costs a few hash lookups.
//! Verdict maps (`iifname vmap @…` to per-network chains) were the other candidate, but the
//! `nftables` crate 0.6 cannot declare a map whose data type is `verdict` (`SetType` has no such
//! variant), and the flat sets need no per-network chains at all.
//!
//! `prerouting` and `output` stay empty until port publishing: it adds its DNAT rule there, with two
//! maps keyed `ip daddr . meta l4proto . th dport` (one for the address, one for the port: nft 1.0.6
//! cannot do concatenated map data in JSON).

use std::borrow::Cow;
use std::collections::HashSet;

use ipnetwork::IpNetwork;
use nftables::batch::Batch;
use nftables::expr::{Elem, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix};
use nftables::schema::{Chain, Element, NfCmd, NfListObject, Rule, Set, SetFlag, SetType, SetTypeValue, Table};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::NetworkRules;

pub const SET_BRIDGES: &str = "bridges";
pub const SET_BRIDGE_SELF: &str = "bridge_self";
pub const SET_ICC_OFF: &str = "icc_off";
pub const SET_INTERNAL: &str = "internal";
pub const SET_MASQ4: &str = "masq4";
pub const SET_MASQ4_OWN: &str = "masq4_own";
pub const SET_MASQ6: &str = "masq6";
pub const SET_MASQ6_OWN: &str = "masq6_own";

pub const CHAIN_FORWARD: &str = "forward";
pub const CHAIN_POSTROUTING: &str = "postrouting";
pub const CHAIN_PREROUTING: &str = "prerouting";
pub const CHAIN_OUTPUT: &str = "output";

/// nft's named priorities: `filter`, `srcnat`, `dstnat`.
const PRIO_FILTER: i32 = 0;
const PRIO_SRCNAT: i32 = 100;
const PRIO_DSTNAT: i32 = -100;

struct SetSpec {
    name: &'static str,
    key: &'static [SetType],
    interval: bool,
}

const SETS: [SetSpec; 8] = [
    SetSpec { name: SET_BRIDGES, key: &[SetType::Ifname], interval: false },
    SetSpec { name: SET_BRIDGE_SELF, key: &[SetType::Ifname, SetType::Ifname], interval: false },
    SetSpec { name: SET_ICC_OFF, key: &[SetType::Ifname, SetType::Ifname], interval: false },
    SetSpec { name: SET_INTERNAL, key: &[SetType::Ifname], interval: false },
    SetSpec { name: SET_MASQ4, key: &[SetType::Ipv4Addr], interval: true },
    SetSpec { name: SET_MASQ4_OWN, key: &[SetType::Ipv4Addr, SetType::Ifname], interval: true },
    SetSpec { name: SET_MASQ6, key: &[SetType::Ipv6Addr], interval: true },
    SetSpec { name: SET_MASQ6_OWN, key: &[SetType::Ipv6Addr, SetType::Ifname], interval: true },
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
    for (set, elems) in elements(net) {
        let elems = elems.into_iter().map(|e| labelled(e, net.short_id())).collect();
        batch.add(element(table, set, elems));
    }
    batch
}

/// Removes one network's set elements. Each is added first, so a missing one (which nft's `delete`
/// would reject) is no error: the transaction adds and deletes it.
pub fn remove_network(table: &str, net: &NetworkRules) -> Batch<'static> {
    let elems = elements(net);
    let mut batch = Batch::new();
    for (set, elems) in &elems {
        batch.add(element(table, set, elems.clone()));
    }
    for (set, elems) in elems {
        batch.delete(element(table, set, elems));
    }
    batch
}

/// Replaces the table by exactly these networks: delete it (added first, so a missing table is no
/// error) and create it again with all elements, in one transaction.
pub fn sync(table: &str, nets: &[NetworkRules]) -> Batch<'static> {
    let mut batch = delete_table(table);
    batch.add(NfListObject::Table(table_obj(table)));
    for obj in layout(table) {
        batch.add(obj);
    }
    for net in nets {
        batch.add_all(add_network(table, net).to_nftables().objects.into_owned());
    }
    batch
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
    objs.extend([
        chain(table, CHAIN_FORWARD, NfChainType::Filter, NfHook::Forward, PRIO_FILTER),
        chain(table, CHAIN_POSTROUTING, NfChainType::NAT, NfHook::Postrouting, PRIO_SRCNAT),
        chain(table, CHAIN_PREROUTING, NfChainType::NAT, NfHook::Prerouting, PRIO_DSTNAT),
        chain(table, CHAIN_OUTPUT, NfChainType::NAT, NfHook::Output, PRIO_DSTNAT),
    ]);
    let iif_oif = || concat(vec![meta(MetaKey::Iifname), meta(MetaKey::Oifname)]);
    let forward = [
        (vec![is(iif_oif(), SET_ICC_OFF), drop()], "icc=false: nothing between the ports of one bridge"),
        (vec![is(iif_oif(), SET_BRIDGE_SELF), Statement::Accept(None)], "traffic that stays on one bridge"),
        (vec![is(meta(MetaKey::Iifname), SET_INTERNAL), drop()], "internal: nothing out of the bridge"),
        (vec![is(meta(MetaKey::Oifname), SET_INTERNAL), drop()], "internal: nothing into the bridge"),
        (
            vec![is(meta(MetaKey::Iifname), SET_BRIDGES), is(meta(MetaKey::Oifname), SET_BRIDGES), drop()],
            "nothing between two cnet bridges",
        ),
    ];
    for (expr, comment) in forward {
        objs.push(rule(table, CHAIN_FORWARD, expr, comment));
    }
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
    objs
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
    if net.masquerades() {
        let nets = net.networks();
        for (v4, set, own) in [(true, SET_MASQ4, SET_MASQ4_OWN), (false, SET_MASQ6, SET_MASQ6_OWN)] {
            let family: Vec<&IpNetwork> = nets.iter().filter(|n| n.is_ipv4() == v4).collect();
            if family.is_empty() {
                continue;
            }
            out.push((set, family.iter().map(|n| prefix(n)).collect()));
            out.push((own, family.iter().map(|n| concat(vec![prefix(n), br()])).collect()));
        }
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

fn chain(table: &str, name: &'static str, kind: NfChainType, hook: NfHook, prio: i32) -> NfListObject<'static> {
    NfListObject::Chain(Chain {
        family: NfFamily::INet,
        table: owned(table),
        name: Cow::Borrowed(name),
        newname: None,
        handle: None,
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        dev: None,
        policy: Some(NfChainPolicy::Accept),
    })
}

fn rule(
    table: &str,
    chain: &'static str,
    expr: Vec<Statement<'static>>,
    comment: &'static str,
) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: owned(table),
        chain: Cow::Borrowed(chain),
        expr: Cow::Owned(expr),
        handle: None,
        index: None,
        comment: Some(Cow::Borrowed(comment)),
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
