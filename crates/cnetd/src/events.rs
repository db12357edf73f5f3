//! The event bus: what the controller (networks, endpoints, links, cluster nodes) and the runtime
//! (containers, through `Publish`) report, for `cnet events`.
//!
//! A publisher never waits: an event goes into a ring of the last [`RING`] events (the replay of
//! `--since`) and onto a `tokio::sync::broadcast` channel, whose receivers each keep their own
//! place. A subscriber that falls more than [`LIVE`] events behind is told so
//! ([`Next::Lagged`]), and the server ends its stream with an error rather than skip events
//! silently: the client knows what it missed and can subscribe again from its last event's time,
//! which the ring may still hold.
//!
//! Each event's time is stamped here, strictly greater than the one before, so the ring is in time
//! order and a time is a cursor: "at or after T" replays exactly what followed an event at T-1.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use cnet_core::events::EventKind;
use cnet_core::{Endpoint, Network, Sandbox};
use tokio::sync::broadcast;

/// How many past events are kept for `--since`.
pub const RING: usize = 1000;
/// How far a live subscriber may fall behind before its stream ends.
pub const LIVE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub action: String,
    /// `Actor.ID`: a network, container or endpoint id, a node's name.
    pub actor: String,
    pub attributes: BTreeMap<String, String>,
    /// Unix nanoseconds, set by [`EventBus::publish`].
    pub time_nano: i64,
}

impl Event {
    pub fn new(kind: EventKind, action: &str, actor: impl Into<String>) -> Event {
        Event { kind, action: action.to_string(), actor: actor.into(), attributes: BTreeMap::new(), time_nano: 0 }
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Event {
        self.attributes.insert(key.to_string(), value.into());
        self
    }

    /// A network's own event (create, destroy): Docker's attributes `name` and `type` (the driver).
    pub fn network(action: &str, network: &Network) -> Event {
        Event::new(EventKind::Network, action, network.id.to_string())
            .with("name", network.name.clone())
            .with("type", network.driver.clone())
    }

    /// An endpoint's connect or disconnect, a network event as in Docker, naming the container.
    pub fn endpoint(action: &str, network: &Network, sandbox: &Sandbox, endpoint: &Endpoint) -> Event {
        Event::network(action, network)
            .with("container", sandbox.id.to_string())
            .with("containerName", sandbox.name.clone())
            .with("endpoint", endpoint.id.to_string())
            .with("interface", endpoint.ifname.clone())
    }

    /// One end of a link set up, down, or given another MTU or shaping (`cnet link set`).
    pub fn link(action: &str, network: &Network, sandbox: &Sandbox, endpoint: &Endpoint) -> Event {
        let container = if sandbox.name.is_empty() { sandbox.id.short().to_string() } else { sandbox.name.clone() };
        let mut event = Event::new(EventKind::Link, action, endpoint.id.to_string())
            .with("name", format!("{container}:{}", endpoint.ifname))
            .with("container", sandbox.id.to_string())
            .with("interface", endpoint.ifname.clone())
            .with("network", network.name.clone())
            .with("state", if endpoint.link.down { "down" } else { "up" });
        if let Some(mtu) = endpoint.link.mtu {
            event = event.with("mtu", mtu.to_string());
        }
        if !endpoint.link.shaping.is_empty() {
            event = event.with("shaping", endpoint.link.shaping.to_string());
        }
        event
    }

    /// A cluster node coming up or going down.
    pub fn node(action: &str, node: &str) -> Event {
        Event::new(EventKind::Node, action, node).with("name", node)
    }
}

/// What a subscriber gets next.
#[derive(Debug)]
pub enum Next {
    Event(Arc<Event>),
    /// It fell this many events behind; they are lost to it.
    Lagged(u64),
    /// The bus was closed (cnetd is shutting down).
    Closed,
}

/// A subscription: the events held when it began (oldest first), then the live ones, with no
/// event missed or seen twice between the two.
pub struct Subscription {
    pub replay: Vec<Arc<Event>>,
    live: broadcast::Receiver<Arc<Event>>,
}

impl Subscription {
    pub async fn next_live(&mut self) -> Next {
        match self.live.recv().await {
            Ok(e) => Next::Event(e),
            Err(broadcast::error::RecvError::Lagged(n)) => Next::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Next::Closed,
        }
    }
}

pub struct EventBus {
    inner: Mutex<Inner>,
}

struct Inner {
    ring: VecDeque<Arc<Event>>,
    /// `None` once closed.
    tx: Option<broadcast::Sender<Arc<Event>>>,
    last_nano: i64,
}

impl Default for EventBus {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(LIVE);
        EventBus { inner: Mutex::new(Inner { ring: VecDeque::with_capacity(RING), tx: Some(tx), last_nano: 0 }) }
    }
}

fn now_nano() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl EventBus {
    /// Stamps the event with its time and hands it to every subscriber; never blocks.
    pub fn publish(&self, mut event: Event) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        event.time_nano = now_nano().max(inner.last_nano + 1);
        inner.last_nano = event.time_nano;
        tracing::debug!(kind = %event.kind, action = %event.action, actor = %event.actor, "event");
        let event = Arc::new(event);
        if inner.ring.len() == RING {
            inner.ring.pop_front();
        }
        inner.ring.push_back(event.clone());
        if let Some(tx) = &inner.tx {
            // An error only says nobody listens.
            let _ = tx.send(event);
        }
    }

    /// The held events at or after `since_nano` (none when `None`), then the live ones. Both are
    /// taken under one lock, so the live part starts exactly after the replayed part.
    pub fn subscribe(&self, since_nano: Option<i64>) -> Subscription {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let live = match &inner.tx {
            Some(tx) => tx.subscribe(),
            // Closed: a receiver whose sender is already gone.
            None => broadcast::channel(1).1,
        };
        let replay = match since_nano {
            Some(since) => inner.ring.iter().filter(|e| e.time_nano >= since).cloned().collect(),
            None => Vec::new(),
        };
        Subscription { replay, live }
    }

    /// Ends every subscription (after the events already sent): cnetd is shutting down, and a
    /// stream that never ends would hold the server open.
    pub fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).tx = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(action: &str) -> Event {
        Event::new(EventKind::Network, action, "n1")
    }

    #[tokio::test]
    async fn replay_then_live_without_gap_or_repeat() {
        let bus = EventBus::default();
        bus.publish(ev("create"));
        bus.publish(ev("connect"));
        let first = bus.subscribe(Some(0)).replay;
        assert_eq!(first.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["create", "connect"]);
        assert!(first[0].time_nano < first[1].time_nano, "times strictly increase");
        // Since the second event's time: the second only.
        let mut sub = bus.subscribe(Some(first[1].time_nano));
        assert_eq!(sub.replay.len(), 1);
        assert!(bus.subscribe(None).replay.is_empty());
        bus.publish(ev("disconnect"));
        match sub.next_live().await {
            Next::Event(e) => assert_eq!(e.action, "disconnect"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn the_ring_keeps_the_last_events_only() {
        let bus = EventBus::default();
        for i in 0..RING + 5 {
            bus.publish(ev(&format!("a{i}")));
        }
        let replay = bus.subscribe(Some(0)).replay;
        assert_eq!(replay.len(), RING);
        assert_eq!(replay[0].action, "a5");
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged_and_never_blocks_the_publisher() {
        let bus = EventBus::default();
        let mut sub = bus.subscribe(None);
        for _ in 0..LIVE + 10 {
            bus.publish(ev("create"));
        }
        assert!(matches!(sub.next_live().await, Next::Lagged(10)));
    }

    #[tokio::test]
    async fn closing_ends_subscriptions() {
        let bus = EventBus::default();
        let mut sub = bus.subscribe(None);
        bus.publish(ev("create"));
        bus.close();
        assert!(matches!(sub.next_live().await, Next::Event(_)));
        assert!(matches!(sub.next_live().await, Next::Closed));
        assert!(matches!(bus.subscribe(None).next_live().await, Next::Closed));
    }
}
