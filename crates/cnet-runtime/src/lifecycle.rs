//! The container lifecycle as the CLI drives it: create (image, sandbox, networks, files),
//! start (a supervisor), stop, kill, remove, and network connect/disconnect. Every failure after
//! the sandbox exists removes it (freeing its leases) and the container directory: no
//! half-made container is ever left.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;

use cnet_image::Image;

use crate::channel::{Frame, Message};
use crate::container::{CONFIG_FILE, Container};
use crate::error::{Context, Error, Result, at};
use crate::names;
use crate::network::Cnetd;
use crate::reaper::{DirLock, RUN_PENDING};
use crate::removal::remove_stopped;
use crate::runtime::Runtime;
use crate::spec::{ContainerConfig, ContainerSpec, NetworkAttachment, NetworkMode, PortSpec};
use crate::state::{State, Status, write_atomic};
use crate::supervisor;

// ------------------------------------------------------------------ create

/// Creates a container (not started): validates `spec`, resolves the image, claims the name,
/// asks cnetd for the sandbox and its networks, and writes the container's files.
pub async fn create(rt: &Runtime, cnetd: &mut Cnetd, spec: ContainerSpec) -> Result<Container> {
    create_with(rt, cnetd, spec, false).await.map(|(c, _lock)| c)
}

/// [`create`] for `run`: the container is marked [`RUN_PENDING`] until its supervisor has started
/// it, and comes with the directory's lock, to hold until then. A `run` killed in between leaves
/// a container that the reaper removes ([`crate::reaper`]), not a stray `Created` one.
pub async fn create_for_run(rt: &Runtime, cnetd: &mut Cnetd, spec: ContainerSpec) -> Result<(Container, DirLock)> {
    create_with(rt, cnetd, spec, true).await
}

#[tracing::instrument(level = "debug", name = "create", skip_all)]
async fn create_with(
    rt: &Runtime,
    cnetd: &mut Cnetd,
    mut spec: ContainerSpec,
    for_run: bool,
) -> Result<(Container, DirLock)> {
    spec.validate()?;
    let image = rt.images()?.resolve(&spec.image)?;
    let mut argv = spec.entrypoint.clone().unwrap_or_else(|| image.config.entrypoint.clone());
    argv.extend(if spec.command.is_empty() { image.config.cmd.clone() } else { spec.command.clone() });
    if argv.is_empty() || argv[0].is_empty() {
        return Err(Error::Invalid("No command specified".into()));
    }
    let id = names::new_id();
    // The directory (locked: somebody works on it) before the name: a name claim whose directory
    // does not exist is then always a dead one (see `Runtime::release_dangling_names`).
    let dir = rt.container_dir(&id);
    // Made under a temporary name and locked before it gets its own, so that no reaper ever sees
    // it unlocked (a lock follows the directory through the rename).
    let tmp = rt.root().join("containers").join(format!("{}{id}", crate::reaper::TMP_PREFIX));
    fs::create_dir(&tmp).context(|| at("creating", &tmp))?;
    let lock = DirLock::shared(&tmp)?;
    fs::rename(&tmp, &dir).context(|| at("renaming into place", &dir))?;
    crate::checkpoint("create:dir");
    let name = match claim_name(rt, cnetd, spec.name.as_deref(), &id).await {
        Ok(name) => name,
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
    };
    if for_run {
        write_file(&dir.join(RUN_PENDING), "")?;
    }
    match create_in(rt, cnetd, &spec, &image, &id, &name, argv).await {
        Ok(c) => {
            cnetd.report("create", &c.config, &[]).await;
            Ok((c, lock))
        }
        Err(e) => {
            undo_create(rt, cnetd, &id, &name).await;
            Err(e)
        }
    }
}

/// Removes what a failed creation made: the sandbox (if cnetd has it), the name (while the
/// directory still holds it), the directory.
async fn undo_create(rt: &Runtime, cnetd: &mut Cnetd, id: &str, name: &str) {
    if let Err(e) = cnetd.remove_sandbox(id).await {
        tracing::warn!(container = id, error = %e, "could not remove the sandbox of a failed creation");
    }
    rt.release_name(name, id);
    let _ = fs::remove_dir_all(rt.container_dir(id));
}

/// Claims the name. A holder that is an abandoned container (a `run` killed half-way, a `--rm`
/// container whose supervisor was killed) is reaped first, so its name can be used again at once.
async fn claim_name(rt: &Runtime, cnetd: &mut Cnetd, name: Option<&str>, id: &str) -> Result<String> {
    if let Some(name) = name {
        if let Err(e) = rt.reserve_name(name, id) {
            match rt.name_holder(name) {
                Some(holder) if crate::reaper::reap_one(rt, cnetd, &holder).await? => rt.reserve_name(name, id)?,
                _ => return Err(e),
            }
        }
        return Ok(name.to_string());
    }
    for retry in 0..10 {
        let name = names::generate_name(retry);
        if rt.reserve_name(&name, id).is_ok() {
            return Ok(name);
        }
    }
    Err(Error::Conflict("could not generate a free container name".into()))
}

async fn create_in(
    rt: &Runtime,
    cnetd: &mut Cnetd,
    spec: &ContainerSpec,
    image: &Image,
    id: &str,
    name: &str,
    argv: Vec<String>,
) -> Result<Container> {
    let dir = rt.container_dir(id);
    for sub in ["upper", "work", "rootfs"] {
        fs::create_dir(dir.join(sub)).context(|| at("creating", &dir.join(sub)))?;
    }
    let mode = NetworkMode::of(&spec.networks);
    let hostname = match (&spec.hostname, mode) {
        (Some(h), _) => h.clone(),
        (None, NetworkMode::Host) => {
            nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
        }
        (None, _) => name.to_string(),
    };
    let sandbox = cnetd.create_sandbox(id, name, &hostname, spec, &dir).await?;
    crate::checkpoint("create:sandbox");
    for (i, net) in spec.networks.iter().enumerate() {
        let ports = if i == 0 { &spec.ports[..] } else { &[] };
        cnetd.connect_network(id, net, ports).await?;
    }
    crate::checkpoint("create:connected");
    let sandbox_now = cnetd.inspect_sandbox(id).await?;
    write_file(&dir.join("hosts"), &sandbox_now.hosts)?;
    write_file(&dir.join("resolv.conf"), &sandbox_now.resolv_conf)?;
    write_file(&dir.join("hostname"), &format!("{hostname}\n"))?;

    let config = ContainerConfig {
        id: id.to_string(),
        name: name.to_string(),
        created: crate::time::now_rfc3339(),
        hostname: hostname.clone(),
        image: spec.image.clone(),
        image_id: image.id.clone(),
        image_rootfs: image.rootfs.clone(),
        path: argv[0].clone(),
        args: argv[1..].to_vec(),
        env: merge_env(&hostname, spec.tty, &image.config.env, &spec.env),
        working_dir: spec.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| {
            if image.config.working_dir.is_empty() { "/".into() } else { image.config.working_dir.clone() }
        }),
        tty: spec.tty,
        open_stdin: spec.interactive,
        auto_remove: spec.auto_remove,
        restart: spec.restart,
        networks: spec.networks.clone(),
        ports: spec.ports.iter().map(PortSpec::from).collect(),
        dns: spec.dns.clone(),
        dns_search: spec.dns_search.clone(),
        dns_options: spec.dns_options.clone(),
        extra_hosts: spec.extra_hosts.clone(),
        netns_path: sandbox.netns_path.clone(),
        host_network: sandbox.host_network,
        labels: spec.labels.clone(),
        binds: spec.binds.clone(),
    };
    State::default().save(&dir)?;
    // Last: a directory with a config.json is a complete container.
    write_atomic(&dir.join(CONFIG_FILE), &serde_json::to_vec_pretty(&config).expect("config serializes"))?;
    crate::container::load(&dir)
}

/// Docker's environment: PATH and HOSTNAME (and TERM with a tty), then the image's, then `-e`;
/// a later value of a variable replaces an earlier one in place.
pub fn merge_env(hostname: &str, tty: bool, image: &[String], user: &[String]) -> Vec<String> {
    let mut base = vec![format!("PATH={}", crate::init::DEFAULT_PATH), format!("HOSTNAME={hostname}")];
    if tty {
        base.push("TERM=xterm".into());
    }
    let mut order: Vec<String> = Vec::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for e in base.iter().chain(image).chain(user) {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string();
        if !values.contains_key(&key) {
            order.push(key.clone());
        }
        values.insert(key, e.clone());
    }
    order.into_iter().map(|k| values.remove(&k).expect("key present")).collect()
}

/// Writes a file in place (it may be bind-mounted into a running container: a rename would
/// leave the container with the old inode).
fn write_file(path: &std::path::Path, content: &str) -> Result<()> {
    let mut f =
        fs::OpenOptions::new().create(true).write(true).truncate(true).open(path).context(|| at("writing", path))?;
    f.write_all(content.as_bytes()).context(|| at("writing", path))
}

// ------------------------------------------------------------------ start, stop, kill

/// Starts the container's supervisor; returns once the program runs (with the connection to
/// the supervisor, which streams output when `attach`), or with why it could not start.
pub fn start(rt: &Runtime, c: &Container, attach: bool) -> Result<UnixStream> {
    let mut stream = supervisor::spawn(rt, c, attach)?;
    match Frame::read_from(&mut stream) {
        Ok(Some(Frame::Message(Message::Started { .. }))) => Ok(stream),
        Ok(Some(Frame::Message(Message::StartFailed { message, exit_code }))) => {
            Err(Error::Start { message, exit_code })
        }
        other => {
            let log = fs::read_to_string(c.dir.join(supervisor::SUPERVISOR_LOG)).unwrap_or_default();
            Err(Error::Start {
                message: format!("the supervisor of {} exited before starting it ({other:?}): {}", c.id(), log.trim()),
                exit_code: 125,
            })
        }
    }
}

/// `cnet stop`: SIGTERM, then SIGKILL after `timeout_secs`; returns once it has exited.
pub fn stop(c: &Container, timeout_secs: u64) -> Result<()> {
    if !c.state.is_running() {
        return Ok(());
    }
    match supervisor::request(&c.dir, Message::Stop { timeout_secs }) {
        Ok(Message::Exited { .. }) => Ok(()),
        Ok(Message::Failed { message }) => Err(Error::Conflict(message)),
        Ok(other) => Err(Error::Conflict(format!("unexpected reply {other:?}"))),
        // The supervisor finished meanwhile.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused | ErrorKind::UnexpectedEof) => {
            Ok(())
        }
        Err(e) => Err(Error::Io { context: format!("stopping {}", c.id()), source: e }),
    }
}

/// `cnet kill -s SIG`.
pub fn kill(c: &Container, signal: i32) -> Result<()> {
    let not_running = || {
        Error::Conflict(format!(
            "Error response from daemon: cannot kill container: {0}: container {0} is not running",
            c.name()
        ))
    };
    if !c.state.is_running() {
        return Err(not_running());
    }
    match supervisor::request(&c.dir, Message::Kill { signal }) {
        Ok(Message::Done) => Ok(()),
        Ok(Message::Failed { message }) => Err(Error::Conflict(message)),
        Ok(other) => Err(Error::Conflict(format!("unexpected reply {other:?}"))),
        Err(_) => Err(not_running()),
    }
}

/// Waits until the container has exited for good; its exit code.
pub fn wait(c: &Container) -> Result<i32> {
    if !c.state.is_running() {
        return Ok(c.state.exit_code);
    }
    match supervisor::request(&c.dir, Message::Wait) {
        Ok(Message::Exited { exit_code }) => Ok(exit_code),
        _ => Ok(c.reload().map(|c| c.state.exit_code).unwrap_or(0)),
    }
}

// ------------------------------------------------------------------ remove

/// `cnet rm [-f]`.
pub async fn remove(rt: &Runtime, cnetd: &mut Cnetd, c: &Container, force: bool) -> Result<()> {
    if c.state.is_running() {
        if !force {
            return Err(Error::Conflict(format!(
                "Error response from daemon: cannot remove container \"/{}\": container is running: \
                 stop the container before removing or force remove",
                c.name()
            )));
        }
        // Waiting for the exit blocks: off the async thread, so removals can run side by side.
        let running = c.clone();
        tokio::task::spawn_blocking(move || stop(&running, 0))
            .await
            .map_err(|e| Error::Io { context: format!("stopping {}", c.id()), source: std::io::Error::other(e) })??;
    }
    remove_stopped(rt, c, cnetd).await
}

// ------------------------------------------------------------------ networks of a container

/// `cnet network connect`: a new interface appears in the running container; `/etc/hosts` follows.
pub async fn connect_network(cnetd: &mut Cnetd, c: &Container, net: &NetworkAttachment) -> Result<()> {
    if c.config.host_network || NetworkMode::of(&c.config.networks) == NetworkMode::None {
        return Err(Error::Invalid(
            "Error response from daemon: container cannot be disconnected from host network or connected to host network"
                .to_string(),
        ));
    }
    cnetd.connect_network(c.id(), net, &[]).await?;
    refresh_files(cnetd, c).await
}

/// `cnet network disconnect`.
pub async fn disconnect_network(cnetd: &mut Cnetd, c: &Container, network: &str) -> Result<()> {
    cnetd.disconnect_network(c.id(), network).await?;
    refresh_files(cnetd, c).await
}

async fn refresh_files(cnetd: &mut Cnetd, c: &Container) -> Result<()> {
    let sandbox = cnetd.inspect_sandbox(c.id()).await?;
    write_file(&c.dir.join("hosts"), &sandbox.hosts)
}

/// Docker's `State.Status` word, for tables.
pub fn status_word(s: &State) -> &'static str {
    s.status.as_str()
}

/// Whether the status is one a `ps` without `-a` shows.
pub fn is_up(s: &State) -> bool {
    matches!(s.status, Status::Running | Status::Restarting)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merges_in_order() {
        let env = merge_env("h", false, &["PATH=/bin".into(), "A=1".into()], &["A=2".into(), "B=3".into()]);
        assert_eq!(env, ["PATH=/bin", "HOSTNAME=h", "A=2", "B=3"]);
    }
}
