//! Capture rate: small UDP packets (18-byte payloads, 60-byte frames) sent across a p2p link (one
//! veth pair) from container `tx` to container `rx` with sendmmsg, at a paced rate and unpaced,
//! while `cnet capture rx:eth0 -f 'udp port 9' -w FILE` writes them; reports what was sent, what
//! reached rx's interface, what the capture's filter saw, captured and dropped, and the rates.
//! The goal (issue 15): 100k packets/s with under 1 % dropped.
//!
//! Runs a release build inside its own namespaces with the test kit (nothing touches the host):
//!     cargo build --release --bins -p cnetd -p cnet
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin capture-rate [-- PACKETS [PPS…]]
//! (PPS 0: as fast as the sender goes; default 1000000 packets at 100000, 200000 and 0 pps.)

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cnet_tests::TestHost;
use nix::libc;
use serde_json::Value;

/// Datagrams per sendmmsg call.
const BATCH: usize = 64;
const PAYLOAD: &[u8] = b"cnet capture bench";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let packets: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1_000_000);
    let rates: Vec<u64> = args.map(|s| s.parse()).collect::<Result<_, _>>()?;
    let rates = if rates.is_empty() { vec![100_000, 200_000, 0] } else { rates };

    let host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "-d", "p2p", "--subnet", "10.99.0.0/31", "link"]);
    for name in ["rx", "tx"] {
        host.cnet_ok(&["run", "-d", "--name", name, "--network", "link", "busybox", "sleep", "100000"]);
    }
    let rx_ip: Ipv4Addr = host.ip_of("rx").parse()?;
    let tx_pid = host.inspect("tx")["State"]["Pid"].as_u64().context("tx has no pid")?;

    println!(
        "| target pps | sent | sender pps | on rx's eth0 | received by filter | captured | dropped | dropped % | captured pps | file |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (i, rate) in rates.iter().enumerate() {
        let file = host.dir().join(format!("bench-{i}.pcap"));
        let before = rx_packets(&host)?;
        let mut capture =
            host.cnet_command(600, &["capture", "rx:eth0", "-f", "udp port 9", "-w", file.to_str().unwrap()]);
        capture.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = capture.spawn()?;
        let mut stderr = BufReader::new(child.stderr.take().context("piped stderr")?);
        let mut log = String::new();
        while !log.contains("listening on ") {
            if stderr.read_line(&mut log)? == 0 {
                bail!("cnet capture ended before listening:\n{log}");
            }
        }
        let (sent, took) = send(tx_pid, rx_ip, packets, *rate)?;
        // The last block is handed over at most 50 ms after its first packet.
        std::thread::sleep(Duration::from_millis(500));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)?;
        stderr.read_to_string(&mut log)?;
        let status = child.wait()?;
        if !status.success() {
            bail!("cnet capture failed ({status}):\n{log}");
        }
        let on_wire = rx_packets(&host)? - before;
        let count = |what: &str| -> u64 {
            log.lines().find_map(|l| l.strip_suffix(what).and_then(|n| n.trim().parse().ok())).unwrap_or(0)
        };
        let (captured, received, dropped) =
            (count("packets captured"), count("packets received by filter"), count("packets dropped by kernel"));
        let in_file = records_in(&std::fs::read(&file)?);
        let secs = took.as_secs_f64();
        println!(
            "| {} | {sent} | {:.0} | {on_wire} | {received} | {captured} | {dropped} | {:.3} | {:.0} | {} records |",
            if *rate == 0 { "unpaced".to_string() } else { rate.to_string() },
            sent as f64 / secs,
            100.0 * dropped as f64 / received.max(1) as f64,
            captured as f64 / secs,
            in_file
        );
        std::fs::remove_file(&file)?;
    }
    Ok(())
}

/// Sends `packets` datagrams to `to`:9 from the network namespace of process `pid`, at `rate`
/// packets/s (0: unpaced), on a thread that joins that namespace. Returns how many the kernel took
/// and how long it took.
fn send(pid: u64, to: Ipv4Addr, packets: u64, rate: u64) -> anyhow::Result<(u64, Duration)> {
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || -> anyhow::Result<(u64, Duration)> {
        nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)?;
        // Unconnected, so the port-unreachable replies of rx come back as no send error.
        let socket = UdpSocket::bind("0.0.0.0:0")?;
        let dest = socket2::SockAddr::from(SocketAddrV4::new(to, 9));
        let mut iov = libc::iovec { iov_base: PAYLOAD.as_ptr().cast_mut().cast(), iov_len: PAYLOAD.len() };
        let mut msgs: Vec<libc::mmsghdr> = (0..BATCH)
            .map(|_| {
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_name = dest.as_ptr().cast_mut().cast();
                m.msg_hdr.msg_namelen = dest.len();
                m.msg_hdr.msg_iov = &raw mut iov;
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < packets {
            if rate > 0 {
                let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let n = (packets - sent).min(BATCH as u64) as u32;
            let r = unsafe { libc::sendmmsg(socket.as_raw_fd(), msgs.as_mut_ptr(), n, 0) };
            if r < 0 {
                let err = std::io::Error::last_os_error();
                // A full queue of the veth: try again, as a sender in a container would.
                if matches!(err.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::EAGAIN)) {
                    continue;
                }
                return Err(err.into());
            }
            sent += r as u64;
        }
        Ok((sent, start.elapsed()))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the sender thread panicked"))?
}

/// Packets received by rx's eth0 so far (its kernel counter).
fn rx_packets(host: &TestHost) -> anyhow::Result<u64> {
    let netns = host.inspect("rx")["NetworkSettings"]["SandboxKey"].as_str().context("no SandboxKey")?.to_string();
    let out = host.run_in_ok(&netns, "ip -j -s link show dev eth0");
    let json: Value = serde_json::from_str(&out)?;
    json[0]["stats64"]["rx"]["packets"].as_u64().with_context(|| format!("no rx packets in {out}"))
}

/// The number of records of a pcap file.
fn records_in(bytes: &[u8]) -> u64 {
    let (mut at, mut n) = (24, 0);
    while at + 16 <= bytes.len() {
        let caplen = u32::from_ne_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
        n += 1;
    }
    n
}
