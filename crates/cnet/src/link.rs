//! `cnet link set NODE:IFACE [up|down] [--mtu N] [--rate R] [--delay D] [--jitter J] [--loss P]
//! [--corrupt P]` and `cnet link ls [LAB]`: the ends of links (p2p networks, or any endpoint's
//! interface for `set`), through cnetd, which owns every container's network namespace.
//!
//! Values are parsed here, before the daemon is dialled (`cnet_core::shaping`, tc's units), so a
//! bad one is refused with nothing sent; the daemon checks the references (container,
//! interface) and the kernel (sch_tbf, sch_netem).

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use cnet_api::v1::{AdminState, Link, LinkEnd, LinkShaping, ListLinksRequest, SetLinkRequest};
use cnet_core::shaping::{self, EndRef, Shaping};
use serde::Serialize;

use crate::client::{CallError, Daemon};
use crate::context::Ctx;
use crate::output::{Table, natural_cmp, pretty_json};

#[derive(Debug, Clone, Args)]
pub struct LinkArgs {
    #[command(subcommand)]
    pub command: LinkCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum LinkCommand {
    /// Take one end of a link down or up, set its MTU, or shape the traffic it sends
    Set(LinkSetArgs),
    /// List links (p2p networks) with both ends, their state, MTU and shaping
    #[command(visible_alias = "list")]
    Ls(LinkLsArgs),
}

/// Flags of `cnet link set`. The shaping flags describe the end's whole shaping: any of them
/// replaces what was set before, and `--rate none` alone removes it all.
#[derive(Debug, Clone, Default, Args)]
pub struct LinkSetArgs {
    /// The end: a container (name or id, or a lab's node name) and an interface in it, e.g. r1:eth1
    #[arg(value_name = "NODE:IFACE")]
    pub end: String,
    /// NODE is a node of this lab (needed only when several labs have a node of that name)
    #[arg(long, value_name = "LAB")]
    pub lab: Option<String>,
    /// Take the interface administratively up or down (its peer sees carrier come or go)
    #[arg(value_name = "up|down", value_parser = ["up", "down"])]
    pub state: Option<String>,
    /// The interface's MTU
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<u32>,
    /// Rate limit of what the end sends (tbf), in tc's units: 10mbit, 1gbit, 500kbit, 100kbps; none removes the shaping
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,
    /// Delay added to what the end sends (netem), e.g. 10ms
    #[arg(long, value_name = "TIME")]
    pub delay: Option<String>,
    /// Jitter around --delay (netem, uniform), e.g. 2ms
    #[arg(long, value_name = "TIME")]
    pub jitter: Option<String>,
    /// Packets dropped (netem), e.g. 1%
    #[arg(long, value_name = "PERCENT")]
    pub loss: Option<String>,
    /// Packets corrupted by one flipped bit (netem), e.g. 0.1%
    #[arg(long, value_name = "PERCENT")]
    pub corrupt: Option<String>,
}

/// Flags of `cnet link ls`.
#[derive(Debug, Clone, Default, Args)]
pub struct LinkLsArgs {
    /// Only the links of this lab (label cnet.lab=LAB)
    #[arg(value_name = "LAB", conflicts_with = "filter")]
    pub lab: Option<String>,
    /// Only links whose network has this label: label=KEY or label=KEY=VALUE
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Option<String>,
    /// Output format: table or json
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

pub async fn run(ctx: &Ctx, args: LinkArgs) -> anyhow::Result<ExitCode> {
    let mut out = io::stdout().lock();
    match args.command {
        LinkCommand::Set(args) => set(ctx, &args, &mut out).await,
        LinkCommand::Ls(args) => ls(&ctx.socket, &args, &mut out).await,
    }
}

// ---------------------------------------------------------------- set

async fn set(ctx: &Ctx, args: &LinkSetArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let mut request = build_set_request(args)?;
    // A lab's node name becomes its container's name; cnetd knows containers only. A name the
    // runtime does not know goes to cnetd as it is: cnetd also serves sandboxes of other clients.
    match crate::lab::find_node(ctx, &request.container, args.lab.as_deref()) {
        Ok(c) => request.container = c.name().to_string(),
        Err(e) if args.lab.is_some() => return Err(e),
        Err(_) => {}
    }
    let daemon = Daemon::connect(&ctx.socket).await?;
    let end = daemon.links().set_link(request).await.map_err(|s| daemon.error(s))?.into_inner();
    writeln!(out, "{}:{}", end.container, end.interface)?;
    Ok(ExitCode::SUCCESS)
}

/// The request, every value parsed and checked; an error names the flag and its value.
pub fn build_set_request(args: &LinkSetArgs) -> anyhow::Result<SetLinkRequest> {
    let end: EndRef = args.end.parse()?;
    let state = match args.state.as_deref() {
        None => AdminState::Unchanged,
        Some("up") => AdminState::Up,
        Some("down") => AdminState::Down,
        Some(other) => bail!("invalid state {other:?}: expected up or down"),
    };
    if args.mtu == Some(0) {
        bail!("invalid --mtu 0: expected a number of bytes");
    }
    let shaping = parse_shaping(args)?;
    if state == AdminState::Unchanged && args.mtu.is_none() && shaping.is_none() {
        bail!(
            "nothing to set on {end}: give up or down, --mtu, or a shaping flag \
             (--rate, --delay, --jitter, --loss, --corrupt; --rate none removes the shaping)"
        );
    }
    Ok(SetLinkRequest {
        container: end.node,
        interface: end.iface,
        state: state.into(),
        mtu: args.mtu.unwrap_or(0),
        shaping: shaping.as_ref().map(LinkShaping::from),
    })
}

/// `None` when no shaping flag is given; otherwise the whole new shaping (`none` or 0 for
/// what is not wanted).
fn parse_shaping(args: &LinkSetArgs) -> anyhow::Result<Option<Shaping>> {
    let text = shaping::ShapingText {
        rate: args.rate.as_deref(),
        delay: args.delay.as_deref(),
        jitter: args.jitter.as_deref(),
        loss: args.loss.as_deref(),
        corrupt: args.corrupt.as_deref(),
    };
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(text.parse(|field| format!("--{field}"))?))
}

// ---------------------------------------------------------------- ls

async fn ls(socket: &Path, args: &LinkLsArgs, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let label = match (&args.lab, &args.filter) {
        (Some(lab), _) => format!("{}={lab}", cnet_lab::LABEL_LAB),
        (None, Some(f)) => match f.strip_prefix("label=") {
            Some(l) if !l.is_empty() => l.to_string(),
            _ => bail!("invalid filter {f:?}: expected label=KEY or label=KEY=VALUE"),
        },
        (None, None) => String::new(),
    };
    let daemon = Daemon::connect(socket).await?;
    let mut links =
        daemon.links().list_links(ListLinksRequest { label }).await.map_err(|s| daemon.error(s))?.into_inner().links;
    links.sort_by(|a, b| natural_cmp(&a.network, &b.network));
    let text = match args.format.as_str() {
        "json" => pretty_json(&links.iter().map(LinkJson::from).collect::<Vec<_>>())?,
        _ => render_table(&links),
    };
    out.write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// `up`, `down` (administratively), or `no-carrier` (up, but its peer is down or missing).
pub fn end_state(e: &LinkEnd) -> &'static str {
    match (e.admin_up, e.carrier) {
        (false, _) => "down",
        (true, true) => "up",
        (true, false) => "no-carrier",
    }
}

fn end_name(e: &LinkEnd) -> String {
    format!("{}:{}", e.container, e.interface)
}

fn shaping_of(e: &LinkEnd) -> Shaping {
    e.shaping
        .as_ref()
        .map(|s| Shaping {
            rate_bps: s.rate_bps,
            delay_us: s.delay_us,
            jitter_us: s.jitter_us,
            loss_ppm: s.loss_ppm,
            corrupt_ppm: s.corrupt_ppm,
        })
        .unwrap_or_default()
}

/// One row per link: its network, both ends (`-` for a missing one), the state of each end
/// (`A/B`), the MTU (one number when both ends agree), and the shaping of each end that has one.
pub fn render_table(links: &[Link]) -> String {
    let mut table = Table::new(["NETWORK", "A", "B", "STATE", "MTU", "SHAPING"]);
    for l in links {
        let end = |i: usize| l.ends.get(i);
        let name = |i: usize| end(i).map(end_name).unwrap_or_else(|| "-".into());
        let state = |i: usize| end(i).map(end_state).unwrap_or("-");
        let mut mtus: Vec<String> = l.ends.iter().map(|e| e.mtu.to_string()).collect();
        mtus.dedup();
        let shaping: Vec<String> = l
            .ends
            .iter()
            .filter(|e| !shaping_of(e).is_empty())
            .map(|e| format!("{} {}", end_name(e), shaping_of(e)))
            .collect();
        table.row([
            l.network.clone(),
            name(0),
            name(1),
            format!("{}/{}", state(0), state(1)),
            if mtus.is_empty() { "-".into() } else { mtus.join("/") },
            if shaping.is_empty() { "-".into() } else { shaping.join(", ") },
        ]);
    }
    table.render()
}

/// `cnet link ls --format json`: Docker's capitalised keys, values as `link set` takes them.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct LinkJson {
    network: String,
    #[serde(rename = "NetworkID")]
    network_id: String,
    ends: Vec<EndJson>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EndJson {
    container: String,
    interface: String,
    state: &'static str,
    admin_up: bool,
    carrier: bool,
    oper_state: String,
    #[serde(rename = "MTU")]
    mtu: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jitter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    loss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    corrupt: Option<String>,
}

impl From<&Link> for LinkJson {
    fn from(l: &Link) -> LinkJson {
        LinkJson {
            network: l.network.clone(),
            network_id: l.network_id.clone(),
            ends: l.ends.iter().map(EndJson::from).collect(),
        }
    }
}

impl From<&LinkEnd> for EndJson {
    fn from(e: &LinkEnd) -> EndJson {
        let s = shaping_of(e);
        let some = |v: u64, f: fn(u64) -> String| (v != 0).then(|| f(v));
        let pct = |v: u32| (v != 0).then(|| shaping::format_percent(v));
        EndJson {
            container: e.container.clone(),
            interface: e.interface.clone(),
            state: end_state(e),
            admin_up: e.admin_up,
            carrier: e.carrier,
            oper_state: e.operstate.clone(),
            mtu: e.mtu,
            rate: some(s.rate_bps, shaping::format_rate),
            delay: some(s.delay_us, shaping::format_duration),
            jitter: some(s.jitter_us, shaping::format_duration),
            loss: pct(s.loss_ppm),
            corrupt: pct(s.corrupt_ppm),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(end: &str) -> LinkSetArgs {
        LinkSetArgs { end: end.into(), ..Default::default() }
    }

    #[test]
    fn set_requests_are_parsed_before_dialling() {
        let r = build_set_request(&LinkSetArgs { state: Some("down".into()), ..args("r1:eth1") }).unwrap();
        assert_eq!((r.container.as_str(), r.interface.as_str()), ("r1", "eth1"));
        assert_eq!(r.state, i32::from(AdminState::Down));
        assert_eq!(r.shaping, None, "down alone keeps the shaping");

        let r = build_set_request(&LinkSetArgs {
            rate: Some("10mbit".into()),
            delay: Some("10ms".into()),
            loss: Some("1%".into()),
            ..args("r1:eth1")
        })
        .unwrap();
        let s = r.shaping.unwrap();
        assert_eq!((s.rate_bps, s.delay_us, s.jitter_us, s.loss_ppm), (10_000_000, 10_000, 0, 10_000));
        assert_eq!(r.state, i32::from(AdminState::Unchanged));

        let r = build_set_request(&LinkSetArgs { rate: Some("none".into()), ..args("r1:eth1") }).unwrap();
        assert_eq!(r.shaping, Some(LinkShaping::default()), "--rate none removes everything");
        let r = build_set_request(&LinkSetArgs { mtu: Some(9000), ..args("r1:eth1") }).unwrap();
        assert_eq!((r.mtu, r.shaping), (9000, None));
    }

    #[test]
    fn bad_values_are_named() {
        for (a, needle) in [
            (args("r1"), "\"r1\""),
            (args("r1:eth1"), "nothing to set on r1:eth1"),
            (LinkSetArgs { rate: Some("fast".into()), ..args("r1:eth1") }, "\"fast\""),
            (LinkSetArgs { delay: Some("10 ms".into()), ..args("r1:eth1") }, "\"10 ms\""),
            (LinkSetArgs { jitter: Some("1ms".into()), ..args("r1:eth1") }, "needs --delay"),
            (LinkSetArgs { loss: Some("120%".into()), ..args("r1:eth1") }, "\"120%\""),
            (LinkSetArgs { mtu: Some(0), ..args("r1:eth1") }, "--mtu 0"),
        ] {
            let err = format!("{:#}", build_set_request(&a).unwrap_err());
            assert!(err.contains(needle), "{needle:?} not in {err}");
        }
    }

    fn end(container: &str, up: bool, carrier: bool, mtu: u32, rate: u64) -> LinkEnd {
        LinkEnd {
            container: container.into(),
            interface: "eth1".into(),
            admin_up: up,
            carrier,
            mtu,
            shaping: Some(LinkShaping { rate_bps: rate, ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn table_shows_both_ends_state_mtu_and_shaping() {
        let links = vec![
            Link {
                network: "l1".into(),
                ends: vec![end("a", false, false, 1500, 0), end("b", true, false, 1500, 1_000_000)],
                ..Default::default()
            },
            Link { network: "l2".into(), ends: vec![end("c", true, false, 9000, 0)], ..Default::default() },
            Link { network: "l3".into(), ..Default::default() },
        ];
        let expected = "\
NETWORK   A         B         STATE             MTU       SHAPING
l1        a:eth1    b:eth1    down/no-carrier   1500      b:eth1 rate 1mbit
l2        c:eth1    -         no-carrier/-      9000      -
l3        -         -         -/-               -         -
";
        assert_eq!(render_table(&links), expected);
        let json = serde_json::to_value(LinkJson::from(&links[0])).unwrap();
        assert_eq!(json["Ends"][0]["State"], "down");
        assert_eq!(json["Ends"][1]["Rate"], "1mbit");
        assert!(json["Ends"][0].get("Rate").is_none());
    }
}
