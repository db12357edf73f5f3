//! Labs spread over several hosts: a node with `host: NAME` runs on that cluster node, and a link
//! whose ends run on two hosts is a `vxlan` network (its VNI allocated in the cluster store).
//!
//! `deploy`, `apply` and `destroy` work from any host of the cluster. The CLI that runs them makes
//! what is global (the links across hosts), stores the lab file with its placement as a new
//! generation in the cluster store (through cnetd), and waits until every host involved has
//! reported on it: each host's cnetd runs that host's part (`cnet lab part`, hidden), which plans
//! and makes the host's nodes and its ends of the links with the host's own runtime, as a lab on
//! one host is made. Then it removes the global links nobody uses any more; a destroy also
//! forgets the stored lab, so nothing of it is left in etcd.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cnet_api::v1::{InfoRequest, LabRef, LabState, ListNodesRequest, PublishLabRequest};
use tonic::Code;

use super::*;

/// How long the publishing CLI waits for every host's report.
const WAIT_FOR_HOSTS: Duration = Duration::from_secs(600);
/// How often it asks.
const POLL: Duration = Duration::from_millis(200);
/// How often it asks too whether the hosts it waits for are still alive.
const LIVENESS_CHECK: Duration = Duration::from_secs(2);

const ACTION_APPLY: &str = "apply";
const ACTION_DESTROY: &str = "destroy";

#[derive(Debug, Clone, Args)]
pub struct PartArgs {
    /// The lab's name
    #[arg(long)]
    pub name: String,
    /// The generation to act on (a newer one stored meanwhile: exit 75, nothing done)
    #[arg(long)]
    pub generation: u64,
}

/// The lab as the cluster store keeps it, if it does (`None` also when cnetd is in no cluster).
/// With the store unreachable, a lab is taken for one on this host only, and said so.
pub(super) async fn stored(daemon: &Daemon, name: &str) -> anyhow::Result<Option<LabState>> {
    match daemon.labs().get_lab(LabRef { name: name.to_string() }).await {
        Ok(state) => Ok(Some(state.into_inner())),
        Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition | Code::Unimplemented) => Ok(None),
        Err(s) if s.code() == Code::Unavailable => {
            eprintln!(
                "cnet: the cluster store is unreachable ({}): acting on this host's part of lab {name} only",
                s.message()
            );
            Ok(None)
        }
        Err(s) => Err(daemon.error(s)),
    }
}

/// This host's name in the cluster; a lab that names hosts needs one.
async fn this_host(daemon: &Daemon, lab: &Lab) -> anyhow::Result<String> {
    let info = daemon.system().info(InfoRequest {}).await.map_err(|s| daemon.error(s))?.into_inner();
    match info.cluster.map(|c| c.node).filter(|n| !n.is_empty()) {
        Some(node) => Ok(node),
        None => {
            let example = lab
                .nodes
                .iter()
                .find_map(|n| n.host.as_ref().map(|h| format!("node {}: host {h}", n.name)))
                .unwrap_or_default();
            bail!(
                "lab {} puts nodes on hosts ({example}): that needs cnetd in a cluster (start it with \
                 --cluster-store etcd://HOST:PORT and --cluster-advertise ADDR|IFACE)",
                lab.name
            )
        }
    }
}

/// Every host of the placement is a live node of the cluster.
async fn check_hosts(daemon: &Daemon, placement: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let nodes = daemon
        .system()
        .list_nodes(ListNodesRequest {})
        .await
        .map_err(|s| daemon.error(s))
        .context("listing the cluster's nodes")?
        .into_inner()
        .nodes;
    for (node, host) in placement {
        match nodes.iter().find(|n| &n.name == host) {
            None => {
                let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
                bail!("node {node}: host {host} is not a node of the cluster (its nodes: {})", known.join(", "))
            }
            Some(n) if n.state != "ready" => bail!("node {node}: host {host} is {} (cnet node ls)", n.state),
            Some(_) => {}
        }
    }
    Ok(())
}

/// What a lab over several hosts cannot have yet, refused before anything is made.
fn check_spread(lab: &Lab) -> anyhow::Result<()> {
    if let Some(net) = lab.networks.iter().find(|n| n.driver == "overlay") {
        bail!(
            "network {}: an overlay network in a lab spread over several hosts is not supported yet \
             (link the nodes across hosts, or give the network driver bridge, one per host)",
            net.name
        );
    }
    for node in &lab.nodes {
        node_spec(lab, node)?;
    }
    Ok(())
}

/// The lab's links across hosts as they exist: link key -> (network name, fingerprint).
async fn global_links(daemon: &Daemon, lab: &str) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    Ok(networks_of(daemon, lab)
        .await?
        .into_iter()
        .filter(|n| n.scope == "global")
        .filter_map(|n| {
            let key = n.labels.get(cnet_lab::LABEL_LINK)?.clone();
            Some((key, (n.name.clone(), n.labels.get(LABEL_HASH).cloned().unwrap_or_default())))
        })
        .collect())
}

/// Makes the lab's links across hosts that do not exist yet; a link that exists with other
/// addresses or MACs is refused (its hosts' ends would have to leave it before it can go, which
/// one generation cannot do).
async fn make_cross_links(
    daemon: &Daemon,
    lab: &Lab,
    existing: &BTreeMap<String, (String, String)>,
) -> anyhow::Result<()> {
    let mut nets = daemon.networks();
    for link in lab.links.iter().filter(|l| lab.crosses_hosts(l)) {
        match existing.get(&link.key()) {
            Some((_, hash)) if *hash == lab.link_fingerprint(link) => {}
            Some(_) => bail!(
                "link {} across hosts changed its addresses or MACs: remove it in one apply and add it back in the next",
                link.key()
            ),
            None => {
                nets.create_network(link_request(lab, link))
                    .await
                    .map_err(|s| daemon.error(s))
                    .with_context(|| format!("creating link {} across hosts", link.key()))?;
            }
        }
    }
    Ok(())
}

/// Removes the lab's links across hosts for which `gone` holds (their ends left them already).
async fn remove_cross_links(
    daemon: &Daemon,
    existing: &BTreeMap<String, (String, String)>,
    gone: impl Fn(&str) -> bool,
) -> anyhow::Result<usize> {
    let mut nets = daemon.networks();
    let mut removed = 0;
    for (key, (network, _)) in existing.iter().filter(|(key, _)| gone(key)) {
        nets.remove_network(NetworkRef { network: network.clone() })
            .await
            .map_err(|s| daemon.error(s))
            .with_context(|| format!("removing link {key} across hosts"))?;
        removed += 1;
    }
    Ok(removed)
}

/// The generation that asks the lab's hosts to apply `lab` (`text`, placed as `placement`).
fn apply_request(lab: &Lab, text: &str, placement: &BTreeMap<String, String>) -> PublishLabRequest {
    PublishLabRequest {
        name: lab.name.clone(),
        action: ACTION_APPLY.to_string(),
        file: text.to_string(),
        base_dir: lab.base_dir.display().to_string(),
        placement: placement.clone().into_iter().collect(),
    }
}

/// Stores `request` as the lab's next generation, and waits for every host's report on it.
async fn publish_and_wait(daemon: &Daemon, request: PublishLabRequest) -> anyhow::Result<LabState> {
    let name = request.name.clone();
    let published = daemon
        .labs()
        .publish_lab(request)
        .await
        .map_err(|s| daemon.error(s))
        .with_context(|| format!("storing lab {name} in the cluster"))?
        .into_inner();
    wait_for_hosts(daemon, &published).await
}

/// Waits until every host of `published` has reported on its generation; the state with the
/// reports. A host the cluster takes for down (gone longer than its TTL) fails the wait at once:
/// its part runs when it is back, and a second apply or destroy then finds it done.
async fn wait_for_hosts(daemon: &Daemon, published: &LabState) -> anyhow::Result<LabState> {
    let deadline = Instant::now() + WAIT_FOR_HOSTS;
    let mut next_liveness_check = Instant::now() + LIVENESS_CHECK;
    loop {
        let state = daemon
            .labs()
            .get_lab(LabRef { name: published.name.clone() })
            .await
            .map_err(|s| daemon.error(s))?
            .into_inner();
        if state.generation != published.generation {
            bail!(
                "lab {} was changed meanwhile (generation {} after {})",
                state.name,
                state.generation,
                published.generation
            );
        }
        let waiting: Vec<&str> = state
            .hosts
            .iter()
            .filter(|h| !state.reports.iter().any(|r| &r.host == *h && r.generation >= state.generation))
            .map(String::as_str)
            .collect();
        if waiting.is_empty() {
            return Ok(state);
        }
        if Instant::now() > next_liveness_check {
            next_liveness_check = Instant::now() + LIVENESS_CHECK;
            let nodes =
                daemon.system().list_nodes(ListNodesRequest {}).await.map_err(|s| daemon.error(s))?.into_inner();
            let down: Vec<&str> = waiting
                .iter()
                .copied()
                .filter(|h| nodes.nodes.iter().any(|n| n.name == *h && n.state != "ready"))
                .collect();
            if !down.is_empty() {
                bail!(
                    "lab {}: {} went down before reporting (its part runs when it is back; then run this again)",
                    state.name,
                    down.join(", ")
                );
            }
        }
        if Instant::now() > deadline {
            bail!(
                "lab {}: no word from {} after {WAIT_FOR_HOSTS:?} (is their cnetd running? cnet node ls)",
                state.name,
                waiting.join(", ")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Each failed host's message, if any host failed.
fn failures(state: &LabState) -> Option<String> {
    let failed: Vec<String> = state
        .reports
        .iter()
        .filter(|r| r.generation == state.generation && !r.ok)
        .map(|r| format!("host {}: {}", r.host, r.message))
        .collect();
    (!failed.is_empty()).then(|| failed.join("\n"))
}

/// Every host's nodes from its last report.
pub(super) fn reported_nodes(state: &LabState) -> anyhow::Result<Vec<NodeView>> {
    let mut views = Vec::new();
    for report in state.reports.iter().filter(|r| !r.nodes_json.trim().is_empty()) {
        let nodes: Vec<NodeView> = serde_json::from_str(&report.nodes_json)
            .with_context(|| format!("the nodes host {} reported for lab {}", report.host, state.name))?;
        views.extend(nodes);
    }
    views.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(views)
}

pub(super) async fn deploy(ctx: &Ctx, mut lab: Lab, text: String) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::connect(&ctx.socket).await?;
    let me = this_host(&daemon, &lab).await?;
    if stored(&daemon, &lab.name).await?.is_some() || !containers_of(ctx, &lab.name)?.is_empty() {
        bail!("lab {} is deployed already: destroy it first, or apply the file", lab.name);
    }
    let placement = lab.placement(&me);
    lab.place(&placement);
    check_hosts(&daemon, &placement).await?;
    check_spread(&lab)?;
    if !global_links(&daemon, &lab.name).await?.is_empty() {
        bail!("lab {} has links across hosts already (a deploy cut short?): destroy it, or apply the file", lab.name);
    }
    let deployed = async {
        // The links across hosts first: each host's part connects its ends to them by name.
        make_cross_links(&daemon, &lab, &BTreeMap::new()).await?;
        let state = publish_and_wait(&daemon, apply_request(&lab, &text, &placement)).await?;
        match failures(&state) {
            Some(failed) => bail!("lab {} could not be deployed:\n{failed}", lab.name),
            None => Ok(state),
        }
    }
    .await;
    let state = match deployed {
        Ok(state) => state,
        Err(e) => {
            // Nothing half-made: every host removes its part, then the links and the record go.
            let torn_down = async { tear_down(&daemon, &lab.name, stored(&daemon, &lab.name).await?).await };
            if let Err(cleanup) = torn_down.await {
                eprintln!("cnet: removing the half-made lab {}: {cleanup:#}", lab.name);
            }
            return Err(e);
        }
    };
    render_nodes(&reported_nodes(&state)?, "table", true)?;
    Ok(ExitCode::SUCCESS)
}

/// `before`: the lab as the cluster store keeps it, if it does.
pub(super) async fn apply(
    daemon: &Daemon,
    mut lab: Lab,
    text: String,
    before: Option<LabState>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let me = this_host(daemon, &lab).await?;
    // A node the file puts on no host stays where it runs; a new one comes here.
    let mut placement = lab.placement(&me);
    if let Some(before) = &before {
        for node in lab.nodes.iter().filter(|n| n.host.is_none()) {
            if let Some(host) = before.placement.get(&node.name) {
                placement.insert(node.name.clone(), host.clone());
            }
        }
    }
    lab.place(&placement);
    check_hosts(daemon, &placement).await?;
    check_spread(&lab)?;
    let existing = global_links(daemon, &lab.name).await?;
    let wanted: BTreeSet<String> = lab.links.iter().filter(|l| lab.crosses_hosts(l)).map(Link::key).collect();
    if dry_run {
        for key in wanted.iter().filter(|k| !existing.contains_key(*k)) {
            println!("+ link {key} (across hosts)");
        }
        for key in existing.keys().filter(|k| !wanted.contains(*k)) {
            println!("- link {key} (across hosts)");
        }
        let hosts: BTreeSet<&String> = placement.values().collect();
        println!("each of {} plans and makes its own part", hosts.into_iter().cloned().collect::<Vec<_>>().join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    make_cross_links(daemon, &lab, &existing).await?;
    let state = publish_and_wait(daemon, apply_request(&lab, &text, &placement)).await?;
    if let Some(failed) = failures(&state) {
        bail!("lab {} was applied only in part (apply it again to finish):\n{failed}", lab.name);
    }
    let removed = remove_cross_links(daemon, &existing, |key| !wanted.contains(key)).await?;
    println!("lab {}: applied on {} ({removed} links across hosts removed)", lab.name, state.hosts.join(", "));
    render_nodes(&reported_nodes(&state)?, "table", true)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn destroy(daemon: &Daemon, stored: LabState) -> anyhow::Result<ExitCode> {
    let name = stored.name.clone();
    let hosts = tear_down(daemon, &name, Some(stored)).await?;
    println!("lab {name}: removed from {}", hosts.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// Every host removes its part of the stored lab (`before`), then the links across hosts and the
/// stored lab go; the hosts that acted. A host that fails keeps the record, so a second destroy
/// finishes.
async fn tear_down(daemon: &Daemon, name: &str, before: Option<LabState>) -> anyhow::Result<Vec<String>> {
    if let Some(before) = before {
        let request = PublishLabRequest {
            name: before.name,
            action: ACTION_DESTROY.to_string(),
            file: before.file,
            base_dir: before.base_dir,
            placement: before.placement,
        };
        let state = publish_and_wait(daemon, request).await?;
        if let Some(failed) = failures(&state) {
            bail!("lab {name} could not be removed everywhere (destroy it again):\n{failed}");
        }
        remove_cross_links(daemon, &global_links(daemon, name).await?, |_| true).await?;
        daemon.labs().forget_lab(LabRef { name: name.to_string() }).await.map_err(|s| daemon.error(s))?;
        return Ok(state.hosts);
    }
    // Never stored (a deploy that failed before it published): only the links were made.
    remove_cross_links(daemon, &global_links(daemon, name).await?, |_| true).await?;
    Ok(vec![])
}

/// `cnet lab part`: this host's part of a stored generation, run by cnetd's lab agent. Prints
/// the host's nodes as JSON (the agent's report carries them to whoever waits).
pub(super) async fn part(ctx: &Ctx, args: &PartArgs) -> anyhow::Result<ExitCode> {
    let daemon = Daemon::connect(&ctx.socket).await?;
    let state = match daemon.labs().get_lab(LabRef { name: args.name.clone() }).await {
        Ok(state) => state.into_inner(),
        Err(s) if s.code() == Code::NotFound => return Ok(ExitCode::from(cnet_api::LAB_PART_SUPERSEDED)),
        Err(s) => return Err(daemon.error(s)),
    };
    if state.generation != args.generation {
        return Ok(ExitCode::from(cnet_api::LAB_PART_SUPERSEDED));
    }
    let (lock_path, _one_part_at_a_time) = lock_lab(ctx, &state.name)?;
    let mut lab = Lab::parse(&format!("lab {} (stored)", state.name), &state.file)?;
    lab.base_dir = state.base_dir.clone().into();
    lab.place(&state.placement.clone().into_iter().collect());
    let me = this_host(&daemon, &lab).await?;
    match state.action.as_str() {
        ACTION_DESTROY => {
            destroy_quietly(ctx, &daemon, &lab.name, Mode::Part).await?;
            // Nothing of the lab is left here, its lock included (a part that waits for it now
            // would find nothing to remove).
            let _ = std::fs::remove_file(&lock_path);
            println!("[]");
        }
        ACTION_APPLY => {
            let part = lab.part(&me);
            check_images(ctx, &part)?;
            let live = live_lab(ctx, &daemon, &part.name).await?;
            let changes = plan::plan(&part, &live);
            execute(ctx, &daemon, &part, &changes, Mode::Part).await?;
            render_nodes(&node_views(ctx, &daemon, &lab.name, &me).await?, "json", false)?;
        }
        other => bail!("lab {}: unknown action {other:?}", state.name),
    }
    Ok(ExitCode::SUCCESS)
}

/// One part of a lab at a time on a host, across processes: a part left running by a cnetd that
/// was killed finishes before the one its restarted agent starts plans anything.
fn lock_lab(ctx: &Ctx, name: &str) -> anyhow::Result<(std::path::PathBuf, nix::fcntl::Flock<std::fs::File>)> {
    let path = ctx.runtime()?.root().join(format!(".lab-{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| anyhow::anyhow!("locking {}: {errno}", path.display()))?;
    Ok((path, lock))
}
