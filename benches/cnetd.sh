# shellcheck shell=bash
# A release cnetd of a benchmark script's own, sourced by benches/peers.sh and benches/dns-tail.sh.
# `bench_cnetd_start DIR TABLE` starts it with its run, state and runtime directories under DIR and
# its rules in `table inet TABLE`, points the CLI at it (CNET_SOCKET, CNET_ROOT) and waits for its
# socket. `bench_cnetd_stop` removes everything it made: containers, networks, the cnet0 bridge, the
# table, namespace files and DIR (cnetd keeps network state when it stops, since containers outlive
# it; a benchmark host wants none). Set `trap bench_cnetd_stop EXIT` before the start.
BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_CNETD_PID=""

bench_cnetd_start() {
    BENCH_CNETD_DIR=$1
    BENCH_CNETD_TABLE=$2
    export CNET_SOCKET=$1/run/cnetd.sock CNET_ROOT=$1/runtime
    mkdir -p "$1"/{run,state,runtime}
    "$BENCH_REPO/target/release/cnetd" --socket "$CNET_SOCKET" --run-dir "$1/run" --state-dir "$1/state" \
        --nft-table "$2" > "$1/cnetd.log" 2>&1 &
    BENCH_CNETD_PID=$!
    for _ in $(seq 50); do [ -S "$CNET_SOCKET" ] && break; sleep 0.1; done
}

bench_cnetd_stop() {
    [ -n "${BENCH_CNETD_DIR:-}" ] || return 0
    local cli=$BENCH_REPO/target/release/cnet
    # shellcheck disable=SC2046 # one argument per container id
    "$cli" rm -f $("$cli" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    "$cli" network prune -f >/dev/null 2>&1 || true
    if [ -n "$BENCH_CNETD_PID" ]; then
        kill "$BENCH_CNETD_PID" 2>/dev/null || true
        wait "$BENCH_CNETD_PID" 2>/dev/null || true
    fi
    ip link del cnet0 2>/dev/null || true
    nft delete table inet "$BENCH_CNETD_TABLE" 2>/dev/null || true
    for f in "$BENCH_CNETD_DIR"/run/netns/*; do umount -l "$f" 2>/dev/null || true; done
    # The tmpfs cnetd keeps them on when the run directory is on a disk.
    umount -l "$BENCH_CNETD_DIR/run/netns" 2>/dev/null || true
    rm -rf "$BENCH_CNETD_DIR"
}
