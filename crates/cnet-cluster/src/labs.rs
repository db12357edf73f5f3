//! Labs over several hosts, kept in the cluster store: the lab file and where each node runs
//! (`labs/<name>`, a [`LabRecord`] whose generation grows with each deploy, apply or destroy), and
//! what each host's part made of the last generation it acted on (`labreports/<name>/<host>`, a
//! [`LabReport`]). Every host's cnetd watches the records ([`Cluster::watch_labs`]) and runs its
//! part of each generation that names it; whoever published waits for the reports.
//!
//! Both are persistent (no lease): a host that was down acts on the newest generation when it is
//! back, and a report says which generation it is about, so an old one is never taken for new.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cnet_core::{Error, Result};
use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp, WatchOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{Cluster, decode, json, keys};

/// What a generation asks of the lab's hosts.
pub const ACTION_APPLY: &str = "apply";
pub const ACTION_DESTROY: &str = "destroy";

/// How long the lab watch waits before it lists again after the store went away.
const REWATCH_DELAY: Duration = Duration::from_secs(1);

/// One generation of a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabRecord {
    pub name: String,
    pub generation: u64,
    /// [`ACTION_APPLY`] (a deploy is an apply to an empty lab) or [`ACTION_DESTROY`].
    pub action: String,
    /// The lab file's text.
    pub file: String,
    /// Where relative binds are taken from, on every host.
    pub base_dir: String,
    /// Node -> the host it runs on.
    pub placement: BTreeMap<String, String>,
    /// The hosts that act on this generation: the placement's, and every host of the generations
    /// before (a host whose nodes all went elsewhere removes them).
    pub hosts: Vec<String>,
}

/// What one host's part made of a generation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabReport {
    pub host: String,
    pub generation: u64,
    pub ok: bool,
    /// What went wrong (the part's error output), empty when it went well.
    pub message: String,
    /// The host's nodes as `cnet lab inspect --format json` shows them.
    pub nodes_json: String,
}

/// The hosts of a new generation: the placement's, after those of the generation before.
fn hosts_of(placement: &BTreeMap<String, String>, before: Option<&LabRecord>) -> Vec<String> {
    let mut hosts: std::collections::BTreeSet<String> = placement.values().cloned().collect();
    if let Some(before) = before {
        hosts.extend(before.hosts.iter().cloned());
    }
    hosts.into_iter().collect()
}

impl Cluster {
    /// Stores `record` as the lab's next generation (its `generation` and `hosts` are set here)
    /// and returns what was stored. Compare-and-swap on the record's revision, so two publishers
    /// at once make two generations one after the other.
    pub async fn publish_lab(&self, mut record: LabRecord) -> Result<LabRecord> {
        self.check_connected()?;
        let key = keys::lab(&record.name);
        for _ in 0..crate::RETRIES {
            let mut c = self.client.clone();
            let resp = self.timed("reading the lab", c.get(key.clone(), None)).await?;
            let (before, revision) = match resp.kvs().first() {
                Some(kv) => (decode::<LabRecord>(&key, kv.value()), kv.mod_revision()),
                None => (None, 0),
            };
            record.generation = before.as_ref().map_or(0, |b| b.generation) + 1;
            record.hosts = hosts_of(&record.placement, before.as_ref());
            let txn = Txn::new()
                .when([Compare::mod_revision(key.clone(), CompareOp::Equal, revision)])
                .and_then([TxnOp::put(key.clone(), json(&record), None)]);
            if self.timed("storing the lab", c.txn(txn)).await?.succeeded() {
                tracing::info!(lab = %record.name, generation = record.generation, action = %record.action, "lab published");
                return Ok(record);
            }
        }
        Err(Error::unavailable(format!("publishing lab {}: too much contention in the cluster store", record.name)))
    }

    /// The lab's newest generation, if one is stored.
    pub async fn lab(&self, name: &str) -> Result<Option<LabRecord>> {
        let key = keys::lab(name);
        let mut c = self.client.clone();
        let resp = self.timed("reading the lab", c.get(key.clone(), None)).await?;
        match resp.kvs().first() {
            Some(kv) => serde_json::from_slice(kv.value()).map(Some).map_err(|e| {
                Error::internal(format!("the record of lab {name} in the cluster store does not parse: {e}"))
            }),
            None => Ok(None),
        }
    }

    /// What each host reported of the lab, by host.
    pub async fn lab_reports(&self, name: &str) -> Result<Vec<LabReport>> {
        self.records(&keys::lab_reports(name), "listing the lab's reports").await
    }

    /// Stores what this host's part made of a generation.
    pub async fn report_lab(&self, name: &str, report: &LabReport) -> Result<()> {
        let mut c = self.client.clone();
        self.timed("reporting on the lab", c.put(keys::lab_report(name, &report.host), json(report), None)).await?;
        Ok(())
    }

    /// Deletes the lab's record and its reports.
    pub async fn forget_lab(&self, name: &str) -> Result<()> {
        self.check_connected()?;
        let mut c = self.client.clone();
        let reports = keys::lab_reports(name);
        let txn = Txn::new().and_then([
            TxnOp::delete(keys::lab(name), None),
            TxnOp::delete(reports.clone(), Some(etcd_client::DeleteOptions::new().with_prefix())),
        ]);
        self.timed("forgetting the lab", c.txn(txn)).await?;
        tracing::info!(lab = %name, "lab forgotten");
        Ok(())
    }

    /// Every lab record as it is stored, then every new generation: a list, then a watch from
    /// the next revision, listed again whenever the store was away (so a host that was down, or
    /// cut off, acts on what it missed). Ends when the receiver is dropped.
    pub fn watch_labs(self: &Arc<Self>) -> mpsc::UnboundedReceiver<LabRecord> {
        let (tx, rx) = mpsc::unbounded_channel();
        let cluster = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                match cluster.watch_labs_once(&tx).await {
                    Ok(()) => return,
                    Err(e) => tracing::debug!(error = %e, "lab watch ended: listing again"),
                }
                tokio::time::sleep(REWATCH_DELAY).await;
            }
        });
        rx
    }

    /// One list and watch; `Ok` when the receiver is gone, an error when the store is.
    async fn watch_labs_once(&self, tx: &mpsc::UnboundedSender<LabRecord>) -> Result<()> {
        let mut c = self.client.clone();
        let resp = self.timed("listing labs", c.get(keys::LABS, Some(GetOptions::new().with_prefix()))).await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        for kv in resp.kvs() {
            if let Some(record) = decode::<LabRecord>(&String::from_utf8_lossy(kv.key()), kv.value())
                && tx.send(record).is_err()
            {
                return Ok(());
            }
        }
        let options = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let mut stream = self.timed("watching labs", c.watch(keys::LABS, Some(options))).await?;
        loop {
            let resp = tokio::select! {
                msg = stream.message() => match msg {
                    Ok(Some(resp)) => resp,
                    Ok(None) => return Err(Error::unavailable("the lab watch closed")),
                    Err(e) => return Err(Error::unavailable(format!("the lab watch: {e}"))),
                },
                () = tx.closed() => return Ok(()),
            };
            if resp.canceled() || resp.compact_revision() > 0 {
                return Err(Error::unavailable("the lab watch was cancelled or compacted"));
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                if ev.event_type() != etcd_client::EventType::Put {
                    continue;
                }
                if let Some(record) = decode::<LabRecord>(&String::from_utf8_lossy(kv.key()), kv.value())
                    && tx.send(record).is_err()
                {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(hosts: &[&str]) -> LabRecord {
        LabRecord {
            name: "l".into(),
            generation: 1,
            action: ACTION_APPLY.into(),
            file: String::new(),
            base_dir: String::new(),
            placement: BTreeMap::new(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn a_generation_keeps_the_hosts_of_the_one_before() {
        let placement = BTreeMap::from([("a".to_string(), "vm2".to_string()), ("b".into(), "vm1".into())]);
        assert_eq!(hosts_of(&placement, None), ["vm1", "vm2"]);
        assert_eq!(hosts_of(&placement, Some(&record(&["vm3", "vm1"]))), ["vm1", "vm2", "vm3"]);
        assert_eq!(hosts_of(&BTreeMap::new(), Some(&record(&["vm3"]))), ["vm3"]);
    }
}
