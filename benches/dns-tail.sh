#!/usr/bin/env bash
# The embedded DNS's latency at a fixed rate against the machine's floor, in one run: a release
# cnetd in a private state directory, containers dns-a and dns-b on a user network (and EXTRA more), and
# from dns-a's network namespace dnsperf at RATE qps for DUR seconds, alternately against cnetd's
# resolver (127.0.0.11, the name dns-b) and against dns-echo (127.0.0.12, the least a UDP server can
# do), ROUNDS times each. A tail both share is the machine's (its scheduler, its hypervisor), not
# the resolver's.
#
#   cargo build --release --bins
#   bash benches/dns-tail.sh [ROUNDS=3] [EXTRA=0] [RATE=10000] [DUR=10]
#
# DNS_CLIENT_CPU=N pins dnsperf to CPU N (benches/dns-client-pin.sh says why); unset, it runs unpinned.
set -euo pipefail
cd "$(dirname "$0")/.."
R=$PWD/target/release
source benches/dns-client-pin.sh
ROUNDS=${1:-3}; EXTRA=${2:-0}; RATE=${3:-10000}; DUR=${4:-10}
source benches/cnetd.sh
echo_pid=""
cleanup() {
    if [ -n "$echo_pid" ]; then kill "$echo_pid" 2>/dev/null || true; fi
    bench_cnetd_stop
}
trap cleanup EXIT
B=$(mktemp -d /tmp/cnet-dns-tail.XXXXXX)
bench_cnetd_start "$B" cnetdnstail
"$R/cnet" network create dnstail >/dev/null
"$R/cnet" run -d --name dns-a --network dnstail busybox sleep 100000 >/dev/null
"$R/cnet" run -d --name dns-b --network dnstail busybox sleep 100000 >/dev/null
for i in $(seq "$EXTRA"); do "$R/cnet" run -d --name "x$i" --network dnstail busybox sleep 100000 >/dev/null; done
P=$("$R/cnet" inspect dns-a | jq -r '.[0].State.Pid')
# `command`: past the pinning function of dns-client-pin.sh, so that $! is dns-echo itself.
command nsenter -t "$P" -n "$R/dns-echo" 127.0.0.12 &
echo_pid=$!
echo "dns-b A" > "$B/query"
sleep 2
summary() { python3 - "$1" <<'PY'
import re, sys
lat = sorted(float(m.group(1)) for m in re.finditer(r"^> \S+ .* ([0-9.]+)$", open(sys.argv[1]).read(), re.M))
if not lat:
    sys.exit("no per-query latency in dnsperf's output")
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6
print(f"n={len(lat)} p50={pick(.5):.0f}us p99={pick(.99):.0f}us p99.9={pick(.999):.0f}us max={lat[-1]*1e6:.0f}us")
PY
}
echo "# dns-tail $(date -u +%FT%TZ) rate=$RATE dur=${DUR}s containers=$((EXTRA + 2)) client on CPU ${DNS_CLIENT_CPU:-any}"
for round in $(seq "$ROUNDS"); do
    for target in "cnetd 127.0.0.11" "dns-echo 127.0.0.12"; do
        set -- $target
        nsenter -t "$P" -n dnsperf -s "$2" -d "$B/query" -l "$DUR" -Q "$RATE" -v > "$B/out" 2>&1
        printf '%-8s round %d: %s\n' "$1" "$round" "$(summary "$B/out")"
    done
done
