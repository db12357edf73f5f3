//! `cnet events`: cnetd's event stream (`EventService.Subscribe`), printed as Docker prints its
//! events: one line each, or through `--format`.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use cnet_api::v1::{Event, SubscribeRequest};
use cnet_core::events::EventFilter;
use serde_json::{Value, json};

use crate::cli::EventsArgs;
use crate::client::{CallError, Daemon};
use crate::format::Format;

/// `cnet events [--since T] [--until T] [--filter K=V]… [--format F]`: every value is checked
/// before cnetd is asked; with `--until` it ends at that time, otherwise when interrupted.
pub async fn events(socket: &Path, args: &EventsArgs) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now();
    let since_nano = args.since.as_deref().map(|t| parse_time("--since", t, now)).transpose()?;
    let until_nano = args.until.as_deref().map(|t| parse_time("--until", t, now)).transpose()?;
    EventFilter::parse(&args.filters).context("invalid --filter")?;
    let format = crate::format::check(args.format.as_deref())?;
    if let Some(Format::Template { table: true, .. }) = format {
        bail!("--format table is not supported by events: give a template or json");
    }
    let daemon = Daemon::connect(socket).await?;
    let request = SubscribeRequest {
        filters: args.filters.clone(),
        since_nano: since_nano.unwrap_or(0),
        until_nano: until_nano.unwrap_or(0),
    };
    let mut stream = daemon.events().subscribe(request).await.map_err(|s| daemon.error(s))?.into_inner();
    let mut out = io::stdout().lock();
    while let Some(event) = stream.message().await.map_err(|s| daemon.error(s))? {
        out.write_all(render(&event, format.as_ref())?.as_bytes())?;
        // Each event as it happens, also into a pipe.
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One event: Docker's line, or the `--format` of it.
pub fn render(event: &Event, format: Option<&Format>) -> anyhow::Result<String> {
    match format {
        None => Ok(render_line(event)),
        Some(Format::Json) => Ok(format!("{}\n", serde_json::to_string(&docker_json(event))?)),
        Some(format) => crate::format::render(format, &[template_object(event)]),
    }
}

/// `2026-12-04T12:00:00.000000000Z network create ID (name=lan, type=bridge)`, attributes sorted.
pub fn render_line(event: &Event) -> String {
    let time = cnet_core::time::rfc3339(UNIX_EPOCH + Duration::from_nanos(event.time_nano.max(0) as u64));
    let (id, attributes) = actor(event);
    let mut line = format!("{time} {} {} {id}", event.r#type, event.action);
    if !attributes.is_empty() {
        let pairs: Vec<String> = attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        line.push_str(&format!(" ({})", pairs.join(", ")));
    }
    line.push('\n');
    line
}

fn actor(event: &Event) -> (&str, std::collections::BTreeMap<&str, &str>) {
    match &event.actor {
        Some(a) => (a.id.as_str(), a.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()),
        None => ("", Default::default()),
    }
}

/// The event as Docker's API writes it (`--format json`): its own fields, then the legacy
/// `status`, `id` and `from` of container events.
pub fn docker_json(event: &Event) -> Value {
    let (id, attributes) = actor(event);
    let mut value = json!({
        "Type": event.r#type,
        "Action": event.action,
        "Actor": {"ID": id, "Attributes": attributes},
        "scope": event.scope,
        "time": event.time,
        "timeNano": event.time_nano,
    });
    if event.r#type == "container" {
        value["status"] = json!(event.action);
        value["id"] = json!(id);
        value["from"] = json!(attributes.get("image").copied().unwrap_or_default());
    }
    value
}

/// The event with the Go field names Docker's templates use (`.Type`, `.Actor.ID`, `.TimeNano`,
/// and the legacy `.Status`, `.ID`, `.From`).
pub fn template_object(event: &Event) -> Value {
    let (id, attributes) = actor(event);
    let container = event.r#type == "container";
    json!({
        "Type": event.r#type,
        "Action": event.action,
        "Actor": {"ID": id, "Attributes": attributes},
        "Scope": event.scope,
        "Time": event.time,
        "TimeNano": event.time_nano,
        "Status": if container { event.action.as_str() } else { "" },
        "ID": if container { id } else { "" },
        "From": if container { attributes.get("image").copied().unwrap_or_default() } else { "" },
    })
}

/// Docker's `--since`/`--until` forms, as unix nanoseconds: unix seconds (`1700000000`, with
/// an optional fraction), an RFC 3339 time (`2026-12-04T12:00:00Z`, `…+01:00`), or a duration
/// (`10m`, `1h30m`, `1.5h`, `300ms`) meaning that long before `now`.
pub fn parse_time(flag: &str, value: &str, now: SystemTime) -> anyhow::Result<i64> {
    let bad = || {
        anyhow::anyhow!(
            "invalid {flag} {value:?}: expected unix seconds, an RFC 3339 time (2026-12-04T12:00:00Z) \
             or a duration ago (10m, 1h30m)"
        )
    };
    let t = if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit() || c == '.') {
        unix_seconds(value).ok_or_else(bad)?
    } else if value.contains('T') {
        rfc3339(value).ok_or_else(bad)?
    } else {
        now.checked_sub(go_duration(value).ok_or_else(bad)?).ok_or_else(bad)?
    };
    let nanos = t.duration_since(UNIX_EPOCH).map_err(|_| bad())?.as_nanos();
    i64::try_from(nanos).map_err(|_| bad())
}

fn unix_seconds(value: &str) -> Option<SystemTime> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 9 || frac.contains('.') {
        return None;
    }
    let nanos: u32 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
    UNIX_EPOCH.checked_add(Duration::new(secs.parse().ok()?, nanos))
}

/// RFC 3339 with `Z` or a `±HH:MM` offset.
fn rfc3339(value: &str) -> Option<SystemTime> {
    if value.ends_with('Z') {
        return cnet_core::time::parse_rfc3339(value);
    }
    let (date_time, sign, offset) = match value.rfind(['+', '-']) {
        Some(i) if i > value.find('T')? => (&value[..i], &value[i..=i], &value[i + 1..]),
        _ => return None,
    };
    let (h, m) = offset.split_once(':')?;
    let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    let utc_as_if = cnet_core::time::parse_rfc3339(&format!("{date_time}Z"))?;
    let shift = Duration::from_secs(h * 3600 + m * 60);
    // 12:00+01:00 is 11:00Z.
    if sign == "+" { utc_as_if.checked_sub(shift) } else { utc_as_if.checked_add(shift) }
}

/// Go's `time.ParseDuration` (what Docker takes): numbers with units `ns`, `us`/`µs`, `ms`, `s`,
/// `m`, `h`, one after another.
fn go_duration(value: &str) -> Option<Duration> {
    let mut rest = value;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnet_api::v1::EventActor;

    const NOW: u64 = 1_700_000_000;

    fn at(secs: u64) -> i64 {
        (secs * 1_000_000_000) as i64
    }

    fn parse(value: &str) -> anyhow::Result<i64> {
        parse_time("--since", value, UNIX_EPOCH + Duration::from_secs(NOW))
    }

    #[test]
    fn times_in_docker_forms() {
        assert_eq!(parse("1600000000").unwrap(), at(1_600_000_000));
        assert_eq!(parse("1600000000.5").unwrap(), at(1_600_000_000) + 500_000_000);
        assert_eq!(parse("2023-11-14T22:13:20Z").unwrap(), at(NOW));
        assert_eq!(parse("2023-11-14T22:13:20.25Z").unwrap(), at(NOW) + 250_000_000);
        assert_eq!(parse("2023-11-14T23:13:20+01:00").unwrap(), at(NOW));
        assert_eq!(parse("2023-11-14T21:43:20-00:30").unwrap(), at(NOW));
        assert_eq!(parse("10m").unwrap(), at(NOW - 600));
        assert_eq!(parse("1h30m").unwrap(), at(NOW - 5400));
        assert_eq!(parse("1.5h").unwrap(), at(NOW - 5400));
        assert_eq!(parse("250ms").unwrap(), at(NOW) - 250_000_000);
    }

    #[test]
    fn bad_times_are_refused_naming_flag_and_value() {
        for bad in ["", "yesterday", "10x", "1.2.3", "2023-11-14T22:13:20", "2023-13-99T99:00:00+25:00", "m"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("--since") && e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    fn event(kind: &str, action: &str) -> Event {
        Event {
            r#type: kind.into(),
            action: action.into(),
            actor: Some(EventActor {
                id: "0123abcd".into(),
                attributes: [("type", "bridge"), ("name", "lan")]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }),
            scope: "local".into(),
            time: NOW as i64,
            time_nano: at(NOW) + 5,
        }
    }

    #[test]
    fn docker_line() {
        assert_eq!(
            render(&event("network", "create"), None).unwrap(),
            "2023-11-14T22:13:20.000000005Z network create 0123abcd (name=lan, type=bridge)\n"
        );
        let mut bare = event("node", "up");
        bare.actor = None;
        assert_eq!(render_line(&bare), "2023-11-14T22:13:20.000000005Z node up \n");
    }

    #[test]
    fn templates_and_json_use_dockers_names() {
        let f = |s: &str| Format::parse(Some(s)).unwrap();
        let e = event("container", "die");
        assert_eq!(
            render(&e, Some(&f("{{.Type}} {{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}} {{.TimeNano}}")))
                .unwrap(),
            format!("container die 0123abcd lan {}\n", at(NOW) + 5)
        );
        assert_eq!(render(&e, Some(&f("{{.Status}} {{.ID}} {{.Time}}"))).unwrap(), format!("die 0123abcd {NOW}\n"));
        let line = render(&e, Some(&f("json"))).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Actor"]["Attributes"]["name"], "lan");
        assert_eq!(
            (v["status"].as_str(), v["id"].as_str(), v["timeNano"].as_i64()),
            (Some("die"), Some("0123abcd"), Some(at(NOW) + 5))
        );
        let n: Value = serde_json::from_str(&render(&event("network", "create"), Some(&f("json"))).unwrap()).unwrap();
        assert!(n.get("status").is_none(), "{n}");
    }
}
