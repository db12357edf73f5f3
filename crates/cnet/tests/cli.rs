//! Runs the `cnet` binary against an in-process fake cnetd on a temporary unix socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use cnet_api::v1::network_service_server::{NetworkService, NetworkServiceServer};
use cnet_api::v1::system_service_server::{SystemService, SystemServiceServer};
use cnet_api::v1::*;
use tonic::{Request, Response, Status};

#[derive(Default)]
struct State {
    networks: Vec<Network>,
    last_filters: Vec<String>,
    next_id: u8,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

fn builtin(name: &str, driver: &str, fill: char) -> Network {
    Network {
        id: fill.to_string().repeat(64),
        name: name.into(),
        driver: driver.into(),
        scope: "local".into(),
        builtin: true,
        ..Default::default()
    }
}

impl Fake {
    fn new() -> Self {
        let fake = Self::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.networks =
                vec![builtin("bridge", "bridge", 'a'), builtin("host", "host", 'b'), builtin("none", "null", 'c')];
            let mut busy = builtin("busy", "bridge", 'd');
            busy.builtin = false;
            busy.endpoints = vec![EndpointSummary {
                endpoint_id: "e".repeat(64),
                sandbox_id: "f".repeat(64),
                name: "web".into(),
                ..Default::default()
            }];
            s.networks.push(busy);
        }
        fake
    }

    fn find(s: &State, r: &str) -> Option<usize> {
        s.networks.iter().position(|n| n.name == r || n.id == r || (r.len() >= 3 && n.id.starts_with(r)))
    }
}

#[tonic::async_trait]
impl NetworkService for Fake {
    async fn create_network(&self, request: Request<CreateNetworkRequest>) -> Result<Response<Network>, Status> {
        let r = request.into_inner();
        let mut s = self.0.lock().unwrap();
        if s.networks.iter().any(|n| n.name == r.name) {
            return Err(Status::already_exists(format!("network with name {} already exists", r.name)));
        }
        s.next_id += 1;
        let n = Network {
            id: format!("{:064x}", s.next_id),
            name: r.name,
            driver: r.driver,
            scope: "local".into(),
            ipam: r.ipam,
            options: r.options,
            labels: r.labels,
            internal: r.internal,
            attachable: r.attachable,
            enable_ipv6: r.enable_ipv6,
            created: "2025-01-01T00:00:00Z".into(),
            ..Default::default()
        };
        s.networks.push(n.clone());
        Ok(Response::new(n))
    }

    async fn list_networks(
        &self,
        request: Request<ListNetworksRequest>,
    ) -> Result<Response<ListNetworksResponse>, Status> {
        let filters = request.into_inner().filters;
        let mut s = self.0.lock().unwrap();
        s.last_filters = filters.clone();
        let mut networks = s.networks.clone();
        for f in &filters {
            match f.split_once('=') {
                Some(("driver", d)) => networks.retain(|n| n.driver == d),
                Some(("name", d)) => networks.retain(|n| n.name.contains(d)),
                _ => return Err(Status::invalid_argument(format!("invalid filter '{f}'"))),
            }
        }
        Ok(Response::new(ListNetworksResponse { networks }))
    }

    async fn inspect_network(&self, request: Request<NetworkRef>) -> Result<Response<Network>, Status> {
        let r = request.into_inner().network;
        let s = self.0.lock().unwrap();
        match Fake::find(&s, &r) {
            Some(i) => Ok(Response::new(s.networks[i].clone())),
            None => Err(Status::not_found(format!("network {r} not found"))),
        }
    }

    async fn remove_network(&self, request: Request<NetworkRef>) -> Result<Response<RemoveNetworkResponse>, Status> {
        let r = request.into_inner().network;
        let mut s = self.0.lock().unwrap();
        let i = Fake::find(&s, &r).ok_or_else(|| Status::not_found(format!("network {r} not found")))?;
        let n = &s.networks[i];
        if n.builtin {
            return Err(Status::failed_precondition(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        if !n.endpoints.is_empty() {
            return Err(Status::failed_precondition(format!(
                "error while removing network: network {} has active endpoints",
                n.name
            )));
        }
        let n = s.networks.remove(i);
        Ok(Response::new(RemoveNetworkResponse { id: n.id }))
    }

    async fn rotate_network_key(
        &self,
        request: Request<NetworkRef>,
    ) -> Result<Response<cnet_api::v1::RotateNetworkKeyResponse>, Status> {
        Err(Status::failed_precondition(format!(
            "network {} is not an encrypted overlay network: it has no key to rotate",
            request.into_inner().network
        )))
    }

    async fn prune_networks(
        &self,
        _request: Request<PruneNetworksRequest>,
    ) -> Result<Response<PruneNetworksResponse>, Status> {
        let mut s = self.0.lock().unwrap();
        let mut removed = Vec::new();
        s.networks.retain(|n| {
            let keep = n.builtin || !n.endpoints.is_empty();
            if !keep {
                removed.push(n.name.clone());
            }
            keep
        });
        Ok(Response::new(PruneNetworksResponse { removed }))
    }
}

#[tonic::async_trait]
impl SystemService for Fake {
    async fn info(&self, _request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let s = self.0.lock().unwrap();
        Ok(Response::new(InfoResponse {
            version: "9.9.9".into(),
            api_version: "1.2".into(),
            state_dir: "/var/lib/cnet".into(),
            run_dir: "/run/cnet".into(),
            networks: s.networks.len() as u32,
            sandboxes: 1,
            endpoints: 1,
            pid: 42,
            pending_link_deletions: 0,
            pending_firewall_changes: 0,
            cluster: Some(ClusterInfo {
                store: "etcd://192.0.2.100:2379".into(),
                node: "host1".into(),
                advertise: "192.0.2.1".into(),
                connected: true,
                ttl_seconds: 30,
            }),
        }))
    }

    async fn list_nodes(&self, _request: Request<ListNodesRequest>) -> Result<Response<ListNodesResponse>, Status> {
        let node = |name: &str, address: &str, state: &str, endpoints: u32, me: bool| Node {
            name: name.into(),
            address: address.into(),
            state: state.into(),
            endpoints,
            joined: String::new(),
            self_: me,
        };
        Ok(Response::new(ListNodesResponse {
            nodes: vec![node("host1", "192.0.2.1", "ready", 3, true), node("host2", "192.0.2.2", "down", 0, false)],
        }))
    }
}

/// A fake daemon serving on a socket in a temporary directory until dropped.
struct Daemon {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    fake: Fake,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("cnetd.sock");
        let fake = Fake::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (sock, svc) = (socket.clone(), fake.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::bind(&sock).unwrap();
                ready_tx.send(()).unwrap();
                tonic::transport::Server::builder()
                    .add_service(NetworkServiceServer::new(svc.clone()))
                    .add_service(SystemServiceServer::new(svc))
                    .serve_with_incoming_shutdown(tokio_stream::wrappers::UnixListenerStream::new(listener), async {
                        let _ = rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        ready_rx.recv().unwrap();
        Self { _dir: dir, socket, fake, shutdown: Some(tx), thread: Some(thread) }
    }

    fn cnet(&self, args: &[&str]) -> Output {
        cnet_at(&self.socket, args)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn cnet_at(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnet"))
        .arg("-H")
        .arg(socket)
        .args(args)
        .env_remove("CNET_SOCKET")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn create_then_list_and_filter() {
    let d = Daemon::start();
    let o =
        d.cnet(&["network", "create", "--subnet", "10.5.0.0/16", "--gateway", "10.5.0.1", "--label", "env=dev", "app"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("{:064x}\n", 1));
    {
        let s = d.fake.0.lock().unwrap();
        let n = s.networks.iter().find(|n| n.name == "app").unwrap();
        let c = &n.ipam.as_ref().unwrap().config[0];
        assert_eq!((c.subnet.as_str(), c.gateway.as_str()), ("10.5.0.0/16", "10.5.0.1"));
        assert_eq!(n.labels, HashMap::from([("env".into(), "dev".into())]));
        assert_eq!(n.driver, "bridge");
    }

    // The shorthand.
    let o = d.cnet(&["create", "-d", "bridge", "app2"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let o = d.cnet(&["network", "ls"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = "\
NETWORK ID     NAME      DRIVER    SCOPE
000000000000   app       bridge    local
000000000000   app2      bridge    local
aaaaaaaaaaaa   bridge    bridge    local
dddddddddddd   busy      bridge    local
bbbbbbbbbbbb   host      host      local
cccccccccccc   none      null      local
";
    assert_eq!(stdout(&o), expected);

    let o = d.cnet(&["network", "list", "-q", "--no-trunc", "-f", "driver=host"]);
    assert_eq!(stdout(&o), format!("{}\n", "b".repeat(64)));
    assert_eq!(d.fake.0.lock().unwrap().last_filters, ["driver=host"]);

    let o = d.cnet(&["network", "ls", "-f", "color=red"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Error response from daemon: invalid filter 'color=red'\n");
}

#[test]
fn daemon_errors_are_reported() {
    let d = Daemon::start();
    let o = d.cnet(&["create", "bridge"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Error response from daemon: network with name bridge already exists\n");
}

#[test]
fn inspect_prints_found_and_reports_missing() {
    let d = Daemon::start();
    let o = d.cnet(&["network", "inspect", "busy", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "Error: No such network: nope\n");
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 1);
    assert_eq!(arr[0]["Name"], "busy");
    assert_eq!(arr[0]["Containers"]["f".repeat(64)]["Name"], "web");

    let o = d.cnet(&["network", "inspect", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "[]\n");

    let o = d.cnet(&["network", "inspect", "bridge", "aaaa"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
}

#[test]
fn rm_reports_each_failure() {
    let d = Daemon::start();
    assert!(d.cnet(&["create", "x1"]).status.success());
    assert!(d.cnet(&["create", "x2"]).status.success());
    let o = d.cnet(&["network", "rm", "x1", "busy", "nope", "x2"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "x1\nx2\n");
    assert_eq!(
        stderr(&o),
        "Error response from daemon: error while removing network: network busy has active endpoints\n\
         Error response from daemon: network nope not found\n"
    );
    let o = d.cnet(&["network", "remove", "-f", "nope"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}

#[test]
fn prune_needs_force_without_terminal() {
    let d = Daemon::start();
    assert!(d.cnet(&["create", "x1"]).status.success());
    let o = d.cnet(&["network", "prune"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("-f/--force"), "{}", stderr(&o));
    assert!(d.fake.0.lock().unwrap().networks.iter().any(|n| n.name == "x1"));

    let o = d.cnet(&["network", "prune", "-f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Deleted Networks:\nx1\n");
    let o = d.cnet(&["network", "prune", "--force"]);
    assert_eq!(stdout(&o), "");
}

#[test]
fn info_lines() {
    let d = Daemon::start();
    let o = d.cnet(&["info"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Server Version: 9.9.9\n"), "{out}");
    assert!(out.contains("Networks: 4\n"), "{out}");
    assert!(out.contains(&format!("Socket: {}\n", d.socket.display())), "{out}");
    assert!(out.contains("Cluster Store: etcd://192.0.2.100:2379\n"), "{out}");
    assert!(out.contains("Node Name: host1\n"), "{out}");
}

#[test]
fn node_ls() {
    let d = Daemon::start();
    let o = d.cnet(&["node", "ls"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<Vec<String>> = stdout(&o).lines().map(|l| l.split_whitespace().map(String::from).collect()).collect();
    assert_eq!(rows[0], ["NAME", "ADDRESS", "STATE", "ENDPOINTS"]);
    assert_eq!(rows[1], ["host1", "*", "192.0.2.1", "ready", "3"]);
    assert_eq!(rows[2], ["host2", "192.0.2.2", "down", "0"]);
    let o = d.cnet(&["node", "ls", "-q"]);
    assert_eq!(stdout(&o), "host1\nhost2\n");
}

#[test]
fn no_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.sock");
    // A stale socket file nobody listens on.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    for socket in [&missing, &stale] {
        for args in [&["network", "ls"][..], &["info"], &["network", "rm", "x"]] {
            let o = cnet_at(socket, args);
            assert_eq!(o.status.code(), Some(1), "{args:?}");
            let err = stderr(&o);
            assert!(
                err.starts_with(&format!(
                    "Cannot connect to cnetd at {}: is the daemon running? \
                     Start it as root with: cnetd &",
                    socket.display()
                )),
                "{err}"
            );
            assert!(err.contains("CNET_SOCKET") && err.contains("-H"), "{err}");
        }
    }
    // The environment variable selects the socket too.
    let o = Command::new(env!("CARGO_BIN_EXE_cnet")).arg("info").env("CNET_SOCKET", &missing).output().unwrap();
    assert!(stderr(&o).contains(&missing.display().to_string()));
}

#[test]
fn flag_errors_need_no_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("missing.sock");
    let o = cnet_at(&socket, &["network", "create", "--gateway", "10.0.0.1", "n"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot specify gateway 10.0.0.1 without subnet"), "{}", stderr(&o));
    // A bare `-o key` is Docker's empty-valued option, judged by the driver; an empty key is a flag error.
    let o = cnet_at(&socket, &["create", "-o", "=oops", "n"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("=oops"), "{}", stderr(&o));
}
