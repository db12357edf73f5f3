//! "The internet": a namespace with a web server, linked to a test host.

use std::time::{Duration, Instant};

use crate::{Bg, Ns, TestHost, fetch, link};

/// The upstream's address, on the veth to the host.
pub const UPSTREAM_ADDR: &str = "198.51.100.2";
/// The host's side of that veth (device `up0` in the host namespace).
pub const HOST_SIDE_ADDR: &str = "198.51.100.1";
/// The host-side device name.
pub const HOST_SIDE_IF: &str = "up0";
/// The file the upstream serves, and its content.
pub const FILE: &str = "hello.txt";
pub const BODY: &str = "hello from upstream 198.51.100.2\n";

/// A namespace linked to a test host (host side `up0` 198.51.100.1/24, upstream `eth0`
/// 198.51.100.2/24) running `busybox httpd` on :80 that serves [`FILE`] with [`BODY`].
///
/// It has no route to anything but 198.51.100.0/24, so a container that fetches the file proves
/// that cnet masqueraded it. More namespaces can be linked to [`Upstream::ns`] (e.g. a client on
/// 203.0.113.0/24).
pub struct Upstream {
    // Field order: the server dies before its namespace, the namespace before its directory.
    _httpd: Bg,
    ns: Ns,
    _www: tempfile::TempDir,
}

impl Upstream {
    /// Links a new upstream to `host` and waits until its web server answers.
    pub fn new(host: &TestHost) -> Upstream {
        Upstream::attached_to(host.ns())
    }

    /// The same, linked to any namespace (its side is named `up0`, 198.51.100.1/24).
    pub fn attached_to(host_ns: &Ns) -> Upstream {
        let ns = Ns::new();
        link(host_ns, HOST_SIDE_IF, &format!("{HOST_SIDE_ADDR}/24"), &ns, "eth0", &format!("{UPSTREAM_ADDR}/24"));
        let www = tempfile::Builder::new().prefix("cnet-upstream-").tempdir().expect("create the upstream's web root");
        std::fs::write(www.path().join(FILE), BODY).expect("write the upstream's file");
        let root = www.path().to_str().expect("utf-8 temp path").to_string();
        let mut httpd = ns.spawn("busybox", &["httpd", "-f", "-p", "0.0.0.0:80", "-h", &root]);
        let probe = fetch(&format!("http://{UPSTREAM_ADDR}/{FILE}"), 2);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            httpd.assert_running();
            let out = ns.run(&probe);
            if out.status.success() && out.stdout == BODY.as_bytes() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "the upstream's httpd does not serve {FILE} after 10 s: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Upstream { _httpd: httpd, ns, _www: www }
    }

    /// 198.51.100.2
    pub fn addr(&self) -> &str {
        UPSTREAM_ADDR
    }

    /// `http://198.51.100.2/hello.txt`
    pub fn url(&self) -> String {
        format!("http://{UPSTREAM_ADDR}/{FILE}")
    }

    /// The content served at [`Upstream::url`].
    pub fn body(&self) -> &'static str {
        BODY
    }

    pub fn ns(&self) -> &Ns {
        &self.ns
    }
}
