//! Connect latency: the time of CreateSandbox + ConnectNetwork (a namespace, a veth pair, an
//! address, a route, a store transaction) on a bridge network that already holds 1, 100 and 1000
//! endpoints, and cnetd's resident memory with 1000 endpoints.
//!
//! Runs a release cnetd inside its own namespaces with the test kit (nothing touches the host):
//!     cargo build --release --bins -p cnetd -p cnet
//!     CNET_BIN_DIR=target/release cargo run --release -p cnet-benches --bin connect-latency [-- SAMPLES]

use std::time::{Duration, Instant};

use cnet_api::v1::network_service_client::NetworkServiceClient;
use cnet_api::v1::sandbox_service_client::SandboxServiceClient;
use cnet_api::v1::{ConnectRequest, CreateNetworkRequest, CreateSandboxRequest, Ipam, IpamConfig, SandboxRef};
use cnet_tests::TestHost;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let samples: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let mut host = TestHost::new();
    host.start_cnetd();
    let channel = host.channel().await;
    let mut nets = NetworkServiceClient::new(channel.clone());
    let mut sandboxes = SandboxServiceClient::new(channel);
    nets.create_network(CreateNetworkRequest {
        name: "bench".into(),
        ipam: Some(Ipam {
            driver: "default".into(),
            config: vec![IpamConfig { subnet: "10.128.0.0/16".into(), ..Default::default() }],
        }),
        ..Default::default()
    })
    .await?;

    let mut filler: Vec<String> = Vec::new();
    async fn connect_one(sandboxes: &mut SandboxServiceClient<tonic::transport::Channel>) -> anyhow::Result<String> {
        let sb = sandboxes.create_sandbox(CreateSandboxRequest::default()).await?.into_inner();
        sandboxes
            .connect_network(ConnectRequest { sandbox: sb.id.clone(), network: "bench".into(), ..Default::default() })
            .await?;
        Ok(sb.id)
    }

    println!("| endpoints already on the network | samples | median | p99 | cnetd RSS |");
    println!("|---|---|---|---|---|");
    for target in [1usize, 100, 1000] {
        while filler.len() < target {
            filler.push(connect_one(&mut sandboxes).await?);
        }
        let mut times = Vec::with_capacity(samples);
        let mut made = Vec::with_capacity(samples);
        for _ in 0..samples {
            let t = Instant::now();
            made.push(connect_one(&mut sandboxes).await?);
            times.push(t.elapsed());
        }
        let rss = rss_kib(host.cnetd_pid().expect("cnetd is running"));
        for id in made {
            sandboxes.remove_sandbox(SandboxRef { sandbox: id }).await?;
        }
        times.sort();
        println!(
            "| {target} | {samples} | {:.2} ms | {:.2} ms | {:.1} MiB |",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            rss as f64 / 1024.0
        );
    }
    let t = Instant::now();
    for id in filler.drain(..) {
        sandboxes.remove_sandbox(SandboxRef { sandbox: id }).await?;
    }
    println!("\nremoving 1000 sandboxes took {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}
