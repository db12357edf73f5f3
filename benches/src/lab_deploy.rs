//! Lab deploy, destroy and apply: a 20-node/30-link lab (a ring of 20 busybox nodes and 10 chords,
//! a /31 on every link) deployed and destroyed with `cnet lab`, then, on the deployed lab, the
//! apply of one added link while a node pings its ring neighbour every 10 ms over an untouched
//! link (the lost replies are counted).
//!
//! Runs a release build inside its own namespaces with the test kit (nothing touches the host):
//!     cargo build --release --bins -p cnetd -p cnet
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin lab-deploy [-- ROUNDS]
//!
//! `benches/peers/lab-docker.sh` builds the same lab with `docker run` and veth pairs wired by hand,
//! the way containerlab does on Docker, for the side-by-side figure.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Duration;

use cnet_benches::{percentile, timed};
use cnet_tests::{TestHost, bin};

const NODES: usize = 20;

/// The lab file: node i links to i+1 (a ring) on its eth1/eth2, and nodes 1-10 to 11-20 on eth3.
pub fn lab_file(extra_link: bool) -> String {
    let mut out = String::from("name: bench\ntopology:\n  defaults: {image: busybox, cmd: sleep 100000}\n  nodes:\n");
    for i in 1..=NODES {
        let _ = writeln!(out, "    n{i}: {{}}");
    }
    out.push_str("  links:\n");
    let mut links = cnet_benches::LabLinks::default();
    let mut link = |out: &mut String, a: usize, ai: &str, b: usize, bi: &str| links.write(out, a, ai, b, bi);
    for i in 1..=NODES {
        link(&mut out, i, "eth1", i % NODES + 1, "eth2");
    }
    for i in 1..=NODES / 2 {
        link(&mut out, i, "eth3", i + NODES / 2, "eth3");
    }
    if extra_link {
        link(&mut out, 1, "eth4", 2, "eth4");
    }
    out
}

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let mut host = TestHost::new();
    host.start_cnetd();
    let file = host.dir().join("bench.yml");
    let file2 = host.dir().join("bench2.yml");
    std::fs::write(&file, lab_file(false))?;
    std::fs::write(&file2, lab_file(true))?;
    let (file, file2) = (file.display().to_string(), file2.display().to_string());

    let (mut deploys, mut destroys, mut applies) = (Vec::new(), Vec::new(), Vec::new());
    let mut lost = Vec::new();
    for _ in 0..rounds {
        deploys.push(timed(&host, &["lab", "deploy", "-t", &file]));
        // n1 pings n2 (n1:eth1 - n2:eth2, 10.100.0.1) every 10 ms while a link is added.
        let ping = host
            .ns()
            .cmd(bin("cnet"))
            .arg("-H")
            .arg(host.socket())
            .arg("--root")
            .arg(host.runtime_dir())
            .args(["exec", "clab-bench-n1", "ping", "-i", "0.01", "-c", "300", "-q", "10.100.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(500));
        applies.push(timed(&host, &["lab", "apply", "-t", &file2]));
        let out = ping.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let received = text
            .split(", ")
            .find(|s| s.ends_with("packets received"))
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| anyhow::anyhow!("no ping summary in {text:?}"))?;
        lost.push(300 - received);
        destroys.push(timed(&host, &["lab", "destroy", "--name", "bench"]));
    }
    for v in [&mut deploys, &mut destroys, &mut applies] {
        v.sort();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| lab of {NODES} nodes / 30 links, {rounds} rounds | median | max |");
    println!("|---|---|---|");
    for (what, v) in [("deploy", &deploys), ("destroy", &destroys), ("apply of one added link", &applies)] {
        println!("| {what} | {:.0} ms | {:.0} ms |", ms(percentile(v, 0.5)), ms(*v.last().unwrap()));
    }
    println!("| pings lost on an untouched link during the apply (300 at 10 ms each round) | {lost:?} | |");
    Ok(())
}
