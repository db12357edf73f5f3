//! The secrets of encrypted overlay networks (`-o encrypted`): one per network, at
//! `secrets/<network id>`, written with the network in its creating transaction, replaced by a
//! rotation, deleted with the network. Every host reads it from its watch and hands it to the
//! network's driver ([`cnet_core::Driver::set_network_secret`]), which uses it as the WireGuard
//! preshared key between the network's hosts. The hosts' own key pairs are not here: each keeps
//! its private key to itself and publishes only the public key, in its endpoint records.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cnet_core::{Error, Network, NetworkSecret, Result};
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

use crate::{Cluster, json, keys};

/// A network's secret as etcd holds it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// 1 for the first key, one more at each rotation.
    pub serial: u64,
    /// 32 random bytes, base64 (as `wg genpsk` prints them).
    pub key: String,
    /// RFC 3339, when this key was made.
    pub created: String,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord").field("serial", &self.serial).field("created", &self.created).finish()
    }
}

impl SecretRecord {
    /// A fresh random key with this serial.
    pub fn generate(serial: u64) -> SecretRecord {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        SecretRecord { serial, key: B64.encode(key), created: cnet_core::time::now_rfc3339() }
    }

    /// The secret a driver gets; an error names the network when the key is not 32 bytes of base64.
    pub fn secret(&self, network_id: &str) -> Result<NetworkSecret> {
        let bytes = B64.decode(self.key.trim()).ok();
        let key: [u8; 32] = bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
            Error::internal(format!(
                "the secret of network {} in the cluster store is not 32 bytes of base64",
                cnet_core::id::short(network_id)
            ))
        })?;
        Ok(NetworkSecret { serial: self.serial, key })
    }
}

/// A WireGuard public key as endpoint records carry it ([`crate::EndpointRecord::node_key`]).
pub fn decode_public_key(text: &str) -> Option<[u8; 32]> {
    B64.decode(text.trim()).ok().and_then(|b| b.try_into().ok())
}

/// The put of a new network's first secret, for its creating transaction (none for a network
/// that is not encrypted).
pub(crate) fn initial_put(network: &Network) -> Option<TxnOp> {
    cnet_core::options::is_encrypted(network)
        .then(|| TxnOp::put(keys::secret(&network.id), json(&SecretRecord::generate(1)), None))
}

impl Cluster {
    /// Replaces the secret of an encrypted network with a fresh one (serial + 1) and returns the
    /// new serial. Compare-and-swap on the key's revision: two rotations at once make two new
    /// keys one after the other, never lose one. Every host applies it from its watch.
    pub async fn rotate_network_secret(&self, network: &Network) -> Result<u64> {
        self.check_connected()?;
        if !cnet_core::options::is_encrypted(network) {
            return Err(Error::precondition(format!(
                "network {} is not encrypted (create it with -o encrypted): it has no key to rotate",
                network.name
            )));
        }
        for _ in 0..crate::RETRIES {
            let mut c = self.client.clone();
            let key = keys::secret(&network.id);
            let resp = self.timed("reading the network's secret", c.get(key.clone(), None)).await?;
            let (serial, revision) = match resp.kvs().first() {
                Some(kv) => {
                    let old: SecretRecord = serde_json::from_slice(kv.value()).map_err(|e| {
                        Error::internal(format!("the secret of network {} does not parse: {e}", network.name))
                    })?;
                    (old.serial, kv.mod_revision())
                }
                None => (0, 0),
            };
            let next = SecretRecord::generate(serial + 1);
            let txn = Txn::new()
                .when([
                    Compare::mod_revision(key.clone(), CompareOp::Equal, revision),
                    Compare::version(keys::network(&network.id), CompareOp::Greater, 0),
                ])
                .and_then([TxnOp::put(key, json(&next), None)]);
            if self.timed("rotating the network's secret", c.txn(txn)).await?.succeeded() {
                tracing::info!(network = %network.name, serial = next.serial, "network secret rotated");
                return Ok(next.serial);
            }
            let exists = self.timed("reading the network", c.get(keys::network(&network.id), None)).await?;
            if exists.kvs().is_empty() {
                return Err(Error::not_found(format!("network {} was removed", network.name)));
            }
        }
        Err(Error::unavailable(format!(
            "rotating the key of {}: too much contention in the cluster store",
            network.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_32_bytes_and_never_printed() {
        let a = SecretRecord::generate(1);
        let b = SecretRecord::generate(2);
        assert_ne!(a.key, b.key);
        let s = a.secret("0123456789abcdef").unwrap();
        assert_eq!(s.serial, 1);
        assert_eq!(B64.encode(s.key), a.key);
        assert!(!format!("{a:?} {s:?}").contains(&a.key), "a secret reached Debug output");
        let bad = SecretRecord { key: "c2hvcnQ=".into(), ..a };
        let e = bad.secret("0123456789abcdef").unwrap_err().to_string();
        assert!(e.contains("0123456789ab") && e.contains("32 bytes"), "{e}");
    }

    #[test]
    fn only_encrypted_networks_get_a_secret() {
        let mut n = Network::new(cnet_core::NetworkId::generate(), "n", "overlay");
        assert!(initial_put(&n).is_none());
        n.options.insert("encrypted".into(), String::new());
        assert!(initial_put(&n).is_some());
    }
}
