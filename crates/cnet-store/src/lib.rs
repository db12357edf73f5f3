//! cnet-store
