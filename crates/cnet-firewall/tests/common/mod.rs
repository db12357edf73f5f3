//! Test kit: every test runs in its own network namespace, so its nft tables and links die with it.
//! These tests need root and fail (never skip) without it.

#![allow(dead_code)] // each test binary uses a different part of the kit

use std::future::Future;
use std::process::Command;

use cnet_firewall::{Firewall, NetworkRules};
use nix::sched::{CloneFlags, unshare};
use serde_json::Value;

/// Runs `test` on a fresh thread that first moves into a new network namespace, on a current-thread
/// tokio runtime there. Child processes (nft, ip) spawned from that thread inherit its namespace.
pub fn in_netns<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::spawn(move || {
        unshare(CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET) failed: the cnet-firewall tests must run as root");
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(test());
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Runs a shell command (in the calling thread's netns); panics with its output if it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn net(id: &str, bridge: &str, subnets: &[&str]) -> NetworkRules {
    NetworkRules {
        id: id.into(),
        bridge: bridge.into(),
        subnets: subnets.iter().map(|s| s.parse().unwrap()).collect(),
        masquerade: true,
        internal: false,
        icc: true,
        gateway_v4: cnet_firewall::GatewayMode::Nat,
        gateway_v6: cnet_firewall::GatewayMode::Nat,
        trusted_interfaces: vec![],
    }
}

/// The table as `nft -j list table inet NAME` shows it (parsed by the nftables crate), without
/// the metainfo object and handles, with set elements sorted: equal listings mean equal tables.
pub async fn listing(fw: &Firewall) -> Value {
    let ruleset = fw.ruleset().await.expect("list the table");
    let mut value = serde_json::to_value(ruleset).unwrap();
    let objects = value["nftables"].as_array_mut().unwrap();
    objects.retain(|o| o.get("metainfo").is_none());
    for object in objects.iter_mut() {
        strip_handles(object);
        for kind in ["/set/elem", "/map/elem"] {
            if let Some(elems) = object.pointer_mut(kind).and_then(Value::as_array_mut) {
                elems.sort_by_key(|e| e.to_string());
            }
        }
    }
    value
}

fn strip_handles(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("handle");
            map.values_mut().for_each(strip_handles);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_handles),
        _ => {}
    }
}

fn objects<'a>(listing: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    listing["nftables"].as_array().unwrap().iter().filter_map(move |o| o.get(kind))
}

/// The elements of a set as `(value, comment)`, sorted.
pub fn elems(listing: &Value, set: &str) -> Vec<(Value, Option<String>)> {
    let set =
        objects(listing, "set").find(|s| s["name"] == set).unwrap_or_else(|| panic!("no set {set} in {listing:#}"));
    let mut out: Vec<(Value, Option<String>)> = set
        .get("elem")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| match e.get("elem") {
            Some(inner) => (inner["val"].clone(), inner["comment"].as_str().map(String::from)),
            None => (e.clone(), None),
        })
        .collect();
    out.sort_by_key(|(v, _)| v.to_string());
    out
}

/// The element values of a set, sorted, comments dropped.
pub fn values(listing: &Value, set: &str) -> Vec<Value> {
    elems(listing, set).into_iter().map(|(v, _)| v).collect()
}

/// The rules of a chain, as their `expr` arrays.
pub fn rules(listing: &Value, chain: &str) -> Vec<Value> {
    objects(listing, "rule").filter(|r| r["chain"] == chain).map(|r| r["expr"].clone()).collect()
}

pub fn chains(listing: &Value) -> Vec<String> {
    let mut names: Vec<String> = objects(listing, "chain").map(|c| c["name"].as_str().unwrap().to_owned()).collect();
    names.sort();
    names
}

/// The entries of a map as `(key, value, comment)`, sorted.
pub fn map_entries(listing: &Value, map: &str) -> Vec<(Value, Value, Option<String>)> {
    let map =
        objects(listing, "map").find(|m| m["name"] == map).unwrap_or_else(|| panic!("no map {map} in {listing:#}"));
    let mut out: Vec<(Value, Value, Option<String>)> = map
        .get("elem")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            let (key, data) = (e[0].clone(), e[1].clone());
            match key.get("elem") {
                Some(inner) => (inner["val"].clone(), data, inner["comment"].as_str().map(String::from)),
                None => (key, data, None),
            }
        })
        .collect();
    out.sort_by_key(|(k, _, _)| k.to_string());
    out
}
