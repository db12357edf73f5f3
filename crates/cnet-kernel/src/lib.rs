//! cnet-kernel is the only crate of cnet that speaks to the kernel's networking stack: network
//! namespaces (created, bound at paths, entered on throwaway threads), links (bridges, veth pairs),
//! addresses, routes and sysctls, all over rtnetlink or `/proc/sys`; and what overlay networks add
//! to those: VXLAN links, their FDB entries (which VTEP a MAC address is behind) and permanent
//! neighbours (what their ARP/ND proxy answers), see [`VxlanSpec`]; and what p2p links add: a
//! veth end parked in the daemon's namespace and moved between it and sandboxes
//! ([`Kernel::create_veth_with_parked_peer`], [`Kernel::unpark_into`], [`Kernel::park`]); and
//! what `cnet link set` changes on one end: admin state and MTU, and the root qdisc (tbf, netem)
//! whose options it encodes itself ([`RootQdisc`]), netlink-packet-route modelling neither; and
//! what encrypted overlay networks add: WireGuard links and their peers, over WireGuard's generic
//! netlink family ([`WgConfig`]).
//!
//! What it must never do: shell out to `ip`, `bridge` or `sysctl` (tests may, to check results),
//! call `setns()` on a tokio worker or blocking-pool thread (those threads are reused, so every
//! namespace switch happens on a fresh `std::thread` that dies afterwards), dump every link to find
//! one by name, or depend on another cnet crate.
//!
//! [`Kernel`] is one reused netlink connection in the daemon's own namespace, with a [`Deleter`]
//! (a thread and a connection of its own) for the deletions nobody should wait for; [`NetnsHandle`] is
//! one in a sandbox's namespace; [`netns`] creates, binds and removes namespaces; [`set_sysctl`]
//! and friends write `/proc/sys` of the calling thread's namespace.

mod deleter;
mod error;
mod kernel;
mod link;
mod link_state;
mod macvlan;
pub mod netns;
mod nl;
mod p2p;
mod qdisc;
mod sandbox;
mod sysctl;
mod vxlan;
mod wireguard;

pub use deleter::{Busy, DOOMED_GROUP, Deleter};
pub use error::{Error, Result};
pub use kernel::Kernel;
pub use link::{InterfaceConfig, Link, format_mac, parse_mac, random_mac};
pub use link_state::LinkStatus;
pub use macvlan::{AliasedLink, MacVlanMode};
pub use qdisc::{Netem, RootQdisc, Tbf};
pub use sandbox::NetnsHandle;
pub use sysctl::{get_sysctl, set_interface_sysctl, set_sysctl};
pub use vxlan::VxlanSpec;
pub use wireguard::{WgConfig, WgKey, WgPeer};
