//! End-to-end tests of the container features of the `cnet` CLI that README.md documents and
//! `containers.rs` does not run: `wait` and `kill -s SIG`; `image import` of a plain root
//! filesystem tarball and of a hand-made `docker save` archive (its Cmd, Env, WorkingDir and
//! ExposedPorts taking effect, `run -P`, `images`, `rmi`); `exec -e/-w/-i/-t`; `run -e/-w/--hostname/
//! --add-host/--network-alias/--dns`; `logs` and `logs -f`; the restart policies `always`,
//! `unless-stopped` and `no`; detached containers surviving a `kill -9` of cnetd; and the Quick
//! start's `rm -f $(cnet ps -aq)`. Each test runs a cnetd of its own in its own namespaces (see the
//! kit in `tests/src`). They need root and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test container_cli`.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::Duration;

use cnet_tests::{Bg, SIGKILL, TestHost, Upstream, bin, describe_output, fetch, spawn_tied, wait_for};
use serde_json::{Value, json};

/// Deadline for a state a container reaches by itself (started, exited, restarted…).
const SETTLE: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------ helpers

fn host() -> TestHost {
    TestHost::with_cnetd()
}

/// The CLI of `host` as the start of a shell command run in the host's namespace (for pipes,
/// `$(…)` and `script`).
fn cnet_sh(host: &TestHost) -> String {
    format!("'{}' -H '{}' --root '{}'", bin("cnet").display(), host.socket().display(), host.runtime_dir().display())
}

/// A field of `cnet inspect C` that must be a string.
fn inspect_str(host: &TestHost, container: &str, pointer: &str) -> String {
    let json = host.inspect(container);
    match json.pointer(pointer).and_then(Value::as_str) {
        Some(s) => s.to_string(),
        None => panic!("inspect {container}: {pointer} is not a string: {json:#}"),
    }
}

/// A field of `cnet inspect C` that must be an integer.
fn inspect_int(host: &TestHost, container: &str, pointer: &str) -> i64 {
    let json = host.inspect(container);
    match json.pointer(pointer).and_then(Value::as_i64) {
        Some(n) => n,
        None => panic!("inspect {container}: {pointer} is not an integer: {json:#}"),
    }
}

fn status_of(host: &TestHost, container: &str) -> String {
    inspect_str(host, container, "/State/Status")
}

fn restart_count(host: &TestHost, container: &str) -> i64 {
    inspect_int(host, container, "/RestartCount")
}

/// Whether a supervisor of container `id` (`cnet-supervise ... ID`) is running on the machine: once it
/// is gone, nothing can restart the container any more. A /proc that cannot be listed, or a
/// process's cmdline that cannot be read for another reason than the process having ended, fails
/// the test.
fn supervisor_running(id: &str) -> bool {
    let entries = std::fs::read_dir("/proc").unwrap_or_else(|e| panic!("cannot list /proc: {e}"));
    entries.map(|e| e.unwrap_or_else(|e| panic!("cannot list /proc: {e}"))).any(|e| {
        if !e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let path = e.path().join("cmdline");
        let cmdline = match std::fs::read(&path) {
            Ok(cmdline) => cmdline,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return false,
            Err(err) if err.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32) => return false,
            Err(err) => panic!("cannot read {}: {err}", path.display()),
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let program = args.first().and_then(|a| a.rsplit(|b| *b == b'/').next());
        program == Some(b"cnet-supervise".as_slice()) && args.contains(&id.as_bytes())
    })
}

/// `cnet logs C`'s stdout (the command must succeed).
fn logs(host: &TestHost, container: &str) -> String {
    host.cnet_ok(&["logs", container])
}

/// A `cnet` CLI run in the background in the host's namespace, its stdout and stderr going to files
/// in the host's directory; killed (with its process group) when dropped.
struct BgCli {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    what: String,
}

impl BgCli {
    fn start(host: &TestHost, name: &str, args: &[&str]) -> BgCli {
        let out = host.dir().join(format!("{name}.stdout"));
        let err = host.dir().join(format!("{name}.stderr"));
        let mut cmd = host.cnet_command(120, args);
        cmd.stdout(File::create(&out).unwrap_or_else(|e| panic!("cannot create {}: {e}", out.display())))
            .stderr(File::create(&err).unwrap_or_else(|e| panic!("cannot create {}: {e}", err.display())))
            .process_group(0);
        let what = format!("cnet {}", args.join(" "));
        let child = spawn_tied(cmd).unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        BgCli { child, out, err, what }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    fn stdout(&self) -> String {
        BgCli::read(&self.out)
    }

    fn stderr(&self) -> String {
        BgCli::read(&self.err)
    }

    /// Its exit status if it has exited; a failing `waitpid` fails the test.
    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap_or_else(|e| panic!("waiting for {}: {e}", self.what))
    }

    /// Waits (up to [`SETTLE`]) until it exits; its status.
    fn wait_exit(&mut self) -> ExitStatus {
        let mut status = None;
        wait_for(&format!("`{}` to exit", self.what), SETTLE, || {
            status = self.try_wait();
            status.is_some()
        });
        status.expect("set when the wait ended")
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.try_wait() {
            panic!("`{}` exited early with {status}: {}{}", self.what, self.stdout(), self.stderr());
        }
    }
}

impl Drop for BgCli {
    fn drop(&mut self) {
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(-(self.child.id() as i32)), nix::sys::signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `cnet logs C` shows `needle`.
fn wait_for_log(host: &TestHost, container: &str, needle: &str) {
    wait_for(&format!("{needle:?} in the logs of {container}"), SETTLE, || logs(host, container).contains(needle));
}

/// `cnet run --rm ARGS…`'s stdout (it must succeed).
fn run_rm(host: &TestHost, args: &[&str]) -> String {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    host.cnet_ok(&all)
}

/// Makes `DIR/rootfs/` from the host's static busybox (`bin/busybox` plus a symlink per applet,
/// and `etc/marker` holding `marker`) and tars it as `DIR/rootfs.tar`; the tarball's path.
fn busybox_rootfs_tarball(host: &TestHost, marker: &str) -> PathBuf {
    let dir = host.dir();
    host.ns().run_ok(&format!(
        "set -e; r='{0}/rootfs'; mkdir -p \"$r/bin\" \"$r/etc\"; cp /bin/busybox \"$r/bin/busybox\"; \
         for a in $(/bin/busybox --list); do [ \"$a\" = busybox ] || ln -s busybox \"$r/bin/$a\"; done; \
         echo '{marker}' > \"$r/etc/marker\"; tar -C \"$r\" -cf '{0}/rootfs.tar' .",
        dir.display()
    ));
    dir.join("rootfs.tar")
}

/// A `docker save` archive made by hand at `DIR/saved.tar`: `manifest.json` tagging it `tag`, the
/// config as `<sha256 of it>.json`, and two layers: the busybox root filesystem of
/// [`busybox_rootfs_tarball`] and one adding `/srv/www/layer2.txt`. Returns the archive and the
/// config's digest (the image id Docker would give it).
fn docker_save_archive(host: &TestHost, tag: &str, config: &Value) -> (PathBuf, String) {
    let rootfs = busybox_rootfs_tarball(host, "saved-image");
    let dir = host.dir().join("save");
    std::fs::create_dir_all(dir.join("base")).expect("create save/base");
    std::fs::create_dir_all(dir.join("top")).expect("create save/top");
    std::fs::copy(&rootfs, dir.join("base/layer.tar")).expect("copy the base layer");
    let config_text = serde_json::to_vec(config).expect("config serializes");
    std::fs::write(dir.join("config.tmp"), &config_text).expect("write the config");
    let digest = host.ns().run_ok(&format!(
        "set -e; d='{0}'; mkdir -p \"$d/l2/srv/www\"; echo from-layer-2 > \"$d/l2/srv/www/layer2.txt\"; \
         tar -C \"$d/l2\" -cf \"$d/top/layer.tar\" srv; \
         sha256sum \"$d/config.tmp\" | cut -d' ' -f1",
        dir.display()
    ));
    let digest = digest.trim().to_string();
    assert!(digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()), "sha256sum printed {digest:?}");
    std::fs::rename(dir.join("config.tmp"), dir.join(format!("{digest}.json"))).expect("name the config");
    let manifest = json!([{
        "Config": format!("{digest}.json"),
        "RepoTags": [tag],
        "Layers": ["base/layer.tar", "top/layer.tar"],
    }]);
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec(&manifest).expect("manifest serializes"))
        .expect("write manifest.json");
    let archive = host.dir().join("saved.tar");
    host.ns().run_ok(&format!(
        "tar -C '{}' -cf '{}' manifest.json {digest}.json base top",
        dir.display(),
        archive.display()
    ));
    (archive, digest)
}

/// `cnet images`' rows as (REPOSITORY, TAG, IMAGE ID); the header must be Docker's.
fn images(host: &TestHost) -> Vec<(String, String, String)> {
    let out = host.cnet_ok(&["images"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_else(|| panic!("`cnet images` printed nothing"));
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "`cnet images` header lacks {col}:\n{out}");
    }
    lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(f.len() >= 3, "bad `cnet images` row {l:?}:\n{out}");
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// The host port `cnet port C` shows for `container_port` (e.g. `8000/tcp`), published on 0.0.0.0.
fn host_port(host: &TestHost, container: &str, container_port: &str) -> u16 {
    let out = host.cnet_ok(&["port", container]);
    let prefix = format!("{container_port} -> 0.0.0.0:");
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("`cnet port {container}` does not publish {container_port}:\n{out}"));
    let port: u16 =
        line[prefix.len()..].trim().parse().unwrap_or_else(|e| panic!("bad host port in {line:?}: {e}\n{out}"));
    assert_ne!(port, 0, "`cnet port {container}` shows an unresolved port:\n{out}");
    port
}

/// Waits until `url` fetched from the host's namespace returns exactly `body`.
fn wait_for_body(host: &TestHost, url: &str, body: &str) {
    wait_for(&format!("{url} to serve {body:?} to the host"), SETTLE, || {
        let out = host.ns().run(&fetch(url, 2));
        out.status.success() && String::from_utf8_lossy(&out.stdout) == body
    });
}

// ------------------------------------------------------------------------------------ wait, kill

/// `cnet -D` prints each phase of a run with the time it took, so a slow run shows where.
#[test]
fn debug_output_shows_the_phases_of_a_run() {
    let host = host();
    host.cnet_ok(&["network", "create", "lab"]);
    let out = host.cnet(&["-D", "run", "--rm", "--network", "lab", "busybox", "true"]);
    assert!(out.status.success(), "{}", describe_output("cnet -D run", &out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for phase in ["image: ", "create:sandbox: ", "create:connect: ", "create: ", "start: ", "container: "] {
        let line = stderr.lines().find(|l| l.contains(phase) && l.contains("close time.busy="));
        assert!(line.is_some(), "no closed span {phase:?} in:\n{stderr}");
    }
    assert!(!stderr.contains('\x1b'), "colours on a pipe:\n{stderr}");
    // Without -D, nothing of it.
    let out = host.cnet(&["run", "--rm", "--network", "lab", "busybox", "true"]);
    assert!(out.status.success() && out.stderr.is_empty(), "{}", describe_output("cnet run", &out));
}

#[test]
fn wait_blocks_until_the_container_exits_and_prints_its_code() {
    let host = host();
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "waiter",
        "busybox",
        "sh",
        "-c",
        "echo ready; while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 42",
    ]);
    wait_for_log(&host, "waiter", "ready");
    let mut wait = BgCli::start(&host, "wait", &["wait", "waiter"]);
    // The container cannot exit before /tmp/go exists, so `wait` must still be blocked, silent.
    assert_eq!(status_of(&host, "waiter"), "running");
    wait.assert_running();
    assert_eq!(wait.stdout(), "", "wait printed before the container exited");

    host.cnet_ok(&["exec", "waiter", "touch", "/tmp/go"]);
    let status = wait.wait_exit();
    assert!(status.success(), "cnet wait: {status}: {}", wait.stderr());
    assert_eq!(wait.stdout(), "42\n");
    assert_eq!(inspect_int(&host, "waiter", "/State/ExitCode"), 42);
    assert_eq!(status_of(&host, "waiter"), "exited");

    // On a container that has already exited it answers at once, and it takes several containers.
    host.cnet_ok(&["run", "-d", "--name", "quick", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(host.cnet_ok(&["wait", "waiter", "quick"]), "42\n3\n");
    let err = host.cnet_err(&["wait", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
    host.cnet_ok(&["rm", "waiter", "quick"]);
    host.assert_nothing_left("bridge");
}

#[test]
fn kill_sends_the_signal_asked_for() {
    let host = host();
    // sh as the container's pid 1 gets only the signals it has handlers for: the traps say which.
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "trapper",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got USR1' USR1; trap 'echo got TERM; exit 3' TERM; echo ready; \
         while :; do sleep 1000 & wait $!; done",
    ]);
    wait_for_log(&host, "trapper", "ready");

    assert_eq!(host.cnet_ok(&["kill", "-s", "USR1", "trapper"]), "trapper\n");
    wait_for_log(&host, "trapper", "got USR1");
    assert_eq!(status_of(&host, "trapper"), "running", "USR1 is trapped: the container goes on");
    assert!(!logs(&host, "trapper").contains("got TERM"));

    host.cnet_ok(&["kill", "--signal", "SIGTERM", "trapper"]);
    assert_eq!(host.cnet_ok(&["wait", "trapper"]), "3\n");
    assert_eq!(logs(&host, "trapper"), "ready\ngot USR1\ngot TERM\n");
    assert_eq!(inspect_int(&host, "trapper", "/State/ExitCode"), 3);

    // The default signal is KILL, which no trap stops: 128 + 9.
    host.cnet_ok(&["run", "-d", "--name", "victim", "busybox", "sh", "-c", "trap '' TERM INT; sleep 1000"]);
    assert_eq!(status_of(&host, "victim"), "running");
    host.cnet_ok(&["kill", "victim"]);
    assert_eq!(host.cnet_ok(&["wait", "victim"]), "137\n");
    let state = host.inspect("victim")["State"].clone();
    assert_eq!(state["Status"], "exited", "{state:#}");
    assert_eq!(state["ExitCode"], 137, "{state:#}");

    // Not running, or not a signal: refused cleanly.
    let err = host.cnet_err(&["kill", "victim"]);
    assert!(err.contains("is not running"), "{err}");
    host.cnet_ok(&["start", "victim"]);
    let err = host.cnet_err(&["kill", "-s", "NOPE", "victim"]);
    assert!(err.contains("NOPE"), "{err}");
    assert_eq!(status_of(&host, "victim"), "running");
    host.cnet_ok(&["rm", "-f", "trapper", "victim"]);
    host.assert_nothing_left("bridge");
}

// ------------------------------------------------------------------------------------ images

#[test]
fn import_a_root_filesystem_tarball_and_run_it() {
    let host = host();
    let tarball = busybox_rootfs_tarball(&host, "plain-rootfs");
    let tarball = tarball.to_str().expect("utf-8 path");
    let out = host.cnet_ok(&["image", "import", tarball, "plainimg:1.0"]);
    let id = out.trim().strip_prefix("sha256:").unwrap_or_else(|| panic!("import printed {out:?}")).to_string();
    assert_eq!(id.len(), 64, "{out}");
    assert!(images(&host).contains(&("plainimg".into(), "1.0".into(), id[..12].to_string())), "{:?}", images(&host));

    // Its files are the container's; it runs with cnet's defaults (PATH, working directory /).
    let out = run_rm(&host, &["plainimg:1.0", "sh", "-c", "cat /etc/marker; pwd; echo $PATH; ls /bin/busybox"]);
    assert_eq!(out, "plain-rootfs\n/\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/bin/busybox\n");
    // Not the built-in busybox image: that one has no /etc/marker.
    assert_ne!(host.cnet(&["run", "--rm", "busybox", "cat", "/etc/marker"]).status.code(), Some(0));

    // A root filesystem has no Cmd: a command is required.
    let out = host.cnet(&["run", "--rm", "plainimg:1.0"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("No command specified"), "{out:?}");
    // The same tarball through the shorthand, under a second name, is listed too.
    host.cnet_ok(&["import", tarball, "other"]);
    let listed = images(&host);
    assert!(listed.iter().any(|(r, t, _)| r == "other" && t == "latest"), "{listed:?}");
    host.cnet_ok(&["rmi", "other"]);
    assert!(!images(&host).iter().any(|(r, _, _)| r == "other"));
    assert_eq!(host.container_dirs(), Vec::<String>::new());
    assert_eq!(host.sandbox_ids(), Vec::<String>::new());
}

#[test]
fn import_a_docker_save_archive_run_it_publish_its_ports_and_remove_it() {
    let host = host();
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T12:00:00Z",
        "config": {
            "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello-from-config"],
            "Cmd": ["sh", "-c", "echo \"$GREETING in $(pwd)\" > index.html && exec httpd -f -p 8000 -h ."],
            "WorkingDir": "/srv/www",
            "ExposedPorts": {"8000/tcp": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    let (archive, digest) = docker_save_archive(&host, "webimg:2.0", &config);
    let out = host.cnet_ok(&["image", "import", archive.to_str().expect("utf-8 path"), "webimg:2.0"]);
    assert_eq!(out.trim(), format!("sha256:{digest}"), "the image id is the config's digest");
    assert!(images(&host).contains(&("webimg".into(), "2.0".into(), digest[..12].to_string())), "{:?}", images(&host));

    // Env, WorkingDir and both layers are there; -e and -w override the image's.
    let out = run_rm(&host, &["webimg:2.0", "sh", "-c", "echo $GREETING; pwd; cat layer2.txt /etc/marker"]);
    assert_eq!(out, "hello-from-config\n/srv/www\nfrom-layer-2\nsaved-image\n");
    let out =
        run_rm(&host, &["-e", "GREETING=overridden", "-w", "/tmp", "webimg:2.0", "sh", "-c", "echo $GREETING; pwd"]);
    assert_eq!(out, "overridden\n/tmp\n");

    // The image's Cmd runs; -P publishes its exposed port on a port cnetd picks, served to the host.
    host.cnet_ok(&["create", "webnet"]);
    host.cnet_ok(&["run", "-d", "--name", "web", "--network", "webnet", "-P", "webimg:2.0"]);
    let cmd = host.inspect("web")["Config"]["Cmd"].clone();
    assert_eq!(cmd, config["config"]["Cmd"], "the container runs the image's Cmd");
    let port = host_port(&host, "web", "8000/tcp");
    wait_for_body(&host, &format!("http://127.0.0.1:{port}/"), "hello-from-config in /srv/www\n");
    wait_for_body(&host, &format!("http://127.0.0.1:{port}/layer2.txt"), "from-layer-2\n");
    let ps = host.cnet_ok(&["ps"]);
    assert!(ps.contains(&format!("0.0.0.0:{port}->8000/tcp")), "{ps}");

    // rmi refuses while a container (even a stopped one) uses the image, and removes it after.
    let err = host.cnet_err(&["rmi", "webimg:2.0"]);
    assert!(err.contains("conflict") && err.contains("is using its referenced image"), "{err}");
    host.cnet_ok(&["stop", "-t", "1", "web"]);
    let err = host.cnet_err(&["rmi", "webimg:2.0"]);
    assert!(err.contains("conflict"), "{err}");
    assert!(images(&host).iter().any(|(r, _, _)| r == "webimg"));
    host.cnet_ok(&["rm", "web"]);
    let out = host.cnet_ok(&["rmi", "webimg:2.0"]);
    assert!(out.contains("Untagged: webimg:2.0") && out.contains(&format!("Deleted: sha256:{digest}")), "{out}");
    assert!(!images(&host).iter().any(|(r, _, _)| r == "webimg"), "{:?}", images(&host));

    // Running it now fails cleanly and leaves nothing.
    let out = host.cnet(&["run", "--rm", "--network", "webnet", "webimg:2.0"]);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unable to find image 'webimg:2.0' locally"), "{out:?}");
    let err = host.cnet_err(&["rmi", "webimg:2.0"]);
    assert!(err.contains("No such image"), "{err}");
    host.assert_nothing_left("webnet");
}

// ------------------------------------------------------------------------------------ exec

#[test]
fn exec_takes_env_workdir_stdin_and_a_tty() {
    let host = host();
    host.cnet_ok(&["run", "-d", "--name", "box", "-e", "FROM_RUN=r", "-w", "/srv", "busybox", "sleep", "1000"]);
    let cnet = cnet_sh(&host);

    // -e adds to (and overrides) the container's environment; -w sets the directory, which is
    // otherwise the container's.
    let out = host.cnet_ok(&["exec", "box", "sh", "-c", "echo $FROM_RUN-$EXTRA; pwd"]);
    assert_eq!(out, "r-\n/srv\n");
    let out = host.cnet_ok(&[
        "exec",
        "-e",
        "EXTRA=x",
        "--env",
        "FROM_RUN=e",
        "-w",
        "/tmp",
        "box",
        "sh",
        "-c",
        "echo $FROM_RUN-$EXTRA; pwd",
    ]);
    assert_eq!(out, "e-x\n/tmp\n");

    // -i: piped stdin reaches the program, up to its end; without -i the program gets none.
    let out = host.ns().run_ok(&format!("printf 'one\\ntwo\\n' | {cnet} exec -i box cat"));
    assert_eq!(out, "one\ntwo\n");
    let out = host.ns().run_ok(&format!("printf 'one\\ntwo\\n' | {cnet} exec --interactive box wc -l"));
    assert_eq!(out.trim(), "2");
    let out = host.ns().run_ok(&format!("printf 'one\\ntwo\\n' | {cnet} exec box cat"));
    assert_eq!(out, "", "stdin reached a program without -i");

    // -t: the program's stdin and stdout are a terminal (the CLI gets one from `script`), TERM is
    // set, and the exit code passes through; without -t they are not.
    let script = |inner: &str| format!("script -qec \"{cnet} exec {inner}\" /dev/null");
    let out = host.ns().run_ok(&script(
        "-t box sh -c 'if test -t 0 && test -t 1; then echo tty-yes; else echo tty-no; fi; echo term=\\$TERM'",
    ));
    assert!(out.contains("tty-yes") && out.contains("term=xterm"), "{out:?}");
    let out = host.ns().run_ok(&script("-i -t box sh -c 'test -t 0 && echo tty-yes || echo tty-no'"));
    assert!(out.contains("tty-yes"), "{out:?}");
    let out = host.ns().run_ok(&script("box sh -c 'test -t 0 && echo tty-yes || echo tty-no'"));
    assert!(out.contains("tty-no") && !out.contains("tty-yes"), "{out:?}");
    let out = host.ns().run(&script("-t box sh -c 'exit 3'"));
    assert_eq!(out.status.code(), Some(3), "{out:?}");

    host.cnet_ok(&["rm", "-f", "box"]);
    host.assert_nothing_left("bridge");
}

// ------------------------------------------------------------------------------------ run flags

#[test]
fn run_env_workdir_hostname_and_add_host() {
    let host = host();
    let out = run_rm(
        &host,
        &[
            "-e",
            "ONE=1",
            "--env",
            "TWO=two words",
            "-w",
            "/work/dir",
            "--hostname",
            "myhost",
            "--add-host",
            "db.example:127.0.0.2",
            "--add-host",
            "gw.example:192.0.2.10",
            "busybox",
            "sh",
            "-c",
            "echo \"$ONE|$TWO|$HOSTNAME\"; pwd; hostname; cat /etc/hostname; cat /etc/hosts",
        ],
    );
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1|two words|myhost"), "{out}");
    assert_eq!(lines.next(), Some("/work/dir"), "{out}");
    assert_eq!(lines.next(), Some("myhost"), "{out}");
    assert_eq!(lines.next(), Some("myhost"), "{out}");
    let hosts: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    for (ip, name) in [("127.0.0.2", "db.example"), ("192.0.2.10", "gw.example")] {
        assert!(hosts.iter().any(|f| f.first() == Some(&ip) && f.contains(&name)), "{name} not in /etc/hosts:\n{out}");
    }
    assert!(hosts.iter().any(|f| f.contains(&"myhost")), "the hostname is not in /etc/hosts:\n{out}");

    // The name resolves to that address inside: ping goes to 127.0.0.2 (the container's own lo).
    let out =
        run_rm(&host, &["--add-host", "db.example:127.0.0.2", "busybox", "ping", "-c", "1", "-W", "2", "db.example"]);
    assert!(out.contains("(127.0.0.2)") && out.contains("1 packets received"), "{out}");

    // A detached container keeps them, and inspect shows them.
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "kept",
        "--hostname",
        "h2",
        "-e",
        "K=v",
        "-w",
        "/data",
        "--add-host",
        "x.example:192.0.2.11",
        "busybox",
        "sleep",
        "1000",
    ]);
    let json = host.inspect("kept");
    assert_eq!(json["Config"]["Hostname"], "h2", "{json:#}");
    assert_eq!(json["Config"]["WorkingDir"], "/data", "{json:#}");
    assert!(json["Config"]["Env"].as_array().is_some_and(|e| e.contains(&json!("K=v"))), "{json:#}");
    assert_eq!(json["HostConfig"]["ExtraHosts"], json!(["x.example:192.0.2.11"]), "{json:#}");
    assert_eq!(host.cnet_ok(&["exec", "kept", "sh", "-c", "echo $K; pwd; hostname"]), "v\n/data\nh2\n");
    host.cnet_ok(&["rm", "-f", "kept"]);
    host.assert_nothing_left("bridge");
}

#[test]
fn network_alias_resolves_for_other_containers() {
    let host = host();
    host.cnet_ok(&["create", "aliasnet"]);
    host.cnet_ok(&["create", "othernet"]);
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "aliasnet",
        "--network-alias",
        "db",
        "--network-alias",
        "store",
        "busybox",
        "sleep",
        "1000",
    ]);
    let ip = host.ip_of("srv");
    let aliases = host.inspect("srv")["NetworkSettings"]["Networks"]["aliasnet"]["Aliases"].clone();
    assert!(aliases.as_array().is_some_and(|a| a.contains(&json!("db")) && a.contains(&json!("store"))), "{aliases:#}");

    for alias in ["db", "store", "srv"] {
        let out = run_rm(&host, &["--network", "aliasnet", "busybox", "nslookup", alias]);
        assert!(out.lines().any(|l| l.starts_with("Address") && l.contains(&ip)), "{alias}: {out}");
    }
    let out = run_rm(&host, &["--network", "aliasnet", "busybox", "ping", "-c", "1", "-W", "2", "db"]);
    assert!(out.contains(&format!("({ip})")) && out.contains("1 packets received"), "{out}");

    // The alias belongs to aliasnet: from another network, with working DNS (its own container's
    // name resolves), it does not resolve.
    host.cnet_ok(&["run", "-d", "--name", "outsider", "--network", "othernet", "busybox", "sleep", "1000"]);
    let own = host.cnet_ok(&["exec", "outsider", "nslookup", "outsider"]);
    assert!(own.contains(&host.ip_of("outsider")), "{own}");
    let out = host.cnet(&["exec", "outsider", "nslookup", "db"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && !text.contains(&ip), "db resolved on othernet: {out:?}");
    host.cnet_ok(&["rm", "-f", "srv", "outsider"]);
    host.assert_nothing_left("aliasnet");
}

#[test]
fn run_dns_sets_the_containers_resolver() {
    let host = host();
    let upstream = Upstream::new(&host);
    let fake = bin("fake-dns");
    let _dns: Bg = upstream.ns().spawn(fake.to_str().expect("utf-8 path"), &[&format!("{}:53", upstream.addr())]);
    let server = upstream.addr().to_string();
    wait_for("fake-dns to answer the host", SETTLE, || {
        let out = host.ns().run(&format!("busybox nslookup www.upstream.test {server}"));
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("192.0.2.80")
    });

    // On the default bridge network, --dns is the container's nameserver, and answers through NAT.
    let out =
        run_rm(&host, &["--dns", &server, "busybox", "sh", "-c", "cat /etc/resolv.conf; nslookup www.upstream.test"]);
    let nameservers: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("nameserver ")).collect();
    assert_eq!(nameservers, [server.as_str()], "{out}");
    assert!(out.contains("192.0.2.80"), "{out}");

    // On a user network the container asks the embedded resolver, which forwards to the --dns server.
    host.cnet_ok(&["create", "dnsnet"]);
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "asker",
        "--network",
        "dnsnet",
        "--dns",
        &server,
        "busybox",
        "sleep",
        "1000",
    ]);
    let resolv = host.cnet_ok(&["exec", "asker", "cat", "/etc/resolv.conf"]);
    let nameservers: Vec<&str> = resolv.lines().filter_map(|l| l.strip_prefix("nameserver ")).collect();
    assert_eq!(nameservers, ["127.0.0.11"], "{resolv}");
    assert_eq!(host.inspect("asker")["HostConfig"]["Dns"], json!([server]));
    let out = host.cnet_ok(&["exec", "asker", "nslookup", "www.upstream.test"]);
    assert!(out.contains("192.0.2.80"), "{out}");
    host.cnet_ok(&["rm", "-f", "asker"]);
    host.assert_nothing_left("dnsnet");
}

// ------------------------------------------------------------------------------------ logs

#[test]
fn logs_follow_streams_new_output_until_the_container_exits() {
    let host = host();
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "echo first; echo oops >&2; while [ ! -e /tmp/next ]; do sleep 0.1; done; echo second; \
         while [ ! -e /tmp/end ]; do sleep 0.1; done; echo last",
    ]);
    wait_for_log(&host, "talker", "first");
    let mut follow = BgCli::start(&host, "follow", &["logs", "-f", "talker"]);
    wait_for("logs -f to print what was logged before it started", SETTLE, || follow.stdout() == "first\n");

    host.cnet_ok(&["exec", "talker", "touch", "/tmp/next"]);
    wait_for("logs -f to print a line written after it started", SETTLE, || follow.stdout() == "first\nsecond\n");
    follow.assert_running();
    assert_eq!(status_of(&host, "talker"), "running");

    host.cnet_ok(&["exec", "talker", "touch", "/tmp/end"]);
    let status = follow.wait_exit();
    assert!(status.success(), "logs -f: {status}: {}", follow.stderr());
    assert_eq!(follow.stdout(), "first\nsecond\nlast\n");
    assert_eq!(follow.stderr(), "oops\n");
    assert_eq!(status_of(&host, "talker"), "exited");

    // Plain logs: everything, stdout and stderr apart; -t prefixes each line with its time.
    let out = host.cnet(&["logs", "talker"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first\nsecond\nlast\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let stamped = host.cnet_ok(&["logs", "-t", "talker"]);
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 3, "{stamped}");
    for (line, text) in lines.iter().zip(["first", "second", "last"]) {
        let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("no timestamp in {line:?}"));
        assert_eq!(rest, text, "{stamped}");
        assert!(
            time.len() >= 20 && time.as_bytes()[4] == b'-' && time.contains('T') && time.ends_with('Z'),
            "{line:?}"
        );
    }
    // logs -f of a container that has exited prints all and ends.
    assert_eq!(host.cnet_ok(&["logs", "-f", "talker"]), "first\nsecond\nlast\n");
    host.cnet_ok(&["rm", "talker"]);
    host.assert_nothing_left("bridge");
}

// ------------------------------------------------------------------------------------ restart

/// The full id of a container.
fn id_of(host: &TestHost, container: &str) -> String {
    inspect_str(host, container, "/Id")
}

/// Waits until the container has exited and its supervisor is gone (so nothing will restart it).
fn wait_exited_for_good(host: &TestHost, container: &str) {
    let id = id_of(host, container);
    wait_for(&format!("{container} to exit and its supervisor to end"), SETTLE, || {
        status_of(host, container) == "exited" && !supervisor_running(&id)
    });
}

#[test]
fn restart_always_restarts_until_stopped() {
    let host = host();
    host.cnet_ok(&["run", "-d", "--name", "phoenix", "--restart", "always", "busybox", "sh", "-c", "echo run; exit 0"]);
    let id = id_of(&host, "phoenix");
    wait_for("phoenix to be restarted twice", SETTLE, || restart_count(&host, "phoenix") >= 2);
    assert_eq!(inspect_str(&host, "phoenix", "/HostConfig/RestartPolicy/Name"), "always");
    wait_for("three runs in the log of phoenix", SETTLE, || logs(&host, "phoenix").matches("run\n").count() >= 3);
    assert!(supervisor_running(&id));

    // A failing exit is restarted too.
    host.cnet_ok(&["run", "-d", "--name", "crasher", "--restart", "always", "busybox", "sh", "-c", "echo up; exit 9"]);
    wait_for("crasher to be restarted", SETTLE, || restart_count(&host, "crasher") >= 1);

    // cnet stop ends it for good; cnet start brings it and its policy back.
    host.cnet_ok(&["stop", "-t", "1", "phoenix"]);
    wait_exited_for_good(&host, "phoenix");
    let count = restart_count(&host, "phoenix");
    host.cnet_ok(&["start", "phoenix"]);
    wait_for("phoenix to be restarted after start", SETTLE, || restart_count(&host, "phoenix") > count);
    host.cnet_ok(&["rm", "-f", "phoenix", "crasher"]);
    host.assert_nothing_left("bridge");
}

#[test]
fn restart_unless_stopped_restarts_after_an_exit_not_after_stop() {
    let host = host();
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "keeper",
        "--restart",
        "unless-stopped",
        "busybox",
        "sh",
        "-c",
        "echo run; sleep 0.2; exit 1",
    ]);
    wait_for("keeper to be restarted", SETTLE, || restart_count(&host, "keeper") >= 1);
    assert_eq!(inspect_str(&host, "keeper", "/HostConfig/RestartPolicy/Name"), "unless-stopped");
    wait_for("keeper to run again", SETTLE, || logs(&host, "keeper").matches("run\n").count() >= 2);

    host.cnet_ok(&["stop", "-t", "1", "keeper"]);
    wait_exited_for_good(&host, "keeper");
    let count = restart_count(&host, "keeper");
    let runs = logs(&host, "keeper").matches("run\n").count();
    // Its supervisor has ended: nothing runs it again.
    assert_eq!(status_of(&host, "keeper"), "exited");
    assert_eq!(restart_count(&host, "keeper"), count);
    assert_eq!(logs(&host, "keeper").matches("run\n").count(), runs);
    host.cnet_ok(&["rm", "keeper"]);
    host.assert_nothing_left("bridge");
}

#[test]
fn restart_no_leaves_an_exited_container_alone() {
    let host = host();
    // The positive path in the same host: on-failure restarts this one.
    host.cnet_ok(&[
        "run",
        "-d",
        "--name",
        "retried",
        "--restart",
        "on-failure",
        "busybox",
        "sh",
        "-c",
        "echo once; exit 1",
    ]);
    wait_for("retried to be restarted", SETTLE, || restart_count(&host, "retried") >= 1);

    for (name, flags) in [("explicit", &["--restart", "no"][..]), ("default", &[][..])] {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "sh", "-c", "echo once; exit 1"]);
        host.cnet_ok(&args);
        wait_exited_for_good(&host, name);
        assert_eq!(inspect_str(&host, name, "/HostConfig/RestartPolicy/Name"), "no");
        assert_eq!(restart_count(&host, name), 0);
        assert_eq!(inspect_int(&host, name, "/State/ExitCode"), 1);
        assert_eq!(logs(&host, name), "once\n");
    }
    host.cnet_ok(&["rm", "-f", "retried", "explicit", "default"]);
    host.assert_nothing_left("bridge");
}

// ------------------------------------------------------------------------------------ cnetd restart

/// `ping -c 1` from inside a container; its output (it must succeed).
fn ping(host: &TestHost, from: &str, to: &str) -> String {
    host.cnet_ok(&["exec", from, "ping", "-c", "1", "-W", "2", to])
}

#[test]
fn detached_containers_survive_a_cnetd_crash() {
    let mut host = host();
    host.cnet_ok(&["create", "survivors"]);
    for name in ["alpha", "beta"] {
        host.cnet_ok(&["run", "-d", "--name", name, "--network", "survivors", "busybox", "sleep", "1000"]);
    }
    let (ip_a, ip_b) = (host.ip_of("alpha"), host.ip_of("beta"));
    let (pid_a, pid_b) = (inspect_int(&host, "alpha", "/State/Pid"), inspect_int(&host, "beta", "/State/Pid"));
    assert!(ping(&host, "alpha", "beta").contains("1 packets received"));

    host.kill_cnetd(SIGKILL);
    // With cnetd down the containers run on: their processes are the ones started before.
    assert_eq!(host.cnet_ok(&["ps", "-q"]).lines().count(), 2);
    host.start_cnetd();

    for (name, pid) in [("alpha", pid_a), ("beta", pid_b)] {
        let state = host.inspect(name)["State"].clone();
        assert_eq!(state["Status"], "running", "{name}: {state:#}");
        assert_eq!(state["Pid"], pid, "{name} was restarted: {state:#}");
    }
    assert_eq!(host.ip_of("alpha"), ip_a);
    assert_eq!(host.ip_of("beta"), ip_b);
    for (from, to) in [("alpha", "beta"), ("beta", "alpha"), ("alpha", ip_b.as_str()), ("beta", ip_a.as_str())] {
        let out = ping(&host, from, to);
        assert!(out.contains("1 packets received"), "{from} -> {to}: {out}");
    }

    host.cnet_ok(&["stop", "-t", "1", "beta"]);
    assert_eq!(status_of(&host, "beta"), "exited");
    host.cnet_ok(&["rm", "-f", "alpha", "beta"]);
    host.assert_nothing_left("survivors");
}

// ------------------------------------------------------------------------------------ quick start

#[test]
fn quick_start_web_by_name_then_rm_f_of_ps_aq_removes_everything() {
    let host = host();
    host.cnet_ok(&["create", "private-network"]);
    host.cnet_ok(&[
        "run",
        "-d",
        "--network",
        "private-network",
        "--name",
        "web",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www",
    ]);
    // Another container fetches it by name.
    wait_for("web to serve by name on private-network", SETTLE, || {
        let out = host.cnet(&["run", "--rm", "--network", "private-network", "busybox", "wget", "-qO-", "http://web/"]);
        out.status.success() && out.stdout == b"hello\n"
    });
    // `exec web ip addr` shows the address inspect reports.
    let ip = host.ip_of("web");
    let addrs = host.cnet_ok(&["exec", "web", "ip", "addr"]);
    assert!(addrs.contains(&format!("inet {ip}/")), "{addrs}");

    host.cnet_ok(&["run", "-d", "--network", "private-network", "--name", "idle", "busybox", "sleep", "1000"]);
    host.cnet_ok(&["run", "-d", "--name", "done", "busybox", "true"]);
    wait_for("done to exit", SETTLE, || status_of(&host, "done") == "exited");
    let ps = host.cnet_ok(&["ps", "-a"]);
    assert!(ps.lines().any(|l| l.contains("done") && l.contains("Exited (0)")), "{ps}");
    assert_eq!(host.cnet_ok(&["ps", "-q"]).lines().count(), 2, "{ps}");
    let ids = host.cnet_ok(&["ps", "-aq"]);
    assert_eq!(ids.lines().count(), 3, "{ids}");

    let cnet = cnet_sh(&host);
    let out = host.ns().run_ok(&format!("{cnet} rm -f $({cnet} ps -aq)"));
    let mut removed: Vec<&str> = out.lines().collect();
    let mut expected: Vec<&str> = ids.lines().collect();
    removed.sort();
    expected.sort();
    assert_eq!(removed, expected, "rm -f prints each container removed");
    assert_eq!(host.cnet_ok(&["ps", "-a"]).lines().count(), 1, "only the header is left");
    host.assert_nothing_left("private-network");
    host.assert_nothing_left("bridge");
}

/// Docker's input checks: `--dns` must be an IP address and `--add-host` must be `name:ip`; each is
/// refused with the bad value named (exit 125), before anything is made.
#[test]
fn bad_dns_and_add_host_are_refused_naming_the_value() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["create", "checks"]);
    // The positive first: good values are taken.
    let out = host.cnet_ok(&[
        "run",
        "--rm",
        "--network",
        "checks",
        "--dns",
        "192.0.2.53",
        "--add-host",
        "db:192.0.2.7",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(out.contains("192.0.2.7") && out.contains("db"), "{out}");
    for (flag, value) in
        [("--dns", "notanip"), ("--dns", "10.0.0.300"), ("--add-host", "nocolon"), ("--add-host", "db:notanip")]
    {
        let out = host.cnet(&["run", "-d", "--network", "checks", flag, value, "busybox", "sleep", "100"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{flag} {value}: {stderr}");
        assert!(stderr.contains(value) && stderr.contains(flag), "{flag} {value}: {stderr}");
    }
    host.assert_nothing_left("checks");
}

/// `--mac-address` sets the container's MAC on its first network; a value that is not a MAC, or a
/// multicast one, is refused naming it, before anything is made.
#[test]
fn mac_address_is_set_or_refused_naming_the_value() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["create", "macs"]);
    let link = host.cnet_ok(&[
        "run",
        "--rm",
        "--network",
        "macs",
        "--mac-address",
        "02:42:0a:0b:0c:0d",
        "busybox",
        "ip",
        "-o",
        "link",
        "show",
        "eth0",
    ]);
    assert!(link.contains("link/ether 02:42:0a:0b:0c:0d"), "{link}");
    for bad in ["nonsense", "01:00:5e:00:00:01"] {
        let out = host.cnet(&["run", "-d", "--network", "macs", "--mac-address", bad, "busybox", "sleep", "100"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{bad}: {stderr}");
        assert!(stderr.contains(bad) && stderr.contains("--mac-address"), "{bad}: {stderr}");
    }
    host.assert_nothing_left("macs");
}

/// A `cnet run` cut short by a crash of cnetd (it aborts at a named step, as a kill -9 would
/// catch it) leaks nothing once cnetd runs again: no sandbox, endpoint, lease or name is left, and
/// the container's name can be used again at once.
#[test]
fn a_run_cut_short_by_a_cnetd_crash_leaves_nothing_and_frees_the_name() {
    for step in ["sandbox:created", "connect:attached"] {
        let mut host = TestHost::new();
        host.start_cnetd_with_env(&[], &[("CNET_TEST_ABORT_AT", step)]);
        host.cnet_ok(&["create", "crashnet"]);
        let args =
            ["run", "-d", "--network", "crashnet", "--name", "victim", "-p", "8085:80", "busybox", "sleep", "100"];
        let out = host.cnet(&args);
        assert!(!out.status.success(), "{step}: the run succeeded though cnetd aborted:\n{}", host.log_tail());
        assert!(host.log().contains(step), "{step}: cnetd did not abort at the step:\n{}", host.log_tail());
        host.kill_cnetd(cnet_tests::SIGKILL);
        host.start_cnetd();
        assert_eq!(host.sandbox_ids(), Vec::<String>::new(), "{step}: the sandbox of the cut-short run is left");
        assert_eq!(host.network_containers("crashnet"), Vec::<String>::new(), "{step}: an endpoint is left");
        assert!(!host.nft_table().contains("8085"), "{step}: the DNAT of the cut-short run is left");
        // The name is free again, and the new container gets the network's first address.
        host.cnet_ok(&args);
        assert_eq!(host.sandbox_ids().len(), 1, "{step}");
        host.cnet_ok(&["rm", "-f", "victim"]);
        host.assert_nothing_left("crashnet");
    }
}

/// A `cnet run` whose CLI dies at any step (it aborts at a named step, as a kill -9 would catch
/// it) leaves nothing once the runtime looks again: the name can be used again at once (the dead
/// holder is reaped on the spot), and `cnet ps -a` reaps whatever else is left (a directory made
/// before the name was claimed). Nothing is shown as a stray `Created` container.
#[test]
fn a_run_cut_short_by_a_cli_crash_is_reaped_and_frees_the_name() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["create", "clinet"]);
    let args = ["run", "-d", "--network", "clinet", "--name", "victim", "-p", "8086:80", "busybox", "sleep", "100"];
    for step in ["create:dir", "create:sandbox", "create:connected", "run:created"] {
        let out = host.cnet_command(60, &args).env("CNET_TEST_ABORT_AT", step).output().expect("run cnet");
        assert!(!out.status.success(), "{step}: the run succeeded though the CLI aborted");
        assert!(String::from_utf8_lossy(&out.stderr).contains(step), "{}", describe_output(step, &out));
        // The same name again, at once.
        host.cnet_ok(&args);
        assert_eq!(host.sandbox_ids().len(), 1, "{step}: the sandbox of the dead run is left");
        assert_eq!(host.network_containers("clinet").len(), 1, "{step}: the endpoint of the dead run is left");
        assert_eq!(host.cnet_ok(&["ps", "-aq"]).lines().count(), 1, "{step}: `ps -a` shows the dead run");
        assert_eq!(host.container_dirs().len(), 1, "{step}: `ps -a` left a directory of the dead run");
        host.cnet_ok(&["rm", "-f", "victim"]);
        host.assert_nothing_left("clinet");
    }
}

/// A `--rm` container whose supervisor is killed (its program dies with it) is removed the next
/// time the runtime looks (`ps`, or a new container wanting its name), with its sandbox, lease,
/// published port and name.
#[test]
fn a_rm_container_whose_supervisor_is_killed_is_reaped() {
    let host = TestHost::with_cnetd();
    host.cnet_ok(&["create", "supnet"]);
    let args =
        ["run", "-d", "--rm", "--network", "supnet", "--name", "sup", "-p", "8087:80", "busybox", "sleep", "100"];
    for reap_by in ["ps", "name"] {
        let id = host.cnet_ok(&args).trim().to_string();
        let state_path = host.runtime_dir().join("containers").join(&id).join("state.json");
        let state: Value =
            serde_json::from_slice(&std::fs::read(&state_path).expect("read state.json")).expect("parse");
        let supervisor = state["supervisor_pid"].as_i64().filter(|pid| *pid > 0).expect("a supervisor pid");
        let supervisor = nix::unistd::Pid::from_raw(i32::try_from(supervisor).expect("a pid"));
        nix::sys::signal::kill(supervisor, nix::sys::signal::Signal::SIGKILL).expect("kill the supervisor");
        wait_for("the supervisor to die", Duration::from_secs(10), || {
            !std::path::Path::new(&format!("/proc/{supervisor}")).exists()
        });
        match reap_by {
            "ps" => {
                assert_eq!(host.cnet_ok(&["ps", "-aq"]), "", "the dead --rm container is listed");
                host.assert_nothing_left("supnet");
            }
            _ => {
                host.cnet_ok(&args);
                assert_eq!(host.sandbox_ids().len(), 1, "the sandbox of the dead --rm container is left");
                host.cnet_ok(&["rm", "-f", "sup"]);
                host.assert_nothing_left("supnet");
            }
        }
    }
}

/// A crash of cnetd in the middle of `rm`, `network disconnect`, `network create` or `network rm`
/// leaves nothing once it runs again: the command can be given again and finishes the work, and a
/// network whose creation was cut short (even with a bridge name of the user's) leaves no bridge.
#[test]
fn cnetd_crashes_in_rm_disconnect_and_network_verbs_leak_nothing() {
    let restart = |host: &mut TestHost, step: &str, out: &std::process::Output| {
        assert!(!out.status.success(), "{step}: the command succeeded though cnetd aborted");
        assert!(host.log().contains(step), "{step}: cnetd did not abort at the step:\n{}", host.log_tail());
        host.kill_cnetd(cnet_tests::SIGKILL);
        host.start_cnetd();
    };

    let mut host = TestHost::new();
    host.start_cnetd_with_env(&[], &[("CNET_TEST_ABORT_AT", "sandbox:disconnected")]);
    host.cnet_ok(&["create", "n1"]);
    host.cnet_ok(&["run", "-d", "--network", "n1", "--name", "c1", "-p", "8088:80", "busybox", "sleep", "100"]);
    let out = host.cnet(&["rm", "-f", "c1"]);
    restart(&mut host, "sandbox:disconnected", &out);
    host.cnet_ok(&["rm", "-f", "c1"]);
    assert!(!host.nft_table().contains("8088"), "the DNAT of c1 is left");
    host.assert_nothing_left("n1");

    let mut host = TestHost::new();
    host.start_cnetd_with_env(&[], &[("CNET_TEST_ABORT_AT", "disconnect:detached")]);
    host.cnet_ok(&["create", "n1"]);
    host.cnet_ok(&["create", "n2"]);
    host.cnet_ok(&["run", "-d", "--network", "n1", "--name", "c1", "busybox", "sleep", "100"]);
    host.cnet_ok(&["network", "connect", "n2", "c1"]);
    let out = host.cnet(&["network", "disconnect", "n2", "c1"]);
    restart(&mut host, "disconnect:detached", &out);
    host.cnet_ok(&["network", "disconnect", "n2", "c1"]);
    assert_eq!(host.network_containers("n2"), Vec::<String>::new(), "c1 is still on n2");
    host.cnet_ok(&["rm", "-f", "c1"]);
    host.assert_nothing_left("n1");
    host.assert_nothing_left("n2");

    let mut host = TestHost::new();
    host.start_cnetd_with_env(&[], &[("CNET_TEST_ABORT_AT", "network:made")]);
    let bridges = |host: &TestHost| {
        host.links().into_iter().filter(|l| l.starts_with("br-") || l == "labbr7").collect::<Vec<_>>()
    };
    let before = bridges(&host);
    let out = host.cnet(&["network", "create", "-o", "com.docker.network.bridge.name=labbr7", "n3"]);
    restart(&mut host, "network:made", &out);
    assert_eq!(bridges(&host), before, "the bridge of the cut-short network create is left");
    let err = host.cnet_err(&["network", "inspect", "n3"]);
    assert!(err.contains("n3"), "the network of the cut-short create exists: {err}");

    // Recorded, its firewall rules maybe not in the table yet (they go in off the reply path):
    // the next start puts them in.
    let mut host = TestHost::new();
    host.start_cnetd_with_env(&[], &[("CNET_TEST_ABORT_AT", "network:recorded")]);
    let out = host.cnet(&["network", "create", "--subnet", "10.77.0.0/24", "n6"]);
    restart(&mut host, "network:recorded", &out);
    host.cnet_ok(&["network", "inspect", "n6"]);
    let table = host.nft_table();
    assert!(table.contains("10.77.0.0/24"), "the rules of n6 are not in the table after the restart:\n{table}");
    host.cnet_ok(&["network", "rm", "n6"]);
    assert!(!host.nft_table().contains("10.77.0.0/24"), "the rules of n6 are left after its rm");
    assert_eq!(host.links_starting("br-"), Vec::<String>::new(), "the bridge of n6 is left");

    let mut host = TestHost::new();
    host.start_cnetd_with_env(&[], &[("CNET_TEST_ABORT_AT", "network:unmade")]);
    host.cnet_ok(&["create", "n4"]);
    let out = host.cnet(&["network", "rm", "n4"]);
    restart(&mut host, "network:unmade", &out);
    host.cnet_ok(&["network", "rm", "n4"]);
    assert_eq!(host.links_starting("br-"), Vec::<String>::new(), "the bridge of n4 is left");

    // The record is gone and the bridge only queued for deletion when cnetd dies: the next start
    // deletes it.
    let mut host = TestHost::new();
    host.start_cnetd_with_env(&[], &[("CNET_TEST_ABORT_AT", "network:forgotten")]);
    host.cnet_ok(&["create", "n5"]);
    let out = host.cnet(&["network", "rm", "n5"]);
    restart(&mut host, "network:forgotten", &out);
    assert!(host.cnet_err(&["network", "inspect", "n5"]).contains("n5"), "n5 is still there");
    assert_eq!(host.links_starting("br-"), Vec::<String>::new(), "the bridge of n5 is left");
}

/// A crash in the middle of `network connect` of a running container (cnetd aborts after the
/// driver's attach, before the endpoint's record) or of a supervisor's start (it aborts once the
/// program runs, before telling `run` or `start`) leaks nothing: the connect can be given again
/// and gives one interface, `run` removes what it made, and a `start` cut short leaves the
/// container as it was (exited, removable).
#[test]
fn crashes_in_network_connect_and_start_leak_nothing() {
    let mut host = TestHost::with_cnetd();
    host.cnet_ok(&["create", "n1"]);
    host.cnet_ok(&["create", "n2"]);
    host.cnet_ok(&["run", "-d", "--network", "n1", "--name", "c1", "busybox", "sleep", "100"]);
    host.kill_cnetd(SIGKILL);
    host.start_cnetd_with_env(&[], &[("CNET_TEST_ABORT_AT", "connect:attached")]);
    let out = host.cnet(&["network", "connect", "n2", "c1"]);
    assert!(!out.status.success(), "the connect succeeded though cnetd aborted");
    assert!(host.log().contains("connect:attached"), "cnetd did not abort at the step:\n{}", host.log_tail());
    host.kill_cnetd(SIGKILL);
    host.start_cnetd();
    assert_eq!(host.network_containers("n2"), Vec::<String>::new(), "the cut-short connect left an endpoint");
    host.cnet_ok(&["network", "connect", "n2", "c1"]);
    let links = host.cnet_ok(&["exec", "c1", "ip", "-o", "link"]);
    assert_eq!(links.matches(": eth1").count(), 1, "{links}");
    host.cnet_ok(&["rm", "-f", "c1"]);
    host.assert_nothing_left("n1");
    host.assert_nothing_left("n2");

    let args = ["run", "-d", "--network", "n1", "--name", "s1", "-p", "8089:80", "busybox", "sleep", "100"];
    let out = host.cnet_command(60, &args).env("CNET_TEST_ABORT_AT", "supervise:started").output().expect("run cnet");
    assert!(!out.status.success(), "{}", describe_output("run with a supervisor that aborts", &out));
    assert!(!host.nft_table().contains("8089"), "the DNAT of s1 is left");
    host.assert_nothing_left("n1");

    host.cnet_ok(&["run", "-d", "--network", "n1", "--name", "s2", "busybox", "sleep", "100"]);
    host.cnet_ok(&["stop", "-t", "0", "s2"]);
    let out = host
        .cnet_command(60, &["start", "s2"])
        .env("CNET_TEST_ABORT_AT", "supervise:started")
        .output()
        .expect("run cnet");
    assert!(!out.status.success(), "{}", describe_output("start with a supervisor that aborts", &out));
    assert_eq!(host.inspect("s2")["State"]["Running"], false, "s2 runs without a supervisor");
    host.cnet_ok(&["rm", "s2"]);
    host.assert_nothing_left("n1");
}

/// `cnet version` prints the client's and the daemon's versions and API versions, as `docker
/// version` does; without a daemon it still prints the client's and fails. `cnet completion`
/// prints a completion script that knows the commands.
#[test]
fn version_and_completion() {
    let mut host = TestHost::with_cnetd();
    let out = host.cnet_ok(&["version"]);
    let version = env!("CARGO_PKG_VERSION");
    assert!(out.starts_with("Client:\n"), "{out}");
    assert!(out.contains(&format!(" Version:           {version}\n")), "{out}");
    assert!(
        out.contains("\nServer: cnetd\n")
            && out.matches(&format!(" API version:       {}\n", cnet_api::API_VERSION)).count() == 2,
        "{out}"
    );
    host.kill_cnetd(SIGKILL);
    let out = host.cnet(&["version"]);
    assert!(!out.status.success(), "{}", describe_output("version without cnetd", &out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Client:\n"), "{}", describe_output("version", &out));
    for (shell, needle) in [("bash", "_cnet()"), ("zsh", "#compdef cnet"), ("fish", "complete -c cnet")] {
        let script = host.cnet_ok(&["completion", shell]);
        assert!(script.contains(needle) && script.contains("lab"), "{shell}: {script:.300}");
    }
    assert!(host.cnet_err(&["completion", "tcsh"]).contains("tcsh"));
}

/// Under systemd (`Type=notify`, packaging/cnetd.service), cnetd says READY=1 once its API
/// serves and STOPPING=1 on SIGTERM, on `$NOTIFY_SOCKET`.
#[test]
fn cnetd_notifies_the_service_manager() {
    let dir = tempfile::Builder::new().prefix("cnet-notify-").tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind the notify socket");
    socket.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut host = TestHost::new();
    host.start_cnetd_with_env(&[], &[("NOTIFY_SOCKET", path.to_str().expect("utf-8"))]);
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).expect("READY=1 within 10 s");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means serving.
    host.cnet_ok(&["network", "ls"]);
    host.kill_cnetd(cnet_tests::SIGTERM);
    let n = socket.recv(&mut buf).expect("STOPPING=1 within 10 s");
    assert_eq!(&buf[..n], b"STOPPING=1");
}

/// `-v HOST:CONTAINER[:ro]` binds a host directory or file into the container (read-only with
/// `:ro`), shown in inspect's `HostConfig.Binds`; a bad specification is refused by name with
/// nothing made.
#[test]
fn volumes_bind_host_paths() {
    let host = TestHost::with_cnetd();
    let data = tempfile::Builder::new().prefix("cnet-vol-").tempdir().expect("temp dir");
    std::fs::write(data.path().join("hello.txt"), "hello from the host\n").expect("write");
    let file = data.path().join("app.conf");
    std::fs::write(&file, "answer=42\n").expect("write");
    let dir_spec = format!("{}:/data:ro", data.path().display());
    let file_spec = format!("{}:/etc/app.conf", file.display());
    host.cnet_ok(&["run", "-d", "--name", "v1", "-v", &dir_spec, "--volume", &file_spec, "busybox", "sleep", "100"]);
    assert_eq!(host.cnet_ok(&["exec", "v1", "cat", "/data/hello.txt"]), "hello from the host\n");
    assert_eq!(host.cnet_ok(&["exec", "v1", "cat", "/etc/app.conf"]), "answer=42\n");
    let write = host.cnet(&["exec", "v1", "sh", "-c", "echo x > /data/new"]);
    assert!(!write.status.success(), "wrote into a read-only bind");
    host.cnet_ok(&["exec", "v1", "sh", "-c", "echo answer=43 > /etc/app.conf"]);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "answer=43\n", "a rw bind is the host's file");
    let binds = &host.inspect("v1")["HostConfig"]["Binds"];
    assert_eq!(binds[0], dir_spec, "{binds:#}");
    host.cnet_ok(&["rm", "-f", "v1"]);
    assert!(data.path().join("hello.txt").exists(), "rm took the host's files");
    for (spec, needle) in [
        ("/nonexistent-cnet-dir:/x", "/nonexistent-cnet-dir"),
        ("/tmp:relative", "relative"),
        ("/tmp:/x:rx", "rx"),
        ("myvolume:/x", "named volumes"),
    ] {
        let out = host.cnet(&["run", "-d", "-v", spec, "busybox", "true"]);
        assert_eq!(out.status.code(), Some(125), "{}", describe_output(spec, &out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{}", describe_output(spec, &out));
    }
    assert_eq!(host.container_dirs(), Vec::<String>::new());
}

/// Issue 17: cnetd killed in the middle of an `rm -f` of many containers. The removals it cut
/// short fail; cnetd started again, a second `rm -f` of what is left finishes, and nothing of any
/// container is left (netns, veth, sandbox, lease, directory, name).
#[test]
fn rm_f_of_many_containers_with_cnetd_killed_midway_leaves_nothing() {
    let mut host = TestHost::with_cnetd();
    host.cnet_ok(&["network", "create", "many"]);
    let names: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    for name in &names {
        host.cnet_ok(&["run", "-d", "--network", "many", "--name", name, "busybox", "sleep", "1000"]);
    }
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    let rm = host.cnet_command(60, &args).spawn().expect("start rm -f");
    // Killed as soon as the first container is gone: the others are in the middle of it.
    wait_for("rm -f to remove its first container", Duration::from_secs(20), || {
        host.container_dirs().len() < names.len()
    });
    host.kill_cnetd(SIGKILL);
    let first = rm.wait_with_output().expect("wait for rm -f");
    host.start_cnetd();
    let left: Vec<String> = host.cnet_ok(&["ps", "-aq"]).lines().map(str::to_string).collect();
    if !left.is_empty() {
        let mut again = vec!["rm", "-f"];
        again.extend(left.iter().map(String::as_str));
        host.cnet_ok(&again);
    }
    // The kill came while the first rm -f was removing (else this test tests nothing).
    assert!(
        !first.status.success() && !left.is_empty(),
        "{} left {}",
        describe_output("the first rm -f", &first),
        left.len()
    );
    host.assert_nothing_left("many");
    host.cnet_ok(&["network", "rm", "many"]);
}
