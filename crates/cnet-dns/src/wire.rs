//! Just enough of the DNS wire format (RFC 1035, EDNS0 of RFC 6891) for the hot path: parse the one
//! question of a query without allocating, and write answers straight into a reused buffer.
//! Everything the resolver does not answer itself is relayed to an upstream as raw bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const HEADER_LEN: usize = 12;
pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_OPT: u16 = 41;
pub const TYPE_ANY: u16 = 255;
pub const CLASS_IN: u16 = 1;
pub const CLASS_ANY: u16 = 255;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;

/// The payload size the resolver itself advertises (RFC 9715's safe default).
pub const OUR_UDP_SIZE: u16 = 1232;
/// Without EDNS a UDP answer may have 512 bytes (RFC 1035 4.2.1).
pub const CLASSIC_UDP_SIZE: usize = 512;
/// TTL of the container records: Docker's 600 s.
pub const LOCAL_TTL: u32 = 600;

const MAX_NAME: usize = 255;

/// The parts of a query the resolver looks at. `name` is the question's name in presentation form,
/// ASCII-lowercased, without the final dot (the root is empty).
pub struct Query {
    pub id: u16,
    pub opcode: u8,
    pub rd: bool,
    pub qtype: u16,
    pub qclass: u16,
    /// End of the question section in the raw message (it starts at [`HEADER_LEN`]).
    pub question_end: usize,
    /// The requester's EDNS UDP payload size, if it sent an OPT record.
    pub edns: Option<u16>,
    name: [u8; MAX_NAME],
    name_len: u8,
    /// A label held a byte that cannot be told apart from a separator ('.'): never a local name.
    odd_label: bool,
}

/// Why a message could not be read as a query.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than a header, or a response: dropped without an answer.
    Ignore,
    /// A header we can answer (with FORMERR or NOTIMP) but no usable question.
    Answer(u8),
}

impl Query {
    pub fn name(&self) -> &[u8] {
        &self.name[..self.name_len as usize]
    }

    /// The lowercased name, if it can be a container name.
    pub fn local_name(&self) -> Option<&[u8]> {
        (!self.odd_label && self.name_len > 0).then(|| self.name())
    }

    /// The largest answer the requester takes over UDP.
    pub fn udp_limit(&self) -> usize {
        self.edns.map_or(CLASSIC_UDP_SIZE, |s| usize::from(s).max(CLASSIC_UDP_SIZE))
    }

    pub fn parse(msg: &[u8]) -> Result<Query, ParseError> {
        if msg.len() < HEADER_LEN || msg[2] & 0x80 != 0 {
            return Err(ParseError::Ignore);
        }
        let opcode = (msg[2] >> 3) & 0x0f;
        if opcode != 0 {
            return Err(ParseError::Answer(RCODE_NOTIMP));
        }
        let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
        if count(4) != 1 {
            return Err(ParseError::Answer(RCODE_FORMERR));
        }
        let mut q = Query {
            id: count(0),
            opcode,
            rd: msg[2] & 0x01 != 0,
            qtype: 0,
            qclass: 0,
            question_end: 0,
            edns: None,
            name: [0; MAX_NAME],
            name_len: 0,
            odd_label: false,
        };
        // The question's name: plain labels (a compression pointer has nothing to point back to).
        let mut pos = HEADER_LEN;
        let mut len = 0usize;
        loop {
            let l = *msg.get(pos).ok_or(ParseError::Answer(RCODE_FORMERR))? as usize;
            pos += 1;
            if l == 0 {
                break;
            }
            if l > 63 {
                return Err(ParseError::Answer(RCODE_FORMERR));
            }
            let label = msg.get(pos..pos + l).ok_or(ParseError::Answer(RCODE_FORMERR))?;
            let need = l + usize::from(len > 0);
            if len + need > MAX_NAME {
                return Err(ParseError::Answer(RCODE_FORMERR));
            }
            if len > 0 {
                q.name[len] = b'.';
                len += 1;
            }
            for &b in label {
                if b == b'.' || b == b'\\' {
                    q.odd_label = true;
                }
                q.name[len] = b.to_ascii_lowercase();
                len += 1;
            }
            pos += l;
        }
        q.name_len = len as u8;
        let tail = msg.get(pos..pos + 4).ok_or(ParseError::Answer(RCODE_FORMERR))?;
        q.qtype = u16::from_be_bytes([tail[0], tail[1]]);
        q.qclass = u16::from_be_bytes([tail[2], tail[3]]);
        pos += 4;
        q.question_end = pos;
        // EDNS: the OPT record sits among the additional records; anything unreadable there
        // just means "no EDNS".
        let skip = usize::from(count(6)) + usize::from(count(8));
        q.edns = find_opt(msg, pos, skip, usize::from(count(10)));
        Ok(q)
    }
}

/// Skips a possibly compressed name; the position after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let l = *msg.get(pos)?;
        match l & 0xc0 {
            0xc0 => return Some(pos + 2),
            0x00 if l == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(l),
            _ => return None,
        }
    }
}

fn find_opt(msg: &[u8], mut pos: usize, skip: usize, additional: usize) -> Option<u16> {
    for i in 0..skip + additional {
        pos = skip_name(msg, pos)?;
        let fixed = msg.get(pos..pos + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        if i >= skip && rtype == TYPE_OPT {
            return Some(class);
        }
        pos += 10 + rdlen;
    }
    None
}

/// The address a reverse-lookup name (`4.3.2.1.in-addr.arpa`, 32 nibbles of `ip6.arpa`) stands for.
pub fn reverse_addr(name: &[u8]) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(b".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let mut n = 0;
        for part in rest.rsplit(|&b| b == b'.') {
            if n == 4 || part.is_empty() || part.len() > 3 || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            if part.len() > 1 && part[0] == b'0' {
                return None;
            }
            let v: u16 = part.iter().fold(0, |acc, d| acc * 10 + u16::from(d - b'0'));
            octets[n] = u8::try_from(v).ok()?;
            n += 1;
        }
        return (n == 4).then(|| IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if let Some(rest) = name.strip_suffix(b".ip6.arpa") {
        if rest.len() != 63 {
            return None;
        }
        let mut bits: u128 = 0;
        for (i, part) in rest.rsplit(|&b| b == b'.').enumerate() {
            if i >= 32 || part.len() != 1 {
                return None;
            }
            let d = (part[0] as char).to_digit(16)?;
            bits = (bits << 4) | u128::from(d);
        }
        return Some(IpAddr::V6(Ipv6Addr::from(bits)));
    }
    None
}

/// `web.net1` as a wire-format name (length-prefixed labels, a final zero); None if a label is
/// empty or longer than 63 bytes.
pub fn to_wire_name(name: &str) -> Option<Box<[u8]>> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut out = Vec::with_capacity(name.len() + 2);
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return None;
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    (out.len() <= MAX_NAME + 1).then(|| out.into_boxed_slice())
}

/// Writes a response into a reused buffer: header and the query's question copied from the raw
/// request, then answers (owner name a pointer to the question), then OPT if the query had one.
pub struct Response<'a> {
    buf: &'a mut Vec<u8>,
    answers: u16,
    question_end: usize,
    edns: bool,
}

impl<'a> Response<'a> {
    /// `raw` is the request the query was parsed from.
    pub fn new(buf: &'a mut Vec<u8>, raw: &[u8], q: &Query, rcode: u8, authoritative: bool) -> Response<'a> {
        buf.clear();
        buf.extend_from_slice(&q.id.to_be_bytes());
        let mut flags1 = 0x80 | (q.opcode << 3) | u8::from(q.rd);
        if authoritative {
            flags1 |= 0x04;
        }
        buf.push(flags1);
        buf.push(0x80 | (rcode & 0x0f));
        buf.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        buf.extend_from_slice(&raw[HEADER_LEN..q.question_end]);
        Response { buf, answers: 0, question_end: q.question_end, edns: q.edns.is_some() }
    }

    fn record(&mut self, rtype: u16, rdata: &[u8]) {
        self.buf.extend_from_slice(&[0xc0, HEADER_LEN as u8]);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.buf.extend_from_slice(&LOCAL_TTL.to_be_bytes());
        self.buf.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(rdata);
        self.answers += 1;
    }

    pub fn a(&mut self, ip: Ipv4Addr) {
        self.record(TYPE_A, &ip.octets());
    }

    pub fn aaaa(&mut self, ip: Ipv6Addr) {
        self.record(TYPE_AAAA, &ip.octets());
    }

    pub fn ptr(&mut self, wire_name: &[u8]) {
        self.record(TYPE_PTR, wire_name);
    }

    /// Sets the counts and OPT; an answer longer than `limit` loses its records and gets TC, so
    /// the requester asks again over TCP.
    pub fn finish(self, limit: usize) {
        const OPT_LEN: usize = 11;
        let opt = if self.edns { OPT_LEN } else { 0 };
        let mut answers = self.answers;
        if self.buf.len() + opt > limit {
            self.buf.truncate(self.question_end);
            self.buf[2] |= 0x02;
            answers = 0;
        }
        self.buf[6..8].copy_from_slice(&answers.to_be_bytes());
        if self.edns {
            // Root name, type OPT, class = our payload size, extended rcode/version/flags 0, no data.
            self.buf.push(0);
            self.buf.extend_from_slice(&TYPE_OPT.to_be_bytes());
            self.buf.extend_from_slice(&OUR_UDP_SIZE.to_be_bytes());
            self.buf.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
            self.buf[10..12].copy_from_slice(&1u16.to_be_bytes());
        }
    }
}

/// A bare error answer to a message whose header (but maybe not question) could be read.
pub fn error_reply(buf: &mut Vec<u8>, raw: &[u8], rcode: u8) {
    buf.clear();
    buf.extend_from_slice(&raw[..2]);
    buf.push(0x80 | (raw[2] & 0x79)); // QR, opcode and RD kept
    buf.push(0x80 | rcode);
    buf.extend_from_slice(&[0; 8]);
}

/// True when the upstream's `resp` answers `query` (same id, a response, the same question).
pub fn answers_query(query: &[u8], question_end: usize, resp: &[u8]) -> bool {
    resp.len() >= question_end
        && resp[..2] == query[..2]
        && resp[2] & 0x80 != 0
        && resp[4..6] == query[4..6]
        && resp[HEADER_LEN..question_end].eq_ignore_ascii_case(&query[HEADER_LEN..question_end])
}

pub fn rcode(msg: &[u8]) -> u8 {
    msg.get(3).map_or(RCODE_SERVFAIL, |b| b & 0x0f)
}

/// An upstream's answer cut down to what fits a UDP requester: header (with TC set) and question.
pub fn truncate_reply(resp: &mut Vec<u8>, question_end: usize) {
    resp.truncate(question_end);
    resp[2] |= 0x02;
    resp[6..12].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery, ResponseCode};
    use hickory_proto::rr::{Name, RData, RecordType};

    fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn parses_a_query_lowercased() {
        let raw = query("WeB.Net1.", RecordType::AAAA, Some(4096));
        let q = Query::parse(&raw).unwrap();
        assert_eq!(q.id, 4242);
        assert_eq!(q.local_name(), Some(&b"web.net1"[..]));
        assert_eq!(q.qtype, TYPE_AAAA);
        assert_eq!(q.qclass, CLASS_IN);
        assert_eq!(q.edns, Some(4096));
        assert_eq!(q.udp_limit(), 4096);
        let q = Query::parse(&query("web.", RecordType::A, None)).unwrap();
        assert_eq!(q.edns, None);
        assert_eq!(q.udp_limit(), 512);
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Query::parse(&[1, 2, 3]).err(), Some(ParseError::Ignore));
        let mut raw = query("web.", RecordType::A, None);
        raw.truncate(raw.len() - 3);
        assert_eq!(Query::parse(&raw).err(), Some(ParseError::Answer(RCODE_FORMERR)));
        let mut raw = query("web.", RecordType::A, None);
        raw[2] |= 0x80; // a response
        assert_eq!(Query::parse(&raw).err(), Some(ParseError::Ignore));
        let mut raw = query("web.", RecordType::A, None);
        raw[2] |= 2 << 3; // STATUS
        assert_eq!(Query::parse(&raw).err(), Some(ParseError::Answer(RCODE_NOTIMP)));
    }

    #[test]
    fn writes_answers_hickory_can_read() {
        let raw = query("web.", RecordType::A, Some(1232));
        let q = Query::parse(&raw).unwrap();
        let mut buf = Vec::new();
        let mut r = Response::new(&mut buf, &raw, &q, RCODE_NOERROR, true);
        r.a(Ipv4Addr::new(172, 18, 0, 2));
        r.a(Ipv4Addr::new(172, 18, 0, 3));
        r.ptr(&to_wire_name("web.net1").unwrap());
        r.finish(q.udp_limit());
        let m = Message::from_vec(&buf).unwrap();
        assert_eq!(m.metadata.id, 4242);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.authoritative && m.metadata.recursion_desired && m.metadata.recursion_available);
        assert_eq!(m.answers.len(), 3);
        assert_eq!(m.answers[0].data, RData::A(Ipv4Addr::new(172, 18, 0, 2).into()));
        assert_eq!(m.answers[0].ttl, LOCAL_TTL);
        match &m.answers[2].data {
            RData::PTR(p) => assert_eq!(p.0.to_ascii(), "web.net1."),
            other => panic!("{other:?}"),
        }
        assert_eq!(m.edns.as_ref().map(|e| e.max_payload()), Some(OUR_UDP_SIZE));
    }

    #[test]
    fn truncates_what_does_not_fit() {
        let raw = query("many.", RecordType::A, None);
        let q = Query::parse(&raw).unwrap();
        let mut buf = Vec::new();
        let mut r = Response::new(&mut buf, &raw, &q, RCODE_NOERROR, true);
        for i in 0..40 {
            r.a(Ipv4Addr::new(10, 0, 0, i));
        }
        r.finish(q.udp_limit());
        let m = Message::from_vec(&buf).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
        assert!(buf.len() <= 512);
        // Over TCP it all fits.
        let mut r = Response::new(&mut buf, &raw, &q, RCODE_NOERROR, true);
        for i in 0..40 {
            r.a(Ipv4Addr::new(10, 0, 0, i));
        }
        r.finish(u16::MAX as usize);
        let m = Message::from_vec(&buf).unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 40);
    }

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_addr(b"2.0.18.172.in-addr.arpa"), Some("172.18.0.2".parse().unwrap()));
        assert_eq!(reverse_addr(b"2.0.18.in-addr.arpa"), None);
        assert_eq!(reverse_addr(b"256.0.18.172.in-addr.arpa"), None);
        assert_eq!(reverse_addr(b"02.0.18.172.in-addr.arpa"), None);
        let v6: Ipv6Addr = "fd00:1::2".parse().unwrap();
        let name = Name::from(v6).to_ascii().to_ascii_lowercase();
        let name = name.trim_end_matches('.');
        assert_eq!(reverse_addr(name.as_bytes()), Some(IpAddr::V6(v6)));
        assert_eq!(reverse_addr(b"example.com"), None);
    }

    #[test]
    fn error_replies_and_upstream_checks() {
        let raw = query("x.example.", RecordType::A, None);
        let q = Query::parse(&raw).unwrap();
        let mut buf = Vec::new();
        error_reply(&mut buf, &raw, RCODE_FORMERR);
        let m = Message::from_vec(&buf).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        let mut resp = Vec::new();
        Response::new(&mut resp, &raw, &q, RCODE_NOERROR, false).finish(512);
        assert!(answers_query(&raw, q.question_end, &resp));
        resp[13] ^= 0x20; // 0x20-style case change is fine
        assert!(answers_query(&raw, q.question_end, &resp));
        resp[0] ^= 1;
        assert!(!answers_query(&raw, q.question_end, &resp));
        truncate_reply(&mut resp, q.question_end);
        assert!(Message::from_vec(&resp).unwrap().metadata.truncation);
    }
}
