//! Link state: one end of a link (an endpoint's interface in its container) taken down or up,
//! given another MTU, or shaped (a rate, netem's delay, jitter, loss, corruption), and the
//! links listed with both ends. What is set is kept on the endpoint record
//! ([`Endpoint::link`]), so `link ls` shows it and a restart puts it back where the kernel lost
//! it; the endpoint's removal takes it with the interface (a qdisc dies with its link, and a
//! park moves the link out of the namespace, which drops its qdisc too).

use cnet_core::shaping::{LinkSettings, Shaping};
use cnet_kernel::{LinkStatus, Netem, RootQdisc, Tbf};

use super::*;

/// `cnet link set NODE:IFACE [up|down] [--mtu N] [--rate …]`, parsed.
#[derive(Debug, Clone, Default)]
pub struct LinkRequest {
    /// Container: name, id or unique id prefix.
    pub container: String,
    pub interface: String,
    /// `Some(true)`: up, `Some(false)`: down, `None`: as it is.
    pub up: Option<bool>,
    pub mtu: Option<u32>,
    /// `Some`: replaces the end's whole shaping (empty: none); `None`: as it is.
    pub shaping: Option<Shaping>,
}

/// One end of a link: its records, and what the kernel says of its interface now (`None` when
/// the interface could not be read, which `link ls` shows rather than fails on).
#[derive(Debug, Clone)]
pub struct LinkEndView {
    pub sandbox: Sandbox,
    pub endpoint: Endpoint,
    pub status: Option<LinkStatus>,
}

/// A link: a network of a driver that takes at most two endpoints, and its ends.
#[derive(Debug, Clone)]
pub struct LinkView {
    pub network: Network,
    pub ends: Vec<LinkEndView>,
}

impl Controller {
    pub async fn set_link(&self, req: LinkRequest) -> Result<LinkEndView> {
        let mut st = self.state.lock().await;
        let sandbox = st
            .find_sandbox(&req.container)
            .map_err(|_| Error::not_found(format!("no such container: {}", req.container)))?
            .clone();
        let Some(endpoint) = st.endpoints_of_sandbox(&sandbox.id).find(|e| e.ifname == req.interface).cloned() else {
            let mut names: Vec<String> = st.endpoints_of_sandbox(&sandbox.id).map(|e| e.ifname.clone()).collect();
            names.sort();
            let known = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            return Err(Error::not_found(format!(
                "container {} has no interface {} (its interfaces: {known})",
                label(&sandbox),
                req.interface
            )));
        };
        let network = st
            .networks
            .get(&endpoint.network_id)
            .cloned()
            .ok_or_else(|| Error::internal("endpoint's network vanished"))?;
        let own_netns = self.drivers.get(network.driver.as_str()).is_some_and(|d| d.capabilities().needs_sandbox_netns);
        if !own_netns || sandbox.host_network {
            return Err(Error::precondition(format!(
                "{}:{} is on network {} (driver {}), which gives the container no interface of its own",
                label(&sandbox),
                req.interface,
                network.name,
                network.driver
            )));
        }
        let old = endpoint.link.clone();
        let new = LinkSettings {
            down: req.up.map(|up| !up).unwrap_or(old.down),
            mtu: req.mtu.or(old.mtu),
            shaping: req.shaping.unwrap_or(old.shaping),
        };
        new.shaping.validate()?;
        let ifname = endpoint.ifname.as_str();
        let ns = NetnsHandle::open(Path::new(&sandbox.netns_path))
            .await
            .internal(format!("opening the namespace of container {}", label(&sandbox)))?;
        let before = ns
            .link_status(ifname)
            .await
            .internal(format!("reading {ifname} in container {}", label(&sandbox)))?
            .ok_or_else(|| {
                Error::internal(format!("interface {ifname} is missing from container {}", label(&sandbox)))
            })?;

        // The qdisc first: it is the step that fails for want of a kernel feature, and a failed
        // replace leaves the old qdisc, so a refusal changes nothing. A tbf's burst follows the
        // MTU, so a new MTU shapes again too.
        let reshape = req.shaping.is_some() || (new.mtu != old.mtu && !new.shaping.is_empty());
        if reshape {
            apply_shaping(&ns, ifname, &new.shaping, new.mtu.unwrap_or(before.mtu))
                .await
                .map_err(|e| shaping_error(e, &sandbox, ifname))?;
        }
        let up = req.up.filter(|up| *up != before.up);
        let mtu = req.mtu.filter(|m| *m != before.mtu);
        if (up.is_some() || mtu.is_some())
            && let Err(e) = ns.set_link_state(ifname, up, mtu).await
        {
            if reshape {
                put_back_shaping(&ns, ifname, &old.shaping, before.mtu).await;
            }
            return Err(match (e.errno(), mtu) {
                (Some(nix::libc::EINVAL), Some(m)) => {
                    Error::invalid(format!("MTU {m} is out of range for {}:{ifname}", label(&sandbox)))
                }
                _ => Error::internal(format!("setting {ifname} in container {}: {e}", label(&sandbox))),
            });
        }

        let mut updated = endpoint.clone();
        updated.link = new;
        let mut batch = Batch::new();
        batch.put_endpoint(&updated);
        if let Err(e) = self.store.commit(batch) {
            if up.is_some() || mtu.is_some() {
                let _ = ns.set_link_state(ifname, up.map(|_| before.up), mtu.map(|_| before.mtu)).await;
            }
            if reshape {
                put_back_shaping(&ns, ifname, &old.shaping, before.mtu).await;
            }
            return Err(Error::internal(format!("saving the link state of {}:{ifname}: {e}", label(&sandbox))));
        }
        st.insert_endpoint(updated.clone());
        drop(st);
        let action = match up {
            Some(true) => Some("up"),
            Some(false) => Some("down"),
            None => (updated.link != old).then_some("update"),
        };
        if let Some(action) = action {
            self.events.publish(Event::link(action, &network, &sandbox, &updated));
        }
        tracing::info!(
            container = %label(&sandbox),
            %ifname,
            down = updated.link.down,
            mtu = ?updated.link.mtu,
            shaping = %updated.link.shaping,
            "link set"
        );
        let status = ns.link_status(ifname).await.ok().flatten();
        Ok(LinkEndView { sandbox, endpoint: updated, status })
    }

    /// Every link (a network whose driver takes at most two endpoints: p2p), with the label
    /// `KEY` or `KEY=VALUE` when one is given, its ends sorted by `container:interface`.
    pub async fn list_links(&self, label_filter: &str) -> Vec<LinkView> {
        let records: Vec<(Network, Vec<(Sandbox, Endpoint)>)> = {
            let st = self.state.lock().await;
            st.networks
                .values()
                .filter(|n| self.drivers.get(n.driver.as_str()).is_some_and(|d| d.max_endpoints() == Some(2)))
                .filter(|n| has_label(n, label_filter))
                .map(|n| {
                    let ends = st
                        .endpoints_of_network(&n.id)
                        .filter_map(|e| st.sandboxes.get(&e.sandbox_id).map(|s| (s.clone(), e.clone())))
                        .collect();
                    (n.clone(), ends)
                })
                .collect()
        };
        // The kernel is read without the lock: a listing never holds up a change.
        let mut links = Vec::with_capacity(records.len());
        for (network, ends) in records {
            let mut views = Vec::with_capacity(ends.len());
            for (sandbox, endpoint) in ends {
                let status = match NetnsHandle::open(Path::new(&sandbox.netns_path)).await {
                    Ok(ns) => ns.link_status(&endpoint.ifname).await.ok().flatten(),
                    Err(e) => {
                        tracing::debug!(error = %e, sandbox = %sandbox.id.short(), "cannot read a link end");
                        None
                    }
                };
                views.push(LinkEndView { sandbox, endpoint, status });
            }
            views.sort_by_key(|v| format!("{}:{}", label(&v.sandbox), v.endpoint.ifname));
            links.push(LinkView { network, ends: views });
        }
        links.sort_by(|a, b| a.network.name.cmp(&b.network.name));
        links
    }

    /// At start, after the drivers restored their links: each end with settings gets them back
    /// where the kernel lost them (a link the driver made again is up, at the network's MTU,
    /// with no qdisc). Failures are logged: the link still works, only unshaped.
    pub(super) async fn restore_links(&self, st: &Records) {
        for endpoint in st.endpoints.values().filter(|e| !e.link.is_default()) {
            let Some(sandbox) = st.sandboxes.get(&endpoint.sandbox_id) else { continue };
            if let Err(e) = restore_end(sandbox, endpoint).await {
                tracing::warn!(
                    container = %label(sandbox),
                    ifname = %endpoint.ifname,
                    error = %e,
                    "cannot put the link's settings back"
                );
            }
        }
    }
}

async fn restore_end(sandbox: &Sandbox, endpoint: &Endpoint) -> Result<()> {
    let ifname = endpoint.ifname.as_str();
    let ns = NetnsHandle::open(Path::new(&sandbox.netns_path)).await.internal("opening the namespace")?;
    let Some(status) = ns.link_status(ifname).await.internal("reading the interface")? else {
        return Err(Error::internal(format!("no interface {ifname}")));
    };
    let settings = &endpoint.link;
    let up = Some(!settings.down).filter(|up| *up != status.up);
    let mtu = settings.mtu.filter(|m| *m != status.mtu);
    if up.is_some() || mtu.is_some() {
        ns.set_link_state(ifname, up, mtu).await.internal("setting the interface")?;
        tracing::info!(container = %label(sandbox), %ifname, ?up, ?mtu, "link state restored");
    }
    if !settings.shaping.is_empty() {
        let want = if settings.shaping.needs_netem() { "netem" } else { "tbf" };
        if ns.root_qdisc_kind(ifname).await.internal("reading the qdisc")?.as_deref() != Some(want) {
            apply_shaping(&ns, ifname, &settings.shaping, settings.mtu.unwrap_or(status.mtu))
                .await
                .map_err(|e| shaping_error(e, sandbox, ifname))?;
            tracing::info!(container = %label(sandbox), %ifname, shaping = %settings.shaping, "link shaping restored");
        }
    }
    Ok(())
}

/// The end's root qdisc for `shaping`: none, a tbf for a rate alone, a netem (with its own
/// rate) for anything else.
async fn apply_shaping(ns: &NetnsHandle, ifname: &str, shaping: &Shaping, mtu: u32) -> cnet_kernel::Result<()> {
    if shaping.is_empty() {
        return ns.delete_root_qdisc(ifname).await;
    }
    let rate = shaping.rate_bps / 8;
    let qdisc = if shaping.needs_netem() {
        RootQdisc::Netem(Netem {
            delay_ns: shaping.delay_us * 1_000,
            jitter_ns: shaping.jitter_us * 1_000,
            loss_ppm: shaping.loss_ppm,
            corrupt_ppm: shaping.corrupt_ppm,
            rate,
        })
    } else {
        RootQdisc::Tbf(Tbf::for_rate(rate, mtu))
    };
    ns.replace_root_qdisc(ifname, &qdisc).await
}

/// Undoes a shaping after a later step failed; errors are logged.
async fn put_back_shaping(ns: &NetnsHandle, ifname: &str, shaping: &Shaping, mtu: u32) {
    if let Err(e) = apply_shaping(ns, ifname, shaping, mtu).await {
        tracing::warn!(%ifname, error = %e, "cannot put the previous shaping back");
    }
}

/// A missing qdisc is the kernel's lack, said in the words the user needs; anything else is
/// internal.
fn shaping_error(e: cnet_kernel::Error, sandbox: &Sandbox, ifname: &str) -> Error {
    match e {
        cnet_kernel::Error::MissingQdisc { kind: "netem" } => Error::precondition(
            "the kernel has no netem (sch_netem): delay, jitter, loss and corruption need it; nothing was changed",
        ),
        cnet_kernel::Error::MissingQdisc { kind } => Error::precondition(format!(
            "the kernel has no {kind} (sch_{kind}): a rate limit needs it; nothing was changed"
        )),
        e => Error::internal(format!("shaping {ifname} in container {}: {e}", label(sandbox))),
    }
}

/// `KEY` (present) or `KEY=VALUE`; empty: every network.
fn has_label(n: &Network, filter: &str) -> bool {
    match filter.split_once('=') {
        _ if filter.is_empty() => true,
        Some((k, v)) => n.labels.get(k).is_some_and(|x| x == v),
        None => n.labels.contains_key(filter),
    }
}

/// A container as messages name it: its name, else its short id.
fn label(sandbox: &Sandbox) -> &str {
    if sandbox.name.is_empty() { id::short(&sandbox.id) } else { &sandbox.name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters() {
        let mut n = Network::new("a".repeat(64).into(), "l1", "p2p");
        assert!(has_label(&n, ""));
        assert!(!has_label(&n, "cnet.lab=ring"));
        n.labels.insert("cnet.lab".into(), "ring".into());
        assert!(has_label(&n, "cnet.lab=ring"));
        assert!(has_label(&n, "cnet.lab"));
        assert!(!has_label(&n, "cnet.lab=star"));
    }

    #[test]
    fn a_missing_qdisc_names_the_kernel_feature() {
        let s = test_sandbox();
        let e = shaping_error(cnet_kernel::Error::MissingQdisc { kind: "netem" }, &s, "eth1");
        assert!(
            matches!(&e, Error::FailedPrecondition(m) if m.contains("the kernel has no netem (sch_netem): delay, jitter, loss and corruption need it")),
            "{e}"
        );
        let e = shaping_error(cnet_kernel::Error::MissingQdisc { kind: "tbf" }, &s, "eth1");
        assert!(matches!(&e, Error::FailedPrecondition(m) if m.contains("sch_tbf")), "{e}");
    }

    fn test_sandbox() -> Sandbox {
        serde_json::from_value(serde_json::json!({
            "id": "c".repeat(64), "name": "r1", "hostname": "", "netns_path": "/x", "created": "",
        }))
        .expect("a minimal sandbox record loads")
    }
}
