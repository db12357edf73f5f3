#!/usr/bin/env bash
# Fuzzes cnet's input paths for SECONDS each (default 60): property tests over random inputs
# (proptest; cargo-fuzz needs a nightly toolchain this machine kind does not have). Targets: the
# embedded DNS's request path (any bytes; any well-formed query), `-p`/`--expose` specs, the IPAM
# flags, and image archives. Prints cases run and execs/s per target; stops at the first failure,
# which proptest records under proptest-regressions/ so the normal test run replays it for good.
#
#   ./scripts/fuzz.sh 600      # the issue's goal: no failure in 10 minutes per target
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
targets=(
    "cnet-dns server::fuzz::fuzz_dns_any_bytes"
    "cnet-dns server::fuzz::fuzz_dns_any_query"
    "cnet-core portspec::fuzz::fuzz_port_specs"
    "cnet-core portspec::fuzz::fuzz_ipam_flags"
    "cnet-image tests::fuzz::fuzz_image_archives"
)
cargo test --release --no-run -q -p cnet-dns -p cnet-core -p cnet-image --lib
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for target in "${targets[@]}"; do
    read -r crate name <<<"$target"
    batch=1000 total=0
    start=$(date +%s.%N)
    deadline=$(($(date +%s) + secs))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        t0=$(date +%s.%N)
        if ! PROPTEST_CASES=$batch cargo test --release -q -p "$crate" --lib "$name" -- --exact >"$out" 2>&1; then
            echo "$name: FAILED after $total cases"
            cat "$out"
            exit 1
        fi
        total=$((total + batch))
        # Batches of a few seconds, so cargo's start-up is a small part of the time.
        if awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { exit !(t1 - t0 < 2) }'; then
            batch=$((batch * 2))
        fi
    done
    awk -v n="$name" -v total="$total" -v t0="$start" -v t1="$(date +%s.%N)" \
        'BEGIN { printf "%-45s %10d cases in %6.1f s: %9.0f execs/s, no failure\n", n, total, t1 - t0, total / (t1 - t0) }'
done
