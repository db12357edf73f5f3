#!/usr/bin/env bash
# A three-host cnet cluster on one machine, for trying overlay networks: every "host" is a network
# namespace on an underlay bridge, etcd runs in a namespace of its own, and each host runs its own
# cnetd joined to that etcd.
#
#   cnetlab-host1        cnetlab-host2        cnetlab-host3        cnetlab-etcd
#   eth0 192.0.2.1/24    eth0 192.0.2.2/24    eth0 192.0.2.3/24    eth0 192.0.2.100/24
#        |                    |                    |                    |
#   +----h1-------------------h2-------------------h3------------------etcd----+
#   |                        br0        (cnetlab-underlay)                      |
#   +-----------------------------------------------------------------------------+
#
# Usage (as root):  lab.sh up | demo | status | down
#   up      make the namespaces and the bridge, start etcd and one cnetd per host
#   demo    node ls, an overlay network ov1, a busybox container on each host, pings by name
#   status  namespaces, processes and `cnet node ls`
#   down    remove the containers, the network, the daemons, etcd, the namespaces and /tmp/cnetlab
#   etcd stop|start   take the control plane down (keeping its data) and bring it back
#   cnet N ARGS...    run `cnet ARGS...` on host N
#
# cnetd and cnet come from $CNET_BIN_DIR if set, else from PATH (scripts/setup.sh links them into
# /usr/local/bin). Everything lives in the lab's namespaces and in /tmp/cnetlab; the machine's own
# interfaces and firewall are not touched, and no packet leaves the machine.
#
# Run a command on a host yourself:
#   nsenter --net=/run/netns/cnetlab-host1 -- cnet -H /tmp/cnetlab/host1/cnetd.sock \
#       --root /tmp/cnetlab/host1/runtime ps
# (or `lab.sh cnet 1 ps`, which does just that).
# A container's network namespace is its SandboxKey (`lab.sh cnet 2 inspect c2`): run the machine's
# tools in it with `nsenter --net=SANDBOXKEY -- iperf3 -s`.
set -euo pipefail

LAB=/tmp/cnetlab
HOSTS=${CNETLAB_HOSTS:-3}
ETCD_ADDR=192.0.2.100
PREFIX=cnetlab
UNDERLAY=$PREFIX-underlay
ETCD_NS=$PREFIX-etcd
NETWORK=ov1
IMAGE=busybox

die() { echo "lab.sh: $*" >&2; exit 1; }
say() { echo "+ $*" >&2; }

bin() {
    if [ -n "${CNET_BIN_DIR:-}" ]; then
        [ -x "$CNET_BIN_DIR/$1" ] || die "$CNET_BIN_DIR/$1 does not exist (CNET_BIN_DIR)"
        echo "$CNET_BIN_DIR/$1"
    else
        command -v "$1" || die "$1 is not on PATH: run scripts/setup.sh, or set CNET_BIN_DIR"
    fi
}

host_ns() { echo "$PREFIX-host$1"; }
host_dir() { echo "$LAB/host$1"; }
host_sock() { echo "$LAB/host$1/cnetd.sock"; }

# Runs a command in host N's network namespace. Not `ip netns exec`: that gives every command a
# mount namespace of its own, and the CLI must see the sandbox namespaces cnetd bind-mounts under
# its --run-dir. Like a real host, a lab host shares the machine's mount namespace.
on_host() {
    local n=$1
    shift
    nsenter --net="/run/netns/$(host_ns "$n")" -- "$@"
}

# `cnet` on host N, with that host's socket and runtime root.
cnet_on() {
    local n=$1
    shift
    on_host "$n" "$CNET" -H "$(host_sock "$n")" --root "$(host_dir "$n")/runtime" "$@"
}

ns_exists() { [ -e "/run/netns/$1" ]; }

# wait_for SECS WHAT [--pidfile FILE] COMMAND...: waits up to SECS seconds for COMMAND to succeed;
# gives up at once if the process in FILE has exited.
wait_for() {
    local secs=$1 what=$2 pidfile=
    shift 2
    if [ "$1" = --pidfile ]; then
        pidfile=$2
        shift 2
    fi
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if [ -n "$pidfile" ] && ! alive "$(cat "$pidfile" 2>/dev/null)"; then
            echo "  $what: the process exited" >&2
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "  $what: not within $secs s" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "  $what: ok" >&2
}

etcd_healthy() {
    ip netns exec "$ETCD_NS" timeout 3 busybox wget -q -O - "http://$ETCD_ADDR:2379/health" | grep -q '"health":"true"'
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Sends SIGTERM to the pid in file $1, waits up to 10 s, then SIGKILL.
stop_pidfile() {
    local file=$1 pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file")
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
        if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$file"
}

# The pids of the processes whose network namespace is one of those bound (or named) at the
# paths given.
pids_in_netns() {
    local f targets=()
    for f in "$@"; do
        [ -e "$f" ] && targets+=("net:[$(stat -L -c %i "$f")]")
    done
    [ ${#targets[@]} -gt 0 ] || return 0
    find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/ns/net' -printf '%p %l\n' 2>/dev/null |
        while read -r path link; do
            for t in "${targets[@]}"; do
                if [ "$link" = "$t" ]; then
                    path=${path#/proc/}
                    echo "${path%%/*}"
                fi
            done
        done
}

# The pids of the processes with `$1` in their command line.
pids_mentioning() {
    local p args
    for p in /proc/[0-9]*; do
        mapfile -d "" args 2>/dev/null <"$p/cmdline" || continue
        [[ "${args[*]}" == *"$1"* ]] && echo "${p#/proc/}"
    done
    return 0
}

veth() { # veth NS_A IF_A NS_B IF_B: a pair made directly in the two namespaces
    ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
}

# Starts etcd in its namespace (on the data it has, if any), in the background.
spawn_etcd() {
    mkdir -p "$LAB/etcd"
    # The peer URL is on the namespace's loopback: a one-member cluster has no peers.
    setsid ip netns exec "$ETCD_NS" etcd --name cnetlab --data-dir "$LAB/etcd/data" \
        --listen-client-urls "http://$ETCD_ADDR:2379" --advertise-client-urls "http://$ETCD_ADDR:2379" \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
        --initial-cluster cnetlab=http://127.0.0.1:2380 --logger zap --log-outputs stderr \
        </dev/null >>"$LAB/etcd/etcd.log" 2>&1 &
    echo $! >"$LAB/etcd/pid"
}

wait_etcd() {
    wait_for 30 "etcd answers on $ETCD_ADDR:2379" --pidfile "$LAB/etcd/pid" etcd_healthy ||
        { tail -n 20 "$LAB/etcd/etcd.log" >&2; die "etcd did not start (log: $LAB/etcd/etcd.log)"; }
}

cmd_etcd() {
    ns_exists "$ETCD_NS" || die "the lab is not up (run: $0 up)"
    case "${1:-}" in
        stop)
            say "stopping etcd (the data stays in $LAB/etcd/data)"
            stop_pidfile "$LAB/etcd/pid"
            ;;
        start)
            if [ -f "$LAB/etcd/pid" ] && alive "$(cat "$LAB/etcd/pid")"; then die "etcd is already running"; fi
            say "starting etcd on $ETCD_ADDR:2379"
            spawn_etcd
            wait_etcd
            ;;
        *) die "usage: $0 etcd stop|start" ;;
    esac
}

cmd_up() {
    ns_exists "$UNDERLAY" && die "the lab is already up (run: $0 down)"
    CNETD=$(bin cnetd)
    CNET=$(bin cnet)
    command -v etcd >/dev/null || die "etcd is not installed (apt-get install etcd-server)"
    command -v busybox >/dev/null || die "busybox is not installed (apt-get install busybox-static)"
    mkdir -p "$LAB"

    say "underlay: namespace $UNDERLAY with bridge br0"
    ip netns add "$UNDERLAY"
    ip -n "$UNDERLAY" link set lo up
    ip -n "$UNDERLAY" link add br0 type bridge
    ip -n "$UNDERLAY" link set br0 mtu 1500 up

    say "etcd: namespace $ETCD_NS, $ETCD_ADDR/24, data in $LAB/etcd"
    ip netns add "$ETCD_NS"
    ip -n "$ETCD_NS" link set lo up
    veth "$UNDERLAY" etcd "$ETCD_NS" eth0
    ip -n "$UNDERLAY" link set etcd mtu 1500 master br0 up
    ip -n "$ETCD_NS" addr add "$ETCD_ADDR/24" dev eth0
    ip -n "$ETCD_NS" link set eth0 mtu 1500 up
    spawn_etcd
    local n ns dir
    for n in $(seq "$HOSTS"); do
        ns=$(host_ns "$n")
        dir=$(host_dir "$n")
        say "host$n: namespace $ns, eth0 192.0.2.$n/24"
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        veth "$UNDERLAY" "h$n" "$ns" eth0
        ip -n "$UNDERLAY" link set "h$n" mtu 1500 master br0 up
        ip -n "$ns" addr add "192.0.2.$n/24" dev eth0
        ip -n "$ns" link set eth0 mtu 1500 up
        mkdir -p "$dir/run" "$dir/state" "$dir/runtime"
    done

    wait_etcd

    for n in $(seq "$HOSTS"); do
        dir=$(host_dir "$n")
        say "host$n: cnetd --cluster-store etcd://$ETCD_ADDR:2379 --cluster-advertise 192.0.2.$n --node-name host$n"
        setsid nsenter --net="/run/netns/$(host_ns "$n")" -- "$CNETD" \
            --socket "$(host_sock "$n")" --run-dir "$dir/run" --state-dir "$dir/state" --nft-table "cnet_host$n" \
            --cluster-store "etcd://$ETCD_ADDR:2379" --cluster-advertise "192.0.2.$n" --node-name "host$n" \
            </dev/null >>"$dir/cnetd.log" 2>&1 &
        echo $! >"$dir/cnetd.pid"
    done
    for n in $(seq "$HOSTS"); do
        dir=$(host_dir "$n")
        if ! wait_for 30 "cnetd on host$n answers" --pidfile "$dir/cnetd.pid" cnet_on "$n" info; then
            tail -n 20 "$dir/cnetd.log" >&2
            die "cnetd on host$n did not start (log: $dir/cnetd.log); clean up with: $0 down"
        fi
    done
    echo "the lab is up: try $0 demo" >&2
}

host_sees_network() { cnet_on "$1" network ls | grep -qw "$NETWORK"; }

cmd_demo() {
    ns_exists "$UNDERLAY" || die "the lab is not up (run: $0 up)"
    CNET=$(bin cnet)
    local n

    say "host1: cnet node ls"
    cnet_on 1 node ls

    say "host1: cnet network create -d overlay $NETWORK"
    cnet_on 1 network create -d overlay "$NETWORK"
    for n in $(seq 2 "$HOSTS"); do
        wait_for 30 "host$n sees $NETWORK" host_sees_network "$n" || die "host$n does not see the network $NETWORK"
    done

    for n in $(seq "$HOSTS"); do
        say "host$n: cnet run -d --network $NETWORK --name c$n $IMAGE sleep 3600"
        cnet_on "$n" run -d --network "$NETWORK" --name "c$n" "$IMAGE" sleep 3600
    done
    cnet_on 1 network inspect "$NETWORK"

    for n in $(seq 2 "$HOSTS"); do
        say "host1: cnet exec c1 ping -c 2 c$n   (host$n, over VXLAN)"
        cnet_on 1 exec c1 ping -c 2 "c$n"
    done
    echo "demo done: containers c1..c$HOSTS are still running; $0 down removes everything" >&2
}

cmd_status() {
    local n
    echo "namespaces:"
    ip netns list | grep "^$PREFIX-" || echo "  (none)"
    [ -f "$LAB/etcd/pid" ] && alive "$(cat "$LAB/etcd/pid")" && echo "etcd: running, pid $(cat "$LAB/etcd/pid")"
    for n in $(seq "$HOSTS"); do
        local file
        file="$(host_dir "$n")/cnetd.pid"
        if [ -f "$file" ] && alive "$(cat "$file")"; then
            echo "host$n: cnetd running, pid $(cat "$file")"
        fi
    done
    if ns_exists "$(host_ns 1)" && [ -S "$(host_sock 1)" ]; then
        CNET=$(bin cnet)
        cnet_on 1 node ls || true
    fi
}

cmd_down() {
    local n ns dir
    # Containers and the network first, while the daemons still run (cnetd removes their links,
    # namespaces and records, and the other hosts learn of it through etcd).
    if CNET=$(bin cnet 2>/dev/null); then
        for n in $(seq "$HOSTS"); do
            if ! [ -S "$(host_sock "$n")" ] || ! ns_exists "$(host_ns "$n")"; then continue; fi
            local ids
            ids=$(cnet_on "$n" ps -aq 2>/dev/null || true)
            if [ -n "$ids" ]; then
                say "host$n: cnet rm -f $(echo "$ids" | tr '\n' ' ')"
                # shellcheck disable=SC2086
                cnet_on "$n" rm -f $ids || true
            fi
        done
        if [ -S "$(host_sock 1)" ] && ns_exists "$(host_ns 1)"; then
            if cnet_on 1 network ls 2>/dev/null | grep -qw "$NETWORK"; then
                say "host1: cnet network rm $NETWORK"
                cnet_on 1 network rm "$NETWORK" || true
            fi
        fi
    fi

    for n in $(seq "$HOSTS"); do
        dir=$(host_dir "$n")
        if [ -f "$dir/cnetd.pid" ]; then
            say "host$n: stopping cnetd"
            stop_pidfile "$dir/cnetd.pid"
        fi
    done
    if [ -f "$LAB/etcd/pid" ]; then
        say "stopping etcd"
        stop_pidfile "$LAB/etcd/pid"
    fi

    # Whatever is left: processes in a sandbox namespace of a host, in a host's or etcd's
    # namespace, or running from the lab's directory (container supervisors).
    local leftovers=() p nsfiles=()
    for f in "$LAB"/host*/run/netns/*; do
        [ -e "$f" ] && nsfiles+=("$f")
    done
    for ns in "$ETCD_NS" "$UNDERLAY" $(for n in $(seq "$HOSTS"); do host_ns "$n"; done); do
        ns_exists "$ns" && nsfiles+=("/run/netns/$ns")
    done
    mapfile -t leftovers < <(pids_in_netns "${nsfiles[@]}"; pids_mentioning "$LAB/")
    for p in "${leftovers[@]}"; do
        [ "$p" = "$$" ] && continue
        kill -KILL "$p" 2>/dev/null && echo "  killed leftover process $p" >&2
    done

    # Sandbox namespaces still bind-mounted under the lab's directory.
    local mounts
    mounts=$(awk -v lab="$LAB/" 'index($5, lab) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    for m in $mounts; do
        umount -l "$m" 2>/dev/null && echo "  unmounted $m" >&2
    done

    for n in $(seq "$HOSTS"); do
        ns=$(host_ns "$n")
        if ns_exists "$ns"; then
            say "deleting namespace $ns"
            ip netns del "$ns"
        fi
    done
    for ns in "$ETCD_NS" "$UNDERLAY"; do
        if ns_exists "$ns"; then
            say "deleting namespace $ns"
            ip netns del "$ns"
        fi
    done
    if [ -e "$LAB" ]; then
        say "rm -rf $LAB"
        rm -rf "$LAB"
    fi
    echo "the lab is down" >&2
}

[ "$(id -u)" = 0 ] || die "run it as root: it makes network namespaces"
case "${1:-}" in
    up) cmd_up ;;
    demo) cmd_demo ;;
    status) cmd_status ;;
    down) cmd_down ;;
    etcd) cmd_etcd "${2:-}" ;;
    cnet)
        [ $# -ge 2 ] || die "usage: $0 cnet HOST_NUMBER ARGS..."
        CNET=$(bin cnet)
        n=$2
        shift 2
        cnet_on "$n" "$@"
        ;;
    *)
        echo "usage: $0 up|demo|status|down  (or: $0 etcd stop|start, $0 cnet HOST_NUMBER ARGS...)" >&2
        exit 2
        ;;
esac
