//! End-to-end tests of `cnet events` (cnetd's `EventService`): a container's life reported live in
//! Docker's order (network create, connect, container create, start, die with its exit code,
//! disconnect, destroy, network destroy); `--since` replaying what happened before the
//! subscription and `--until` ending it; `--filter type=/event=` and the default line and
//! template output; bad filters, times and formats refused; the stream ending when cnetd stops,
//! and a container that dies while cnetd is away dying all the same. Each test runs a cnetd of its
//! own in its own namespaces (see the kit in `tests/src`). They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test events`.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cnet_api::v1::event_service_client::EventServiceClient;
use cnet_api::v1::{Event, EventActor, SubscribeRequest};
use cnet_tests::{SIGTERM, TestHost, block_on, spawn_tied, wait_for};
use serde_json::Value;

/// How long a test waits for an event it needs (generous: two copies of the suite may share 2 cores).
const WAIT: Duration = Duration::from_secs(30);

/// `cnet ARGS…` running in the background, its output in files, killed (with its process group)
/// when dropped.
struct BgCli {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl BgCli {
    fn start(host: &TestHost, name: &str, args: &[&str]) -> BgCli {
        let out = host.dir().join(format!("{name}.stdout"));
        let err = host.dir().join(format!("{name}.stderr"));
        let mut cmd = host.cnet_command(120, args);
        cmd.stdout(File::create(&out).expect("create the stdout file"))
            .stderr(File::create(&err).expect("create the stderr file"))
            .process_group(0);
        let child = spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot start cnet {args:?}: {e}"));
        BgCli { child, out, err }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// The events printed so far (`--format json`), one object a line.
    fn events(&self) -> Vec<Value> {
        BgCli::read(&self.out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line: {l:?}: {e}")))
            .collect()
    }

    fn stderr(&self) -> String {
        BgCli::read(&self.err)
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waitpid")
    }
}

impl Drop for BgCli {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

/// `cnet events --format json` whose subscription is known to be in place: networks `warm-N` are
/// made until one of them shows in its output.
fn live_events(host: &TestHost, name: &str, args: &[&str]) -> BgCli {
    let mut all = vec!["events", "--format", "json"];
    all.extend_from_slice(args);
    let events = BgCli::start(host, name, &all);
    let deadline = Instant::now() + WAIT;
    for i in 0.. {
        host.cnet_ok(&["network", "create", &format!("warm-{name}-{i}")]);
        let seen = Instant::now() + Duration::from_millis(500);
        while Instant::now() < seen {
            if events
                .events()
                .iter()
                .any(|e| e["Actor"]["Attributes"]["name"].as_str().is_some_and(|n| n.starts_with("warm-")))
            {
                return events;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(Instant::now() < deadline, "`cnet events` never showed an event: {}", events.stderr());
    }
    unreachable!()
}

fn summary(e: &Value) -> String {
    format!("{} {}", e["Type"].as_str().unwrap_or("?"), e["Action"].as_str().unwrap_or("?"))
}

fn attribute<'a>(e: &'a Value, key: &str) -> &'a str {
    e["Actor"]["Attributes"][key].as_str().unwrap_or("")
}

/// Now as unix seconds with nanoseconds, the way `--since`/`--until` take it.
fn unix_now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970");
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// A container's whole life, seen live, in Docker's order and shape.
#[test]
fn a_containers_life_is_reported_in_order() {
    let host = TestHost::with_cnetd();
    let events = live_events(&host, "life", &[]);
    host.cnet_ok(&["network", "create", "evnet"]);
    let id = host.cnet_ok(&["run", "-d", "--name", "evc", "--network", "evnet", "busybox", "sleep", "100"]);
    let id = id.trim();
    host.cnet_ok(&["rm", "-f", "evc"]);
    host.cnet_ok(&["network", "rm", "evnet"]);

    let mine = || -> Vec<Value> {
        events
            .events()
            .into_iter()
            .filter(|e| match e["Type"].as_str() {
                Some("network") => attribute(e, "name") == "evnet",
                Some("container") => attribute(e, "name") == "evc",
                _ => false,
            })
            .collect()
    };
    wait_for("the network's destroy event", WAIT, || mine().iter().any(|e| summary(e) == "network destroy"));
    let seen = mine();
    let order: Vec<String> = seen.iter().map(summary).collect();
    assert_eq!(
        order,
        [
            "network create",
            "network connect",
            "container create",
            "container start",
            "container die",
            "network disconnect",
            "container destroy",
            "network destroy"
        ],
        "{seen:#?}"
    );
    let network_id = seen[0]["Actor"]["ID"].as_str().expect("an actor id");
    assert_eq!(network_id.len(), 64, "{seen:#?}");
    assert_eq!(attribute(&seen[0], "type"), "bridge");
    for connect in [&seen[1], &seen[5]] {
        assert_eq!(connect["Actor"]["ID"], network_id);
        assert_eq!((attribute(connect, "container"), attribute(connect, "containerName")), (id, "evc"));
    }
    for c in seen.iter().filter(|e| e["Type"] == "container") {
        assert_eq!(c["Actor"]["ID"], id);
        assert_eq!((c["id"].as_str(), c["from"].as_str()), (Some(id), Some("busybox")), "{c}");
    }
    // `rm -f` kills: 128 + SIGKILL.
    assert_eq!(attribute(&seen[4], "exitCode"), "137", "{:#}", seen[4]);
    let times: Vec<i64> = seen.iter().map(|e| e["timeNano"].as_i64().expect("timeNano")).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "times do not increase: {times:?}");
    assert!(seen.iter().all(|e| e["time"].as_i64() == Some(e["timeNano"].as_i64().unwrap() / 1_000_000_000)));
}

/// `--since` replays what happened before the subscription, `--until` ends the stream, and the
/// filters and templates choose what is printed and how.
#[test]
fn since_replays_and_filters_choose() {
    let host = TestHost::with_cnetd();
    let before = unix_now();
    host.cnet_ok(&["network", "create", "past"]);
    host.cnet_ok(&["run", "-d", "--name", "old", "--network", "past", "busybox", "sleep", "100"]);
    host.cnet_ok(&["rm", "-f", "old"]);
    let until = unix_now();
    let template = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";

    let all = host.cnet_ok(&["events", "--since", &before, "--until", &until, "--format", template]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(
        lines,
        [
            "network create past",
            "network connect past",
            "container create old",
            "container start old",
            "container die old",
            "network disconnect past",
            "container destroy old"
        ],
        "{all}"
    );
    // A duration ago replays it too.
    let ago = host.cnet_ok(&["events", "--since", "10m", "--until", &until, "--format", template]);
    assert_eq!(ago, all);

    let networks = host.cnet_ok(&["events", "--since", &before, "--until", &until, "--filter", "type=network"]);
    let lines: Vec<&str> = networks.lines().collect();
    assert_eq!(lines.len(), 3, "{networks}");
    // Docker's line: time, type, action, actor, sorted attributes.
    let fields: Vec<&str> = lines[0].splitn(5, ' ').collect();
    assert!(fields[0].ends_with('Z') && fields[0].len() == 30, "{}", lines[0]);
    assert_eq!(fields[1..3], ["network", "create"]);
    assert_eq!(fields[3].len(), 64, "{}", lines[0]);
    assert_eq!(fields[4], "(name=past, type=bridge)");
    assert!(lines[1..].iter().all(|l| l.split(' ').nth(1) == Some("network")), "{networks}");

    let dies = host.cnet_ok(&[
        "events",
        "--since",
        &before,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--filter",
        "event=die",
        "--format",
        "{{.Status}} {{index .Actor.Attributes \"exitCode\"}}",
    ]);
    assert_eq!(dies, "die 137\n");

    // A live stream with a filter shows only what it asks for.
    let live = live_events(&host, "netonly", &["--filter", "type=network"]);
    host.cnet_ok(&["run", "-d", "--name", "new", "--network", "past", "busybox", "sleep", "100"]);
    wait_for("the connect of `new`", WAIT, || live.events().iter().any(|e| e["Action"] == "connect"));
    host.cnet_ok(&["rm", "-f", "new"]);
    wait_for("the disconnect of `new`", WAIT, || live.events().iter().any(|e| e["Action"] == "disconnect"));
    let seen = live.events();
    assert!(seen.iter().all(|e| e["Type"] == "network"), "{seen:#?}");
}

/// Bad filters, times and formats are refused before anything is asked, naming the value; cnetd
/// refuses them too, and refuses events other than a container's from publishers.
#[test]
fn bad_filters_times_and_events_are_refused() {
    let host = TestHost::with_cnetd();
    let e = host.cnet_err(&["events", "--filter", "type=volume"]);
    assert!(e.contains("\"volume\"") && e.contains("network, container, link or node"), "{e}");
    let e = host.cnet_err(&["events", "--filter", "colour=red"]);
    assert!(e.contains("\"colour\""), "{e}");
    let e = host.cnet_err(&["events", "--since", "yesterday"]);
    assert!(e.contains("invalid --since \"yesterday\""), "{e}");
    let e = host.cnet_err(&["events", "--until", "2026-12-04T12:00:00"]);
    assert!(e.contains("invalid --until"), "{e}");
    let e = host.cnet_err(&["events", "--format", "table {{.Type}}"]);
    assert!(e.contains("table"), "{e}");

    block_on(async {
        let mut client = EventServiceClient::new(host.channel().await);
        let request = SubscribeRequest { filters: vec!["type=volume".into()], ..Default::default() };
        let status = client.subscribe(request).await.expect_err("a bad filter is refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        let event = |kind: &str, action: &str| Event {
            r#type: kind.into(),
            action: action.into(),
            actor: Some(EventActor { id: "ab".repeat(32), ..Default::default() }),
            ..Default::default()
        };
        let status = client.publish(event("network", "create")).await.expect_err("only container events");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains("only container events"), "{status:?}");
        client.publish(event("container", "start")).await.expect("a container event is taken");
    });
}

/// cnetd stopping ends the stream (with an error saying so, and without keeping cnetd waiting);
/// a container that dies while cnetd is away dies all the same, its event lost and logged.
#[test]
fn the_stream_ends_when_cnetd_stops_and_containers_do_not_need_it() {
    let mut host = TestHost::with_cnetd();
    host.cnet_ok(&["run", "-d", "--name", "lonely", "busybox", "sleep", "100"]);
    let mut events = live_events(&host, "stop", &[]);
    let asked = Instant::now();
    host.kill_cnetd(SIGTERM);
    assert!(asked.elapsed() < Duration::from_secs(3), "cnetd waited {:?} for its subscriber", asked.elapsed());
    wait_for("`cnet events` to end", WAIT, || events.try_wait().is_some());
    let status = events.try_wait().expect("ended");
    assert!(!status.success(), "`cnet events` ended successfully");
    assert!(events.stderr().contains("cnetd is shutting down"), "{}", events.stderr());

    let stopped = Instant::now();
    host.cnet_ok(&["stop", "-t", "0", "lonely"]);
    assert!(stopped.elapsed() < Duration::from_secs(10), "stop took {:?}", stopped.elapsed());
    assert_eq!(host.inspect("lonely")["State"]["ExitCode"], 137);
    let id = host.inspect("lonely")["Id"].as_str().expect("an id").to_string();
    let log = std::fs::read_to_string(host.runtime_dir().join("containers").join(id).join("supervisor.log"))
        .expect("the supervisor's log");
    assert!(log.contains("cannot report the container's die to cnetd"), "{log}");
}
