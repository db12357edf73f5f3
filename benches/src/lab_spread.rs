//! One lab over three simulated hosts: 60 busybox nodes (20 per host) and 90 links, a ring of 20
//! on each host (60 veth pairs) and 30 across hosts (VXLAN tunnels: host1's nodes 1-10 to host2's
//! 21-30, those to host3's 41-50, those back to host1's 1-10), a /31 on every link. Deployed from
//! host1 with one `cnet lab deploy` (timed until every host reported), checked with a ping over
//! one link across hosts, then destroyed with one `cnet lab destroy` (timed).
//!
//! Runs a release build inside its own namespaces with the test kit (nothing touches the host):
//!     cargo build --release --bins
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin lab-spread [-- ROUNDS]

use std::fmt::Write as _;
use std::time::Instant;

use cnet_benches::{percentile, timed};
use cnet_tests::Lab;

const PER_HOST: usize = 20;
const HOSTS: usize = 3;

/// The lab file described above.
pub fn lab_file() -> String {
    let mut out = String::from("name: spread\ntopology:\n  defaults: {image: busybox, cmd: sleep 100000}\n  nodes:\n");
    for i in 1..=PER_HOST * HOSTS {
        let _ = writeln!(out, "    n{i}: {{host: host{}}}", (i - 1) / PER_HOST + 1);
    }
    out.push_str("  links:\n");
    let mut links = cnet_benches::LabLinks::default();
    let mut link = |out: &mut String, a: usize, ai: &str, b: usize, bi: &str| links.write(out, a, ai, b, bi);
    for h in 0..HOSTS {
        let first = h * PER_HOST + 1;
        for i in 0..PER_HOST {
            link(&mut out, first + i, "eth1", first + (i + 1) % PER_HOST, "eth2");
        }
    }
    for i in 1..=PER_HOST / 2 {
        link(&mut out, i, "eth3", i + PER_HOST, "eth3");
        link(&mut out, i + PER_HOST, "eth4", i + 2 * PER_HOST, "eth3");
        link(&mut out, i + 2 * PER_HOST, "eth4", i, "eth4");
    }
    out
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let mut cluster = Lab::new(HOSTS);
    cluster.start_all();
    let file = cluster.host(0).dir().join("spread.yml");
    std::fs::write(&file, lab_file())?;
    let file = file.display().to_string();
    let (mut deploys, mut destroys) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let start = Instant::now();
        let out = cluster.host(0).cnet_ok(&["lab", "deploy", "-t", &file]);
        deploys.push(start.elapsed());
        anyhow::ensure!(out.lines().filter(|l| l.starts_with('n')).count() == PER_HOST * HOSTS, "deploy:\n{out}");
        // n1 (host1) to n21 (host2) over their VXLAN link: 10.<100>.<60>.1 is n21's end of link 60.
        let ping = cluster.host(0).cnet(&["exec", "clab-spread-n1", "ping", "-c", "1", "-W", "2", "10.100.60.1"]);
        anyhow::ensure!(ping.status.success(), "n1 does not reach n21 across hosts");
        destroys.push(timed(cluster.host(0), &["lab", "destroy", "--name", "spread"]));
        let secs = |v: &[std::time::Duration]| v[round - 1].as_secs_f64();
        println!("round {round}: deploy {:.1} s, destroy {:.1} s", secs(&deploys), secs(&destroys));
    }
    println!();
    println!("| 3 hosts, 60 nodes, 90 links (30 across hosts) | median | max |");
    println!("|---|---|---|");
    for (what, mut v) in [("lab deploy (one command)", deploys), ("lab destroy (one command)", destroys)] {
        v.sort();
        let (median, max) = (percentile(&v, 0.5).as_secs_f64(), v[v.len() - 1].as_secs_f64());
        println!("| {what} | {median:.1} s | {max:.1} s |");
    }
    Ok(())
}
