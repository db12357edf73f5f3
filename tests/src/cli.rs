//! What a test reads back through the `cnet` CLI about containers and networks, and the check that
//! a container left nothing behind. Every lookup here fails the test when the lookup itself fails
//! (a CLI error, output that is not the expected JSON, an unreadable directory): an empty answer
//! must mean "nothing there", never "could not look".

use serde_json::Value;

use crate::{TestHost, block_on};

impl TestHost {
    /// `cnet inspect C`'s one object.
    pub fn inspect(&self, container: &str) -> Value {
        self.one_object(&["inspect", container])
    }

    /// `cnet network inspect NET`'s one object.
    pub fn network_inspect(&self, network: &str) -> Value {
        self.one_object(&["network", "inspect", network])
    }

    /// The one JSON object an `inspect` verb prints (as an array of one, as Docker does).
    fn one_object(&self, args: &[&str]) -> Value {
        let out = self.cnet_ok(args);
        let what = format!("cnet {}", args.join(" "));
        let json: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("`{what}` did not print JSON ({e}):\n{out}"));
        match json {
            Value::Array(mut items) if items.len() == 1 => items.remove(0),
            other => panic!("`{what}` did not print one object: {other:#}"),
        }
    }

    /// The container's address on its first network (`NetworkSettings.IPAddress`); panics if it
    /// has none.
    pub fn ip_of(&self, container: &str) -> String {
        let settings = &self.inspect(container)["NetworkSettings"];
        match settings["IPAddress"].as_str() {
            Some(ip) if !ip.is_empty() => ip.to_string(),
            _ => panic!("{container} has no IP address: {settings:#}"),
        }
    }

    /// The container directories of the runtime (`--root DIR/runtime`, `containers/`), which the
    /// runtime makes when it first opens its root; a directory that cannot be read fails the test.
    /// The container names the runtime has claimed (`<runtime>/names/NAME`), sorted.
    pub fn name_claims(&self) -> Vec<String> {
        let dir = self.runtime_dir().join("names");
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub fn container_dirs(&self) -> Vec<String> {
        let dir = self.runtime_dir().join("containers");
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The ids of the sandboxes cnetd holds.
    pub fn sandbox_ids(&self) -> Vec<String> {
        block_on(async { self.api().await.list_sandboxes().await }).into_iter().map(|s| s.id).collect()
    }

    /// The container ids in `cnet network inspect NET`'s `Containers` (which must be an object).
    pub fn network_containers(&self, network: &str) -> Vec<String> {
        let json = self.network_inspect(network);
        match json["Containers"].as_object() {
            Some(containers) => containers.keys().cloned().collect(),
            None => panic!("`network inspect {network}` has no Containers object: {json:#}"),
        }
    }

    /// Nothing of any container is left: no container directory, no sandbox (netns file), no
    /// endpoint on `network`, no host-side veth, no overlay mount of this host's runtime.
    pub fn assert_nothing_left(&self, network: &str) {
        assert_eq!(self.cnet_ok(&["ps", "-aq"]), "", "containers left");
        assert_eq!(self.container_dirs(), Vec::<String>::new(), "container directories left");
        assert_eq!(self.name_claims(), Vec::<String>::new(), "container names still claimed");
        assert_eq!(self.sandbox_ids(), Vec::<String>::new(), "sandboxes left");
        let netns: Vec<String> = self.netns_files().into_iter().filter(|f| f != "host").collect();
        assert_eq!(netns, Vec::<String>::new(), "netns files left (besides cnetd's own `host`)");
        assert_eq!(self.network_containers(network), Vec::<String>::new(), "endpoints (leases) left on {network}");
        assert_eq!(self.links_starting("veth"), Vec::<String>::new(), "veths left in the host namespace");
        // Only this test's runtime counts: the machine may have overlay mounts of its own (podman's
        // storage, say), which the test host's mount namespace inherits.
        let mounts = self.ns().run_ok("cat /proc/self/mountinfo");
        let runtime = self.runtime_dir().display().to_string();
        let ours: Vec<&str> = mounts.lines().filter(|l| l.contains("overlay") && l.contains(&runtime)).collect();
        assert!(ours.is_empty(), "overlay mounts of the runtime left on the host:\n{}", ours.join("\n"));
    }
}
