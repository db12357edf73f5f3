//! `syn-probe IFACE SRC_MAC SRC_IP DST_MAC DST_IP DPORT [WAIT_MS]`: sends one hand-made TCP SYN out
//! of IFACE (AF_PACKET: Ethernet SRC_MAC -> DST_MAC, IPv4 SRC_IP -> DST_IP, to DPORT), whatever the routing
//! table would do with DST_IP, and waits up to WAIT_MS (default 2000) for the answer.
//!
//! Exit 0 and `SYN-ACK` when a SYN-ACK comes back, 3 and `RST` for a reset, 1 and `no answer`
//! otherwise; 2 for a usage or system error. The tests run it in a neighbour's namespace to send
//! what no ordinary client can: a frame to the host's MAC with a loopback destination.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use nix::libc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 7 {
        eprintln!("usage: syn-probe IFACE SRC_MAC SRC_IP DST_MAC DST_IP DPORT [WAIT_MS]");
        std::process::exit(2);
    }
    let parsed = (|| -> Result<_, String> {
        let src_mac = parse_mac(&args[2]).ok_or_else(|| format!("SRC_MAC {}", args[2]))?;
        let src: Ipv4Addr = args[3].parse().map_err(|e| format!("SRC_IP {}: {e}", args[3]))?;
        let dst_mac = parse_mac(&args[4]).ok_or_else(|| format!("DST_MAC {}", args[4]))?;
        let dst: Ipv4Addr = args[5].parse().map_err(|e| format!("DST_IP {}: {e}", args[5]))?;
        let dport: u16 = args[6].parse().map_err(|e| format!("DPORT {}: {e}", args[6]))?;
        let wait: u64 =
            args.get(7).map(|w| w.parse()).transpose().map_err(|e| format!("WAIT_MS: {e}"))?.unwrap_or(2000);
        Ok(((src_mac, src), (dst_mac, dst), dport, wait))
    })();
    let (from, to, dport, wait) = parsed.unwrap_or_else(|e| {
        eprintln!("syn-probe: bad argument {e}");
        std::process::exit(2);
    });
    match probe(&args[1], from, to, dport, Duration::from_millis(wait)) {
        Ok(Answer::SynAck) => println!("SYN-ACK"),
        Ok(Answer::Reset) => {
            println!("RST");
            std::process::exit(3)
        }
        Ok(Answer::Nothing) => {
            println!("no answer");
            std::process::exit(1)
        }
        Err(e) => {
            eprintln!("syn-probe: {e}");
            std::process::exit(2)
        }
    }
}

enum Answer {
    SynAck,
    Reset,
    Nothing,
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s.split(':').map(|p| u8::from_str_radix(p, 16)).collect::<Result<_, _>>().ok()?;
    parts.try_into().ok()
}

fn checksum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let bytes: Vec<u8> = chunks.concat();
    for pair in bytes.chunks(2) {
        let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A link-layer and network-layer address.
type Station = ([u8; 6], Ipv4Addr);

fn probe(
    iface: &str,
    (src_mac, src): Station,
    (dst_mac, dst): Station,
    dport: u16,
    wait: Duration,
) -> Result<Answer, String> {
    let ifindex = nix::net::if_::if_nametoindex(iface).map_err(|e| format!("{iface}: {e}"))?;
    let sport: u16 = 40000 + (std::process::id() % 20000) as u16;

    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    tcp[12] = 5 << 4; // data offset: 5 words
    tcp[13] = 0x02; // SYN
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let pseudo = [&src.octets()[..], &dst.octets()[..], &[0, 6], &20u16.to_be_bytes()[..]].concat();
    let sum = checksum(&[&pseudo, &tcp]);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());

    let mut ip = vec![0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&[&ip]);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());

    let frame = [&dst_mac[..], &src_mac[..], &[0x08, 0x00], &ip, &tcp].concat();

    // SAFETY: plain socket calls on a descriptor this function owns and closes.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_IP as u16).to_be() as i32);
        if fd < 0 {
            return Err(format!("socket(AF_PACKET): {}", std::io::Error::last_os_error()));
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_IP as u16).to_be();
        addr.sll_ifindex = ifindex as i32;
        let addr_ptr = &addr as *const libc::sockaddr_ll as *const libc::sockaddr;
        let addr_len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        if libc::bind(fd, addr_ptr, addr_len) < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(format!("bind to {iface}: {e}"));
        }
        let timeout = libc::timeval { tv_sec: 0, tv_usec: 100_000 };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &timeout as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        if libc::sendto(fd, frame.as_ptr() as *const libc::c_void, frame.len(), 0, addr_ptr, addr_len) < 0 {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            return Err(format!("send on {iface}: {e}"));
        }
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 2048];
        let mut answer = Answer::Nothing;
        while Instant::now() < deadline {
            let n = libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
            if n < 34 + 20 {
                continue;
            }
            let f = &buf[..n as usize];
            let ihl = usize::from(f[14] & 0x0f) * 4;
            let t = 14 + ihl;
            if f[12..14] != [0x08, 0x00] || f[23] != 6 || f.len() < t + 14 {
                continue;
            }
            let (from_port, to_port) = (u16::from_be_bytes([f[t], f[t + 1]]), u16::from_be_bytes([f[t + 2], f[t + 3]]));
            if from_port != dport || to_port != sport {
                continue;
            }
            let flags = f[t + 13];
            if flags & 0x12 == 0x12 {
                answer = Answer::SynAck;
                break;
            }
            if flags & 0x04 != 0 {
                answer = Answer::Reset;
                break;
            }
        }
        libc::close(fd);
        Ok(answer)
    }
}
