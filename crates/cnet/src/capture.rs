//! `cnet capture NODE:IFACE`: packets of one interface inside a container, as pcap on stdout or in
//! a file, so `cnet capture r1:eth1 | tcpdump -r -` and `wireshark -k -i -` work.
//!
//! The capture runs in this process (root), on a thread of its own that joins the container's
//! network namespace (`setns` changes only the calling thread's), with an AF_PACKET socket bound
//! to the interface and a TPACKET_V3 ring (`ring.rs`). The filter is compiled by libpcap before
//! anything else is done and attached to the socket, so filtering happens in the kernel. Each block
//! of packets the kernel hands over is written and flushed at once, so a reader sees packets live.

mod filter;
mod pcap_file;
mod ring;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, bail};
use clap::Args;
use nix::sched::CloneFlags;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

pub use filter::Filter;
pub use pcap_file::{LINKTYPE_ETHERNET, PcapWriter};
pub use ring::{KernelStats, RingShape, RxRing};

use crate::context::Ctx;

/// tcpdump's default snap length (its `-s 0`).
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// How long a block the kernel has started may wait before it is handed over: the latency of a
/// packet on a quiet link.
const RETIRE_MS: u32 = 50;
/// How often the capture looks at its stop flag when no packet comes.
const POLL_MS: i32 = 200;

/// Flags of `cnet capture`, tcpdump's where tcpdump has one.
#[derive(Debug, Clone, Args)]
pub struct CaptureArgs {
    /// The container (name or id, or a lab's node name) and its interface, e.g. r1:eth1
    #[arg(value_name = "NODE:IFACE")]
    pub target: Target,
    /// NODE is a node of this lab (needed only when several labs have a node of that name)
    #[arg(long, value_name = "LAB")]
    pub lab: Option<String>,
    /// Write the packets to FILE instead of stdout ("-" is stdout)
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Keep only the packets matching a filter in tcpdump's syntax, e.g. 'udp port 53'
    #[arg(short = 'f', long = "filter", value_name = "BPF-FILTER")]
    pub filter: Option<String>,
    /// Stop after N packets
    #[arg(short = 'c', value_name = "N")]
    pub count: Option<u64>,
    /// Bytes kept of each packet (0: 262144)
    #[arg(short = 's', long = "snapshot-length", value_name = "SNAPLEN", default_value_t = DEFAULT_SNAPLEN)]
    pub snaplen: u32,
    /// Size of the kernel's ring buffer, in KiB
    #[arg(short = 'B', long = "buffer-size", value_name = "KiB", default_value_t = 16 * 1024)]
    pub buffer_kib: u32,
}

/// `NODE:IFACE`, parsed where it enters. Interface names cannot hold a `:` (the kernel refuses
/// them), nor can container names, so the first `:` splits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub node: String,
    pub iface: String,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        match s.split_once(':') {
            Some((node, iface))
                if !node.is_empty() && !iface.is_empty() && iface.len() < 16 && !iface.contains([':', '/']) =>
            {
                Ok(Target { node: node.to_string(), iface: iface.to_string() })
            }
            _ => Err(format!("expected NODE:IFACE (a container and one of its interfaces, e.g. r1:eth1), got {s:?}")),
        }
    }
}

/// What a capture did, for the closing lines on stderr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Packets written.
    pub captured: u64,
    pub kernel: KernelStats,
}

pub fn capture(ctx: &Ctx, args: &CaptureArgs) -> anyhow::Result<ExitCode> {
    let snaplen = if args.snaplen == 0 { DEFAULT_SNAPLEN } else { args.snaplen };
    // Validation before action: a bad filter or node changes nothing, not even the output file.
    let filter = match &args.filter {
        Some(expr) => Filter::compile(expr, pcap::Linktype::ETHERNET, snaplen)?,
        None => Filter::all(snaplen),
    };
    let to_stdout = args.write.as_deref().is_none_or(|p| p == Path::new("-"));
    if to_stdout && io::stdout().is_terminal() {
        bail!("refusing to write binary pcap to a terminal: pipe it (`| tcpdump -r -`) or use -w FILE");
    }
    let Target { node, iface } = &args.target;
    let container = crate::lab::find_node(ctx, node, args.lab.as_deref())?;
    let netns_path = &container.config.netns_path;
    let netns = File::open(netns_path)
        .with_context(|| format!("opening the network namespace of {node} ({netns_path}): is it running?"))?;

    let stop = install_stop_handlers()?;
    let shape = RingShape::with_kib(args.buffer_kib, RETIRE_MS);
    let (count, write) = (args.count, args.write.clone().filter(|_| !to_stdout));
    let (node, iface) = (node.clone(), iface.clone());
    let thread = std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || -> anyhow::Result<Counts> {
            nix::sched::setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("entering the network namespace of {node}"))?;
            let ring = RxRing::open(&iface, &filter, shape).with_context(|| format!("capturing on {node}:{iface}"))?;
            // Opened only now, so a bad interface leaves no empty file behind.
            let out: Box<dyn Write> = match &write {
                Some(path) => Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?),
                None => Box::new(File::from(io::stdout().as_fd().try_clone_to_owned().context("duplicating stdout")?)),
            };
            let out = PcapWriter::new(BufWriter::with_capacity(1 << 20, out), snaplen, LINKTYPE_ETHERNET)
                .context("writing the pcap header")?;
            eprintln!("listening on {iface} of {node}, link-type EN10MB (Ethernet), snapshot length {snaplen} bytes");
            run(ring, out, count, stop)
        })
        .context("starting the capture thread")?;
    let counts = match thread.join() {
        Ok(result) => result?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    eprintln!("{} packets captured", counts.captured);
    eprintln!("{} packets received by filter", counts.kernel.received);
    eprintln!("{} packets dropped by kernel", counts.kernel.dropped);
    Ok(ExitCode::SUCCESS)
}

/// The loop: a block at a time, written and flushed, until `count` packets, a stop signal or a
/// closed pipe (all clean ends). The interface going down or away is an error, as in tcpdump.
fn run<W: Write>(
    mut ring: RxRing,
    mut out: PcapWriter<W>,
    count: Option<u64>,
    stop: &AtomicBool,
) -> anyhow::Result<Counts> {
    let mut captured = 0u64;
    // The header goes out before any packet: a pipe's reader learns the format at once.
    let mut done = match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => true,
        other => other.map(|()| false).context("writing the capture")?,
    };
    while !done && !stop.load(Ordering::Relaxed) {
        let walked = ring
            .next_block(POLL_MS, |p| {
                if count.is_some_and(|n| captured >= n) {
                    return Ok(());
                }
                write_packet(&mut out, p)?;
                captured += 1;
                Ok::<(), io::Error>(())
            })
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ENETDOWN) {
                    anyhow::anyhow!("the interface went down or away")
                } else {
                    anyhow::Error::new(e).context("reading the capture ring")
                }
            })?;
        let written = walked.and_then(|n| if n > 0 { out.flush() } else { Ok(()) });
        match written {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => done = true,
            Err(e) => return Err(anyhow::Error::new(e).context("writing the capture")),
            Ok(()) => done = count.is_some_and(|n| captured >= n),
        }
    }
    let kernel = ring.stats().context("reading the kernel's capture counters")?;
    Ok(Counts { captured, kernel })
}

/// One packet, with the VLAN tag the kernel took out put back after the two MAC addresses (as
/// libpcap does), so a tagged frame reads as it was on the wire.
fn write_packet<W: Write>(out: &mut PcapWriter<W>, p: &ring::Packet<'_>) -> io::Result<()> {
    match p.vlan {
        Some((tpid, tci)) if p.data.len() >= 12 => {
            let mut tag = [0u8; 4];
            tag[..2].copy_from_slice(&tpid.to_be_bytes());
            tag[2..].copy_from_slice(&tci.to_be_bytes());
            out.packet(p.sec, p.nsec, p.len + 4, &[&p.data[..12], &tag, &p.data[12..]])
        }
        _ => out.packet(p.sec, p.nsec, p.len, &[p.data]),
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// SIGINT and SIGTERM end the capture cleanly (the counts are still printed); the flag is seen
/// within one poll interval by the capture thread, whichever thread took the signal.
fn install_stop_handlers() -> anyhow::Result<&'static AtomicBool> {
    let action = SigAction::new(SigHandler::Handler(on_stop_signal), SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // Only an atomic store happens in the handler, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }.with_context(|| format!("handling {sig}"))?;
    }
    Ok(&STOP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_node_colon_iface() {
        assert_eq!("r1:eth1".parse(), Ok(Target { node: "r1".into(), iface: "eth1".into() }));
        for bad in ["r1", "r1:", ":eth1", "r1:eth1:0", "r1:a/b", "r1:abcdefghijklmnop"] {
            let err = bad.parse::<Target>().unwrap_err();
            assert!(err.contains("NODE:IFACE"), "{bad}: {err}");
        }
    }
}
