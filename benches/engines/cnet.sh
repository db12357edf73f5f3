# shellcheck shell=bash
# cnet as a third engine for ../shared/peers (see its lib.sh for the variables). Sourced by the
# peer scripts; benches/peers.sh starts the cnetd these settings point at, and stops it after.
CNET_BENCH_DIR=${CNET_BENCH_DIR:-/tmp/cnet-peerbench}
CNET_REPO=${CNET_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export CNET_SOCKET=$CNET_BENCH_DIR/run/cnetd.sock
export CNET_ROOT=$CNET_BENCH_DIR/runtime
E_CLI=$CNET_REPO/target/release/cnet
E_IMG=busybox
E_RUNFLAGS=""
E_DEFNET=bridge
E_RMFLAGS=""
E_PROCS='^(cnetd|cnet|cnet-supervise)$'
# `cnet inspect` has no Go templates; read its JSON instead.
e_pid() { "$E_CLI" inspect "$1" | jq -r '.[0].State.Pid'; }
e_ip() { "$E_CLI" inspect "$1" | jq -r ".[0].NetworkSettings.Networks[\"$2\"].IPAddress"; }
