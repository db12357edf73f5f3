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

/// A locally administered MAC derived from an IPv4 address, as Docker does (02:42:a.b.c.d), so a
/// container keeps its MAC across restarts and neighbours' caches stay right.
pub fn mac_from_ipv4(ip: std::net::Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// A random locally administered unicast MAC.
pub fn random_mac() -> String {
    let mut b = [0u8; 6];
    rand::rng().fill_bytes(&mut b);
    b[0] = (b[0] & 0xfe) | 0x02;
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
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
    fn macs() {
        assert_eq!(mac_from_ipv4("172.18.0.2".parse().unwrap()), "02:42:ac:12:00:02");
        let m = random_mac();
        let b = parse_mac(&m).unwrap();
        assert_eq!(b[0] & 0x03, 0x02);
        assert!(parse_mac("02:42:ac:12:00").is_none());
        assert!(parse_mac("zz:42:ac:12:00:01").is_none());
    }
}
