//! Image references as Docker spells and normalizes them (`busybox` is `docker.io/library/busybox:latest`,
//! `localhost:5000/app:1`, `app@sha256:…`), and image ids.

use std::fmt;

use super::error::{Error, Result};

/// The tag of a reference that names none.
pub const DEFAULT_TAG: &str = "latest";
/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's registry API answers on.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The namespace of Docker Hub's official images (`busybox` is `library/busybox`).
const OFFICIAL: &str = "library/";

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalized image reference: `[DOMAIN/]PATH[:TAG][@DIGEST]`.
///
/// Docker's rules: the first `/`-separated component is a registry domain when it holds a `.` or a
/// `:`, or is `localhost`; otherwise the domain is `docker.io`, where a one-component path is an
/// official image under `library/`. `index.docker.io` is `docker.io`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `ghcr.io`.
    pub domain: String,
    /// The repository in the registry: `library/busybox`, `test`.
    pub path: String,
    /// The tag as written; see [`Reference::tag_or_default`].
    pub tag: Option<String>,
    /// `sha256:<64 hex>`, as written.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalizes `s`; errors say `invalid reference format 'S': why`.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: String| Error::invalid(format!("invalid reference format '{s}': {why}"));
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => (rest, Some(validate_digest(digest).map_err(bad)?)),
            None => (s, None),
        };
        // The tag is what follows the last ':' unless a '/' follows it (`host:5000/name` has no tag).
        let (name, tag) = match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(bad)?;
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad(format!("the repository name is longer than {MAX_NAME_LEN} characters")));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                validate_domain(first).map_err(bad)?;
                (first, remainder.to_string())
            }
            _ => (DOCKER_HUB, name.to_string()),
        };
        let domain = if domain == "index.docker.io" { DOCKER_HUB } else { domain };
        let path = if domain == DOCKER_HUB && !path.contains('/') { format!("{OFFICIAL}{path}") } else { path };
        validate_path(&path).map_err(bad)?;
        Ok(Reference { domain: domain.to_string(), path, tag: tag.map(str::to_string), digest })
    }

    /// The name as Docker shows it: `busybox`, `user/app`, `localhost:5000/test`.
    pub fn name(&self) -> String {
        if self.domain == DOCKER_HUB {
            match self.path.strip_prefix(OFFICIAL) {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.path.clone(),
            }
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The fully qualified name: `docker.io/library/busybox`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag, `latest` when none is written (also for a digest reference: that is the tag
    /// `docker pull NAME@DIGEST` would not set, see [`Reference::tag`]).
    pub fn tag_or_default(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }

    /// The tag the image gets in the store: the one written, else `latest` unless a digest is written.
    pub fn store_tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG),
        }
    }

    /// The host (and port) of the registry's API: `registry-1.docker.io` for Docker Hub.
    pub fn registry_host(&self) -> &str {
        if self.domain == DOCKER_HUB { DOCKER_HUB_API } else { &self.domain }
    }
}

impl fmt::Display for Reference {
    /// Docker's familiar form: `busybox:latest`, `localhost:5000/test@sha256:…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = self.store_tag() {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Splits and validates `name[:tag]` (tag defaults to `latest`), normalized as Docker shows names:
/// `docker.io/library/busybox` is `busybox`, `localhost:5000/app` stays. A reference with a digest
/// is refused here: it names no tag.
pub fn parse_reference(s: &str) -> Result<(String, String)> {
    let r = Reference::parse(s)?;
    if r.digest.is_some() {
        return Err(Error::invalid(format!("invalid reference format '{s}': a digest reference names no tag")));
    }
    let tag = r.tag_or_default().to_string();
    Ok((r.name(), tag))
}

/// A registry host: dot-separated labels of letters, digits and inner hyphens, or `[IPv6]`, then an
/// optional `:port`.
fn validate_domain(domain: &str) -> std::result::Result<(), String> {
    let bad = || format!("'{domain}' is not a valid registry host");
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or_else(bad)?;
        ip.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (None, after.strip_prefix(':').map(Some).unwrap_or((!after.is_empty()).then_some(after)))
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(bad());
        }
    }
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.parse::<u16>().is_err())
    {
        return Err(bad());
    }
    Ok(())
}

/// A repository path: one or more `/`-separated components of `[a-z0-9._-]`, each starting and ending
/// with a letter or digit.
fn validate_path(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("the repository name is empty".into());
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

/// `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
fn validate_digest(digest: &str) -> std::result::Result<String, String> {
    let hex_ok = |h: &str, n: usize| h.len() == n && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match digest.split_once(':') {
        Some(("sha256", hex)) if hex_ok(hex, 64) => Ok(digest.to_string()),
        Some(("sha512", hex)) if hex_ok(hex, 128) => Ok(digest.to_string()),
        _ => Err(format!("'{digest}' is not a valid digest (sha256:<64 hex digits>)")),
    }
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

    fn full(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn names_and_tags() {
        assert_eq!(ok("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(ok("busybox:1.36"), ("busybox".into(), "1.36".into()));
        assert_eq!(ok("my-org/my_app.v2:Build_7-rc.1"), ("my-org/my_app.v2".into(), "Build_7-rc.1".into()));
        assert_eq!(ok("a"), ("a".into(), "latest".into()));
        assert_eq!(ok("docker.io/library/busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(ok("index.docker.io/user/app:2"), ("user/app".into(), "2".into()));
        assert_eq!(ok("localhost:5000/app"), ("localhost:5000/app".into(), "latest".into()));
        assert_eq!(ok("127.0.0.1:5000/a/b:1"), ("127.0.0.1:5000/a/b".into(), "1".into()));
    }

    #[test]
    fn docker_normalization() {
        let r = full("busybox");
        assert_eq!((r.domain.as_str(), r.path.as_str(), r.tag.as_deref()), ("docker.io", "library/busybox", None));
        assert_eq!(r.full_name(), "docker.io/library/busybox");
        assert_eq!(r.registry_host(), "registry-1.docker.io");
        assert_eq!(r.to_string(), "busybox:latest");

        let r = full("user/img");
        assert_eq!((r.domain.as_str(), r.path.as_str(), r.name().as_str()), ("docker.io", "user/img", "user/img"));

        let r = full("localhost:5000/test:1");
        assert_eq!((r.domain.as_str(), r.path.as_str(), r.tag.as_deref()), ("localhost:5000", "test", Some("1")));
        assert_eq!(r.registry_host(), "localhost:5000");
        assert_eq!(r.name(), "localhost:5000/test");

        let r = full("registry.example.com/a/b/c");
        assert_eq!((r.domain.as_str(), r.path.as_str()), ("registry.example.com", "a/b/c"));

        let r = full("localhost/app");
        assert_eq!((r.domain.as_str(), r.path.as_str()), ("localhost", "app"));

        let r = full("[::1]:5000/app");
        assert_eq!((r.domain.as_str(), r.name().as_str()), ("[::1]:5000", "[::1]:5000/app"));

        let digest = format!("sha256:{}", "ab".repeat(32));
        let r = full(&format!("img@{digest}"));
        assert_eq!((r.tag.as_deref(), r.digest.as_deref(), r.store_tag()), (None, Some(digest.as_str()), None));
        assert_eq!(r.to_string(), format!("img@{digest}"));
        assert_eq!(r.path, "library/img");
        let r = full(&format!("localhost:5000/img:1@{digest}"));
        assert_eq!((r.tag.as_deref(), r.store_tag()), (Some("1"), Some("1")));
        assert!(parse_reference(&format!("img@{digest}")).is_err(), "a digest names no tag");
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
            "name@md5:abcd",
            "x:a/b",
            "localhost:99999/app",
            "local_host:5000/app",
            "localhost:5000/App",
            "localhost:5000/",
        ] {
            let err = Reference::parse(bad).expect_err(bad).to_string();
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
