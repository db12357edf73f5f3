//! Registry credentials from Docker's client config (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`): `auths.<registry>.auth` (base64 `user:password`) or
//! `auths.<registry>.username` and `.password`. Keys are matched by host as Docker does: a scheme and
//! a path are ignored, and Docker Hub is `https://index.docker.io/v1/` (also `docker.io`,
//! `index.docker.io`, `registry-1.docker.io`). Credential helpers (`credsStore`, `credHelpers`) are
//! not run; such a registry is pulled anonymously, with a warning in the log.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// The directory of Docker's client config: `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".docker")),
    }
}

/// The credentials for registry `domain` (as in a reference: `docker.io`, `localhost:5000`) in
/// `dir/config.json`. A missing file is no credentials; an unreadable or malformed one is an error
/// naming it.
pub fn credentials_in(dir: &Path, domain: &str) -> Result<Option<Credentials>> {
    let path = dir.join("config.json");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Config(format!("reading {}: {e}", path.display()))),
    };
    lookup(&bytes, domain).map_err(|why| Error::Config(format!("{}: {why}", path.display())))
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The credentials for `domain` in the text of a config.json.
pub fn lookup(config_json: &[u8], domain: &str) -> std::result::Result<Option<Credentials>, String> {
    let config: ConfigFile = serde_json::from_slice(config_json).map_err(|e| format!("not a valid config: {e}"))?;
    let wanted = canonical(domain);
    let Some((key, entry)) = config.auths.iter().find(|(k, _)| canonical(&host_of(k)) == wanted) else {
        if config.cred_helpers.keys().any(|k| canonical(&host_of(k)) == wanted) || config.creds_store.is_some() {
            tracing::warn!(registry = domain, "credential helpers are not supported; pulling anonymously");
        }
        return Ok(None);
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("auths.\"{key}\".auth is not valid base64: {e}"))?;
        let text = String::from_utf8(decoded).map_err(|_| format!("auths.\"{key}\".auth is not UTF-8"))?;
        let (username, password) =
            text.split_once(':').ok_or_else(|| format!("auths.\"{key}\".auth is not base64 of user:password"))?;
        return Ok(Some(Credentials { username: username.to_string(), password: password.to_string() }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials { username: u.clone(), password: p.clone() })),
        _ => Ok(None),
    }
}

/// A config key's host: `https://index.docker.io/v1/` → `index.docker.io`.
fn host_of(key: &str) -> String {
    let rest = key.split_once("://").map_or(key, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

/// Docker Hub's names are one registry.
fn canonical(host: &str) -> String {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn creds(u: &str, p: &str) -> Option<Credentials> {
        Some(Credentials { username: u.into(), password: p.into() })
    }

    #[test]
    fn docker_hub_and_private_registries() {
        let config = format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "localhost:5000": {{"auth": "{}"}},
                "http://reg.example:8080/v2/": {{"username": "bob", "password": "pw"}}
            }}}}"#,
            b64("hubuser:hub:pass"),
            b64("alice:secret")
        );
        let get = |d: &str| lookup(config.as_bytes(), d).unwrap();
        assert_eq!(get("docker.io"), creds("hubuser", "hub:pass"), "only the first ':' splits");
        assert_eq!(get("localhost:5000"), creds("alice", "secret"));
        assert_eq!(get("reg.example:8080"), creds("bob", "pw"));
        assert_eq!(get("localhost:5001"), None);
        assert_eq!(get("reg.example"), None, "the port is part of the host");
    }

    #[test]
    fn docker_hub_spellings() {
        for key in ["docker.io", "index.docker.io", "https://registry-1.docker.io"] {
            let config = format!(r#"{{"auths": {{"{key}": {{"auth": "{}"}}}}}}"#, b64("u:p"));
            assert_eq!(lookup(config.as_bytes(), "docker.io").unwrap(), creds("u", "p"), "{key}");
        }
    }

    #[test]
    fn empty_and_bad_configs() {
        assert_eq!(lookup(b"{}", "docker.io").unwrap(), None);
        assert_eq!(lookup(br#"{"auths": {"localhost:5000": {}}}"#, "localhost:5000").unwrap(), None);
        assert_eq!(lookup(br#"{"credsStore": "desktop"}"#, "docker.io").unwrap(), None);
        let err = lookup(br#"{"auths": {"localhost:5000": {"auth": "!!"}}}"#, "localhost:5000").unwrap_err();
        assert!(err.contains("localhost:5000") && err.contains("base64"), "{err}");
        let err = lookup(format!(r#"{{"auths": {{"h:1": {{"auth": "{}"}}}}}}"#, b64("nocolon")).as_bytes(), "h:1")
            .unwrap_err();
        assert!(err.contains("user:password"), "{err}");
        assert!(lookup(b"not json", "docker.io").is_err());
    }

    #[test]
    fn config_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(credentials_in(dir.path(), "docker.io").unwrap(), None, "no file, no credentials");
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        let err = credentials_in(dir.path(), "docker.io").unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        let shown = format!("{:?}", Credentials { username: "u".into(), password: "hunter2".into() });
        assert!(!shown.contains("hunter2"));
    }
}
