//! cnet-firewall: the only crate that speaks nftables.
//!
//! It owns exactly one table, family `inet`, named `cnet` by default ([`DEFAULT_TABLE`]), and keeps in
//! it the outbound NAT, the isolation between networks, `internal` networks and ICC. It speaks to the
//! kernel only through the `nftables` crate (the `nft` binary with JSON), and every change is one
//! atomic nft transaction. Rule *rendering* ([`render`]) is pure and unit-tested against expected JSON;
//! rule *application* ([`Firewall`]) sends one rendered batch per call. It never lists, flushes or
//! edits another program's tables (it never even runs `nft list ruleset`), and it depends on no other
//! cnet crate. It listens to nf_tables' netlink notifications ([`TableWatch`]) to hear its table
//! deleted behind its back; it never changes anything that way.
//!
//! The table has a fixed set of base chains and rules; a network is nothing but elements of named
//! sets keyed by bridge name and subnet, so adding or removing one costs the same however many exist
//! (see [`render`] for the layout). It also guards cnet's VXLAN port: only the cluster's hosts may
//! send packets for cnet's VNIs ([`VxlanGuard`]).

mod error;
mod firewall;
pub mod render;
mod rules;
mod watch;

pub use error::{Error, Result};
pub use firewall::{Applied, Firewall};
pub use render::VXLAN_PORT;
pub use rules::{GatewayMode, MAX_VNI, NetworkRules, PortRule, Proto, VxlanGuard};
pub use watch::{TableEvent, TableWatch};

/// The table cnetd uses (`table inet cnet`); tests pass their own name to [`Firewall::new`].
pub const DEFAULT_TABLE: &str = "cnet";
