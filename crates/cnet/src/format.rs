//! Docker's `--format`: a Go template (through gtmpl) run over the same JSON objects that
//! `inspect` prints, or over one object per row for listings; `table TEMPLATE` adds a header and
//! aligns the tab-separated columns; `json` prints each object as one line of JSON. So Docker
//! users' one-liners (`-f '{{.NetworkSettings.IPAddress}}'`, `--format '{{json .}}'`,
//! `--format 'table {{.ID}}\t{{.Names}}'`) work unchanged.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use gtmpl::{Context, FuncError, Template, Value};
use serde_json::Value as Json;

/// A parsed `--format` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Each object as one line of JSON (`--format json`).
    Json,
    /// A template, run once per object; `table` also prints a header line and aligns columns.
    Template { text: String, table: bool },
}

impl Format {
    /// `None` for the command's own default output (`table` alone is that too).
    pub fn parse(value: Option<&str>) -> Option<Format> {
        let value = value?;
        match value.trim() {
            "" | "table" => None,
            "json" => Some(Format::Json),
            other => match other.strip_prefix("table ") {
                Some(rest) => Some(Format::Template { text: unescape(rest), table: true }),
                None => Some(Format::Template { text: unescape(value), table: false }),
            },
        }
    }
}

/// `\t` and `\n` written in a shell argument mean a tab and a newline, as in Docker.
fn unescape(text: &str) -> String {
    text.replace("\\t", "\t").replace("\\n", "\n")
}

/// Renders `objects` (JSON objects) with `format`: one line per object.
pub fn render(format: &Format, objects: &[Json]) -> anyhow::Result<String> {
    match format {
        Format::Json => {
            let mut out = String::new();
            for o in objects {
                out.push_str(&serde_json::to_string(o)?);
                out.push('\n');
            }
            Ok(out)
        }
        Format::Template { text, table } => {
            let template = compile(text)?;
            let mut lines = Vec::new();
            if *table {
                lines.push(header(text));
            }
            for o in objects {
                let line = template
                    .render(&Context::from(to_gtmpl(o)))
                    .map_err(|e| anyhow::anyhow!("template: {e}"))
                    .with_context(|| format!("executing the template {text:?}"))?;
                lines.push(line);
            }
            Ok(if *table { align(&lines) } else { lines.iter().map(|l| format!("{l}\n")).collect() })
        }
    }
}

/// A table's header: each `{{.Field}}` (or `{{json .Field}}`…) becomes its field's name in
/// capitals (`ID`, `NAMES`), with Docker's spaced names where they differ.
fn header(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else { break };
        let action = &rest[start + 2..start + end];
        let field = action.split_whitespace().rev().find(|w| w.starts_with('.')).unwrap_or("");
        let name = field.rsplit('.').next().unwrap_or("");
        out.push_str(&column_name(name));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

fn column_name(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "RunningFor" => "CREATED".into(),
        "CreatedSince" => "CREATED".into(),
        "IPv6" => "IPV6".into(),
        other => other.to_uppercase(),
    }
}

/// Tab-separated cells, aligned as Docker's tabwriter does (3 spaces between columns).
fn align(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 < row.len() {
                line.push_str(&format!("{cell:<width$}   ", width = widths[c]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// JSON into gtmpl's values: objects become maps, so a missing key prints `<no value>` as in Go.
pub fn to_gtmpl(value: &Json) -> Value {
    match value {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (_, _, Some(f)) => Value::from(f),
            _ => Value::Nil,
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(to_gtmpl).collect()),
        Json::Object(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), to_gtmpl(v))).collect::<HashMap<_, _>>()),
    }
}

fn to_json(value: &Value) -> Json {
    match value {
        Value::NoValue | Value::Nil | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Json::from(i),
            (None, Some(u), _) => Json::from(u),
            (_, _, Some(f)) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
            _ => Json::Null,
        },
        Value::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Object(map) | Value::Map(map) => {
            // Sorted keys, as Go's encoding/json prints a map.
            let sorted: std::collections::BTreeMap<&String, Json> = map.iter().map(|(k, v)| (k, to_json(v))).collect();
            Json::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
    }
}

/// Docker's template functions beyond Go's builtins.
const FUNCS: [(&str, gtmpl::Func); 6] =
    [("json", json), ("join", join), ("lower", lower), ("upper", upper), ("split", split), ("title", title)];

fn one_string(name: &str, args: &[Value]) -> Result<String, FuncError> {
    match args {
        [Value::String(s)] => Ok(s.clone()),
        [other] => Ok(other.to_string()),
        _ => Err(FuncError::ExactlyXArgs(name.into(), 1)),
    }
}

fn json(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [value] => {
            Ok(Value::String(serde_json::to_string(&to_json(value)).map_err(|e| FuncError::Generic(e.to_string()))?))
        }
        _ => Err(FuncError::ExactlyXArgs("json".into(), 1)),
    }
}

fn join(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [Value::Array(items), Value::String(sep)] => {
            Ok(Value::String(items.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(sep)))
        }
        [Value::NoValue | Value::Nil, Value::String(_)] => Ok(Value::String(String::new())),
        _ => Err(FuncError::Generic("join takes a list and a separator".into())),
    }
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(one_string("lower", args)?.to_lowercase()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(one_string("upper", args)?.to_uppercase()))
}

fn title(args: &[Value]) -> Result<Value, FuncError> {
    let s = one_string("title", args)?;
    let mut chars = s.chars();
    Ok(Value::String(chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()))
}

fn split(args: &[Value]) -> Result<Value, FuncError> {
    match args {
        [Value::String(s), Value::String(sep)] => {
            Ok(Value::Array(s.split(sep.as_str()).map(|p| Value::String(p.to_string())).collect()))
        }
        _ => Err(FuncError::Generic("split takes a string and a separator".into())),
    }
}

/// Checks a `--format` value for a command that takes one, so a bad template fails before
/// anything is asked of the daemon.
pub fn check(value: Option<&str>) -> anyhow::Result<Option<Format>> {
    let format = Format::parse(value);
    if let Some(Format::Template { text, .. }) = &format {
        compile(text)?;
    }
    Ok(format)
}

/// The template with Docker's functions, parsed; the error names the `--format` text.
fn compile(text: &str) -> anyhow::Result<Template> {
    let mut template = Template::default();
    template.add_funcs(&FUNCS);
    match template.parse(text) {
        Ok(()) => Ok(template),
        Err(e) => bail!("invalid --format {text:?}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(format: &str, objects: &[Json]) -> String {
        render(&Format::parse(Some(format)).unwrap(), objects).unwrap()
    }

    #[test]
    fn docker_one_liners() {
        let c = json!({
            "Name": "/web",
            "NetworkSettings": {"IPAddress": "172.17.0.2", "Networks": {"bridge": {"IPAddress": "172.17.0.2"}}},
            "Config": {"Labels": {"team": "net"}, "Env": ["A=1", "B=2"]},
            "State": {"Running": true, "Pid": 42}
        });
        let one = std::slice::from_ref(&c);
        assert_eq!(run("{{.NetworkSettings.IPAddress}}", one), "172.17.0.2\n");
        assert_eq!(run("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", one), "172.17.0.2\n");
        assert_eq!(run("{{index .Config.Labels \"team\"}}", one), "net\n");
        assert_eq!(run("{{json .State}}", one), "{\"Pid\":42,\"Running\":true}\n");
        assert_eq!(run("{{join .Config.Env \",\"}}", one), "A=1,B=2\n");
        assert_eq!(run("{{.State.Running}} {{upper .Name}}", one), "true /WEB\n");
        assert_eq!(run("{{.Nope}}", one), "<no value>\n");
        assert_eq!(run("json", one), format!("{}\n", serde_json::to_string(&c).unwrap()));
    }

    #[test]
    fn tables_have_a_header_and_aligned_columns() {
        let rows = [json!({"ID": "abc", "Names": "web"}), json!({"ID": "0123456789ab", "Names": "db"})];
        assert_eq!(
            run("table {{.ID}}\\t{{.Names}}", &rows),
            "CONTAINER ID   NAMES\nabc            web\n0123456789ab   db\n"
        );
        assert_eq!(Format::parse(Some("table")), None);
        assert_eq!(Format::parse(None), None);
    }

    #[test]
    fn bad_templates_are_refused_by_name() {
        let e = check(Some("{{.Name")).unwrap_err().to_string();
        assert!(e.contains("{{.Name"), "{e}");
        assert!(check(Some("{{.Name}}")).unwrap().is_some());
    }
}
