//! The memory of a container's supervisor (`cnet-supervise`), the one cnet process that runs per
//! container for the container's whole life: COUNT containers (`busybox sleep`) on a user network,
//! then each supervisor's PSS, private dirty memory and RSS from `/proc/PID/smaps_rollup`
//! (median, min, max). PSS divides shared pages (the binary's text, libc) among the processes
//! that map them, so it falls as containers are added; private dirty is what each one costs alone.
//! With `--conmon`, the conmon processes running on the machine (Podman's, started by
//! ../shared/peers) are measured the same way, for the side-by-side figure.
//!
//!     cargo build --release --bins
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin supervisor-memory [-- COUNT]

use anyhow::{Context, Result, bail};
use cnet_tests::TestHost;

/// One process's figures in KiB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    pss: u64,
    private_dirty: u64,
    rss: u64,
}

fn memory_of(pid: i32) -> Result<Memory> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let field = |name: &str| -> Result<u64> {
        let line = text.lines().find(|l| l.starts_with(name)).with_context(|| format!("{path} has no {name} line"))?;
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).with_context(|| format!("{path}: {line:?}"))
    };
    Ok(Memory { pss: field("Pss:")?, private_dirty: field("Private_Dirty:")?, rss: field("Rss:")? })
}

/// The pids of the running processes whose program's file name is `name`.
fn pids_named(name: &str) -> Result<Vec<i32>> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").context("listing /proc")? {
        let entry = entry.context("listing /proc")?;
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let program = cmdline.split(|b| *b == 0).next().and_then(|a| a.rsplit(|b| *b == b'/').next());
        if program == Some(name.as_bytes()) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

fn row(what: &str, figures: &[Memory]) {
    let stat = |f: fn(&Memory) -> u64| {
        let mut v: Vec<u64> = figures.iter().map(f).collect();
        v.sort_unstable();
        format!("{} ({}-{})", v[v.len() / 2], v[0], v[v.len() - 1])
    };
    println!(
        "| {what} | {} | {} | {} | {} |",
        figures.len(),
        stat(|m| m.pss),
        stat(|m| m.private_dirty),
        stat(|m| m.rss)
    );
}

fn main() -> Result<()> {
    let mut count = 20usize;
    let mut conmon = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--conmon" => conmon = true,
            n => count = n.parse().with_context(|| format!("COUNT must be a number, not {n:?}"))?,
        }
    }
    let mut host = TestHost::new();
    host.start_cnetd();
    host.cnet_ok(&["network", "create", "net"]);
    for i in 0..count {
        host.cnet_ok(&["run", "-d", "--network", "net", "--name", &format!("c{i}"), "busybox", "sleep", "100000"]);
    }
    // The supervisors of this host's containers (their pids are in the containers' state files).
    let mut supervisors = Vec::new();
    for id in host.container_dirs() {
        let path = host.runtime_dir().join("containers").join(id).join("state.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let state: serde_json::Value = serde_json::from_str(&text)?;
        let pid = state["supervisor_pid"].as_i64().context("state.json without supervisor_pid")? as i32;
        supervisors.push(memory_of(pid)?);
    }
    if supervisors.len() != count {
        bail!("{} supervisors found for {count} containers", supervisors.len());
    }
    println!("| process | count | PSS KiB median (min-max) | private dirty KiB | RSS KiB |\n|---|---|---|---|---|");
    row("cnet-supervise", &supervisors);
    if conmon {
        let figures: Vec<Memory> = pids_named("conmon")?.into_iter().map(memory_of).collect::<Result<_>>()?;
        if figures.is_empty() {
            bail!("--conmon: no conmon is running (start Podman containers first)");
        }
        row("conmon (running on this machine)", &figures);
    }
    let mut rm = vec!["rm".to_string(), "-f".to_string()];
    rm.extend((0..count).map(|i| format!("c{i}")));
    host.cnet_ok(&rm.iter().map(String::as_str).collect::<Vec<_>>());
    host.cnet_ok(&["network", "rm", "net"]);
    Ok(())
}
