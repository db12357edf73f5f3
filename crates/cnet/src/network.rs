//! `cnet network create|ls|inspect|rm|prune` (and the `cnet create` shorthand), and `cnet network
//! connect|disconnect`, which act on a container through the runtime.
//!
//! Each command is split into a pure part (building the request, rendering the reply) and a
//! thin part that talks to the daemon, so the pure parts are tested without one.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, IsTerminal, Write};
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context as _, bail};
use cnet_api::v1::{
    CreateNetworkRequest, Ipam, IpamConfig, ListNetworksRequest, Network, NetworkRef, PruneNetworksRequest,
};
use cnet_core::ipam;
use cnet_runtime::lifecycle;
use cnet_runtime::spec::NetworkAttachment;
use ipnetwork::IpNetwork;
use serde::Serialize;
use tonic::Code;

use crate::cli::{
    NetworkCommand, NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkInspectArgs, NetworkLsArgs,
    NetworkPruneArgs, NetworkRmArgs, NetworkRotateKeyArgs,
};
use crate::client::{self, CallError, Daemon};
use crate::context::Ctx;
use crate::output::{Table, natural_cmp, pretty_json, short_id};

/// The prompt `cnet network prune` shows without `--force` (same text as Docker).
pub const PRUNE_WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ";

/// Runs one `cnet network` subcommand against the daemon on `socket`.
pub async fn run(socket: &Path, command: NetworkCommand) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let stderr = io::stderr();
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    match command {
        NetworkCommand::Create(args) => create(socket, &args, &mut out).await,
        NetworkCommand::Ls(args) => ls(&Daemon::connect(socket).await?, &args, &mut out).await,
        NetworkCommand::Inspect(args) => inspect(&Daemon::connect(socket).await?, &args, &mut out, &mut err).await,
        NetworkCommand::Rm(args) => rm(&Daemon::connect(socket).await?, &args, &mut out, &mut err).await,
        NetworkCommand::RotateKey(args) => rotate_key(&Daemon::connect(socket).await?, &args, &mut out).await,
        NetworkCommand::Prune(args) => {
            if !args.force {
                let stdin = io::stdin();
                if !stdin.is_terminal() {
                    bail!(
                        "cannot ask for confirmation: stdin is not a terminal; \
                         pass -f/--force to prune networks without confirmation"
                    );
                }
                if !confirm(&mut stdin.lock(), &mut out)? {
                    return Ok(ExitCode::SUCCESS);
                }
            }
            prune(&Daemon::connect(socket).await?, &args, &mut out).await
        }
    }
}

// ---------------------------------------------------------------- create

/// `cnet network create` / `cnet create`: validates the flags before dialing the daemon.
pub async fn create(socket: &Path, args: &NetworkCreateArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let request = build_create_request(args)?;
    let daemon = Daemon::connect(socket).await?;
    let network = daemon.networks().create_network(request).await.map_err(|s| daemon.error(s))?.into_inner();
    writeln!(out, "{}", network.id)?;
    Ok(ExitCode::SUCCESS)
}

/// Builds the request the way Docker's CLI builds its IPAM config: one `IpamConfig` per
/// `--subnet`; every `--gateway`, `--ip-range` and `--aux-address` goes to the subnet that
/// contains it (for the usual one-gateway-per-subnet command lines this is the same as pairing
/// them by order, and it also handles e.g. a gateway given only for the IPv6 subnet).
pub fn build_create_request(args: &NetworkCreateArgs) -> anyhow::Result<CreateNetworkRequest> {
    if args.subnets.is_empty() {
        if let Some(g) = args.gateways.first() {
            bail!("cannot specify gateway {g} without subnet: pass --subnet as well");
        }
        if let Some(r) = args.ip_ranges.first() {
            bail!("cannot specify ip-range {r} without subnet: pass --subnet as well");
        }
        if let Some((name, ip)) = args.aux_addresses.first() {
            bail!("cannot specify aux-address {name}={ip} without subnet: pass --subnet as well");
        }
    }

    let mut subnets: Vec<IpNetwork> = Vec::with_capacity(args.subnets.len());
    for s in &args.subnets {
        let net = IpNetwork::from_str(s).map_err(|e| anyhow::anyhow!("invalid subnet {s}: {e}"))?;
        if let Some((other, _)) = args.subnets.iter().zip(&subnets).find(|(_, o)| ipam::overlaps(o, &net)) {
            bail!(
                "multiple overlapping subnet configuration is not supported: \
                 {other} and {s} overlap"
            );
        }
        subnets.push(net);
    }
    let mut configs: Vec<IpamConfig> =
        args.subnets.iter().map(|s| IpamConfig { subnet: s.clone(), ..Default::default() }).collect();

    for r in &args.ip_ranges {
        let range = IpNetwork::from_str(r).map_err(|e| anyhow::anyhow!("invalid ip-range {r}: {e}"))?;
        let i = subnets
            .iter()
            .position(|s| ipam::contains_net(s, &range))
            .with_context(|| format!("no matching subnet for range {r}"))?;
        let config = &mut configs[i];
        if !config.ip_range.is_empty() {
            bail!("cannot configure multiple ranges ({r}, {}) on the same subnet ({})", config.ip_range, config.subnet);
        }
        config.ip_range = r.clone();
    }

    for g in &args.gateways {
        let ip = IpAddr::from_str(g).map_err(|_| anyhow::anyhow!("invalid gateway {g}: not an IP address"))?;
        let i = subnets
            .iter()
            .position(|s| s.contains(ip))
            .with_context(|| format!("no matching subnet for gateway {g}"))?;
        let config = &mut configs[i];
        if !config.gateway.is_empty() {
            bail!(
                "cannot configure multiple gateways ({g}, {}) for the same subnet ({})",
                config.gateway,
                config.subnet
            );
        }
        config.gateway = g.clone();
    }

    for (name, addr) in &args.aux_addresses {
        let ip = IpAddr::from_str(addr)
            .map_err(|_| anyhow::anyhow!("invalid aux-address {name}={addr}: {addr} is not an IP address"))?;
        let i = subnets
            .iter()
            .position(|s| s.contains(ip))
            .with_context(|| format!("no matching subnet for aux-address {name}={addr}"))?;
        configs[i].aux_addresses.insert(name.clone(), addr.clone());
    }

    Ok(CreateNetworkRequest {
        name: args.name.clone(),
        driver: args.driver.clone(),
        ipam: Some(Ipam { driver: "default".to_string(), config: configs }),
        options: to_map(&args.options),
        labels: to_map(&args.labels),
        internal: args.internal,
        attachable: args.attachable,
        enable_ipv6: args.ipv6,
    })
}

fn to_map(pairs: &[(String, String)]) -> HashMap<String, String> {
    // Later flags win, like Docker's map options.
    pairs.iter().cloned().collect()
}

// ---------------------------------------------------------------- ls

/// `cnet network ls`: filters are sent verbatim; the daemon applies them.
pub async fn ls(daemon: &Daemon, args: &NetworkLsArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let format = crate::format::check(args.format.as_deref())?;
    let request = ListNetworksRequest { filters: args.filters.clone() };
    let networks = daemon.networks().list_networks(request).await.map_err(|s| daemon.error(s))?.into_inner().networks;
    match format {
        Some(format) if !args.quiet => {
            let mut sorted: Vec<&Network> = networks.iter().collect();
            sorted.sort_by(|a, b| natural_cmp(&a.name, &b.name));
            let rows: Vec<serde_json::Value> = sorted.iter().map(|n| ls_row(n, args.no_trunc)).collect();
            out.write_all(crate::format::render(&format, &rows)?.as_bytes())?;
        }
        _ => out.write_all(render_ls(&networks, args).as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// One network as `network ls --format` sees it: Docker's field names.
fn ls_row(n: &Network, no_trunc: bool) -> serde_json::Value {
    let mut labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    serde_json::json!({
        "ID": if no_trunc { n.id.as_str() } else { short_id(&n.id) },
        "Name": n.name,
        "Driver": n.driver,
        "Scope": n.scope,
        "IPv6": n.enable_ipv6,
        "Internal": n.internal,
        "Labels": labels.join(","),
        "CreatedAt": n.created,
    })
}

/// The `network ls` output: sorted by name (naturally, like Docker), ids truncated to 12
/// characters unless `--no-trunc`, only ids with `-q`.
pub fn render_ls(networks: &[Network], args: &NetworkLsArgs) -> String {
    let mut sorted: Vec<&Network> = networks.iter().collect();
    sorted.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    let id = |n: &Network| -> String { if args.no_trunc { n.id.clone() } else { short_id(&n.id).to_string() } };
    if args.quiet {
        return sorted.iter().map(|n| id(n) + "\n").collect();
    }
    let mut table = Table::new(["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
    for n in sorted {
        table.row([id(n), n.name.clone(), n.driver.clone(), n.scope.clone()]);
    }
    table.render()
}

// ---------------------------------------------------------------- inspect

/// `cnet network inspect`: prints every network found as one JSON array, then one error line
/// per network that was not, and fails if any was not.
pub async fn inspect(
    daemon: &Daemon,
    args: &NetworkInspectArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut client = daemon.networks();
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.networks {
        let request = NetworkRef { network: name.clone() };
        match client.inspect_network(request).await {
            Ok(reply) => found.push(inspect_view(&reply.into_inner())),
            Err(status) if status.code() == Code::NotFound => {
                errors.push(format!("Error: No such network: {name}"));
            }
            Err(status) => match daemon.error(status).downcast::<tonic::Status>() {
                Ok(status) => errors.push(client::daemon_message(&status)),
                Err(fatal) => return Err(fatal),
            },
        }
    }
    match crate::format::check(args.format.as_deref())? {
        Some(format) => {
            let objects = found.iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?;
            out.write_all(crate::format::render(&format, &objects)?.as_bytes())?;
        }
        None => out.write_all(pretty_json(&found)?.as_bytes())?,
    }
    for line in &errors {
        writeln!(err, "{line}")?;
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One network as `docker network inspect` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkView {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: IpamView,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigFromView,
    pub config_only: bool,
    pub containers: BTreeMap<String, ContainerView>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamView {
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub config: Vec<IpamConfigView>,
}

/// Field order and omission as Docker's `network.IPAMConfig`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfigView {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub auxiliary_addresses: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigFromView {
    pub network: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerView {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
    /// Global networks: the cluster node the endpoint lives on (other nodes' endpoints are listed
    /// too, keyed `ep-<endpoint id>`).
    #[serde(rename = "Node", skip_serializing_if = "String::is_empty", default)]
    pub node: String,
}

/// Maps the API's `Network` to the `docker network inspect` shape. `Containers` is keyed by
/// sandbox id (the container id); an endpoint without a sandbox is keyed `ep-<endpoint id>`.
pub fn inspect_view(n: &Network) -> NetworkView {
    let ipam = n.ipam.clone().unwrap_or_default();
    NetworkView {
        name: n.name.clone(),
        id: n.id.clone(),
        created: n.created.clone(),
        scope: n.scope.clone(),
        driver: n.driver.clone(),
        enable_ipv6: n.enable_ipv6,
        ipam: IpamView {
            driver: if ipam.driver.is_empty() { "default".to_string() } else { ipam.driver },
            options: BTreeMap::new(),
            config: ipam
                .config
                .into_iter()
                .map(|c| IpamConfigView {
                    subnet: c.subnet,
                    ip_range: c.ip_range,
                    gateway: c.gateway,
                    auxiliary_addresses: c.aux_addresses.into_iter().collect(),
                })
                .collect(),
        },
        internal: n.internal,
        attachable: n.attachable,
        ingress: false,
        config_from: ConfigFromView { network: String::new() },
        config_only: false,
        containers: n
            .endpoints
            .iter()
            .map(|e| {
                let key = if e.sandbox_id.is_empty() { format!("ep-{}", e.endpoint_id) } else { e.sandbox_id.clone() };
                let view = ContainerView {
                    name: e.name.clone(),
                    endpoint_id: e.endpoint_id.clone(),
                    mac_address: e.mac_address.clone(),
                    ipv4_address: e.ipv4_address.clone(),
                    ipv6_address: e.ipv6_address.clone(),
                    node: e.node.clone(),
                };
                (key, view)
            })
            .collect(),
        options: n.options.clone().into_iter().collect(),
        labels: n.labels.clone().into_iter().collect(),
    }
}

// ---------------------------------------------------------------- rm

/// `cnet network rm`: removes each network in turn, printing the name as given; failures are
/// reported per network and make the command fail at the end.
pub async fn rm(
    daemon: &Daemon,
    args: &NetworkRmArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let mut client = daemon.networks();
    let mut failed = false;
    for name in &args.networks {
        let request = NetworkRef { network: name.clone() };
        match client.remove_network(request).await {
            Ok(_) => writeln!(out, "{name}")?,
            Err(status) if args.force && status.code() == Code::NotFound => {}
            Err(status) => match daemon.error(status).downcast::<tonic::Status>() {
                Ok(status) => {
                    failed = true;
                    writeln!(err, "{}", client::daemon_message(&status))?;
                }
                Err(fatal) => return Err(fatal),
            },
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

// ---------------------------------------------------------------- rotate-key

/// `cnet network rotate-key NETWORK`: prints the network's name and the new key's serial.
pub async fn rotate_key(daemon: &Daemon, args: &NetworkRotateKeyArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let resp = daemon
        .networks()
        .rotate_network_key(NetworkRef { network: args.network.clone() })
        .await
        .map_err(|s| daemon.error(s))?
        .into_inner();
    writeln!(out, "{}: key {}", args.network, resp.serial)?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- prune

/// Asks [`PRUNE_WARNING`] on `out` and reads the answer from `input`: only `y`/`yes`
/// (any case) confirm; end of input declines.
pub fn confirm(input: &mut dyn BufRead, out: &mut dyn Write) -> io::Result<bool> {
    out.write_all(PRUNE_WARNING.as_bytes())?;
    out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    let answer = answer.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}

/// `cnet network prune` after confirmation.
pub async fn prune(daemon: &Daemon, _args: &NetworkPruneArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let removed = daemon
        .networks()
        .prune_networks(PruneNetworksRequest {})
        .await
        .map_err(|s| daemon.error(s))?
        .into_inner()
        .removed;
    out.write_all(render_prune(&removed).as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `Deleted Networks:` and one name per line; nothing when nothing was removed.
pub fn render_prune(removed: &[String]) -> String {
    if removed.is_empty() {
        return String::new();
    }
    let mut s = String::from("Deleted Networks:\n");
    for name in removed {
        s.push_str(name);
        s.push('\n');
    }
    s
}

// ---------------------------------------------------------------- connect, disconnect (a container's networks)

pub async fn connect(ctx: &Ctx, args: &NetworkConnectArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    let c = rt.find(&args.container)?;
    let mut cnetd = ctx.cnetd().await?;
    let net = NetworkAttachment {
        network: args.network.clone(),
        ipv4: args.ip.clone().unwrap_or_default(),
        ipv6: args.ip6.clone().unwrap_or_default(),
        aliases: args.aliases.clone(),
        driver_opts: args.driver_opts.iter().cloned().collect(),
        gw_priority: args.gw_priority,
        ..Default::default()
    };
    lifecycle::connect_network(&mut cnetd, &c, &net).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn disconnect(ctx: &Ctx, args: &NetworkDisconnectArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    let c = rt.find(&args.container)?;
    let mut cnetd = ctx.cnetd().await?;
    lifecycle::disconnect_network(&mut cnetd, &c, &args.network).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnet_api::v1::EndpointSummary;

    fn args(name: &str) -> NetworkCreateArgs {
        NetworkCreateArgs { driver: "bridge".into(), name: name.into(), ..Default::default() }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn plain_create() {
        let mut a = args("n1");
        a.internal = true;
        a.options = pairs(&[("mtu", "1400"), ("mtu", "1500")]);
        a.labels = pairs(&[("env", "dev")]);
        let r = build_create_request(&a).unwrap();
        assert_eq!(r.name, "n1");
        assert_eq!(r.driver, "bridge");
        assert!(r.internal && !r.attachable && !r.enable_ipv6);
        let ipam = r.ipam.unwrap();
        assert_eq!(ipam.driver, "default");
        assert!(ipam.config.is_empty());
        assert_eq!(r.options.get("mtu").map(String::as_str), Some("1500"));
        assert_eq!(r.labels.get("env").map(String::as_str), Some("dev"));
    }

    #[test]
    fn gateways_ranges_and_aux_go_to_their_subnets() {
        let mut a = args("dual");
        a.ipv6 = true;
        a.subnets = strings(&["10.10.0.0/16", "fd00:10::/64"]);
        // Given in the opposite order to the subnets, and an IPv6-only range.
        a.gateways = strings(&["fd00:10::1", "10.10.0.254"]);
        a.ip_ranges = strings(&["fd00:10::/80"]);
        a.aux_addresses = pairs(&[("router", "10.10.0.2"), ("dns6", "fd00:10::53")]);
        let r = build_create_request(&a).unwrap();
        assert!(r.enable_ipv6);
        let c = r.ipam.unwrap().config;
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].subnet, "10.10.0.0/16");
        assert_eq!(c[0].gateway, "10.10.0.254");
        assert_eq!(c[0].ip_range, "");
        assert_eq!(c[0].aux_addresses, HashMap::from([("router".to_string(), "10.10.0.2".to_string())]));
        assert_eq!(c[1].subnet, "fd00:10::/64");
        assert_eq!(c[1].gateway, "fd00:10::1");
        assert_eq!(c[1].ip_range, "fd00:10::/80");
        assert_eq!(c[1].aux_addresses, HashMap::from([("dns6".to_string(), "fd00:10::53".to_string())]));
    }

    #[test]
    fn subnets_paired_in_order() {
        let mut a = args("two");
        a.subnets = strings(&["172.30.0.0/24", "172.31.0.0/24"]);
        a.gateways = strings(&["172.30.0.1", "172.31.0.1"]);
        let c = build_create_request(&a).unwrap().ipam.unwrap().config;
        assert_eq!((c[0].gateway.as_str(), c[1].gateway.as_str()), ("172.30.0.1", "172.31.0.1"));
    }

    fn err_of(a: &NetworkCreateArgs) -> String {
        format!("{:#}", build_create_request(a).unwrap_err())
    }

    #[test]
    fn gateway_or_range_without_subnet() {
        let mut a = args("x");
        a.gateways = strings(&["10.0.0.1"]);
        let e = err_of(&a);
        assert!(e.contains("cannot specify gateway 10.0.0.1 without subnet"), "{e}");

        let mut a = args("x");
        a.ip_ranges = strings(&["10.0.0.0/25"]);
        let e = err_of(&a);
        assert!(e.contains("cannot specify ip-range 10.0.0.0/25 without subnet"), "{e}");

        let mut a = args("x");
        a.aux_addresses = pairs(&[("h", "10.0.0.9")]);
        let e = err_of(&a);
        assert!(e.contains("h=10.0.0.9") && e.contains("without subnet"), "{e}");
    }

    #[test]
    fn errors_name_the_bad_value() {
        let base = {
            let mut a = args("x");
            a.subnets = strings(&["10.0.0.0/24"]);
            a
        };
        type Edit = Box<dyn Fn(&mut NetworkCreateArgs)>;
        let cases: Vec<(Edit, &str)> = vec![
            (Box::new(|a| a.subnets = strings(&["10.0.0.0/33"])), "10.0.0.0/33"),
            (Box::new(|a| a.subnets = strings(&["bogus"])), "bogus"),
            (Box::new(|a| a.gateways = strings(&["10.0.0.300"])), "10.0.0.300"),
            (Box::new(|a| a.gateways = strings(&["10.9.0.1"])), "no matching subnet for gateway 10.9.0.1"),
            (Box::new(|a| a.ip_ranges = strings(&["10.0.1.0/25"])), "no matching subnet for range 10.0.1.0/25"),
            (Box::new(|a| a.ip_ranges = strings(&["10.0.0.0/16"])), "10.0.0.0/16"),
            (Box::new(|a| a.ip_ranges = strings(&["nope/8"])), "nope/8"),
            (Box::new(|a| a.aux_addresses = pairs(&[("h", "1.2.3")])), "1.2.3"),
            (Box::new(|a| a.aux_addresses = pairs(&[("h", "10.1.0.1")])), "h=10.1.0.1"),
            (
                Box::new(|a| a.gateways = strings(&["10.0.0.1", "10.0.0.2"])),
                "cannot configure multiple gateways (10.0.0.2, 10.0.0.1)",
            ),
            (Box::new(|a| a.subnets.push("10.0.0.128/25".into())), "10.0.0.0/24 and 10.0.0.128/25 overlap"),
        ];
        for (edit, needle) in cases {
            let mut a = base.clone();
            edit(&mut a);
            let e = err_of(&a);
            assert!(e.contains(needle), "expected {needle:?} in {e:?}");
        }
    }

    fn net(id: &str, name: &str, driver: &str) -> Network {
        Network { id: id.into(), name: name.into(), driver: driver.into(), scope: "local".into(), ..Default::default() }
    }

    fn sample_list() -> Vec<Network> {
        vec![
            net(&"b".repeat(64), "net10", "bridge"),
            net(&"a".repeat(64), "bridge", "bridge"),
            net(&"c".repeat(64), "net2", "bridge"),
            net(&"d".repeat(64), "host", "host"),
            net(&"e".repeat(64), "none", "null"),
        ]
    }

    #[test]
    fn ls_table() {
        let out = render_ls(&sample_list(), &NetworkLsArgs::default());
        let expected = "\
NETWORK ID     NAME      DRIVER    SCOPE
aaaaaaaaaaaa   bridge    bridge    local
dddddddddddd   host      host      local
cccccccccccc   net2      bridge    local
bbbbbbbbbbbb   net10     bridge    local
eeeeeeeeeeee   none      null      local
";
        assert_eq!(out, expected);
    }

    #[test]
    fn ls_no_trunc_and_quiet() {
        let a = NetworkLsArgs { no_trunc: true, ..Default::default() };
        let out = render_ls(&sample_list(), &a);
        let first = out.lines().nth(1).unwrap();
        assert_eq!(first, format!("{}   bridge    bridge    local", "a".repeat(64)));
        assert!(out.starts_with(&format!("NETWORK ID{}NAME", " ".repeat(64 + 3 - 10))));

        let a = NetworkLsArgs { quiet: true, ..Default::default() };
        assert_eq!(
            render_ls(&sample_list(), &a),
            "aaaaaaaaaaaa\ndddddddddddd\ncccccccccccc\nbbbbbbbbbbbb\neeeeeeeeeeee\n"
        );
        let a = NetworkLsArgs { quiet: true, no_trunc: true, ..Default::default() };
        assert_eq!(render_ls(&sample_list(), &a).lines().next().unwrap(), "a".repeat(64));
    }

    #[test]
    fn ls_empty() {
        assert_eq!(render_ls(&[], &NetworkLsArgs::default()), "NETWORK ID   NAME      DRIVER    SCOPE\n");
        let quiet = NetworkLsArgs { quiet: true, ..Default::default() };
        assert_eq!(render_ls(&[], &quiet), "");
    }

    fn sample_network() -> Network {
        Network {
            id: "f".repeat(64),
            name: "app".into(),
            driver: "bridge".into(),
            scope: "local".into(),
            ipam: Some(Ipam {
                driver: "default".into(),
                config: vec![
                    IpamConfig {
                        subnet: "172.20.0.0/16".into(),
                        gateway: "172.20.0.1".into(),
                        ip_range: "172.20.5.0/24".into(),
                        aux_addresses: HashMap::from([("r".into(), "172.20.0.2".into())]),
                    },
                    IpamConfig { subnet: "fd00:20::/64".into(), gateway: "fd00:20::1".into(), ..Default::default() },
                ],
            }),
            options: HashMap::from([("com.docker.network.bridge.name".into(), "br-app".into())]),
            labels: HashMap::from([("env".into(), "dev".into())]),
            internal: false,
            attachable: true,
            enable_ipv6: true,
            created: "2025-01-02T03:04:05.678Z".into(),
            builtin: false,
            endpoints: vec![EndpointSummary {
                endpoint_id: "1".repeat(64),
                sandbox_id: "2".repeat(64),
                name: "web".into(),
                mac_address: "02:42:ac:14:05:02".into(),
                ipv4_address: "172.20.5.2/16".into(),
                ipv6_address: "fd00:20::2/64".into(),
                ..Default::default()
            }],
        }
    }

    #[test]
    fn inspect_json_shape() {
        let json = pretty_json(&[inspect_view(&sample_network())]).unwrap();
        let expected = r#"[
    {
        "Name": "app",
        "Id": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "Created": "2025-01-02T03:04:05.678Z",
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": true,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [
                {
                    "Subnet": "172.20.0.0/16",
                    "IPRange": "172.20.5.0/24",
                    "Gateway": "172.20.0.1",
                    "AuxiliaryAddresses": {
                        "r": "172.20.0.2"
                    }
                },
                {
                    "Subnet": "fd00:20::/64",
                    "Gateway": "fd00:20::1"
                }
            ]
        },
        "Internal": false,
        "Attachable": true,
        "Ingress": false,
        "ConfigFrom": {
            "Network": ""
        },
        "ConfigOnly": false,
        "Containers": {
            "2222222222222222222222222222222222222222222222222222222222222222": {
                "Name": "web",
                "EndpointID": "1111111111111111111111111111111111111111111111111111111111111111",
                "MacAddress": "02:42:ac:14:05:02",
                "IPv4Address": "172.20.5.2/16",
                "IPv6Address": "fd00:20::2/64"
            }
        },
        "Options": {
            "com.docker.network.bridge.name": "br-app"
        },
        "Labels": {
            "env": "dev"
        }
    }
]
"#;
        assert_eq!(json, expected);
    }

    #[test]
    fn inspect_defaults_for_sparse_network() {
        let v = inspect_view(&net("abc", "n", "bridge"));
        assert_eq!(v.ipam.driver, "default");
        let json: serde_json::Value = serde_json::from_str(&pretty_json(&v).unwrap()).unwrap();
        assert_eq!(json["IPAM"]["Config"], serde_json::json!([]));
        assert_eq!(json["IPAM"]["Options"], serde_json::json!({}));
        assert_eq!(json["Containers"], serde_json::json!({}));
        assert_eq!(json["Labels"], serde_json::json!({}));
        assert_eq!(json["ConfigFrom"]["Network"], "");
        assert_eq!(pretty_json(&Vec::<NetworkView>::new()).unwrap(), "[]\n");
    }

    #[test]
    fn confirm_answers() {
        for (input, yes) in [
            ("y\n", true),
            ("YES\n", true),
            (" yes \n", true),
            ("n\n", false),
            ("\n", false),
            ("", false),
            ("yy\n", false),
        ] {
            let mut out = Vec::new();
            let got = confirm(&mut input.as_bytes(), &mut out).unwrap();
            assert_eq!(got, yes, "{input:?}");
            assert_eq!(String::from_utf8(out).unwrap(), PRUNE_WARNING);
        }
    }

    #[test]
    fn prune_output() {
        assert_eq!(render_prune(&[]), "");
        assert_eq!(render_prune(&strings(&["a", "b"])), "Deleted Networks:\na\nb\n");
    }
}
