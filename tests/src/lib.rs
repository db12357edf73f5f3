//! The cnet namespace test kit: everything an end-to-end test needs to run cnetd (and later the
//! runtime, DNS, overlay hosts…) without touching the machine it runs on.
//!
//! - [`Ns`]: a fresh network namespace (optionally with a private mount namespace), kept alive by a
//!   holder process and destroyed, with everything in it, when the value is dropped.
//! - [`link`]: a veth pair between two namespaces, addressed and up.
//! - [`TestHost`]: a simulated host (its own netns, mount ns, run and state dirs) running its own
//!   cnetd; [`Api`] is a typed gRPC client of it that panics with readable messages.
//! - [`Lab`]: several [`TestHost`]s joined by an underlay bridge in a namespace of its own, with an
//!   [`Etcd`] (in its own namespace) on that underlay: the multi-host setup of the overlay driver.
//! - [`Upstream`]: "the internet", a namespace with a web server that has no route back to
//!   container subnets, so reaching it from a container proves NAT.
//!
//! Rules the kit keeps, and that tests built on it keep: every test makes its own namespaces and
//! they die with it (a panic included: cleanup is in `Drop`, and every process the kit starts gets
//! `PR_SET_PDEATHSIG`, so even a killed test binary leaves nothing running); nothing is created in
//! the namespace the tests run in; no packet leaves the machine (tests address each other with
//! 198.51.100.0/24, 203.0.113.0/24 and 192.0.2.0/24 inside their own namespaces). Tests that need
//! root panic without it ([`require_root`]); they never silently skip.

mod api;
mod cli;
mod host;
mod lab;
mod ns;
mod proc;
mod upstream;
mod wire;

use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use api::Api;
pub use host::TestHost;
pub use lab::{ETCD_CLIENT_PORT, Etcd, LAB_BRIDGE, LAB_ETCD_ADDR, LAB_MTU, LAB_SUBNET, Lab};
pub use nix::libc::{SIGKILL, SIGTERM};
pub use ns::{Ns, host_links, link, parse_links};
pub use proc::{Bg, spawn_tied};
pub use upstream::Upstream;
pub use wire::{rx_packets_in, vxlan_broadcast_frame};

/// Panics unless the process runs as root: the kit creates namespaces, veths and nft tables.
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "these tests need root: they create network and mount namespaces, veth pairs, bridges \
             and nftables tables (each inside namespaces of their own). Run them as root, e.g. \
             `sudo -E cargo test -p cnet-tests`"
        );
    }
}

/// The path of a workspace binary (`cnetd`, `cnet`, …). Looked up in `$CNET_BIN_DIR` if set, else
/// in the profile directory this test binary was built into, `$CARGO_TARGET_DIR/debug` and
/// `<workspace>/target/debug`. Panics if it is missing: `cargo test -p cnet-tests` does not build
/// the binaries of other crates.
pub fn bin(name: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = match std::env::var_os("CNET_BIN_DIR") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => {
            let mut dirs = Vec::new();
            // target/<profile>/deps/<test binary>
            if let Ok(exe) = std::env::current_exe()
                && let Some(profile) = exe.parent().and_then(|deps| deps.parent())
            {
                dirs.push(profile.to_path_buf());
            }
            let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
                dirs.push(workspace.join(target).join("debug"));
            }
            dirs.push(workspace.join("target").join("debug"));
            dirs
        }
    };
    bin_in(name, &dirs)
}

/// The binary `name` in the first of `dirs` that has it; panics, saying how to build it, if none
/// has.
pub fn bin_in(name: &str, dirs: &[PathBuf]) -> PathBuf {
    for dir in dirs {
        let path = dir.join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "the {name} binary is not in {dirs:?}: build them first: cargo build --workspace --bins \
         (or point CNET_BIN_DIR at the directory holding them)"
    );
}

/// Runs a future to completion on a fresh current-thread runtime on its own thread, so that sync
/// kit code can call async APIs whether or not the caller is itself inside a tokio runtime.
pub fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("build a tokio runtime")
                .block_on(future)
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A shell command that prints the body of `url`, failing if that takes more than `secs` seconds:
/// `timeout SECS busybox wget -q -O - URL`. (Debian 12's busybox 1.35 `wget -T` segfaults, so the
/// time limit comes from coreutils' `timeout` instead.)
pub fn fetch(url: &str, secs: u32) -> String {
    format!("timeout {secs} busybox wget -q -O - {url}")
}

/// The address part of `a.b.c.d/len` (or the input if it has no prefix length).
pub fn addr_of(cidr: &str) -> &str {
    cidr.split('/').next().unwrap_or(cidr)
}

/// The last `lines` lines of `text`, for panic messages.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A name no other test (or earlier run) uses: `prefix` followed by random hex, at most 15
/// characters in all so it fits an interface name.
pub fn unique_name(prefix: &str) -> String {
    let n: u64 = rand::random();
    let mut name = format!("{prefix}{n:016x}");
    name.truncate(15);
    name
}

/// Formats a process output for a panic message.
pub fn describe_output(what: &str, out: &std::process::Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).trim_end(),
        String::from_utf8_lossy(&out.stderr).trim_end()
    )
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

/// Polls `check` every 50 ms until it holds; fails the test, naming `what` it waited for, if it
/// still does not hold after `timeout`. Tests wait for the state they need this way instead of
/// sleeping a fixed time.
pub fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the text of `/proc/net/{tcp,tcp6,udp,udp6}` (several concatenated are fine) shows a
/// socket bound to local `port` that is listening (TCP) or bound and unconnected (UDP): what a
/// test waits for after starting a server, instead of sleeping.
pub fn proc_net_has_listener(proc_net: &str, port: u16) -> bool {
    let suffix = format!(":{port:04X}");
    proc_net.lines().any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st ...; st 0A = TCP LISTEN, 07 = UDP unconnected.
        fields.len() > 3 && fields[1].ends_with(&suffix) && matches!(fields[3], "0A" | "07")
    })
}
