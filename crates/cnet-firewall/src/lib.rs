//! cnet-firewall
