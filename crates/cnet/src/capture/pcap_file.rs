//! Classic pcap (the format `tcpdump -w` writes and `tcpdump -r -`, Wireshark's `-k -i -` read):
//! a 24-byte file header, then per packet a 16-byte record header and the captured bytes, all in
//! this machine's byte order (readers tell it by the magic number).

use std::io::{self, Write};

/// Microsecond timestamps.
pub const MAGIC: u32 = 0xa1b2_c3d4;
/// LINKTYPE_ETHERNET: veth, macvlan (so overlay) and loopback frames all start with an Ethernet header.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Writes pcap to `out`; the caller decides when to flush (per batch of packets).
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header at once, so a reader knows the format before the first packet.
    pub fn new(mut out: W, snaplen: u32, linktype: u32) -> io::Result<PcapWriter<W>> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&MAGIC.to_ne_bytes());
        header[4..6].copy_from_slice(&2u16.to_ne_bytes());
        header[6..8].copy_from_slice(&4u16.to_ne_bytes());
        // thiszone and sigfigs stay zero, as every writer today leaves them.
        header[16..20].copy_from_slice(&snaplen.to_ne_bytes());
        header[20..24].copy_from_slice(&linktype.to_ne_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out })
    }

    /// One packet: captured at `sec`.`nsec`, `orig_len` bytes long on the wire, `parts` its
    /// captured bytes (more than one part when a VLAN tag is put back between them).
    pub fn packet(&mut self, sec: u32, nsec: u32, orig_len: u32, parts: &[&[u8]]) -> io::Result<()> {
        let caplen: usize = parts.iter().map(|p| p.len()).sum();
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&sec.to_ne_bytes());
        header[4..8].copy_from_slice(&(nsec / 1000).to_ne_bytes());
        header[8..12].copy_from_slice(&(caplen as u32).to_ne_bytes());
        header[12..16].copy_from_slice(&orig_len.max(caplen as u32).to_ne_bytes());
        self.out.write_all(&header)?;
        for part in parts {
            self.out.write_all(part)?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_then_records_as_tcpdump_writes_them() {
        let mut w = PcapWriter::new(Vec::new(), 262144, LINKTYPE_ETHERNET).unwrap();
        w.packet(1_700_000_000, 123_456_789, 98, &[b"abcdefghijkl", b"\x81\x00\x00\x2a", b"rest"]).unwrap();
        w.packet(1_700_000_001, 5_000, 2, &[b"xy"]).unwrap();
        let b = w.out;
        assert_eq!(b.len(), 24 + 16 + 20 + 16 + 2);
        assert_eq!(&b[0..4], &MAGIC.to_ne_bytes());
        assert_eq!((u16::from_ne_bytes([b[4], b[5]]), u16::from_ne_bytes([b[6], b[7]])), (2, 4));
        assert_eq!((u32_at(&b, 16), u32_at(&b, 20)), (262144, 1));
        assert_eq!((u32_at(&b, 24), u32_at(&b, 28), u32_at(&b, 32), u32_at(&b, 36)), (1_700_000_000, 123_456, 20, 98));
        assert_eq!(&b[40..60], b"abcdefghijkl\x81\x00\x00\x2arest");
        // A record is never shorter on the wire than captured.
        assert_eq!((u32_at(&b, 60), u32_at(&b, 64), u32_at(&b, 68), u32_at(&b, 72)), (1_700_000_001, 5, 2, 2));
    }
}
