//! The gRPC face of link state: `LinkService` (`cnet link set`, `cnet link ls`).

use cnet_api::v1 as pb;
use cnet_core::shaping::Shaping;
use tonic::{Request, Response, Status};

use super::{Api, status};
use crate::controller::{LinkEndView, LinkRequest};

impl From<&LinkEndView> for pb::LinkEnd {
    fn from(v: &LinkEndView) -> pb::LinkEnd {
        let s = v.status.as_ref();
        pb::LinkEnd {
            container: if v.sandbox.name.is_empty() {
                v.sandbox.id.short().to_string()
            } else {
                v.sandbox.name.clone()
            },
            container_id: v.sandbox.id.to_string(),
            interface: v.endpoint.ifname.clone(),
            endpoint_id: v.endpoint.id.to_string(),
            admin_up: s.is_some_and(|s| s.up),
            carrier: s.is_some_and(|s| s.carrier),
            operstate: s.map(|s| s.operstate.clone()).unwrap_or_else(|| "unknown".into()),
            mtu: s.map(|s| s.mtu).unwrap_or_default(),
            shaping: Some(pb::LinkShaping::from(&v.endpoint.link.shaping)),
        }
    }
}

#[tonic::async_trait]
impl pb::link_service_server::LinkService for Api {
    async fn set_link(&self, req: Request<pb::SetLinkRequest>) -> Result<Response<pb::LinkEnd>, Status> {
        let r = req.into_inner();
        let up = match pb::AdminState::try_from(r.state) {
            Ok(pb::AdminState::Unchanged) => None,
            Ok(pb::AdminState::Up) => Some(true),
            Ok(pb::AdminState::Down) => Some(false),
            Err(_) => return Err(Status::invalid_argument(format!("invalid admin state {}", r.state))),
        };
        let shaping = r.shaping.as_ref().map(Shaping::try_from).transpose().map_err(status)?;
        let view = self
            .ctl
            .set_link(LinkRequest {
                container: r.container,
                interface: r.interface,
                up,
                mtu: Some(r.mtu).filter(|m| *m != 0),
                shaping,
            })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LinkEnd::from(&view)))
    }

    async fn list_links(&self, req: Request<pb::ListLinksRequest>) -> Result<Response<pb::ListLinksResponse>, Status> {
        let links = self
            .ctl
            .list_links(&req.into_inner().label)
            .await
            .iter()
            .map(|l| pb::Link {
                network: l.network.name.clone(),
                network_id: l.network.id.to_string(),
                labels: l.network.labels.clone().into_iter().collect(),
                ends: l.ends.iter().map(pb::LinkEnd::from).collect(),
            })
            .collect();
        Ok(Response::new(pb::ListLinksResponse { links }))
    }
}
