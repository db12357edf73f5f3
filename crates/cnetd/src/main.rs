//! `cnetd`: parses flags, sets up logging, and runs the daemon until SIGTERM or SIGINT.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser, Debug)]
#[command(name = "cnetd", version, about = "The cnet container networking daemon")]
struct Args {
    /// Unix socket the gRPC API is served on.
    #[arg(long, default_value = cnet_api::DEFAULT_SOCKET, env = "CNET_SOCKET")]
    socket: PathBuf,
    /// Runtime directory: namespace files under netns/.
    #[arg(long, default_value = "/run/cnet")]
    run_dir: PathBuf,
    /// Persistent state directory.
    #[arg(long, default_value = "/var/lib/cnet")]
    state_dir: PathBuf,
    /// The nftables table (family inet) cnet owns.
    #[arg(long, default_value = "cnet")]
    nft_table: String,
    /// How often to check that the nftables table exists, rebuilding it if it was deleted, beside
    /// rebuilding it as soon as nftables announces its deletion (0: neither).
    #[arg(long, default_value = "30s", value_parser = cnetd::parse_interval)]
    firewall_check_interval: std::time::Duration,
    /// Upstream DNS server of the embedded resolver (repeatable); default: the host's resolv.conf.
    #[arg(long = "dns", value_name = "IP")]
    dns: Vec<std::net::IpAddr>,
    /// Join a cluster for overlay networks: its etcd store, `etcd://HOST:PORT[,HOST:PORT...]`.
    #[arg(long, value_name = "URL", requires = "cluster_advertise")]
    cluster_store: Option<String>,
    /// This node's address on the underlay (its VTEP), or the interface holding it.
    #[arg(long, value_name = "ADDR|IFACE", requires = "cluster_store")]
    cluster_advertise: Option<String>,
    /// This node's name in the cluster (default: the hostname).
    #[arg(long)]
    node_name: Option<String>,
    /// TTL of this node's registrations: gone that long, its endpoints are dropped by the others.
    #[arg(long, default_value = "30s", value_parser = cnetd::parse_interval)]
    cluster_ttl: std::time::Duration,
    /// The runtime root of this host's containers (cnet's --root), where the parts of labs spread
    /// over several hosts make this host's nodes.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/cnet/runtime")]
    runtime_root: PathBuf,
    /// Log filter (tracing env-filter syntax), overridden by RUST_LOG.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Write the man page `cnetd.8` into DIR and exit (for packaging).
    #[arg(long, value_name = "DIR", hide = true)]
    generate_man: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.generate_man {
        let path = dir.join("cnetd.8");
        let mut file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let cmd = <Args as clap::CommandFactory>::command();
        clap_mangen::Man::new(cmd)
            .section("8")
            .render(&mut file)
            .with_context(|| format!("writing {}", path.display()))?;
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("cnetd must run as root: it creates namespaces, links and firewall rules");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let cfg = cnetd::DaemonConfig {
        socket: args.socket,
        run_dir: args.run_dir,
        state_dir: args.state_dir,
        nft_table: args.nft_table,
        firewall_check_interval: args.firewall_check_interval,
        dns: args.dns,
        cluster: match (args.cluster_store, args.cluster_advertise) {
            (Some(store), Some(advertise)) => Some(cnetd::ClusterFlags {
                store,
                advertise,
                node_name: match args.node_name {
                    Some(n) => n,
                    None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
                },
                ttl: args.cluster_ttl,
            }),
            _ => None,
        },
    };
    let listener = cnetd::bind_socket(&cfg.socket)?;
    let ctl = cnetd::start_controller(&cfg).await.context("starting cnetd")?;
    if let Some(cluster) = ctl.cluster().cloned() {
        let agent = cnetd::labs::AgentConfig { socket: cfg.socket.clone(), runtime_root: args.runtime_root };
        cnetd::labs::spawn_agent(cluster, ctl.resyncs(), agent);
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        cnetd::notify_service_manager("STOPPING=1");
    };
    tracing::info!(socket = %cfg.socket.display(), state = %cfg.state_dir.display(), "cnetd ready");
    cnetd::notify_service_manager("READY=1");
    cnetd::serve(ctl, listener, shutdown).await?;
    let _ = std::fs::remove_file(&cfg.socket);
    tracing::info!("cnetd stopped");
    Ok(())
}
