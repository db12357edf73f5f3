//! cnet-kernel
