//! `cnet lab`: a topology lab from a file (see [`cnet_lab`]) deployed through the runtime and
//! cnetd: the management network, one `p2p` network per link, the lab's own networks, then one
//! container per node with every network attached at its creation (eth0 management, then its
//! links by the interface names of the file), then each node's `exec` commands.
//!
//! Every object carries the lab's labels, so `inspect` and `destroy` read the live state (the
//! containers and cnetd's networks), never a file of their own: a lab deployed by a CLI that was
//! killed half-way is destroyed all the same.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use cnet_api::v1::{
    CreateNetworkRequest, Ipam, IpamConfig, LinkShaping, ListLinksRequest, ListNetworksRequest, Network, NetworkRef,
    SandboxRef, SetLinkRequest,
};
use cnet_lab::plan::{self, Change, LABEL_HASH, LABEL_NETWORK, Live, LiveEnd, LiveLink};
use cnet_lab::{LABEL_LAB, LABEL_MGMT, Lab, Link, Node};
use cnet_runtime::container::Container;
use cnet_runtime::exec::ExecOptions;
use cnet_runtime::lifecycle;
use cnet_runtime::spec::{ContainerSpec, NetworkAttachment};

use crate::client::{CallError, Daemon};
use crate::context::Ctx;
use crate::output::Table;

mod spread;

/// Docker's option naming the interface of an endpoint inside the container.
const IFNAME_OPT: &str = "com.docker.network.endpoint.ifname";

#[derive(Debug, Clone, Args)]
pub struct LabArgs {
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum LabCommand {
    /// Deploy a lab from a topology file (containerlab's format)
    Deploy(LabFileArgs),
    /// Change a running lab into what its file says, touching nothing else
    Apply(LabApplyArgs),
    /// Remove every container and network of a lab
    Destroy(LabRefArgs),
    /// Show a lab's nodes, their state and interfaces
    Inspect(LabRefArgs),
    /// Run a command in one node of a lab, or in all of them
    Exec(LabExecArgs),
    /// Draw a lab: an SVG picture, or DOT or Mermaid text
    Graph(LabGraphArgs),
    /// This host's part of a lab spread over several hosts (run by cnetd's lab agent)
    #[command(hide = true)]
    Part(spread::PartArgs),
}

#[derive(Debug, Clone, Args)]
pub struct LabGraphArgs {
    #[command(flatten)]
    pub file: LabFileArgs,
    /// svg, dot or mermaid
    #[arg(long, default_value = "svg")]
    pub format: String,
    /// Write the picture to this file instead of standard output
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct LabApplyArgs {
    #[command(flatten)]
    pub file: LabFileArgs,
    /// Print the changes and make none
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LabFileArgs {
    /// The topology file
    #[arg(short = 't', long = "topo", value_name = "FILE")]
    pub topo: PathBuf,
}

/// A lab by its file or by its name.
#[derive(Debug, Clone, Args)]
pub struct LabRefArgs {
    /// The topology file (its `name:` names the lab)
    #[arg(short = 't', long = "topo", value_name = "FILE", conflicts_with = "name")]
    pub topo: Option<PathBuf>,
    /// The lab's name
    #[arg(long, value_name = "LAB")]
    pub name: Option<String>,
    /// Output format: table or json
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Debug, Clone, Args)]
pub struct LabExecArgs {
    #[command(flatten)]
    pub lab: LabRefArgs,
    /// Run in every node of the lab
    #[arg(long, conflicts_with = "node")]
    pub all: bool,
    /// The node (its name in the file)
    #[arg(value_name = "NODE", required_unless_present = "all")]
    pub node: Option<String>,
    /// The command (one shell command line, or a program and its arguments after `--`)
    #[arg(value_name = "CMD", last = true, required = true)]
    pub cmd: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: LabArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        LabCommand::Deploy(a) => deploy(ctx, &a).await,
        LabCommand::Apply(a) => apply(ctx, &a).await,
        LabCommand::Destroy(a) => destroy(ctx, &lab_name(&a)?).await,
        LabCommand::Inspect(a) => inspect(ctx, &lab_name(&a)?, &a.format).await,
        LabCommand::Exec(a) => exec(ctx, &a).await,
        LabCommand::Graph(a) => graph(&a),
        LabCommand::Part(a) => spread::part(ctx, &a).await,
    }
}

fn read_lab(path: &std::path::Path) -> anyhow::Result<Lab> {
    Ok(read_lab_and_text(path)?.0)
}

/// The lab of a file, and the file's text (what a lab spread over hosts stores for them).
fn read_lab_and_text(path: &std::path::Path) -> anyhow::Result<(Lab, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lab = Lab::parse(&path.display().to_string(), &text)?;
    // Absolute, so every host takes relative binds from the same place.
    let dir = path.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
    lab.base_dir = if dir.as_os_str().is_empty() { std::env::current_dir()? } else { std::path::absolute(&dir)? };
    Ok((lab, text))
}

fn lab_name(args: &LabRefArgs) -> anyhow::Result<String> {
    match (&args.topo, &args.name) {
        (Some(path), _) => Ok(read_lab(path)?.name),
        (None, Some(name)) => Ok(name.clone()),
        (None, None) => bail!("name the lab: -t FILE or --name LAB"),
    }
}

/// The lab's containers, by label.
fn containers_of(ctx: &Ctx, lab: &str) -> anyhow::Result<Vec<Container>> {
    let mut out: Vec<Container> = ctx
        .runtime()?
        .list()?
        .into_iter()
        .filter(|c| c.config.labels.get(LABEL_LAB).is_some_and(|l| l == lab))
        .collect();
    out.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(out)
}

/// The container of `reference` as `cnet link set` and `cnet capture` take it: with `lab`, that
/// lab's node of that name; without, a container of that name, else the node of that name of
/// the one lab that has one (so `r1:eth1` works as in the lab file), else a container id.
pub fn find_node(ctx: &Ctx, reference: &str, lab: Option<&str>) -> anyhow::Result<Container> {
    let rt = ctx.runtime()?;
    let is_node = |c: &Container| c.config.labels.get(cnet_lab::LABEL_NODE).is_some_and(|n| n == reference);
    if let Some(lab) = lab {
        return containers_of(ctx, lab)?
            .into_iter()
            .find(is_node)
            .with_context(|| format!("lab {lab} has no node {reference}"));
    }
    let found = rt.find(reference);
    if let Ok(c) = &found
        && c.name() == reference
    {
        return found.map_err(Into::into);
    }
    let mut nodes: Vec<Container> =
        rt.list()?.into_iter().filter(|c| c.config.labels.contains_key(LABEL_LAB) && is_node(c)).collect();
    match nodes.len() {
        0 => Ok(found?),
        1 => Ok(nodes.remove(0)),
        _ => {
            let labs: Vec<&str> =
                nodes.iter().filter_map(|c| c.config.labels.get(LABEL_LAB).map(String::as_str)).collect();
            bail!("{reference} is a node of several labs ({}): say which with --lab LAB", labs.join(", "))
        }
    }
}

/// The lab's networks in cnetd, by label.
async fn networks_of(daemon: &Daemon, lab: &str) -> anyhow::Result<Vec<Network>> {
    let request = ListNetworksRequest { filters: vec![format!("label={LABEL_LAB}={lab}")] };
    let all = daemon.networks().list_networks(request).await?.into_inner().networks;
    // The filter is cnetd's; the check is ours too, so a daemon that ignored it removes nothing else.
    Ok(all.into_iter().filter(|n| n.labels.get(LABEL_LAB).is_some_and(|l| l == lab)).collect())
}

fn network_request(
    name: &str,
    driver: &str,
    subnets: &[String],
    labels: BTreeMap<String, String>,
) -> CreateNetworkRequest {
    CreateNetworkRequest {
        name: name.to_string(),
        driver: driver.to_string(),
        ipam: Some(Ipam {
            driver: "default".into(),
            config: subnets.iter().map(|s| IpamConfig { subnet: s.clone(), ..Default::default() }).collect(),
        }),
        labels: labels.into_iter().collect(),
        enable_ipv6: subnets.iter().any(|s| s.contains(':')),
        ..Default::default()
    }
}

/// The node's container: the management network first (eth0), then its links by their interface
/// names, then the lab's networks it joins.
fn node_spec(lab: &Lab, node: &Node) -> anyhow::Result<ContainerSpec> {
    let mut networks = vec![NetworkAttachment {
        network: lab.mgmt.network.clone(),
        ipv4: node.mgmt_ipv4.clone().unwrap_or_default(),
        ..Default::default()
    }];
    let mut last_eth = 0u32;
    for (link, end) in lab.links_of(&node.name) {
        if let Some(n) = end.interface.strip_prefix("eth").and_then(|n| n.parse().ok()) {
            last_eth = last_eth.max(n);
        }
        networks.push(link_attachment(link, end));
    }
    for name in &node.networks {
        let net = lab.networks.iter().find(|n| &n.name == name).expect("checked by the parser");
        last_eth += 1;
        networks.push(NetworkAttachment {
            network: net.network.clone(),
            driver_opts: BTreeMap::from([(IFNAME_OPT.to_string(), format!("eth{last_eth}"))]),
            ..Default::default()
        });
    }
    let ports = node
        .ports
        .iter()
        .map(|p| cnet_core::portspec::parse_publish(p))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("node {}: ports", node.name))?
        .into_iter()
        .flatten()
        .collect();
    Ok(ContainerSpec {
        name: Some(node.container.clone()),
        hostname: Some(node.name.clone()),
        image: node.image.clone(),
        command: node.cmd.clone(),
        entrypoint: node.entrypoint.clone(),
        env: node.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        networks,
        ports,
        sysctls: node.sysctls.clone(),
        binds: node
            .binds
            .iter()
            .map(|b| cnet_runtime::spec::Bind::parse(b, &lab.base_dir))
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("node {}: binds", node.name))?,
        labels: {
            let mut labels = lab.node_labels(node);
            labels.insert(LABEL_HASH.into(), lab.node_fingerprint(node));
            labels
        },
        ..Default::default()
    })
}

async fn deploy(ctx: &Ctx, args: &LabFileArgs) -> anyhow::Result<ExitCode> {
    let (lab, text) = read_lab_and_text(&args.topo)?;
    if lab.spans_hosts() {
        return spread::deploy(ctx, lab, text).await;
    }
    check_images(ctx, &lab)?;
    if !containers_of(ctx, &lab.name)?.is_empty() {
        bail!("lab {} is deployed already: destroy it first, or apply the file", lab.name);
    }
    let daemon = Daemon::connect(&ctx.socket).await?;
    if !networks_of(&daemon, &lab.name).await?.is_empty() {
        bail!("lab {} has networks already (a deploy cut short?): destroy it, or apply the file", lab.name);
    }
    let changes = plan::plan(&lab, &Live::default());
    if let Err(e) = execute(ctx, &daemon, &lab, &changes, Mode::Whole).await {
        // Nothing half-made: whatever was made goes again.
        if let Err(cleanup) = destroy_quietly(ctx, &daemon, &lab.name, Mode::Whole).await {
            eprintln!("cnet: removing the half-made lab {}: {cleanup:#}", lab.name);
        }
        return Err(e);
    }
    print_nodes(ctx, &daemon, &lab.name, "table").await?;
    Ok(ExitCode::SUCCESS)
}

/// Every node's image, before anything is made.
fn check_images(ctx: &Ctx, lab: &Lab) -> anyhow::Result<()> {
    let images = ctx.runtime()?.images()?;
    for node in &lab.nodes {
        images.resolve(&node.image).with_context(|| format!("node {}: image {}", node.name, node.image))?;
        node_spec(lab, node)?;
    }
    Ok(())
}

/// `apply`: the difference between the file and the running lab (read from labels), made; a lab
/// that does not run is deployed. An apply cut short is finished by the next one.
async fn apply(ctx: &Ctx, args: &LabApplyArgs) -> anyhow::Result<ExitCode> {
    let (lab, text) = read_lab_and_text(&args.file.topo)?;
    let daemon = Daemon::connect(&ctx.socket).await?;
    let stored = spread::stored(&daemon, &lab.name).await?;
    if lab.spans_hosts() || stored.is_some() {
        return spread::apply(&daemon, lab, text, stored, args.dry_run).await;
    }
    check_images(ctx, &lab)?;
    let live = live_lab(ctx, &daemon, &lab.name).await?;
    let changes = plan::plan(&lab, &live);
    if changes.is_empty() {
        println!("lab {}: nothing to change", lab.name);
        return Ok(ExitCode::SUCCESS);
    }
    execute(ctx, &daemon, &lab, &changes, if args.dry_run { Mode::DryRun } else { Mode::Verbose }).await?;
    Ok(ExitCode::SUCCESS)
}

/// The lab as it runs: its nodes, links (with the nodes on them and what their ends have) and
/// networks, by label.
async fn live_lab(ctx: &Ctx, daemon: &Daemon, lab: &str) -> anyhow::Result<Live> {
    let mut live = Live::default();
    let mut node_of_container = BTreeMap::new();
    for c in containers_of(ctx, lab)? {
        let node = c.config.labels.get(cnet_lab::LABEL_NODE).cloned().unwrap_or_default();
        let hash = c.config.labels.get(LABEL_HASH).cloned().unwrap_or_default();
        node_of_container.insert(c.name().to_string(), node.clone());
        live.nodes.insert(node, (c.name().to_string(), hash));
    }
    let request = ListLinksRequest { label: format!("{LABEL_LAB}={lab}") };
    let links = daemon.links().list_links(request).await.map_err(|s| daemon.error(s))?.into_inner().links;
    for link in links {
        let Some(key) = link.labels.get(cnet_lab::LABEL_LINK) else { continue };
        let mut ends = BTreeMap::new();
        for end in &link.ends {
            let Some(node) = node_of_container.get(&end.container) else { continue };
            let shaping = end.shaping.as_ref().map(cnet_core::shaping::Shaping::try_from).transpose()?;
            ends.insert(node.clone(), LiveEnd { mtu: end.mtu, shaping: shaping.unwrap_or_default() });
        }
        let hash = link.labels.get(LABEL_HASH).cloned().unwrap_or_default();
        live.links.insert(key.clone(), LiveLink { network: link.network.clone(), hash, ends });
    }
    for n in networks_of(daemon, lab).await? {
        if let Some(name) = n.labels.get(LABEL_NETWORK) {
            live.networks.insert(name.clone(), n.name.clone());
        }
    }
    Ok(live)
}

/// How [`execute`] goes about a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The whole lab on this host, quietly (a deploy).
    Whole,
    /// The whole lab on this host, printing each change (an apply).
    Verbose,
    /// Print the changes, make none.
    DryRun,
    /// One host's part of a lab spread over several: the links across hosts (global networks)
    /// are made and removed by the CLI that published the lab; a part connects and disconnects
    /// its own ends, and tunes only them.
    Part,
}

/// Makes the changes in order, as `mode` says.
async fn execute(ctx: &Ctx, daemon: &Daemon, lab: &Lab, changes: &[Change], mode: Mode) -> anyhow::Result<()> {
    let (verbose, dry_run) = (matches!(mode, Mode::Verbose | Mode::DryRun), mode == Mode::DryRun);
    let cross_host = |key: &str| mode == Mode::Part && lab.links.iter().any(|l| l.key() == key && lab.crosses_hosts(l));
    let rt = ctx.runtime()?;
    let mut cnetd = ctx.cnetd().await?;
    let mut nets = daemon.networks();
    let link = |key: &str| lab.links.iter().find(|l| l.key() == key).expect("the plan's links are the lab's");
    let adds = changes.iter().any(|c| matches!(c, Change::AddLink { .. } | Change::AddNode { .. }));
    if adds && !dry_run {
        ensure_mgmt(daemon, lab).await?;
    }
    let mut added = Vec::new();
    for change in changes {
        if verbose || dry_run {
            println!("{change}");
        }
        if dry_run {
            continue;
        }
        match change {
            Change::RemoveLink { network, .. } => {
                let n = nets.inspect_network(NetworkRef { network: network.clone() }).await?.into_inner();
                let global = n.scope == "global";
                for e in &n.endpoints {
                    // Through the runtime, so the container's /etc/hosts follows.
                    let c = match rt.find(&e.sandbox_id) {
                        Ok(c) => c,
                        // A link across hosts has its other end on the other host, that host's part's.
                        Err(_) if global => continue,
                        Err(err) => return Err(err.into()),
                    };
                    lifecycle::disconnect_network(&mut cnetd, &c, &n.id)
                        .await
                        .with_context(|| format!("disconnecting {} from {network}", e.name))?;
                }
                if global && mode == Mode::Part {
                    continue;
                }
                nets.remove_network(NetworkRef { network: n.id.clone() })
                    .await
                    .with_context(|| format!("removing network {network}"))?;
            }
            Change::RemoveNode { container, .. } => {
                let c = rt.find(container)?;
                lifecycle::remove(&rt, &mut cnetd, &c, true).await.with_context(|| format!("removing {container}"))?;
            }
            Change::RemoveNetwork { network, .. } => {
                nets.remove_network(NetworkRef { network: network.clone() })
                    .await
                    .with_context(|| format!("removing network {network}"))?;
            }
            Change::AddNetwork { name } => {
                let net = lab.networks.iter().find(|n| &n.name == name).expect("the plan's networks are the lab's");
                let subnets: Vec<String> = net.subnet.iter().map(|s| s.to_string()).collect();
                let mut labels = lab.labels();
                labels.insert(LABEL_NETWORK.into(), net.name.clone());
                let mut req = network_request(&net.network, &net.driver, &subnets, labels);
                req.options = net.options.clone().into_iter().collect();
                req.internal = net.internal;
                nets.create_network(req).await.with_context(|| format!("creating network {}", net.network))?;
            }
            Change::AddLink { key } if cross_host(key) => {}
            Change::AddLink { key } => {
                nets.create_network(link_request(lab, link(key)))
                    .await
                    .with_context(|| format!("creating link {key}"))?;
            }
            Change::AddNode { node } => {
                let node = lab.node(node).expect("the plan's nodes are the lab's");
                let spec = node_spec(lab, node)?;
                let (c, lock) = lifecycle::create_for_run(&rt, &mut cnetd, spec)
                    .await
                    .with_context(|| format!("creating container {}", node.container))?;
                lifecycle::start(&rt, &c, false).with_context(|| format!("starting container {}", node.container))?;
                drop(lock);
                added.push(node);
            }
            Change::ConnectEnd { key, node } => {
                let l = link(key);
                let end = l.ends.iter().find(|e| &e.node == node).expect("the link's end");
                let container = &lab.node(node).expect("the plan's nodes are the lab's").container;
                let c = rt.find(container)?;
                lifecycle::connect_network(&mut cnetd, &c, &link_attachment(l, end))
                    .await
                    .with_context(|| format!("connecting {node} to link {key}"))?;
            }
            Change::TuneLink { key, wanted } => {
                // A part has one end of a link across hosts; the whole lab has both of each.
                for (end, node) in link(key).ends.iter().filter_map(|end| Some((end, lab.node(&end.node)?))) {
                    let container = &node.container;
                    let request = SetLinkRequest {
                        container: container.clone(),
                        interface: end.interface.clone(),
                        mtu: wanted.mtu,
                        shaping: Some(LinkShaping::from(&wanted.shaping)),
                        ..Default::default()
                    };
                    daemon
                        .links()
                        .set_link(request)
                        .await
                        .map_err(|s| daemon.error(s))
                        .with_context(|| format!("setting {}:{} of link {key}", end.node, end.interface))?;
                }
            }
        }
    }
    for node in added {
        for cmd in &node.exec {
            let code = exec_in(ctx, &node.container, vec!["sh".into(), "-c".into(), cmd.clone()])?;
            if code != 0 {
                bail!("node {}: exec {cmd:?} exited with {code}", node.name);
            }
        }
    }
    Ok(())
}

/// The management network, made (labelled as a lab's) if it does not exist.
async fn ensure_mgmt(daemon: &Daemon, lab: &Lab) -> anyhow::Result<()> {
    let mut nets = daemon.networks();
    if nets.inspect_network(NetworkRef { network: lab.mgmt.network.clone() }).await.is_ok() {
        return Ok(());
    }
    let mut subnets = vec![lab.mgmt.ipv4_subnet.to_string()];
    subnets.extend(lab.mgmt.ipv6_subnet.map(|s| s.to_string()));
    let labels = BTreeMap::from([(LABEL_MGMT.to_string(), "true".to_string())]);
    nets.create_network(network_request(&lab.mgmt.network, "bridge", &subnets, labels))
        .await
        .with_context(|| format!("creating the management network {}", lab.mgmt.network))?;
    Ok(())
}

/// A node's attachment to one of its links: the interface name and address of its end.
fn link_attachment(link: &Link, end: &cnet_lab::End) -> NetworkAttachment {
    NetworkAttachment {
        network: link.network.clone(),
        ipv4: end.ipv4.map(|a| a.ip().to_string()).unwrap_or_default(),
        ipv6: end.ipv6.map(|a| a.ip().to_string()).unwrap_or_default(),
        mac: end.mac.clone().unwrap_or_default(),
        driver_opts: BTreeMap::from([(IFNAME_OPT.to_string(), end.interface.clone())]),
        ..Default::default()
    }
}

fn link_request(lab: &Lab, link: &Link) -> CreateNetworkRequest {
    let subnets: Vec<String> = link.subnets().iter().map(|s| s.to_string()).collect();
    let mut labels = lab.link_labels(link);
    labels.insert(LABEL_HASH.into(), lab.link_fingerprint(link));
    let mut req = network_request(&link.network, lab.link_driver(link), &subnets, labels);
    if let Some(mtu) = link.mtu {
        req.options.insert(cnet_core::options::DRIVER_MTU.into(), mtu.to_string());
    }
    req
}

fn exec_in(ctx: &Ctx, container: &str, command: Vec<String>) -> anyhow::Result<i32> {
    let c = ctx.runtime()?.find(container)?;
    let opts = ExecOptions { command, env: vec![], working_dir: None, interactive: false, tty: false };
    Ok(cnet_runtime::exec::exec(&c, &opts)?)
}

/// Removes the lab's containers, then its networks, then the management network if a lab made
/// it and nothing is on it any more.
async fn destroy(ctx: &Ctx, lab: &str) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::connect(&ctx.socket).await?;
    if let Some(stored) = spread::stored(&daemon, lab).await? {
        return spread::destroy(&daemon, stored).await;
    }
    let (containers, networks) = destroy_quietly(ctx, &daemon, lab, Mode::Whole).await?;
    if containers == 0 && networks == 0 {
        bail!("no lab named {lab} is deployed");
    }
    println!("lab {lab}: removed {containers} containers and {networks} networks");
    Ok(ExitCode::SUCCESS)
}

/// Removes the lab's containers and networks on this host; a [`Mode::Part`] leaves the lab's
/// global networks (its links across hosts) to the CLI that destroys the whole lab.
async fn destroy_quietly(ctx: &Ctx, daemon: &Daemon, lab: &str, mode: Mode) -> anyhow::Result<(usize, usize)> {
    let rt = ctx.runtime()?;
    let mut cnetd = ctx.cnetd().await?;
    let containers = containers_of(ctx, lab)?;
    let mut mgmt_networks: Vec<String> = Vec::new();
    for c in &containers {
        if let Some(first) = c.config.networks.first() {
            mgmt_networks.push(first.network.clone());
        }
        lifecycle::remove(&rt, &mut cnetd, c, true).await.with_context(|| format!("removing {}", c.name()))?;
    }
    let mut networks = networks_of(daemon, lab).await?;
    if mode == Mode::Part {
        networks.retain(|n| n.scope != "global");
    }
    let mut nets = daemon.networks();
    for n in &networks {
        nets.remove_network(NetworkRef { network: n.id.clone() })
            .await
            .with_context(|| format!("removing network {}", n.name))?;
    }
    mgmt_networks.sort();
    mgmt_networks.dedup();
    for name in mgmt_networks {
        if let Ok(n) = nets.inspect_network(NetworkRef { network: name.clone() }).await.map(|r| r.into_inner())
            && n.labels.contains_key(LABEL_MGMT)
            && n.endpoints.is_empty()
        {
            nets.remove_network(NetworkRef { network: n.id.clone() })
                .await
                .with_context(|| format!("removing network {name}"))?;
        }
    }
    Ok((containers.len(), networks.len()))
}

async fn inspect(ctx: &Ctx, lab: &str, format: &str) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::connect(&ctx.socket).await?;
    if let Some(stored) = spread::stored(&daemon, lab).await? {
        render_nodes(&spread::reported_nodes(&stored)?, format, true)?;
        return Ok(ExitCode::SUCCESS);
    }
    if containers_of(ctx, lab)?.is_empty() {
        bail!("no lab named {lab} is deployed");
    }
    print_nodes(ctx, &daemon, lab, format).await?;
    Ok(ExitCode::SUCCESS)
}

/// One node as `inspect` shows it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct NodeView {
    node: String,
    /// The host it runs on, for a lab spread over several.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    host: String,
    container: String,
    image: String,
    state: String,
    interfaces: Vec<InterfaceView>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct InterfaceView {
    name: String,
    network: String,
    mac: String,
    addresses: Vec<String>,
}

async fn print_nodes(ctx: &Ctx, daemon: &Daemon, lab: &str, format: &str) -> anyhow::Result<()> {
    render_nodes(&node_views(ctx, daemon, lab, "").await?, format, false)
}

/// The lab's nodes on this host (`host`: this host's name in a lab spread over several).
async fn node_views(ctx: &Ctx, daemon: &Daemon, lab: &str, host: &str) -> anyhow::Result<Vec<NodeView>> {
    let mut sandboxes = daemon.sandboxes();
    let mut views = Vec::new();
    for c in containers_of(ctx, lab)? {
        let sandbox = sandboxes.inspect_sandbox(SandboxRef { sandbox: c.id().to_string() }).await?.into_inner();
        let mut interfaces: Vec<InterfaceView> = sandbox
            .endpoints
            .iter()
            .map(|e| InterfaceView {
                name: e.interface_name.clone(),
                network: e.network_name.clone(),
                mac: e.mac_address.clone(),
                addresses: [&e.ipv4_address, &e.ipv6_address].into_iter().filter(|a| !a.is_empty()).cloned().collect(),
            })
            .collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        views.push(NodeView {
            node: c.config.labels.get(cnet_lab::LABEL_NODE).cloned().unwrap_or_default(),
            host: host.to_string(),
            container: c.name().to_string(),
            image: c.config.image.clone(),
            state: c.state.status.as_str().to_string(),
            interfaces,
        });
    }
    Ok(views)
}

/// Nodes as a table (with a HOST column when `with_host`) or as JSON.
fn render_nodes(views: &[NodeView], format: &str, with_host: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match format {
        "json" => writeln!(out, "{}", serde_json::to_string_pretty(&views)?)?,
        "table" => {
            let mut headers = vec!["NODE", "CONTAINER", "IMAGE", "STATE", "INTERFACES"];
            if with_host {
                headers.insert(1, "HOST");
            }
            let mut table = Table::new(headers);
            for v in views {
                let ifaces: Vec<String> = v
                    .interfaces
                    .iter()
                    .map(|i| {
                        if i.addresses.is_empty() {
                            i.name.clone()
                        } else {
                            format!("{} {}", i.name, i.addresses.join(" "))
                        }
                    })
                    .collect();
                let mut row =
                    vec![v.node.clone(), v.container.clone(), v.image.clone(), v.state.clone(), ifaces.join(", ")];
                if with_host {
                    row.insert(1, v.host.clone());
                }
                table.row(row);
            }
            out.write_all(table.render().as_bytes())?;
        }
        other => bail!("unknown format {other:?}: expected table or json"),
    }
    Ok(())
}

async fn exec(ctx: &Ctx, args: &LabExecArgs) -> anyhow::Result<ExitCode> {
    let lab = lab_name(&args.lab)?;
    let containers = containers_of(ctx, &lab)?;
    if containers.is_empty() {
        bail!("no lab named {lab} is deployed");
    }
    let command = if args.cmd.len() == 1 {
        vec!["sh".to_string(), "-c".to_string(), args.cmd[0].clone()]
    } else {
        args.cmd.clone()
    };
    let node_of = |c: &Container| c.config.labels.get(cnet_lab::LABEL_NODE).cloned().unwrap_or_default();
    let targets: Vec<&Container> = match &args.node {
        Some(node) => {
            let c = containers
                .iter()
                .find(|c| &node_of(c) == node)
                .with_context(|| format!("lab {lab} has no node {node}"))?;
            vec![c]
        }
        None => containers.iter().collect(),
    };
    let mut failed = false;
    for c in targets {
        if args.all {
            println!("--- {} ---", node_of(c));
            std::io::stdout().flush()?;
        }
        let code = exec_in(ctx, c.id(), command.clone())?;
        if code != 0 {
            if !args.all {
                return Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)));
            }
            eprintln!("node {}: exit code {code}", node_of(c));
            failed = true;
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `graph`: the picture of the file's lab, drawn in-process (no Graphviz needed).
fn graph(args: &LabGraphArgs) -> anyhow::Result<ExitCode> {
    let format = cnet_lab::graph::Format::parse(&args.format)
        .with_context(|| format!("unknown format {:?}: expected svg, dot or mermaid", args.format))?;
    let lab = read_lab(&args.file.topo)?;
    let picture = cnet_lab::graph::render(&lab, format).map_err(anyhow::Error::msg)?;
    match &args.output {
        Some(path) => std::fs::write(path, picture).with_context(|| format!("writing {}", path.display()))?,
        None => std::io::stdout().lock().write_all(picture.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
