//! Events in Docker's shape (`docker events`): what kinds there are, which container actions the
//! runtime may report, and the filters of a subscription, parsed once where they enter (the CLI,
//! cnetd's `Subscribe`) and matched by cnetd.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// An event's `Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    Network,
    Container,
    Link,
    Node,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [EventKind::Network, EventKind::Container, EventKind::Link, EventKind::Node];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Network => "network",
            EventKind::Container => "container",
            EventKind::Link => "link",
            EventKind::Node => "node",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            Error::invalid(format!("invalid event type {s:?}: expected network, container, link or node"))
        })
    }
}

/// The container actions the runtime reports (cnetd does not see container processes).
pub const CONTAINER_ACTIONS: [&str; 7] = ["create", "start", "die", "kill", "stop", "restart", "destroy"];

/// `--filter type=…` and `--filter event=…`: several values of one key match any; the two keys
/// must both match. Empty: everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub kinds: Vec<EventKind>,
    pub actions: Vec<String>,
}

impl EventFilter {
    /// Parses Docker's `key=value` filters; unknown keys and types are refused by name.
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<EventFilter> {
        let mut filter = EventFilter::default();
        for f in raw {
            let f = f.as_ref();
            let (key, value) =
                f.split_once('=').ok_or_else(|| Error::invalid(format!("invalid filter {f:?}: expected key=value")))?;
            match key {
                "type" => filter.kinds.push(value.parse()?),
                "event" | "action" if !value.is_empty() => filter.actions.push(value.to_string()),
                "event" | "action" => return Err(Error::invalid(format!("invalid filter {f:?}: empty event"))),
                _ => {
                    return Err(Error::invalid(format!(
                        "invalid filter {key:?}: the event filters are type and event"
                    )));
                }
            }
        }
        Ok(filter)
    }

    pub fn matches(&self, kind: EventKind, action: &str) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && (self.actions.is_empty() || self.actions.iter().any(|a| a == action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_any_value_of_a_key_and_every_key() {
        let f = EventFilter::parse(&["type=network", "type=link", "event=create"]).unwrap();
        assert!(f.matches(EventKind::Network, "create"));
        assert!(f.matches(EventKind::Link, "create"));
        assert!(!f.matches(EventKind::Network, "destroy"));
        assert!(!f.matches(EventKind::Container, "create"));
        let all = EventFilter::parse::<&str>(&[]).unwrap();
        assert!(all.matches(EventKind::Node, "down"));
    }

    #[test]
    fn bad_filters_are_refused_by_name() {
        let e = EventFilter::parse(&["type=volume"]).unwrap_err().to_string();
        assert!(e.contains("volume") && e.contains("network, container, link or node"), "{e}");
        let e = EventFilter::parse(&["colour=red"]).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
        assert!(EventFilter::parse(&["type"]).unwrap_err().to_string().contains("key=value"));
        assert!(EventFilter::parse(&["event="]).is_err());
    }
}
