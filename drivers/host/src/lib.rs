//! The `host` driver: a container on the `host` network shares the daemon's network namespace, so
//! there is nothing to make: no interface, no address, no rules. Its one network is built in.

use cnet_core::{Capabilities, Driver, Scope};

pub struct HostDriver;

#[async_trait::async_trait]
impl Driver for HostDriver {
    fn name(&self) -> &'static str {
        "host"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Local,
            needs_ipam: false,
            needs_sandbox_netns: false,
            user_creatable: false,
            interface_goes_with_endpoint: false,
        }
    }
}
