//! The root qdisc of one interface, as `cnet link set` shapes the traffic it sends: `tbf` for a
//! rate alone, `netem` for delay, jitter, loss and corruption (with its own rate when one is
//! asked too). netlink-packet-route models neither kind's options, so their `TCA_OPTIONS` are
//! encoded here, byte for byte as `<linux/pkt_sched.h>` lays them out, and unit-tested against
//! that layout.

use futures::{StreamExt, TryStreamExt};
use nix::libc;
use rtnetlink::packet_core::{
    DefaultNla, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage};

use crate::{Error, NetnsHandle, Result, error::netlink_errno, link::check_ifname};

/// `TCA_OPTIONS` of `enum { TCA_UNSPEC, TCA_KIND, TCA_OPTIONS, … }`.
const TCA_OPTIONS: u16 = 2;

// enum { TCA_TBF_UNSPEC, TCA_TBF_PARMS, TCA_TBF_RTAB, TCA_TBF_PTAB, TCA_TBF_RATE64,
//        TCA_TBF_PRATE64, TCA_TBF_BURST, … }
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;

// enum { TCA_NETEM_UNSPEC, TCA_NETEM_CORR, TCA_NETEM_DELAY_DIST, TCA_NETEM_REORDER,
//        TCA_NETEM_CORRUPT, TCA_NETEM_LOSS, TCA_NETEM_RATE, TCA_NETEM_ECN, TCA_NETEM_RATE64,
//        TCA_NETEM_PAD, TCA_NETEM_LATENCY64, TCA_NETEM_JITTER64, … }
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;

/// `TC_LINKLAYER_ETHERNET`: a rate spec that says its link layer needs no rate table (the kernel
/// computes transmission times itself), so none is sent.
const TC_LINKLAYER_ETHERNET: u8 = 1;

/// The kernel's scheduler ticks are nanoseconds shifted by `PSCHED_SHIFT` (6).
const PSCHED_SHIFT: u32 = 6;

/// How much a tbf may queue beyond its burst, in time at its rate (tc's `latency`).
const TBF_LATENCY_US: u64 = 50_000;

/// netem's queue, in packets (tc's default `limit`).
const NETEM_LIMIT: u32 = 1000;

/// A root qdisc cnet puts on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootQdisc {
    Tbf(Tbf),
    Netem(Netem),
}

/// A token bucket: `tc qdisc replace dev IF root tbf rate RATE burst BURST limit LIMIT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tbf {
    /// Bytes per second.
    pub rate: u64,
    /// Bytes sent at line speed before the rate applies; at least one frame.
    pub burst: u32,
    /// Bytes queued (burst included) before packets are dropped.
    pub limit: u32,
}

impl Tbf {
    /// A bucket for `rate` bytes per second on a link of `mtu`: a burst of 4 ms of traffic (a
    /// timer tick at HZ=250) but at least two full frames, so that no frame is larger than the
    /// bucket, and 50 ms of queue beyond it.
    pub fn for_rate(rate: u64, mtu: u32) -> Tbf {
        let frame = u64::from(mtu) + 14;
        let burst = (rate / 250).max(2 * frame).min(u64::from(u32::MAX));
        let limit = (burst + rate * TBF_LATENCY_US / 1_000_000).min(u64::from(u32::MAX));
        Tbf { rate, burst: burst as u32, limit: limit as u32 }
    }

    /// The payload of `TCA_OPTIONS`: `TCA_TBF_PARMS` (struct tc_tbf_qopt), `TCA_TBF_BURST`, and
    /// `TCA_TBF_RATE64` when the rate does not fit the struct's 32 bits.
    pub(crate) fn options(&self) -> Vec<u8> {
        let mut parms = Vec::with_capacity(36);
        ratespec(&mut parms, self.rate);
        parms.extend_from_slice(&[0; 12]); // peakrate: none
        parms.extend_from_slice(&self.limit.to_ne_bytes());
        // buffer: the burst's transmission time in ticks (the kernel recomputes it from
        // TCA_TBF_BURST, but a dump reports this field).
        let buffer_ns = u128::from(self.burst) * 1_000_000_000 / u128::from(self.rate.max(1));
        parms.extend_from_slice(&ticks(buffer_ns).to_ne_bytes());
        parms.extend_from_slice(&0u32.to_ne_bytes()); // mtu: only for a peak rate
        let mut out = nla(TCA_TBF_PARMS, &parms);
        if self.rate > u64::from(u32::MAX) {
            out.extend(nla(TCA_TBF_RATE64, &self.rate.to_ne_bytes()));
        }
        out.extend(nla(TCA_TBF_BURST, &self.burst.to_ne_bytes()));
        out
    }
}

/// A network emulator: `tc qdisc replace dev IF root netem delay D J loss L% corrupt C% rate R`.
/// Jitter is uniform around the delay (no distribution table is sent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Netem {
    pub delay_ns: u64,
    pub jitter_ns: u64,
    /// Parts per million of packets dropped.
    pub loss_ppm: u32,
    /// Parts per million of packets with a bit flipped.
    pub corrupt_ppm: u32,
    /// Bytes per second; 0: no rate.
    pub rate: u64,
}

impl Netem {
    /// The payload of `TCA_OPTIONS`: struct tc_netem_qopt, then its attributes (netem parses
    /// them after the struct, not nested). Delays go both in the struct (ticks, for old
    /// kernels) and as 64-bit nanoseconds, which newer kernels prefer.
    pub(crate) fn options(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        for field in [
            ticks(u128::from(self.delay_ns)),
            NETEM_LIMIT,
            probability(self.loss_ppm),
            0, // gap: no reordering
            0, // duplicate
            ticks(u128::from(self.jitter_ns)),
        ] {
            out.extend_from_slice(&field.to_ne_bytes());
        }
        if self.corrupt_ppm != 0 {
            let mut corrupt = probability(self.corrupt_ppm).to_ne_bytes().to_vec();
            corrupt.extend_from_slice(&0u32.to_ne_bytes()); // correlation
            out.extend(nla(TCA_NETEM_CORRUPT, &corrupt));
        }
        if self.rate != 0 {
            // struct tc_netem_rate: rate, packet_overhead, cell_size, cell_overhead.
            let mut rate = (self.rate.min(u64::from(u32::MAX)) as u32).to_ne_bytes().to_vec();
            rate.extend_from_slice(&[0; 12]);
            out.extend(nla(TCA_NETEM_RATE, &rate));
            if self.rate > u64::from(u32::MAX) {
                out.extend(nla(TCA_NETEM_RATE64, &self.rate.to_ne_bytes()));
            }
        }
        if self.delay_ns != 0 {
            out.extend(nla(TCA_NETEM_LATENCY64, &(self.delay_ns as i64).to_ne_bytes()));
        }
        if self.jitter_ns != 0 {
            out.extend(nla(TCA_NETEM_JITTER64, &(self.jitter_ns as i64).to_ne_bytes()));
        }
        out
    }
}

impl RootQdisc {
    /// The kind, as `TCA_KIND` and `tc` name it.
    pub fn kind(&self) -> &'static str {
        match self {
            RootQdisc::Tbf(_) => "tbf",
            RootQdisc::Netem(_) => "netem",
        }
    }

    fn options(&self) -> Vec<u8> {
        match self {
            RootQdisc::Tbf(t) => t.options(),
            RootQdisc::Netem(n) => n.options(),
        }
    }
}

/// struct tc_ratespec: cell_log (u8), linklayer (u8), overhead (u16), cell_align (i16), mpu
/// (u16), rate (u32, bytes per second; all ones when TCA_*_RATE64 carries it).
fn ratespec(out: &mut Vec<u8>, rate: u64) {
    out.push(0);
    out.push(TC_LINKLAYER_ETHERNET);
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&0i16.to_ne_bytes());
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&(rate.min(u64::from(u32::MAX)) as u32).to_ne_bytes());
}

/// Nanoseconds as scheduler ticks, saturating at the field's 32 bits.
fn ticks(ns: u128) -> u32 {
    (ns >> PSCHED_SHIFT).min(u128::from(u32::MAX)) as u32
}

/// Parts per million as netem's probabilities: 0 none, `u32::MAX` always.
fn probability(ppm: u32) -> u32 {
    (u64::from(ppm.min(1_000_000)) * u64::from(u32::MAX) / 1_000_000) as u32
}

/// One netlink attribute: length (header included, before padding), type, value, padding to 4.
fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut out = Vec::with_capacity((len + 3) & !3);
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize((len + 3) & !3, 0);
    out
}

impl NetnsHandle {
    /// `tc -n SANDBOX qdisc replace dev IFNAME root KIND …`: one request, which either installs
    /// the new qdisc or leaves the old one. A kernel without the kind answers ENOENT, which
    /// becomes [`Error::MissingQdisc`].
    pub async fn replace_root_qdisc(&self, ifname: &str, qdisc: &RootQdisc) -> Result<()> {
        let index = self.link_index(ifname).await?;
        // rtnetlink's request builder cannot carry options it does not model: the message is
        // sent as `tc qdisc replace` sends it (create, or replace the root qdisc in place).
        let mut msg = TcMessage::with_index(index as i32);
        msg.header.parent = TcHandle::ROOT;
        msg.attributes.push(TcAttribute::Kind(qdisc.kind().to_string()));
        msg.attributes.push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, qdisc.options())));
        let mut req = NetlinkMessage::from(RouteNetlinkMessage::NewQueueDiscipline(msg));
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        match self.request_ack(req).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(netlink_errno(&e), Some(libc::ENOENT | libc::EOPNOTSUPP)) => {
                Err(Error::MissingQdisc { kind: qdisc.kind() })
            }
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Err(self.nl().not_found(ifname)),
            Err(e) => Err(self.nl().err(format!("tc qdisc replace dev {ifname} root {}", qdisc.kind()), e)),
        }
    }

    /// Sends one request and waits for its acknowledgement (or error).
    async fn request_ack(&self, req: NetlinkMessage<RouteNetlinkMessage>) -> Result<(), rtnetlink::Error> {
        let mut handle = self.nl().handle.clone();
        let mut replies = handle.request(req)?;
        while let Some(reply) = replies.next().await {
            if let NetlinkPayload::Error(err) = reply.payload
                && err.code.is_some()
            {
                return Err(rtnetlink::Error::NetlinkError(err));
            }
        }
        Ok(())
    }

    /// `tc -n SANDBOX qdisc del dev IFNAME root`: back to the interface's default. Having no
    /// root qdisc of its own is not an error.
    pub async fn delete_root_qdisc(&self, ifname: &str) -> Result<()> {
        let index = self.link_index(ifname).await?;
        let mut req = self.nl().handle.qdisc().del(index as i32);
        req.message_mut().header.parent = TcHandle::ROOT;
        match req.execute().await {
            Ok(()) => Ok(()),
            // The default qdisc (handle 0) cannot be deleted: there is nothing of ours there.
            Err(e) if matches!(netlink_errno(&e), Some(libc::ENOENT | libc::EINVAL)) => Ok(()),
            Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Err(self.nl().not_found(ifname)),
            Err(e) => Err(self.nl().err(format!("tc qdisc del dev {ifname} root"), e)),
        }
    }

    /// The kind of the root qdisc someone put on IFNAME (`tbf`, `netem`…), `None` when it has
    /// only the kernel's default (handle 0: `noqueue`, `pfifo_fast`).
    pub async fn root_qdisc_kind(&self, ifname: &str) -> Result<Option<String>> {
        check_ifname(ifname)?;
        let index = self.link_index(ifname).await? as i32;
        let msgs: Vec<TcMessage> = self
            .nl()
            .handle
            .qdisc()
            .get()
            .index(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| self.nl().err(format!("tc qdisc show dev {ifname}"), e))?;
        // The kernel may answer for every link: the filter by index is ours.
        Ok(msgs
            .iter()
            .filter(|m| {
                m.header.index == index && m.header.parent == TcHandle::ROOT && m.header.handle != TcHandle::UNSPEC
            })
            .find_map(|m| {
                m.attributes.iter().find_map(|a| match a {
                    TcAttribute::Kind(k) => Some(k.clone()),
                    _ => None,
                })
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_ne_bytes(b[at..at + 2].try_into().unwrap())
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn tbf_options_follow_struct_tc_tbf_qopt() {
        // 1mbit = 125000 bytes/s on a 1500-byte link.
        let tbf = Tbf::for_rate(125_000, 1500);
        assert_eq!(tbf.burst, 2 * 1514, "two frames beat 4 ms of 1mbit");
        assert_eq!(tbf.limit, 2 * 1514 + 6250, "burst + 50 ms");
        let b = tbf.options();
        // TCA_TBF_PARMS: 4-byte header + 36-byte struct (two 12-byte ratespecs, limit, buffer, mtu).
        assert_eq!((u16_at(&b, 0), u16_at(&b, 2)), (40, TCA_TBF_PARMS));
        let parms = &b[4..40];
        assert_eq!(parms[0], 0, "cell_log");
        assert_eq!(parms[1], TC_LINKLAYER_ETHERNET, "linklayer: no rate table needed");
        assert_eq!(u32_at(parms, 8), 125_000, "rate.rate");
        assert_eq!(&parms[12..24], &[0; 12], "no peak rate");
        assert_eq!(u32_at(parms, 24), tbf.limit);
        let buffer_ns = 3028u64 * 1_000_000_000 / 125_000;
        assert_eq!(u32_at(parms, 28), (buffer_ns >> 6) as u32, "buffer in ticks");
        assert_eq!(u32_at(parms, 32), 0, "mtu");
        // TCA_TBF_BURST, and no TCA_TBF_RATE64 for a rate that fits 32 bits.
        assert_eq!((u16_at(&b, 40), u16_at(&b, 42), u32_at(&b, 44)), (8, TCA_TBF_BURST, 3028));
        assert_eq!(b.len(), 48);

        // 40gbit does not fit: all ones in the struct, the rate in TCA_TBF_RATE64.
        let fast = Tbf::for_rate(5_000_000_000, 9000);
        assert_eq!(fast.burst, 20_000_000, "4 ms of traffic");
        let b = fast.options();
        assert_eq!(u32_at(&b, 4 + 8), u32::MAX);
        assert_eq!((u16_at(&b, 40), u16_at(&b, 42)), (12, TCA_TBF_RATE64));
        assert_eq!(u64::from_ne_bytes(b[44..52].try_into().unwrap()), 5_000_000_000);
        assert_eq!(u16_at(&b, 54), TCA_TBF_BURST);
    }

    #[test]
    fn netem_options_are_the_struct_then_attributes() {
        let n = Netem { delay_ns: 10_000_000, jitter_ns: 1_000_000, loss_ppm: 500_000, corrupt_ppm: 0, rate: 0 };
        let b = n.options();
        // struct tc_netem_qopt: latency, limit, loss, gap, duplicate, jitter (six u32).
        assert_eq!(u32_at(&b, 0), (10_000_000u64 >> 6) as u32);
        assert_eq!(u32_at(&b, 4), NETEM_LIMIT);
        assert_eq!(u32_at(&b, 8), u32::MAX / 2, "50% loss");
        assert_eq!((u32_at(&b, 12), u32_at(&b, 16)), (0, 0));
        assert_eq!(u32_at(&b, 20), (1_000_000u64 >> 6) as u32);
        // Then TCA_NETEM_LATENCY64 and TCA_NETEM_JITTER64 (s64 nanoseconds).
        assert_eq!((u16_at(&b, 24), u16_at(&b, 26)), (12, TCA_NETEM_LATENCY64));
        assert_eq!(i64::from_ne_bytes(b[28..36].try_into().unwrap()), 10_000_000);
        assert_eq!((u16_at(&b, 36), u16_at(&b, 38)), (12, TCA_NETEM_JITTER64));
        assert_eq!(b.len(), 48);

        let n = Netem { corrupt_ppm: 1_000_000, rate: 125_000, ..Default::default() };
        let b = n.options();
        assert_eq!(u32_at(&b, 0), 0, "no delay");
        assert_eq!((u16_at(&b, 24), u16_at(&b, 26), u32_at(&b, 28)), (12, TCA_NETEM_CORRUPT, u32::MAX));
        assert_eq!((u16_at(&b, 36), u16_at(&b, 38), u32_at(&b, 40)), (20, TCA_NETEM_RATE, 125_000));
        assert_eq!(b.len(), 56);
    }

    #[test]
    fn attributes_are_padded_to_four_bytes() {
        let a = nla(7, &[1, 2, 3]);
        assert_eq!((u16_at(&a, 0), u16_at(&a, 2)), (7, 7), "the length leaves the padding out");
        assert_eq!(&a[4..], &[1, 2, 3, 0]);
        assert_eq!(nla(7, &[1, 2, 3, 4]).len(), 8);
        assert_eq!(probability(0), 0);
        assert_eq!(probability(1_000_000), u32::MAX);
    }
}
