//! cnetd, the daemon that owns all network state: the controller (records, IPAM, store, the CNM
//! lifecycle across drivers) and its gRPC server on a root-only unix socket. The binary in main.rs
//! only parses flags and wires these together, so tests and benches can run the same code.

pub mod controller;
pub mod files;
pub mod server;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use cnet_api::v1::{
    network_service_server::NetworkServiceServer, sandbox_service_server::SandboxServiceServer,
    system_service_server::SystemServiceServer,
};
use cnet_core::Driver;

pub use controller::Controller;

pub struct DaemonConfig {
    pub socket: PathBuf,
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
    /// Name of the nftables table (family inet) cnet owns.
    pub nft_table: String,
}

/// Builds the drivers and the controller, restoring state; what `cnetd` does before it serves.
pub async fn start_controller(cfg: &DaemonConfig) -> anyhow::Result<Arc<Controller>> {
    let kernel = cnet_kernel::Kernel::connect().await.context("opening netlink")?;
    let firewall = Arc::new(cnet_firewall::Firewall::new(&cfg.nft_table));
    let drivers: Vec<Arc<dyn Driver>> = vec![
        Arc::new(cnet_driver_bridge::BridgeDriver::new(kernel.clone(), firewall.clone())),
        Arc::new(cnet_driver_host::HostDriver),
        Arc::new(cnet_driver_none::NoneDriver),
    ];
    let ctl = Controller::start(
        controller::Config { run_dir: cfg.run_dir.clone(), state_dir: cfg.state_dir.clone() },
        kernel,
        drivers,
    )
    .await?;
    Ok(Arc::new(ctl))
}

/// Binds the API socket: stale socket files from a crash are replaced, the mode is 0660 (root and
/// root's group), and the parent directory is created 0700 when missing.
pub fn bind_socket(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!("another cnetd is already listening on {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener =
        tokio::net::UnixListener::bind(path).with_context(|| format!("binding API socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Serves the API until `shutdown` resolves. Network state is left in place: containers keep
/// their connectivity while the daemon is down, and the next start restores from the store.
pub async fn serve(
    ctl: Arc<Controller>,
    listener: tokio::net::UnixListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let api = server::Api::new(ctl);
    let incoming = futures::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(stream, _)| stream);
        Some((next, l))
    });
    // After the shutdown signal, tonic waits for connected clients to go; a client that never
    // does must not keep the daemon from stopping.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let signalled = async move {
        shutdown.await;
        let _ = stop_tx.send(());
    };
    let server = tonic::transport::Server::builder()
        .add_service(NetworkServiceServer::new(api.clone()))
        .add_service(SandboxServiceServer::new(api.clone()))
        .add_service(SystemServiceServer::new(api))
        .serve_with_incoming_shutdown(incoming, signalled);
    tokio::pin!(server);
    tokio::select! {
        served = &mut server => served.context("serving the API"),
        _ = async {
            let _ = stop_rx.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("clients still connected {SHUTDOWN_GRACE:?} after the shutdown signal: closing anyway");
            Ok(())
        }
    }
}
