//! Docker's rule for the names of networks, containers and sandboxes, in one place:
//! `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128 characters. A container's name needs at least two
//! characters (Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`); the runtime checks that before it asks
//! cnetd for a sandbox, and cnetd, which serves any client, checks the shared rule.

use crate::{Error, Result};

/// What a name names: each kind has its minimum length and the word its errors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Network,
    /// A sandbox of cnetd's API (the runtime names it after its container).
    Sandbox,
    /// A container of the runtime: Docker's rule, at least two characters.
    Container,
}

impl NameKind {
    fn min_len(self) -> usize {
        match self {
            NameKind::Container => 2,
            NameKind::Network | NameKind::Sandbox => 1,
        }
    }

    fn pattern(self) -> &'static str {
        match self {
            NameKind::Container => "[a-zA-Z0-9][a-zA-Z0-9_.-]+",
            NameKind::Network | NameKind::Sandbox => "[a-zA-Z0-9][a-zA-Z0-9_.-]*",
        }
    }

    fn word(self) -> &'static str {
        match self {
            NameKind::Network => "network",
            NameKind::Sandbox => "sandbox",
            NameKind::Container => "container",
        }
    }
}

/// Checks `name` against the rule for `kind`; the error names the value and the rule.
pub fn validate_name(kind: NameKind, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && (kind.min_len()..=128).contains(&name.len());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid {} name ({name}), only {} are allowed (at most 128 characters)",
            kind.word(),
            kind.pattern()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_with_a_minimum_per_kind() {
        for kind in [NameKind::Network, NameKind::Sandbox, NameKind::Container] {
            assert!(validate_name(kind, "private-network").is_ok());
            assert!(validate_name(kind, "a.b_c-1").is_ok());
            for bad in ["", "-bad", "has space", "a/b", &"x".repeat(129)] {
                let e = validate_name(kind, bad).unwrap_err();
                assert!(e.to_string().contains(&format!("({bad})")), "{e}");
            }
        }
        assert!(validate_name(NameKind::Network, "a").is_ok());
        assert!(validate_name(NameKind::Sandbox, "a").is_ok());
        let e = validate_name(NameKind::Container, "a").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid container name (a), only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed (at most 128 characters)"
        );
    }
}
