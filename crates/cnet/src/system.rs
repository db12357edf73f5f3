//! `cnet info`.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use cnet_api::v1::{InfoRequest, InfoResponse};

use crate::cli::InfoArgs;
use crate::client::Daemon;

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
        ("Socket", socket.display().to_string()),
        ("Client Version", env!("CARGO_PKG_VERSION").to_string()),
    ];
    lines.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
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
Socket: /run/cnet/cnetd.sock
Client Version: ";
        assert!(text.starts_with(expected_prefix), "{text}");
        assert!(text.ends_with('\n'));
    }
}
