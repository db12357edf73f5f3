//! What every benchmark of this crate measures the same way.

use std::time::{Duration, Instant};

use cnet_tests::TestHost;

/// The `p` quantile (0.0-1.0) of sorted samples, nearest rank; zero for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The resident memory of process `pid` in KiB (`VmRSS`), 0 if it cannot be read.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// A network create request with one given subnet (benches fix their subnets so runs compare).
pub fn network_with_subnet(name: &str, driver: &str, subnet: &str) -> cnet_api::v1::CreateNetworkRequest {
    cnet_api::v1::CreateNetworkRequest {
        name: name.into(),
        driver: driver.into(),
        ipam: Some(cnet_api::v1::Ipam {
            driver: "default".into(),
            config: vec![cnet_api::v1::IpamConfig { subnet: subnet.into(), ..Default::default() }],
        }),
        ..Default::default()
    }
}

/// Runs `cnet ARGS` on the test host and returns how long it took; panics if it failed.
pub fn timed(host: &TestHost, args: &[&str]) -> Duration {
    let t = Instant::now();
    let out = host.cnet(args);
    let elapsed = t.elapsed();
    assert!(out.status.success(), "cnet {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    elapsed
}

/// The links of a benchmark's lab file, each a /31 of its own (10.100.0.0/31 for the first, then
/// 10.100.1.0/31, …), between nodes named `nN`.
#[derive(Debug, Default)]
pub struct LabLinks {
    written: usize,
}

impl LabLinks {
    /// Appends the link `nA:IFACE_A` - `nB:IFACE_B` to `out`, with the next /31.
    pub fn write(&mut self, out: &mut String, a: usize, a_iface: &str, b: usize, b_iface: &str) {
        let (x, y) = (100 + self.written / 256, self.written % 256);
        out.push_str(&format!(
            "    - endpoints: [n{a}:{a_iface}, n{b}:{b_iface}]\n      ipv4: [10.{x}.{y}.0/31, 10.{x}.{y}.1/31]\n"
        ));
        self.written += 1;
    }
}
