//! A tiny upstream DNS server for the embedded-DNS tests ("the internet's" resolver), on UDP and
//! TCP at the address given as the only argument (e.g. `198.51.100.2:53`):
//!
//! - `www.upstream.test` A 192.0.2.80
//! - `big.upstream.test` TXT of about 3000 bytes, sent whole even over UDP (so the resolver in
//!   between must truncate it for a UDP client)
//! - anything else NXDOMAIN

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{RData, Record};

pub const WWW_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);

fn answer(raw: &[u8]) -> Option<Vec<u8>> {
    let req = Message::from_vec(raw).ok()?;
    let mut resp = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.recursion_available = true;
    let q = req.queries.first()?.clone();
    resp.add_query(q.clone());
    match q.name().to_ascii().to_ascii_lowercase().as_str() {
        "www.upstream.test." => {
            resp.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A(WWW_ADDR))));
        }
        "big.upstream.test." => {
            let txt = TXT::new((0..12).map(|i| format!("{i:02}{}", "x".repeat(240))).collect());
            resp.add_answer(Record::from_rdata(q.name().clone(), 60, RData::TXT(txt)));
        }
        _ => resp.metadata.response_code = ResponseCode::NXDomain,
    }
    resp.to_vec().ok()
}

fn main() {
    let addr = std::env::args().nth(1).expect("usage: fake-dns ADDR:PORT");
    let udp = UdpSocket::bind(&addr).unwrap_or_else(|e| panic!("bind udp {addr}: {e}"));
    let tcp = TcpListener::bind(&addr).unwrap_or_else(|e| panic!("bind tcp {addr}: {e}"));
    std::thread::spawn(move || {
        for stream in tcp.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                loop {
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).is_err() {
                        return;
                    }
                    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut msg).is_err() {
                        return;
                    }
                    let Some(resp) = answer(&msg) else { return };
                    let mut framed = (resp.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&resp);
                    if s.write_all(&framed).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, src)) = udp.recv_from(&mut buf) else { continue };
        if let Some(resp) = answer(&buf[..n]) {
            let _ = udp.send_to(&resp, src);
        }
    }
}
