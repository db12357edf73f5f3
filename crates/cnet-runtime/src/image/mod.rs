//! Images without a registry: the built-in busybox image and imported tarballs.
