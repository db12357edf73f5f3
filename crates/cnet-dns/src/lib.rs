//! Embedded DNS, as Docker's 127.0.0.11: names of containers on user-defined networks answered from
//! a live record table, everything else forwarded to the host's upstream resolvers.
//!
//! - [`table`]: the records (names, aliases, `name.network`, reverse names) per network, and which
//!   networks each sandbox sees. Updated incrementally by the daemon on connect, disconnect and
//!   sandbox removal.
//! - [`server`]: per-sandbox listeners (UDP and TCP on 127.0.0.11:53 inside the sandbox's namespace,
//!   bound by the caller with [`bind`] on a thread in that namespace) and the forwarder.
//! - [`wire`]: the little of the DNS wire format the hot path needs.
//!
//! Why not hickory-server: its `Server` spawns a task and decodes a full `Message` per query and
//! logs every response at `info`, and one `Server` holds one handler, so per-sandbox scoping would
//! mean a `Server` per sandbox anyway. The hot path here is a recvfrom, a question parse into a stack
//! buffer, a read-locked hash lookup and a sendto, with no allocation; forwarding relays the raw
//! query (so EDNS, DNSSEC records and truncation pass through as the upstream made them), as
//! Docker's resolver does. hickory-proto is used in the tests to check the wire format.

pub mod server;
pub mod table;
pub mod wire;

pub use server::{FORWARD_BUDGET, Resolver, bind};
pub use table::EndpointRecord;
