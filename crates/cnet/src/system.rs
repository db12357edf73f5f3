//! `cnet info` and `cnet node ls`.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use cnet_api::v1::{InfoRequest, InfoResponse, ListNodesRequest, Node};

use crate::cli::{InfoArgs, NodeLsArgs};
use crate::client::{CallError, Daemon};

/// `cnet info`: the daemon's state as `Key: value` lines.
pub async fn info(socket: &Path, _args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::connect(socket).await?;
    let reply = daemon.system().info(InfoRequest {}).await.map_err(|s| daemon.error(s))?.into_inner();
    io::stdout().lock().write_all(render_info(&reply, daemon.socket()).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Docker-ish `Key: value` lines.
pub fn render_info(info: &InfoResponse, socket: &Path) -> String {
    let lines = [
        ("Server Version", info.version.clone()),
        ("Networks", info.networks.to_string()),
        ("Sandboxes", info.sandboxes.to_string()),
        ("Endpoints", info.endpoints.to_string()),
        ("State Dir", info.state_dir.clone()),
        ("Run Dir", info.run_dir.clone()),
        ("Daemon PID", info.pid.to_string()),
        ("Pending Link Deletions", info.pending_link_deletions.to_string()),
        ("Pending Firewall Changes", info.pending_firewall_changes.to_string()),
        ("Socket", socket.display().to_string()),
        ("Client Version", env!("CARGO_PKG_VERSION").to_string()),
    ];
    let mut out: String = lines.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    match &info.cluster {
        Some(c) => {
            out.push_str(&format!("Cluster Store: {}\n", c.store));
            out.push_str(&format!("Cluster Store Status: {}\n", if c.connected { "connected" } else { "unreachable" }));
            out.push_str(&format!("Node Name: {}\n", c.node));
            out.push_str(&format!("Cluster Advertise: {}\n", c.advertise));
            out.push_str(&format!("Cluster Lease TTL: {}s\n", c.ttl_seconds));
        }
        None => out.push_str("Cluster Store: none (overlay networks disabled)\n"),
    }
    out
}

/// `cnet version`: the client's version and API version, then the daemon's, as `docker version`
/// prints them. Without a daemon the client's part is still printed, then the error.
pub async fn version(socket: &Path) -> anyhow::Result<ExitCode> {
    let mut out = io::stdout().lock();
    out.write_all(render_client_version().as_bytes())?;
    out.flush()?;
    let daemon = Daemon::connect(socket).await?;
    let reply = daemon.system().info(InfoRequest {}).await.map_err(|s| daemon.error(s))?.into_inner();
    out.write_all(render_server_version(&reply).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn os_arch() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("{}/{arch}", std::env::consts::OS)
}

pub fn render_client_version() -> String {
    format!(
        "Client:\n Version:           {}\n API version:       {}\n OS/Arch:           {}\n",
        env!("CARGO_PKG_VERSION"),
        cnet_api::API_VERSION,
        os_arch()
    )
}

pub fn render_server_version(info: &InfoResponse) -> String {
    // A daemon older than the field answers an empty one: its API is 1.0.
    let api = if info.api_version.is_empty() { "1.0" } else { info.api_version.as_str() };
    format!(
        "\nServer: cnetd\n Version:           {}\n API version:       {api}\n OS/Arch:           {}\n PID:               {}\n",
        info.version,
        os_arch(),
        info.pid
    )
}

/// `cnet node ls`: the cluster's nodes, this one marked with `*`.
pub async fn node_ls(socket: &Path, args: &NodeLsArgs) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::connect(socket).await?;
    let format = crate::format::check(args.format.as_deref())?;
    let reply = daemon.system().list_nodes(ListNodesRequest {}).await.map_err(|s| daemon.error(s))?.into_inner();
    if let Some(format) = format.filter(|_| !args.quiet) {
        let rows: Vec<serde_json::Value> = reply
            .nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "Name": n.name, "Address": n.address, "State": n.state, "Endpoints": n.endpoints, "Self": n.self_,
                })
            })
            .collect();
        io::stdout().lock().write_all(crate::format::render(&format, &rows)?.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    io::stdout().lock().write_all(render_nodes(&reply.nodes, args.quiet).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

pub fn render_nodes(nodes: &[Node], quiet: bool) -> String {
    if quiet {
        return nodes.iter().map(|n| format!("{}\n", n.name)).collect();
    }
    let name_w = nodes.iter().map(|n| n.name.len() + 2).max().unwrap_or(0).max(4);
    let addr_w = nodes.iter().map(|n| n.address.len()).max().unwrap_or(0).max(7);
    let mut out = format!("{:<name_w$}   {:<addr_w$}   {:<5}   ENDPOINTS\n", "NAME", "ADDRESS", "STATE");
    for n in nodes {
        let name = if n.self_ { format!("{} *", n.name) } else { n.name.clone() };
        out.push_str(&format!("{name:<name_w$}   {:<addr_w$}   {:<5}   {}\n", n.address, n.state, n.endpoints));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lines() {
        let info = InfoResponse {
            version: "0.1.0".into(),
            state_dir: "/var/lib/cnet".into(),
            run_dir: "/run/cnet".into(),
            networks: 3,
            sandboxes: 2,
            endpoints: 4,
            pid: 1234,
            pending_link_deletions: 0,
            pending_firewall_changes: 0,
            cluster: None,
            api_version: "1.2".into(),
        };
        let text = render_info(&info, Path::new("/run/cnet/cnetd.sock"));
        let expected_prefix = "\
Server Version: 0.1.0
Networks: 3
Sandboxes: 2
Endpoints: 4
State Dir: /var/lib/cnet
Run Dir: /run/cnet
Daemon PID: 1234
Pending Link Deletions: 0
Pending Firewall Changes: 0
Socket: /run/cnet/cnetd.sock
Client Version: ";
        assert!(text.starts_with(expected_prefix), "{text}");
        assert!(text.ends_with('\n'));
        assert!(text.contains("Cluster Store: none"), "{text}");
    }

    #[test]
    fn node_table() {
        let node = |name: &str, addr: &str, state: &str, eps: u32, me: bool| Node {
            name: name.into(),
            address: addr.into(),
            state: state.into(),
            endpoints: eps,
            joined: String::new(),
            self_: me,
        };
        let text = render_nodes(
            &[node("host1", "192.0.2.1", "ready", 2, true), node("h2", "192.0.2.2", "down", 0, false)],
            false,
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["NAME", "ADDRESS", "STATE", "ENDPOINTS"]);
        assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["host1", "*", "192.0.2.1", "ready", "2"]);
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["h2", "192.0.2.2", "down", "0"]);
        assert_eq!(render_nodes(&[node("a", "x", "ready", 0, false)], true), "a\n");
    }
}
