//! Encrypted overlay networks (`-o encrypted`): the network's VXLAN packets travel inside
//! WireGuard between its hosts.
//!
//! - One WireGuard link per encrypted network on each host that has an endpoint on it,
//!   `wg-<netid12>`, made before the VXLAN device and removed after it. Its peers are the other
//!   hosts with endpoints on the network: public key (from their endpoint records), endpoint
//!   `VTEP:port`, allowed IP the VTEP address itself, and the network's secret from the cluster
//!   store as preshared key. So "the keys of a network" are its secret, and a host that is not on
//!   the network has no session with the others for it.
//! - The VXLAN device keeps the underlay addresses as VTEPs; only its FDB entries change: each
//!   goes `via` the WireGuard link, which makes the kernel route the encapsulated packet out of
//!   that link (a route lookup bound to an interface with no route through it takes the
//!   destination as on-link). WireGuard then encrypts it to the peer whose allowed IP is that VTEP
//!   and sends it, as UDP from its own socket, by the ordinary routes. No address, route or rule
//!   is added to the host.
//! - The listen port is derived from the VNI ([`port`]), so every host of a network agrees on it
//!   without asking anybody.
//! - Each host has one key pair ([`HostKey`]), made at its first start in cnetd's state
//!   directory; the private key never leaves it, the public key goes out in its endpoint records.
//!
//! Changing a peer's preshared key keeps its session (the kernel keeps the session keys), and the
//! next handshake (WireGuard rekeys every two minutes) uses the new one; hosts that got the new
//! secret a moment earlier than others fail a handshake at most and retry, while the current
//! session (valid for three minutes) carries the traffic. That is what makes a rotation drop
//! nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cnet_core::{Error, Network, NetworkSecret, RemoteEndpoint, Result, ResultExt};
use cnet_kernel::{Kernel, WgConfig, WgKey, WgPeer};
use rand::RngCore as _;

/// The first WireGuard port of encrypted networks (WireGuard's customary one); a network's is
/// this plus its VNI modulo [`PORT_SPAN`].
pub const PORT_BASE: u16 = 51820;
pub const PORT_SPAN: u32 = 4096;

/// Outer IPv4 + UDP + WireGuard's header and tag (20 + 8 + 32); 20 more over IPv6.
const WIREGUARD_OVERHEAD_V4: u32 = 60;
const WIREGUARD_OVERHEAD_V6: u32 = 80;

pub fn is_encrypted(network: &Network) -> bool {
    cnet_core::options::is_encrypted(network)
}

/// The network's WireGuard link.
pub fn wireguard_name(network: &Network) -> String {
    format!("wg-{}", network.short_id())
}

/// The UDP port of a network's WireGuard links: the same on every host, from the VNI. Networks
/// whose VNIs differ by a multiple of [`PORT_SPAN`] would share a port: the second one's link
/// then fails to come up on a host that has both, naming the port (cnet's own VNIs start at 4096
/// and count up, so this takes 4096 encrypted networks or hand-picked VNIs).
pub fn port(vni: u32) -> u16 {
    PORT_BASE + (vni % PORT_SPAN) as u16
}

/// What WireGuard adds to each packet over an underlay of the VTEP's family.
pub fn overhead(network: &Network, vtep: IpAddr) -> u32 {
    match (is_encrypted(network), vtep) {
        (false, _) => 0,
        (true, IpAddr::V4(_)) => WIREGUARD_OVERHEAD_V4,
        (true, IpAddr::V6(_)) => WIREGUARD_OVERHEAD_V6,
    }
}

/// Whether this kernel can make WireGuard links: the module is loaded, built in, or installed
/// (then making the first link loads it).
pub fn wireguard_supported() -> bool {
    if Path::new("/sys/module/wireguard").exists() {
        return true;
    }
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else { return false };
    let dir = PathBuf::from("/lib/modules").join(release.trim());
    ["modules.builtin", "modules.dep"].iter().any(|f| {
        std::fs::read_to_string(dir.join(f)).is_ok_and(|s| {
            s.lines().any(|l| {
                l.split(':').next().is_some_and(|m| m.ends_with("/wireguard.ko") || m.contains("/wireguard.ko."))
            })
        })
    })
}

/// The refusal of `-o encrypted` on a kernel without WireGuard.
pub fn unsupported_error() -> Error {
    Error::invalid(
        "-o encrypted: this kernel lacks WireGuard (module wireguard), which encrypted overlay networks use to \
         encrypt traffic between hosts",
    )
}

/// Why a host key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("host key {}: {error}", .path.display())]
    Io { path: PathBuf, error: std::io::Error },
    #[error("host key {}: not a WireGuard private key (32 bytes of base64, as `wg genkey` prints)", .path.display())]
    Malformed { path: PathBuf },
}

/// This host's WireGuard key pair.
#[derive(Clone)]
pub struct HostKey {
    private: WgKey,
    public: WgKey,
}

impl std::fmt::Debug for HostKey {
    /// The public half only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey").field("public", &self.public_base64()).finish_non_exhaustive()
    }
}

impl HostKey {
    pub fn from_private(mut private: WgKey) -> HostKey {
        // Curve25519 clamping, as `wg genkey` does (the kernel clamps too).
        private[0] &= 248;
        private[31] = (private[31] & 127) | 64;
        let public = x25519_dalek::x25519(private, x25519_dalek::X25519_BASEPOINT_BYTES);
        HostKey { private, public }
    }

    pub fn generate() -> HostKey {
        let mut private = [0u8; 32];
        rand::rng().fill_bytes(&mut private);
        HostKey::from_private(private)
    }

    /// The key in `path` (base64, as `wg genkey` writes it), or a new one written there (mode
    /// 0600, made under another name and renamed, so a crash never leaves half a key).
    pub fn load_or_create(path: &Path) -> std::result::Result<HostKey, HostKeyError> {
        let io = |error| HostKeyError::Io { path: path.to_path_buf(), error };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let key: WgKey = B64
                    .decode(text.trim())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| HostKeyError::Malformed { path: path.to_path_buf() })?;
                Ok(HostKey::from_private(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = HostKey::generate();
                let tmp = path.with_extension("new");
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)
                    .map_err(io)?;
                writeln!(f, "{}", B64.encode(key.private)).and_then(|()| f.sync_all()).map_err(io)?;
                std::fs::rename(&tmp, path).map_err(io)?;
                tracing::info!(path = %path.display(), public = %key.public_base64(), "made this host's WireGuard key");
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn public(&self) -> WgKey {
        self.public
    }

    pub fn public_base64(&self) -> String {
        B64.encode(self.public)
    }
}

/// Parses a public key as endpoint records carry it (base64).
pub fn parse_key(text: &str) -> Option<WgKey> {
    B64.decode(text.trim()).ok().and_then(|b| b.try_into().ok())
}

/// The WireGuard peers of a network: one per other host with endpoints on it, keyed by its public
/// key. Hosts that published no key are left out (their endpoints stay unreachable on this
/// network; the caller logs them).
pub fn peers(
    endpoints: &HashMap<String, RemoteEndpoint>,
    port: u16,
    secret: &NetworkSecret,
) -> (BTreeMap<WgKey, WgPeer>, Vec<IpAddr>) {
    let mut out = BTreeMap::new();
    let mut keyless = HashSet::new();
    for ep in endpoints.values() {
        let Some(key) = ep.node_key else {
            keyless.insert(ep.node_address);
            continue;
        };
        let peer = out.entry(key).or_insert_with(|| WgPeer {
            public_key: key,
            endpoint: SocketAddr::new(ep.node_address, port),
            allowed_ips: vec![],
            preshared_key: secret.key,
        });
        if !peer.allowed_ips.contains(&ep.node_address) {
            peer.allowed_ips.push(ep.node_address);
        }
    }
    let mut keyless: Vec<IpAddr> = keyless.into_iter().collect();
    keyless.sort();
    (out, keyless)
}

/// Makes (or finds) the network's WireGuard link, up, with this host's key, the network's port
/// and its peers. Without the network's secret an existing link is kept as it is (a restart:
/// the secret follows with the cluster store's resync) and a missing one is an error: traffic
/// must never go out unencrypted or with a key the other hosts do not have.
pub(crate) async fn bring_up(
    kernel: &Kernel,
    network: &Network,
    key: Option<&HostKey>,
    secret: Option<&NetworkSecret>,
    mtu: u32,
    endpoints: &HashMap<String, RemoteEndpoint>,
) -> Result<()> {
    let wg = wireguard_name(network);
    if !wireguard_supported() {
        return Err(unsupported_error());
    }
    let exists = kernel.link_by_name(&wg).await.internal(format!("looking up {wg}"))?.is_some();
    if secret.is_none() {
        return match exists {
            true => Ok(()),
            false => Err(Error::unavailable(format!(
                "encrypted network {}: its key has not reached this host from the cluster store yet; try again",
                network.name
            ))),
        };
    }
    kernel.create_wireguard(&wg, Some(mtu)).await.internal(format!("creating {wg}"))?;
    configure(kernel, network, key, secret, endpoints).await?;
    kernel.set_up(&wg).await.internal(format!("bringing {wg} up"))?;
    Ok(())
}

/// Makes the link's peers those of `endpoints` with `secret` as their preshared key: new ones
/// added, changed ones updated in place (their sessions kept), gone ones removed.
pub(crate) async fn configure(
    kernel: &Kernel,
    network: &Network,
    key: Option<&HostKey>,
    secret: Option<&NetworkSecret>,
    endpoints: &HashMap<String, RemoteEndpoint>,
) -> Result<()> {
    let wg = wireguard_name(network);
    let Some(secret) = secret else { return Ok(()) };
    let key = key.ok_or_else(|| {
        Error::internal(format!("encrypted network {}: this host has no WireGuard key", network.name))
    })?;
    let vni = cnet_core::options::vni_of(network)
        .ok_or_else(|| Error::internal(format!("overlay network {} has no VNI recorded", network.name)))?;
    let listen_port = port(vni);
    let (wanted, keyless) = peers(endpoints, listen_port, secret);
    if !keyless.is_empty() {
        tracing::warn!(network = %network.name, nodes = ?keyless, "nodes without a WireGuard key: their endpoints are unreachable on this encrypted network");
    }
    let current = kernel.wireguard_peers(&wg).await.internal(format!("listing the peers of {wg}"))?;
    let remove: Vec<WgKey> = current.into_iter().filter(|k| !wanted.contains_key(k)).collect();
    let cfg = WgConfig { private_key: key.private, listen_port, peers: wanted.into_values().collect(), remove };
    kernel.configure_wireguard(&wg, &cfg).await.map_err(|e| {
        if e.errno() == Some(EADDRINUSE) {
            Error::precondition(format!(
                "encrypted network {}: UDP port {listen_port} (its WireGuard port, from VNI {vni}) is taken on this host",
                network.name
            ))
        } else {
            Error::internal(format!("configuring {wg}: {e}"))
        }
    })?;
    tracing::debug!(network = %network.name, link = %wg, peers = cfg.peers.len(), removed = cfg.remove.len(), serial = secret.serial, "wireguard peers set");
    Ok(())
}

/// Linux's errno for a port another socket holds.
const EADDRINUSE: i32 = 98;

/// Removes the network's WireGuard link (after its VXLAN device). A missing link is fine.
pub(crate) async fn bring_down(kernel: &Kernel, network: &Network) -> Result<()> {
    let wg = wireguard_name(network);
    kernel.delete_link(&wg).await.internal(format!("deleting {wg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(encrypted: bool) -> Network {
        let mut n = Network::new(cnet_core::NetworkId::generate(), "sec", "overlay");
        if encrypted {
            n.options.insert("encrypted".into(), String::new());
        }
        n.options.insert(cnet_core::options::OVERLAY_VNI.into(), "4097".into());
        n
    }

    #[test]
    fn names_ports_and_overhead() {
        let n = net(true);
        assert_eq!(wireguard_name(&n), format!("wg-{}", &n.id[..12]));
        assert!(wireguard_name(&n).len() <= 15);
        assert_eq!(port(4096), 51820);
        assert_eq!(port(4097), 51821);
        assert_eq!(port(4096 + 4095), 51820 + 4095);
        assert_eq!(overhead(&n, "192.0.2.1".parse().unwrap()), 60);
        assert_eq!(overhead(&n, "2001:db8::1".parse().unwrap()), 80);
        assert_eq!(overhead(&net(false), "192.0.2.1".parse().unwrap()), 0);
    }

    #[test]
    fn host_keys_derive_the_public_half_and_persist() {
        // RFC 7748, 6.1: Alice's private and public keys.
        let private: WgKey =
            hex_bytes("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a").try_into().unwrap();
        let k = HostKey::from_private(private);
        assert_eq!(
            k.public(),
            <[u8; 32]>::try_from(hex_bytes("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
                .unwrap()
        );
        assert!(!format!("{k:?}").contains(&B64.encode(k.private)));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wireguard.key");
        let a = HostKey::load_or_create(&path).unwrap();
        let b = HostKey::load_or_create(&path).unwrap();
        assert_eq!(a.public(), b.public());
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(parse_key(&a.public_base64()), Some(a.public()));
        std::fs::write(&path, "not a key\n").unwrap();
        let e = HostKey::load_or_create(&path).unwrap_err().to_string();
        assert!(e.contains("wireguard.key") && e.contains("base64"), "{e}");
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn one_peer_per_host_with_the_network_secret() {
        let ep = |mac: u8, node: &str, key: Option<u8>| RemoteEndpoint {
            mac: [2, 0, 0, 0, 0, mac],
            ip: Some(format!("10.0.0.{mac}").parse().unwrap()),
            ip_v6: None,
            node_address: node.parse().unwrap(),
            node_key: key.map(|k| [k; 32]),
        };
        let endpoints: HashMap<String, RemoteEndpoint> = [
            ("a".to_string(), ep(2, "192.0.2.2", Some(2))),
            ("b".to_string(), ep(3, "192.0.2.2", Some(2))),
            ("c".to_string(), ep(4, "192.0.2.3", Some(3))),
            ("d".to_string(), ep(5, "192.0.2.4", None)),
        ]
        .into();
        let secret = NetworkSecret { serial: 7, key: [9; 32] };
        let (peers, keyless) = peers(&endpoints, 51821, &secret);
        assert_eq!(peers.len(), 2);
        let p = &peers[&[2; 32]];
        assert_eq!(p.endpoint, "192.0.2.2:51821".parse().unwrap());
        assert_eq!(p.allowed_ips, ["192.0.2.2".parse::<IpAddr>().unwrap()]);
        assert_eq!(p.preshared_key, [9; 32]);
        assert_eq!(keyless, ["192.0.2.4".parse::<IpAddr>().unwrap()]);
    }
}
