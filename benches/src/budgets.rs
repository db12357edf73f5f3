//! The time budgets cnet promises, measured here instead of asserted in tests (where load on the
//! machine would make them flaky). Each row runs SAMPLES times (default 5) and prints the median
//! and the maximum:
//!
//! - `cnetd stop (SIGTERM, client connected)`: from SIGTERM until cnetd has exited, with a gRPC
//!   client connected and a sandbox attached (README: stops within 3 s even with clients);
//! - `DNS SERVFAIL, upstream black hole`: `dig` from a container whose only upstream never answers
//!   (a neighbour that does not exist), until the embedded resolver's SERVFAIL arrives (budget 2 s);
//! - `cnet stop -t 2 (TERM ignored)`: the CLI's stop of a container that traps TERM (grace period
//!   2 s, then KILL);
//! - `overlay attach, etcd down`: ConnectNetwork on an overlay network while etcd is stopped, until
//!   it fails with UNAVAILABLE (etcd calls are bounded at 4 s; at once when the session is known
//!   to be down).
//!
//! Everything runs in namespaces of the test kit; nothing touches the host.
//!     cargo build --release --bins
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin budgets [-- SAMPLES]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use cnet_api::v1::{ConnectRequest, CreateNetworkRequest};
use cnet_benches::percentile;
use cnet_tests::{Lab, SIGTERM, TestHost, Upstream};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let samples: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().with_context(|| format!("SAMPLES must be a count, not {arg:?}"))?,
        None => 5,
    };
    println!("| budget | samples | median | max |");
    println!("|---|---|---|---|");
    row("cnetd stop (SIGTERM, client connected)", samples, cnetd_stop(samples).await?);
    row("DNS SERVFAIL, upstream black hole", samples, servfail(samples).await?);
    row("cnet stop -t 2 (TERM ignored)", samples, cli_stop(samples)?);
    row("overlay attach, etcd down", samples, overlay_attach_with_etcd_down(samples).await?);
    Ok(())
}

fn row(what: &str, samples: usize, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    println!("| {what} | {samples} | {} | {} |", ms(percentile(&times, 0.5)), ms(percentile(&times, 1.0)));
}

async fn cnetd_stop(samples: usize) -> Result<Vec<Duration>> {
    let mut host = TestHost::new();
    let mut times = Vec::new();
    for _ in 0..samples {
        host.start_cnetd();
        let mut api = host.api().await;
        if !api.network_names().await.contains(&"n1".to_string()) {
            host.cnet_ok(&["network", "create", "n1"]);
        }
        let name = format!("s{}", times.len());
        api.sandbox_on(&name, "n1").await;
        let started = Instant::now();
        let (status, back) = tokio::task::spawn_blocking(move || (host.kill_cnetd(SIGTERM), host)).await?;
        times.push(started.elapsed());
        host = back;
        ensure!(status.success(), "cnetd exited with {status} on SIGTERM");
        drop(api);
    }
    Ok(times)
}

async fn servfail(samples: usize) -> Result<Vec<Duration>> {
    let mut host = TestHost::new();
    let _upstream = Upstream::new(&host);
    // On the upstream's link, but nobody has it: queries to it vanish.
    host.start_cnetd_with(&["--dns", "198.51.100.99"]);
    let mut api = host.api().await;
    host.cnet_ok(&["network", "create", "n1"]);
    let (sandbox, _) = api.sandbox_on("asker", "n1").await;
    let mut times = Vec::new();
    for i in 0..samples {
        let started = Instant::now();
        let out = host.run_in(&sandbox.netns_path, &format!("dig +time=5 +tries=1 @127.0.0.11 q{i}.example.test"));
        times.push(started.elapsed());
        let text = String::from_utf8_lossy(&out.stdout);
        ensure!(text.contains("status: SERVFAIL"), "no SERVFAIL: {text}");
    }
    Ok(times)
}

fn cli_stop(samples: usize) -> Result<Vec<Duration>> {
    let host = TestHost::with_cnetd();
    let mut times = Vec::new();
    for i in 0..samples {
        let name = format!("stubborn{i}");
        host.cnet_ok(&["run", "-d", "--name", &name, "busybox", "sh", "-c", "trap '' TERM; sleep 1000"]);
        let started = Instant::now();
        host.cnet_ok(&["stop", "-t", "2", &name]);
        times.push(started.elapsed());
        ensure!(host.inspect(&name)["State"]["ExitCode"] == 137, "{name} was not killed");
        host.cnet_ok(&["rm", &name]);
    }
    Ok(times)
}

async fn overlay_attach_with_etcd_down(samples: usize) -> Result<Vec<Duration>> {
    let mut lab = Lab::new(1);
    lab.start_cnetd(0);
    let mut api = lab.host(0).api().await;
    api.networks
        .create_network(CreateNetworkRequest { name: "ov".into(), driver: "overlay".into(), ..Default::default() })
        .await?;
    lab.etcd_mut().stop();
    let mut times = Vec::new();
    for i in 0..samples {
        let sandbox = api.create_sandbox(&format!("late{i}")).await;
        let started = Instant::now();
        let result = api
            .sandboxes
            .connect_network(ConnectRequest { sandbox: sandbox.id.clone(), network: "ov".into(), ..Default::default() })
            .await;
        times.push(started.elapsed());
        let err = result.err().context("an overlay attach succeeded with etcd down")?;
        ensure!(err.code() == tonic::Code::Unavailable, "{err:?}");
    }
    Ok(times)
}
