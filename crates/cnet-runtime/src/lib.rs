//! The minimal container runtime that fronts cnetd: images, root filesystems, namespaces, and a
//! supervisor process per container. It asks cnetd for a sandbox (network namespace) over gRPC and
//! never touches network state itself.

pub mod image;
