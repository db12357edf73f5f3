//! Application: each call sends one rendered batch to `nft` as one transaction.

use nftables::batch::Batch;
use nftables::helper::{self, DEFAULT_NFT, NftablesError};
use nftables::schema::{NfListObject, NfObject, Nftables};
use nftables::types::NfFamily;
use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::Mutex;

use crate::rules::{validate_all, validate_ports};
use crate::{Error, NetworkRules, PortRule, Result, render};

/// What the table must hold: everything added and not removed since the last [`Firewall::sync`].
#[derive(Debug, Default)]
struct Desired {
    networks: BTreeMap<String, NetworkRules>,
    ports: BTreeSet<PortRule>,
}

impl Desired {
    fn networks(&self) -> Vec<NetworkRules> {
        self.networks.values().cloned().collect()
    }
    fn ports(&self) -> Vec<PortRule> {
        self.ports.iter().cloned().collect()
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
}

impl Firewall {
    /// A handle on `table inet <table>`; nothing is touched until a method is called.
    pub fn new(table: &str) -> Firewall {
        Firewall { table: table.to_owned(), lock: Mutex::new(Desired::default()) }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its sets and base chains if missing (with everything it must hold, if
    /// it was deleted behind our back); never flushes an existing one.
    pub async fn ensure_table(&self) -> Result<()> {
        let desired = self.lock.lock().await;
        if self.exists().await? {
            return Ok(());
        }
        if !desired.networks.is_empty() || !desired.ports.is_empty() {
            tracing::warn!(table = %self.table, "nftables table is gone: rebuilding it");
            let batch = render::sync(&self.table, &desired.networks(), &desired.ports());
            return self.apply("rebuild the table", batch).await;
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
        let mut desired = self.lock.lock().await;
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

    /// Removes one network's rules (one transaction); rules or a table that are missing are no error.
    /// `net` must be what was added (same bridge, subnets and flags).
    pub async fn remove_network(&self, net: &NetworkRules) -> Result<()> {
        net.validate()?;
        let mut desired = self.lock.lock().await;
        desired.networks.remove(&net.id);
        // Checked first only so that a missing table does not make nft print errors to our stderr
        // (the nftables crate does not capture it); the check after a failure covers the race.
        if !self.exists().await? {
            return Ok(());
        }
        tracing::debug!(table = %self.table, network = net.short_id(), bridge = %net.bridge, "removing network rules");
        match self.apply("remove a network", render::remove_network(&self.table, net)).await {
            Err(_) if !self.exists().await? => Ok(()),
            other => other,
        }
    }

    /// Replaces the whole table by exactly these networks' rules, in one transaction (at start-up, and
    /// when the table was deleted by hand): no duplicates, no leftovers, whatever was there before.
    /// Replaces the whole table by exactly these networks' rules and these published ports, in one
    /// transaction (at start-up, and when the table was deleted by hand): no duplicates, no
    /// leftovers, whatever was there before.
    pub async fn sync(&self, nets: &[NetworkRules], ports: &[PortRule]) -> Result<()> {
        validate_all(nets)?;
        validate_ports(ports)?;
        let mut desired = self.lock.lock().await;
        tracing::info!(table = %self.table, networks = nets.len(), ports = ports.len(), "rebuilding nftables table");
        self.apply("rebuild the table", render::sync(&self.table, nets, ports)).await?;
        desired.networks = nets.iter().map(|n| (n.id.clone(), n.clone())).collect();
        desired.ports = ports.iter().cloned().collect();
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
        let mut desired = self.lock.lock().await;
        tracing::debug!(table = %self.table, ports = ports.len(), "publishing ports");
        match self.apply("publish ports", render::add_ports(&self.table, ports)).await {
            Ok(()) => {}
            Err(_) if !self.exists().await? => {
                tracing::warn!(table = %self.table, "nftables table is gone: rebuilding it");
                let mut all = desired.ports();
                all.extend(ports.iter().cloned());
                validate_ports(&all)?;
                self.apply("rebuild the table", render::sync(&self.table, &desired.networks(), &all)).await?;
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
        let mut desired = self.lock.lock().await;
        for p in ports {
            desired.ports.remove(p);
        }
        if !self.exists().await? {
            return Ok(());
        }
        tracing::debug!(table = %self.table, ports = ports.len(), "unpublishing ports");
        match self.apply("unpublish ports", render::remove_ports(&self.table, ports)).await {
            Err(_) if !self.exists().await? => Ok(()),
            other => other,
        }
    }

    /// If the table is gone (deleted by hand), rebuilds it with everything it must hold, in one
    /// transaction. Returns whether it had to.
    pub async fn repair(&self) -> Result<bool> {
        let desired = self.lock.lock().await;
        if self.exists().await? {
            return Ok(false);
        }
        tracing::warn!(
            table = %self.table,
            networks = desired.networks.len(),
            ports = desired.ports.len(),
            "nftables table is gone: rebuilding it"
        );
        let batch = render::sync(&self.table, &desired.networks(), &desired.ports());
        self.apply("rebuild the table", batch).await?;
        Ok(true)
    }

    pub async fn table_exists(&self) -> Result<bool> {
        let _desired = self.lock.lock().await;
        self.exists().await
    }

    /// Deletes the table and everything in it; a missing table is no error.
    pub async fn delete_table(&self) -> Result<()> {
        let mut desired = self.lock.lock().await;
        *desired = Desired::default();
        tracing::info!(table = %self.table, "deleting nftables table");
        self.apply("delete the table", render::delete_table(&self.table)).await
    }

    /// The table as nft lists it (`nft -j list table inet <table>`; never the whole ruleset, which
    /// may hold other programs' objects that the `nftables` crate cannot parse).
    pub async fn ruleset(&self) -> Result<Nftables<'static>> {
        let _desired = self.lock.lock().await;
        let args = ["list", "table", "inet", self.table.as_str()];
        helper::get_current_ruleset_with_args_async(DEFAULT_NFT, &args)
            .await
            .map_err(|source| self.nft_error("list the table", source))
    }

    /// Lists only the names of inet tables, so an absent table is an answer, not an nft error.
    async fn exists(&self) -> Result<bool> {
        let listing = helper::get_current_ruleset_with_args_async(DEFAULT_NFT, &["list", "tables", "inet"])
            .await
            .map_err(|source| self.nft_error("list the tables", source))?;
        Ok(listing.objects.iter().any(|obj| {
            matches!(obj, NfObject::ListObject(NfListObject::Table(t))
                if t.family == NfFamily::INet && t.name == self.table)
        }))
    }

    async fn apply(&self, action: &'static str, batch: Batch<'_>) -> Result<()> {
        let nftables = batch.to_nftables();
        if tracing::enabled!(tracing::Level::TRACE) {
            let json = serde_json::to_string(&nftables).unwrap_or_default();
            tracing::trace!(table = %self.table, action, %json, "nft transaction");
        }
        helper::apply_ruleset_async(&nftables).await.map_err(|source| {
            let error = self.nft_error(action, source);
            tracing::warn!(table = %self.table, error = ?error, "nft transaction failed");
            error
        })
    }

    fn nft_error(&self, action: &'static str, source: NftablesError) -> Error {
        Error::Nft { table: self.table.clone(), action, source: Box::new(source) }
    }
}
