//! The command line: clap types only. Parsing helpers for `key=value` style flags live here so
//! that a malformed value is reported by clap with the offending text.
//!
//! To add a command: add a variant to [`Command`] (with its own args struct or subcommand enum)
//! and a match arm in `main.rs` that hands it to the module implementing it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Command-line client for cnetd, the cnet container networking daemon.
#[derive(Debug, Parser)]
#[command(name = "cnet", version)]
pub struct Cli {
    /// Daemon socket to connect to (a path or unix://PATH)
    #[arg(
        short = 'H',
        long = "host",
        value_name = "SOCKET",
        env = "CNET_SOCKET",
        default_value = cnet_api::DEFAULT_SOCKET,
        value_parser = parse_host,
        global = true
    )]
    pub host: PathBuf,

    /// Root directory of the container runtime's state
    #[arg(long = "root", value_name = "DIR", env = "CNET_ROOT", default_value = cnet_runtime::DEFAULT_ROOT, global = true)]
    pub root: PathBuf,

    /// Debug output on stderr: each phase of the command (image, create, sandbox, connect, start,
    /// the container's run, removal) with the time it took
    #[arg(short = 'D', long = "debug", global = true)]
    pub debug: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage networks
    Network(NetworkArgs),
    /// Create a network (shorthand for `cnet network create`)
    Create(NetworkCreateArgs),
    /// Display system-wide information
    Info(InfoArgs),
    /// Manage the nodes of the cluster (overlay networks)
    Node(NodeArgs),
    /// Get real time events from cnetd: networks, connects, containers, links, nodes
    Events(EventsArgs),
    /// Deploy, inspect and destroy topology labs (containerlab's files)
    Lab(crate::lab::LabArgs),
    /// Set the ends of links down or up, their MTU and shaping; list links
    Link(crate::link::LinkArgs),
    /// Create and run a new container from an image
    Run(Box<RunArgs>),
    /// List containers
    #[command(visible_alias = "container-ls")]
    Ps(PsArgs),
    /// List port mappings of a container
    Port(PortArgs),
    /// Start one or more stopped containers
    Start(ContainersArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Return low-level information on containers
    Inspect(InspectArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Capture the packets of a container's interface as pcap (NODE:IFACE), e.g. `| tcpdump -r -`
    Capture(crate::capture::CaptureArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Manage images
    Image(ImageArgs),
    /// Download an image from a registry (shorthand for `cnet image pull`)
    Pull(PullArgs),
    /// Import the contents from a tarball to create an image (shorthand for `cnet image import`)
    Import(ImageImportArgs),
    /// List images (shorthand for `cnet image ls`)
    Images(ImageLsArgs),
    /// Remove one or more images (shorthand for `cnet image rm`)
    Rmi(ImageRmArgs),
    /// Show the version of the client and of the daemon
    Version,
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell)
    Completion(CompletionArgs),
    /// Write the man pages of cnet and its commands into a directory
    #[command(name = "__man", hide = true)]
    Man(ManArgs),
}

/// Flags of `cnet completion`.
#[derive(Debug, Clone, Args)]
pub struct CompletionArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Flags of `cnet __man`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// The directory the pages go into (`cnet.1`, `cnet-run.1`, …)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Flags of `cnet run`.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Container host name
    #[arg(long)]
    pub hostname: Option<String>,
    /// Connect a container to a network (repeatable; default "bridge"; "host", "none"), by name
    /// or with Docker's per-network options:
    /// name=N[,alias=A][,ip=IP][,ip6=IP][,mac-address=MAC][,driver-opt=K=V][,gw-priority=N]
    #[arg(long = "network", visible_alias = "net", value_name = "NETWORK")]
    pub networks: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104) on the first network
    #[arg(long)]
    pub ip: Option<String>,
    /// Add network-scoped alias for the container (on the first network)
    #[arg(long = "network-alias", value_name = "ALIAS")]
    pub network_aliases: Vec<String>,
    /// Container MAC address on the first network (e.g., 02:42:ac:11:00:02); unicast only
    #[arg(long = "mac-address", value_name = "MAC")]
    pub mac_address: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "VAR=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:N])
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "[IP:]HOST:CONTAINER[/PROTO]")]
    pub publish: Vec<String>,
    /// Publish all exposed ports (the image's and --expose's) to random host ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports (published by -P)
    #[arg(long = "expose", value_name = "PORT[/PROTO]")]
    pub expose: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Network namespace kernel parameter (net.*) to set in the container (repeatable)
    #[arg(long = "sysctl", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub sysctls: Vec<(String, String)>,
    /// Set metadata on the container (repeatable)
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Bind a host path into the container: HOST:CONTAINER[:ro] (repeatable)
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub volumes: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Pull the image before running: missing (when the store has none), always, never
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// The image to run
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Flags of `cnet ps`.
#[derive(Debug, Clone, Default, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Filter output: label=KEY or label=KEY=VALUE, name=NAME (repeatable; all must match)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Vec<String>,
    /// Format the output using a Go template (`table TEMPLATE` for a table, `json` for JSON lines)
    #[arg(long)]
    pub format: Option<String>,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
}

/// Flags of `cnet inspect`.
#[derive(Debug, Clone, Default, Args)]
pub struct InspectArgs {
    /// Format the output using a Go template (or `json`)
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// One or more containers (name, id or unique id prefix).
#[derive(Debug, Clone, Default, Args)]
pub struct ContainersArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Flags of `cnet stop`.
#[derive(Debug, Clone, Default, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", visible_alias = "timeout", default_value_t = 10)]
    pub time: u64,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Flags of `cnet kill`.
#[derive(Debug, Clone, Default, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal", default_value = "KILL")]
    pub signal: String,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Flags of `cnet rm`.
#[derive(Debug, Clone, Default, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Flags of `cnet logs`.
#[derive(Debug, Clone, Default, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Flags of `cnet exec`.
#[derive(Debug, Clone, Default, Args)]
pub struct ExecArgs {
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "VAR=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The command and its arguments
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Flags of `cnet top`.
#[derive(Debug, Clone, Default, Args)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `cnet image ...`
#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// `cnet image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import the contents from a tarball to create an image
    Import(ImageImportArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImageLsArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(ImageRmArgs),
}

/// Flags of `cnet image import`.
#[derive(Debug, Clone, Default, Args)]
pub struct ImageImportArgs {
    /// A root filesystem tarball or a `docker save` archive
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// NAME[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: String,
}

/// Flags of `cnet pull` and `cnet image pull`.
#[derive(Debug, Clone, Default, Args)]
pub struct PullArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// NAME[:TAG|@DIGEST], Docker's reference rules (`busybox` is docker.io/library/busybox:latest)
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub reference: String,
}

/// When `cnet run` pulls its image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull when the image is not in the store
    #[default]
    Missing,
    /// Pull every time (the registry's newest for the tag)
    Always,
    /// Never pull: a missing image is an error
    Never,
}

/// Flags of `cnet image ls`.
#[derive(Debug, Clone, Default, Args)]
pub struct ImageLsArgs {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format the output using a Go template (`table TEMPLATE` for a table, `json` for JSON lines)
    #[arg(long)]
    pub format: Option<String>,
}

/// Flags of `cnet image rm`.
#[derive(Debug, Clone, Default, Args)]
pub struct ImageRmArgs {
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

/// `cnet network ...`
#[derive(Debug, Args)]
pub struct NetworkArgs {
    #[command(subcommand)]
    pub command: NetworkSubcommand,
}

/// `cnet network` subcommands: those of cnetd's networks, and those on containers.
#[derive(Debug, Subcommand)]
pub enum NetworkSubcommand {
    #[command(flatten)]
    Network(NetworkCommand),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
}

/// Flags of `cnet network connect`.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkConnectArgs {
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    pub ip6: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "alias")]
    pub aliases: Vec<String>,
    /// Endpoint driver option (e.g., com.docker.network.endpoint.ifname=eth3)
    #[arg(long = "driver-opt", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub driver_opts: Vec<(String, String)>,
    /// Highest gw-priority provides the default gateway (negative values allowed; default 0)
    #[arg(long = "gw-priority", value_name = "N", allow_negative_numbers = true, default_value_t = 0)]
    pub gw_priority: i64,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// Flags of `cnet network disconnect`.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkDisconnectArgs {
    /// Accepted as Docker accepts it; a disconnect always completes in cnet, which keeps no stale
    /// endpoint for -f to force away
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

/// `cnet network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove all unused networks
    Prune(NetworkPruneArgs),
    /// Replace the key of an encrypted overlay network (-o encrypted) without dropping traffic
    #[command(name = "rotate-key")]
    RotateKey(NetworkRotateKeyArgs),
}

/// Flags of `cnet network create` and `cnet create`.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,

    /// Subnet in CIDR format that represents a network segment
    #[arg(long = "subnet", value_name = "SUBNET")]
    pub subnets: Vec<String>,

    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long = "gateway", value_name = "GATEWAY")]
    pub gateways: Vec<String>,

    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "RANGE")]
    pub ip_ranges: Vec<String>,

    /// Auxiliary IPv4 or IPv6 addresses used by Network driver (name=ip)
    #[arg(long = "aux-address", value_name = "NAME=IP", value_parser = parse_key_value)]
    pub aux_addresses: Vec<(String, String)>,

    /// Enable or disable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,

    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,

    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,

    /// Set driver specific options (key=value)
    #[arg(short = 'o', long = "opt", value_name = "KEY[=VALUE]", value_parser = parse_driver_option)]
    pub options: Vec<(String, String)>,

    /// Set metadata on a network (key=value, or key for an empty value)
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,

    /// Name of the network
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

/// Flags of `cnet network ls`.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkLsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,

    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,

    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short, long = "filter", value_name = "FILTER", value_parser = parse_filter)]
    pub filters: Vec<String>,

    /// Format the output using a Go template (`table TEMPLATE` for a table, `json` for JSON lines)
    #[arg(long)]
    pub format: Option<String>,
}

/// Flags of `cnet network inspect`.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkInspectArgs {
    /// Format the output using a Go template (or `json`)
    #[arg(short = 'f', long)]
    pub format: Option<String>,

    /// Networks to inspect (name, id or unique id prefix)
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

/// Flags of `cnet network rm`.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkRmArgs {
    /// Do not error if the network does not exist
    #[arg(short, long)]
    pub force: bool,

    /// Networks to remove (name, id or unique id prefix)
    #[arg(value_name = "NETWORK", required = true)]
    pub networks: Vec<String>,
}

/// Flags of `cnet network rotate-key`.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkRotateKeyArgs {
    /// The encrypted overlay network (name, id or unique id prefix)
    #[arg(value_name = "NETWORK")]
    pub network: String,
}

/// Flags of `cnet network prune`.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// Flags of `cnet info`.
#[derive(Debug, Clone, Default, Args)]
pub struct InfoArgs {}

/// Flags of `cnet events`.
#[derive(Debug, Clone, Default, Args)]
pub struct EventsArgs {
    /// Show the events since this time (those cnetd still holds, then new ones): unix seconds,
    /// RFC 3339 (2026-12-04T12:00:00Z) or a duration ago (10m, 1h30m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Stream events until this time (same forms), then exit
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Filter output: type=network|container|link|node, event=ACTION (repeatable)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filters: Vec<String>,
    /// Format the output using a Go template (`{{.Type}} {{.Action}} {{.Actor.ID}}`), or `json`
    /// for JSON lines
    #[arg(long)]
    pub format: Option<String>,
}

/// `cnet node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    pub command: NodeCommand,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List the nodes of the cluster: name, address (VTEP), state, endpoints
    #[command(visible_alias = "list")]
    Ls(NodeLsArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub struct NodeLsArgs {
    /// Only display node names
    #[arg(short, long)]
    pub quiet: bool,
    /// Format the output using a Go template (`table TEMPLATE` for a table, `json` for JSON lines)
    #[arg(long)]
    pub format: Option<String>,
}

/// `-H` accepts a plain path or `unix://PATH`, like Docker's `unix:///var/run/docker.sock`.
/// An empty value (e.g. `CNET_SOCKET=`) means the default socket.
pub fn parse_host(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Ok(PathBuf::from(cnet_api::DEFAULT_SOCKET));
    }
    let path = match value.split_once("://") {
        None => value,
        Some(("unix", path)) => path,
        Some((scheme, _)) => {
            return Err(format!("unsupported protocol {scheme:?} in {value:?}: cnetd only listens on unix sockets"));
        }
    };
    if path.is_empty() {
        return Err(format!("no socket path in {value:?}"));
    }
    Ok(PathBuf::from(path))
}

/// A driver option: `key=value`, or a bare `key` (Docker's `-o encrypted`) with an empty value.
pub fn parse_driver_option(value: &str) -> Result<(String, String), String> {
    if !value.contains('=') && !value.trim().is_empty() {
        return Ok((value.to_string(), String::new()));
    }
    parse_key_value(value)
}

/// `key=value`, key non-empty; the value may be empty (`key=`).
pub fn parse_key_value(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, val)) if !key.trim().is_empty() => Ok((key.to_string(), val.to_string())),
        Some(_) => Err(format!("bad format {value:?}: empty key (expected key=value)")),
        None => Err(format!("bad format {value:?}: expected key=value")),
    }
}

/// Labels follow Docker: `key=value`, or a bare `key` meaning an empty value.
pub fn parse_label(value: &str) -> Result<(String, String), String> {
    let (key, val) = value.split_once('=').unwrap_or((value, ""));
    if key.trim().is_empty() {
        return Err(format!("bad label {value:?}: empty key (expected key=value)"));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(format!("bad label {value:?}: key contains whitespace"));
    }
    Ok((key.to_string(), val.to_string()))
}

/// Filters are passed to the daemon verbatim as `key=value`; only the shape is checked here.
pub fn parse_filter(value: &str) -> Result<String, String> {
    match value.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() => Ok(value.to_string()),
        _ => Err(format!("bad format of filter {value:?} (expected name=value)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cnet").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn host_default_and_forms() {
        // The environment may set CNET_SOCKET; only check explicit values.
        let cli = parse(&["-H", "/tmp/x.sock", "info"]).unwrap();
        assert_eq!(cli.host, PathBuf::from("/tmp/x.sock"));
        let cli = parse(&["info", "--host", "unix:///tmp/y.sock"]).unwrap();
        assert_eq!(cli.host, PathBuf::from("/tmp/y.sock"));
        let cli = parse(&["-H", "", "info"]).unwrap();
        assert_eq!(cli.host, PathBuf::from(cnet_api::DEFAULT_SOCKET));
        assert!(parse(&["-H", "unix://", "info"]).is_err());
        let err = parse(&["-H", "tcp://1.2.3.4:2375", "info"]).unwrap_err();
        assert!(err.to_string().contains("tcp://1.2.3.4:2375"), "{err}");
    }

    #[test]
    fn create_and_shorthand_parse_the_same() {
        let args = [
            "--subnet",
            "10.1.0.0/16",
            "--gateway",
            "10.1.0.1",
            "-o",
            "com.docker.network.bridge.name=br1",
            "--label",
            "env=dev",
            "--label",
            "flag",
            "--ipv6",
            "--internal",
            "--attachable",
            "-d",
            "bridge",
            "net1",
        ];
        let long: Vec<&str> = ["network", "create"].iter().chain(&args).copied().collect();
        let short: Vec<&str> = ["create"].iter().chain(&args).copied().collect();
        let a = match parse(&long).unwrap().command {
            Command::Network(NetworkArgs { command: NetworkSubcommand::Network(NetworkCommand::Create(a)) }) => a,
            other => panic!("{other:?}"),
        };
        let b = match parse(&short).unwrap().command {
            Command::Create(b) => b,
            other => panic!("{other:?}"),
        };
        for c in [&a, &b] {
            assert_eq!(c.name, "net1");
            assert_eq!(c.subnets, ["10.1.0.0/16"]);
            assert_eq!(c.gateways, ["10.1.0.1"]);
            assert_eq!(c.options, [("com.docker.network.bridge.name".into(), "br1".into())]);
            assert_eq!(c.labels, [("env".into(), "dev".into()), ("flag".into(), String::new())]);
            assert!(c.ipv6 && c.internal && c.attachable);
        }
    }

    #[test]
    fn driver_defaults_to_bridge() {
        match parse(&["create", "n"]).unwrap().command {
            Command::Create(a) => assert_eq!(a.driver, "bridge"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_key_values_name_the_value() {
        for (flag, bad) in [("--opt", "=x"), ("--aux-address", "host"), ("--label", "=v")] {
            let err = parse(&["network", "create", flag, bad, "n"]).unwrap_err();
            assert!(err.to_string().contains(bad), "{flag} {bad}: {err}");
        }
        // As Docker: a bare driver option has an empty value (`-o encrypted`); drivers judge it.
        assert_eq!(parse_driver_option("encrypted").unwrap(), ("encrypted".to_string(), String::new()));
        let err = parse(&["network", "ls", "-f", "driverbridge"]).unwrap_err();
        assert!(err.to_string().contains("driverbridge"), "{err}");
    }

    #[test]
    fn ls_aliases_and_flags() {
        for sub in ["ls", "list"] {
            let cli =
                parse(&["network", sub, "-q", "--no-trunc", "-f", "driver=bridge", "--filter", "label=a=b"]).unwrap();
            match cli.command {
                Command::Network(NetworkArgs { command: NetworkSubcommand::Network(NetworkCommand::Ls(a)) }) => {
                    assert!(a.quiet && a.no_trunc);
                    assert_eq!(a.filters, ["driver=bridge", "label=a=b"]);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn rm_alias_and_required_args() {
        let cli = parse(&["network", "remove", "a", "b"]).unwrap();
        match cli.command {
            Command::Network(NetworkArgs { command: NetworkSubcommand::Network(NetworkCommand::Rm(a)) }) => {
                assert_eq!(a.networks, ["a", "b"])
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["network", "rm"]).is_err());
        assert!(parse(&["network", "inspect"]).is_err());
    }

    #[test]
    fn connect_takes_driver_options_and_a_gateway_priority() {
        let cli = parse(&[
            "network",
            "connect",
            "--driver-opt",
            "com.docker.network.endpoint.ifname=eth3",
            "--gw-priority",
            "-5",
            "--alias",
            "r1",
            "lab",
            "c1",
        ])
        .unwrap();
        match cli.command {
            Command::Network(NetworkArgs { command: NetworkSubcommand::Connect(a) }) => {
                assert_eq!(a.driver_opts, [("com.docker.network.endpoint.ifname".into(), "eth3".into())]);
                assert_eq!(a.gw_priority, -5);
                assert_eq!((a.network.as_str(), a.container.as_str()), ("lab", "c1"));
            }
            other => panic!("{other:?}"),
        }
        let err = parse(&["network", "connect", "--driver-opt", "noequals", "lab", "c1"]).unwrap_err();
        assert!(err.to_string().contains("noequals"), "{err}");
        let err = parse(&["network", "connect", "--gw-priority", "high", "lab", "c1"]).unwrap_err();
        assert!(err.to_string().contains("high"), "{err}");
    }

    #[test]
    fn prune_force() {
        let cli = parse(&["network", "prune", "-f"]).unwrap();
        match cli.command {
            Command::Network(NetworkArgs { command: NetworkSubcommand::Network(NetworkCommand::Prune(a)) }) => {
                assert!(a.force)
            }
            other => panic!("{other:?}"),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct PortArgs {
    /// The container (name, id or unique id prefix)
    pub container: String,
    /// Only this container port: PORT[/PROTO]
    pub private_port: Option<String>,
}
