//! The Debian package, built by `scripts/package-deb.sh --no-build` from the release binaries that
//! `scripts/setup.sh` made: its contents, its metadata, its binaries run from a scratch root, and
//! its systemd unit passes `systemd-analyze verify`. A broken package fails here.

use std::path::{Path, PathBuf};
use std::process::Command;

use cnet_tests::describe_output;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(what: &str, cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{}", describe_output(what, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_debian_package_holds_binaries_unit_man_pages_and_completions() {
    let repo = workspace();
    for bin in ["cnet", "cnetd", "cnet-supervise"] {
        assert!(
            repo.join("target/release").join(bin).exists(),
            "target/release/{bin} is missing: run ./scripts/setup.sh, which builds the release binaries"
        );
    }
    let out = tempfile::Builder::new().prefix("cnet-deb-").tempdir().expect("temp dir");
    let deb = run(
        "package-deb.sh",
        Command::new("bash").arg(repo.join("scripts/package-deb.sh")).arg("--no-build").arg(out.path()),
    );
    let deb = deb.trim();
    assert!(deb.ends_with(".deb") && Path::new(deb).exists(), "no package at {deb:?}");

    let contents = run("dpkg-deb -c", Command::new("dpkg-deb").args(["-c", deb]));
    for path in [
        "./usr/bin/cnet",
        "./usr/bin/cnet-supervise",
        "./usr/sbin/cnetd",
        "./lib/systemd/system/cnetd.service",
        "./usr/share/man/man1/cnet.1.gz",
        "./usr/share/man/man1/cnet-run.1.gz",
        "./usr/share/man/man1/cnet-lab-deploy.1.gz",
        "./usr/share/man/man8/cnetd.8.gz",
        "./usr/share/bash-completion/completions/cnet",
        "./usr/share/zsh/vendor-completions/_cnet",
        "./usr/share/fish/vendor_completions.d/cnet.fish",
    ] {
        assert!(
            contents.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} is not in the package:\n{contents}"
        );
    }
    assert!(contents.lines().all(|l| l.contains(" root/root ")), "files not owned by root:\n{contents}");
    let fields = run("dpkg-deb -f", Command::new("dpkg-deb").args(["-f", deb, "Package", "Version", "Depends"]));
    assert!(fields.contains("Package: cnet") && fields.contains("nftables"), "{fields}");
    assert!(fields.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))), "{fields}");

    let root = tempfile::Builder::new().prefix("cnet-deb-root-").tempdir().expect("temp dir");
    run("dpkg-deb -x", Command::new("dpkg-deb").arg("-x").arg(deb).arg(root.path()));
    for (bin, name) in [("usr/bin/cnet", "cnet"), ("usr/sbin/cnetd", "cnetd")] {
        let version = run(bin, Command::new(root.path().join(bin)).arg("--version"));
        assert_eq!(version.trim(), format!("{name} {}", env!("CARGO_PKG_VERSION")));
    }
    let unit = root.path().join("lib/systemd/system/cnetd.service");
    // verify --root looks for the units the unit depends on (sysinit.target…) under the root too:
    // the host's system units stand in for those of the machine the package is installed on.
    let systemd = root.path().join("usr/lib/systemd");
    std::fs::create_dir_all(&systemd).expect("create usr/lib/systemd");
    run("copying the host's units", Command::new("cp").arg("-a").arg("/usr/lib/systemd/system").arg(&systemd));
    let mut verify = Command::new("systemd-analyze");
    verify.arg("verify").arg("--man=no").arg(format!("--root={}", root.path().display())).arg(&unit);
    let out = verify.output().expect("run systemd-analyze (Debian's systemd package)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{}", describe_output("systemd-analyze verify", &out));
    let bash = std::fs::read_to_string(root.path().join("usr/share/bash-completion/completions/cnet")).unwrap();
    assert!(bash.contains("_cnet") && bash.contains("lab"), "the bash completion does not know `cnet lab`");
}
