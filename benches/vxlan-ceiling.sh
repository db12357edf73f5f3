#!/usr/bin/env bash
# What the kernel's VXLAN gives on this machine with nothing of cnet's anywhere: two namespaces
# ("hosts") on a bridge in a third (the underlay, as the test kit's Lab builds it), a VXLAN device
# in each with a static remote, and iperf3 from one to the other, alternately over the underlay
# addresses and over the VXLAN devices' (MTU 1450), RUNS times each; then each run's ratio and the
# medians. No nftables table, no cnetd, no macvlan: the ceiling of any VXLAN overlay here, to read
# beside vxlan-link's figures (issue 17 item 7).
#
#   bash benches/vxlan-ceiling.sh [RUNS=5] [SECS=5]
#
# IPERF_CC names the congestion control (iperf3 -C); unset, the host's default.
set -euo pipefail
RUNS=${1:-5}; SECS=${2:-5}
CC=${IPERF_CC:+-C $IPERF_CC}
tag=vxc$$
u=$tag-u; a=$tag-a; b=$tag-b
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    for ns in "$a" "$b" "$u"; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
for ns in "$u" "$a" "$b"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$u" link add br0 type bridge
ip -n "$u" link set br0 up
n=1
for ns in "$a" "$b"; do
    ip -n "$u" link add "p$n" type veth peer name eth0 netns "$ns"
    ip -n "$u" link set "p$n" master br0 up
    ip -n "$ns" addr add "192.0.2.$n/24" dev eth0
    ip -n "$ns" link set eth0 up
    n=$((n + 1))
done
ip -n "$a" link add vx0 type vxlan id 4242 local 192.0.2.1 remote 192.0.2.2 dstport 4789 dev eth0 ${VXLAN_OPTS:-}
ip -n "$b" link add vx0 type vxlan id 4242 local 192.0.2.2 remote 192.0.2.1 dstport 4789 dev eth0 ${VXLAN_OPTS:-}
ip -n "$a" addr add 10.99.0.1/24 dev vx0; ip -n "$a" link set vx0 up
ip -n "$b" addr add 10.99.0.2/24 dev vx0; ip -n "$b" link set vx0 up
ip netns exec "$b" iperf3 -s >/dev/null 2>&1 &
server=$!
sleep 0.5
ip netns exec "$a" busybox ping -c1 -W2 10.99.0.2 >/dev/null
gbps() { ip netns exec "$a" iperf3 -J $CC -t "$SECS" -c "$1" | jq '.end.sum_received.bits_per_second / 1e9'; }
under=(); over=()
for i in $(seq "$RUNS"); do
    under+=("$(gbps 192.0.2.2)")
    over+=("$(gbps 10.99.0.2)")
    printf 'run %d: underlay %6.2f  vxlan %6.2f Gbit/s  (%3.0f %%)\n' "$i" "${under[-1]}" "${over[-1]}" \
        "$(echo "100 * ${over[-1]} / ${under[-1]}" | bc -l)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
mu=$(median "${under[@]}"); mo=$(median "${over[@]}")
cc=${IPERF_CC:-$(sysctl -n net.ipv4.tcp_congestion_control) (default)}
printf 'medians (%s): underlay %.2f, vxlan %.2f Gbit/s: %.0f %%\n' "$cc" "$mu" "$mo" "$(echo "100 * $mo / $mu" | bc -l)"
