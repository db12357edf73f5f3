#!/usr/bin/env bash
# Throughput of an encrypted overlay network beside a plain one and the guests' underlay, in one
# run on a VM lab that is up (vm-lab.sh up): iperf3 (TCP, one stream, DURATION seconds, default 10)
# from a container on vm3 to one on vm2 over `-o encrypted` and over a plain overlay network, and
# from vm3 to vm2 directly. The guests are emulated (tcg): absolute figures mean little, the
# ratios are the result. Removes what it made. Same environment as vm-lab.sh (VM_LAB, ...).
set -euo pipefail
L=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/vm-lab.sh
DURATION=${1:-10}
NET=198.51.100

# bps N SERVER_NETNS_PID CLIENT_NETNS_PID ADDR: bits/s received by the server (iperf3 -J).
bps() {
    local srv=$1 cli=$2 addr=$3
    # The server's output goes nowhere: the guest's agent answers once every output is closed.
    "$L" exec vm2 "${srv:+nsenter -t $srv -n} iperf3 -s -1 -D </dev/null >/dev/null 2>&1"
    # -k: a client told to stop first tries to tell the server, which a stalled connection never
    # hears. A run that gives no figure is tried once more.
    local try out
    for try in 1 2; do
        out=$("$L" exec vm3 "sleep 1; timeout -k 5 $((DURATION + 30)) ${cli:+nsenter -t $cli -n} iperf3 -c $addr -t $DURATION -J" |
            awk -F'[:,]' '/"sum_received"/ { r = 1 } r && /"bits_per_second"/ { print $2 + 0; exit }') || true
        [ -z "$out" ] || break
        echo "no figure from iperf3 to $addr (try $try)" >&2
        "$L" exec vm2 "pkill -x iperf3; ${srv:+nsenter -t $srv -n} iperf3 -s -1 -D </dev/null >/dev/null 2>&1"
    done
    echo "${out:-0}"
}
pid() { "$L" exec "$1" cnet inspect -f "'{{.State.Pid}}'" "$2"; }
ip_on() { "$L" exec "$1" cnet inspect -f "'{{(index .NetworkSettings.Networks \"$3\").IPAddress}}'" "$2"; }

cleanup() {
    "$L" exec vm2 'pkill -x iperf3; true' || true
    for n in 2 3; do "$L" exec vm$n 'cnet rm -f tp-enc tp-plain >/dev/null 2>&1; true' || true; done
    "$L" exec vm1 'cnet network rm tp-enc tp-plain >/dev/null 2>&1; true' || true
}
cleanup
trap cleanup EXIT
declare -A rate
for net in tp-enc tp-plain; do
    opt=
    [ $net = tp-plain ] || opt="-o encrypted"
    "$L" exec vm1 cnet network create -d overlay $opt $net >/dev/null
    for n in 2 3; do "$L" exec vm$n cnet run -d --network $net --name $net busybox sleep 3600 >/dev/null; done
    rate[$net]=$(bps "$(pid vm2 $net)" "$(pid vm3 $net)" "$(ip_on vm2 $net $net)")
done
rate[underlay]=$(bps "" "" $NET.2)
mbit() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1e6 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f %%", 100 * a / b }'; }
echo "iperf3, one TCP stream, ${DURATION} s, container on vm3 -> container on vm2 (underlay: vm3 -> vm2):"
printf '  %-18s %6s Mbit/s\n' underlay "$(mbit "${rate[underlay]}")"
printf '  %-18s %6s Mbit/s  %s of the underlay\n' "plain overlay" "$(mbit "${rate[tp-plain]}")" \
    "$(pct "${rate[tp-plain]}" "${rate[underlay]}")"
printf '  %-18s %6s Mbit/s  %s of the underlay, %s of the plain overlay\n' "encrypted overlay" \
    "$(mbit "${rate[tp-enc]}")" "$(pct "${rate[tp-enc]}" "${rate[underlay]}")" "$(pct "${rate[tp-enc]}" "${rate[tp-plain]}")"
