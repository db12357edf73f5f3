//! Application: each call sends one rendered batch to `nft` as one transaction.

use nftables::batch::Batch;
use nftables::helper::{self, DEFAULT_NFT, NftablesError};
use nftables::schema::{NfListObject, NfObject, Nftables};
use nftables::types::NfFamily;
use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, Notify};

use crate::rules::{validate_all, validate_ports};
use crate::{Error, NetworkRules, PortRule, Result, VxlanGuard, render};

/// What the table must hold: everything added and not removed since the last [`Firewall::sync`].
#[derive(Debug, Default)]
struct Desired {
    networks: BTreeMap<String, NetworkRules>,
    ports: BTreeSet<PortRule>,
    /// Between [`Firewall::begin_restore`] and [`Firewall::finish_restore`]: changes only shape
    /// this desired state, and the end of the restore applies it whole, once.
    restoring: bool,
    /// Networks removed with [`Firewall::remove_network_later`] whose elements are still in the
    /// table: taken out in one transaction by the background flush or, first, by the next call
    /// that reaches nft, so every later change sees them gone.
    removals: Vec<NetworkRules>,
    /// Networks added with [`Firewall::add_network_later`] whose elements are not in the table
    /// yet (they are in `networks`): put in by the same transaction as the removals, before any
    /// endpoint joins ([`Firewall::flush_network`]).
    additions: Vec<NetworkRules>,
    /// A deferred removal failed: the table may hold more than it must, until a rebuild.
    stale: bool,
    /// Who may send VXLAN packets for cnet's VNIs ([`Firewall::set_vxlan_guard`]).
    vxlan: VxlanGuard,
}

impl Desired {
    fn networks(&self) -> Vec<NetworkRules> {
        self.networks.values().cloned().collect()
    }
    fn ports(&self) -> Vec<PortRule> {
        self.ports.iter().cloned().collect()
    }
    fn pending(&self) -> usize {
        self.removals.len() + self.additions.len()
    }

    /// Takes `net` out: out of the desired state, and out of the table by the next transaction
    /// (during a restore there is nothing to remove: the restore's rebuild leaves it out).
    fn forget(&mut self, net: &NetworkRules) {
        self.networks.remove(&net.id);
        if self.restoring {
            return;
        }
        // Never in the table: forgetting the addition is the whole removal.
        let before = self.additions.len();
        self.additions.retain(|n| n.id != net.id);
        if self.additions.len() == before {
            self.removals.push(net.clone());
        }
    }
}

/// cnet's nftables table (family `inet`).
///
/// Calls on one `Firewall` are serialised, so a check-then-act such as [`Firewall::ensure_table`]
/// cannot interleave with another call of this process. Share it behind an `Arc`.
///
/// It remembers what the table must hold (the networks and ports added since the last
/// [`Firewall::sync`]), so a table deleted behind its back is rebuilt exactly by
/// [`Firewall::repair`], and by the next change.
#[derive(Debug)]
pub struct Firewall {
    table: String,
    lock: Mutex<Desired>,
    backend: Backend,
    /// How many deferred changes wait in `Desired` (mirrors `Desired::pending`, readable
    /// without the lock); [`Firewall::pending`] adds those still in `late`.
    pending: AtomicUsize,
    /// Deferred changes not in `Desired` yet: [`Firewall::add_network_later`] and
    /// [`Firewall::remove_network_later`] leave them here rather than wait for the lock, which
    /// a transaction holds for as long as nft runs (a removal's commit takes some 10 ms). The
    /// next holder of the lock takes them in first, in order.
    late: std::sync::Mutex<Vec<Change>>,
    /// Wakes the background flush ([`Firewall::flush_in_background`]).
    wake: Notify,
}

/// A change left for later (see `Firewall::late`).
#[derive(Debug)]
enum Change {
    Add(NetworkRules),
    Remove(NetworkRules),
}

/// Where transactions go: the kernel through `nft`, or a table in memory that records them (for
/// unit tests of the logic above the firewall, which need no root).
#[derive(Debug)]
enum Backend {
    Nft,
    Memory(std::sync::Mutex<MemoryTable>),
}

/// The in-memory table: whether it exists, and every transaction applied to it, in order.
#[derive(Debug, Default)]
struct MemoryTable {
    exists: bool,
    applied: Vec<Applied>,
}

/// One transaction a [`Firewall::in_memory`] applied: its action and its nft JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub action: &'static str,
    pub json: serde_json::Value,
}

impl Firewall {
    /// A handle on `table inet <table>`; nothing is touched until a method is called.
    pub fn new(table: &str) -> Firewall {
        Firewall {
            table: table.to_owned(),
            lock: Mutex::new(Desired::default()),
            backend: Backend::Nft,
            pending: AtomicUsize::new(0),
            late: std::sync::Mutex::new(Vec::new()),
            wake: Notify::new(),
        }
    }

    /// A firewall whose table lives in memory: every transaction is rendered and validated as for
    /// the kernel, then recorded (see [`Firewall::applied`]). The table exists once a transaction
    /// made it, as nft's would.
    pub fn in_memory(table: &str) -> Firewall {
        Firewall {
            table: table.to_owned(),
            lock: Mutex::new(Desired::default()),
            backend: Backend::Memory(std::sync::Mutex::new(MemoryTable::default())),
            pending: AtomicUsize::new(0),
            late: std::sync::Mutex::new(Vec::new()),
            wake: Notify::new(),
        }
    }

    /// The transactions an in-memory firewall applied, in order (none for the nft backend).
    pub fn applied(&self) -> Vec<Applied> {
        match &self.backend {
            Backend::Nft => Vec::new(),
            Backend::Memory(table) => table.lock().expect("memory table lock").applied.clone(),
        }
    }

    /// For tests of an in-memory firewall: the table disappears, as if deleted by hand.
    pub fn forget_table(&self) {
        if let Backend::Memory(table) = &self.backend {
            table.lock().expect("memory table lock").exists = false;
        }
    }

    /// Starts a restore: the desired state is emptied, and until [`Firewall::finish_restore`]
    /// every change (drivers re-adding their networks and ports, in any order) only shapes it;
    /// nothing reaches the table meanwhile.
    pub async fn begin_restore(&self) {
        let mut desired = self.desired().await;
        // The restore's rebuild replaces the table whole: deferred removals have nothing to do.
        *desired = Desired { restoring: true, ..Desired::default() };
        self.pending.store(0, Ordering::Relaxed);
    }

    /// Ends a restore: the table becomes exactly what every driver added since
    /// [`Firewall::begin_restore`], in one transaction (no duplicates, no leftovers).
    pub async fn finish_restore(&self) -> Result<()> {
        let mut desired = self.desired().await;
        let (nets, ports) = (desired.networks(), desired.ports());
        self.replace(&mut desired, &nets, &ports).await
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its sets and base chains if missing (with everything it must hold, if
    /// it was deleted behind our back); never flushes an existing one.
    pub async fn ensure_table(&self) -> Result<()> {
        let mut desired = self.desired().await;
        self.apply_pending(&mut desired).await?;
        if desired.restoring || self.exists().await? {
            return Ok(());
        }
        if !desired.networks.is_empty() || !desired.ports.is_empty() || desired.vxlan != VxlanGuard::default() {
            return self.rebuild_gone(&desired.networks(), &desired.ports(), &desired.vxlan).await;
        }
        tracing::info!(table = %self.table, "creating nftables table");
        match self.apply("create the table", render::create_table(&self.table)).await {
            // `create table` fails if someone else made it meanwhile; that is fine.
            Err(e) if self.exists().await? => {
                tracing::debug!(table = %self.table, error = ?e, "table appeared meanwhile");
                Ok(())
            }
            other => other,
        }
    }

    /// Adds one network's rules (one transaction). Adding the same network twice changes nothing.
    /// Fails with [`Error::TableMissing`] if the table is gone.
    pub async fn add_network(&self, net: &NetworkRules) -> Result<()> {
        net.validate()?;
        let mut desired = self.desired().await;
        if desired.restoring {
            desired.networks.insert(net.id.clone(), net.clone());
            return Ok(());
        }
        // Changes waiting (a removal of the same bridge or subnets, maybe) go first, in the same
        // transaction: a network made right after one was removed costs one run of nft.
        if desired.pending() > 0 {
            let mut additions = desired.additions.clone();
            additions.push(net.clone());
            let batch = render::pending(&self.table, &desired.removals, &additions);
            if self.apply("remove networks and add one", batch).await.is_ok() {
                desired.removals.clear();
                desired.additions.clear();
                self.pending.store(0, Ordering::Relaxed);
                desired.networks.insert(net.id.clone(), net.clone());
                return Ok(());
            }
            // Nothing of it was applied: each part alone, to learn which one fails.
            self.apply_pending(&mut desired).await?;
        }
        tracing::debug!(table = %self.table, network = net.short_id(), bridge = %net.bridge, "adding network rules");
        match self.apply("add a network", render::add_network(&self.table, net)).await {
            Err(_) if !self.exists().await? => Err(Error::TableMissing { table: self.table.clone() }),
            Err(e) => Err(e),
            Ok(()) => {
                desired.networks.insert(net.id.clone(), net.clone());
                Ok(())
            }
        }
    }

    /// Adds one network's rules off the caller's path: the network is in the desired state at once,
    /// and its elements reach the table in the background ([`Firewall::flush_in_background`],
    /// with the removals waiting, in one transaction) or by the next call that reaches nft,
    /// whichever comes first. The caller must [`Firewall::flush`] before anything may depend on
    /// them (an endpoint joining the network). A crash in between loses nothing: a start
    /// rebuilds the table from the records.
    pub async fn add_network_later(&self, net: &NetworkRules) -> Result<()> {
        net.validate()?;
        self.later(Change::Add(net.clone()));
        Ok(())
    }

    /// Removes one network's rules (one transaction); rules or a table that are missing are no error.
    /// `net` must be what was added (same bridge, subnets and flags).
    pub async fn remove_network(&self, net: &NetworkRules) -> Result<()> {
        let mut desired = self.queue_removal(net).await?;
        // The table's existence is checked only after a failure: a check first would cost a run
        // of nft on every removal, for a case (the table deleted by hand) that is rare and only
        // makes nft print its error to our log.
        self.apply_pending(&mut desired).await
    }

    /// Removes one network's rules off the caller's path: the network is out of the desired state
    /// at once, and its elements leave the table in the background ([`Firewall::flush_in_background`],
    /// several removals in one transaction) or before the next call that reaches nft, whichever
    /// comes first. Nothing can depend on their presence: they only match a bridge and subnets
    /// that are gone. A crash in between loses nothing either, since a start rebuilds the table
    /// from the records.
    pub async fn remove_network_later(&self, net: &NetworkRules) -> Result<()> {
        net.validate()?;
        self.later(Change::Remove(net.clone()));
        Ok(())
    }

    /// Takes `change` into the desired state if the lock is free, else leaves it in `late` for
    /// the lock's next holder (never waits for a transaction); wakes the background flush.
    fn later(&self, change: Change) {
        match self.lock.try_lock() {
            Ok(mut desired) => {
                self.take_in(&mut desired, std::iter::once(change));
                self.pending.store(desired.pending(), Ordering::Relaxed);
            }
            Err(_) => self.late.lock().expect("late changes lock").push(change),
        }
        self.wake.notify_one();
    }

    fn take_in(&self, desired: &mut Desired, changes: impl IntoIterator<Item = Change>) {
        for change in changes {
            match change {
                Change::Add(net) => {
                    let known = desired.networks.insert(net.id.clone(), net.clone());
                    if desired.restoring || known.as_ref() == Some(&net) {
                        continue;
                    }
                    desired.additions.retain(|n| n.id != net.id);
                    desired.additions.push(net);
                }
                Change::Remove(net) => desired.forget(&net),
            }
        }
    }

    /// The lock on the desired state, with the changes left for later taken in.
    async fn desired(&self) -> tokio::sync::MutexGuard<'_, Desired> {
        let mut desired = self.lock.lock().await;
        let late = std::mem::take(&mut *self.late.lock().expect("late changes lock"));
        self.take_in(&mut desired, late);
        self.pending.store(desired.pending(), Ordering::Relaxed);
        desired
    }

    /// Takes `net` out of the desired state and queues the removal of its elements (during a
    /// restore there is nothing to remove: the restore's rebuild leaves it out); returns the lock.
    async fn queue_removal(&self, net: &NetworkRules) -> Result<tokio::sync::MutexGuard<'_, Desired>> {
        net.validate()?;
        let mut desired = self.desired().await;
        desired.forget(net);
        self.pending.store(desired.pending(), Ordering::Relaxed);
        Ok(desired)
    }

    /// How many deferred changes (removals, additions) have not reached the table yet.
    pub fn pending(&self) -> usize {
        self.late.lock().expect("late changes lock").len() + self.pending.load(Ordering::Relaxed)
    }

    /// Applies the deferred changes now.
    pub async fn flush(&self) -> Result<()> {
        let mut desired = self.desired().await;
        self.apply_pending(&mut desired).await
    }

    /// Applies the deferred changes now if the rules of network `id` are among them (with every
    /// other change waiting: a removal of the same bridge or subnets must go first); else
    /// nothing, so an endpoint joining a network whose rules are in place never pays for the
    /// removals of others.
    pub async fn flush_network(&self, id: &str) -> Result<()> {
        let mut desired = self.desired().await;
        if !desired.additions.iter().any(|n| n.id == id) {
            return Ok(());
        }
        self.apply_pending(&mut desired).await
    }

    /// The background half of [`Firewall::remove_network_later`] and
    /// [`Firewall::add_network_later`]; runs until the process ends.
    /// A failure is logged and leaves the table stale, which the next [`Firewall::repair`]
    /// rebuilds.
    ///
    /// `until_quiet(woken)` tells how long a flush woken at `woken` should wait yet (`None`:
    /// now), and bounds that wait itself (cnetd passes `Deleter::until_quiet`): a commit costs the
    /// kernel some 4-10 ms of a core, better spent after a burst of commands than during one
    /// (changes that pile up meanwhile share the transaction).
    pub async fn flush_in_background(
        self: Arc<Self>,
        until_quiet: impl Fn(std::time::Instant) -> Option<std::time::Duration>,
    ) {
        loop {
            self.wake.notified().await;
            let woken = std::time::Instant::now();
            while let Some(wait) = until_quiet(woken) {
                tokio::time::sleep(wait).await;
            }
            if let Err(e) = self.flush().await {
                tracing::warn!(table = %self.table, error = %e, "deferred firewall changes failed: the table is rebuilt");
            }
        }
    }

    /// Takes the deferred removals out of the table and puts the deferred additions in, in one
    /// transaction. A table found gone is rebuilt when additions wait (nothing is left to remove
    /// from it otherwise). On failure the table is marked stale (a rebuild from the desired state
    /// makes it exact) and the error returned.
    async fn apply_pending(&self, desired: &mut Desired) -> Result<()> {
        if desired.pending() == 0 {
            return Ok(());
        }
        let removals = std::mem::take(&mut desired.removals);
        let additions = std::mem::take(&mut desired.additions);
        self.pending.store(0, Ordering::Relaxed);
        tracing::debug!(table = %self.table, removed = removals.len(), added = additions.len(), "applying deferred network rules");
        let action = if additions.is_empty() { "remove networks" } else { "apply deferred network changes" };
        match self.apply(action, render::pending(&self.table, &removals, &additions)).await {
            Ok(()) => Ok(()),
            Err(_) if !self.exists().await? => {
                if additions.is_empty() {
                    // The table is gone (deleted by hand): nothing of theirs is left in it.
                    return Ok(());
                }
                self.rebuild_gone(&desired.networks(), &desired.ports(), &desired.vxlan)
                    .await
                    .inspect_err(|_| desired.stale = true)
            }
            Err(e) => {
                desired.stale = true;
                Err(e)
            }
        }
    }

    /// Replaces the whole table by exactly these networks' rules and these published ports, in one
    /// transaction (at start-up, and when the table was deleted by hand): no duplicates, no
    /// leftovers, whatever was there before.
    pub async fn sync(&self, nets: &[NetworkRules], ports: &[PortRule]) -> Result<()> {
        let mut desired = self.desired().await;
        self.replace(&mut desired, nets, ports).await
    }

    /// [`Firewall::sync`] and [`Firewall::finish_restore`] under the lock: checks, one
    /// transaction, and `desired` becomes exactly these (a restore is over).
    async fn replace(&self, desired: &mut Desired, nets: &[NetworkRules], ports: &[PortRule]) -> Result<()> {
        validate_all(nets)?;
        validate_ports(ports)?;
        tracing::info!(table = %self.table, networks = nets.len(), ports = ports.len(), "rebuilding nftables table");
        self.apply("rebuild the table", render::sync(&self.table, nets, ports, &desired.vxlan)).await?;
        desired.networks = nets.iter().map(|n| (n.id.clone(), n.clone())).collect();
        desired.ports = ports.iter().cloned().collect();
        desired.restoring = false;
        // The rebuild made the table exact.
        desired.removals.clear();
        desired.additions.clear();
        desired.stale = false;
        self.pending.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Makes the VXLAN guard exactly `guard` (one transaction; none if it is what the table
    /// holds already). During a restore it only shapes what the restore's rebuild makes. If the
    /// table is gone it is rebuilt with everything it must hold, this guard included.
    pub async fn set_vxlan_guard(&self, guard: VxlanGuard) -> Result<()> {
        guard.validate()?;
        let mut desired = self.desired().await;
        if desired.restoring {
            desired.vxlan = guard;
            return Ok(());
        }
        if desired.vxlan == guard {
            return Ok(());
        }
        self.apply_pending(&mut desired).await?;
        tracing::debug!(table = %self.table, vnis = guard.vnis.len(), peers = guard.peers.len(), "setting the VXLAN guard");
        match self.apply("set the VXLAN guard", render::vxlan_guard(&self.table, &guard)).await {
            Ok(()) => {}
            Err(_) if !self.exists().await? => {
                self.rebuild_gone(&desired.networks(), &desired.ports(), &guard).await?;
            }
            Err(e) => return Err(e),
        }
        desired.vxlan = guard;
        Ok(())
    }

    /// Publishes ports (one transaction). Their keys must not be published already (the caller
    /// checks conflicts; nft refuses a known key with other data). If the table is gone it is
    /// rebuilt with everything it must hold, these ports included.
    pub async fn add_ports(&self, ports: &[PortRule]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        validate_ports(ports)?;
        let mut desired = self.desired().await;
        if desired.restoring {
            desired.ports.extend(ports.iter().cloned());
            return Ok(());
        }
        self.apply_pending(&mut desired).await?;
        tracing::debug!(table = %self.table, ports = ports.len(), "publishing ports");
        match self.apply("publish ports", render::add_ports(&self.table, ports)).await {
            Ok(()) => {}
            Err(_) if !self.exists().await? => {
                let mut all = desired.ports();
                all.extend(ports.iter().cloned());
                validate_ports(&all)?;
                self.rebuild_gone(&desired.networks(), &all, &desired.vxlan).await?;
            }
            Err(e) => return Err(e),
        }
        desired.ports.extend(ports.iter().cloned());
        Ok(())
    }

    /// Unpublishes ports (one transaction); ports or a table that are missing are no error.
    pub async fn remove_ports(&self, ports: &[PortRule]) -> Result<()> {
        if ports.is_empty() {
            return Ok(());
        }
        let mut desired = self.desired().await;
        for p in ports {
            desired.ports.remove(p);
        }
        if desired.restoring || !self.exists().await? {
            return Ok(());
        }
        self.apply_pending(&mut desired).await?;
        tracing::debug!(table = %self.table, ports = ports.len(), "unpublishing ports");
        match self.apply("unpublish ports", render::remove_ports(&self.table, ports, &desired.ports())).await {
            Err(_) if !self.exists().await? => Ok(()),
            other => other,
        }
    }

    /// If the table is gone (deleted by hand), rebuilds it with everything it must hold, in one
    /// transaction. Returns whether it had to.
    pub async fn repair(&self) -> Result<bool> {
        let mut desired = self.desired().await;
        if desired.restoring {
            return Ok(false);
        }
        if desired.pending() > 0 && self.apply_pending(&mut desired).await.is_err() {
            tracing::warn!(table = %self.table, "deferred firewall changes failed");
        }
        if desired.stale {
            tracing::warn!(table = %self.table, "a deferred removal failed: rebuilding the table");
            let (nets, ports) = (desired.networks(), desired.ports());
            self.replace(&mut desired, &nets, &ports).await?;
            return Ok(true);
        }
        if self.exists().await? {
            return Ok(false);
        }
        tracing::warn!(
            table = %self.table,
            networks = desired.networks.len(),
            ports = desired.ports.len(),
            "nftables table is gone: rebuilding it"
        );
        let batch = render::sync(&self.table, &desired.networks(), &desired.ports(), &desired.vxlan);
        self.apply("rebuild the table", batch).await?;
        Ok(true)
    }

    /// Makes the table again, deleted behind our back, with everything it must hold (one
    /// transaction).
    async fn rebuild_gone(&self, nets: &[NetworkRules], ports: &[PortRule], guard: &VxlanGuard) -> Result<()> {
        tracing::warn!(table = %self.table, "nftables table is gone: rebuilding it");
        self.apply("rebuild the table", render::sync(&self.table, nets, ports, guard)).await
    }

    pub async fn table_exists(&self) -> Result<bool> {
        let mut desired = self.desired().await;
        self.apply_pending(&mut desired).await?;
        self.exists().await
    }

    /// Deletes the table and everything in it; a missing table is no error.
    pub async fn delete_table(&self) -> Result<()> {
        let mut desired = self.desired().await;
        *desired = Desired::default();
        self.pending.store(0, Ordering::Relaxed);
        tracing::info!(table = %self.table, "deleting nftables table");
        self.apply("delete the table", render::delete_table(&self.table)).await
    }

    /// The table as nft lists it (`nft -j list table inet <table>`; never the whole ruleset, which
    /// may hold other programs' objects that the `nftables` crate cannot parse).
    pub async fn ruleset(&self) -> Result<Nftables<'static>> {
        let mut desired = self.desired().await;
        self.apply_pending(&mut desired).await?;
        let args = ["list", "table", "inet", self.table.as_str()];
        helper::get_current_ruleset_with_args_async(DEFAULT_NFT, &args)
            .await
            .map_err(|source| self.nft_error("list the table", source))
    }

    /// Lists only the names of inet tables, so an absent table is an answer, not an nft error.
    async fn exists(&self) -> Result<bool> {
        if let Backend::Memory(table) = &self.backend {
            return Ok(table.lock().expect("memory table lock").exists);
        }
        let listing = helper::get_current_ruleset_with_args_async(DEFAULT_NFT, &["list", "tables", "inet"])
            .await
            .map_err(|source| self.nft_error("list the tables", source))?;
        Ok(listing.objects.iter().any(|obj| {
            matches!(obj, NfObject::ListObject(NfListObject::Table(t))
                if t.family == NfFamily::INet && t.name == self.table)
        }))
    }

    async fn apply(&self, action: &'static str, batch: Batch<'_>) -> Result<()> {
        let json = render::nft_json(&batch.to_nftables());
        if tracing::enabled!(tracing::Level::TRACE) {
            tracing::trace!(table = %self.table, action, %json, "nft transaction");
        }
        if let Backend::Memory(table) = &self.backend {
            let mut table = table.lock().expect("memory table lock");
            // What nft would refuse: changing a table that is not there.
            let makes_table = matches!(action, "create the table" | "rebuild the table");
            if !table.exists && !makes_table && action != "delete the table" {
                return Err(Error::TableMissing { table: self.table.clone() });
            }
            table.exists = action != "delete the table";
            table.applied.push(Applied { action, json });
            return Ok(());
        }
        let no_args: [&str; 0] = [];
        match helper::apply_ruleset_raw_async(&json.to_string(), DEFAULT_NFT, no_args).await {
            Ok(_) => Ok(()),
            Err(source) => {
                let error = self.nft_error(action, source);
                tracing::warn!(table = %self.table, error = ?error, "nft transaction failed");
                Err(error)
            }
        }
    }

    fn nft_error(&self, action: &'static str, source: NftablesError) -> Error {
        Error::Nft { table: self.table.clone(), action, source: Box::new(source) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Proto;

    fn net(digit: char, bridge: &str, subnet: &str) -> NetworkRules {
        NetworkRules {
            id: digit.to_string().repeat(64),
            bridge: bridge.into(),
            subnets: vec![subnet.parse().unwrap()],
            masquerade: true,
            internal: false,
            icc: true,
            gateway_v4: crate::GatewayMode::Nat,
            gateway_v6: crate::GatewayMode::Nat,
            trusted_interfaces: vec![],
        }
    }

    fn port(host_port: u16, dest: &str) -> PortRule {
        PortRule {
            proto: Proto::Tcp,
            host_addr: None,
            host_port,
            dest: dest.parse().unwrap(),
            dest_port: 80,
            owner: "web".into(),
            routed: false,
        }
    }

    fn actions(fw: &Firewall) -> Vec<&'static str> {
        fw.applied().iter().map(|a| a.action).collect()
    }

    #[tokio::test]
    async fn a_restore_applies_what_every_driver_added_once_whatever_the_order() {
        let fw = Firewall::in_memory("t");
        fw.begin_restore().await;
        // Drivers restore one after the other, each with its own steps: nothing reaches the table.
        fw.ensure_table().await.unwrap();
        fw.add_network(&net('b', "br-bbbbbbbbbbbb", "172.18.0.0/16")).await.unwrap();
        fw.add_ports(&[port(8080, "172.18.0.2")]).await.unwrap();
        fw.add_network(&net('o', "ov-oooooooooooo", "10.0.0.0/24")).await.unwrap();
        fw.add_network(&net('x', "br-xxxxxxxxxxxx", "172.19.0.0/16")).await.unwrap();
        fw.remove_network(&net('x', "br-xxxxxxxxxxxx", "172.19.0.0/16")).await.unwrap();
        assert!(!fw.repair().await.unwrap() && fw.applied().is_empty(), "{:?}", actions(&fw));

        fw.finish_restore().await.unwrap();
        let applied = fw.applied();
        assert_eq!(actions(&fw), ["rebuild the table"]);
        let json = applied[0].json.to_string();
        for expected in ["br-bbbbbbbbbbbb", "ov-oooooooooooo", "8080", "172.18.0.2"] {
            assert!(json.contains(expected), "{expected} missing from the restored table: {json}");
        }
        assert!(!json.contains("br-xxxxxxxxxxxx"), "a network removed during the restore came back: {json}");

        // After the restore, changes reach the table one transaction each again.
        fw.add_ports(&[port(8081, "172.18.0.3")]).await.unwrap();
        assert_eq!(actions(&fw), ["rebuild the table", "publish ports"]);
    }

    fn guard(vni: u32, peer: &str) -> VxlanGuard {
        VxlanGuard { vnis: [(vni, None)].into(), peers: [peer.parse().unwrap()].into() }
    }

    #[tokio::test]
    async fn the_vxlan_guard_is_set_once_kept_through_restores_and_rebuilds_and_refused_when_bad() {
        let fw = Firewall::in_memory("t");
        fw.ensure_table().await.unwrap();
        fw.set_vxlan_guard(guard(4096, "192.0.2.2")).await.unwrap();
        // The same guard again sends nothing to nft.
        fw.set_vxlan_guard(guard(4096, "192.0.2.2")).await.unwrap();
        assert_eq!(actions(&fw), ["create the table", "set the VXLAN guard"]);

        // A bad guard changes nothing, naming what is wrong.
        let err = fw.set_vxlan_guard(guard(0, "192.0.2.2")).await.unwrap_err().to_string();
        assert!(err.contains("VNI 0"), "{err}");
        assert_eq!(fw.applied().len(), 2);

        // Deleted behind its back: the rebuild has the guard.
        fw.forget_table();
        assert!(fw.repair().await.unwrap());
        let rebuilt = fw.applied().last().unwrap().json.to_string();
        assert!(rebuilt.contains("192.0.2.2") && rebuilt.contains("VNI 4096"), "{rebuilt}");

        // A restart: the guard set during the restore is in the one rebuild, the old one is not.
        fw.begin_restore().await;
        fw.set_vxlan_guard(guard(4097, "192.0.2.3")).await.unwrap();
        fw.finish_restore().await.unwrap();
        let restored = fw.applied().last().unwrap().json.to_string();
        assert!(restored.contains("192.0.2.3") && restored.contains("VNI 4097"), "{restored}");
        assert!(!restored.contains("192.0.2.2") && !restored.contains("VNI 4096"), "{restored}");
        assert_eq!(actions(&fw).iter().filter(|a| **a == "set the VXLAN guard").count(), 1);
    }

    #[tokio::test]
    async fn a_table_deleted_behind_its_back_is_rebuilt_with_everything_once() {
        let fw = Firewall::in_memory("t");
        fw.ensure_table().await.unwrap();
        fw.add_network(&net('b', "br-bbbbbbbbbbbb", "172.18.0.0/16")).await.unwrap();
        fw.add_ports(&[port(8080, "172.18.0.2")]).await.unwrap();
        assert!(!fw.repair().await.unwrap(), "nothing to repair while the table is there");

        fw.forget_table();
        assert!(matches!(
            fw.add_network(&net('c', "br-cccccccccccc", "172.20.0.0/16")).await,
            Err(Error::TableMissing { .. })
        ));
        assert!(fw.repair().await.unwrap());
        let last = fw.applied().last().cloned().unwrap();
        assert_eq!(last.action, "rebuild the table");
        let json = last.json.to_string();
        assert!(json.contains("br-bbbbbbbbbbbb") && json.contains("8080"), "{json}");
        assert!(!fw.repair().await.unwrap());
        assert_eq!(actions(&fw), ["create the table", "add a network", "publish ports", "rebuild the table"]);
    }

    #[tokio::test]
    async fn deferred_additions_share_one_transaction_and_a_removal_before_it_cancels_one() {
        let fw = Firewall::in_memory("t");
        fw.ensure_table().await.unwrap();
        let (a, b, c) = (
            net('a', "br-aaaaaaaaaaaa", "172.18.0.0/16"),
            net('b', "br-bbbbbbbbbbbb", "172.19.0.0/16"),
            net('c', "br-cccccccccccc", "172.20.0.0/16"),
        );
        fw.add_network(&a).await.unwrap();
        fw.add_network_later(&b).await.unwrap();
        fw.add_network_later(&c).await.unwrap();
        fw.add_network_later(&c).await.unwrap();
        assert_eq!(fw.pending(), 2, "c twice is one addition");
        // a's removal and b's and c's additions: one transaction, removals first.
        fw.remove_network_later(&a).await.unwrap();
        assert_eq!(actions(&fw), ["create the table", "add a network"], "nothing applied yet");
        fw.flush().await.unwrap();
        assert_eq!(fw.pending(), 0);
        assert_eq!(actions(&fw)[2..], ["apply deferred network changes"]);
        let text = fw.applied()[2].json.to_string();
        assert!(["br-aaaaaaaaaaaa", "br-bbbbbbbbbbbb", "br-cccccccccccc"].iter().all(|b| text.contains(b)), "{text}");

        // Removed before it reached the table: no transaction at all, and a rebuild leaves it out.
        let d = net('d', "br-dddddddddddd", "172.21.0.0/16");
        fw.add_network_later(&d).await.unwrap();
        fw.remove_network_later(&d).await.unwrap();
        assert_eq!(fw.pending(), 0);
        fw.flush().await.unwrap();
        assert_eq!(actions(&fw).len(), 3, "{:?}", actions(&fw));
        fw.forget_table();
        assert!(fw.repair().await.unwrap());
        let rebuilt = fw.applied().last().unwrap().json.to_string();
        assert!(!rebuilt.contains("br-dddddddddddd") && !rebuilt.contains("br-aaaaaaaaaaaa"), "{rebuilt}");
        assert!(rebuilt.contains("br-bbbbbbbbbbbb") && rebuilt.contains("br-cccccccccccc"), "{rebuilt}");
    }

    #[tokio::test]
    async fn changes_for_later_never_wait_for_a_transaction_under_way() {
        let fw = Firewall::in_memory("t");
        fw.ensure_table().await.unwrap();
        let (f, g) = (net('f', "br-ffffffffffff", "172.23.0.0/16"), net('g', "br-000000000000", "172.24.0.0/16"));
        fw.add_network(&g).await.unwrap();
        // A transaction holds the lock (as nft runs); the calls return at once all the same.
        let under_way = fw.lock.lock().await;
        tokio::time::timeout(std::time::Duration::from_secs(1), async {
            fw.add_network_later(&f).await.unwrap();
            fw.remove_network_later(&g).await.unwrap();
        })
        .await
        .expect("a change for later waited for the lock");
        assert_eq!(fw.pending(), 2);
        drop(under_way);
        fw.flush().await.unwrap();
        assert_eq!(fw.pending(), 0);
        let text = fw.applied().last().unwrap().json.to_string();
        assert!(text.contains("br-ffffffffffff") && text.contains("br-000000000000"), "{text}");
    }

    #[tokio::test]
    async fn a_join_applies_the_queue_only_when_its_network_waits_in_it() {
        let fw = Firewall::in_memory("t");
        fw.ensure_table().await.unwrap();
        let (h, i) = (net('h', "br-111111111111", "172.25.0.0/16"), net('i', "br-222222222222", "172.26.0.0/16"));
        fw.add_network(&h).await.unwrap();
        fw.remove_network_later(&h).await.unwrap();
        fw.flush_network(&"i".repeat(64)).await.unwrap();
        assert_eq!(fw.pending(), 1, "h's removal waits: a join on a network in place pays nothing");
        fw.add_network_later(&i).await.unwrap();
        fw.flush_network(&i.id).await.unwrap();
        assert_eq!(fw.pending(), 0, "i's rules are in, and h's removal went first");
        assert_eq!(actions(&fw).last(), Some(&"apply deferred network changes"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_background_flush_waits_while_told_to() {
        let fw = Arc::new(Firewall::in_memory("t"));
        fw.ensure_table().await.unwrap();
        let quiet = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let told = quiet.clone();
        let until_quiet = move |_woken| (!told.load(Ordering::Relaxed)).then_some(std::time::Duration::from_millis(10));
        tokio::spawn(fw.clone().flush_in_background(until_quiet));
        fw.add_network_later(&net('j', "br-333333333333", "172.27.0.0/16")).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert_eq!(fw.pending(), 1, "not quiet: the change waits");
        quiet.store(true, Ordering::Relaxed);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(fw.pending(), 0, "and goes in once quiet");
    }

    #[tokio::test]
    async fn a_deferred_addition_finding_the_table_gone_rebuilds_it() {
        let fw = Firewall::in_memory("t");
        fw.ensure_table().await.unwrap();
        fw.forget_table();
        let e = net('e', "br-eeeeeeeeeeee", "172.22.0.0/16");
        fw.add_network_later(&e).await.unwrap();
        fw.flush().await.unwrap();
        assert_eq!(actions(&fw).last(), Some(&"rebuild the table"));
        assert!(fw.applied().last().unwrap().json.to_string().contains("br-eeeeeeeeeeee"));
    }

    #[tokio::test]
    async fn a_deferred_removal_goes_before_anything_else_reaches_the_table() {
        let fw = Firewall::in_memory("t");
        fw.ensure_table().await.unwrap();
        let (b, c) = (net('b', "br-bbbbbbbbbbbb", "172.18.0.0/16"), net('c', "br-cccccccccccc", "172.20.0.0/16"));
        fw.add_network(&b).await.unwrap();
        fw.add_network(&c).await.unwrap();
        fw.remove_network_later(&b).await.unwrap();
        fw.remove_network_later(&c).await.unwrap();
        assert_eq!(fw.pending(), 2);
        assert_eq!(actions(&fw), ["create the table", "add a network", "add a network"], "nothing applied yet");

        // The same bridge again: both removals first, then the new network, in one transaction.
        fw.add_network(&b).await.unwrap();
        assert_eq!(fw.pending(), 0);
        let applied = fw.applied();
        assert_eq!(actions(&fw)[3..], ["remove networks and add one"]);
        let json = &applied[3].json["nftables"];
        let verbs: Vec<&str> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|cmd| cmd.as_object().unwrap().keys().next().unwrap().as_str())
            .collect();
        let last_delete = verbs.iter().rposition(|v| *v == "delete").expect("no delete");
        assert!(verbs[last_delete + 1..].iter().all(|v| *v == "add") && last_delete + 1 < verbs.len(), "{verbs:?}");
        let text = json.to_string();
        assert!(text.contains("br-bbbbbbbbbbbb") && text.contains("br-cccccccccccc"), "{text}");

        // The background flush applies what waits, and a rebuild knows only what is left.
        fw.remove_network_later(&b).await.unwrap();
        fw.flush().await.unwrap();
        assert_eq!(actions(&fw).last(), Some(&"remove networks"));
        fw.forget_table();
        assert!(fw.repair().await.unwrap());
        let rebuilt = fw.applied().last().unwrap().json.to_string();
        assert!(!rebuilt.contains("br-bbbbbbbbbbbb") && !rebuilt.contains("br-cccccccccccc"), "{rebuilt}");
    }

    #[tokio::test]
    async fn a_restore_drops_deferred_removals_and_a_restore_removal_is_never_deferred() {
        let fw = Firewall::in_memory("t");
        fw.ensure_table().await.unwrap();
        let b = net('b', "br-bbbbbbbbbbbb", "172.18.0.0/16");
        fw.add_network(&b).await.unwrap();
        fw.remove_network_later(&b).await.unwrap();
        fw.begin_restore().await;
        assert_eq!(fw.pending(), 0, "the restore's rebuild replaces the table whole");
        fw.remove_network_later(&b).await.unwrap();
        assert_eq!(fw.pending(), 0);
        fw.finish_restore().await.unwrap();
        assert_eq!(actions(&fw), ["create the table", "add a network", "rebuild the table"]);
    }
}
