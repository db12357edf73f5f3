#!/usr/bin/env bash
# The lab of benches/src/lab_deploy.rs (20 busybox nodes, a ring of 20 links and 10 chords, a /31
# on each) built the way containerlab builds a lab on Docker: a management network, one container
# per node on it, then one veth pair per link moved into the two containers' namespaces, renamed,
# addressed and brought up. Prints the deploy and destroy times of ROUNDS rounds (default 5).
# Needs a running dockerd and the image busybox:local (../shared/peers/setup.sh makes both).
# This is a benchmark script: it may use `ip`; cnet's product code never does.
set -euo pipefail
rounds=${1:-5}
image=${IMAGE:-busybox:local}
nodes=20
now() { date +%s%N; }
deploy() {
    docker network create --subnet 172.20.30.0/24 clab-bench >/dev/null
    for i in $(seq 1 $nodes); do
        docker run -d --name "clab-bench-n$i" --hostname "n$i" --network clab-bench "$image" sleep 100000 >/dev/null
    done
    declare -A pid
    for i in $(seq 1 $nodes); do
        pid[$i]=$(docker inspect -f '{{.State.Pid}}' "clab-bench-n$i")
    done
    k=0
    link() { # a ifa b ifb
        local a=$1 ai=$2 b=$3 bi=$4 net="10.$((100 + k / 256)).$((k % 256))"
        ip link add "lb${k}a" type veth peer name "lb${k}b"
        ip link set "lb${k}a" netns "${pid[$a]}"
        ip link set "lb${k}b" netns "${pid[$b]}"
        nsenter -t "${pid[$a]}" -n sh -c "ip link set lb${k}a name $ai && ip addr add $net.0/31 dev $ai && ip link set $ai up"
        nsenter -t "${pid[$b]}" -n sh -c "ip link set lb${k}b name $bi && ip addr add $net.1/31 dev $bi && ip link set $bi up"
        k=$((k + 1))
    }
    for i in $(seq 1 $nodes); do link "$i" eth1 $((i % nodes + 1)) eth2; done
    for i in $(seq 1 $((nodes / 2))); do link "$i" eth3 $((i + nodes / 2)) eth3; done
}
destroy() {
    docker rm -f $(docker ps -aq --filter name=clab-bench-) >/dev/null
    docker network rm clab-bench >/dev/null
}
for r in $(seq 1 "$rounds"); do
    t0=$(now); deploy; t1=$(now); destroy; t2=$(now)
    echo "round $r: deploy $(((t1 - t0) / 1000000)) ms, destroy $(((t2 - t1) / 1000000)) ms"
done
