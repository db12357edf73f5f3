#!/usr/bin/env bash
# Puts cnet beside Docker and Podman in one run of the peer benchmarks (../shared/peers).
# Starts a release cnetd on this host with its own state under $CNET_BENCH_DIR, runs the chosen
# peer benches for the chosen engines, then removes everything cnet made (containers, networks,
# the cnet0 bridge, the nft table, namespace files).
#
#   cargo build --release --bins
#   PEERS_OUT=/tmp/peers-out bash ../shared/peers/setup.sh          # once: docker, podman, tools
#   BENCHES="run" bash benches/peers.sh "cnet podman docker"
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PEERS=${PEERS:-$REPO/../shared/peers}
export PEERS_OUT=${PEERS_OUT:-/tmp/peers-out}
export CNET_BENCH_DIR=${CNET_BENCH_DIR:-/tmp/cnet-peerbench}
export PEER_ENGINES=$REPO/benches/engines
ENGINES=${1:-"cnet podman docker"}

mkdir -p "$CNET_BENCH_DIR"/{run,state,runtime}
"$REPO/target/release/cnetd" --socket "$CNET_BENCH_DIR/run/cnetd.sock" --run-dir "$CNET_BENCH_DIR/run" \
    --state-dir "$CNET_BENCH_DIR/state" > "$CNET_BENCH_DIR/cnetd.log" 2>&1 &
CNETD=$!
cleanup() {
    local cli="$REPO/target/release/cnet -H $CNET_BENCH_DIR/run/cnetd.sock --root $CNET_BENCH_DIR/runtime"
    $cli rm -f $($cli ps -aq 2>/dev/null) >/dev/null 2>&1 || true
    $cli network prune -f >/dev/null 2>&1 || true
    kill "$CNETD" 2>/dev/null || true
    wait "$CNETD" 2>/dev/null || true
    # cnetd keeps network state when it stops (containers outlive it); a benchmark host wants none.
    ip link del cnet0 2>/dev/null || true
    nft delete table inet cnet 2>/dev/null || true
    for f in "$CNET_BENCH_DIR"/run/netns/*; do umount -l "$f" 2>/dev/null || true; done
    rm -rf "$CNET_BENCH_DIR"
}
trap cleanup EXIT
for _ in $(seq 50); do [ -S "$CNET_BENCH_DIR/run/cnetd.sock" ] && break; sleep 0.1; done
bash "$PEERS/run-all.sh" "$ENGINES"
