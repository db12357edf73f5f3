//! What one attach costs in the kernel, by the two ways cnet-kernel can make a container's veth:
//! made beside a bridge and moved into the sandbox (`create_veth_on_bridge` + `move_into_sandbox`),
//! or made with its peer already inside the sandbox (`create_veth_in_sandbox`, what the bridge
//! driver does). Runs as root in a network namespace of its own (nothing reaches the host's),
//! alternating the two ways N times each, and prints their medians and p99.
//!
//! `cargo run --release -p cnet-benches --bin kernel-attach -- [N]` (default 30)

use std::net::Ipv4Addr;
use std::time::Instant;

use anyhow::{Context, Result};
use cnet_benches::percentile;
use cnet_kernel::{InterfaceConfig, Kernel, NetnsHandle, netns};
use ipnetwork::IpNetwork;
use nix::sched::{CloneFlags, unshare};

fn main() -> Result<()> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().with_context(|| format!("N must be a count, not {arg:?}"))?,
        None => 30,
    };
    anyhow::ensure!(nix::unistd::geteuid().is_root(), "kernel-attach needs root (it unshares a network namespace)");
    unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
    let dir = tempfile::Builder::new().prefix("cnet-kernel-attach-").tempdir()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let result = runtime.block_on(measure(n, dir.path()));
    // The bind mounts of the sandboxes' namespaces live in the host's mount namespace.
    for entry in std::fs::read_dir(dir.path())? {
        let path = entry?.path();
        netns::remove(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    result
}

async fn measure(n: usize, dir: &std::path::Path) -> Result<()> {
    let k = Kernel::connect().await?;
    k.ensure_bridge("kab0", None).await?;
    k.add_address("kab0", "10.92.0.1/16".parse()?).await?;
    let gateway: Ipv4Addr = "10.92.0.1".parse()?;
    let (mut moved, mut created) = (Vec::new(), Vec::new());
    for i in 0..2 * n {
        let sandbox = dir.join(format!("sb-{i}"));
        netns::create(&sandbox)?;
        let address: IpNetwork = format!("10.92.{}.{}/16", i / 200, 2 + i % 200).parse()?;
        let cfg = InterfaceConfig {
            name: "eth0".into(),
            addresses: vec![address],
            gateway_v4: Some(gateway),
            ..Default::default()
        };
        let host = format!("vethk{i:04}");
        let started = Instant::now();
        if i % 2 == 0 {
            let peer = format!("kpeer{i:04}");
            k.create_veth_on_bridge(&host, &peer, "kab0", None).await?;
            k.move_into_sandbox(&peer, &sandbox, &cfg).await?;
            moved.push(started.elapsed());
        } else {
            let ns = NetnsHandle::open(&sandbox).await?;
            k.create_veth_in_sandbox(&host, "kab0", &ns, &cfg).await?;
            created.push(started.elapsed());
        }
    }
    for (what, samples) in [("create + move into sandbox", &mut moved), ("create in sandbox", &mut created)] {
        samples.sort();
        println!("{what:>28}: median {:?}, p99 {:?} over {n}", percentile(samples, 0.5), percentile(samples, 0.99));
    }
    Ok(())
}
