//! Image references: `name[:tag]` as Docker spells them, and image ids.

use super::error::{Error, Result};

/// The tag of a reference that names none.
pub const DEFAULT_TAG: &str = "latest";

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Splits and validates `name[:tag]`; the tag defaults to `latest`.
///
/// A name is one or more `/`-separated components of `[a-z0-9._-]`, each starting and ending with a
/// letter or digit, at most 255 characters in all; a tag is `[A-Za-z0-9_.-]{1,128}` not starting with
/// `.` or `-`. Registries with ports and digests (`name@sha256:…`) are refused: no registry is ever used.
pub fn parse_reference(s: &str) -> Result<(String, String)> {
    // The tag is what follows the last ':' unless a '/' follows it (`host:5000/name` has no tag).
    let (name, tag) = match s.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (s, DEFAULT_TAG),
    };
    validate_name(name).map_err(|why| Error::invalid(format!("invalid reference format '{s}': {why}")))?;
    validate_tag(tag).map_err(|why| Error::invalid(format!("invalid reference format '{s}': {why}")))?;
    Ok((name.to_string(), tag.to_string()))
}

fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("the repository name is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("the repository name is longer than {MAX_NAME_LEN} characters"));
    }
    if let Some(c) = name.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-' | '/')) {
        return Err(if c.is_ascii_uppercase() {
            "the repository name must be lowercase".into()
        } else {
            format!("the repository name may not contain '{c}'")
        });
    }
    for component in name.split('/') {
        let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !alnum(component.chars().next()) || !alnum(component.chars().last()) {
            return Err(format!("repository name component '{component}' must start and end with a letter or digit"));
        }
    }
    Ok(())
}

fn validate_tag(tag: &str) -> std::result::Result<(), String> {
    if tag.is_empty() || tag.len() > MAX_TAG_LEN {
        return Err(format!("the tag must be 1 to {MAX_TAG_LEN} characters"));
    }
    if tag.starts_with(['.', '-']) {
        return Err(format!("the tag '{tag}' may not start with '.' or '-'"));
    }
    if let Some(c) = tag.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))) {
        return Err(format!("the tag '{tag}' may not contain '{c}'"));
    }
    Ok(())
}

/// The hex of an id or id prefix (`sha256:` optional), if `s` can be one: at least 4 lowercase hex digits,
/// at most 64.
pub(crate) fn id_prefix(s: &str) -> Option<&str> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    let ok = (4..=64).contains(&hex.len()) && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(hex)
}

/// Whether `s` is a full image id: 64 lowercase hex digits.
pub(crate) fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> (String, String) {
        parse_reference(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn names_and_tags() {
        assert_eq!(ok("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(ok("busybox:1.36"), ("busybox".into(), "1.36".into()));
        assert_eq!(ok("my-org/my_app.v2:Build_7-rc.1"), ("my-org/my_app.v2".into(), "Build_7-rc.1".into()));
        assert_eq!(ok("a"), ("a".into(), "latest".into()));
    }

    #[test]
    fn bad_references_name_the_value() {
        for bad in [
            "",
            "Busybox",
            "busy box",
            "busybox:",
            ":tag",
            "busybox:-x",
            "busybox:.x",
            "-busybox",
            "busybox-",
            "a//b",
            "/a",
            "a/",
            "name@sha256:abcd",
            "localhost:5000/app",
            "x:a/b",
        ] {
            let err = parse_reference(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        let long_tag = format!("x:{}", "t".repeat(129));
        assert!(parse_reference(&long_tag).is_err());
        assert!(parse_reference(&format!("x:{}", "t".repeat(128))).is_ok());
        assert!(parse_reference(&"n".repeat(256)).is_err());
    }

    #[test]
    fn ids() {
        assert_eq!(id_prefix("abcd"), Some("abcd"));
        assert_eq!(id_prefix("sha256:abcd12"), Some("abcd12"));
        assert_eq!(id_prefix("abc"), None);
        assert_eq!(id_prefix("abcg"), None);
        assert_eq!(id_prefix("ABCD"), None);
        assert!(is_full_id(&"a".repeat(64)));
        assert!(!is_full_id(&"a".repeat(63)));
    }
}
