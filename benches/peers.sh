#!/usr/bin/env bash
# Puts cnet beside Docker and Podman in one run of the peer benchmarks (../shared/peers).
# Starts a release cnetd on this host with its own state under $CNET_BENCH_DIR, runs the chosen
# peer benches for the chosen engines, then removes everything cnet made (containers, networks,
# the cnet0 bridge, the nft table, namespace files).
#
#   cargo build --release --bins
#   PEERS_OUT=/tmp/peers-out bash ../shared/peers/setup.sh          # once: docker, podman, tools
#   BENCHES="run" bash benches/peers.sh "cnet podman docker"
#
# DNS_CLIENT_CPU=N pins dnsperf's fixed-rate runs (-Q) to CPU N for every engine alike (see
# benches/dns-client-pin.sh for why); unset, the peer benches run as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PEERS=${PEERS:-$REPO/../shared/peers}
export PEERS_OUT=${PEERS_OUT:-/tmp/peers-out}
export CNET_BENCH_DIR=${CNET_BENCH_DIR:-/tmp/cnet-peerbench}
export PEER_ENGINES=$REPO/benches/engines
ENGINES=${1:-"cnet podman docker"}
source "$REPO/benches/dns-client-pin.sh"

source "$REPO/benches/cnetd.sh"
trap bench_cnetd_stop EXIT
bench_cnetd_start "$CNET_BENCH_DIR" cnet
bash "$PEERS/run-all.sh" "$ENGINES"
