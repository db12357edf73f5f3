//! Chaos: N cycles of `cnet run` and `cnet rm` on a bridge network with a published port, while
//! `kill -9` hits cnetd, the CLI or a container's supervisor at random moments; then cnetd runs
//! again, the runtime looks once (`cnet ps -a`), every container still listed is removed as a
//! user would, and every kind of leftover is counted. The goal is zero of each.
//!
//! A kill of the CLI or of cnetd may leave a complete container that the user sees and removes
//! (Docker leaves those too): they are counted as "visible", not as leaks. Everything else is a
//! leak: a sandbox, endpoint, name claim, container directory, namespace file, veth or DNAT
//! element that nothing shows.
//!
//! Runs a release build inside its own namespaces with the test kit (nothing touches the host):
//!     cargo build --release --bins -p cnetd -p cnet
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin chaos [-- CYCLES [KILL_ONE_IN]]

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cnet_tests::{SIGKILL, TestHost, bin};

/// A small xorshift generator: the run's seed is printed, so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `cnet ARGS…` against the host's cnetd, started, not waited for (no `timeout` wrapper: the pid
/// is the CLI's own, for kill -9).
fn cli(host: &TestHost, args: &[&str]) -> Child {
    host.ns()
        .cmd(bin("cnet"))
        .arg("-H")
        .arg(host.socket())
        .arg("--root")
        .arg(host.runtime_dir())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cnet")
}

/// Waits for a CLI, killing it after 60 s (a hung CLI is a finding too).
fn finish(mut child: Child, hung: &mut u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait for cnet") {
            return status.success();
        }
        if Instant::now() > deadline {
            *hung += 1;
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The pid of some running supervisor, from the containers' state files.
fn some_supervisor(runtime: &Path, rng: &mut Rng) -> Option<i32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(runtime.join("containers")).ok()?.flatten() {
        let Ok(text) = std::fs::read(entry.path().join("state.json")) else { continue };
        let Ok(state) = serde_json::from_slice::<serde_json::Value>(&text) else { continue };
        if let Some(pid) = state["supervisor_pid"].as_i64().filter(|p| *p > 0) {
            pids.push(pid as i32);
        }
    }
    (!pids.is_empty()).then(|| pids[rng.below(pids.len() as u64) as usize])
}

fn kill9(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
}

fn main() -> anyhow::Result<()> {
    let cycles: u32 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let kill_one_in: u64 = std::env::args().nth(2).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64 | 1;
    let mut rng = Rng(seed);
    let mut host = TestHost::new();
    host.start_cnetd();
    let ok = |host: &TestHost, args: &[&str]| {
        let out = host.cnet(args);
        assert!(out.status.success(), "cnet {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ok(&host, &["network", "create", "--subnet", "10.99.0.0/16", "chaos"]);

    let (mut kills_cnetd, mut kills_cli, mut kills_supervisor, mut failed, mut hung) = (0u32, 0u32, 0u32, 0u32, 0u32);
    let started = Instant::now();
    for cycle in 0..cycles {
        let name = format!("c{}", cycle % 50);
        let port = format!("{}:80", 20000 + cycle % 50);
        // Even cycles: a detached container and its removal; odd ones: a foreground `--rm` run.
        let steps: Vec<Vec<&str>> = if cycle % 2 == 0 {
            vec![
                vec!["run", "-d", "--name", &name, "--network", "chaos", "-p", &port, "busybox", "sleep", "30"],
                vec!["rm", "-f", &name],
            ]
        } else {
            vec![vec!["run", "--rm", "--name", &name, "--network", "chaos", "-p", &port, "busybox", "true"]]
        };
        for args in steps {
            let mut child = cli(&host, &args);
            if rng.below(kill_one_in) == 0 {
                std::thread::sleep(Duration::from_micros(rng.below(40_000)));
                match rng.below(4) {
                    0 | 1 => {
                        host.kill_cnetd(SIGKILL);
                        kills_cnetd += 1;
                        if !finish(child, &mut hung) {
                            failed += 1;
                        }
                        host.start_cnetd();
                        continue;
                    }
                    2 => {
                        let _ = child.kill();
                        kills_cli += 1;
                    }
                    _ => {
                        if let Some(pid) = some_supervisor(&host.runtime_dir(), &mut rng) {
                            kill9(pid);
                            kills_supervisor += 1;
                        }
                    }
                }
            }
            if !finish(child, &mut hung) {
                failed += 1;
            }
        }
        // A user whose `run` failed removes what is left by that name before going on, as a
        // script would (a name that is free is an error, and ignored).
        let _ = host.cnet(&["rm", "-f", &name]);
    }
    let elapsed = started.elapsed();

    // cnetd runs again (a fresh start, as after any crash), the runtime looks once, the user
    // removes what is listed.
    host.kill_cnetd(SIGKILL);
    host.start_cnetd();
    let listed = host.cnet(&["ps", "-aq"]);
    let visible: Vec<String> = String::from_utf8_lossy(&listed.stdout).lines().map(String::from).collect();
    for id in &visible {
        ok(&host, &["rm", "-f", id]);
    }

    let sandboxes = host.sandbox_ids().len();
    let endpoints = host.network_containers("chaos").len();
    let names = host.name_claims().len();
    let dirs = host.container_dirs().len();
    let netns = host.netns_files().into_iter().filter(|f| f != "host").count();
    let veths = host.links_starting("veth").len();
    // Every mention of a container address in the table is a published port's element (DNAT
    // maps, `published4`); the network's own subnet is its only other mention.
    let table = host.nft_table();
    let port_elements = table.matches("10.99.").count() - table.matches("10.99.0.0/16").count();

    println!("seed {seed}: {cycles} cycles in {:.0} s", elapsed.as_secs_f64());
    println!(
        "kills: cnetd {kills_cnetd}, CLI {kills_cli}, supervisor {kills_supervisor}; commands failed {failed}, hung {hung}"
    );
    println!("containers left visible (removed by hand at the end, not leaks): {}", visible.len());
    println!("| leak | count |");
    println!("|---|---|");
    for (what, n) in [
        ("sandboxes", sandboxes),
        ("endpoints (leases) on the network", endpoints),
        ("container name claims", names),
        ("container directories", dirs),
        ("namespace files (besides cnetd's own)", netns),
        ("veths in the host namespace", veths),
        ("published-port elements in nftables", port_elements),
    ] {
        println!("| {what} | {n} |");
    }
    let leaks = sandboxes + endpoints + names + dirs + netns + veths + port_elements;
    println!("total leaks: {leaks}");
    Ok(())
}
