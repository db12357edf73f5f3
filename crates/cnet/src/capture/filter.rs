//! The kernel filter of a capture: a tcpdump expression compiled by libpcap into classic BPF, with
//! its accept value set to the snap length, so that the kernel both drops what the user did not ask
//! for and copies no more of a packet than will be written.

use anyhow::{Context as _, bail};
use pcap::{Capture, Linktype};

/// BPF opcode class and source of `ret #k` (`BPF_RET | BPF_K`).
const BPF_RET_K: u16 = 0x06;

/// A classic BPF program, as `SO_ATTACH_FILTER` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub insns: Vec<libc::sock_filter>,
}

impl Filter {
    /// Every packet, cut to `snaplen` bytes: one `ret #snaplen`. Attached even without an
    /// expression so the kernel copies only what is written.
    pub fn all(snaplen: u32) -> Filter {
        Filter { insns: vec![insn(BPF_RET_K, 0, 0, snaplen)] }
    }

    /// `expression` (tcpdump's syntax) for frames of `linktype`, accepted packets cut to `snaplen`.
    /// An expression libpcap refuses is an error naming it and libpcap's reason.
    pub fn compile(expression: &str, linktype: Linktype, snaplen: u32) -> anyhow::Result<Filter> {
        let dead = Capture::dead(linktype).context("opening libpcap's filter compiler")?;
        let program =
            dead.compile(expression, true).map_err(|e| anyhow::anyhow!("bad filter expression {expression:?}: {e}"))?;
        let mut insns = Vec::with_capacity(program.get_instructions().len());
        // The pcap crate keeps the fields of its instructions private and shows them only as
        // "code jt jf k" (libpcap's own `-dd` order); parsing that needs no unsafe layout cast.
        for shown in program.get_instructions() {
            insns.push(parse_insn(&shown.to_string())?);
        }
        Ok(Filter { insns: with_snaplen(insns, snaplen) })
    }
}

/// The instruction libpcap shows as `code jt jf k`.
fn parse_insn(shown: &str) -> anyhow::Result<libc::sock_filter> {
    let fields: Vec<&str> = shown.split_whitespace().collect();
    let parsed = match fields[..] {
        [code, jt, jf, k] => (|| Some(insn(code.parse().ok()?, jt.parse().ok()?, jf.parse().ok()?, k.parse().ok()?)))(),
        _ => None,
    };
    match parsed {
        Some(insn) => Ok(insn),
        None => bail!("libpcap's compiler gave an instruction cnet cannot read: {shown:?}"),
    }
}

/// `insns` with every non-zero `ret #k` (accept k bytes) lowered to `snaplen`: libpcap's dead
/// handle compiles for its own snap length (65535), not the user's.
fn with_snaplen(mut insns: Vec<libc::sock_filter>, snaplen: u32) -> Vec<libc::sock_filter> {
    for i in &mut insns {
        if i.code == BPF_RET_K && i.k != 0 {
            i.k = snaplen;
        }
    }
    insns
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(f: &Filter) -> Vec<(u16, u8, u8, u32)> {
        f.insns.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect()
    }

    #[test]
    fn icmp_compiles_as_tcpdump_dd_shows_it_with_the_snaplen() {
        // `tcpdump -dd -s 1500 icmp` on an Ethernet link.
        let f = Filter::compile("icmp", Linktype::ETHERNET, 1500).unwrap();
        assert_eq!(
            shown(&f),
            vec![
                (0x28, 0, 0, 12),
                (0x15, 0, 3, 0x800),
                (0x30, 0, 0, 23),
                (0x15, 0, 1, 1),
                (0x6, 0, 0, 1500),
                (0x6, 0, 0, 0)
            ]
        );
    }

    #[test]
    fn no_expression_keeps_everything_up_to_the_snaplen() {
        assert_eq!(shown(&Filter::all(96)), vec![(0x6, 0, 0, 96)]);
    }

    #[test]
    fn a_bad_expression_is_named() {
        let err = Filter::compile("udp port nine", Linktype::ETHERNET, 100).unwrap_err().to_string();
        assert!(err.contains("\"udp port nine\""), "{err}");
        let err = Filter::compile("tcp and (", Linktype::ETHERNET, 100).unwrap_err().to_string();
        assert!(err.contains("syntax error"), "{err}");
    }

    #[test]
    fn instructions_are_read_from_libpcaps_text() {
        let i = parse_insn("21 0 3 2048").unwrap();
        assert_eq!((i.code, i.jt, i.jf, i.k), (0x15, 0, 3, 2048));
        assert!(parse_insn("21 0 3").is_err());
        assert!(parse_insn("x 0 3 1").is_err());
    }
}
