//! `cnet run|ps|port|start|stop|kill|rm|logs|exec|inspect|top|wait`: a thin layer over `cnet_runtime`, which does the work. Output follows Docker's.
//!
//! Foreground `cnet run` (no `-d`) is a client of the container's supervisor: the supervisor owns
//! the container's stdio (pipes, or the pty master with `-t`) and relays it to the CLI over the
//! socketpair it was started with; the CLI relays its stdin back with `-i`, and exits with the
//! container's exit code. A `-d` container therefore never depends on the CLI that started it.

use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use cnet_runtime::channel::{Frame, Message};
use cnet_runtime::exec::ExecOptions;
use cnet_runtime::logs::{LogReader, Stream};
use cnet_runtime::spec::{ContainerSpec, NetworkAttachment, PortSpec};
use cnet_runtime::{Container, Status, lifecycle};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tracing::Instrument as _;

use crate::cli::{
    ContainersArgs, ExecArgs, InspectArgs, KillArgs, LogsArgs, PortArgs, PsArgs, RmArgs, RunArgs, StopArgs, TopArgs,
};
use crate::client;
use crate::context::Ctx;
use crate::output::{Table, pretty_json, short_id};

fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

// ------------------------------------------------------------------ run

/// One `--network`: a network name, or Docker's long syntax, comma-separated `key=value` fields
/// (CSV: a field in double quotes may hold commas): `name` (required), `alias` (repeatable), `ip`,
/// `ip6`, `mac-address`, `driver-opt=K=V` (repeatable) and `gw-priority`. Unknown keys and bad
/// values are refused, naming them; the values themselves are checked with the spec (addresses,
/// MAC) and by cnetd (driver options, against the network's driver).
pub fn parse_network(value: &str) -> anyhow::Result<NetworkAttachment> {
    if !value.contains('=') {
        return Ok(NetworkAttachment { network: value.to_string(), ..Default::default() });
    }
    let mut a = NetworkAttachment::default();
    for field in csv_fields(value)? {
        let Some((key, val)) = field.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            bail!("invalid --network field {field:?}: expected key=value");
        };
        let (key, val) = (key.trim(), val.trim());
        match key {
            "name" => a.network = val.to_string(),
            "alias" => a.aliases.push(val.to_string()),
            "ip" => a.ipv4 = val.to_string(),
            "ip6" => a.ipv6 = val.to_string(),
            "mac-address" => a.mac = val.to_string(),
            "driver-opt" => match val.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    a.driver_opts.insert(k.trim().to_string(), v.trim().to_string());
                }
                _ => bail!("invalid driver-opt {val:?} in --network {value:?}: expected driver-opt=KEY=VALUE"),
            },
            "gw-priority" => {
                a.gw_priority = val.parse().with_context(|| {
                    format!("invalid gw-priority {val:?} in --network {value:?}: expected an integer")
                })?
            }
            "link-local-ip" => bail!("--network field link-local-ip is not supported by cnet"),
            other => bail!(
                "invalid --network field key {other:?}: expected name, alias, ip, ip6, mac-address, driver-opt or \
                 gw-priority"
            ),
        }
    }
    if a.network.is_empty() {
        bail!("invalid --network {value:?}: network name/id is not specified (name=NETWORK)");
    }
    Ok(a)
}

/// The fields of one CSV record: split at commas outside double quotes, quotes removed (`""`
/// inside quotes is one quote).
fn csv_fields(value: &str) -> anyhow::Result<Vec<String>> {
    let (mut fields, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if quoted {
        bail!("invalid --network {value:?}: unterminated quote");
    }
    fields.push(field);
    Ok(fields)
}

/// The spec of `cnet run`'s flags (pure: tested without a daemon).
pub fn build_spec(args: &RunArgs) -> anyhow::Result<ContainerSpec> {
    let mut networks = args.networks.iter().map(|n| parse_network(n)).collect::<anyhow::Result<Vec<_>>>()?;
    if networks.is_empty() {
        networks.push(NetworkAttachment { network: "bridge".into(), ..Default::default() });
    }
    // As Docker: the global flags are the first network's, and may not say it twice.
    let first = &mut networks[0];
    for (flag, global, field) in
        [("--ip", args.ip.as_ref(), &mut first.ipv4), ("--mac-address", args.mac_address.as_ref(), &mut first.mac)]
    {
        if let Some(v) = global {
            if !field.is_empty() {
                bail!("conflicting options: cannot specify both {flag} and the per-network one in --network");
            }
            *field = v.clone();
        }
    }
    if !args.network_aliases.is_empty() {
        if !first.aliases.is_empty() {
            bail!("conflicting options: cannot specify both --network-alias and per-network alias in --network");
        }
        first.aliases = args.network_aliases.clone();
    }
    let mut ports = Vec::new();
    for p in &args.publish {
        ports.extend(cnet_core::portspec::parse_publish(p)?);
    }
    let env =
        args.env
            .iter()
            .filter_map(|e| {
                if e.contains('=') { Some(e.clone()) } else { std::env::var(e).ok().map(|v| format!("{e}={v}")) }
            })
            .collect();
    let mut spec = ContainerSpec {
        name: args.name.clone(),
        hostname: args.hostname.clone(),
        image: args.image.clone(),
        command: args.command.clone(),
        entrypoint: args.entrypoint.as_ref().map(|e| if e.is_empty() { vec![] } else { vec![e.clone()] }),
        env,
        working_dir: args.workdir.clone(),
        tty: args.tty,
        interactive: args.interactive,
        auto_remove: args.rm,
        restart: args.restart.parse()?,
        networks,
        ports,
        dns: args.dns.clone(),
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_option.clone(),
        extra_hosts: args.add_host.clone(),
        sysctls: args.sysctls.iter().cloned().collect(),
        labels: args.labels.iter().cloned().collect(),
        binds: {
            let cwd = std::env::current_dir().context("finding the current directory")?;
            args.volumes.iter().map(|v| cnet_runtime::spec::Bind::parse(v, &cwd)).collect::<Result<Vec<_>, _>>()?
        },
    };
    spec.validate()?;
    Ok(spec)
}

/// `cnet run`: create, start, and (without `-d`) relay the output and exit with the container's code.
/// Errors of cnet itself exit 125; a program that cannot run 126 or 127, as Docker.
pub async fn run(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<ExitCode> {
    match run_inner(ctx, args).await {
        Ok(code) => Ok(code),
        Err(err) => {
            eprintln!("cnet: {}", client::render_error(&err));
            let code = err.downcast_ref::<cnet_runtime::Error>().map_or(125, cnet_runtime::Error::exit_code);
            Ok(exit(code))
        }
    }
}

async fn run_inner(ctx: &Ctx, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let mut spec = build_spec(args)?;
    let rt = ctx.runtime()?;
    crate::pull::ensure_image(&rt.images()?, &spec.image, args.pull).instrument(tracing::debug_span!("image")).await?;
    if args.publish_all {
        let image = rt.images()?.resolve(&spec.image)?;
        spec.ports.extend(publish_all(&args.expose, &image.config.exposed_ports, &spec.ports)?);
    }
    let mut cnetd = ctx.cnetd().await?;
    // The lock is held until the supervisor runs the container (it then holds its own): a `run`
    // killed before is reaped, its name free again.
    let (c, lock) = lifecycle::create_for_run(&rt, &mut cnetd, spec).await?;
    cnet_runtime::checkpoint("run:created");
    let started = tracing::debug_span!("start").in_scope(|| lifecycle::start(&rt, &c, !args.detach));
    let stream = match started {
        Ok(s) => s,
        Err(e) => {
            // `run` leaves nothing behind when the program cannot start.
            if let Err(cleanup) = cnet_runtime::removal::remove_stopped(&rt, &c, &mut cnetd).await {
                eprintln!("cnet: removing the container that did not start: {cleanup}");
            }
            return Err(e.into());
        }
    };
    drop(lock);
    if args.detach {
        println!("{}", c.id());
        return Ok(ExitCode::SUCCESS);
    }
    drop(cnetd);
    let code = tracing::debug_span!("container").in_scope(|| attach(stream, args.interactive, args.tty))?;
    Ok(exit(code))
}

/// Relays the supervisor's output frames to stdout/stderr (and stdin to it with `-i`) until
/// the container exits; its exit code.
fn attach(stream: UnixStream, interactive: bool, tty: bool) -> anyhow::Result<i32> {
    let raw = tty && io::stdin().is_terminal();
    let saved = if raw { enter_raw_mode() } else { None };
    if interactive {
        let mut writer = stream.try_clone().context("cloning the supervisor connection")?;
        if tty && let Some((rows, cols)) = terminal_size() {
            let _ = Frame::Message(Message::Resize { rows, cols }).write_to(&mut writer);
        }
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            let mut stdin = io::stdin();
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = Frame::StdinEof.write_to(&mut writer);
                        break;
                    }
                    Ok(n) => {
                        if Frame::Stdin(buf[..n].to_vec()).write_to(&mut writer).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    let mut reader = io::BufReader::new(stream);
    let (mut out, mut err) = (io::stdout(), io::stderr());
    let code = loop {
        match Frame::read_from(&mut reader) {
            Ok(Some(Frame::Stdout(data))) => {
                out.write_all(&data)?;
                out.flush()?;
            }
            Ok(Some(Frame::Stderr(data))) => {
                err.write_all(&data)?;
                err.flush()?;
            }
            Ok(Some(Frame::Message(Message::Exited { exit_code }))) => break exit_code,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break 125,
        }
    };
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(io::stdin(), nix::sys::termios::SetArg::TCSANOW, &t);
    }
    Ok(code)
}

fn enter_raw_mode() -> Option<nix::sys::termios::Termios> {
    use nix::sys::termios;
    let saved = termios::tcgetattr(io::stdin()).ok()?;
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    termios::tcsetattr(io::stdin(), termios::SetArg::TCSANOW, &raw).ok()?;
    Some(saved)
}

fn terminal_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a winsize.
    let r = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

// ------------------------------------------------------------------ ports

/// `-P`: every exposed port (the image's and `--expose`'s) not already published, on a host port
/// cnetd picks.
pub fn publish_all(
    expose: &[String],
    image_exposed: &[String],
    already: &[cnet_core::PortBinding],
) -> anyhow::Result<Vec<cnet_core::PortBinding>> {
    let mut out: Vec<cnet_core::PortBinding> = Vec::new();
    for spec in expose.iter().chain(image_exposed) {
        for (protocol, port) in cnet_core::portspec::parse_expose(spec)? {
            let taken = already.iter().chain(&out).any(|b| b.protocol == protocol && b.container_port == port);
            if !taken {
                out.push(cnet_core::PortBinding { protocol, host_ip: None, host_port: 0, container_port: port });
            }
        }
    }
    Ok(out)
}

fn binding_of(p: &cnet_api::v1::PortBinding) -> Option<cnet_core::PortBinding> {
    Some(cnet_core::PortBinding {
        protocol: p.protocol.parse().ok()?,
        host_ip: if p.host_ip.is_empty() { None } else { p.host_ip.parse().ok() },
        host_port: u16::try_from(p.host_port).ok()?,
        container_port: u16::try_from(p.container_port).ok()?,
    })
}

/// The ports cnetd really published for each sandbox (random host ports resolved), by sandbox id.
async fn published_ports(ctx: &Ctx) -> std::collections::HashMap<String, Vec<cnet_core::PortBinding>> {
    let mut out = std::collections::HashMap::new();
    if let Ok(mut cnetd) = ctx.cnetd().await
        && let Ok(sandboxes) = cnetd.list_sandboxes().await
    {
        for s in sandboxes {
            let ports = s.endpoints.iter().flat_map(|e| e.ports.iter().filter_map(binding_of)).collect();
            out.insert(s.id, ports);
        }
    }
    out
}

/// `cnet port C [PORT[/PROTO]]`: `80/tcp -> 0.0.0.0:8080`, as Docker prints it.
pub async fn port(ctx: &Ctx, args: &PortArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    let c = rt.find(&args.container)?;
    let wanted = args.private_port.as_deref().map(cnet_core::portspec::parse_expose).transpose()?;
    let mut cnetd = ctx.cnetd().await?;
    let sandbox = cnetd.inspect_sandbox(c.id()).await?;
    let mut lines = Vec::new();
    for b in sandbox.endpoints.iter().flat_map(|e| e.ports.iter().filter_map(binding_of)) {
        if wanted.as_ref().is_some_and(|w| !w.contains(&(b.protocol, b.container_port))) {
            continue;
        }
        let host = cnet_core::portspec::format_binding(&b);
        let host = host.split("->").next().unwrap_or_default().to_string();
        lines.push(format!("{}/{} -> {host}", b.container_port, b.protocol.as_str()));
    }
    if lines.is_empty() && args.private_port.is_some() {
        anyhow::bail!(
            "Error: No public port '{}' published for {}",
            args.private_port.as_deref().unwrap_or_default(),
            c.name()
        );
    }
    for l in lines {
        println!("{l}");
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ ps

/// Docker's PORTS cell: `0.0.0.0:8080->80/tcp, ...`.
pub fn format_ports(ports: &[PortSpec]) -> String {
    ports
        .iter()
        .map(|p| {
            let ip = if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip };
            format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Docker's STATUS cell.
pub fn format_status(c: &Container) -> String {
    let ago = |t: &str| cnet_runtime::time::since(t).map(cnet_runtime::time::human_duration).unwrap_or_default();
    match c.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", ago(&c.state.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", c.state.exit_code, ago(&c.state.finished_at)),
        Status::Exited if c.state.finished_at.is_empty() => format!("Exited ({})", c.state.exit_code),
        Status::Exited => format!("Exited ({}) {} ago", c.state.exit_code, ago(&c.state.finished_at)),
    }
}

/// Docker's COMMAND cell: quoted, cut at 20 characters with an ellipsis.
pub fn format_command(c: &Container, no_trunc: bool) -> String {
    let cmd = c.config.command_line();
    if no_trunc || cmd.chars().count() <= 20 {
        format!("\"{cmd}\"")
    } else {
        format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
    }
}

/// One container as `ps --format` sees it: Docker's field names.
fn ps_row(c: &Container, id: &str, published: Option<&Vec<cnet_core::PortBinding>>) -> serde_json::Value {
    let labels: Vec<String> = c.config.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let networks: Vec<&str> = c.config.networks.iter().map(|n| n.network.as_str()).collect();
    serde_json::json!({
        "ID": id,
        "Image": c.config.image,
        "Command": format_command(c, true),
        "CreatedAt": c.config.created,
        "RunningFor": created_ago(c),
        "Ports": ps_ports(c, published),
        "State": lifecycle::status_word(&c.state),
        "Status": format_status(c),
        "Names": c.name(),
        "Labels": labels.join(","),
        "Networks": networks.join(","),
    })
}

/// The PORTS column: what cnetd published (random host ports resolved), else what was asked;
/// nothing for a container that does not run.
fn ps_ports(c: &Container, published: Option<&Vec<cnet_core::PortBinding>>) -> String {
    match published {
        Some(bindings) if c.state.is_running() => {
            bindings.iter().map(cnet_core::portspec::format_binding).collect::<Vec<_>>().join(", ")
        }
        _ if c.state.is_running() => format_ports(&c.config.ports),
        _ => String::new(),
    }
}

/// The CREATED column: `5 minutes ago`.
fn created_ago(c: &Container) -> String {
    cnet_runtime::time::since(&c.config.created)
        .map(|d| format!("{} ago", cnet_runtime::time::human_duration(d)))
        .unwrap_or_default()
}

/// One `ps --filter`: Docker's `label=KEY`, `label=KEY=VALUE` and `name=NAME` (a substring, as
/// Docker matches names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsFilter {
    Label(String, Option<String>),
    Name(String),
}

impl PsFilter {
    pub fn parse(filter: &str) -> anyhow::Result<PsFilter> {
        match filter.split_once('=') {
            Some(("label", rest)) if !rest.is_empty() => Ok(match rest.split_once('=') {
                Some((k, v)) => PsFilter::Label(k.to_string(), Some(v.to_string())),
                None => PsFilter::Label(rest.to_string(), None),
            }),
            Some(("name", name)) if !name.is_empty() => Ok(PsFilter::Name(name.to_string())),
            _ => bail!("invalid filter {filter:?}: expected label=KEY, label=KEY=VALUE or name=NAME"),
        }
    }

    pub fn matches(&self, c: &Container) -> bool {
        match self {
            PsFilter::Label(key, value) => {
                c.config.labels.get(key).is_some_and(|v| value.as_ref().is_none_or(|want| want == v))
            }
            PsFilter::Name(name) => c.name().contains(name.as_str()),
        }
    }
}

pub async fn ps(ctx: &Ctx, args: &PsArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    // What killed processes left (a `run` cut short, a `--rm` container whose supervisor died)
    // goes before it is listed; without cnetd it waits for the next time.
    if let Err(e) = cnet_runtime::reaper::reap(&rt, rt.socket()).await {
        eprintln!("cnet: warning: could not remove abandoned containers: {e}");
    }
    let filters = args.filter.iter().map(|f| PsFilter::parse(f)).collect::<anyhow::Result<Vec<_>>>()?;
    let format = crate::format::check(args.format.as_deref())?;
    let containers: Vec<Container> = rt
        .list()?
        .into_iter()
        .filter(|c| args.all || c.state.is_running())
        .filter(|c| filters.iter().all(|f| f.matches(c)))
        .collect();
    let mut out = io::stdout().lock();
    let id = |c: &Container| if args.no_trunc { c.id().to_string() } else { short_id(c.id()).to_string() };
    if args.quiet {
        for c in &containers {
            writeln!(out, "{}", id(c))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let published = published_ports(ctx).await;
    if let Some(format) = format {
        let rows: Vec<serde_json::Value> =
            containers.iter().map(|c| ps_row(c, &id(c), published.get(c.id()))).collect();
        out.write_all(crate::format::render(&format, &rows)?.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]);
    for c in &containers {
        table.row([
            id(c),
            c.config.image.clone(),
            format_command(c, args.no_trunc),
            created_ago(c),
            format_status(c),
            ps_ports(c, published.get(c.id())),
            c.name().to_string(),
        ]);
    }
    out.write_all(table.render().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ start, stop, kill, rm, wait

/// Runs `f` on each container, printing the reference on success and the error on failure, as
/// Docker does for commands taking several containers; exit 1 if any failed.
fn each(refs: &[String], mut f: impl FnMut(&str) -> anyhow::Result<()>) -> ExitCode {
    let mut failed = false;
    for r in refs {
        match f(r) {
            Ok(()) => println!("{r}"),
            Err(e) => {
                eprintln!("{}", client::render_error(&e));
                failed = true;
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

pub fn start(ctx: &Ctx, args: &ContainersArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    Ok(each(&args.containers, |r| {
        let c = rt.find(r)?;
        if !c.state.is_running() {
            lifecycle::start(&rt, &c, false)?;
        }
        Ok(())
    }))
}

pub fn stop(ctx: &Ctx, args: &StopArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    Ok(each(&args.containers, |r| Ok(lifecycle::stop(&rt.find(r)?, args.time)?)))
}

/// A signal by name (`KILL`, `SIGKILL`) or number.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("SIG") { name } else { format!("SIG{name}") };
    match name.parse::<nix::sys::signal::Signal>() {
        Ok(sig) => Ok(sig as i32),
        Err(_) => bail!("invalid signal: {s}"),
    }
}

pub fn kill(ctx: &Ctx, args: &KillArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    let signal = parse_signal(&args.signal)?;
    Ok(each(&args.containers, |r| Ok(lifecycle::kill(&rt.find(r)?, signal)?)))
}

/// How many containers one `cnet rm` removes at a time. Each waits mostly for its process's exit,
/// which the kernel makes take about 100 ms for a killed PID 1 of a namespace (measured: SIGKILL
/// to SIGCHLD), with little work meanwhile, so many side by side cost little more than one.
const RM_CONCURRENCY: usize = 32;

pub async fn rm(ctx: &Ctx, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    let cnetd = ctx.cnetd().await?;
    let removals = args.containers.iter().map(|r| {
        let (rt, mut cnetd) = (rt.clone(), cnetd.clone());
        async move {
            let result = match rt.find(r) {
                Ok(c) => lifecycle::remove(&rt, &mut cnetd, &c, args.force).await,
                Err(e) => Err(e),
            };
            (r, result)
        }
    });
    // In the order given, as Docker prints them.
    let results: Vec<_> = futures::stream::iter(removals).buffered(RM_CONCURRENCY).collect().await;
    let mut failed = false;
    for (r, result) in results {
        match result {
            Ok(()) => println!("{r}"),
            Err(e) => {
                eprintln!("{}", client::render_error(&e.into()));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn wait(ctx: &Ctx, args: &ContainersArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    let mut failed = false;
    for r in &args.containers {
        match rt.find(r).and_then(|c| lifecycle::wait(&c)) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                eprintln!("{}", client::render_error(&e.into()));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

// ------------------------------------------------------------------ logs, exec, top

pub fn logs(ctx: &Ctx, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    let c = rt.find(&args.container)?;
    let mut reader = LogReader::open(&c.dir)?;
    let (mut out, mut err) = (io::stdout(), io::stderr());
    loop {
        while let Some(e) = reader.next_entry() {
            let line = if args.timestamps { format!("{} {}", e.time, e.log) } else { e.log };
            match e.stream {
                Stream::Stdout => out.write_all(line.as_bytes())?,
                Stream::Stderr => err.write_all(line.as_bytes())?,
            }
        }
        out.flush()?;
        if !args.follow {
            break;
        }
        match c.reload() {
            Ok(now) if now.state.is_running() => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                // One last read for what was written before the end.
                while let Some(e) = reader.next_entry() {
                    match e.stream {
                        Stream::Stdout => out.write_all(e.log.as_bytes())?,
                        Stream::Stderr => err.write_all(e.log.as_bytes())?,
                    }
                }
                break;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn exec(ctx: &Ctx, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    let c = rt.find(&args.container)?;
    let opts = ExecOptions {
        command: args.command.clone(),
        env: args.env.clone(),
        working_dir: args.workdir.clone(),
        interactive: args.interactive,
        tty: args.tty,
    };
    let code = cnet_runtime::exec::exec(&c, &opts)?;
    Ok(exit(code))
}

pub fn top(ctx: &Ctx, args: &TopArgs) -> anyhow::Result<ExitCode> {
    let rt = ctx.runtime()?;
    let c = rt.find(&args.container)?;
    let mut table = Table::new(["PID", "USER", "TIME", "COMMAND"]);
    for p in cnet_runtime::top::top(&c)? {
        table.row([p.pid.to_string(), p.user, p.time, p.command]);
    }
    io::stdout().write_all(table.render().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ inspect

/// `docker inspect`'s shape for a container; `sandbox` is cnetd's view of its networks, if reachable.
pub fn inspect_json(c: &Container, sandbox: Option<&cnet_api::v1::Sandbox>) -> Value {
    let s = &c.state;
    let mut networks = serde_json::Map::new();
    let mut ports = serde_json::Map::new();
    let (mut first_ip, mut first_gw, mut first_mac, mut first_len) = (String::new(), String::new(), String::new(), 0);
    if let Some(sb) = sandbox {
        for (i, ep) in sb.endpoints.iter().enumerate() {
            let (ip, len) = match ep.ipv4_address.split_once('/') {
                Some((ip, len)) => (ip.to_string(), len.parse::<u32>().unwrap_or(0)),
                None => (ep.ipv4_address.clone(), 0),
            };
            if i == 0 {
                first_ip = ip.clone();
                first_gw = ep.ipv4_gateway.clone();
                first_mac = ep.mac_address.clone();
                first_len = len;
            }
            networks.insert(
                ep.network_name.clone(),
                json!({
                    "Aliases": ep.aliases,
                    "NetworkID": ep.network_id,
                    "EndpointID": ep.id,
                    "Gateway": ep.ipv4_gateway,
                    "IPAddress": ip,
                    "IPPrefixLen": len,
                    "GlobalIPv6Address": ep.ipv6_address.split('/').next().unwrap_or(""),
                    "IPv6Gateway": ep.ipv6_gateway,
                    "MacAddress": ep.mac_address,
                    "DriverOpts": if ep.driver_opts.is_empty() { Value::Null } else { json!(ep.driver_opts) },
                    "GwPriority": ep.gw_priority,
                    "DNSNames": [c.name(), short_id(c.id())],
                }),
            );
            for p in &ep.ports {
                let key = format!("{}/{}", p.container_port, p.protocol);
                let binding = json!({"HostIp": if p.host_ip.is_empty() { "0.0.0.0" } else { &p.host_ip }, "HostPort": p.host_port.to_string()});
                match ports.get_mut(&key) {
                    Some(Value::Array(v)) => v.push(binding),
                    _ => {
                        ports.insert(key, json!([binding]));
                    }
                }
            }
        }
    }
    let sysctls: std::collections::BTreeMap<&String, &String> =
        sandbox.map(|sb| sb.sysctls.iter().collect()).unwrap_or_default();
    json!({
        "Id": c.id(),
        "Created": c.config.created,
        "Path": c.config.path,
        "Args": c.config.args,
        "State": {
            "Status": s.status.as_str(),
            "Running": s.status == Status::Running,
            "Paused": false,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": false,
            "Dead": false,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": if s.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { &s.started_at },
            "FinishedAt": if s.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { &s.finished_at },
        },
        "Image": format!("sha256:{}", c.config.image_id),
        "ResolvConfPath": c.dir.join("resolv.conf"),
        "HostnamePath": c.dir.join("hostname"),
        "HostsPath": c.dir.join("hosts"),
        "LogPath": c.dir.join(cnet_runtime::logs::LOG_FILE),
        "Name": format!("/{}", c.name()),
        "RestartCount": s.restart_count,
        "Driver": "overlay",
        "HostConfig": {
            "NetworkMode": c.config.network_mode(),
            "RestartPolicy": {"Name": c.config.restart.name(), "MaximumRetryCount": c.config.restart.max_retries()},
            "AutoRemove": c.config.auto_remove,
            "Dns": c.config.dns,
            "DnsOptions": c.config.dns_options,
            "DnsSearch": c.config.dns_search,
            "ExtraHosts": c.config.extra_hosts,
            "Sysctls": sysctls,
            "Binds": c.config.binds.iter().map(cnet_runtime::spec::Bind::to_spec).collect::<Vec<_>>(),
            "PortBindings": c.config.ports.iter().map(|p| (format!("{}/{}", p.container_port, p.protocol), json!([{"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}]))).collect::<serde_json::Map<_, _>>(),
        },
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "LowerDir": c.config.image_rootfs,
                "UpperDir": c.dir.join("upper"),
                "WorkDir": c.dir.join("work"),
                "MergedDir": c.dir.join("rootfs"),
            },
        },
        "Config": {
            "Hostname": c.config.hostname,
            "Tty": c.config.tty,
            "OpenStdin": c.config.open_stdin,
            "Env": c.config.env,
            "Cmd": std::iter::once(&c.config.path).chain(&c.config.args).collect::<Vec<_>>(),
            "Image": c.config.image,
            "WorkingDir": c.config.working_dir,
            "Labels": c.config.labels,
        },
        "NetworkSettings": {
            "SandboxID": c.id(),
            "SandboxKey": c.config.netns_path,
            "Ports": ports,
            "Gateway": first_gw,
            "IPAddress": first_ip,
            "IPPrefixLen": first_len,
            "MacAddress": first_mac,
            "Networks": networks,
        },
    })
}

pub async fn inspect(ctx: &Ctx, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let format = crate::format::check(args.format.as_deref())?;
    let rt = ctx.runtime()?;
    let mut cnetd = ctx.cnetd().await.ok();
    let mut items = Vec::new();
    let mut failed = false;
    for r in &args.containers {
        match rt.find(r) {
            Ok(c) => {
                let sandbox = match cnetd.as_mut() {
                    Some(d) => d.inspect_sandbox(c.id()).await.ok(),
                    None => None,
                };
                items.push(inspect_json(&c, sandbox.as_ref()));
            }
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    match format {
        Some(format) => print!("{}", crate::format::render(&format, &items)?),
        None => print!("{}", pretty_json(&items)?),
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn run_args(args: &[&str]) -> RunArgs {
        match Cli::try_parse_from(["cnet", "run"].iter().chain(args)).unwrap().command {
            crate::cli::Command::Run(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_flags_become_a_spec() {
        let a = run_args(&[
            "-d",
            "--name",
            "web",
            "--network",
            "n1",
            "--ip",
            "10.0.0.5",
            "--network-alias",
            "www",
            "-p",
            "8080:80",
            "-e",
            "A=1",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "echo hi",
        ]);
        assert!(a.detach);
        assert_eq!(a.command, ["sh", "-c", "echo hi"]);
        let s = build_spec(&a).unwrap();
        assert_eq!(s.networks[0].network, "n1");
        assert_eq!(s.networks[0].ipv4, "10.0.0.5");
        assert_eq!(s.networks[0].aliases, ["www"]);
        assert_eq!(s.ports.len(), 1);
        assert_eq!(s.restart, cnet_runtime::RestartPolicy::OnFailure(2));
        assert_eq!(format_ports(&[PortSpec::from(&s.ports[0])]), "0.0.0.0:8080->80/tcp");
    }

    #[test]
    fn bad_flags_are_refused_before_anything() {
        assert!(build_spec(&run_args(&["--restart", "sometimes", "busybox"])).is_err());
        assert!(build_spec(&run_args(&["--rm", "--restart", "always", "busybox"])).is_err());
        assert!(build_spec(&run_args(&["--network", "host", "--network", "n1", "busybox"])).is_err());
    }

    #[test]
    fn network_long_syntax() {
        let a = parse_network(
            "name=lab,alias=r1,alias=gw,ip=10.0.0.5,ip6=fd00::5,mac-address=02:42:0a:00:00:05,\
             driver-opt=com.docker.network.endpoint.ifname=eth3,gw-priority=-2",
        )
        .unwrap();
        assert_eq!(a.network, "lab");
        assert_eq!(a.aliases, ["r1", "gw"]);
        assert_eq!((a.ipv4.as_str(), a.ipv6.as_str(), a.mac.as_str()), ("10.0.0.5", "fd00::5", "02:42:0a:00:00:05"));
        assert_eq!(a.driver_opts, [("com.docker.network.endpoint.ifname".to_string(), "eth3".to_string())].into());
        assert_eq!(a.gw_priority, -2);
        // A plain name, and quoted fields holding commas (CSV, as Docker reads it).
        assert_eq!(parse_network("lab").unwrap(), NetworkAttachment { network: "lab".into(), ..Default::default() });
        let q = parse_network("name=lab,\"driver-opt=x.y=a,b\"").unwrap();
        assert_eq!(q.driver_opts["x.y"], "a,b");
        for (bad, needle) in [
            ("name=lab,colour=red", "\"colour\""),
            ("alias=a", "network name/id is not specified"),
            ("name=lab,gw-priority=high", "\"high\""),
            ("name=lab,driver-opt=noequals", "\"noequals\""),
            ("name=lab,=x", "\"=x\""),
            ("name=lab,link-local-ip=169.254.0.9", "link-local-ip"),
            ("name=\"lab", "unterminated quote"),
        ] {
            let e = format!("{:#}", parse_network(bad).unwrap_err());
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn network_options_reach_the_spec() {
        let s = build_spec(&run_args(&[
            "--network",
            "name=n1,driver-opt=com.docker.network.endpoint.ifname=eth3,gw-priority=10",
            "--network",
            "name=n2,mac-address=02:42:0a:00:00:09",
            "--ip",
            "10.0.0.5",
            "busybox",
        ]))
        .unwrap();
        assert_eq!(s.networks.len(), 2);
        assert_eq!(s.networks[0].ipv4, "10.0.0.5", "--ip is the first network's");
        assert_eq!(s.networks[0].gw_priority, 10);
        assert_eq!(s.networks[0].driver_opts["com.docker.network.endpoint.ifname"], "eth3");
        assert_eq!(s.networks[1].mac, "02:42:0a:00:00:09");
        // Saying it twice, a bad MAC or address in the long syntax: refused before anything.
        for (args, needle) in [
            (&["--network", "name=n1,ip=10.0.0.6", "--ip", "10.0.0.5", "busybox"][..], "--ip"),
            (&["--network", "name=n1,alias=a", "--network-alias", "b", "busybox"], "--network-alias"),
            (&["--network", "name=n1,mac-address=01:00:5e:00:00:01", "busybox"], "01:00:5e:00:00:01"),
            (&["--network", "name=n1,mac-address=nope", "busybox"], "nope"),
            (&["--network", "name=n1,ip=10.0.0.300", "busybox"], "10.0.0.300"),
            (&["--network", "name=n1,ip6=fd00::x", "busybox"], "fd00::x"),
            (&["--network", "name=host,gw-priority=1", "busybox"], "gw-priority"),
        ] {
            let e = format!("{:#}", build_spec(&run_args(args)).unwrap_err());
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn sysctls_are_network_namespace_ones() {
        let s = build_spec(&run_args(&[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "net.ipv4.conf.all.rp_filter=0",
            "busybox",
        ]))
        .unwrap();
        assert_eq!(s.sysctls.len(), 2);
        assert_eq!(s.sysctls["net.ipv4.conf.all.rp_filter"], "0");
        for (args, needle) in [
            (&["--sysctl", "kernel.shmmax=1", "busybox"][..], "kernel.shmmax"),
            (&["--network", "host", "--sysctl", "net.ipv4.ip_forward=1", "busybox"], "host network"),
        ] {
            let e = format!("{:#}", build_spec(&run_args(args)).unwrap_err());
            assert!(e.contains(needle), "{args:?}: {e}");
        }
        assert!(Cli::try_parse_from(["cnet", "run", "--sysctl", "net.ipv4.ip_forward", "busybox"]).is_err());
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("NOPE").is_err());
    }
}
