//! End-to-end tests of `cnet pull` and `cnet run --pull`: a distribution registry (Debian's
//! `docker-registry`) runs on 127.0.0.1:5000 inside the test host's own network namespace, test
//! images built here as OCI layouts (a static busybox and a file) are pushed into it with skopeo
//! (gzip, zstd, a multi-platform index), and the CLI pulls them by tag and by digest, runs them, and
//! fails cleanly, leaving nothing in the image store, on a corrupted layer, a wrong digest, a missing
//! tag, an unreachable registry and missing or wrong credentials (htpasswd, Docker's config.json).
//! No packet leaves the namespace. They need root, the Debian packages `docker-registry`, `skopeo`
//! and `apache2-utils` (scripts/setup.sh) and the binaries built:
//! `cargo build --workspace --bins && cargo test -p cnet-tests --test registry`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use cnet_tests::{Bg, TestHost, describe_output, proc_net_has_listener, wait_for};
use serde_json::{Value, json};

/// What the test image's default command prints.
const HELLO: &str = "hello from the registry";

// ------------------------------------------------------------------------------------ the registry

/// A distribution registry on 127.0.0.1:PORT in `host`'s namespaces, storing in a directory of its
/// own; killed when dropped (and with the namespace in any case).
struct Registry {
    _server: Bg,
    dir: tempfile::TempDir,
    port: u16,
    /// `user:password` when it wants basic auth.
    creds: Option<String>,
}

impl Registry {
    fn start(host: &TestHost, port: u16, user: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::Builder::new().prefix("cnet-registry-").tempdir().expect("create the registry's directory");
        let root = dir.path();
        let auth = match user {
            Some((name, password)) => {
                let out = std::process::Command::new("htpasswd")
                    .args(["-Bbn", name, password])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(out.status.success(), "{}", describe_output("htpasswd", &out));
                std::fs::write(root.join("htpasswd"), &out.stdout).expect("write htpasswd");
                format!("auth:\n  htpasswd:\n    realm: cnet-test\n    path: {}\n", root.join("htpasswd").display())
            }
            None => String::new(),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    \
             enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            root.join("storage").display()
        );
        std::fs::write(root.join("config.yml"), config).expect("write the registry config");
        let log = std::fs::File::create(root.join("registry.log")).expect("create registry.log");
        let mut cmd = host.ns().cmd("docker-registry");
        cmd.arg("serve").arg(root.join("config.yml")).stdout(log.try_clone().expect("dup")).stderr(log);
        let mut server = Bg::start(cmd);
        wait_for("the registry to listen", Duration::from_secs(15), || {
            server.assert_running();
            proc_net_has_listener(&host.ns().run_ok("cat /proc/net/tcp"), port)
        });
        let creds = user.map(|(u, p)| format!("{u}:{p}"));
        Registry { _server: server, dir, port, creds }
    }

    /// `127.0.0.1:PORT`
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn storage(&self) -> PathBuf {
        self.dir.path().join("storage/docker/registry/v2")
    }

    /// The file holding blob `digest` (`sha256:…`).
    fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.storage().join("blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    /// The manifest digest `repo:tag` points at, from the registry's storage.
    fn digest_of(&self, repo: &str, tag: &str) -> String {
        let link = self.storage().join(format!("repositories/{repo}/_manifests/tags/{tag}/current/link"));
        std::fs::read_to_string(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display())).trim().to_string()
    }

    /// The manifest (JSON) `repo:tag` points at.
    fn manifest_of(&self, repo: &str, tag: &str) -> Value {
        let path = self.blob(&self.digest_of(repo, tag));
        serde_json::from_slice(&std::fs::read(&path).expect("read a manifest blob")).expect("a JSON manifest")
    }

    /// Pushes the OCI layout `layout:ref` as `repo:tag` with skopeo, run inside the host's
    /// namespace; `extra` are more flags (`--dest-compress-format zstd`, `--all`).
    fn push(&self, host: &TestHost, layout: &Path, reference: &str, repo: &str, tag: &str, extra: &[&str]) {
        let mut cmd = host.ns().cmd("skopeo");
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        if let Some(creds) = &self.creds {
            cmd.args(["--dest-creds", creds]);
        }
        cmd.args(extra)
            .arg(format!("oci:{}:{reference}", layout.display()))
            .arg(format!("docker://{}/{repo}:{tag}", self.addr()));
        let out = cmd.output().expect("run skopeo");
        assert!(out.status.success(), "{}", describe_output(&format!("skopeo copy to {repo}:{tag}"), &out));
    }
}

// ------------------------------------------------------------------------------------ test images

/// The OCI architecture name of this machine.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn sha256_file(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum").arg(path).output().expect("run sha256sum");
    assert!(out.status.success(), "{}", describe_output("sha256sum", &out));
    let text = String::from_utf8_lossy(&out.stdout);
    format!("sha256:{}", text.split_whitespace().next().expect("sha256sum output"))
}

/// Writes `bytes` as a blob of the layout; its descriptor (`mediaType`, `digest`, `size`).
fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let tmp = layout.join("blob.tmp");
    std::fs::write(&tmp, bytes).expect("write a blob");
    let digest = sha256_file(&tmp);
    let hex = digest.strip_prefix("sha256:").expect("sha256");
    std::fs::rename(&tmp, layout.join("blobs/sha256").join(hex)).expect("move a blob");
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// An OCI image layout at `layout` holding one image under each of `tags`: one uncompressed layer with
/// a static busybox (`/bin/busybox`, `/bin/sh`, `/bin/cat`, `/bin/echo`) and `/hello.txt` holding
/// `text`, and a config running `cat /hello.txt`. For `arch` other than this machine's, the image
/// says so. Returns the manifest descriptor.
fn build_layout(layout: &Path, tags: &[&str], text: &str, arch: &str) -> Value {
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("create the layout");
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    let rootfs = tempfile::tempdir().expect("a rootfs directory");
    let r = rootfs.path();
    std::fs::create_dir(r.join("bin")).expect("mkdir bin");
    std::fs::copy("/bin/busybox", r.join("bin/busybox")).expect("copy /bin/busybox (busybox-static)");
    for applet in ["sh", "cat", "echo", "ls"] {
        std::os::unix::fs::symlink("busybox", r.join("bin").join(applet)).expect("symlink an applet");
    }
    std::fs::write(r.join("hello.txt"), format!("{text}\n")).expect("write hello.txt");
    let tar = layout.join("layer.tar");
    let out = std::process::Command::new("tar")
        .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "-C"])
        .arg(r)
        .args(["-cf"])
        .arg(&tar)
        .args(["bin", "hello.txt"])
        .output()
        .expect("run tar");
    assert!(out.status.success(), "{}", describe_output("tar", &out));
    let layer_bytes = std::fs::read(&tar).expect("read the layer");
    std::fs::remove_file(&tar).expect("remove the layer tar");
    let layer = put_blob(layout, "application/vnd.oci.image.layer.v1.tar", &layer_bytes);
    let config = json!({
        "architecture": arch,
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["cat", "/hello.txt"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    });
    let config = put_blob(layout, "application/vnd.oci.image.config.v1+json", config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    });
    let mut descriptor =
        put_blob(layout, "application/vnd.oci.image.manifest.v1+json", manifest.to_string().as_bytes());
    descriptor["platform"] = json!({"architecture": arch, "os": "linux"});
    let mut index: Value = std::fs::read(layout.join("index.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| json!({"schemaVersion": 2, "manifests": []}));
    for tag in tags {
        let mut entry = descriptor.clone();
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        index["manifests"].as_array_mut().expect("manifests").push(entry);
    }
    std::fs::write(layout.join("index.json"), index.to_string()).expect("write index.json");
    descriptor
}

/// Adds to the layout an image index named `tag` over `manifests` (descriptors with platforms).
fn add_index(layout: &Path, tag: &str, manifests: &[Value]) {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let mut descriptor = put_blob(layout, "application/vnd.oci.image.index.v1+json", index.to_string().as_bytes());
    descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let mut top: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("read index.json"))
        .expect("index.json");
    top["manifests"].as_array_mut().expect("manifests").push(descriptor);
    std::fs::write(layout.join("index.json"), top.to_string()).expect("write index.json");
}

// ------------------------------------------------------------------------------------ helpers

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything under the image store (`DIR/runtime/images`), as sorted relative paths, so a failed
/// pull that left a file anywhere shows. Panics if the store cannot be read.
fn store_listing(host: &TestHost) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())) {
            let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("under the root").display().to_string();
            let kind = entry.file_type().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if kind.is_dir() && !rel.contains("/rootfs/") && !rel.ends_with("/rootfs") {
                walk(root, &path, out);
            }
            out.push(rel);
        }
    }
    let root = host.runtime_dir().join("images");
    assert!(root.is_dir(), "the image store {} does not exist", root.display());
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// `cnet images` as `REPOSITORY TAG ID` rows (the id cut to 12).
fn images(host: &TestHost) -> Vec<String> {
    host.cnet_ok(&["images", "--format", "{{.Repository}} {{.Tag}} {{.ID}}"]).lines().map(str::to_string).collect()
}

/// `cnet pull` must fail cleanly, name `expected` in its error, and leave the store as it was.
fn pull_fails(host: &TestHost, args: &[&str], expected: &[&str]) -> String {
    let before = store_listing(host);
    let images_before = images(host);
    let mut all = vec!["pull"];
    all.extend_from_slice(args);
    let err = host.cnet_err(&all);
    for e in expected {
        assert!(err.contains(e), "`cnet {}`: the error does not say {e:?}:\n{err}", all.join(" "));
    }
    assert_eq!(store_listing(host), before, "`cnet {}` left something in the image store", all.join(" "));
    assert_eq!(images(host), images_before);
    eprintln!("`cnet {}` failed as it should: {}", all.join(" "), err.trim());
    err
}

// ------------------------------------------------------------------------------------ tests

#[test]
fn pull_by_tag_and_by_digest_and_run() {
    let host = TestHost::with_cnetd();
    let registry = Registry::start(&host, 5000, None);
    let layout = host.dir().join("layout");
    build_layout(&layout, &["1"], HELLO, oci_arch());
    // Another layer for zstd: skopeo would reuse the gzip blob of an identical one.
    build_layout(&layout, &["z"], "hello from a zstd layer", oci_arch());
    registry.push(&host, &layout, "1", "test", "1", &["--dest-compress", "--dest-compress-format", "gzip"]);
    registry.push(&host, &layout, "z", "test", "zstd", &["--dest-compress", "--dest-compress-format", "zstd"]);
    registry.push(&host, &layout, "1", "other/app", "2", &["--dest-compress-format", "gzip"]);
    let gz = registry.manifest_of("test", "1");
    assert!(gz["layers"][0]["mediaType"].as_str().unwrap_or("").ends_with("gzip"), "{gz}");
    let zst = registry.manifest_of("test", "zstd");
    assert!(zst["layers"][0]["mediaType"].as_str().unwrap_or("").ends_with("zstd"), "{zst}");

    // By tag: plain progress lines (no terminal), then the full reference.
    let out = host.cnet_ok(&["pull", "localhost:5000/test:1"]);
    assert!(out.contains("1: Pulling from test"), "{out}");
    assert!(out.contains(": Downloaded (") && out.contains(": Pull complete"), "{out}");
    assert!(out.contains("Status: Downloaded newer image for localhost:5000/test:1"), "{out}");
    assert!(out.contains(&format!("Digest: {}", registry.digest_of("test", "1"))), "{out}");
    assert_eq!(out.lines().last(), Some("localhost:5000/test:1"), "{out}");
    let rows = images(&host);
    let id = rows
        .iter()
        .find_map(|r| r.strip_prefix("localhost:5000/test 1 "))
        .unwrap_or_else(|| panic!("no localhost:5000/test:1 in {rows:?}"))
        .to_string();

    // By digest: the same image, so nothing is downloaded; -q prints only the reference.
    let digest = registry.digest_of("test", "1");
    let by_digest = format!("localhost:5000/test@{digest}");
    let out = host.cnet_ok(&["pull", &by_digest]);
    assert!(out.contains("Status: Image is up to date"), "{out}");
    assert_eq!(host.cnet_ok(&["pull", "-q", &by_digest]).trim(), by_digest);

    // zstd layers; another spelling of the host is another registry for the store.
    let out = host.cnet_ok(&["image", "pull", "127.0.0.1:5000/test:zstd"]);
    assert!(out.contains("Status: Downloaded newer image for 127.0.0.1:5000/test:zstd"), "{out}");
    // The same image under another name is not downloaded again.
    let out = host.cnet_ok(&["pull", "127.0.0.1:5000/test:1"]);
    assert!(out.contains("Status: Image is up to date for 127.0.0.1:5000/test:1"), "{out}");
    let rows = images(&host);
    assert!(rows.contains(&format!("127.0.0.1:5000/test 1 {id}")), "same config, same image: {rows:?}");

    // Run what was pulled, never pulling again; by tag and by digest.
    let out = host.cnet_ok(&["run", "--rm", "--pull", "never", "localhost:5000/test:1"]);
    assert_eq!(out.trim(), HELLO);
    let out = host.cnet_ok(&["run", "--rm", "--pull", "never", "127.0.0.1:5000/test:zstd", "cat", "/hello.txt"]);
    assert_eq!(out.trim(), "hello from a zstd layer");
    let out = host.cnet_ok(&["run", "--rm", "--pull", "never", &by_digest, "echo", "by", "digest"]);
    assert_eq!(out.trim(), "by digest");

    // --pull never with an image not in the store.
    let err = host.cnet_err(&["run", "--rm", "--pull", "never", "localhost:5000/other/app:2"]);
    assert!(err.contains("Unable to find image 'localhost:5000/other/app:2' locally") && err.contains("--pull never"));
    // The default (--pull missing) pulls it.
    let out = host.cnet(&["run", "--rm", "localhost:5000/other/app:2"]);
    assert!(out.status.success(), "{}", describe_output("run (pull missing)", &out));
    assert_eq!(stdout(&out).trim(), HELLO);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Unable to find image 'localhost:5000/other/app:2' locally"), "{err}");
    assert!(err.contains("Pull complete") || err.contains("up to date"), "{err}");
    // --pull always asks the registry again.
    let out = host.cnet(&["run", "--rm", "--pull", "always", "localhost:5000/test:1", "echo", "again"]);
    assert!(out.status.success(), "{}", describe_output("run --pull always", &out));
    assert_eq!(stdout(&out).trim(), "again");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Status: Image is up to date for localhost:5000/test:1"));

    // The built-in busybox needs no registry (nothing answers for docker.io here).
    assert_eq!(host.cnet_ok(&["run", "--rm", "busybox", "echo", "offline"]).trim(), "offline");

    // Images pulled once are shared: two containers on one image, one rootfs.
    let rows = images(&host);
    assert_eq!(rows.iter().filter(|r| r.ends_with(&id)).count(), 3, "{rows:?}");

    // rmi by tag keeps the image while another tag names it; by digest, then by the last tag.
    host.cnet_ok(&["rmi", "127.0.0.1:5000/test:1"]);
    let out = host.cnet_ok(&["rmi", &by_digest]);
    assert!(out.contains("Untagged"), "{out}");
    assert!(images(&host).iter().any(|r| r.starts_with("localhost:5000/test 1 ")));
}

#[test]
fn failed_pulls_say_why_and_leave_nothing() {
    let host = TestHost::new();
    let registry = Registry::start(&host, 5000, None);
    let layout = host.dir().join("layout");
    build_layout(&layout, &["good"], HELLO, oci_arch());
    build_layout(&layout, &["bad"], "this layer gets corrupted", oci_arch());
    registry.push(&host, &layout, "good", "test", "good", &["--dest-compress-format", "gzip"]);
    registry.push(&host, &layout, "bad", "test", "bad", &["--dest-compress-format", "gzip"]);
    // A good pull first, so the store exists and holds something a failure must not disturb.
    host.cnet_ok(&["pull", "localhost:5000/test:good"]);

    // A corrupted layer: same length, other bytes.
    let manifest = registry.manifest_of("test", "bad");
    let layer = manifest["layers"][0]["digest"].as_str().expect("a layer digest").to_string();
    let blob = registry.blob(&layer);
    let mut bytes = std::fs::read(&blob).expect("read the layer blob");
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 16] {
        *b ^= 0xff;
    }
    std::fs::write(&blob, &bytes).expect("corrupt the layer blob");
    pull_fails(&host, &["localhost:5000/test:bad"], &[&layer, "localhost:5000/test:bad", "does not match its digest"]);

    // A digest no manifest has.
    let wrong = format!("sha256:{}", "0".repeat(64));
    pull_fails(&host, &[&format!("localhost:5000/test@{wrong}")], &[&wrong, "not found"]);
    // A missing tag, a missing repository.
    pull_fails(&host, &["localhost:5000/test:nope"], &["localhost:5000/test:nope", "not found"]);
    pull_fails(&host, &["localhost:5000/absent"], &["localhost:5000/absent:latest", "not found"]);
    // Nothing listens there.
    pull_fails(&host, &["127.0.0.1:5999/test:1"], &["127.0.0.1:5999", "onnection refused"]);
    // A malformed reference.
    pull_fails(&host, &["localhost:5000/Test"], &["invalid reference format", "'localhost:5000/Test'"]);

    // The good image is intact and still runs on the runtime's side.
    assert!(images(&host).iter().any(|r| r.starts_with("localhost:5000/test good ")));
}

#[test]
fn a_multi_platform_index_resolves_to_this_machine() {
    let host = TestHost::new();
    let registry = Registry::start(&host, 5000, None);
    let layout = host.dir().join("layout");
    let here = build_layout(&layout, &[], HELLO, oci_arch());
    let there = build_layout(&layout, &[], "another machine's image", "s390x");
    add_index(&layout, "multi", &[there.clone(), here]);
    add_index(&layout, "elsewhere", &[there]);
    registry.push(&host, &layout, "multi", "multi", "1", &["--all"]);
    registry.push(&host, &layout, "elsewhere", "multi", "other", &["--all"]);

    let out = host.cnet_ok(&["pull", "localhost:5000/multi:1"]);
    // The digest recorded is the index's, as Docker's.
    assert!(out.contains(&format!("Digest: {}", registry.digest_of("multi", "1"))), "{out}");
    let image = host.runtime_dir().join("images");
    let rows = images(&host);
    let id = rows.iter().find_map(|r| r.strip_prefix("localhost:5000/multi 1 ")).expect("pulled").to_string();
    let found = std::fs::read_dir(&image)
        .expect("list the store")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(&id))
        .expect("the image directory");
    let hello = std::fs::read_to_string(found.path().join("rootfs/hello.txt")).expect("hello.txt");
    assert_eq!(hello.trim(), HELLO, "the image for this machine was taken");

    pull_fails(&host, &["localhost:5000/multi:other"], &[&format!("linux/{}", oci_arch()), "linux/s390x"]);
}

#[test]
fn credentials_come_from_docker_config() {
    let host = TestHost::new();
    let registry = Registry::start(&host, 5000, Some(("alice", "s3cret")));
    let layout = host.dir().join("layout");
    build_layout(&layout, &["1"], HELLO, oci_arch());
    registry.push(&host, &layout, "1", "private", "1", &[]);

    let config_dir = |name: &str, auth: Option<&str>| {
        let dir = host.dir().join(name);
        std::fs::create_dir_all(&dir).expect("create a docker config dir");
        if let Some(auth) = auth {
            let encoded = base64(auth);
            let config = json!({"auths": {"localhost:5000": {"auth": encoded}}});
            std::fs::write(dir.join("config.json"), config.to_string()).expect("write config.json");
        }
        dir
    };
    let pull = |dir: &Path| {
        host.cnet_command(60, &["pull", "localhost:5000/private:1"])
            .env("DOCKER_CONFIG", dir)
            .output()
            .expect("run cnet pull")
    };
    // Store exists before the failures are compared.
    host.cnet_ok(&["images"]);
    let before = store_listing(&host);

    let out = pull(&config_dir("none", None));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe_output("pull without credentials", &out));
    assert!(err.contains("pull access denied") && err.contains("no credentials for localhost:5000"), "{err}");
    let out = pull(&config_dir("wrong", Some("alice:wrong")));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", describe_output("pull with a wrong password", &out));
    assert!(err.contains("pull access denied") && err.contains("were refused"), "{err}");
    eprintln!("pulls without and with wrong credentials failed as they should: {}", err.trim());
    assert_eq!(store_listing(&host), before, "failed pulls left something in the store");

    let out = pull(&config_dir("right", Some("alice:s3cret")));
    assert!(out.status.success(), "{}", describe_output("pull with credentials", &out));
    assert!(images(&host).iter().any(|r| r.starts_with("localhost:5000/private 1 ")));
}

/// Standard base64 (the `auth` field of config.json), without a dependency.
fn base64(s: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_the_standard() {
    assert_eq!(base64("alice:s3cret"), "YWxpY2U6czNjcmV0");
    assert_eq!(base64("a:b"), "YTpi");
    assert_eq!(base64("ab:cd"), "YWI6Y2Q=");
    assert_eq!(base64("u:"), "dTo=");
}
