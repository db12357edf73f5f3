//! A stand-in for cnetd that serves only `SystemService.Info`, for the kit's self-tests of the
//! daemon lifecycle (start, Info probe, SIGTERM, SIGKILL, restart) independent of the real daemon.
//! Takes cnetd's `--socket`, `--run-dir` and `--state-dir`; exits 0 on SIGTERM, removing its socket.

use std::path::PathBuf;

use cnet_api::v1::system_service_server::{SystemService, SystemServiceServer};
use cnet_api::v1::{InfoRequest, InfoResponse, ListNodesRequest, ListNodesResponse};
use tokio::signal::unix::{SignalKind, signal};
use tonic::{Request, Response, Status};

struct Fake {
    run_dir: String,
    state_dir: String,
}

#[tonic::async_trait]
impl SystemService for Fake {
    async fn info(&self, _: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        Ok(Response::new(InfoResponse {
            version: "fake".into(),
            state_dir: self.state_dir.clone(),
            run_dir: self.run_dir.clone(),
            pid: std::process::id(),
            ..Default::default()
        }))
    }

    async fn list_nodes(&self, _: Request<ListNodesRequest>) -> Result<Response<ListNodesResponse>, Status> {
        Err(Status::failed_precondition("the fake daemon is not in a cluster"))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut socket = None;
    let mut run_dir = String::new();
    let mut state_dir = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--socket" => socket = Some(PathBuf::from(value)),
            "--run-dir" => run_dir = value,
            "--state-dir" => state_dir = value,
            other => panic!("unknown flag {other}"),
        }
    }
    let socket = socket.expect("--socket is required");
    let _ = std::fs::remove_file(&socket);
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind the socket");
    let incoming = futures::stream::unfold(listener, |l| async move {
        let next = l.accept().await.map(|(stream, _)| stream);
        Some((next, l))
    });
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    eprintln!("fake cnetd ready on {}", socket.display());
    tonic::transport::Server::builder()
        .add_service(SystemServiceServer::new(Fake { run_dir, state_dir }))
        .serve_with_incoming_shutdown(incoming, async move {
            term.recv().await;
        })
        .await
        .expect("serve");
    let _ = std::fs::remove_file(&socket);
    eprintln!("fake cnetd stopped");
}
