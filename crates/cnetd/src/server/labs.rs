//! The gRPC face of labs over several hosts: `LabService`, over the cluster store's lab records
//! (the agent in [`crate::labs`] acts on them).

use cnet_api::v1 as pb;
use cnet_cluster::labs::{ACTION_APPLY, ACTION_DESTROY, LabRecord, LabReport};
use cnet_core::Error;
use tonic::{Request, Response, Status};

use super::{Api, status};

fn state(record: LabRecord, reports: Vec<LabReport>) -> pb::LabState {
    pb::LabState {
        name: record.name,
        generation: record.generation,
        action: record.action,
        file: record.file,
        base_dir: record.base_dir,
        placement: record.placement.into_iter().collect(),
        hosts: record.hosts,
        reports: reports
            .into_iter()
            .map(|r| pb::LabReport {
                host: r.host,
                generation: r.generation,
                ok: r.ok,
                message: r.message,
                nodes_json: r.nodes_json,
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl pb::lab_service_server::LabService for Api {
    async fn publish_lab(&self, req: Request<pb::PublishLabRequest>) -> Result<Response<pb::LabState>, Status> {
        let cluster = self.cluster()?;
        let req = req.into_inner();
        if req.name.is_empty() || req.name.contains('/') {
            return Err(status(Error::invalid(format!("invalid lab name {:?}", req.name))));
        }
        if req.action != ACTION_APPLY && req.action != ACTION_DESTROY {
            return Err(status(Error::invalid(format!(
                "invalid lab action {:?}: expected {ACTION_APPLY} or {ACTION_DESTROY}",
                req.action
            ))));
        }
        if let Some((node, host)) = req.placement.iter().find(|(_, h)| h.is_empty() || h.contains('/')) {
            return Err(status(Error::invalid(format!("node {node}: invalid host {host:?}"))));
        }
        let record = LabRecord {
            name: req.name,
            generation: 0,
            action: req.action,
            file: req.file,
            base_dir: req.base_dir,
            placement: req.placement.into_iter().collect(),
            hosts: vec![],
        };
        let stored = cluster.publish_lab(record).await.map_err(status)?;
        Ok(Response::new(state(stored, vec![])))
    }

    async fn get_lab(&self, req: Request<pb::LabRef>) -> Result<Response<pb::LabState>, Status> {
        let cluster = self.cluster()?;
        let name = req.into_inner().name;
        let record = cluster
            .lab(&name)
            .await
            .map_err(status)?
            .ok_or_else(|| Status::not_found(format!("no lab named {name} is stored in the cluster")))?;
        let mut reports = cluster.lab_reports(&name).await.map_err(status)?;
        reports.sort_by(|a, b| a.host.cmp(&b.host));
        Ok(Response::new(state(record, reports)))
    }

    async fn forget_lab(&self, req: Request<pb::LabRef>) -> Result<Response<pb::ForgetLabResponse>, Status> {
        let cluster = self.cluster()?;
        cluster.forget_lab(&req.into_inner().name).await.map_err(status)?;
        Ok(Response::new(pb::ForgetLabResponse {}))
    }
}
