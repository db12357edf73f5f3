//! Connect latency: the time of CreateSandbox + ConnectNetwork (a namespace, a veth pair, an
//! address, a route, a store transaction) on a bridge network that already holds 1, 100 and 1000
//! endpoints, and cnetd's resident memory with 1000 endpoints.
//!
//! Runs a release cnetd inside its own namespaces with the test kit (nothing touches the host):
//!     cargo build --release --bins -p cnetd -p cnet
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin connect-latency [-- SAMPLES [SETTLE_MS]]

use std::time::{Duration, Instant};

use cnet_api::v1::network_service_client::NetworkServiceClient;
use cnet_api::v1::sandbox_service_client::SandboxServiceClient;
use cnet_api::v1::{ConnectRequest, CreateSandboxRequest, SandboxRef};
use cnet_benches::{network_with_subnet, percentile, rss_kib};
use cnet_tests::TestHost;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let samples: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(100);
    let settle = Duration::from_millis(std::env::args().nth(2).map(|s| s.parse()).transpose()?.unwrap_or(0));
    let mut host = TestHost::new();
    host.start_cnetd();
    let channel = host.channel().await;
    let mut nets = NetworkServiceClient::new(channel.clone());
    let mut sandboxes = SandboxServiceClient::new(channel);
    nets.create_network(network_with_subnet("bench", "", "10.128.0.0/16")).await?;

    let mut filler: Vec<String> = Vec::new();
    /// One connect; returns the sandbox id and the time of its two calls.
    async fn connect_one(
        sandboxes: &mut SandboxServiceClient<tonic::transport::Channel>,
    ) -> anyhow::Result<(String, Duration, Duration)> {
        let t = Instant::now();
        let sb = sandboxes.create_sandbox(CreateSandboxRequest::default()).await?.into_inner();
        let created = t.elapsed();
        let t = Instant::now();
        sandboxes
            .connect_network(ConnectRequest { sandbox: sb.id.clone(), network: "bench".into(), ..Default::default() })
            .await?;
        Ok((sb.id, created, t.elapsed()))
    }

    println!(
        "| endpoints already on the network | samples | connect median | connect p99 | of which CreateSandbox (median) | of which ConnectNetwork (median) | cnetd RSS |"
    );
    println!("|---|---|---|---|---|---|---|");
    for target in [1usize, 100, 1000] {
        while filler.len() < target {
            filler.push(connect_one(&mut sandboxes).await?.0);
        }
        let (mut total, mut create, mut join) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..samples {
            let (id, c, j) = connect_one(&mut sandboxes).await?;
            total.push(c + j);
            create.push(c);
            join.push(j);
            // Removed at once, so every sample sees exactly `target` endpoints (and a bridge stays
            // under the kernel's 1024 ports).
            sandboxes.remove_sandbox(SandboxRef { sandbox: id }).await?;
            // The kernel frees a namespace's devices asynchronously after removal, under the
            // rtnl lock; let that finish so it is not counted in the next sample.
            tokio::time::sleep(settle).await;
        }
        let rss = rss_kib(host.cnetd_pid().expect("cnetd is running"));
        for v in [&mut total, &mut create, &mut join] {
            v.sort();
        }
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
        println!(
            "| {target} | {samples} | {} | {} | {} | {} | {:.1} MiB |",
            ms(percentile(&total, 0.5)),
            ms(percentile(&total, 0.99)),
            ms(percentile(&create, 0.5)),
            ms(percentile(&join, 0.5)),
            rss as f64 / 1024.0
        );
    }
    let t = Instant::now();
    for id in filler.drain(..) {
        sandboxes.remove_sandbox(SandboxRef { sandbox: id }).await?;
    }
    if let Some(path) = std::env::var_os("CNET_BENCH_KEEP_LOG") {
        std::fs::write(path, host.log())?;
    }
    println!("\nremoving 1000 sandboxes took {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}
