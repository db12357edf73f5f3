//! The `none` driver: a container on the `none` network has a namespace of its own with only `lo`
//! up (the sandbox makes that): no interface, no address, no rules. Its one network is built in.

use cnet_core::{Capabilities, Driver, Scope};

pub struct NoneDriver;

#[async_trait::async_trait]
impl Driver for NoneDriver {
    fn name(&self) -> &'static str {
        "none"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Local,
            needs_ipam: false,
            needs_sandbox_netns: true,
            user_creatable: false,
            interface_goes_with_endpoint: false,
        }
    }
}
