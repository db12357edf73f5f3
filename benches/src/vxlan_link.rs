//! Cross-host point-to-point links (driver `vxlan`): iperf3 throughput from a container on one
//! simulated host to a container on another over a vxlan link (the containers' interfaces are the
//! VXLAN devices themselves), against host to host over the same underlay, and, for comparison,
//! container to container over an overlay network. Two hosts of the test kit's `Lab` (namespaces on
//! an underlay bridge, etcd in its own namespace); runs alternate (underlay, link, overlay),
//! IPERF_RUNS (default 5) of IPERF_SECS (default 5) seconds each, medians. The goal: the link at
//! 90 % of the underlay or more. IPERF_CC names the TCP congestion control of every run (iperf3
//! `-C`); unset, the runs use the namespaces' default (the host's
//! `net.ipv4.tcp_congestion_control`), and the report says which.
//!
//! Run it with:
//!
//!     cargo build --release --bins
//!     CNET_BIN_DIR=$PWD/target/release cargo run --release -p cnet-benches --bin vxlan-link [-- IPERF_SECS]

use std::time::{Duration, Instant};

use cnet_api::v1::network_service_client::NetworkServiceClient;
use cnet_api::v1::sandbox_service_client::SandboxServiceClient;
use cnet_api::v1::{ConnectRequest, CreateSandboxRequest, NetworkRef, Sandbox};
use cnet_benches::network_with_subnet;
use cnet_tests::{Lab, addr_of};

fn iperf_gbps(json: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("iperf3 JSON ({e}): {json}"));
    v["end"]["sum_received"]["bits_per_second"].as_f64().expect("bits_per_second") / 1e9
}

/// A container on host `i` joined to `network` as `ifname`; returns it and its IPv4 address.
async fn container(lab: &Lab, i: usize, name: &str, network: &str, ifname: &str) -> anyhow::Result<(Sandbox, String)> {
    let mut api = SandboxServiceClient::new(lab.host(i).channel().await);
    let sandbox =
        api.create_sandbox(CreateSandboxRequest { name: name.into(), ..Default::default() }).await?.into_inner();
    let ep = api
        .connect_network(ConnectRequest {
            sandbox: sandbox.id.clone(),
            network: network.into(),
            driver_opts: [("com.docker.network.endpoint.ifname".to_string(), ifname.to_string())].into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok((sandbox, addr_of(&ep.ipv4_address).to_string()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let iperf_secs: u32 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let runs: usize = std::env::var("IPERF_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let cc = std::env::var("IPERF_CC").ok().filter(|c| !c.is_empty());
    let cc_arg = cc.as_deref().map(|c| format!(" -C {c}")).unwrap_or_default();

    let mut lab = Lab::new(2);
    lab.start_all();
    let mut nets = NetworkServiceClient::new(lab.host(0).channel().await);
    nets.create_network(network_with_subnet("link", "vxlan", "10.77.0.0/31")).await?;
    nets.create_network(network_with_subnet("ov", "overlay", "10.78.0.0/24")).await?;
    let mut other = NetworkServiceClient::new(lab.host(1).channel().await);
    for name in ["link", "ov"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while other.inspect_network(NetworkRef { network: name.into() }).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "host2 never saw network {name}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (l1, _) = container(&lab, 0, "l1", "link", "eth1").await?;
    let (l2, l2_ip) = container(&lab, 1, "l2", "link", "eth1").await?;
    let (o1, _) = container(&lab, 0, "o1", "ov", "eth0").await?;
    let (o2, o2_ip) = container(&lab, 1, "o2", "ov", "eth0").await?;
    let line = lab.host(0).run_in_ok(&l1.netns_path, "ip -o link show dev eth1");
    let mtu = line.split(" mtu ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("?").to_string();

    let spawn_server = |netns: Option<&str>| -> anyhow::Result<std::process::Child> {
        let mut cmd = match netns {
            Some(path) => lab.host(1).in_netns(path, "iperf3"),
            None => lab.host(1).ns().cmd("iperf3"),
        };
        Ok(cmd.arg("-s").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn()?)
    };
    let mut servers =
        vec![spawn_server(None)?, spawn_server(Some(&l2.netns_path))?, spawn_server(Some(&o2.netns_path))?];
    // Every server answers before the first run (the link reaches its peer once both ends joined).
    for (ns, ip) in [(&l1.netns_path, &l2_ip), (&o1.netns_path, &o2_ip)] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !lab.host(0).reaches(ns, ip) {
            anyhow::ensure!(Instant::now() < deadline, "{ip} does not answer");
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (mut direct, mut link, mut overlay) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        eprintln!("run {} of {runs}", run + 1);
        let out = lab.host(0).ns().run_ok(&format!("iperf3 -c {} -t {iperf_secs} -J{cc_arg}", lab.address(1)));
        direct.push(iperf_gbps(&out));
        let out = lab.host(0).run_in_ok(&l1.netns_path, &format!("iperf3 -c {l2_ip} -t {iperf_secs} -J{cc_arg}"));
        link.push(iperf_gbps(&out));
        let out = lab.host(0).run_in_ok(&o1.netns_path, &format!("iperf3 -c {o2_ip} -t {iperf_secs} -J{cc_arg}"));
        overlay.push(iperf_gbps(&out));
    }
    for s in &mut servers {
        let _ = s.kill();
        let _ = s.wait();
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (d, l, o) = (median(&direct), median(&link), median(&overlay));
    let cc = match cc {
        Some(cc) => cc,
        None => {
            format!("{} (the default)", lab.host(0).ns().run_ok("sysctl -n net.ipv4.tcp_congestion_control").trim())
        }
    };
    println!("## vxlan link: 2 hosts, iperf3 {iperf_secs} s x {runs}, congestion control {cc}, medians\n");
    println!("| path | Gbit/s |");
    println!("|---|---|");
    println!("| host1 -> host2 over the underlay (MTU 1500) | {d:.2} |");
    println!(
        "| container on host1 -> container on host2 over a vxlan link (MTU {mtu}) | {l:.2} ({:.0} % of the underlay) |",
        l / d * 100.0
    );
    println!("| the same over an overlay network | {o:.2} ({:.0} % of the underlay) |", o / d * 100.0);
    println!("\nall runs: underlay {direct:?}, link {link:?}, overlay {overlay:?}");
    let ratios: Vec<String> = direct.iter().zip(&overlay).map(|(d, o)| format!("{:.1}", o / d * 100.0)).collect();
    println!("overlay / underlay, run by run (%): {}", ratios.join(", "));
    drop(lab);
    Ok(())
}
