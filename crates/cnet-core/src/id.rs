use rand::RngCore;

/// A new 64-hex-digit id, as Docker's.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The 12-digit form shown in tables and used in kernel object names (`br-<id12>`).
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// True when `s` could be a (prefix of an) id: lowercase hex only.
pub fn looks_like_id_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses `aa:bb:cc:dd:ee:ff` (or `aa-bb-…`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        out[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// An id type: 64 lowercase hex digits, shown by its first 12 ([`short`]). Each record kind has
/// its own, so a network id cannot be passed where a sandbox id is meant; they read as `str`
/// (`Deref`, `Borrow`) and travel as plain strings (serde, protobuf).
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            pub fn generate() -> $name {
                $name(new_id())
            }

            /// The 12-digit form shown in tables and used in kernel object names.
            pub fn short(&self) -> &str {
                short(&self.0)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            /// An id as it comes back from the store, the API or the cluster store.
            fn from(id: String) -> $name {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }
    };
}

id_type!(
    /// A network's id.
    NetworkId
);
id_type!(
    /// An endpoint's id.
    EndpointId
);
id_type!(
    /// A sandbox's id (the runtime gives its container's id).
    SandboxId
);

/// A MAC address. Shown and stored as `aa:bb:cc:dd:ee:ff`; parsed from that form (or with `-`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr([u8; 6]);

impl MacAddr {
    pub const fn new(octets: [u8; 6]) -> MacAddr {
        MacAddr(octets)
    }

    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// A locally administered MAC derived from an IPv4 address, as Docker does (02:42:a.b.c.d), so
    /// a container keeps its MAC across restarts and neighbours' caches stay right.
    pub fn from_ipv4(ip: std::net::Ipv4Addr) -> MacAddr {
        let o = ip.octets();
        MacAddr([0x02, 0x42, o[0], o[1], o[2], o[3]])
    }

    /// A random locally administered unicast MAC.
    pub fn random() -> MacAddr {
        let mut b = [0u8; 6];
        rand::rng().fill_bytes(&mut b);
        b[0] = (b[0] & 0xfe) | 0x02;
        MacAddr(b)
    }

    /// Whether frames to it reach one host (the group bit is clear).
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }
}

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl std::fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl std::str::FromStr for MacAddr {
    type Err = crate::Error;

    /// `aa:bb:cc:dd:ee:ff` (or with `-`); the error names the value.
    fn from_str(s: &str) -> crate::Result<MacAddr> {
        parse_mac(s).map(MacAddr).ok_or_else(|| crate::Error::invalid(format!("invalid MAC address {s:?}")))
    }
}

impl serde::Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<MacAddr, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_short_is_12() {
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(looks_like_id_prefix(&id));
        assert_eq!(short(&id).len(), 12);
        assert!(!looks_like_id_prefix("web"));
    }

    #[test]
    fn typed_ids_and_macs() {
        let id = NetworkId::generate();
        assert_eq!(id.len(), 64);
        assert_eq!(id.short(), &id[..12]);
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
        let back: NetworkId = serde_json::from_str(&format!("\"{id}\"")).unwrap();
        assert_eq!(back, id);
        assert!(id == id.as_str());
        let mac = MacAddr::from_ipv4("172.18.0.2".parse().unwrap());
        assert_eq!(mac.to_string(), "02:42:ac:12:00:02");
        assert_eq!("02-42-AC-12-00-02".parse::<MacAddr>().unwrap(), mac);
        assert_eq!(serde_json::to_string(&mac).unwrap(), "\"02:42:ac:12:00:02\"");
        assert!(mac.is_unicast() && MacAddr::random().is_unicast());
        let err = "02:42:zz:00:00:01".parse::<MacAddr>().unwrap_err();
        assert!(err.to_string().contains("02:42:zz:00:00:01"), "{err}");
    }

    #[test]
    fn macs() {
        assert!(parse_mac("02:42:ac:12:00").is_none());
        assert!(parse_mac("zz:42:ac:12:00:01").is_none());
        assert_eq!(parse_mac("02-42-ac-12-00-02"), Some([0x02, 0x42, 0xac, 0x12, 0, 2]));
    }
}
