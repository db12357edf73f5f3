//! Connection setup rate through a published port: how many TCP connections per second (each a
//! connect, an HTTP/1.0 GET answered by busybox httpd in a container, and the close) a client
//! outside the host gets through `HOST:8080 -> container:80`, with per-connection p50 and p99, when
//! that is the only published port, with 1000 more published (10 containers x 100 ports), and
//! again with only the one (so the noise between two runs of the same setting shows).
//!
//! Published ports are nft map elements, so the cost per connection should not depend on how many
//! there are. The client is Rust (std::net) on a thread that entered the client's namespace, so
//! what is measured is the kernel's path (DNAT, forwarding, conntrack) and the server, not a
//! client process per request.
//!
//! Runs a release cnetd inside its own namespaces with the test kit (nothing touches the host):
//!     cargo build --release --bins -p cnetd -p cnet
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin published-port-rate [-- SECONDS]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cnet_api::v1::network_service_client::NetworkServiceClient;
use cnet_api::v1::sandbox_service_client::SandboxServiceClient;
use cnet_api::v1::{ConnectRequest, CreateSandboxRequest, PortBinding, SandboxRef};
use cnet_benches::{network_with_subnet, percentile};
use cnet_tests::{Bg, TestHost, Upstream};
use nix::sched::CloneFlags;

/// The host's address as the client sees it (the kit's upstream link).
const HOST_ADDR: &str = "198.51.100.1";
const PORT: u16 = 8080;
/// The extra published ports: `EXTRA_SANDBOXES` containers with `PORTS_EACH` ports each.
const EXTRA_SANDBOXES: u16 = 10;
const PORTS_EACH: u16 = 100;
const FIRST_EXTRA_PORT: u16 = 20000;

/// Runs `f` on a thread that entered the network namespace of process `pid`.
fn in_netns<T: Send>(pid: u32, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let ns = File::open(format!("/proc/{pid}/ns/net")).expect("open the client's netns");
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns into the client's netns");
            f()
        })
        .join()
        .expect("the client thread panicked")
    })
}

/// One connection: connect, GET /, read the whole answer (httpd closes), close.
fn one_request(addr: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_nodelay(true)?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")?;
    let mut answer = Vec::with_capacity(256);
    s.read_to_end(&mut answer)?;
    if !answer.starts_with(b"HTTP/1.0 200") && !answer.starts_with(b"HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("unexpected answer: {:?}", String::from_utf8_lossy(&answer))));
    }
    Ok(())
}

struct Run {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

/// Sequential connections for `secs` (after a short warm-up), from the client's namespace.
fn measure(client_pid: u32, secs: f64) -> Run {
    let addr: SocketAddr = format!("{HOST_ADDR}:{PORT}").parse().expect("a valid address");
    in_netns(client_pid, || {
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_millis(500) {
            let _ = one_request(addr);
        }
        let mut run = Run { latencies: Vec::new(), errors: 0, elapsed: Duration::ZERO };
        let start = Instant::now();
        let budget = Duration::from_secs_f64(secs);
        while start.elapsed() < budget {
            let t = Instant::now();
            match one_request(addr) {
                Ok(()) => run.latencies.push(t.elapsed()),
                Err(_) => run.errors += 1,
            }
        }
        run.elapsed = start.elapsed();
        run.latencies.sort();
        run
    })
}

fn report(what: &str, run: &Run) {
    let us = |d: Duration| format!("{:.0} µs", d.as_secs_f64() * 1e6);
    println!(
        "| {what} | {} | {:.0} | {} | {} | {} |",
        run.latencies.len(),
        run.latencies.len() as f64 / run.elapsed.as_secs_f64(),
        us(percentile(&run.latencies, 0.5)),
        us(percentile(&run.latencies, 0.99)),
        run.errors
    );
}

fn tcp(host_port: u16, container_port: u16) -> PortBinding {
    PortBinding {
        protocol: "tcp".into(),
        host_ip: String::new(),
        host_port: u32::from(host_port),
        container_port: u32::from(container_port),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let secs: f64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    let mut host = TestHost::new();
    // The client lives in the upstream's namespace: 198.51.100.2, one hop from the host.
    let client = Upstream::new(&host);
    let client_pid = client.ns().pid();
    host.start_cnetd();
    let channel = host.channel().await;
    let mut nets = NetworkServiceClient::new(channel.clone());
    let mut sandboxes = SandboxServiceClient::new(channel);
    nets.create_network(network_with_subnet("bench", "", "10.128.0.0/16")).await?;

    // The web server: busybox httpd on :80 in a container published on 8080.
    let web = sandboxes.create_sandbox(CreateSandboxRequest { name: "web".into(), ..Default::default() }).await?;
    let web = web.into_inner();
    sandboxes
        .connect_network(ConnectRequest {
            sandbox: web.id.clone(),
            network: "bench".into(),
            ports: vec![tcp(PORT, 80)],
            ..Default::default()
        })
        .await?;
    let www = tempfile::Builder::new().prefix("cnet-bench-www-").tempdir()?;
    std::fs::write(www.path().join("index.html"), "hello\n")?;
    let mut cmd = host.in_netns(&web.netns_path, "busybox");
    cmd.args(["httpd", "-f", "-p", "80", "-h"]).arg(www.path());
    let mut httpd = Bg::start(cmd);
    let addr: SocketAddr = format!("{HOST_ADDR}:{PORT}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_netns(client_pid, || one_request(addr)).is_err() {
        httpd.assert_running();
        anyhow::ensure!(Instant::now() < deadline, "httpd does not answer through {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }

    println!("{secs} s of sequential connect + GET + close per row, client one hop outside the host");
    println!();
    println!("| published ports besides 8080 | connections | connections/s | p50 | p99 | errors |");
    println!("|---|---|---|---|---|---|");
    report("0", &measure(client_pid, secs));

    let mut extra = Vec::new();
    let t = Instant::now();
    for i in 0..EXTRA_SANDBOXES {
        let sb = sandboxes
            .create_sandbox(CreateSandboxRequest { name: format!("filler{i}"), ..Default::default() })
            .await?
            .into_inner();
        let first = FIRST_EXTRA_PORT + i * PORTS_EACH;
        sandboxes
            .connect_network(ConnectRequest {
                sandbox: sb.id.clone(),
                network: "bench".into(),
                ports: (first..first + PORTS_EACH).map(|p| tcp(p, 80)).collect(),
                ..Default::default()
            })
            .await?;
        extra.push(sb.id);
    }
    let published = t.elapsed();
    let table = host.ns().run_ok("nft list map inet cnet dnat4_any_addr");
    let elements = table.matches("tcp . ").count();
    anyhow::ensure!(
        elements == 1 + usize::from(EXTRA_SANDBOXES * PORTS_EACH),
        "expected {} published ports in the table, found {elements}",
        1 + EXTRA_SANDBOXES * PORTS_EACH
    );
    report(&format!("{}", EXTRA_SANDBOXES * PORTS_EACH), &measure(client_pid, secs));

    for id in extra {
        sandboxes.remove_sandbox(SandboxRef { sandbox: id }).await?;
    }
    report("0 (again, after removing them)", &measure(client_pid, secs));
    println!();
    println!(
        "publishing the {} ports ({EXTRA_SANDBOXES} connects of {PORTS_EACH} ports each) took {:.0} ms",
        EXTRA_SANDBOXES * PORTS_EACH,
        published.as_secs_f64() * 1e3
    );
    httpd.assert_running();
    Ok(())
}
