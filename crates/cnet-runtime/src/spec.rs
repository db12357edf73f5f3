//! What a container is made of: the options of `cnet run`/`cnet create` checked into typed values
//! (validation before action), and the record kept in `config.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cnet_core::PortBinding;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Docker's `--restart` policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "Name", content = "MaximumRetryCount")]
pub enum RestartPolicy {
    #[default]
    #[serde(rename = "no")]
    No,
    #[serde(rename = "always")]
    Always,
    #[serde(rename = "unless-stopped")]
    UnlessStopped,
    /// At most this many restarts after a non-zero exit; 0: no limit.
    #[serde(rename = "on-failure")]
    OnFailure(u32),
}

impl RestartPolicy {
    /// Docker's `RestartPolicy.Name`.
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure(_) => "on-failure",
        }
    }

    pub fn max_retries(&self) -> u32 {
        match self {
            RestartPolicy::OnFailure(n) => *n,
            _ => 0,
        }
    }

    /// Whether a container that exited with `code` after `restarts` restarts is started again.
    /// A container stopped by the user (`cnet stop`/`kill`) is never restarted.
    pub fn should_restart(&self, code: i32, restarts: u32, manually_stopped: bool) -> bool {
        if manually_stopped {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure(max) => code != 0 && (*max == 0 || restarts < *max),
        }
    }
}

impl FromStr for RestartPolicy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        let policy = match name {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => {
                let max = match count {
                    None => 0,
                    Some(c) => c.parse().map_err(|_| {
                        Error::Invalid(format!("invalid restart policy: maximum retry count must be a number: {c:?}"))
                    })?,
                };
                return Ok(RestartPolicy::OnFailure(max));
            }
            other => {
                return Err(Error::Invalid(format!(
                    "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure' or 'unless-stopped'"
                )));
            }
        };
        if count.is_some() {
            return Err(Error::Invalid(format!(
                "invalid restart policy: maximum retry count can only be used with 'on-failure': {s:?}"
            )));
        }
        Ok(policy)
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::OnFailure(n) if *n > 0 => write!(f, "on-failure:{n}"),
            other => f.write_str(other.name()),
        }
    }
}

/// One `--network` of a container, with the flags that apply to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    /// The network as given (name, id or prefix).
    pub network: String,
    /// `--ip`: a static address (empty: leased).
    #[serde(default)]
    pub ipv4: String,
    /// `--network-alias`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `--mac-address` (empty: cnetd derives one, 02:42 and the IPv4 address, as Docker).
    #[serde(default)]
    pub mac: String,
    /// `ip6=` of `--network`: a static IPv6 address (empty: leased where the network has IPv6).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv6: String,
    /// `driver-opt=K=V` of `--network`, `--driver-opt` of `network connect`: the endpoint's
    /// driver options (`com.docker.network.endpoint.ifname`, ...), checked by cnetd.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// `gw-priority=N` of `--network`, `--gw-priority` of `network connect`: the endpoint with the
    /// highest gives the container's default route.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gw_priority: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The network mode: `host`, `none`, or the container's own namespace attached to bridge-like networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Host,
    None,
    Own,
}

impl NetworkMode {
    pub fn of(networks: &[NetworkAttachment]) -> NetworkMode {
        match networks.first().map(|n| n.network.as_str()) {
            Some("host") => NetworkMode::Host,
            Some("none") => NetworkMode::None,
            _ => NetworkMode::Own,
        }
    }
}

/// A published port, as kept in the record (and shown in `ps`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub protocol: String,
    #[serde(default)]
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

impl From<&PortBinding> for PortSpec {
    fn from(p: &PortBinding) -> Self {
        PortSpec {
            protocol: p.protocol.as_str().to_string(),
            host_ip: p.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            host_port: p.host_port,
            container_port: p.container_port,
        }
    }
}

/// The options of a new container, validated (see [`ContainerSpec::validate`]).
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub image: String,
    /// Command and arguments; empty: the image's.
    pub command: Vec<String>,
    /// `--entrypoint`; None: the image's.
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub auto_remove: bool,
    pub restart: RestartPolicy,
    /// In order; the first gets the published ports. Empty: `bridge`.
    pub networks: Vec<NetworkAttachment>,
    pub ports: Vec<PortBinding>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub extra_hosts: Vec<String>,
    /// `--sysctl`: network namespace sysctls (`net.*`), written by cnetd in the sandbox.
    pub sysctls: BTreeMap<String, String>,
    /// `--label`: metadata (a lab marks its nodes with these).
    pub labels: BTreeMap<String, String>,
    /// `-v HOST:CONTAINER[:ro]`: host files and directories bound into the container.
    pub binds: Vec<Bind>,
}

/// A host path bound into the container (`-v`, a lab node's `binds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// An absolute path on the host that exists.
    pub source: PathBuf,
    /// An absolute path inside the container.
    pub target: PathBuf,
    #[serde(default)]
    pub read_only: bool,
}

impl Bind {
    /// Docker's `-v HOST:CONTAINER[:ro|rw]`, with `HOST` relative to `base` if it is not absolute
    /// (a lab file's binds are relative to the file). Named volumes are not supported.
    pub fn parse(spec: &str, base: &Path) -> Result<Bind> {
        let bad = |why: &str| Error::Invalid(format!("invalid volume specification {spec:?}: {why}"));
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, mode) = match parts.as_slice() {
            [s, t] => (*s, *t, None),
            [s, t, m] => (*s, *t, Some(*m)),
            _ => return Err(bad("expected HOST:CONTAINER[:ro|rw]")),
        };
        let read_only = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => return Err(bad(&format!("unknown mode {other:?} (ro or rw)"))),
        };
        if source.is_empty() || !(source.starts_with('/') || source.starts_with('.') || source.contains('/')) {
            return Err(bad("the host side must be a path (named volumes are not supported)"));
        }
        if !target.starts_with('/') || target == "/" || target.split('/').any(|c| c == "..") {
            return Err(bad("the container side must be an absolute path other than /, without .."));
        }
        let source = base.join(source);
        let source = source.canonicalize().map_err(|e| bad(&format!("{}: {e}", source.display())))?;
        Ok(Bind { source, target: PathBuf::from(target), read_only })
    }

    /// `-v` as Docker prints it in `HostConfig.Binds`.
    pub fn to_spec(&self) -> String {
        let mode = if self.read_only { ":ro" } else { "" };
        format!("{}:{}{mode}", self.source.display(), self.target.display())
    }
}

impl ContainerSpec {
    /// Docker's checks of flag combinations, before anything is made.
    pub fn validate(&mut self) -> Result<()> {
        if self.networks.is_empty() {
            self.networks.push(NetworkAttachment { network: "bridge".into(), ..Default::default() });
        }
        if let Some(name) = &self.name {
            crate::names::validate_name(name)?;
        }
        for n in self.networks.iter().filter(|n| !n.mac.is_empty()) {
            let bad = |why: &str| {
                Error::Invalid(format!("invalid argument {:?} for \"--mac-address\" flag: {} {why}", n.mac, n.mac))
            };
            let mac: cnet_core::MacAddr = n.mac.parse().map_err(|_| bad("is not a valid mac address"))?;
            if !mac.is_unicast() {
                return Err(bad("is a multicast address: a container's MAC must be unicast"));
            }
        }
        for server in &self.dns {
            if server.parse::<std::net::IpAddr>().is_err() {
                return Err(Error::Invalid(format!(
                    "invalid argument {server:?} for \"--dns\" flag: {server} is not an IP address"
                )));
            }
        }
        for host in &self.extra_hosts {
            cnet_core::etc::parse_extra_host(host)
                .map_err(|e| Error::Invalid(format!("invalid argument {host:?} for \"--add-host\" flag: {e}")))?;
        }
        if self.auto_remove && self.restart != RestartPolicy::No {
            return Err(Error::Invalid("Conflicting options: cannot specify both --restart and --rm".into()));
        }
        let special = self.networks.iter().filter(|n| n.network == "host" || n.network == "none").count();
        if special > 0 && self.networks.len() > 1 {
            return Err(Error::Invalid(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes".into(),
            ));
        }
        let mode = NetworkMode::of(&self.networks);
        for n in &self.networks {
            if !n.ipv4.is_empty() {
                if n.network == "bridge" || mode != NetworkMode::Own {
                    return Err(Error::Invalid(
                        "user specified IP address is supported on user defined networks only".into(),
                    ));
                }
                if n.ipv4.parse::<std::net::Ipv4Addr>().is_err() {
                    return Err(Error::Invalid(format!("invalid IPv4 address: {}", n.ipv4)));
                }
            }
            if !n.ipv6.is_empty() {
                if n.network == "bridge" || mode != NetworkMode::Own {
                    return Err(Error::Invalid(
                        "user specified IP address is supported on user defined networks only".into(),
                    ));
                }
                if n.ipv6.parse::<std::net::Ipv6Addr>().is_err() {
                    return Err(Error::Invalid(format!("invalid IPv6 address: {}", n.ipv6)));
                }
            }
            if (!n.driver_opts.is_empty() || n.gw_priority != 0) && mode != NetworkMode::Own {
                return Err(Error::Invalid(format!(
                    "endpoint options (driver-opt, gw-priority) are not supported with --network {}",
                    n.network
                )));
            }
            if !n.aliases.is_empty() && (n.network == "bridge" || mode != NetworkMode::Own) {
                return Err(Error::Invalid(
                    "network-scoped aliases are only supported for user-defined networks".into(),
                ));
            }
        }
        cnet_core::sysctl::check(&self.sysctls, mode == NetworkMode::Host)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        if mode == NetworkMode::Host {
            if self.hostname.is_some() {
                return Err(Error::Invalid("conflicting options: hostname and the network mode".into()));
            }
            // Docker warns and ignores published ports on the host network.
            self.ports.clear();
        }
        if mode == NetworkMode::None && !self.ports.is_empty() {
            return Err(Error::Invalid(
                "conflicting options: port publishing and the container type network mode".into(),
            ));
        }
        Ok(())
    }
}

/// The record of a container (`config.json`): written once at creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    pub created: String,
    pub hostname: String,
    /// The image reference as given, and the image's id and root filesystem (the overlay's lower dir).
    pub image: String,
    pub image_id: String,
    pub image_rootfs: PathBuf,
    /// The program and its arguments (entrypoint + command).
    pub path: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub auto_remove: bool,
    pub restart: RestartPolicy,
    pub networks: Vec<NetworkAttachment>,
    pub ports: Vec<PortSpec>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub extra_hosts: Vec<String>,
    /// The sandbox cnetd made (its id is the container id) and its namespace file.
    pub netns_path: String,
    pub host_network: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<Bind>,
}

impl ContainerConfig {
    /// `host`, `none`, or the first network's name: Docker's `HostConfig.NetworkMode`.
    pub fn network_mode(&self) -> String {
        self.networks.first().map(|n| n.network.clone()).unwrap_or_else(|| "bridge".into())
    }

    /// The command line as `ps` shows it.
    pub fn command_line(&self) -> String {
        std::iter::once(self.path.as_str()).chain(self.args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies() {
        assert_eq!("no".parse::<RestartPolicy>().unwrap(), RestartPolicy::No);
        assert_eq!("on-failure:2".parse::<RestartPolicy>().unwrap(), RestartPolicy::OnFailure(2));
        assert_eq!("unless-stopped".parse::<RestartPolicy>().unwrap(), RestartPolicy::UnlessStopped);
        assert!("always:3".parse::<RestartPolicy>().is_err());
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        let p = RestartPolicy::OnFailure(2);
        assert!(p.should_restart(3, 0, false) && p.should_restart(3, 1, false));
        assert!(!p.should_restart(3, 2, false) && !p.should_restart(0, 0, false));
        assert!(!RestartPolicy::Always.should_restart(0, 5, true));
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"Name":"on-failure","MaximumRetryCount":2}"#);
    }

    #[test]
    fn validation() {
        let mut s = ContainerSpec { image: "busybox".into(), ..Default::default() };
        s.validate().unwrap();
        assert_eq!(s.networks[0].network, "bridge");
        let mut s = ContainerSpec { auto_remove: true, restart: RestartPolicy::Always, ..Default::default() };
        assert!(s.validate().is_err());
        let mut s = ContainerSpec {
            networks: vec![NetworkAttachment {
                network: "bridge".into(),
                ipv4: "172.17.0.9".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(s.validate().is_err());
    }
}
