//! The listeners: one UDP socket and one TCP listener per sandbox, bound to 127.0.0.11:53 inside the
//! sandbox's namespace by the caller and served here on the daemon's runtime. Each listener knows
//! its sandbox, which is what scopes the answers (every sandbox's queries come from 127.0.0.x, so
//! the source address could not tell them apart).
//!
//! Local names are answered inline on the socket's task (parse, one read-locked lookup, write into a
//! reused buffer, send). Everything else is relayed, as raw bytes with a fresh random id, to the
//! upstream resolvers from the daemon's own namespace (UDP queries over UDP, TCP over TCP), on a
//! task of its own with a time budget: an upstream that does not answer gives SERVFAIL, never a hang.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{AbortHandle, JoinSet};
use tracing::{debug, trace, warn};

use crate::table::{EndpointRecord, Found, Table};
use crate::wire::{self, ParseError, Query, Response};

/// Time allowed for an upstream answer, all upstreams together (clients wait 5 s per try).
pub const FORWARD_BUDGET: Duration = Duration::from_secs(2);
/// The least time one upstream gets when several share the budget.
const MIN_TRY: Duration = Duration::from_millis(700);
/// Forwarded queries in flight per sandbox over UDP; beyond that, SERVFAIL at once.
const MAX_INFLIGHT: usize = 256;
/// Open TCP connections per sandbox.
const MAX_TCP_CONNECTIONS: usize = 64;
/// A TCP client that sends nothing for this long is dropped.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Largest query read over UDP (queries are small; anything longer is cut and answered FORMERR).
const UDP_QUERY_BUF: usize = 4096;

/// The embedded DNS server: the record table, the upstreams and every sandbox's listener.
/// Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

struct Inner {
    table: RwLock<Table>,
    upstreams: RwLock<Arc<[SocketAddr]>>,
    listeners: Mutex<HashMap<String, Listener>>,
    /// Where the listeners run; `None`: the runtime of whoever calls `serve_sandbox`.
    runtime: Option<tokio::runtime::Handle>,
}

/// A sandbox's serving tasks; dropping it stops them (and closes the sockets).
struct Listener {
    tasks: Vec<AbortHandle>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What one listener needs to answer: its sandbox and where to forward.
struct Scope {
    sandbox: Box<str>,
    /// The sandbox's own `--dns` servers, else the resolver's.
    upstreams: Option<Arc<[SocketAddr]>>,
    inner: Arc<Inner>,
}

enum Outcome {
    Reply,
    Forward { question_end: usize, limit: usize },
    Drop,
}

impl Resolver {
    /// A resolver forwarding to `upstreams` (port 53 unless given).
    pub fn new(upstreams: Vec<SocketAddr>) -> Resolver {
        Resolver::build(upstreams, None)
    }

    /// A resolver whose listeners (and their forwards) run on `runtime`, whichever runtime
    /// calls [`Resolver::serve_sandbox`].
    pub fn on_runtime(upstreams: Vec<SocketAddr>, runtime: tokio::runtime::Handle) -> Resolver {
        Resolver::build(upstreams, Some(runtime))
    }

    fn build(upstreams: Vec<SocketAddr>, runtime: Option<tokio::runtime::Handle>) -> Resolver {
        Resolver {
            inner: Arc::new(Inner {
                table: RwLock::new(Table::default()),
                upstreams: RwLock::new(upstreams.into()),
                listeners: Mutex::new(HashMap::new()),
                runtime,
            }),
        }
    }

    pub fn set_upstreams(&self, upstreams: Vec<SocketAddr>) {
        *self.inner.upstreams.write().unwrap_or_else(|e| e.into_inner()) = upstreams.into();
    }

    pub fn upstreams(&self) -> Vec<SocketAddr> {
        self.inner.upstreams.read().unwrap_or_else(|e| e.into_inner()).to_vec()
    }

    /// Adds (or replaces) an endpoint's names; its sandbox sees its network from now on.
    pub fn add_endpoint(&self, rec: &EndpointRecord) {
        self.inner.table.write().unwrap_or_else(|e| e.into_inner()).add(rec);
    }

    pub fn remove_endpoint(&self, network_id: &str, endpoint_id: &str) {
        self.inner.table.write().unwrap_or_else(|e| e.into_inner()).remove(network_id, endpoint_id);
    }

    /// Stops the sandbox's listener and drops every record of it.
    pub fn remove_sandbox(&self, sandbox_id: &str) {
        let listener = self.inner.listeners.lock().unwrap_or_else(|e| e.into_inner()).remove(sandbox_id);
        drop(listener);
        self.inner.table.write().unwrap_or_else(|e| e.into_inner()).remove_sandbox(sandbox_id);
    }

    pub fn has_listener(&self, sandbox_id: &str) -> bool {
        self.inner.listeners.lock().unwrap_or_else(|e| e.into_inner()).contains_key(sandbox_id)
    }

    /// Number of sandboxes served.
    pub fn listeners(&self) -> usize {
        self.inner.listeners.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Number of (network, name) records.
    pub fn records(&self) -> usize {
        self.inner.table.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Serves a sandbox on sockets bound for it (see [`bind`]). `upstreams`: the sandbox's own
    /// resolvers, overriding the resolver's. Must be called inside a tokio runtime; a sandbox
    /// already served keeps its listener (the new sockets are closed).
    pub fn serve_sandbox(
        &self,
        sandbox_id: &str,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
        upstreams: Option<Vec<SocketAddr>>,
    ) -> io::Result<()> {
        let mut listeners = self.inner.listeners.lock().unwrap_or_else(|e| e.into_inner());
        if listeners.contains_key(sandbox_id) {
            return Ok(());
        }
        // The sockets register with, and the tasks spawn on, the resolver's own runtime if it has one.
        let _entered = self.inner.runtime.as_ref().map(tokio::runtime::Handle::enter);
        let udp = Arc::new(UdpSocket::from_std(udp)?);
        let tcp = TcpListener::from_std(tcp)?;
        let scope = Arc::new(Scope {
            sandbox: sandbox_id.into(),
            upstreams: upstreams.filter(|u| !u.is_empty()).map(Into::into),
            inner: self.inner.clone(),
        });
        let tasks = vec![
            tokio::spawn(serve_udp(scope.clone(), udp)).abort_handle(),
            tokio::spawn(serve_tcp(scope, tcp)).abort_handle(),
        ];
        listeners.insert(sandbox_id.to_string(), Listener { tasks });
        Ok(())
    }
}

/// A UDP socket and a TCP listener (SO_REUSEADDR, so a restart is not blocked by TIME_WAIT) bound
/// to `addr`, non-blocking, for [`Resolver::serve_sandbox`]. Call it on a thread inside the
/// sandbox's namespace: the sockets stay in the namespace they were made in.
pub fn bind(addr: SocketAddr) -> io::Result<(std::net::UdpSocket, std::net::TcpListener)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let udp = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    udp.set_nonblocking(true)?;
    udp.bind(&addr.into())?;
    let tcp = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_reuse_address(true)?;
    tcp.set_nonblocking(true)?;
    tcp.bind(&addr.into())?;
    tcp.listen(128)?;
    Ok((udp.into(), tcp.into()))
}

impl Scope {
    fn upstreams(&self) -> Arc<[SocketAddr]> {
        match &self.upstreams {
            Some(u) => u.clone(),
            None => self.inner.upstreams.read().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Answers `raw` into `out` if it is for a local name (or malformed).
    fn answer_local(&self, raw: &[u8], udp: bool, out: &mut Vec<u8>) -> Outcome {
        let q = match Query::parse(raw) {
            Ok(q) => q,
            Err(ParseError::Ignore) => return Outcome::Drop,
            Err(ParseError::Answer(rcode)) => {
                wire::error_reply(out, raw, rcode);
                return Outcome::Reply;
            }
        };
        let limit = if udp { q.udp_limit() } else { usize::from(u16::MAX) };
        if (q.qclass == wire::CLASS_IN || q.qclass == wire::CLASS_ANY)
            && let Some(name) = q.local_name()
        {
            let table = self.inner.table.read().unwrap_or_else(|e| e.into_inner());
            if let Some(found) = table.find(&self.sandbox, name, q.qtype) {
                let mut r = Response::new(out, raw, &q, wire::RCODE_NOERROR, true);
                match found {
                    Found::Name(entry) => {
                        let (v4, v6) = entry.rotated();
                        if matches!(q.qtype, wire::TYPE_A | wire::TYPE_ANY) {
                            v4.for_each(|a| r.a(a));
                        }
                        if matches!(q.qtype, wire::TYPE_AAAA | wire::TYPE_ANY) {
                            v6.for_each(|a| r.aaaa(a));
                        }
                    }
                    Found::Ptr(target) => r.ptr(target),
                    Found::Empty => {}
                }
                r.finish(limit);
                trace!(sandbox = %&self.sandbox[..12.min(self.sandbox.len())], qtype = q.qtype, "local answer");
                return Outcome::Reply;
            }
        }
        Outcome::Forward { question_end: q.question_end, limit }
    }
}

/// A socket error that will not go away (the socket is closed under us).
fn is_fatal(e: &io::Error) -> bool {
    const EBADF: i32 = 9;
    e.raw_os_error() == Some(EBADF) || e.kind() == io::ErrorKind::NotConnected
}

async fn serve_udp(scope: Arc<Scope>, sock: Arc<UdpSocket>) {
    let mut buf = vec![0u8; UDP_QUERY_BUF];
    let mut out = Vec::with_capacity(512);
    let mut forwards: JoinSet<()> = JoinSet::new();
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) if is_fatal(&e) => {
                warn!(error = %e, sandbox = %scope.sandbox, "DNS UDP socket failed");
                return;
            }
            Err(e) => {
                debug!(error = %e, "DNS UDP receive");
                continue;
            }
        };
        let raw = &buf[..n];
        match scope.answer_local(raw, true, &mut out) {
            Outcome::Reply => {
                // The socket is nearly always writable: skip the future unless it is not.
                let sent = match sock.try_send_to(&out, src) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => sock.send_to(&out, src).await,
                    other => other,
                };
                if let Err(e) = sent {
                    trace!(error = %e, "DNS UDP send");
                }
            }
            Outcome::Drop => {}
            Outcome::Forward { question_end, limit } => {
                while forwards.try_join_next().is_some() {}
                if forwards.len() >= MAX_INFLIGHT {
                    servfail(&mut out, raw, limit);
                    let _ = sock.send_to(&out, src).await;
                    continue;
                }
                let query = raw.to_vec();
                let upstreams = scope.upstreams();
                let sock = sock.clone();
                forwards.spawn(async move {
                    let resp = forward(Transport::Udp, &upstreams, query, question_end, limit).await;
                    if let Err(e) = sock.send_to(&resp, src).await {
                        trace!(error = %e, "DNS UDP send");
                    }
                });
            }
        }
    }
}

async fn serve_tcp(scope: Arc<Scope>, listener: TcpListener) {
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) if is_fatal(&e) => {
                warn!(error = %e, sandbox = %scope.sandbox, "DNS TCP listener failed");
                return;
            }
            Err(e) => {
                debug!(error = %e, "DNS TCP accept");
                // EMFILE and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        if conns.len() >= MAX_TCP_CONNECTIONS {
            continue;
        }
        conns.spawn(serve_tcp_conn(scope.clone(), stream));
    }
}

async fn serve_tcp_conn(scope: Arc<Scope>, mut stream: TcpStream) {
    let mut out = Vec::with_capacity(512);
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            _ => return,
        };
        let mut msg = vec![0u8; len];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut msg)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let resp = match scope.answer_local(&msg, false, &mut out) {
            Outcome::Reply => std::mem::take(&mut out),
            Outcome::Drop => continue,
            Outcome::Forward { question_end, .. } => {
                forward(Transport::Tcp, &scope.upstreams(), msg, question_end, usize::from(u16::MAX)).await
            }
        };
        let mut framed = Vec::with_capacity(resp.len() + 2);
        framed.extend_from_slice(&(resp.len() as u16).to_be_bytes());
        framed.extend_from_slice(&resp);
        match tokio::time::timeout(TCP_IDLE, stream.write_all(&framed)).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        out = resp;
    }
}

/// SERVFAIL for `raw` (a query that parsed) into `out`.
fn servfail(out: &mut Vec<u8>, raw: &[u8], limit: usize) {
    match Query::parse(raw) {
        Ok(q) => Response::new(out, raw, &q, wire::RCODE_SERVFAIL, false).finish(limit),
        Err(_) => wire::error_reply(out, raw, wire::RCODE_SERVFAIL),
    }
}

/// How long each upstream may take when `n` share the budget.
fn per_try(n: usize) -> Duration {
    (FORWARD_BUDGET / n.max(1) as u32).max(MIN_TRY)
}

/// How a query travels to the upstreams: as the client sent it.
#[derive(Clone, Copy)]
enum Transport {
    Udp,
    Tcp,
}

/// Asks the upstreams in order; the first useful answer wins (SERVFAIL or REFUSED moves on to the
/// next one while there is one). Returns what to send to the client: the answer with the client's
/// id, cut to a TC answer if longer than `limit`, or SERVFAIL.
async fn forward(
    transport: Transport,
    upstreams: &[SocketAddr],
    mut query: Vec<u8>,
    question_end: usize,
    limit: usize,
) -> Vec<u8> {
    let orig = [query[0], query[1]];
    query[..2].copy_from_slice(&rand::random::<u16>().to_be_bytes());
    let deadline = Instant::now() + FORWARD_BUDGET;
    let mut fallback = None;
    for (i, up) in upstreams.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let exchange = async {
            match transport {
                Transport::Udp => exchange_udp(*up, &query, question_end).await,
                Transport::Tcp => exchange_tcp(*up, &query, question_end).await,
            }
        };
        match tokio::time::timeout(per_try(upstreams.len()).min(left), exchange).await {
            Ok(Ok(resp)) => {
                let rcode = wire::rcode(&resp);
                fallback = Some(resp);
                if !(matches!(rcode, wire::RCODE_SERVFAIL | wire::RCODE_REFUSED) && i + 1 < upstreams.len()) {
                    break;
                }
            }
            Ok(Err(e)) => debug!(upstream = %up, error = %e, "forwarding"),
            Err(_) => debug!(upstream = %up, "no answer from upstream"),
        }
    }
    query[..2].copy_from_slice(&orig);
    match fallback {
        Some(mut resp) => {
            resp[..2].copy_from_slice(&orig);
            if resp.len() > limit {
                wire::truncate_reply(&mut resp, question_end);
            }
            resp
        }
        None => {
            let mut out = Vec::new();
            servfail(&mut out, &query, limit);
            out
        }
    }
}

async fn exchange_udp(upstream: SocketAddr, query: &[u8], question_end: usize) -> io::Result<Vec<u8>> {
    let local: SocketAddr = if upstream.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(upstream).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        if wire::answers_query(query, question_end, &buf[..n]) {
            buf.truncate(n);
            return Ok(buf);
        }
        trace!(upstream = %upstream, "ignoring a datagram that does not answer the query");
    }
}

async fn exchange_tcp(upstream: SocketAddr, query: &[u8], question_end: usize) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    loop {
        let len = usize::from(stream.read_u16().await?);
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        if wire::answers_query(query, question_end, &buf) {
            return Ok(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery, ResponseCode};
    use hickory_proto::rr::rdata::{A, TXT};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use std::net::Ipv4Addr;

    fn query(name: &str, rtype: RecordType, edns: Option<u16>) -> Vec<u8> {
        let mut m = Message::new(rand::random(), MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
        if let Some(size) = edns {
            let mut e = Edns::new();
            e.set_max_payload(size);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    /// An upstream on 127.0.0.1 (UDP and TCP, one port): `up.example` A 192.0.2.1, `big.example`
    /// a 3000-byte TXT (never truncated, even over UDP), anything else NXDOMAIN.
    async fn fake_upstream() -> SocketAddr {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).await.unwrap();
        fn answer(raw: &[u8]) -> Vec<u8> {
            let req = Message::from_vec(raw).unwrap();
            let mut resp = Message::new(req.metadata.id, MessageType::Response, OpCode::Query);
            resp.metadata.recursion_desired = req.metadata.recursion_desired;
            let q = req.queries[0].clone();
            let name = q.name().to_ascii();
            resp.add_query(q.clone());
            match name.as_str() {
                "up.example." => {
                    resp.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A::new(192, 0, 2, 1))));
                }
                "big.example." => {
                    let txt = TXT::new((0..12).map(|i| format!("{i:02}{}", "x".repeat(240))).collect());
                    resp.add_answer(Record::from_rdata(q.name().clone(), 60, RData::TXT(txt)));
                }
                _ => resp.metadata.response_code = ResponseCode::NXDomain,
            }
            resp.to_vec().unwrap()
        }
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, src) = udp.recv_from(&mut buf).await.unwrap();
                udp.send_to(&answer(&buf[..n]), src).await.unwrap();
            }
        });
        tokio::spawn(async move {
            loop {
                let (mut s, _) = tcp.accept().await.unwrap();
                let len = s.read_u16().await.unwrap();
                let mut msg = vec![0u8; len.into()];
                s.read_exact(&mut msg).await.unwrap();
                let resp = answer(&msg);
                s.write_all(&(resp.len() as u16).to_be_bytes()).await.unwrap();
                s.write_all(&resp).await.unwrap();
            }
        });
        addr
    }

    fn serve(resolver: &Resolver, sandbox: &str, upstreams: Option<Vec<SocketAddr>>) -> SocketAddr {
        let (udp, tcp) = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // TCP gets its own port here; the tests talk UDP to `udp` and TCP to `tcp`'s port.
        let addr = udp.local_addr().unwrap();
        let tcp_addr = tcp.local_addr().unwrap();
        resolver.serve_sandbox(sandbox, udp, tcp, upstreams).unwrap();
        TCP_PORTS.lock().unwrap().push((addr, tcp_addr));
        addr
    }

    static TCP_PORTS: Mutex<Vec<(SocketAddr, SocketAddr)>> = Mutex::new(Vec::new());

    async fn ask_udp(server: SocketAddr, raw: &[u8]) -> Message {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.send_to(raw, server).await.unwrap();
        let mut buf = vec![0u8; 65535];
        let (n, _) =
            tokio::time::timeout(Duration::from_secs(5), s.recv_from(&mut buf)).await.expect("answer").unwrap();
        Message::from_vec(&buf[..n]).unwrap()
    }

    async fn ask_tcp(server: SocketAddr, raw: &[u8]) -> Message {
        let tcp = TCP_PORTS.lock().unwrap().iter().find(|(u, _)| *u == server).unwrap().1;
        let mut s = TcpStream::connect(tcp).await.unwrap();
        s.write_all(&(raw.len() as u16).to_be_bytes()).await.unwrap();
        s.write_all(raw).await.unwrap();
        let len = s.read_u16().await.unwrap();
        let mut buf = vec![0u8; len.into()];
        s.read_exact(&mut buf).await.unwrap();
        Message::from_vec(&buf).unwrap()
    }

    fn rec(ep: &str, sb: &str, net: &str, names: &[&str], v4: Ipv4Addr) -> EndpointRecord {
        EndpointRecord {
            endpoint_id: ep.into(),
            sandbox_id: sb.into(),
            network_id: net.into(),
            network_name: net.into(),
            names: names.iter().map(|s| s.to_string()).collect(),
            ptr_name: format!("{}.{net}", names[0]),
            ipv4: Some(v4),
            ipv6: None,
        }
    }

    fn a_records(m: &Message) -> Vec<Ipv4Addr> {
        m.answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect()
    }

    /// A resolver on a runtime of its own answers while the runtime that served the sandbox is
    /// blocked (this test's thread waits on a std socket): its listener runs elsewhere.
    #[tokio::test]
    async fn a_resolver_on_its_own_runtime_answers_while_the_callers_runtime_is_blocked() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || runtime.block_on(stopped));
        let resolver = Resolver::on_runtime(Vec::new(), handle);
        resolver.add_endpoint(&rec("e1", "s1", "net1", &["web"], Ipv4Addr::new(10, 1, 0, 2)));
        let server = serve(&resolver, "s1", None);

        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        client.send_to(&query("web.", RecordType::A, None), server).unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = client.recv_from(&mut buf).expect("an answer from the resolver's own runtime");
        assert_eq!(a_records(&Message::from_vec(&buf[..n]).unwrap()), vec![Ipv4Addr::new(10, 1, 0, 2)]);
        drop(stop);
        let _stopped_by_the_drop = thread.join().unwrap();
    }

    #[tokio::test]
    async fn local_names_scoped_per_listener_and_forwarding() {
        let upstream = fake_upstream().await;
        let resolver = Resolver::new(vec![upstream]);
        resolver.add_endpoint(&rec("e1", "s1", "net1", &["web", "svc"], Ipv4Addr::new(10, 1, 0, 2)));
        resolver.add_endpoint(&rec("e2", "s2", "net1", &["db", "svc"], Ipv4Addr::new(10, 1, 0, 3)));
        resolver.add_endpoint(&rec("e3", "s3", "net2", &["lonely"], Ipv4Addr::new(10, 2, 0, 2)));
        let s1 = serve(&resolver, "s1", None);
        let s3 = serve(&resolver, "s3", None);

        let m = ask_udp(s1, &query("DB.", RecordType::A, None)).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 1, 0, 3)]);
        let m = ask_tcp(s1, &query("db.net1.", RecordType::A, None)).await;
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 1, 0, 3)]);
        // Round robin.
        let a = a_records(&ask_udp(s1, &query("svc.", RecordType::A, None)).await);
        let b = a_records(&ask_udp(s1, &query("svc.", RecordType::A, None)).await);
        assert_eq!(a.len(), 2);
        assert_ne!(a[0], b[0]);
        // NOERROR, empty for a type the name has no record of.
        let m = ask_udp(s1, &query("web.", RecordType::AAAA, Some(1232))).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        // PTR.
        let m = ask_udp(s1, &query("3.0.1.10.in-addr.arpa.", RecordType::PTR, None)).await;
        match &m.answers[0].data {
            RData::PTR(p) => assert_eq!(p.0.to_ascii(), "db.net1."),
            other => panic!("{other:?}"),
        }
        // s3 does not see net1: forwarded, and the upstream says NXDOMAIN.
        let m = ask_udp(s3, &query("web.", RecordType::A, None)).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        // Forwarded names, over UDP and TCP.
        let m = ask_udp(s3, &query("up.example.", RecordType::A, None)).await;
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);
        let m = ask_tcp(s3, &query("up.example.", RecordType::A, None)).await;
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);
        // A big answer: truncated over UDP, whole over TCP.
        let m = ask_udp(s3, &query("big.example.", RecordType::TXT, Some(1232))).await;
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
        let m = ask_tcp(s3, &query("big.example.", RecordType::TXT, Some(1232))).await;
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 1);

        // Live changes.
        resolver.remove_endpoint("net1", "e2");
        let a = a_records(&ask_udp(s1, &query("svc.", RecordType::A, None)).await);
        assert_eq!(a, vec![Ipv4Addr::new(10, 1, 0, 2)]);
        resolver.remove_sandbox("s3");
        assert!(!resolver.has_listener("s3"));
        assert_eq!(resolver.listeners(), 1);
    }

    /// The class of aardvark-dns CVE-2024-8418: clients that connect over TCP and then stall
    /// (half a length prefix) must not keep anyone else from an answer, over UDP or TCP.
    #[tokio::test]
    async fn stuck_tcp_clients_block_no_one() {
        let resolver = Resolver::new(vec![]);
        resolver.add_endpoint(&rec("e1", "s", "net1", &["web"], Ipv4Addr::new(10, 1, 0, 2)));
        let s = serve(&resolver, "s", None);
        let tcp = TCP_PORTS.lock().unwrap().iter().find(|(u, _)| *u == s).unwrap().1;
        let mut stuck = Vec::new();
        for _ in 0..16 {
            let mut c = TcpStream::connect(tcp).await.unwrap();
            c.write_all(&[0]).await.unwrap();
            stuck.push(c);
        }
        let deadline = Duration::from_secs(5);
        let m = tokio::time::timeout(deadline, ask_udp(s, &query("web.", RecordType::A, None)))
            .await
            .expect("a UDP query is answered while TCP clients are stuck");
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 1, 0, 2)]);
        let m = tokio::time::timeout(deadline, ask_tcp(s, &query("web.", RecordType::A, None)))
            .await
            .expect("a TCP query is answered while other TCP clients are stuck");
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(10, 1, 0, 2)]);
        drop(stuck);
    }

    #[tokio::test]
    async fn dead_upstream_gives_servfail_in_time() {
        // A port nothing listens on: refused at once; and a black hole: the budget runs out.
        let closed = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap()
        };
        let resolver = Resolver::new(vec![closed]);
        let s = serve(&resolver, "s", None);
        let m = ask_udp(s, &query("x.example.", RecordType::A, None)).await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);

        let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let resolver = Resolver::new(vec![hole.local_addr().unwrap()]);
        let s = serve(&resolver, "s", None);
        // ask_udp gives up after a client's 5 s: SERVFAIL arriving at all means the budget ended
        // the forward first (how long it took is a figure for benches, not a test).
        let m = ask_udp(s, &query("x.example.", RecordType::A, None)).await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        // The sandbox's own servers win over the resolver's.
        let upstream = fake_upstream().await;
        let s = serve(&resolver, "own", Some(vec![upstream]));
        let m = ask_udp(s, &query("up.example.", RecordType::A, None)).await;
        assert_eq!(a_records(&m), vec![Ipv4Addr::new(192, 0, 2, 1)]);
    }
}

/// Fuzzing of the request path (issue 14): any bytes, and well-formed queries for any name and
/// type, through what a listener does with a datagram or a TCP message, never panic, and a reply
/// to a well-formed query is a DNS message. `PROPTEST_CASES` sets how many cases a run tries
/// (scripts/fuzz.sh runs them for a given time).
#[cfg(test)]
mod fuzz {
    use std::net::Ipv4Addr;

    use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery};
    use hickory_proto::rr::{Name, RecordType};
    use proptest::prelude::*;

    use super::*;

    fn scope() -> Scope {
        let resolver = Resolver::new(vec![]);
        resolver.add_endpoint(&EndpointRecord {
            endpoint_id: "e1".into(),
            sandbox_id: "s1".into(),
            network_id: "n1".into(),
            network_name: "net1".into(),
            names: vec!["web".into(), "alias".into()],
            ptr_name: "web.net1".into(),
            ipv4: Some(Ipv4Addr::new(10, 1, 0, 2)),
            ipv6: Some("fd00::2".parse().unwrap()),
        });
        resolver.add_endpoint(&EndpointRecord {
            endpoint_id: "e2".into(),
            sandbox_id: "s2".into(),
            network_id: "n1".into(),
            network_name: "net1".into(),
            names: vec!["db".into()],
            ptr_name: "db.net1".into(),
            ipv4: Some(Ipv4Addr::new(10, 1, 0, 3)),
            ipv6: None,
        });
        Scope { sandbox: "s1".into(), upstreams: None, inner: resolver.inner.clone() }
    }

    proptest! {
        #[test]
        fn fuzz_dns_any_bytes(raw in proptest::collection::vec(any::<u8>(), 0..700), udp in any::<bool>()) {
            let mut out = Vec::new();
            if let Outcome::Reply = scope().answer_local(&raw, udp, &mut out) {
                prop_assert!(out.len() <= usize::from(u16::MAX));
            }
        }

        #[test]
        fn fuzz_dns_any_query(
            labels in proptest::collection::vec("[a-zA-Z0-9-]{1,20}", 1..5),
            rtype in prop_oneof![Just(RecordType::A), Just(RecordType::AAAA), Just(RecordType::PTR),
                                 Just(RecordType::ANY), Just(RecordType::TXT), Just(RecordType::MX)],
            udp in any::<bool>(),
        ) {
            let Ok(name) = Name::from_ascii(format!("{}.", labels.join("."))) else { return Ok(()) };
            let mut m = Message::new(7, MessageType::Query, OpCode::Query);
            m.add_query(HQuery::query(name, rtype));
            let raw = m.to_vec().unwrap();
            let mut out = Vec::new();
            match scope().answer_local(&raw, udp, &mut out) {
                Outcome::Reply => {
                    let reply = Message::from_vec(&out);
                    prop_assert!(reply.is_ok(), "not a DNS message: {out:?}");
                    prop_assert_eq!(reply.unwrap().metadata.id, 7);
                }
                Outcome::Forward { question_end, .. } => prop_assert!(question_end <= raw.len()),
                Outcome::Drop => {}
            }
        }
    }
}
