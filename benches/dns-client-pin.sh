# shellcheck shell=bash
# Sourced by benches/dns-tail.sh and benches/peers.sh. With DNS_CLIENT_CPU=N set, every
# `nsenter ... dnsperf ... -Q RATE ...` these scripts (and the peer benches they run) start runs
# pinned to CPU N; nothing else is pinned, the DNS servers least of all. It is an exported shell
# function, so it reaches ../shared/peers/bench-dns.sh unchanged (its lib.sh puts /usr/bin first
# in PATH, where a wrapper program could not).
#
# Why pin the client: dnsperf sends from one thread and receives on another. On this machine's two
# vCPUs, halted when idle, a reply then often wakes a thread on the other vCPU, an IPI through the
# hypervisor that takes 0.2-0.7 ms now and then: a tail of the client's making, which dns-echo (the
# least a UDP server can do) shows as much as any resolver. A program's own lookups (libc's
# resolver) send and receive on one thread. Saturation runs (no -Q) are left unpinned: there the
# client needs both CPUs.
#
# A call put in the background (`nsenter ... &`) runs the function in a subshell, and `$!` is
# that subshell, not the program: start background programs with `command nsenter` instead.
if [ -n "${DNS_CLIENT_CPU:-}" ]; then
    nsenter() {
        if [[ " $* " == *" dnsperf "* && " $* " == *" -Q "* ]]; then
            taskset -c "$DNS_CLIENT_CPU" /usr/bin/nsenter "$@"
        else
            /usr/bin/nsenter "$@"
        fi
    }
    export -f nsenter
    export DNS_CLIENT_CPU
fi
