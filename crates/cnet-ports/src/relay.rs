//! The userland relay of published ports at the host's IPv6 loopback: bindings on ::1 itself
//! (`-p [::1]:8080:80`), and every binding on all addresses (`-p 8080:80`), which answers the host
//! at [::1]:8080 too.
//!
//! Every published port is otherwise a DNAT map element in the firewall. ::1 cannot be: the kernel
//! never routes a packet with a loopback address out of `lo` (IPv6 has no `route_localnet`), so a
//! connection to [::1]:8080 DNATed to a container would be dropped. Docker relays these with its
//! userland proxy; cnetd does the same, in its own process: it listens on [::1]:PORT in the
//! daemon's namespace and relays to the container's address (IPv6 for bindings on ::1, else its
//! IPv6 or IPv4 one) through the bridge (the container sees the bridge's gateway address as the
//! client, as with Docker's proxy).
//!
//! TCP: one task per connection copying both ways (half-closes passed on). UDP: one socket per
//! client address towards the container, forgotten after [`UDP_IDLE`] without traffic.
//!
//! [`crate::PublishedPorts`] starts an endpoint's relays with its DNAT elements, stops them with
//! them, and starts them again when a driver restores. Dropping a relay stops its listener and
//! every connection or flow it carries.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cnet_core::portspec::{format_binding, holder_name, is_relayed};
use cnet_core::{Endpoint, Error, PortBinding, Protocol, Result};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::task::{AbortHandle, JoinSet};

/// How long a relayed UDP flow lives without a datagram either way (Docker's proxy: 90 s).
pub const UDP_IDLE: Duration = Duration::from_secs(90);
/// At most this many UDP flows per published port; datagrams of further clients are dropped.
const UDP_MAX_FLOWS: usize = 4096;
/// How long a relayed TCP connection may take to reach the container.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest UDP payload over IPv6.
const UDP_BUF: usize = 65535;

/// The running relays, per endpoint id.
#[derive(Default)]
pub struct Relays {
    running: Mutex<HashMap<String, Vec<Relay>>>,
}

/// One listener and everything it carries; stopped when dropped.
struct Relay {
    task: AbortHandle,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relays {
    /// Starts a relay for every binding of `endpoint` on ::1 and every TCP/UDP binding on all
    /// addresses (none: nothing to do). The sockets are bound before this returns: a binding on
    /// ::1 whose port the host already uses is an error here (and then no relay of the endpoint is
    /// left running); for a binding on all addresses it is only logged.
    pub fn start(&self, endpoint: &Endpoint) -> Result<()> {
        let mut relays = Vec::new();
        // Bindings on ::1 itself: the user asked for them, so a port taken there is an error.
        let asked: Vec<&PortBinding> = endpoint.ports.iter().filter(|b| is_relayed(b)).collect();
        if !asked.is_empty() {
            let Some(IpAddr::V6(dest)) = endpoint.ipv6.map(|a| a.ip()) else {
                return Err(Error::invalid(format!(
                    "cannot publish {} for {}: the endpoint has no IPv6 address",
                    asked.iter().map(|b| format_binding(b)).collect::<Vec<_>>().join(", "),
                    holder_name(endpoint)
                )));
            };
            for b in asked {
                relays.push(relay(endpoint, b, IpAddr::V6(dest))?);
            }
        }
        // Bindings on every address answer at [::1] too, as Docker's proxy does (many clients try
        // `localhost` as ::1 first), towards the container's IPv6 address if it has one, else its
        // IPv4 one. Not asked for by name, so a port some program holds there is only logged.
        let dest = endpoint.ipv6.or(endpoint.ipv4).map(|a| a.ip());
        for b in endpoint.ports.iter().filter(|b| b.host_ip.is_none() && b.protocol != Protocol::Sctp) {
            let Some(dest) = dest else { break };
            match relay(endpoint, b, dest) {
                Ok(r) => relays.push(r),
                Err(e) => tracing::warn!(error = %e, owner = holder_name(endpoint), "not relaying [::1]"),
            }
        }
        if !relays.is_empty() {
            self.running.lock().unwrap_or_else(|p| p.into_inner()).insert(endpoint.id.to_string(), relays);
        }
        Ok(())
    }

    /// Stops the endpoint's relays (and closes their connections); none is no error.
    pub fn stop(&self, endpoint_id: &str) {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).remove(endpoint_id);
    }

    /// How many endpoints have relays running.
    pub fn len(&self) -> usize {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A relay of `b` from [::1]:HOST_PORT to `dest`:CONTAINER_PORT, bound before it returns.
fn relay(endpoint: &Endpoint, b: &PortBinding, dest: IpAddr) -> Result<Relay> {
    let listen = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), b.host_port);
    let target = SocketAddr::new(dest, b.container_port);
    let started = match b.protocol {
        Protocol::Tcp => bind_tcp(listen).map(|l| tokio::spawn(tcp_relay(l, target)).abort_handle()),
        Protocol::Udp => bind_udp(listen).map(|s| tokio::spawn(udp_relay(s, target)).abort_handle()),
        Protocol::Sctp => {
            return Err(Error::invalid(format!(
                "cannot publish {}: SCTP cannot be published on ::1 (the kernel does not route ::1 out of lo, \
                 and cnetd relays only TCP and UDP)",
                format_binding(b)
            )));
        }
    };
    let task = started.map_err(|e| {
        Error::precondition(format!(
            "Bind for [::1]:{} failed: {e}",
            format_binding(b).split("->").next().unwrap_or_default().rsplit(':').next().unwrap_or_default()
        ))
    })?;
    tracing::debug!(listen = %listen, %target, proto = b.protocol.as_str(), owner = holder_name(endpoint), "relaying");
    Ok(Relay { task })
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v6()?;
    // A restart must not wait for the TIME_WAIT connections of the previous run.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

async fn tcp_relay(listener: TcpListener, target: SocketAddr) {
    // Dropped with this task: every connection it carries ends with it.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((inbound, _)) => {
                    conns.spawn(tcp_connection(inbound, target));
                }
                Err(e) => {
                    // Out of file descriptors, most likely: try again a little later.
                    tracing::warn!(%target, error = %e, "relay: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn tcp_connection(mut inbound: TcpStream, target: SocketAddr) {
    let mut outbound = match tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%target, error = %e, "relay: cannot reach the container");
            return;
        }
        Err(_) => {
            tracing::debug!(%target, "relay: the container did not answer in time");
            return;
        }
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    if let Err(e) = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await {
        tracing::trace!(%target, error = %e, "relay: connection ended");
    }
}

/// One client's flow: a socket connected to the container, and when it last carried a datagram.
struct Flow {
    socket: Arc<UdpSocket>,
    last: Arc<Mutex<Instant>>,
}

async fn udp_relay(listener: UdpSocket, target: SocketAddr) {
    let listener = Arc::new(listener);
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    // The reply tasks, dropped (stopped) with this task; each returns its client when it idles out.
    let mut replies: JoinSet<SocketAddr> = JoinSet::new();
    let mut buf = vec![0u8; UDP_BUF];
    loop {
        tokio::select! {
            received = listener.recv_from(&mut buf) => {
                let (n, client) = match received {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(%target, error = %e, "relay: recv failed");
                        continue;
                    }
                };
                if !flows.contains_key(&client) {
                    if flows.len() >= UDP_MAX_FLOWS {
                        tracing::debug!(%target, %client, "relay: too many UDP flows, dropping a datagram");
                        continue;
                    }
                    match open_flow(target).await {
                        Ok(flow) => {
                            replies.spawn(udp_replies(flow.socket.clone(), flow.last.clone(), listener.clone(), client));
                            flows.insert(client, flow);
                        }
                        Err(e) => {
                            tracing::debug!(%target, error = %e, "relay: cannot open a UDP flow");
                            continue;
                        }
                    }
                }
                let flow = &flows[&client];
                *flow.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                if let Err(e) = flow.socket.send(&buf[..n]).await {
                    tracing::debug!(%target, error = %e, "relay: send to the container failed");
                }
            }
            Some(done) = replies.join_next(), if !replies.is_empty() => {
                if let Ok(client) = done {
                    flows.remove(&client);
                }
            }
        }
    }
}

async fn open_flow(target: SocketAddr) -> io::Result<Flow> {
    let any: IpAddr = if target.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    socket.connect(target).await?;
    Ok(Flow { socket: Arc::new(socket), last: Arc::new(Mutex::new(Instant::now())) })
}

/// Relays the container's datagrams back to `client` until the flow has been idle for [`UDP_IDLE`].
async fn udp_replies(
    socket: Arc<UdpSocket>,
    last: Arc<Mutex<Instant>>,
    listener: Arc<UdpSocket>,
    client: SocketAddr,
) -> SocketAddr {
    let mut buf = vec![0u8; UDP_BUF];
    loop {
        let idle_for = last.lock().unwrap_or_else(|p| p.into_inner()).elapsed();
        let Some(left) = UDP_IDLE.checked_sub(idle_for).filter(|d| !d.is_zero()) else {
            return client;
        };
        match tokio::time::timeout(left, socket.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                *last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                let _ = listener.send_to(&buf[..n], client).await;
            }
            // ICMP port unreachable from the container, mostly: nothing listens there yet.
            Ok(Err(_)) => {}
            Err(_) => {} // checked at the top of the loop
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn endpoint(ports: Vec<PortBinding>, ipv6: &str) -> Endpoint {
        Endpoint {
            id: "e".repeat(64).into(),
            name: "web".into(),
            network_id: "n".repeat(64).into(),
            sandbox_id: "s".repeat(64).into(),
            ifname: "eth0".into(),
            mac: cnet_core::MacAddr::new([0x02, 0x42, 0, 0, 0, 1]),
            ipv4: None,
            ipv6: Some(ipv6.parse().unwrap()),
            aliases: vec![],
            ports,
            driver_data: Default::default(),
            driver_opts: Default::default(),
            gw_priority: 0,
            gateway_v4: None,
            gateway_v6: None,
            link: Default::default(),
        }
    }

    fn on_lo(protocol: Protocol, host_port: u16, container_port: u16) -> PortBinding {
        PortBinding { protocol, host_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)), host_port, container_port }
    }

    /// A free port on ::1 for both protocols (the kernel picks one; a race with other tests is
    /// possible but unlikely).
    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("[::1]:0").unwrap();
        l.local_addr().unwrap().port()
    }

    // The "container" is ::1 itself here: relaying ::1:A to [::1]:B exercises the same code.
    #[tokio::test]
    async fn relays_tcp_and_udp_and_stops() {
        let server = TcpListener::bind("[::1]:0").await.unwrap();
        let tcp_port = server.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = server.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    s.read_to_end(&mut buf).await.unwrap();
                    s.write_all(&buf).await.unwrap();
                    s.write_all(b" back").await.unwrap();
                });
            }
        });
        let echo = UdpSocket::bind("[::1]:0").await.unwrap();
        let udp_port = echo.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut buf = [0u8; 100];
            loop {
                let (n, from) = echo.recv_from(&mut buf).await.unwrap();
                echo.send_to(&buf[..n], from).await.unwrap();
            }
        });

        let (pt, pu) = (free_port(), free_port());
        let ep = endpoint(vec![on_lo(Protocol::Tcp, pt, tcp_port), on_lo(Protocol::Udp, pu, udp_port)], "::1/128");
        let relays = Relays::default();
        relays.start(&ep).unwrap();
        assert_eq!(relays.len(), 1);

        let mut c = TcpStream::connect(("::1", pt)).await.unwrap();
        c.write_all(b"hello").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello back");

        let u = UdpSocket::bind("[::1]:0").await.unwrap();
        u.send_to(b"ping", ("::1", pu)).await.unwrap();
        let mut buf = [0u8; 100];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), u.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"ping");
        assert_eq!(from.port(), pu, "the answer must come from the published port");

        // A second start on the same ports fails and leaves the first running.
        let err = Relays::default().start(&ep).unwrap_err();
        assert!(err.to_string().contains(&format!("[::1]:{pt}")), "{err}");

        relays.stop(&ep.id);
        assert!(relays.is_empty());
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(("::1", pt)).await.is_err(), "still listening after stop");
        // The ports are free again.
        relays.start(&ep).unwrap();
    }

    #[test]
    fn an_endpoint_without_ipv6_is_refused() {
        let mut ep = endpoint(vec![on_lo(Protocol::Tcp, 1, 2)], "::1/128");
        ep.ipv6 = None;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let err = rt.block_on(async { Relays::default().start(&ep) }).unwrap_err();
        assert!(err.to_string().contains("no IPv6 address"), "{err}");
        // Nothing relayed: nothing to do.
        ep.ports.clear();
        rt.block_on(async { Relays::default().start(&ep) }).unwrap();
    }
}
