//! Issue 17's figures of the CLI's everyday verbs, on a release build in namespaces of its own:
//! `network create` and `network rm` (SAMPLES each, median and p90), `run --rm busybox true` on a
//! user network against `--network none` (SAMPLES each, with 0 and with FILL running containers on
//! the network), and `rm -f` of FILL containers in one command; then what is left (sandboxes,
//! veths, container directories), which must be nothing.
//!
//!     cargo build --release --bins -p cnetd -p cnet
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin teardown [-- FILL SAMPLES]

use std::time::{Duration, Instant};

use cnet_benches::{percentile, timed};
use cnet_tests::TestHost;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(what: &str, mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    let (p50, p90) = (percentile(&samples, 0.5), percentile(&samples, 0.9));
    println!("| {what} | {:.1} ms | {:.1} ms | {} |", ms(p50), ms(p90), samples.len());
    ms(p50)
}

fn run_rm(host: &TestHost, network: &str, samples: usize) -> Vec<Duration> {
    (0..samples).map(|_| timed(host, &["run", "--rm", "--network", network, "busybox", "true"])).collect()
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let fill: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200);
    let samples: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(30);
    let mut host = TestHost::new();
    host.start_cnetd();

    println!("| figure | median | p90 | samples |\n|---|---|---|---|");
    let (mut creates, mut removes) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let name = format!("n{i}");
        creates.push(timed(&host, &["network", "create", &name]));
        removes.push(timed(&host, &["network", "rm", &name]));
    }
    summary("network create", creates);
    summary("network rm", removes);

    host.cnet_ok(&["network", "create", "net"]);
    // A first run of each warms the image and the caches.
    run_rm(&host, "none", 1);
    run_rm(&host, "net", 1);
    let none = summary("run --rm true, --network none", run_rm(&host, "none", samples));
    let user = summary("run --rm true, user network, 0 running", run_rm(&host, "net", samples));
    println!("| ratio user/none, 0 running | {:.2} | | |", user / none);

    let t = Instant::now();
    let mut names = Vec::with_capacity(fill);
    for i in 0..fill {
        let name = format!("f{i}");
        host.cnet_ok(&["run", "-d", "--network", "net", "--name", &name, "busybox", "sleep", "100000"]);
        names.push(name);
    }
    println!("| run -d of {fill} fillers (total) | {:.0} ms | | |", ms(t.elapsed()));
    let none = summary(&format!("run --rm true, --network none, {fill} running"), run_rm(&host, "none", samples));
    let user = summary(&format!("run --rm true, user network, {fill} running"), run_rm(&host, "net", samples));
    println!("| ratio user/none, {fill} running | {:.2} | | |", user / none);

    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    let took = timed(&host, &rm);
    println!("| rm -f of {fill} containers, one command | {:.0} ms | | 1 |", ms(took));
    let t = Instant::now();
    host.wait_background_work();
    println!("| ... until cnetd's link deletions drained | {:.0} ms more | | |", ms(t.elapsed()));

    host.cnet_ok(&["network", "rm", "net"]);
    let left = (host.sandbox_ids().len(), host.links_starting("veth").len(), host.container_dirs().len());
    println!("| left: sandboxes, veths, container directories | {} {} {} | | |", left.0, left.1, left.2);
    assert_eq!(left, (0, 0, 0), "rm -f left something");
    Ok(())
}
