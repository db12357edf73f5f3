//! Timestamps without a date crate: RFC 3339 for records, "3 minutes ago" for tables.

use std::time::{Duration, SystemTime};

pub use cnet_core::time::{now_rfc3339, parse_rfc3339, rfc3339};

/// Docker's `units.HumanDuration`: "Less than a second", "5 seconds", "About a minute", "3 hours"…
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let mins = secs / 60;
    let hours = mins / 60;
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if mins == 1 {
        "About a minute".into()
    } else if mins < 60 {
        format!("{mins} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// How long ago an RFC 3339 time was, as Docker words it; empty if unparsable.
pub fn since(s: &str) -> Option<Duration> {
    let t = parse_rfc3339(s)?;
    Some(SystemTime::now().duration_since(t).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human() {
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(5)), "5 seconds");
        assert_eq!(human_duration(Duration::from_secs(70)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600)), "3 hours");
    }
}
