//! The `cnet` command-line client of cnetd. `main.rs` only parses and dispatches; every
//! command lives in a module here so that its request building and rendering can be tested
//! without a daemon.

pub mod capture;
pub mod cli;
pub mod client;
pub mod container;
pub mod context;
pub mod events;
pub mod format;
pub mod image;
pub mod lab;
pub mod link;
pub mod manual;
pub mod network;
pub mod output;
pub mod pull;
pub mod system;
