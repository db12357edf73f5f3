//! Store-level tests: tarballs are made here, byte by byte where an honest tar writer would refuse.
//! They run as root (ownership is kept, and the busybox test uses chroot).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::EntryType;

use super::*;

/// One entry of a test tarball.
enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    /// A file with an owner.
    Owned(&'a str, &'a [u8], u32, u64),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Char(&'a str),
}

/// A header whose name and link name are written raw, so `..` and absolute names can be made.
fn header(name: &str, link: &str, kind: EntryType, size: u64, mode: u32, owner: u64) -> tar::Header {
    let mut h = tar::Header::new_old();
    let old = h.as_old_mut();
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(owner);
    h.set_gid(owner);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

fn tar_bytes(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (h, data): (tar::Header, &[u8]) = match e {
            E::Dir(n, m) => (header(n, "", EntryType::Directory, 0, *m, 0), b""),
            E::File(n, d, m) => (header(n, "", EntryType::Regular, d.len() as u64, *m, 0), d),
            E::Owned(n, d, m, o) => (header(n, "", EntryType::Regular, d.len() as u64, *m, *o), d),
            E::Symlink(n, t) => (header(n, t, EntryType::Symlink, 0, 0o777, 0), b""),
            E::Hardlink(n, t) => (header(n, t, EntryType::Link, 0, 0o644, 0), b""),
            E::Char(n) => (header(n, "", EntryType::Char, 0, 0o666, 0), b""),
        };
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A tar of whole files: `(path, content)`; a `None` content is a symlink to the given target.
fn archive_of(files: &[(&str, Vec<u8>)], links: &[(&str, &str)]) -> Vec<u8> {
    let mut entries: Vec<E> = files.iter().map(|(n, d)| E::File(n, d, 0o644)).collect();
    entries.extend(links.iter().map(|(n, t)| E::Symlink(n, t)));
    tar_bytes(&entries)
}

struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    store: ImageStore,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let store = ImageStore::open(&dir.join("images")).unwrap();
        Fixture { _tmp: tmp, dir, store }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    /// What is in the store's directory besides its index and lock, `.tmp-` left-overs included.
    fn store_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.store.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != index::INDEX_FILE && n != index::LOCK_FILE)
            .collect();
        names.sort();
        names
    }
}

fn read(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn exists(root: &Path, path: &str) -> bool {
    fs::symlink_metadata(root.join(path)).is_ok()
}

fn mode(root: &Path, path: &str) -> u32 {
    fs::symlink_metadata(root.join(path)).unwrap().permissions().mode() & 0o7777
}

#[test]
fn busybox_is_built_in_and_runs() {
    let f = Fixture::new();
    assert!(f.store.list().unwrap().is_empty());
    let image = f.store.resolve("busybox").unwrap();
    assert_eq!((image.name.as_str(), image.tag.as_str()), ("busybox", "latest"));
    assert_eq!(image.id.len(), 64);
    assert_eq!(image.config.cmd, vec!["sh"]);
    assert!(image.config.env.iter().any(|e| e.starts_with("PATH=")));
    assert!(fsutil::is_rfc3339_utc(&image.created), "{}", image.created);
    assert!(image.size > 100_000, "size {}", image.size);
    let root = &image.rootfs;

    let applets = Command::new("/bin/busybox").arg("--list").output().unwrap();
    let applets = String::from_utf8(applets.stdout).unwrap();
    for applet in applets.lines().filter(|a| *a != "busybox") {
        let link = fs::read_link(root.join("bin").join(applet)).unwrap_or_else(|e| panic!("bin/{applet}: {e}"));
        assert_eq!(link, Path::new("busybox"));
    }
    assert!(exists(root, "bin/sh") && exists(root, "bin/ls"));
    assert_eq!(mode(root, "bin/busybox"), 0o755);
    assert!(read(root, "etc/passwd").starts_with("root:x:0:0:root:/root:/bin/sh\n"));
    assert!(read(root, "etc/group").starts_with("root:x:0:"));
    for placeholder in ["etc/hosts", "etc/resolv.conf", "etc/hostname"] {
        assert_eq!(read(root, placeholder), "", "{placeholder}");
    }
    for dir in ["proc", "sys", "dev", "root", "var", "tmp"] {
        assert!(root.join(dir).is_dir(), "{dir}");
    }
    assert_eq!(mode(root, "tmp"), 0o1777);

    let out = Command::new("chroot").arg(root).args(["/bin/sh", "-c", "echo ok; id -u"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n0\n");

    // The same image from then on, by every spelling; and it is listed.
    assert_eq!(f.store.resolve("busybox:latest").unwrap().id, image.id);
    assert_eq!(f.store.resolve(&image.id).unwrap().id, image.id);
    assert_eq!(f.store.resolve(&image.id[..4]).unwrap().id, image.id);
    assert_eq!(f.store.resolve(&format!("sha256:{}", &image.id[..12])).unwrap().name, "busybox");
    let listed = f.store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].rootfs, image.rootfs);
    assert_eq!(f.store_entries(), vec![image.id.clone()]);
}

#[test]
fn busybox_creation_is_race_safe() {
    let f = Fixture::new();
    let root = f.store.root().to_path_buf();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let root = root.clone();
                s.spawn(move || ImageStore::open(&root).unwrap().resolve("busybox").unwrap().id)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(f.store_entries(), vec![ids[0].clone()], "losers' work is gone");
    assert_eq!(f.store.list().unwrap().len(), 1);
}

#[test]
fn unknown_images_are_not_found_the_docker_way() {
    let f = Fixture::new();
    for (reference, shown) in [("nope", "nope:latest"), ("nope:1.0", "nope:1.0"), ("busybox:1.36", "busybox:1.36")] {
        match f.store.resolve(reference) {
            Err(Error::NotFound(msg)) => assert_eq!(msg, format!("Unable to find image '{shown}' locally")),
            other => panic!("{reference}: {other:?}"),
        }
    }
    assert!(matches!(f.store.resolve("Bad Name"), Err(Error::Invalid(m)) if m.contains("'Bad Name'")));
    assert!(matches!(f.store.remove("nope"), Err(Error::NotFound(m)) if m == "No such image: nope:latest"));
    assert!(f.store_entries().is_empty(), "busybox is only made when asked for");
}

#[test]
fn import_a_root_filesystem_tarball() {
    let f = Fixture::new();
    let tar = tar_bytes(&[
        E::Dir("./", 0o755),
        E::Dir("./usr/", 0o755),
        E::Dir("./usr/lib/", 0o755),
        E::Dir("./bin/", 0o755),
        E::File("./bin/tool", b"#!/bin/sh\necho tool\n", 0o4755),
        E::Owned("./home/app/notes", b"hello", 0o600, 1234),
        E::Symlink("./lib", "usr/lib"),
        E::File("./lib/libx.so", b"elf", 0o644),
        E::Symlink("./etc/localtime", "/usr/share/zoneinfo/UTC"),
        E::Hardlink("./bin/tool2", "./bin/tool"),
        E::Char("./dev/null"),
        E::Dir("./tmp/", 0o1777),
    ]);
    let plain = f.write("rootfs.tar", &tar);
    let image = f.store.import(&plain, "myroot:v1").unwrap();
    assert_eq!((image.name.as_str(), image.tag.as_str()), ("myroot", "v1"));
    assert_eq!(image.config, ImageConfig::default());
    let root = &image.rootfs;
    assert_eq!(read(root, "bin/tool"), "#!/bin/sh\necho tool\n");
    assert_eq!(mode(root, "bin/tool"), 0o4755, "set-uid bit kept");
    let notes = fs::metadata(root.join("home/app/notes")).unwrap();
    assert_eq!((notes.uid(), notes.gid(), notes.mode() & 0o7777), (1234, 1234, 0o600));
    assert_eq!(fs::read_link(root.join("lib")).unwrap(), Path::new("usr/lib"));
    assert_eq!(read(root, "usr/lib/libx.so"), "elf", "written through the link, inside the root");
    assert_eq!(fs::read_link(root.join("etc/localtime")).unwrap(), Path::new("/usr/share/zoneinfo/UTC"));
    let (a, b) = (fs::metadata(root.join("bin/tool")).unwrap(), fs::metadata(root.join("bin/tool2")).unwrap());
    assert_eq!(a.ino(), b.ino(), "hard link kept");
    assert!(!exists(root, "dev/null"), "device nodes are skipped");
    assert!(root.join("dev").is_dir());
    assert_eq!(mode(root, "tmp"), 0o1777);
    assert_eq!(image.size, 20 + 5 + 3 + "usr/lib".len() as u64 + "/usr/share/zoneinfo/UTC".len() as u64);

    // gzip is found by its magic bytes, whatever the file is called.
    let gz = f.write("rootfs.data", &gzip(&tar));
    let again = f.store.import(&gz, "myroot").unwrap();
    assert_eq!(read(&again.rootfs, "bin/tool"), "#!/bin/sh\necho tool\n");
    assert_ne!(again.id, image.id);

    // Resolve by name, tag, id and id prefix.
    assert_eq!(f.store.resolve("myroot:v1").unwrap().id, image.id);
    assert_eq!(f.store.resolve("myroot").unwrap().id, again.id);
    assert_eq!(f.store.resolve("myroot:latest").unwrap().id, again.id);
    assert_eq!(f.store.resolve(&again.id[..12]).unwrap().tag, "latest");
    assert!(f.store_entries().iter().all(|n| !n.starts_with(".tmp-")), "{:?}", f.store_entries());
}

#[test]
fn bad_tarballs_are_refused_and_leave_nothing() {
    let f = Fixture::new();
    let host_victim = format!("cnet-image-test-{}", fsutil::random_id());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("dotdot", tar_bytes(&[E::File("ok", b"", 0o644), E::File("a/../../evil", b"x", 0o644)]), "'a/../../evil'"),
        ("absolute", tar_bytes(&[E::File("/tmp/evil", b"x", 0o644)]), "'/tmp/evil' is an absolute path"),
        ("link-out", tar_bytes(&[E::Dir("a/", 0o755), E::Symlink("a/out", "../../..")]), "climbs out"),
        ("hardlink-out", tar_bytes(&[E::Hardlink("pw", "../../etc/passwd")]), "'../../etc/passwd'"),
        ("hardlink-abs", tar_bytes(&[E::Hardlink("pw", "/etc/passwd")]), "'/etc/passwd' is an absolute path"),
        ("hardlink-missing", tar_bytes(&[E::Hardlink("pw", "nothere")]), "not in the image"),
        ("not-a-tar", b"just some text, not a tarball at all".repeat(20), "not a valid tar archive"),
        ("empty", Vec::new(), "is empty"),
        ("zstd", vec![0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0], "bad zstd data"),
        ("xz", vec![0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2], "xz-compressed"),
    ];
    for (name, bytes, expected) in cases {
        let path = f.write(name, &bytes);
        let err = f.store.import(&path, "bad").expect_err(name).to_string();
        assert!(err.contains(expected), "{name}: {err}");
        assert!(err.contains(&path.display().to_string()), "{name}: the message names the tarball: {err}");
        assert!(f.store_entries().is_empty(), "{name}: left {:?}", f.store_entries());
    }
    assert!(matches!(f.store.resolve("bad"), Err(Error::NotFound(_))));
    let missing = f.store.import(&f.dir.join("missing.tar"), "x").unwrap_err();
    assert!(matches!(&missing, Error::NotFound(m) if m.contains("missing.tar")), "{missing}");
    assert!(matches!(f.store.import(&f.dir, "x"), Err(Error::Invalid(m)) if m.contains("is a directory")));
    assert!(matches!(f.store.import(&f.dir, "Bad:ref"), Err(Error::Invalid(m)) if m.contains("'Bad:ref'")));

    // A link to "/" leads into the root, never to the host's.
    let sneaky = tar_bytes(&[E::Symlink("up", "/"), E::File(&format!("up/tmp/{host_victim}"), b"x", 0o644)]);
    let image = f.store.import(&f.write("sneaky", &sneaky), "sneaky").unwrap();
    assert!(exists(&image.rootfs, &format!("tmp/{host_victim}")));
    assert!(!Path::new("/tmp").join(&host_victim).exists());
}

/// A layer for the saved-image tests.
fn lower_layer() -> Vec<u8> {
    tar_bytes(&[
        E::Dir("etc/", 0o755),
        E::File("etc/motd", b"one", 0o644),
        E::Hardlink("etc/motd.link", "etc/motd"),
        E::Dir("data/", 0o755),
        E::File("data/gone", b"x", 0o644),
        E::Dir("data/gone-dir/", 0o755),
        E::File("data/gone-dir/f", b"x", 0o644),
        E::File("data/kept", b"k", 0o644),
        E::Dir("opq/", 0o755),
        E::File("opq/a", b"a", 0o644),
        E::Dir("opq/sub/", 0o755),
        E::File("opq/sub/b", b"b", 0o644),
        E::Dir("srv/", 0o750),
        E::File("srv/app", b"#!/bin/sh\n", 0o755),
    ])
}

fn upper_layer() -> Vec<u8> {
    tar_bytes(&[
        E::Dir("etc/", 0o755),
        E::File("etc/motd", b"two", 0o644),
        E::Dir("data/", 0o755),
        E::File("data/.wh.gone", b"", 0o644),
        E::File("data/.wh.gone-dir", b"", 0o644),
        E::Dir("opq/", 0o700),
        E::File("opq/new", b"new", 0o644),
        E::File("opq/.wh..wh..opq", b"", 0o644),
        E::Dir("opq/sub/", 0o755),
        E::File("opq/sub/c", b"c", 0o644),
    ])
}

const CONFIG: &str = r#"{
  "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05.123456789Z",
  "config": {
    "Env": ["PATH=/usr/bin:/bin", "MODE=test"],
    "Cmd": ["--serve"],
    "Entrypoint": ["/srv/app"],
    "WorkingDir": "/srv",
    "ExposedPorts": {"80/tcp": {}, "53/udp": {}, "8080": {}}
  },
  "rootfs": {"type": "layers", "diff_ids": []}
}"#;

/// `docker save` as Docker before 25 writes it: `<id>/layer.tar`, `<config digest>.json`, manifest.json,
/// and a link where a layer is shared.
fn docker_save(config_id: &str, repo_tags: &[&str]) -> Vec<u8> {
    let manifest = serde_json::json!([{
        "Config": format!("{config_id}.json"),
        "RepoTags": repo_tags,
        "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"],
    }]);
    archive_of(
        &[
            ("cccc/layer.tar", lower_layer()),
            ("bbbb/layer.tar", gzip(&upper_layer())),
            (&format!("{config_id}.json"), CONFIG.as_bytes().to_vec()),
            ("manifest.json", manifest.to_string().into_bytes()),
            ("repositories", b"{}".to_vec()),
        ],
        &[("aaaa/layer.tar", "../cccc/layer.tar")],
    )
}

fn check_saved_image(image: &Image) {
    let root = &image.rootfs;
    assert_eq!(read(root, "etc/motd"), "two", "upper layer wins");
    assert_eq!(read(root, "etc/motd.link"), "one", "a hard link of the lower file keeps the lower content");
    assert!(!exists(root, "data/gone") && !exists(root, "data/gone-dir"), "whited out");
    assert!(!exists(root, "data/.wh.gone"), "whiteouts are not files");
    assert_eq!(read(root, "data/kept"), "k");
    let mut opq: Vec<_> = fs::read_dir(root.join("opq")).unwrap().map(|e| e.unwrap().file_name()).collect();
    opq.sort();
    assert_eq!(opq, vec!["new", "sub"], "opaque directory keeps only the upper layer's entries");
    assert_eq!(fs::read_dir(root.join("opq/sub")).unwrap().count(), 1);
    assert_eq!(read(root, "opq/sub/c"), "c");
    assert_eq!(mode(root, "opq"), 0o700);
    assert_eq!(mode(root, "srv"), 0o750);
    assert_eq!(mode(root, "srv/app"), 0o755);
    assert_eq!(
        image.config,
        ImageConfig {
            env: vec!["PATH=/usr/bin:/bin".into(), "MODE=test".into()],
            cmd: vec!["--serve".into()],
            entrypoint: vec!["/srv/app".into()],
            working_dir: "/srv".into(),
            exposed_ports: vec!["53/udp".into(), "80/tcp".into(), "8080/tcp".into()],
        }
    );
    assert_eq!(image.created, "2024-01-02T03:04:05.123456789Z");
}

#[test]
fn import_a_docker_save_archive() {
    let f = Fixture::new();
    let config_id = "1".repeat(64);
    let path = f.write("app.tar", &docker_save(&config_id, &["app:1.0"]));
    let image = f.store.import(&path, "app:1.0").unwrap();
    assert_eq!(image.id, config_id, "the id is the config digest");
    check_saved_image(&image);
    assert_eq!(f.store_entries(), vec![config_id.clone()], "the work directory became the image");

    // The same archive under another tag is the same image, unpacked once.
    let gz = f.write("app.tar.gz", &gzip(&docker_save(&config_id, &["app:1.0"])));
    let same = f.store.import(&gz, "app:stable").unwrap();
    assert_eq!((same.id.as_str(), same.rootfs.as_path()), (image.id.as_str(), image.rootfs.as_path()));
    let refs: Vec<String> = f.store.list().unwrap().iter().map(Image::reference).collect();
    assert_eq!(refs, vec!["app:1.0", "app:stable"]);

    // By id, an image with two tags is a conflict; by tag, the image goes with its last tag.
    assert!(matches!(f.store.remove(&config_id[..8]), Err(Error::Conflict(m)) if m.contains("app:1.0, app:stable")));
    let removed = f.store.remove("app:1.0").unwrap();
    assert_eq!(removed.reference(), "app:1.0");
    assert!(image.rootfs.is_dir(), "still tagged app:stable");
    f.store.remove("app:stable").unwrap();
    assert!(!image.rootfs.exists());
    assert!(f.store.list().unwrap().is_empty());
    assert!(f.store_entries().is_empty(), "{:?}", f.store_entries());
}

#[test]
fn import_an_oci_layout_archive() {
    let f = Fixture::new();
    let digest = |n: char| format!("sha256:{}", n.to_string().repeat(64));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest('c'), "size": 1},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest('1'), "size": 1},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest('2'), "size": 1},
        ],
    });
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest('m'), "size": 1,
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    let blob = |n: char| format!("blobs/sha256/{}", n.to_string().repeat(64));
    let tar = archive_of(
        &[
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("index.json", index.to_string().into_bytes()),
            (&blob('m'), manifest.to_string().into_bytes()),
            (&blob('c'), CONFIG.as_bytes().to_vec()),
            (&blob('1'), lower_layer()),
            (&blob('2'), gzip(&upper_layer())),
        ],
        &[],
    );
    let image = f.store.import(&f.write("oci.tar", &tar), "oci").unwrap();
    assert_eq!(image.id, "c".repeat(64));
    check_saved_image(&image);
}

#[test]
fn a_save_archive_with_several_images_needs_a_matching_tag() {
    let f = Fixture::new();
    let manifest = serde_json::json!([
        {"Config": format!("{}.json", "1".repeat(64)), "RepoTags": ["one:latest"], "Layers": ["l1.tar"]},
        {"Config": format!("{}.json", "2".repeat(64)), "RepoTags": ["docker.io/library/two:latest"], "Layers": ["l2.tar"]},
    ]);
    let tar = archive_of(
        &[
            ("l1.tar", archive_of(&[("one", b"1".to_vec())], &[])),
            ("l2.tar", archive_of(&[("two", b"2".to_vec())], &[])),
            (&format!("{}.json", "1".repeat(64)), b"{}".to_vec()),
            (&format!("{}.json", "2".repeat(64)), br#"{"config": {"Cmd": null}}"#.to_vec()),
            ("manifest.json", manifest.to_string().into_bytes()),
        ],
        &[],
    );
    let path = f.write("two.tar", &tar);
    let two = f.store.import(&path, "two").unwrap();
    assert!(exists(&two.rootfs, "two") && !exists(&two.rootfs, "one"));
    assert_eq!(two.config, ImageConfig::default());
    let err = f.store.import(&path, "three").unwrap_err().to_string();
    assert!(err.contains("one:latest") && err.contains("'three:latest'"), "{err}");

    // A manifest that names what the archive lacks, or climbs out of it.
    for layers in [serde_json::json!(["nothere.tar"]), serde_json::json!(["../../../etc/passwd"])] {
        let manifest = serde_json::json!([{"Config": "c.json", "Layers": layers}]);
        let tar = archive_of(&[("c.json", b"{}".to_vec()), ("manifest.json", manifest.to_string().into_bytes())], &[]);
        let err = f.store.import(&f.write("broken.tar", &tar), "broken").unwrap_err().to_string();
        assert!(err.contains("not in the archive"), "{err}");
    }
}

#[test]
fn retagging_keeps_the_old_image_untagged_until_removed() {
    let f = Fixture::new();
    let v1 = f.store.import(&f.write("1.tar", &archive_of(&[("v", b"1".to_vec())], &[])), "app").unwrap();
    let v2 = f.store.import(&f.write("2.tar", &archive_of(&[("v", b"2".to_vec())], &[])), "app").unwrap();
    assert_eq!(read(&f.store.resolve("app").unwrap().rootfs, "v"), "2");
    let listed: Vec<(String, String)> = f.store.list().unwrap().into_iter().map(|i| (i.reference(), i.id)).collect();
    assert_eq!(listed, vec![("<none>:<none>".to_string(), v1.id.clone()), ("app:latest".to_string(), v2.id.clone())]);
    assert!(v1.rootfs.is_dir(), "a container may still run on it");

    let old = f.store.remove(&v1.id).unwrap();
    assert_eq!((old.name.as_str(), old.id.as_str()), (UNTAGGED, v1.id.as_str()));
    assert!(!v1.rootfs.exists());
    let gone = f.store.remove("app:latest").unwrap();
    assert_eq!(gone.id, v2.id);
    assert!(f.store.list().unwrap().is_empty());
    assert!(f.store_entries().is_empty());
}

#[test]
fn id_prefixes_must_be_unique() {
    let f = Fixture::new();
    let a = format!("abcd{}", "0".repeat(60));
    let b = format!("abcd{}", "1".repeat(60));
    f.store.import(&f.write("a.tar", &docker_save(&a, &[])), "a").unwrap();
    f.store.import(&f.write("b.tar", &docker_save(&b, &[])), "b").unwrap();
    assert!(matches!(f.store.resolve("abcd"), Err(Error::Invalid(m)) if m.contains("ambiguous")));
    assert_eq!(f.store.resolve("abcd1").unwrap().name, "b");
    assert_eq!(f.store.resolve(&a).unwrap().name, "a");
    assert!(matches!(f.store.resolve("abc"), Err(Error::NotFound(_))), "3 digits are a name, not an id");
    assert!(matches!(f.store.resolve("abcd2"), Err(Error::NotFound(_))));
}

#[test]
fn opening_the_store_removes_left_overs() {
    let f = Fixture::new();
    let image = f.store.import(&f.write("1.tar", &archive_of(&[("v", b"1".to_vec())], &[])), "app").unwrap();
    let root = f.store.root();
    let dead = root.join(".tmp-999999999-0011223344556677");
    fs::create_dir_all(dead.join("rootfs")).unwrap();
    let live = fsutil::tmp_path(root);
    fs::create_dir(&live).unwrap();
    let orphan = root.join("f".repeat(64));
    fs::create_dir_all(orphan.join("rootfs")).unwrap();

    ImageStore::open(root).unwrap();
    assert!(!dead.exists() && !orphan.exists());
    assert!(live.exists(), "a live process's work is left alone");
    assert_eq!(f.store.resolve("app").unwrap().id, image.id);

    // An image whose directory vanished is forgotten.
    fs::remove_dir_all(root.join(&image.id)).unwrap();
    fs::remove_dir(&live).unwrap();
    ImageStore::open(root).unwrap();
    assert!(f.store.list().unwrap().is_empty());
    assert!(matches!(f.store.resolve("app"), Err(Error::NotFound(_))));
}

#[test]
fn a_root_filesystem_packed_by_gnu_tar_round_trips() {
    let f = Fixture::new();
    let busybox = f.store.resolve("busybox").unwrap();
    let long = format!("var/{}/{}", "d".repeat(120), "f".repeat(150));
    fs::create_dir_all(busybox.rootfs.join(&long).parent().unwrap()).unwrap();
    fs::write(busybox.rootfs.join(&long), "long").unwrap();
    fs::hard_link(busybox.rootfs.join("bin/busybox"), busybox.rootfs.join("bin/bb")).unwrap();
    let tarball = f.dir.join("packed.tgz");
    let status = Command::new("tar")
        .args(["--numeric-owner", "-czf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&busybox.rootfs)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());

    let image = f.store.import(&tarball, "repacked").unwrap();
    assert_eq!(read(&image.rootfs, &long), "long");
    let (a, b) =
        (fs::metadata(image.rootfs.join("bin/busybox")).unwrap(), fs::metadata(image.rootfs.join("bin/bb")).unwrap());
    assert_eq!(a.ino(), b.ino());
    assert_eq!(mode(&image.rootfs, "tmp"), 0o1777);
    let out = Command::new("chroot").arg(&image.rootfs).args(["/bin/sh", "-c", "echo ok"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{}", String::from_utf8_lossy(&out.stderr));
}

/// Fuzzing (issue 14): any bytes as an archive to import (plain, or behind a gzip header, or inside
/// a tar entry) give an image or an error, never a panic, and a failed import leaves nothing in
/// the store.
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64), ..ProptestConfig::default() })]
        #[test]
        fn fuzz_image_archives(body in proptest::collection::vec(any::<u8>(), 0..3000), wrap in 0u8..3) {
            let f = Fixture::new();
            let bytes = match wrap {
                0 => body,
                1 => [&[0x1f, 0x8b, 0x08, 0x00][..], &body].concat(),
                _ => {
                    let mut b = tar::Builder::new(Vec::new());
                    let mut h = tar::Header::new_gnu();
                    h.set_size(body.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, "manifest.json", &body[..]).unwrap();
                    b.into_inner().unwrap()
                }
            };
            let path = f.write("fuzz.tar", &bytes);
            if f.store.import(&path, "fuzz:1").is_err() {
                prop_assert_eq!(f.store_entries(), Vec::<String>::new());
            }
        }
    }
}

#[test]
fn a_stage_commits_pulled_layers_under_tags_and_digests() {
    let f = Fixture::new();
    let layer1 = f.write("l1", &gzip(&archive_of(&[("a", b"1".to_vec()), ("b", b"1".to_vec())], &[])));
    let zstd_layer = zstd::encode_all(&archive_of(&[("b", b"2".to_vec())], &[])[..], 3).unwrap();
    let layer2 = f.write("l2", &zstd_layer);
    let config = br#"{"created":"2024-01-02T03:04:05Z","config":{"Cmd":["cat","/a"],"Env":["X=1"]}}"#;
    let id = "c".repeat(64);
    let digest = format!("sha256:{}", "d".repeat(64));

    // A stage dropped before its commit leaves nothing.
    let stage = f.store.stage().unwrap();
    stage.apply_layer(&layer1, "layer 1").unwrap();
    fs::write(stage.path().join("download"), b"x").unwrap();
    drop(stage);
    assert!(f.store_entries().is_empty(), "{:?}", f.store_entries());
    // A bad layer is an error naming it.
    let stage = f.store.stage().unwrap();
    let err = stage.apply_layer(&f.write("bad", b"not a tar at all, not at all".repeat(30).as_slice()), "layer X");
    assert!(err.unwrap_err().to_string().contains("layer X"));
    drop(stage);

    let stage = f.store.stage().unwrap();
    stage.apply_layer(&layer1, "layer 1").unwrap();
    stage.apply_layer(&layer2, "layer 2").unwrap();
    fs::write(stage.path().join("download"), b"x").unwrap();
    let image = stage.commit(&id, config, "localhost:5000/app", Some("1"), Some(&digest)).unwrap();
    assert_eq!((image.name.as_str(), image.tag.as_str(), image.id.as_str()), ("localhost:5000/app", "1", id.as_str()));
    assert_eq!(read(&image.rootfs, "a"), "1");
    assert_eq!(read(&image.rootfs, "b"), "2", "the zstd layer applied over the gzip one");
    assert!(!f.store.root().join(&id).join("download").exists(), "downloads do not stay");
    assert_eq!(image.config.cmd, ["cat", "/a"]);
    assert_eq!(image.created, "2024-01-02T03:04:05Z");
    assert!(f.store.has_image(&id).unwrap());

    // Found by tag (any spelling) and by digest.
    assert_eq!(f.store.resolve("localhost:5000/app:1").unwrap().id, id);
    assert_eq!(f.store.resolve(&format!("localhost:5000/app@{digest}")).unwrap().id, id);
    assert!(matches!(f.store.resolve(&format!("localhost:5000/other@{digest}")), Err(Error::NotFound(_))));
    // Another name for the same image.
    f.store.tag_image(&id, "busybox-copy", None, Some(&digest)).unwrap();
    assert_eq!(f.store.resolve(&format!("docker.io/library/busybox-copy@{digest}")).unwrap().id, id);

    // Untagged, an image pulled by digest shows its repository.
    f.store.remove("localhost:5000/app:1").unwrap();
    assert!(f.store.list().unwrap().is_empty(), "the last tag takes the image and its digests");
    let stage = f.store.stage().unwrap();
    stage.apply_layer(&layer1, "layer 1").unwrap();
    stage.commit(&id, config, "localhost:5000/app", None, Some(&digest)).unwrap();
    let listed: Vec<String> = f.store.list().unwrap().iter().map(|i| i.reference()).collect();
    assert_eq!(listed, ["localhost:5000/app:<none>"]);
    f.store.remove(&format!("localhost:5000/app@{digest}")).unwrap();
    assert!(f.store.list().unwrap().is_empty());
    assert!(f.store_entries().is_empty(), "{:?}", f.store_entries());
}
