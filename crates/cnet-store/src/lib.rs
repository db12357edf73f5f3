//! Persistence of cnetd's records: networks, endpoints (which carry the IP leases) and sandboxes,
//! in one embedded transactional store (redb), values as serde JSON. Every controller change is one
//! write transaction, durable when it returns, so a `kill -9` loses nothing it acknowledged.
//! This crate knows records, never kernel objects.

use std::path::Path;

use cnet_core::{Endpoint, Network, Sandbox};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
const SANDBOXES: TableDefinition<&str, &[u8]> = TableDefinition::new("sandboxes");
/// Other nodes' endpoints of global networks, as the cluster store last told them: a cache, so
/// their names resolve from the first moment after a restart, until the next resync replaces it.
const REMOTE: TableDefinition<&str, &[u8]> = TableDefinition::new("remote_endpoints");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {path}: {source}")]
    Open { path: String, source: redb::DatabaseError },
    #[error("state store: {0}")]
    Db(String),
    #[error("state store record {key}: {source}")]
    Decode { key: String, source: serde_json::Error },
}

pub type Result<T> = std::result::Result<T, StoreError>;

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// Everything the store holds, as loaded at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub networks: Vec<Network>,
    pub endpoints: Vec<Endpoint>,
    pub sandboxes: Vec<Sandbox>,
}

pub struct Store {
    db: Database,
}

/// One write transaction: a set of puts and deletes applied atomically by [`Store::commit`].
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
}

enum Op {
    Put(TableDefinition<'static, &'static str, &'static [u8]>, String, Vec<u8>),
    Delete(TableDefinition<'static, &'static str, &'static [u8]>, String),
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialize")
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put_network(&mut self, n: &Network) -> &mut Self {
        self.ops.push(Op::Put(NETWORKS, n.id.to_string(), encode(n)));
        self
    }
    pub fn delete_network(&mut self, id: &str) -> &mut Self {
        self.ops.push(Op::Delete(NETWORKS, id.to_string()));
        self
    }
    pub fn put_endpoint(&mut self, e: &Endpoint) -> &mut Self {
        self.ops.push(Op::Put(ENDPOINTS, e.id.to_string(), encode(e)));
        self
    }
    pub fn delete_endpoint(&mut self, id: &str) -> &mut Self {
        self.ops.push(Op::Delete(ENDPOINTS, id.to_string()));
        self
    }
    pub fn put_sandbox(&mut self, s: &Sandbox) -> &mut Self {
        self.ops.push(Op::Put(SANDBOXES, s.id.to_string(), encode(s)));
        self
    }
    pub fn delete_sandbox(&mut self, id: &str) -> &mut Self {
        self.ops.push(Op::Delete(SANDBOXES, id.to_string()));
        self
    }
    /// Caches another node's endpoint (any serde record: the store does not know the cluster's).
    pub fn put_remote<T: Serialize>(&mut self, id: &str, record: &T) -> &mut Self {
        self.ops.push(Op::Put(REMOTE, id.to_string(), encode(record)));
        self
    }
    pub fn delete_remote(&mut self, id: &str) -> &mut Self {
        self.ops.push(Op::Delete(REMOTE, id.to_string()));
        self
    }
}

impl Store {
    /// Opens (or creates) `<dir>/cnet.redb`, creating `dir` if needed.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join("cnet.redb");
        let db =
            Database::create(&path).map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        // Create the tables so reads of a fresh store find them.
        let txn = db.begin_write().map_err(db_err)?;
        for t in [NETWORKS, ENDPOINTS, SANDBOXES, REMOTE] {
            txn.open_table(t).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        Ok(Store { db })
    }

    /// The cached endpoints of other nodes ([`Batch::put_remote`]).
    pub fn load_remote<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        all(&txn, REMOTE)
    }

    pub fn load(&self) -> Result<Snapshot> {
        let txn = self.db.begin_read().map_err(db_err)?;
        Ok(Snapshot {
            networks: all(&txn, NETWORKS)?,
            endpoints: all(&txn, ENDPOINTS)?,
            sandboxes: all(&txn, SANDBOXES)?,
        })
    }

    /// Applies the batch in one durable transaction.
    pub fn commit(&self, batch: Batch) -> Result<()> {
        if batch.ops.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        for op in batch.ops {
            match op {
                Op::Put(t, k, v) => {
                    txn.open_table(t).map_err(db_err)?.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
                }
                Op::Delete(t, k) => {
                    txn.open_table(t).map_err(db_err)?.remove(k.as_str()).map_err(db_err)?;
                }
            }
        }
        txn.commit().map_err(db_err)
    }
}

/// Every record of a table, decoded.
fn all<T: DeserializeOwned>(txn: &redb::ReadTransaction, t: TableDefinition<&str, &[u8]>) -> Result<Vec<T>> {
    let table = txn.open_table(t).map_err(db_err)?;
    let mut out = Vec::new();
    for row in table.iter().map_err(db_err)? {
        let (k, v) = row.map_err(db_err)?;
        let rec = serde_json::from_slice(v.value())
            .map_err(|source| StoreError::Decode { key: k.value().to_string(), source })?;
        out.push(rec);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(id: &str, name: &str) -> Network {
        Network { created: "2026-11-25T00:00:00Z".into(), ..Network::new(id.into(), name, "bridge") }
    }

    #[test]
    fn records_survive_reopen_and_deletes_apply() {
        let dir = std::env::temp_dir().join(format!("cnet-store-test-{}", std::process::id()));
        {
            let store = Store::open(&dir).unwrap();
            let mut b = Batch::new();
            b.put_network(&network("a1", "one")).put_network(&network("b2", "two"));
            store.commit(b).unwrap();
            let mut b = Batch::new();
            b.delete_network("a1");
            store.commit(b).unwrap();
        }
        let store = Store::open(&dir).unwrap();
        let snap = store.load().unwrap();
        assert_eq!(snap.networks.len(), 1);
        assert_eq!(snap.networks[0].name, "two");
        assert!(snap.endpoints.is_empty() && snap.sandboxes.is_empty());
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
