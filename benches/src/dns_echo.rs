//! The machine's floor for DNS latency: the least a UDP responder can do. Binds ADDR:53 (in the
//! network namespace it is started in), and answers every datagram with itself, flagged as a
//! response with no error, from one blocking loop. `benches/dns-tail.sh` puts dnsperf's figures
//! against it beside those against cnetd's resolver, so that a tail the machine gives every
//! server is not taken for the resolver's.
//!
//!     dns-echo 127.0.0.12

use std::net::{IpAddr, SocketAddr, UdpSocket};

fn main() -> std::io::Result<()> {
    let ip: IpAddr = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| std::io::Error::other("usage: dns-echo ADDR"))?;
    let socket = UdpSocket::bind(SocketAddr::new(ip, 53))?;
    let mut buf = [0u8; 4096];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        if n < 12 {
            continue;
        }
        buf[2] |= 0x80; // QR: a response
        buf[3] = 0x80; // RA, RCODE 0
        socket.send_to(&buf[..n], from)?;
    }
}
