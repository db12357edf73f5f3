//! The gRPC face of the event bus: `EventService` (`cnet events`, and the runtime's container
//! events).

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cnet_api::v1 as pb;
use cnet_core::events::{CONTAINER_ACTIONS, EventFilter, EventKind};
use futures::Stream;
use tonic::{Request, Response, Status};

use super::{Api, status};
use crate::events::{Event, Next, Subscription};

/// Bounds on what a publisher may attach to an event, so one cannot bloat the ring.
const MAX_ATTRIBUTES: usize = 32;
const MAX_ATTRIBUTE_LEN: usize = 1024;

impl From<&Event> for pb::Event {
    fn from(e: &Event) -> pb::Event {
        pb::Event {
            r#type: e.kind.to_string(),
            action: e.action.clone(),
            actor: Some(pb::EventActor {
                id: e.actor.clone(),
                attributes: e.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            }),
            scope: "local".into(),
            time: e.time_nano.div_euclid(1_000_000_000),
            time_nano: e.time_nano,
        }
    }
}

/// Checks an event the runtime publishes: a container's, with a known action and a full id.
fn published_event(m: pb::Event) -> Result<Event, Status> {
    let kind: EventKind = m.r#type.parse().map_err(status)?;
    if kind != EventKind::Container {
        return Err(Status::invalid_argument(format!(
            "only container events can be published, not {kind} events: cnetd reports its own"
        )));
    }
    if !CONTAINER_ACTIONS.contains(&m.action.as_str()) {
        return Err(Status::invalid_argument(format!(
            "invalid container event action {:?}: expected one of {}",
            m.action,
            CONTAINER_ACTIONS.join(", ")
        )));
    }
    let actor = m.actor.unwrap_or_default();
    if actor.id.len() != 64 || !actor.id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Status::invalid_argument(format!("invalid container id {:?}: expected 64 hex digits", actor.id)));
    }
    if actor.attributes.len() > MAX_ATTRIBUTES
        || actor.attributes.iter().any(|(k, v)| k.len() + v.len() > MAX_ATTRIBUTE_LEN)
    {
        return Err(Status::invalid_argument(format!(
            "too many or too long attributes: at most {MAX_ATTRIBUTES}, each at most {MAX_ATTRIBUTE_LEN} bytes"
        )));
    }
    let mut event = Event::new(kind, &m.action, actor.id);
    event.attributes = actor.attributes.into_iter().collect();
    Ok(event)
}

/// One subscriber's stream: its replay, then live events, filtered, until its end.
struct Feed {
    replay: std::vec::IntoIter<Arc<Event>>,
    live: Subscription,
    filter: EventFilter,
    /// `until` as a time (events after it end the stream) and as the moment to stop waiting.
    until: Option<(i64, tokio::time::Instant)>,
    done: bool,
}

impl Feed {
    fn past_end(&self, e: &Event) -> bool {
        self.until.is_some_and(|(until, _)| e.time_nano > until)
    }

    async fn next(&mut self) -> Option<Result<pb::Event, Status>> {
        if self.done {
            return None;
        }
        while let Some(e) = self.replay.next() {
            if self.past_end(&e) {
                self.done = true;
                return None;
            }
            if self.filter.matches(e.kind, &e.action) {
                return Some(Ok(pb::Event::from(&*e)));
            }
        }
        loop {
            let next = match self.until {
                Some((_, deadline)) => match tokio::time::timeout_at(deadline, self.live.next_live()).await {
                    Ok(next) => next,
                    Err(_) => Next::Closed,
                },
                None => self.live.next_live().await,
            };
            match next {
                Next::Event(e) if self.past_end(&e) => break,
                Next::Event(e) if self.filter.matches(e.kind, &e.action) => return Some(Ok(pb::Event::from(&*e))),
                Next::Event(_) => {}
                Next::Lagged(n) => {
                    self.done = true;
                    tracing::warn!(missed = n, "an events subscriber fell behind: ending its stream");
                    return Some(Err(Status::resource_exhausted(format!(
                        "this subscriber read too slowly and missed {n} events: subscribe again with --since \
                         the time of the last event received"
                    ))));
                }
                Next::Closed if self.until.is_some_and(|(_, d)| tokio::time::Instant::now() >= d) => break,
                Next::Closed => {
                    self.done = true;
                    return Some(Err(Status::unavailable("cnetd is shutting down")));
                }
            }
        }
        self.done = true;
        None
    }
}

/// Unix nanoseconds as a moment of tokio's clock (now, for a time already past).
fn deadline_of(until_nano: i64) -> tokio::time::Instant {
    let until = UNIX_EPOCH + Duration::from_nanos(until_nano.max(0) as u64);
    tokio::time::Instant::now() + until.duration_since(SystemTime::now()).unwrap_or_default()
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl pb::event_service_server::EventService for Api {
    type SubscribeStream = EventStream;

    async fn subscribe(&self, req: Request<pb::SubscribeRequest>) -> Result<Response<EventStream>, Status> {
        let r = req.into_inner();
        let filter = EventFilter::parse(&r.filters).map_err(status)?;
        if r.since_nano < 0 || r.until_nano < 0 {
            return Err(Status::invalid_argument("since and until are unix times: they cannot be negative"));
        }
        let until = (r.until_nano > 0).then(|| (r.until_nano, deadline_of(r.until_nano)));
        // Docker's `--until` alone replays everything held up to it.
        let since = match (r.since_nano, until) {
            (0, None) => None,
            (since, _) => Some(since),
        };
        let mut live = self.ctl.events().subscribe(since);
        let replay = std::mem::take(&mut live.replay).into_iter();
        let feed = Feed { replay, live, filter, until, done: false };
        let stream =
            futures::stream::unfold(feed, |mut feed| async move { feed.next().await.map(|item| (item, feed)) });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn publish(&self, req: Request<pb::Event>) -> Result<Response<pb::PublishResponse>, Status> {
        let event = published_event(req.into_inner())?;
        self.ctl.events().publish(event);
        Ok(Response::new(pb::PublishResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container_event(kind: &str, action: &str, id: &str) -> pb::Event {
        pb::Event {
            r#type: kind.into(),
            action: action.into(),
            actor: Some(pb::EventActor {
                id: id.into(),
                attributes: [("exitCode".to_string(), "137".to_string())].into_iter().collect(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_container_events_are_published() {
        let id = "ab".repeat(32);
        let e = published_event(container_event("container", "die", &id)).unwrap();
        assert_eq!((e.kind, e.action.as_str()), (EventKind::Container, "die"));
        assert_eq!(e.attributes["exitCode"], "137");
        let refused = |m: pb::Event| published_event(m).unwrap_err().message().to_string();
        assert!(refused(container_event("network", "create", &id)).contains("only container events"));
        assert!(refused(container_event("container", "explode", &id)).contains("explode"));
        assert!(refused(container_event("container", "die", "abc")).contains("\"abc\""));
        assert!(refused(container_event("volume", "die", &id)).contains("volume"));
    }

    #[test]
    fn messages_carry_seconds_and_nanoseconds() {
        let mut e = Event::new(EventKind::Network, "create", "n1").with("name", "lan");
        e.time_nano = 1_700_000_000_123_456_789;
        let m = pb::Event::from(&e);
        assert_eq!((m.time, m.time_nano), (1_700_000_000, 1_700_000_000_123_456_789));
        assert_eq!((m.r#type.as_str(), m.scope.as_str()), ("network", "local"));
        assert_eq!(m.actor.unwrap().attributes["name"], "lan");
    }
}
