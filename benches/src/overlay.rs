//! Overlay networks at scale: 10 simulated hosts (the test kit's lab: namespaces on an underlay
//! bridge, etcd in its own namespace), one overlay network, 1000 endpoints spread over hosts 1-9,
//! and host 10 as the observer, holding one endpoint and knowing the 1000 others.
//!
//! Measures:
//! - propagation latency: from the moment ConnectNetwork returns on a host (the container is
//!   attached) until the observer's container gets an ICMP echo reply from it (so the attach went
//!   through etcd, the observer's watch, and its FDB and neighbour entries). Also from the start of
//!   the call. The observer pings with a raw socket every millisecond; its ARP retransmit time is
//!   lowered to 1 ms so that the kernel's 1 s default does not hide what is measured.
//! - cnetd's resident memory on the observer host (1000 remote endpoints known).
//! - iperf3 throughput container-to-container across two hosts against host-to-host over the same
//!   underlay, in one run, alternating (IPERF_RUNS, default 5).
//!
//! Run it with:
//!
//!     cargo build --release --bins
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin overlay [-- ENDPOINTS SAMPLES IPERF_SECS]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cnet_api::v1::network_service_client::NetworkServiceClient;
use cnet_api::v1::sandbox_service_client::SandboxServiceClient;
use cnet_api::v1::{ConnectRequest, CreateSandboxRequest, SandboxRef};
use cnet_benches::{network_with_subnet, percentile, rss_kib};
use cnet_tests::{Lab, TestHost, addr_of};
use socket2::{Domain, Protocol, Socket, Type};

const HOSTS: usize = 10;
const OBSERVER: usize = HOSTS - 1;

fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += word as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(seq: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = 8; // echo request
    p[4..6].copy_from_slice(&0xc0e7u16.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// A thread inside the observer's sandbox namespace: for each target it pings every millisecond
/// until the target answers, and sends back when the answer came.
fn observer_thread(netns: std::path::PathBuf, targets: mpsc::Receiver<Ipv4Addr>, replies: mpsc::Sender<Instant>) {
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&netns).expect("open the observer's namespace");
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the observer's namespace");
        let sock = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).expect("raw ICMP socket");
        sock.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
        let mut seq = 0u16;
        for target in targets {
            let dest: SocketAddr = SocketAddrV4::new(target, 0).into();
            let answered = loop {
                seq = seq.wrapping_add(1);
                let _ = sock.send_to(&echo_request(seq), &dest.into());
                let sent = Instant::now();
                let mut got = None;
                while sent.elapsed() < Duration::from_millis(1) {
                    match sock.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            let data: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                            let ihl = ((data[0] & 0x0f) as usize) * 4;
                            let from_ip = from.as_socket_ipv4().map(|a| *a.ip());
                            if from_ip == Some(target) && data.get(ihl) == Some(&0) {
                                got = Some(Instant::now());
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
                if let Some(t) = got {
                    break t;
                }
            };
            if replies.send(answered).is_err() {
                return;
            }
        }
    });
}

async fn run_in_ok(host: &TestHost, netns: &str, script: &str) -> String {
    host.run_in_ok(netns, script)
}

fn iperf_gbps(json: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("iperf3 JSON ({e}): {json}"));
    v["end"]["sum_received"]["bits_per_second"].as_f64().expect("bits_per_second") / 1e9
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let endpoints: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let samples: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200);
    let iperf_secs: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);

    eprintln!("building a lab of {HOSTS} hosts");
    let mut lab = Lab::new(HOSTS);
    lab.start_all();
    let mut nets = NetworkServiceClient::new(lab.host(0).channel().await);
    nets.create_network(network_with_subnet("bench", "overlay", "10.64.0.0/20")).await?;
    // Every host sees the network.
    for i in 0..HOSTS {
        let mut n = NetworkServiceClient::new(lab.host(i).channel().await);
        let deadline = Instant::now() + Duration::from_secs(10);
        while n.inspect_network(cnet_api::v1::NetworkRef { network: "bench".into() }).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "host{} never saw the network", i + 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // The observer's container.
    let mut observer_api = SandboxServiceClient::new(lab.host(OBSERVER).channel().await);
    let observer = observer_api
        .create_sandbox(CreateSandboxRequest { name: "observer".into(), ..Default::default() })
        .await?
        .into_inner();
    observer_api
        .connect_network(ConnectRequest { sandbox: observer.id.clone(), network: "bench".into(), ..Default::default() })
        .await?;
    run_in_ok(
        lab.host(OBSERVER),
        &observer.netns_path,
        "sysctl -qw net.ipv4.neigh.eth0.retrans_time_ms=1 net.ipv4.neigh.eth0.mcast_solicit=1000 net.ipv4.neigh.eth0.ucast_solicit=1000",
    )
    .await;

    // 1000 endpoints over hosts 1-9, filled concurrently (one task per host).
    eprintln!("attaching {endpoints} endpoints over {} hosts", HOSTS - 1);
    let fill_started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..OBSERVER {
        let channel = lab.host(i).channel().await;
        let count = endpoints / OBSERVER + usize::from(i < endpoints % OBSERVER);
        tasks.push(tokio::spawn(async move {
            let mut api = SandboxServiceClient::new(channel);
            for k in 0..count {
                let sb = api
                    .create_sandbox(CreateSandboxRequest { name: format!("h{}-{k}", i + 1), ..Default::default() })
                    .await?
                    .into_inner();
                api.connect_network(ConnectRequest { sandbox: sb.id, network: "bench".into(), ..Default::default() })
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let fill = fill_started.elapsed();
    // Let the observer's watch catch up before measuring memory.
    let observer_link = format!(
        "vx-{}",
        &nets.inspect_network(cnet_api::v1::NetworkRef { network: "bench".into() }).await?.into_inner().id[..12]
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = lab.host(OBSERVER).ns().run(&format!("bridge fdb show dev {observer_link} | grep -c ' dst '"));
        let n: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
        if n >= endpoints {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the observer programmed only {n} of {endpoints} FDB entries");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let observer_pid = lab.host(OBSERVER).cnetd_pid().expect("observer cnetd");
    let rss = rss_kib(observer_pid);
    let busiest_pid = lab.host(0).cnetd_pid().expect("host1 cnetd");
    let rss_busy = rss_kib(busiest_pid);

    // Propagation: attach on host (s % 9) + 1, reachable from the observer.
    eprintln!("measuring propagation ({samples} samples)");
    let (target_tx, target_rx) = mpsc::channel();
    let (reply_tx, reply_rx) = mpsc::channel();
    let holder = lab.host(OBSERVER).ns().pid();
    observer_thread(format!("/proc/{holder}/root{}", observer.netns_path).into(), target_rx, reply_tx);
    let mut apis = Vec::new();
    for i in 0..OBSERVER {
        apis.push(SandboxServiceClient::new(lab.host(i).channel().await));
    }
    let (mut from_return, mut from_call, mut attach) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..samples {
        let api = &mut apis[s % OBSERVER];
        let sb = api.create_sandbox(CreateSandboxRequest::default()).await?.into_inner();
        let called = Instant::now();
        let ep = api
            .connect_network(ConnectRequest { sandbox: sb.id.clone(), network: "bench".into(), ..Default::default() })
            .await?
            .into_inner();
        let returned = Instant::now();
        let ip: Ipv4Addr = addr_of(&ep.ipv4_address).parse()?;
        target_tx.send(ip)?;
        let answered = tokio::task::block_in_place(|| reply_rx.recv_timeout(Duration::from_secs(10)))
            .map_err(|_| anyhow::anyhow!("{ip} never answered the observer"))?;
        from_return.push(answered.saturating_duration_since(returned));
        from_call.push(answered - called);
        attach.push(returned - called);
        api.remove_sandbox(SandboxRef { sandbox: sb.id }).await?;
    }
    for v in [&mut from_return, &mut from_call, &mut attach] {
        v.sort();
    }

    // iperf3: container on host1 -> container on host2, and host1 -> host2 over the underlay.
    eprintln!("iperf3");
    if std::env::var_os("UNDERLAY_GRO").is_some_and(|v| !v.is_empty()) {
        // A real NIC aggregates received packets (GRO); a veth does only when asked to.
        for i in 0..2 {
            lab.host(i).ns().run_ok("ethtool -K eth0 gro on");
        }
    }
    let mut a1 = SandboxServiceClient::new(lab.host(0).channel().await);
    let mut a2 = SandboxServiceClient::new(lab.host(1).channel().await);
    let c1 = a1
        .create_sandbox(CreateSandboxRequest { name: "iperf-client".into(), ..Default::default() })
        .await?
        .into_inner();
    a1.connect_network(ConnectRequest { sandbox: c1.id.clone(), network: "bench".into(), ..Default::default() })
        .await?;
    let c2 = a2
        .create_sandbox(CreateSandboxRequest { name: "iperf-server".into(), ..Default::default() })
        .await?
        .into_inner();
    let c2_ep = a2
        .connect_network(ConnectRequest { sandbox: c2.id.clone(), network: "bench".into(), ..Default::default() })
        .await?
        .into_inner();
    let c2_ip = addr_of(&c2_ep.ipv4_address).to_string();
    let mut underlay_server = lab
        .host(1)
        .ns()
        .cmd("iperf3")
        .arg("-s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut container_server = lab
        .host(1)
        .in_netns(&c2.netns_path, "iperf3")
        .arg("-s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut direct, mut overlay) = (Vec::new(), Vec::new());
    let runs: usize = std::env::var("IPERF_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    for _ in 0..runs {
        let out = lab.host(0).ns().run_ok(&format!("iperf3 -c {} -t {iperf_secs} -J", lab.address(1)));
        direct.push(iperf_gbps(&out));
        let out = lab.host(0).run_in_ok(&c1.netns_path, &format!("iperf3 -c {c2_ip} -t {iperf_secs} -J"));
        overlay.push(iperf_gbps(&out));
    }
    let _ = container_server.kill();
    let _ = container_server.wait();
    let _ = underlay_server.kill();
    let _ = underlay_server.wait();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (d, o) = (median(&mut direct), median(&mut overlay));

    println!("## overlay: {HOSTS} hosts, {endpoints} endpoints (+1 observer), one run\n");
    println!("- filling {endpoints} endpoints over 9 hosts at once: {:.1} s", fill.as_secs_f64());
    println!("\n| propagation ({samples} samples) | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (what, v) in [
        ("ConnectNetwork returned -> observer on another host gets a reply", &from_return),
        ("ConnectNetwork called -> reply", &from_call),
        ("ConnectNetwork itself (lease in etcd, attach, register)", &attach),
    ] {
        println!(
            "| {what} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |",
            percentile(v, 0.5).as_secs_f64() * 1e3,
            percentile(v, 0.9).as_secs_f64() * 1e3,
            percentile(v, 0.99).as_secs_f64() * 1e3,
            v.last().unwrap().as_secs_f64() * 1e3
        );
    }
    println!("\n| memory | RSS |");
    println!("|---|---|");
    println!("| cnetd on the observer host (1 local endpoint, {endpoints} remote) | {:.1} MiB |", rss as f64 / 1024.0);
    println!(
        "| cnetd on host1 ({} local endpoints, the rest remote) | {:.1} MiB |",
        endpoints / OBSERVER + 1,
        rss_busy as f64 / 1024.0
    );
    println!("\n| iperf3, {iperf_secs} s x {runs}, medians | Gbit/s |");
    println!("|---|---|");
    println!("| host1 -> host2 over the underlay | {d:.2} |");
    println!(
        "| container on host1 -> container on host2 over VXLAN | {o:.2} ({:.0} % of the underlay) |",
        o / d * 100.0
    );
    println!("\nall runs: underlay {direct:?}, overlay {overlay:?}");
    drop(lab);
    Ok(())
}
