//! The supervisor binary is linked as a fixed-address executable, not a PIE: a PIE's pointers to
//! its own data (vtables, string tables) are relocated at every start, which makes those pages
//! private and dirty in every process; one supervisor runs per container, so that was about
//! 120 KiB per container. Its code is position-independent all the same; only the addresses are
//! fixed at link time (ASLR still applies to its heap, stack and libraries).
fn main() {
    println!("cargo:rustc-link-arg-bin=cnet-supervise=-no-pie");
}
