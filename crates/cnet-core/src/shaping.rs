//! The state of one end of a link as the user sets it with `cnet link set NODE:IFACE`: admin
//! state, MTU, and its shaping (a rate limit, and netem's delay, jitter, loss and corruption),
//! kept on the endpoint record so that `cnet link ls` shows it and a restart puts it back.
//!
//! Values are parsed here once, with tc's units (`10mbit`, `1gbit`, `500kbit`, `kbps` for bytes
//! per second; `10ms`, `500us`; `1%`), and travel as integers: bits per second, microseconds,
//! parts per million. What the kernel needs of them (bytes per second, nanoseconds, its u32
//! probabilities) is cnet-kernel's business.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One end of a link as the user names it: `NODE:IFACE`, a container (name or id) and an
/// interface inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRef {
    pub node: String,
    pub iface: String,
}

impl FromStr for EndRef {
    type Err = Error;

    /// Neither a container name or id nor an interface name may hold a `:`, so there must be
    /// exactly one, with something on each side.
    fn from_str(s: &str) -> Result<EndRef> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "invalid link end {s:?}: {why} (expected NODE:IFACE, a container and an interface in it, e.g. r1:eth1)"
            ))
        };
        let (node, iface) = s.split_once(':').ok_or_else(|| bad("no ':'"))?;
        if node.is_empty() {
            return Err(bad("no container before ':'"));
        }
        if iface.is_empty() {
            return Err(bad("no interface after ':'"));
        }
        if iface.contains(':') {
            return Err(bad("more than one ':'"));
        }
        if iface.len() > 15 || iface.contains('/') || iface.chars().any(char::is_whitespace) {
            return Err(bad("not a valid interface name"));
        }
        Ok(EndRef { node: node.to_string(), iface: iface.to_string() })
    }
}

impl fmt::Display for EndRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.node, self.iface)
    }
}

/// What `cnet link set` has set on an endpoint's interface; the default is what cnet makes
/// (up, the network's MTU, no qdisc of cnet's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSettings {
    /// Set administratively down (`cnet link set NODE:IFACE down`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub down: bool,
    /// An MTU other than the network's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Shaping::is_empty")]
    pub shaping: Shaping,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl LinkSettings {
    pub fn is_default(&self) -> bool {
        *self == LinkSettings::default()
    }
}

/// The shaping of the traffic an interface sends (one direction of a link; the other end has
/// its own). Zero means "none" for every field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shaping {
    /// Bits per second.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rate_bps: u64,
    /// Microseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delay_us: u64,
    /// Microseconds, either side of the delay (netem's uniform jitter).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub jitter_us: u64,
    /// Parts per million of packets dropped.
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub loss_ppm: u32,
    /// Parts per million of packets with one bit flipped.
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub corrupt_ppm: u32,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero32(v: &u32) -> bool {
    *v == 0
}

/// The shaping as text, field by field, as a lab file or `cnet link set`'s flags give it: a field
/// that is absent or `none` is off. One parser for both, so they accept the same values.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShapingText<'a> {
    pub rate: Option<&'a str>,
    pub delay: Option<&'a str>,
    pub jitter: Option<&'a str>,
    pub loss: Option<&'a str>,
    pub corrupt: Option<&'a str>,
}

impl ShapingText<'_> {
    /// Whether no field is given at all (not even `none`).
    pub fn is_empty(&self) -> bool {
        [self.rate, self.delay, self.jitter, self.loss, self.corrupt].iter().all(Option::is_none)
    }

    /// The shaping, checked; `label` names a field in errors as the user wrote it (`rate` in a
    /// file, `--rate` on a command line).
    pub fn parse(&self, label: impl Fn(&str) -> String) -> Result<Shaping> {
        fn field<T: Default>(
            label: &dyn Fn(&str) -> String,
            name: &str,
            value: Option<&str>,
            parse: fn(&str) -> Result<T>,
        ) -> Result<T> {
            match value {
                None | Some("none") => Ok(T::default()),
                Some(v) => parse(v).map_err(|e| Error::invalid(format!("{} {v:?}: {e}", label(name)))),
            }
        }
        let shaping = Shaping {
            rate_bps: field(&label, "rate", self.rate, parse_rate)?,
            delay_us: field(&label, "delay", self.delay, parse_duration)?,
            jitter_us: field(&label, "jitter", self.jitter, parse_duration)?,
            loss_ppm: field(&label, "loss", self.loss, parse_percent)?,
            corrupt_ppm: field(&label, "corrupt", self.corrupt, parse_percent)?,
        };
        shaping.validate()?;
        Ok(shaping)
    }
}

/// One hundred percent, in parts per million.
pub const PPM_MAX: u32 = 1_000_000;

impl Shaping {
    pub fn is_empty(&self) -> bool {
        *self == Shaping::default()
    }

    /// Whether it needs netem (anything but a rate).
    pub fn needs_netem(&self) -> bool {
        self.delay_us != 0 || self.jitter_us != 0 || self.loss_ppm != 0 || self.corrupt_ppm != 0
    }

    /// The checks that need no kernel: jitter is around a delay, probabilities are at most 100%.
    pub fn validate(&self) -> Result<()> {
        if self.jitter_us != 0 && self.delay_us == 0 {
            return Err(Error::invalid(format!(
                "--jitter {} needs --delay: jitter varies the delay",
                format_duration(self.jitter_us)
            )));
        }
        for (flag, ppm) in [("--loss", self.loss_ppm), ("--corrupt", self.corrupt_ppm)] {
            if ppm > PPM_MAX {
                return Err(Error::invalid(format!("{flag} {}: more than 100%", format_percent(ppm))));
            }
        }
        if self.rate_bps != 0 && self.rate_bps < 8 {
            return Err(Error::invalid(format!("--rate {}bit: less than one byte per second", self.rate_bps)));
        }
        Ok(())
    }
}

impl fmt::Display for Shaping {
    /// `rate 10mbit delay 10ms jitter 1ms loss 1% corrupt 0.1%`, the fields that are set; empty
    /// when none is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.rate_bps != 0 {
            parts.push(format!("rate {}", format_rate(self.rate_bps)));
        }
        if self.delay_us != 0 {
            parts.push(format!("delay {}", format_duration(self.delay_us)));
        }
        if self.jitter_us != 0 {
            parts.push(format!("jitter {}", format_duration(self.jitter_us)));
        }
        if self.loss_ppm != 0 {
            parts.push(format!("loss {}", format_percent(self.loss_ppm)));
        }
        if self.corrupt_ppm != 0 {
            parts.push(format!("corrupt {}", format_percent(self.corrupt_ppm)));
        }
        f.write_str(&parts.join(" "))
    }
}

/// Splits `10.5mbit` into `10.5` and `mbit`.
fn split_number(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    s.split_at(end)
}

/// `number * scale`, exactly for whole numbers and to the nearest unit for decimals; `None`
/// when it is not a number or does not fit.
fn scaled(number: &str, scale: u64) -> Option<u64> {
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    match number.split_once('.') {
        None => number.parse::<u64>().ok()?.checked_mul(scale),
        Some((whole, frac)) => {
            if frac.contains('.') || frac.len() > 12 {
                return None;
            }
            let whole = whole.parse::<u64>().ok()?.checked_mul(scale)?;
            let digits = frac.parse::<u128>().ok()?;
            let denom = 10u128.pow(frac.len() as u32);
            let part = (digits * u128::from(scale) + denom / 2) / denom;
            whole.checked_add(u64::try_from(part).ok()?)
        }
    }
}

/// A rate as tc takes it (tc(8), "RATES"): a number and a unit, case-insensitive. `bit` (or no
/// unit), `kbit`, `mbit`, `gbit`, `tbit` are bits per second with SI prefixes (1000); `bps`,
/// `kbps`, `mbps`, `gbps`, `tbps` bytes per second; `kibit`, `mibit`… and `kibps`, `mibps`… the
/// same with IEC prefixes (1024). Returns bits per second, never 0.
pub fn parse_rate(s: &str) -> Result<u64> {
    let bad = |why: &str| Error::invalid(format!("invalid rate {s:?}: {why} (e.g. 10mbit, 1gbit, 500kbit, 100kbps)"));
    let lower = s.trim().to_ascii_lowercase();
    let (number, unit) = split_number(&lower);
    let scale: u64 = match unit {
        "" | "bit" => 1,
        "kbit" => 1_000,
        "mbit" => 1_000_000,
        "gbit" => 1_000_000_000,
        "tbit" => 1_000_000_000_000,
        "kibit" => 1 << 10,
        "mibit" => 1 << 20,
        "gibit" => 1 << 30,
        "tibit" => 1 << 40,
        "bps" => 8,
        "kbps" => 8_000,
        "mbps" => 8_000_000,
        "gbps" => 8_000_000_000,
        "tbps" => 8_000_000_000_000,
        "kibps" => 8 << 10,
        "mibps" => 8 << 20,
        "gibps" => 8 << 30,
        "tibps" => 8 << 40,
        _ => return Err(bad("unknown unit")),
    };
    match scaled(number, scale) {
        None => Err(bad("not a number, or too large")),
        Some(0) => Err(bad("zero (use none to remove a rate)")),
        Some(bits) if bits < 8 => Err(bad("less than one byte per second")),
        Some(bits) => Ok(bits),
    }
}

/// A time as tc takes it: a number and `s`/`sec`/`secs`, `ms`/`msec`/`msecs`, `us`/`usec`/`usecs`
/// (or no unit: microseconds, as tc). Returns microseconds; 0 is allowed (none).
pub fn parse_duration(s: &str) -> Result<u64> {
    let bad = |why: &str| Error::invalid(format!("invalid time {s:?}: {why} (e.g. 10ms, 500us, 1s)"));
    let lower = s.trim().to_ascii_lowercase();
    let (number, unit) = split_number(&lower);
    let scale = match unit {
        "" | "us" | "usec" | "usecs" => 1,
        "ms" | "msec" | "msecs" => 1_000,
        "s" | "sec" | "secs" => 1_000_000,
        _ => return Err(bad("unknown unit")),
    };
    let us = scaled(number, scale).ok_or_else(|| bad("not a number"))?;
    // netem keeps its delay in nanoseconds in an s64 (and in 32-bit ticks for old kernels):
    // an hour is far beyond any lab's need and well inside both.
    if us > 3_600_000_000 {
        return Err(bad("more than an hour"));
    }
    Ok(us)
}

/// A percentage: `1%`, `0.5%`, or a bare number of percent. Returns parts per million, 0 to
/// 1000000.
pub fn parse_percent(s: &str) -> Result<u32> {
    let bad = |why: &str| Error::invalid(format!("invalid percentage {s:?}: {why} (e.g. 1%, 0.5%)"));
    let trimmed = s.trim();
    let number = trimmed.strip_suffix('%').unwrap_or(trimmed);
    let ppm = scaled(number, 10_000).ok_or_else(|| bad("not a number"))?;
    if ppm > u64::from(PPM_MAX) {
        return Err(bad("more than 100%"));
    }
    Ok(ppm as u32)
}

/// `value / scale` with up to `decimals` decimals, trailing zeros dropped.
fn decimal(value: u64, scale: u64, decimals: u32) -> String {
    let whole = value / scale;
    let rest = value % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let frac = (u128::from(rest) * 10u128.pow(decimals) / u128::from(scale)) as u64;
    let text = format!("{whole}.{frac:0width$}", width = decimals as usize);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Bits per second in the largest SI unit that keeps it short: `10mbit`, `1.5gbit`, `800bit`.
pub fn format_rate(bps: u64) -> String {
    for (scale, unit) in [(1_000_000_000_000, "tbit"), (1_000_000_000, "gbit"), (1_000_000, "mbit"), (1_000, "kbit")] {
        if bps >= scale {
            return format!("{}{unit}", decimal(bps, scale, 3));
        }
    }
    format!("{bps}bit")
}

/// Microseconds as `1s`, `10ms`, `1.5ms`, `500us`.
pub fn format_duration(us: u64) -> String {
    if us >= 1_000_000 {
        format!("{}s", decimal(us, 1_000_000, 6))
    } else if us >= 1_000 {
        format!("{}ms", decimal(us, 1_000, 3))
    } else {
        format!("{us}us")
    }
}

/// Parts per million as `1%`, `0.5%`, `0.0001%`.
pub fn format_percent(ppm: u32) -> String {
    format!("{}%", decimal(u64::from(ppm), 10_000, 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_like_tc() {
        for (text, bps) in [
            ("10mbit", 10_000_000),
            ("1gbit", 1_000_000_000),
            ("500kbit", 500_000),
            ("1Mbit", 1_000_000),
            ("1.5mbit", 1_500_000),
            ("800", 800),
            ("800bit", 800),
            ("1bps", 8),
            ("100kbps", 800_000),
            ("1mbps", 8_000_000),
            ("1kibit", 1024),
            ("1mibit", 1 << 20),
            ("2kibps", 2 * 8 * 1024),
            ("1tbit", 1_000_000_000_000),
        ] {
            assert_eq!(parse_rate(text).unwrap(), bps, "{text}");
        }
        for (bad, needle) in [
            ("", "not a number"),
            ("fast", "unknown unit"),
            ("10 mbit", "unknown unit"),
            ("10furlongs", "unknown unit"),
            ("0mbit", "zero"),
            ("1.mbit", "not a number"),
            ("1..2mbit", "not a number"),
            ("-1mbit", "unknown unit"),
            ("4bit", "less than one byte"),
            ("99999999999tbit", "not a number"),
        ] {
            let err = parse_rate(bad).unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_and_percentages() {
        assert_eq!(parse_duration("10ms").unwrap(), 10_000);
        assert_eq!(parse_duration("1.5ms").unwrap(), 1_500);
        assert_eq!(parse_duration("500us").unwrap(), 500);
        assert_eq!(parse_duration("500").unwrap(), 500);
        assert_eq!(parse_duration("2s").unwrap(), 2_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("10 minutes").unwrap_err().to_string().contains("unknown unit"));
        assert!(parse_duration("2h").unwrap_err().to_string().contains("\"2h\""));
        assert!(parse_duration("3601s").unwrap_err().to_string().contains("more than an hour"));
        assert_eq!(parse_percent("1%").unwrap(), 10_000);
        assert_eq!(parse_percent("0.5%").unwrap(), 5_000);
        assert_eq!(parse_percent("100").unwrap(), PPM_MAX);
        assert_eq!(parse_percent("0.0001%").unwrap(), 1);
        assert!(parse_percent("101%").unwrap_err().to_string().contains("more than 100%"));
        assert!(parse_percent("lots").unwrap_err().to_string().contains("\"lots\""));
    }

    #[test]
    fn formats_read_back_as_the_same_value() {
        for bps in [8, 800, 1_000, 1_500_000, 10_000_000, 1_000_000_000, 2_500_000_000] {
            assert_eq!(parse_rate(&format_rate(bps)).unwrap(), bps, "{}", format_rate(bps));
        }
        assert_eq!(format_rate(10_000_000), "10mbit");
        assert_eq!(format_rate(1_500_000), "1.5mbit");
        for us in [1, 500, 1_000, 1_500, 10_000, 1_000_000, 2_500_000] {
            assert_eq!(parse_duration(&format_duration(us)).unwrap(), us, "{}", format_duration(us));
        }
        assert_eq!(format_duration(10_000), "10ms");
        for ppm in [1, 5_000, 10_000, 123_456, PPM_MAX] {
            assert_eq!(parse_percent(&format_percent(ppm)).unwrap(), ppm, "{}", format_percent(ppm));
        }
        assert_eq!(format_percent(5_000), "0.5%");
        let s =
            Shaping { rate_bps: 1_000_000, delay_us: 10_000, jitter_us: 1_000, loss_ppm: 10_000, corrupt_ppm: 1_000 };
        assert_eq!(s.to_string(), "rate 1mbit delay 10ms jitter 1ms loss 1% corrupt 0.1%");
        assert_eq!(Shaping::default().to_string(), "");
    }

    #[test]
    fn end_references() {
        assert_eq!("r1:eth1".parse::<EndRef>().unwrap(), EndRef { node: "r1".into(), iface: "eth1".into() });
        assert_eq!("r1:eth1".parse::<EndRef>().unwrap().to_string(), "r1:eth1");
        for (bad, needle) in [
            ("r1", "no ':'"),
            (":eth1", "no container"),
            ("r1:", "no interface"),
            ("r1:eth1:0", "more than one ':'"),
            ("r1:averyveryverylongname", "not a valid interface name"),
        ] {
            let err = bad.parse::<EndRef>().unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains(&format!("{bad:?}")), "{bad}: {err}");
            assert!(err.contains("NODE:IFACE"), "{err}");
        }
    }

    #[test]
    fn shaping_checks_and_old_records_load() {
        let jitter_alone = Shaping { jitter_us: 1_000, ..Default::default() };
        assert!(jitter_alone.validate().unwrap_err().to_string().contains("--jitter 1ms needs --delay"));
        assert!(Shaping { loss_ppm: PPM_MAX + 1, ..Default::default() }.validate().is_err());
        assert!(!Shaping { rate_bps: 1_000, ..Default::default() }.needs_netem());
        assert!(Shaping { corrupt_ppm: 1, ..Default::default() }.needs_netem());
        // Records without settings load as the default, and the default writes nothing.
        let settings: LinkSettings = serde_json::from_str("{}").unwrap();
        assert!(settings.is_default());
        assert_eq!(serde_json::to_string(&settings).unwrap(), "{}");
        let set = LinkSettings { down: true, mtu: Some(9000), shaping: Shaping { rate_bps: 8, ..Default::default() } };
        assert_eq!(serde_json::from_str::<LinkSettings>(&serde_json::to_string(&set).unwrap()).unwrap(), set);
    }

    #[test]
    fn shaping_text_is_parsed_alike_for_files_and_flags() {
        let text = ShapingText { rate: Some("10mbit"), delay: Some("20ms"), loss: Some("none"), ..Default::default() };
        let s = text.parse(str::to_string).unwrap();
        assert_eq!((s.rate_bps, s.delay_us, s.loss_ppm), (10_000_000, 20_000, 0));
        assert!(ShapingText::default().is_empty() && !text.is_empty());
        let bad = ShapingText { rate: Some("fast"), ..Default::default() };
        let in_file = bad.parse(str::to_string).unwrap_err().to_string();
        let on_command_line = bad.parse(|f| format!("--{f}")).unwrap_err().to_string();
        assert!(in_file.contains("rate \"fast\"") && !in_file.contains("--rate"), "{in_file}");
        assert!(on_command_line.contains("--rate \"fast\""), "{on_command_line}");
        let jitter_alone = ShapingText { jitter: Some("1ms"), ..Default::default() };
        assert!(jitter_alone.parse(str::to_string).unwrap_err().to_string().contains("needs --delay"));
    }
}
