//! The lab agent: this host's share of labs spread over several hosts. It watches the labs of the
//! cluster store ([`cnet_cluster::labs`]) and, for each new generation that names this host, runs
//! the host's part with the CLI next to cnetd (`cnet lab part`: this host's nodes and its ends of
//! the lab's links, made with this host's runtime and this cnetd), then stores what came of it as
//! this host's report, which the CLI that published the generation waits for.
//!
//! The part is the CLI's own lab code in a child process rather than a copy of it in the daemon:
//! containers are the runtime's business (the CLI's), a part that crashes takes no network state
//! down with it, and every object it makes carries the lab's labels, so a part cut short (the
//! child or cnetd killed) is finished by the next generation or removed by a destroy. Parts of one
//! lab run one at a time; a generation superseded while it waited is skipped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use cnet_cluster::Cluster;
use cnet_cluster::labs::{LabRecord, LabReport};

/// The CLI's binary, looked for next to cnetd, then on PATH.
const CLI_BINARY: &str = "cnet";
/// How long one part may take before it is killed and reported as failed.
const PART_TIMEOUT: Duration = Duration::from_secs(600);
/// The most of a failed part's error output a report keeps (its end, where the error is).
const MESSAGE_TAIL: usize = 4000;

/// Where the parts run: this cnetd's socket, and the runtime root of the host's containers.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub socket: PathBuf,
    pub runtime_root: PathBuf,
}

/// Starts the agent; it runs as long as the runtime does, from this node's first resync with the
/// cluster store on (`resyncs`), so no part attaches before stale leases were released.
pub fn spawn_agent(cluster: Arc<Cluster>, mut resyncs: tokio::sync::watch::Receiver<u64>, cfg: AgentConfig) {
    tokio::spawn(async move {
        if resyncs.wait_for(|n| *n > 0).await.is_err() {
            return;
        }
        let mut records = cluster.watch_labs();
        let mut one_at_a_time: HashMap<String, Arc<tokio::sync::Mutex<()>>> = HashMap::new();
        while let Some(record) = records.recv().await {
            if !record.hosts.iter().any(|h| h == cluster.node_name()) {
                continue;
            }
            let lock = one_at_a_time.entry(record.name.clone()).or_default().clone();
            let (cluster, cfg) = (cluster.clone(), cfg.clone());
            tokio::spawn(async move {
                let _turn = lock.lock().await;
                if let Err(e) = run_if_due(&cluster, &cfg, &record.name).await {
                    tracing::warn!(lab = %record.name, error = %e, "lab part not run: the next listing of the store retries");
                }
            });
        }
    });
}

/// Runs this host's part of the lab's newest generation unless this host reported on it already.
async fn run_if_due(cluster: &Cluster, cfg: &AgentConfig, name: &str) -> cnet_core::Result<()> {
    let me = cluster.node_name();
    let Some(record) = cluster.lab(name).await? else { return Ok(()) };
    if !record.hosts.iter().any(|h| h == me) {
        return Ok(());
    }
    let reports = cluster.lab_reports(name).await?;
    if reports.iter().any(|r| r.host == me && r.generation >= record.generation) {
        return Ok(());
    }
    tracing::info!(lab = %name, generation = record.generation, action = %record.action, "running this host's part of the lab");
    if let Some(report) = run_part(cfg, &record, me).await {
        if !report.ok {
            tracing::warn!(lab = %name, generation = record.generation, message = %report.message, "the lab part failed");
        }
        cluster.report_lab(name, &report).await?;
    }
    Ok(())
}

/// `cnet -H SOCKET --root RUNTIME lab part --name LAB --generation G`, and its outcome as a
/// report (`None` when the part found its generation superseded).
async fn run_part(cfg: &AgentConfig, record: &LabRecord, me: &str) -> Option<LabReport> {
    let report = |ok: bool, message: String, nodes_json: String| LabReport {
        host: me.to_string(),
        generation: record.generation,
        ok,
        message,
        nodes_json,
    };
    let cli = match find_cli() {
        Ok(cli) => cli,
        Err(message) => return Some(report(false, message, String::new())),
    };
    let mut command = tokio::process::Command::new(&cli);
    command
        .arg("-H")
        .arg(&cfg.socket)
        .arg("--root")
        .arg(&cfg.runtime_root)
        .args(["lab", "part", "--name", &record.name, "--generation", &record.generation.to_string()])
        .stdin(Stdio::null())
        .env_remove("CNET_SOCKET")
        .kill_on_drop(true);
    let out = match tokio::time::timeout(PART_TIMEOUT, command.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Some(report(false, format!("running {}: {e}", cli.display()), String::new())),
        Err(_) => return Some(report(false, format!("the part took longer than {PART_TIMEOUT:?}"), String::new())),
    };
    if out.status.code() == Some(i32::from(cnet_api::LAB_PART_SUPERSEDED)) {
        return None;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = if out.status.success() { String::new() } else { tail(stderr.trim(), MESSAGE_TAIL) };
    Some(report(out.status.success(), message, String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn find_cli() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding cnetd's own binary: {e}"))?;
    cnet_core::binaries::find_beside_or_on_path(&exe, CLI_BINARY)
        .ok_or_else(|| format!("the {CLI_BINARY} CLI is neither next to {} nor on PATH", exe.display()))
}

/// The last `max` bytes of `text` (at a character boundary), marked as cut when they are.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_keeps_its_end() {
        assert_eq!(tail("short", 10), "short");
        assert_eq!(tail("0123456789abc", 3), "…abc");
        assert_eq!(tail("ééé", 3), "…é");
    }
}
