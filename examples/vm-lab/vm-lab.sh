#!/usr/bin/env bash
# A cnet cluster on real (virtual) machines, on one machine: N qemu guests (default 3) running
# Debian's kernel, with the host's root filesystem read-only under a writable tmpfs overlay, on one
# L2 segment. etcd runs on vm1, and cnetd (the checkout's target/release binaries) on every guest,
# joined to it.
#
#          private network namespace cnet-vm-lab (nothing in the host's own)
#   +---------------------------------------------------------------------+
#   |   vm1 198.51.100.1     vm2 198.51.100.2     vm3 198.51.100.3          |
#   |   etcd, cnetd          cnetd                cnetd                     |
#   |      |                    |                    |                      |
#   |    tap1-----------------tap2-----------------tap3------ br0           |
#   +---------------------------------------------------------------------+
#
# Usage (as root):
#   vm-lab.sh up                 boot the guests, start etcd and the cnetds, wait for the cluster
#   vm-lab.sh exec N CMD...      run CMD (a shell command line) on guest N: its output, its status
#   vm-lab.sh test [CHECK]       the tests across the guests (or one check alone: ipv6, netem...)
#   vm-lab.sh status             the guests, their memory, `cnet node ls`
#   vm-lab.sh console N          the guest's console log (kernel messages, boot script)
#   vm-lab.sh diagnose N         what the guest is doing (processes, kernel stacks of the commands
#                                of `exec`), through a second agent: works while a command hangs
#   vm-lab.sh etcd stop|start    take the control plane down (keeping its data) and bring it back
#   vm-lab.sh down               stop the guests, remove the namespace and /run/cnet-vm-lab
#
# Environment: VM_COUNT (guests, default 3), VM_MEM (MiB each, default 512), CNET_BIN_DIR (the
# cnetd and cnet the guests run, default <checkout>/target/release), VM_ACCEL (qemu accelerator,
# default tcg: software emulation, as /dev/kvm may be missing or unusable), VM_TB_SIZE (MiB of
# translated code a tcg guest keeps, default 128; qemu's own default, 1 GiB, makes each guest
# use about twice the memory), VM_LAB (the lab's name, default cnet-vm-lab: its namespace and
# /run/NAME; labs of different names run side by side), VM_EXEC_TIMEOUT
# (seconds an `exec` may take, default 300), VM_NIC (the name of each guest's lab NIC, default
# eth0).
#
# Needs what scripts/setup.sh installs: qemu-system-x86, kmod, busybox-static, etcd-server,
# nftables, iproute2, and Debian's kernel package downloaded into /var/cache/cnet/vm (unpacked
# there on first use; the machine's own kernel and /boot are not touched).
#
# How a guest is made: the kernel (vmlinux, unpacked from the package's vmlinuz) boots a small
# initramfs (busybox, guest/init, the virtio and 9p modules) that mounts the host's / over 9p
# (read-only) as the lower layer of an overlay whose upper layer is a tmpfs, the package's
# /lib/modules over 9p, and the cnet binaries' directory over 9p, uncached, on /lab/bin.
# guest/rc mounts /run, /tmp, cgroup2 and a tmpfs for /var/lib/cnet, and puts a wrapper
# in /usr/local/sbin for each binary of that directory (cnetd, cnet...) that runs a copy of it
# on the guest's tmpfs, copied again when the host rebuilds it (guest/fresh-copy). guest/agent
# answers `exec` requests on a virtio serial port that qemu connects to the FIFOs
# /run/cnet-vm-lab/vmN.agent.{in,out}; a second one on vmN.diag.{in,out} tells what the guest is
# doing when a command of the first does not answer.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# Several labs may run side by side under different names (each its own namespace and state).
LAB=${VM_LAB:-cnet-vm-lab}
[[ $LAB =~ ^[a-z][a-z0-9-]{0,14}$ ]] || { echo "vm-lab.sh: VM_LAB=$LAB: lower-case letters, digits and '-', 15 at most" >&2; exit 1; }
STATE=/run/$LAB
NS=$LAB
CACHE=/var/cache/cnet/vm
NET=198.51.100 # TEST-NET-2, a documentation range: used only inside the lab's namespace
ACCEL=${VM_ACCEL:-tcg}
TB_SIZE=${VM_TB_SIZE:-128} # MiB of translated code qemu keeps under tcg (its default: 1 GiB)
EXEC_TIMEOUT=${VM_EXEC_TIMEOUT:-300}
MEM=${VM_MEM:-512}
NIC=${VM_NIC:-eth0}
BIN_DIR=${CNET_BIN_DIR:-$REPO/target/release}
if [ -f "$STATE/count" ]; then COUNT=$(cat "$STATE/count"); else COUNT=${VM_COUNT:-3}; fi

die() {
    echo "vm-lab.sh: $*" >&2
    exit 1
}
say() { echo "+ [${SECONDS}s] $*" >&2; }
# The script's own stderr, for diagnostics that a caller's `2>/dev/null` must not swallow.
exec {LAB_STDERR}>&2

[ "$(id -u)" = 0 ] || die "run as root (the lab makes a network namespace, taps and a bridge)"

guest_ok() {
    [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$COUNT" ] ||
        die "no guest $1 (guests: 1..$COUNT; vmN and N both work)"
}

# ---------------------------------------------------------------------------------------------
# exec: a request on the guest's agent FIFO, the answer read back (see guest/agent).

# vm_exec N TIMEOUT CMD: runs the shell command CMD on guest N; prints its stdout and stderr and
# returns its status (124 if no answer within TIMEOUT seconds, 125 if the guest is not running).
# On a timeout it asks the guest's second agent what the guest is doing (see diagnose), on the
# script's own stderr whatever the caller redirects.
vm_exec() {
    port_exec agent "$@" || {
        local rc=$?
        [ "$rc" != 124 ] || {
            echo "vm-lab.sh: no answer from guest $1 to: $3"
            diagnose "$1"
        } >&"$LAB_STDERR" 2>&1
        return "$rc"
    }
}

# port_exec PORT N TIMEOUT CMD: vm_exec through one of the guest's agents (agent or diag).
port_exec() {
    local port=$1 n=$2 timeout=$3 cmd=$4
    local in=$STATE/vm$n.$port.in out=$STATE/vm$n.$port.out
    [ -p "$in" ] && [ -p "$out" ] || {
        echo "vm-lab.sh: guest $n is not up (no $in)" >&2
        return 125
    }
    local lock fd id line partial= state=skip rc= o= e=
    exec {lock}>"$STATE/vm$n.$port.lock"
    flock "$lock"
    id=$BASHPID.$RANDOM.$SECONDS # $BASHPID: the id of a subshell of `on ... &`, not its parent's
    alive "$(qemu_pid "$n")" || {
        exec {lock}>&-
        echo "vm-lab.sh: guest $n is not running (console: $STATE/vm$n.console)" >&2
        return 125
    }
    # Read-write opens: a FIFO's read-only open would wait for a writer (a qemu that just died has
    # none), and a write-only open for a reader.
    exec {fd}<>"$out"
    printf 'EXEC %s %s\n' "$id" "$(printf '%s' "$cmd" | base64 -w0)" 1<>"$in"
    local deadline=$((SECONDS + timeout)) resent=
    while :; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            # Once, the agent is asked for its last answer again: a command that ended may have
            # had its answer lost on the way. One still running answers neither.
            [ -z "$resent" ] || break
            resent=$state state=skip o= e= partial=
            printf 'RESEND %s\n' "$id" 1<>"$in"
            deadline=$((SECONDS + (timeout < 30 ? timeout : 30)))
        fi
        if ! IFS= read -r -t 1 line <&"$fd"; then
            # A read that times out keeps what it got of a line, and that is gone from the FIFO:
            # the rest of the line comes with the next read.
            partial+=$line
            alive "$(qemu_pid "$n")" || {
                rc=gone
                break
            }
            continue
        fi
        line=$partial$line
        partial=
        case $state in
            skip) [ "$line" = "BEGIN $id" ] && state=out ;; # answers to requests that timed out
            out) if [ "$line" = "STDERR $id" ]; then state=err; else o+=$line; fi ;;
            err)
                if [[ $line == "END $id "* ]]; then
                    rc=${line##* }
                    break
                fi
                e+=$line
                ;;
        esac
    done
    exec {fd}<&- {lock}>&-
    if [ "$rc" = gone ]; then
        echo "vm-lab.sh: guest $n is not running (console: $STATE/vm$n.console)" >&2
        return 125
    fi
    if [ -z "$rc" ]; then
        local got="no answer"
        [ "$resent" = skip ] || got="an answer cut off (in its std${resent})"
        echo "vm-lab.sh: $got from guest $n's $port within ${timeout}s, nor when asked again" >&2
        return 124
    fi
    [ -z "$resent" ] || echo "vm-lab.sh: guest $n's $port: no whole answer within ${timeout}s" \
        "(got: ${resent/skip/none}); it came when asked again" >&2
    printf '%s' "$o" | base64 -d
    printf '%s' "$e" | base64 -d >&2
    return "$rc"
}

# diagnose N: what guest N is doing, from its second agent (a command of the first may be the one
# hanging), and the end of its console (a hung task, an oops): a lab that failed may be gone soon.
diagnose() {
    local n=$1 script
    script=$(
        cat <<'EOF'
echo "load: $(cat /proc/loadavg)"
free -m
ps -eo pid,ppid,stat,etimes,wchan:28,args --forest | awk '$1 != 2 && $2 != 2'
# The kernel stacks of everything the commands' agent runs.
agent=$(pgrep -f '^/lab/busybox sh /lab/agent cnet.agent' | head -n 1)
for pid in $(ps -eo pid=,ppid= | awk -v root="$agent" '{ parent[$1] = $2 }
        END { for (p in parent) for (q = p; q in parent; q = parent[q]) if (parent[q] == root) { print p; break } }'); do
    echo "--- $pid: $(tr '\0' ' ' </proc/$pid/cmdline 2>/dev/null)"
    cat /proc/$pid/stack 2>/dev/null
done
EOF
    )
    echo "vm-lab.sh: guest $n, from its diagnostics agent:" >&2
    port_exec diag "$n" 30 "$script" >&2 || true
    echo "vm-lab.sh: the end of guest $n's console:" >&2
    tail -n 40 "$STATE/vm$n.console" >&2
}

# on N CMD...: vm_exec with the default timeout; the words of CMD joined by spaces, as ssh does.
on() {
    local n=$1
    shift
    vm_exec "$n" "$EXEC_TIMEOUT" "$*"
}

# ---------------------------------------------------------------------------------------------
# The kernel: Debian's package, unpacked once into $CACHE/<version>.

need_packages() {
    local missing=() p
    for p in qemu-system-x86:qemu-system-x86_64 kmod:depmod busybox-static:busybox \
        etcd-server:etcd nftables:nft iproute2:ip util-linux:flock; do
        command -v "${p#*:}" >/dev/null || missing+=("${p%%:*}")
    done
    [ -x /bin/busybox ] || missing+=(busybox-static)
    [ ${#missing[@]} -eq 0 ] ||
        die "missing package(s): ${missing[*]} (./scripts/setup.sh installs them)"
    kernel_deb >/dev/null ||
        die "no Debian kernel package in $CACHE (./scripts/setup.sh downloads linux-image-*-amd64 there)"
    local b
    for b in cnetd cnet; do
        [ -x "$BIN_DIR/$b" ] ||
            die "$BIN_DIR/$b does not exist: build it (cargo build --release --bins) or set CNET_BIN_DIR"
    done
}

kernel_deb() {
    local deb
    deb=$(ls "$CACHE"/linux-image-[0-9]*-amd64_*_amd64.deb 2>/dev/null | sort -V | tail -n 1)
    [ -n "$deb" ] && echo "$deb"
}

# Finds the compressed kernel inside a bzImage (xz, zstd or gzip) and writes it uncompressed.
extract_vmlinux() {
    local z=$1 out=$2 magic tool off
    for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
        tool=${magic%%:*}
        for off in $(LC_ALL=C grep -aboP "${magic#*:}" "$z" | cut -d: -f1); do
            tail -c +$((off + 1)) "$z" | "$tool" -dc >"$out" 2>/dev/null || true
            if [ "$(head -c 4 "$out" | od -An -c | tr -d ' ')" = 177ELF ]; then return 0; fi
        done
    done
    rm -f "$out"
    return 1
}

# Sets KVER and KDIR, unpacking the package (and running depmod on it) the first time.
prepare_kernel() {
    local deb tmp
    deb=$(kernel_deb)
    KVER=$(dpkg-deb -f "$deb" Package)
    KVER=${KVER#linux-image-}
    KDIR=$CACHE/$KVER
    [ -f "$KDIR/.ready" ] && return 0
    say "unpacking $(basename "$deb") into $KDIR (once)"
    tmp=$CACHE/.unpack.$$
    rm -rf "$tmp" "$KDIR"
    mkdir -p "$tmp"
    dpkg-deb -x "$deb" "$tmp"
    depmod -b "$tmp" "$KVER"
    if ! extract_vmlinux "$tmp/boot/vmlinuz-$KVER" "$tmp/boot/vmlinux-$KVER"; then
        say "cannot unpack vmlinux from the vmlinuz: booting the vmlinuz (slower)"
        cp "$tmp/boot/vmlinuz-$KVER" "$tmp/boot/vmlinux-$KVER"
    fi
    touch "$tmp/.ready"
    mv "$tmp" "$KDIR"
}

# The initramfs: busybox, guest/{init,rc,agent}, and the modules (with their dependencies) that
# mount the root.
build_initramfs() {
    local dir=$STATE/initramfs m f
    rm -rf "$dir"
    mkdir -p "$dir"/{bin,dev,proc,sys,lab,lib/modules/"$KVER"}
    cp /bin/busybox "$dir/bin/busybox"
    cp "$HERE/guest/init" "$dir/init"
    cp "$HERE/guest/rc" "$HERE/guest/agent" "$HERE/guest/fresh-copy" "$dir/lab/"
    for m in virtio_pci virtio_console virtio_net 9pnet_virtio 9p overlay; do
        modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
    done | sort -u | while read -r f; do
        mkdir -p "$dir$(dirname "${f#"$KDIR"}")"
        cp "$f" "$dir${f#"$KDIR"}"
    done
    cp "$KDIR/lib/modules/$KVER"/modules.{dep,alias,softdep,builtin} "$dir/lib/modules/$KVER/"
    (cd "$dir" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$STATE/initramfs.cpio.gz"
    rm -rf "$dir"
}

# ---------------------------------------------------------------------------------------------
# up

start_guest() {
    local n=$1 mac accel=$ACCEL
    mac=$(printf '52:54:00:5a:00:%02x' "$n")
    [ "$ACCEL" != tcg ] || accel=tcg,tb-size=$TB_SIZE
    mkfifo "$STATE/vm$n".{agent,diag}.{in,out}
    ip -n "$NS" tuntap add dev "tap$n" mode tap
    ip -n "$NS" link set "tap$n" master br0 up
    ip netns exec "$NS" qemu-system-x86_64 -name "$LAB-vm$n" \
        -nodefaults -no-user-config -machine pc -accel "$accel" -cpu max -smp 1 -m "$MEM" \
        -kernel "$KDIR/boot/vmlinux-$KVER" -initrd "$STATE/initramfs.cpio.gz" \
        -append "console=ttyS0 panic=-1 quiet lab.n=$n lab.count=$COUNT lab.net=$NET lab.nic=$NIC" \
        -display none -monitor none -no-reboot -serial "file:$STATE/vm$n.console" \
        -fsdev local,id=root,path=/,security_model=passthrough,readonly=on,multidevs=remap \
        -device virtio-9p-pci,fsdev=root,mount_tag=root \
        -fsdev "local,id=modules,path=$KDIR/lib/modules,security_model=passthrough,readonly=on" \
        -device virtio-9p-pci,fsdev=modules,mount_tag=modules \
        -fsdev "local,id=cnetbin,path=$BIN_DIR,security_model=passthrough,readonly=on" \
        -device virtio-9p-pci,fsdev=cnetbin,mount_tag=cnetbin \
        -fsdev "local,id=labshare,path=$STATE/share,security_model=passthrough,readonly=on" \
        -device virtio-9p-pci,fsdev=labshare,mount_tag=labshare \
        -netdev "tap,id=lab,ifname=tap$n,script=no,downscript=no" \
        -device "virtio-net-pci,netdev=lab,mac=$mac" \
        -device virtio-serial-pci -chardev "pipe,id=agent,path=$STATE/vm$n.agent" \
        -device virtserialport,chardev=agent,name=cnet.agent \
        -chardev "pipe,id=diag,path=$STATE/vm$n.diag" -device virtserialport,chardev=diag,name=cnet.diag \
        -daemonize -pidfile "$STATE/vm$n.pid" {LAB_STDERR}>&- # the guest outlives the script's stderr
}

qemu_pid() { cat "$STATE/vm$1.pid" 2>/dev/null || true; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Waits until both agents of guest N answer; fails if its qemu exited.
wait_agent() {
    local n=$1 secs=$2 deadline=$((SECONDS + $2))
    until port_exec agent "$n" 2 true 2>/dev/null && port_exec diag "$n" 2 true 2>/dev/null; do
        alive "$(qemu_pid "$n")" || {
            tail -n 20 "$STATE/vm$n.console" >&2
            die "guest $n's qemu exited (console: $STATE/vm$n.console)"
        }
        [ "$SECONDS" -lt "$deadline" ] || {
            tail -n 20 "$STATE/vm$n.console" >&2
            die "guest $n did not answer within ${secs}s (console: $STATE/vm$n.console)"
        }
    done
}

# wait_on N SECS WHAT CMD: waits until CMD succeeds on guest N.
wait_on() {
    local n=$1 secs=$2 what=$3 cmd=$4 deadline=$(($SECONDS + $2))
    until vm_exec "$n" 30 "$cmd" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || {
            echo "vm-lab.sh: $what: not within ${secs}s" >&2
            return 1
        }
        sleep 0.25
    done
}

# etcd on vm1, its data in /var/lib/etcd-vm-lab (on the guest's tmpfs), its log in
# /var/log/etcd.log; the peer URL on the loopback: a one-member cluster has no peers.
start_etcd() {
    launch_etcd
    wait_etcd
}

launch_etcd() {
    on 1 "mkdir -p /var/lib/etcd-vm-lab && setsid etcd --name vm1 --data-dir /var/lib/etcd-vm-lab" \
        "--listen-client-urls http://$NET.1:2379,http://127.0.0.1:2379" \
        "--advertise-client-urls http://$NET.1:2379" \
        "--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380" \
        "--initial-cluster vm1=http://127.0.0.1:2380 --logger zap --log-outputs stderr" \
        "</dev/null >>/var/log/etcd.log 2>&1 &"
}

wait_etcd() {
    wait_on 1 60 "etcd on vm1" "ETCDCTL_API=3 etcdctl --endpoints http://$NET.1:2379 endpoint health" ||
        { on 1 tail -n 20 /var/log/etcd.log >&2 || true; false; }
}

# cnetd on guest N with the cluster flags, its log appended to /var/log/cnetd.log.
start_cnetd() {
    on "$1" "setsid cnetd --cluster-store etcd://$NET.1:2379 --cluster-advertise $NET.$1" \
        "--node-name vm$1 </dev/null >>/var/log/cnetd.log 2>&1 &"
}

wait_cnetd() {
    wait_on "$1" 60 "cnetd on vm$1" "cnet version" ||
        { on "$1" tail -n 20 /var/log/cnetd.log >&2 || true; false; }
}

cmd_etcd() {
    [ -p "$STATE/vm1.agent.in" ] || die "the lab is not up: run '$0 up' first"
    case ${1:-} in
        stop)
            say "stopping etcd on vm1 (its data stays in /var/lib/etcd-vm-lab)"
            on 1 'pkill -x etcd; for i in $(seq 50); do pgrep -x etcd >/dev/null || exit 0; sleep 0.2; done; exit 1'
            ;;
        start)
            on 1 pgrep -x etcd >/dev/null && die "etcd is already running on vm1"
            say "starting etcd on vm1 ($NET.1:2379)"
            start_etcd
            ;;
        *) die "usage: $0 etcd stop|start" ;;
    esac
}

# How many cnetds are alive in etcd (keys /cnet/v1/alive/*), asked over the lab's segment from its
# namespace with etcd's JSON gateway; empty while etcd does not answer.
alive_nodes() {
    timeout 2 ip netns exec "$NS" busybox wget -q -O- --header 'Content-Type: application/json' \
        --post-data '{"key":"L2NuZXQvdjEvYWxpdmUv","range_end":"L2NuZXQvdjEvYWxpdmUw","count_only":true}' \
        "http://$NET.1:2379/v3/kv/range" 2>/dev/null | sed -n 's/.*"count":"\([0-9]*\)".*/\1/p'
}

rss_mib() { awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

cmd_up() {
    need_packages
    [ ! -e "$STATE" ] && [ ! -e "/run/netns/$NS" ] ||
        die "a lab is already up (or half made): run '$0 down' first"
    [[ $COUNT =~ ^[0-9]+$ ]] && [ "$COUNT" -ge 1 ] && [ "$COUNT" -le 250 ] || die "VM_COUNT: 1..250"
    trap 'echo "vm-lab.sh: up failed; cleaning up" >&2; cmd_down >/dev/null 2>&1 || true' EXIT
    local t0=$SECONDS n
    prepare_kernel
    mkdir -p "$STATE/share"
    echo "$COUNT" >"$STATE/count"
    build_initramfs
    say "namespace $NS: bridge br0, tap1..tap$COUNT; guests $NET.1..$NET.$COUNT/24"
    ip netns add "$NS"
    ip -n "$NS" link set lo up
    ip -n "$NS" link add br0 type bridge
    # The lab's own namespace on the segment too, for probes of etcd that cost the guests nothing.
    ip -n "$NS" addr add "$NET.254/24" dev br0
    ip -n "$NS" link set br0 up
    say "booting $COUNT guest(s): kernel $KVER, ${MEM} MiB each, accel $ACCEL; cnet from $BIN_DIR"
    local boot0=$SECONDS boot0_us=${EPOCHREALTIME/./} ready
    for n in $(seq "$COUNT"); do start_guest "$n"; done
    say "etcd on vm1 ($NET.1:2379), and cnetd on every guest: --cluster-store etcd://$NET.1:2379" \
        "--cluster-advertise $NET.N --node-name vmN"
    # Each guest's services start as soon as it answers, etcd with vm1's cnetd: a cnetd connects
    # to its cluster store lazily and keeps trying until it answers.
    for n in $(seq "$COUNT"); do
        wait_agent "$n" 180
        echo "  vm$n: answers ($((SECONDS - boot0)) s after boot)" >&2
        [ "$n" != 1 ] || launch_etcd
        start_cnetd "$n"
    done
    # Every node alive in etcd means etcd serves and every cnetd registered: one wait, not one per
    # service, asked from the lab's namespace (a probe inside a guest is a process start under
    # emulation, a good part of a second of a CPU the starting services need).
    local deadline=$((SECONDS + 90)) alive=
    until alive=$(alive_nodes) && [ "$alive" = "$COUNT" ] || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.1; done
    ready=$(((${EPOCHREALTIME/./} - boot0_us) / 100000))
    if [ "$alive" != "$COUNT" ]; then
        echo "vm-lab.sh: ${alive:-no answer from etcd, or 0} of $COUNT cnetds alive in etcd after 90 s" >&2
        on 1 tail -n 20 /var/log/etcd.log >&2 || true
        for n in $(seq "$COUNT"); do
            echo "--- vm$n: /var/log/cnetd.log" >&2
            on "$n" tail -n 20 /var/log/cnetd.log >&2 || true
        done
        die "the lab did not come up"
    fi
    trap - EXIT
    on 1 cnet node ls
    echo "lab up: $COUNT guest(s) ready in $((ready / 10)).$((ready % 10)) s from boot ($((SECONDS - t0)) s in all)"
    for n in $(seq "$COUNT"); do
        echo "  vm$n: $NET.$n, qemu pid $(qemu_pid "$n"), $(rss_mib "$(qemu_pid "$n")") MiB resident"
    done
    echo "run commands with: $0 exec vmN CMD...   (e.g. $0 exec vm2 cnet ps)"
}

# ---------------------------------------------------------------------------------------------
# down: works from any state.

cmd_down() {
    local n pid pids
    for f in "$STATE"/vm*.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        if alive "$pid"; then
            echo "stopping $(basename "$f" .pid) (qemu pid $pid)"
            kill "$pid" 2>/dev/null || true
        fi
    done
    # Anything else still in the lab's namespace is the lab's too (a qemu whose pidfile is lost).
    if [ -e "/run/netns/$NS" ]; then
        pids=$(ip netns pids "$NS" 2>/dev/null || true)
        [ -z "$pids" ] || {
            echo "stopping processes in $NS: $(echo $pids)"
            kill $pids 2>/dev/null || true
        }
    fi
    for _ in $(seq 50); do
        pids=
        for f in "$STATE"/vm*.pid; do
            [ -f "$f" ] && alive "$(cat "$f")" && pids+=" $(cat "$f")"
        done
        [ -e "/run/netns/$NS" ] && pids+=" $(ip netns pids "$NS" 2>/dev/null | tr '\n' ' ')"
        [ -z "${pids// /}" ] && break
        sleep 0.1
    done
    [ -z "${pids// /}" ] || {
        echo "killing$pids"
        kill -9 $pids 2>/dev/null || true
        sleep 0.5
    }
    if [ -e "/run/netns/$NS" ]; then
        echo "removing namespace $NS (its bridge and taps go with it)"
        ip netns del "$NS"
    fi
    if [ -e "$STATE" ]; then
        echo "removing $STATE"
        rm -rf "$STATE"
    fi
    echo "lab down"
}

# ---------------------------------------------------------------------------------------------

cmd_status() {
    [ -e "$STATE" ] || {
        echo "no lab ($STATE does not exist)"
        return 0
    }
    local n pid
    for n in $(seq "$COUNT"); do
        pid=$(qemu_pid "$n")
        if alive "$pid"; then
            echo "vm$n: $NET.$n, qemu pid $pid, $(rss_mib "$pid") MiB resident"
        else
            echo "vm$n: not running"
        fi
    done
    on 1 cnet node ls
}

# The smoke test: an overlay network made on vm1, a container on vm2 and one on vm3, a ping by
# name from vm3's to vm2's.
cmd_test() {
    [ -p "$STATE/vm1.agent.in" ] || die "the lab is not up: run '$0 up' first"
    step() {
        local n=$1
        shift
        echo "vm$n# $*" >&2
        on "$n" "$@"
    }
    fail() {
        echo "FAIL: $* (containers and network left in place; logs: $0 exec vmN cat /var/log/cnetd.log)" >&2
        return 1
    }
    # `test CHECK`: one of the checks below alone (ipv6, netem...), e.g. while working on it.
    if [ $# -gt 0 ]; then
        declare -F "check_$1" >/dev/null || die "no check named $1"
        "check_$1"
        return
    fi
    [ "$COUNT" -ge 3 ] || die "the test needs 3 guests (VM_COUNT=$COUNT)"
    # Leftovers of an earlier run that failed.
    for n in 1 2 3; do on "$n" 'cnet rm -f $(cnet ps -aq) >/dev/null 2>&1; true'; done
    on 1 cnet network rm ov >/dev/null 2>&1 || true

    # 1. By name across guests.
    step 1 cnet network create -d overlay ov >/dev/null &&
        step 2 cnet run -d --network ov --name c2 busybox sleep 1000 >/dev/null &&
        step 3 cnet run -d --network ov --name c3 busybox sleep 1000 >/dev/null &&
        step 3 cnet exec c3 ping -c 3 -W 2 c2 || fail "vm3's container does not reach vm2's by name" || return 1

    # 2. 15 attaches at once, 5 on each guest: 15 distinct addresses.
    echo "15 containers at once, 5 on each guest"
    local n i pids=() addrs
    for n in 1 2 3; do
        on "$n" "for i in 1 2 3 4 5; do cnet run -d --network ov --name p${n}x\$i busybox sleep 1000 >/dev/null & done; wait" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || fail "a concurrent attach failed" || return 1; done
    addrs=$(for n in 1 2 3; do
        on "$n" "for i in 1 2 3 4 5; do cnet inspect -f '{{(index .NetworkSettings.Networks \"ov\").IPAddress}}' p${n}x\$i; done"
    done)
    [ "$(echo "$addrs" | grep -c '^10\.')" = 15 ] && [ "$(echo "$addrs" | sort -u | wc -l)" = 15 ] ||
        fail "15 concurrent attaches did not get 15 distinct addresses: $(echo $addrs)" || return 1
    step 1 cnet exec p1x1 ping -c 1 -W 2 p3x5 >/dev/null || fail "p1x1 does not reach p3x5" || return 1

    # 3. kill -9 of vm2's cnetd and a restart: its container stays reachable, a new one attaches.
    step 2 pkill -9 -x cnetd
    start_cnetd 2
    wait_cnetd 2 || fail "cnetd on vm2 did not come back" || return 1
    step 3 cnet exec c3 ping -c 2 -W 2 c2 >/dev/null &&
        step 2 cnet run -d --network ov --name c2b busybox sleep 1000 >/dev/null &&
        step 3 cnet exec c3 ping -c 2 -W 2 c2b >/dev/null ||
        fail "after vm2's cnetd was killed and restarted" || return 1

    # 4. etcd stopped: running containers keep talking, a new attach fails; started: it works.
    cmd_etcd stop
    step 3 cnet exec c3 ping -c 2 -W 2 c2 >/dev/null || fail "c3 lost c2 while etcd was down" || return 1
    if step 2 cnet run -d --network ov --name c2c busybox sleep 1000 >/dev/null 2>&1; then
        fail "an overlay attach succeeded with etcd down" || return 1
    fi
    cmd_etcd start
    wait_on 2 60 "an attach on vm2 after etcd's restart" \
        "cnet rm -f c2c >/dev/null 2>&1; cnet run -d --network ov --name c2c busybox sleep 1000" ||
        fail "no attach after etcd came back" || return 1
    step 3 cnet exec c3 ping -c 2 -W 2 c2c >/dev/null || fail "c3 does not reach the new c2c" || return 1

    # 5. The network removed on vm1 is gone on every guest.
    for n in 1 2 3; do on "$n" 'cnet rm -f $(cnet ps -aq) >/dev/null'; done
    step 1 cnet network rm ov >/dev/null || fail "network rm ov" || return 1
    for n in 2 3; do
        wait_on "$n" 20 "ov gone from vm$n" '! cnet network ls --format "{{.Name}}" | grep -qx ov' ||
            fail "vm$n still lists ov" || return 1
    done
    echo "PASS: overlay across the guests: by name, 15 concurrent attaches, cnetd killed and" \
        "restarted, etcd stopped and started, network removal"
    check_ipv6 || return 1
    check_vlan || return 1
    check_netem || return 1
    check_encrypted || return 1
    check_lab || return 1
}

# One lab file over the three guests (issue 16): nodes on vm1, vm2 and vm3 (`host:`), a link on
# vm2 and two across guests (VXLAN tunnels whose VNI etcd allocates), deployed from vm3, pinged
# over every link, shown whole from vm1, destroyed from vm2: then no container, no lab network and
# no staging link on any guest, and no key of the lab in etcd (an etcdctl that fails fails it).
check_lab() {
    local file=/tmp/vmspread.yml n keys
    lab_fail() {
        echo "FAIL: a lab over the guests: $* (left in place; logs: $0 exec vmN cat /var/log/cnetd.log)" >&2
        return 1
    }
    on 2 cnet lab destroy --name vmspread >/dev/null 2>&1 || true
    on 3 "printf '%s\\n' 'name: vmspread' 'topology:' '  defaults: {image: busybox, cmd: sleep 1000}' \
        '  nodes:' '    a: {host: vm1}' '    b: {host: vm2}' '    c: {host: vm2}' '    d: {}' '  links:' \
        '    - endpoints: [b:eth1, c:eth1]' '      ipv4: [10.97.0.0/31, 10.97.0.1/31]' \
        '    - endpoints: [a:eth1, b:eth2]' '      ipv4: [10.97.1.0/31, 10.97.1.1/31]' \
        '    - endpoints: [a:eth2, d:eth1]' '      ipv4: [10.97.2.0/31, 10.97.2.1/31]' > $file" ||
        lab_fail "writing $file on vm3" || return 1
    echo "vm3# cnet lab deploy -t $file   (a on vm1, b and c on vm2, d on vm3)" >&2
    on 3 cnet lab deploy -t $file >&2 || lab_fail "deploy from vm3" || return 1
    echo "vm1# cnet exec clab-vmspread-a ping -c 3 -W 2 10.97.1.1   (b, on vm2)" >&2
    on 1 cnet exec clab-vmspread-a ping -c 3 -W 2 10.97.1.1 >/dev/null || lab_fail "a on vm1 -> b on vm2" || return 1
    echo "vm3# cnet exec clab-vmspread-d ping -c 3 -W 2 10.97.2.0   (a, on vm1)" >&2
    on 3 cnet exec clab-vmspread-d ping -c 3 -W 2 10.97.2.0 >/dev/null || lab_fail "d on vm3 -> a on vm1" || return 1
    on 2 cnet exec clab-vmspread-b ping -c 3 -W 2 10.97.0.1 >/dev/null || lab_fail "b -> c on vm2" || return 1
    n=$(on 1 cnet lab inspect --name vmspread | grep -c '^[abcd] ') || true
    [ "$n" = 4 ] || lab_fail "vm1 shows $n of the lab's 4 nodes" || return 1
    echo "vm2# cnet lab destroy --name vmspread" >&2
    on 2 cnet lab destroy --name vmspread >&2 || lab_fail "destroy from vm2" || return 1
    for n in 1 2 3; do
        [ -z "$(on "$n" cnet ps -aq)" ] || lab_fail "containers left on vm$n" || return 1
        [ -z "$(on "$n" cnet network ls -q --filter label=cnet.lab=vmspread)" ] ||
            lab_fail "networks of the lab left on vm$n" || return 1
        ! on "$n" "ip -o link show | grep -q ' vxl'" || lab_fail "a vxl staging link left on vm$n" || return 1
    done
    keys=$(on 1 "ETCDCTL_API=3 etcdctl --endpoints http://$NET.1:2379 get --prefix --keys-only /cnet/v1/lab") ||
        lab_fail "reading etcd" || return 1
    [ -z "$keys" ] || lab_fail "keys of the lab left in etcd: $keys" || return 1
    echo "PASS: one lab over the three guests: deployed from vm3, links across guests carry traffic," \
        "shown whole from vm1, destroyed from vm2 without a trace"
}

# IPv6 on an overlay network (issue 16): a dual-stack network made on vm1, a container on vm2 and
# one on vm3, ping6 by name (AAAA records of the embedded DNS) both ways, vm2's address among the
# permanent IPv6 neighbours of vm3's VXLAN device; then everything removed again.
check_ipv6() {
    local net=ov6 id addr
    ipv6_fail() {
        echo "FAIL: IPv6 overlay: $* (left in place; logs: $0 exec vmN cat /var/log/cnetd.log)" >&2
        return 1
    }
    for n in 2 3; do on "$n" "cnet rm -f v6c$n >/dev/null 2>&1; true"; done
    on 1 cnet network rm $net >/dev/null 2>&1 || true
    echo "vm1# cnet network create -d overlay --ipv6 --subnet 10.96.0.0/24 --subnet fd00:96::/64 $net" >&2
    on 1 cnet network create -d overlay --ipv6 --subnet 10.96.0.0/24 --subnet fd00:96::/64 $net >/dev/null &&
        on 2 cnet run -d --network $net --name v6c2 busybox sleep 1000 >/dev/null &&
        on 3 cnet run -d --network $net --name v6c3 busybox sleep 1000 >/dev/null ||
        ipv6_fail "a dual-stack network with a container on vm2 and on vm3" || return 1
    addr=$(on 2 cnet inspect -f "'{{(index .NetworkSettings.Networks \"$net\").GlobalIPv6Address}}'" v6c2)
    case $addr in fd00:96::*) ;; *) ipv6_fail "v6c2 has no IPv6 address of fd00:96::/64: '$addr'" || return 1 ;; esac
    echo "vm3# cnet exec v6c3 ping -6 -c 3 -W 2 v6c2   (v6c2 is $addr)" >&2
    on 3 cnet exec v6c3 ping -6 -c 3 -W 2 v6c2 >/dev/null || ipv6_fail "vm3's container does not ping6 vm2's by name" || return 1
    echo "vm2# cnet exec v6c2 ping -6 -c 3 -W 2 v6c3" >&2
    on 2 cnet exec v6c2 ping -6 -c 3 -W 2 v6c3 >/dev/null || ipv6_fail "vm2's container does not ping6 vm3's by name" || return 1
    id=$(on 1 cnet network inspect -f '{{.Id}}' $net)
    on 3 ip -6 neigh show dev "vx-${id:0:12}" nud permanent | grep -q "^$addr " ||
        ipv6_fail "vm3's vx-${id:0:12} has no permanent neighbour entry for $addr" || return 1
    for n in 2 3; do on "$n" "cnet rm -f v6c$n >/dev/null"; done
    on 1 cnet network rm $net >/dev/null || ipv6_fail "network rm $net" || return 1
    echo "PASS: IPv6 overlay across the guests: ping6 by name both ways, neighbour entries, removal"
}

# 802.1q, which the machine's kernel lacks: the suites' tests of VLAN parents (#[ignore]d on such
# a kernel, or taking their other branch there) run in a guest, whose kernel has it. The test
# binaries (those of `cargo test --workspace`, built here if they are not yet: a build of one
# package alone would unify features differently and build them again) go to the lab's shared
# directory; they run against the release binaries of /lab/bin, each test in namespaces of its
# own as on the machine. Each entry: the test's source file, then the tests.
VLAN_TESTS=(
    "crates/cnet-kernel/tests/macvlan.rs vlan_sub_interface vlan_on_this_kernel_names_what_is_missing"
    "tests/tests/macvlan.rs vlan_parent_is_made_and_removed_with_the_network
        vlan_parent_on_a_down_interface_is_refused_by_name vlan_parent_on_this_kernel_is_made_or_refused_by_name
        restart_recreates_a_missing_vlan_sub_interface"
)
check_vlan() {
    local artifacts entry src names exe out count binary
    vlan_fail() {
        echo "FAIL: 802.1q in a guest: $*" >&2
        return 1
    }
    on 2 "modprobe 8021q" || vlan_fail "the guest's kernel has no 8021q module" || return 1
    artifacts=$(cd "$REPO" && cargo test --workspace --no-run --message-format=json) ||
        vlan_fail "cargo test --workspace --no-run failed" || return 1
    for entry in "${VLAN_TESTS[@]}"; do
        read -r src names <<<"$(echo $entry)"
        count=$(wc -w <<<"$names")
        # The JSON line of the test target built from $src: its executable's path.
        exe=$(grep -F "/$src\"" <<<"$artifacts" | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
        [ -n "$exe" ] && [ -x "$exe" ] || vlan_fail "no test binary built from $src ('$exe')" || return 1
        binary=${exe##*/}
        cp "$exe" "$STATE/share/$binary"
        echo "vm2# $src: $binary --include-ignored --exact $names" >&2
        out=$(on 2 "cd /tmp && CNET_BIN_DIR=/lab/bin /lab/share/$binary --include-ignored --exact \
            --test-threads 1 $names 2>&1") || vlan_fail "the VLAN tests of $src: $out" || return 1
        grep -q "^test result: ok. $count passed; 0 failed; 0 ignored" <<<"$out" ||
            vlan_fail "the VLAN tests of $src did not all run: $(grep '^test result' <<<"$out")" || return 1
        rm -f "$STATE/share/$binary"
    done
    echo "PASS: 802.1q in a guest: VLAN sub-interfaces made, refused on a down interface, re-created after" \
        "a restart and removed (the tests the machine's kernel cannot run)"
}

# Link impairments (issue 16) where the kernel has netem, as the guests' does: a p2p link between
# two containers on vm1, impaired per direction with `cnet link set`, measured over 10000 pings:
# the added delay within 5 % of what was set, the loss within 0.5 percentage points; then the other
# end's own delay adds up (per direction), corruption drops what it hits, and a rate holds.
check_netem() {
    local net=nl a=na b=nb peer base
    netem_fail() {
        echo "FAIL: netem: $* (left in place; logs: $0 exec vm1 cat /var/log/cnetd.log)" >&2
        return 1
    }
    # INTERVAL COUNT: "SENT RECEIVED MEDIAN_MS MIN_MS MAX_MS" of one ping run, from each reply's time
    # (the median: under emulation a timer fires late now and then, which would move the mean).
    pings() {
        local out counts
        out=$(on 1 cnet exec "$a" ping -i "$1" -c "$2" -W 3 "$peer") || true
        counts=$(echo "$out" | awk '/packets transmitted/ { print $1, $4 }')
        echo "$out" | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | sort -n |
            awk -v counts="$counts" '{ rtt[NR] = $1 }
                END { if (NR == 0 || counts == "") exit 1; print counts, rtt[int((NR + 1) / 2)], rtt[1], rtt[NR] }'
    }
    # within VALUE LOW HIGH
    within() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }
    on 1 "cnet rm -f $a $b >/dev/null 2>&1; cnet network rm $net >/dev/null 2>&1; true"
    step 1 cnet network create -d p2p --subnet 192.0.2.0/31 $net >/dev/null &&
        step 1 cnet run -d --network $net --name $a busybox sleep 100000 >/dev/null &&
        step 1 cnet run -d --network $net --name $b busybox sleep 100000 >/dev/null ||
        netem_fail "a p2p link between two containers" || return 1
    peer=$(on 1 cnet inspect -f "'{{(index .NetworkSettings.Networks \"$net\").IPAddress}}'" $b)
    local sent got avg min max added loss
    read -r sent got base min max < <(pings 0.002 1000) || netem_fail "ping $peer (no impairment)" || return 1
    echo "  no impairment: $got/$sent replies, rtt median $base ms"

    step 1 cnet link set $a:eth0 --delay 20ms --loss 1% >/dev/null || netem_fail "cnet link set" || return 1
    read -r sent got avg min max < <(pings 0.002 10000) || netem_fail "ping $peer (20ms, 1%)" || return 1
    added=$(awk -v a="$avg" -v b="$base" 'BEGIN { printf "%.2f", a - b }')
    loss=$(awk -v s="$sent" -v g="$got" 'BEGIN { printf "%.2f", (s - g) * 100 / s }')
    echo "  $a sends with 20ms, 1%: $got/$sent replies (loss $loss %), rtt median $avg ms: $added ms added"
    [ "$sent" = 10000 ] && within "$added" 19 21 && within "$loss" 0.5 1.5 ||
        netem_fail "20ms and 1% set: $added ms added (19-21), $loss % lost (0.5-1.5) over $sent" || return 1

    # The other direction is the other end's: its 10 ms add to the 20 ms. (Within 10 %: under
    # emulation each netem stage's timer fires about 0.5 ms late, and here there are two.)
    step 1 cnet link set $b:eth0 --delay 10ms >/dev/null || netem_fail "cnet link set $b" || return 1
    read -r sent got avg min max < <(pings 0.002 2000) || netem_fail "ping $peer (20ms + 10ms)" || return 1
    added=$(awk -v a="$avg" -v b="$base" 'BEGIN { printf "%.2f", a - b }')
    echo "  and $b sends with 10ms: rtt median $avg ms: $added ms added"
    within "$added" 27 33 || netem_fail "20ms one way and 10ms back: $added ms added (27-33)" || return 1

    # Jitter spreads the delay (20ms +- 5ms); corruption flips bits, which checksums then drop.
    step 1 cnet link set $b:eth0 --delay none >/dev/null &&
        step 1 cnet link set $a:eth0 --delay 20ms --jitter 5ms --loss none --corrupt 5% >/dev/null ||
        netem_fail "cnet link set (jitter, corrupt)" || return 1
    read -r sent got avg min max < <(pings 0.002 2000) || netem_fail "ping $peer (jitter, corrupt)" || return 1
    loss=$(awk -v s="$sent" -v g="$got" 'BEGIN { printf "%.2f", (s - g) * 100 / s }')
    echo "  20ms +- 5ms, 5% corrupt: rtt min/median/max $min/$avg/$max ms, loss $loss %"
    within "$(awk -v a="$max" -v b="$min" 'BEGIN { print a - b }')" 6 100 && within "$loss" 3 7 ||
        netem_fail "jitter 5ms: spread $min-$max ms (6 ms at least); corrupt 5%: $loss % lost (3-7)" || return 1

    # A rate: 10 Mbit/s over 3 s of iperf3 (the host's, in the containers' namespaces).
    local pa pb bps
    step 1 cnet link set $a:eth0 --delay none --jitter none --corrupt none --rate 10mbit >/dev/null ||
        netem_fail "cnet link set --rate" || return 1
    pa=$(on 1 cnet inspect -f "'{{.State.Pid}}'" $a)
    pb=$(on 1 cnet inspect -f "'{{.State.Pid}}'" $b)
    on 1 "nsenter -t $pb -n iperf3 -s -1 -D" || netem_fail "iperf3 server in $b" || return 1
    bps=$(on 1 "sleep 0.5; nsenter -t $pa -n iperf3 -c $peer -t 3 -J" |
        awk -F'[:,]' '/"sum_received"/ { r = 1 } r && /"bits_per_second"/ { print $2 + 0; exit }')
    # (TCP's goodput under a 10 Mbit/s tbf is about 9.5 Mbit/s; an emulated CPU loses a little more.)
    echo "  rate 10mbit: iperf3 $a -> $b $(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e6 }') Mbit/s"
    within "${bps:-0}" 8e6 10.5e6 || netem_fail "rate 10mbit: $bps bit/s (8-10.5 Mbit/s)" || return 1

    on 1 cnet rm -f $a $b >/dev/null && on 1 cnet network rm $net >/dev/null || netem_fail "clean-up" || return 1
    echo "PASS: netem in a guest: 20 ms and 1 % over 10000 packets, per direction, jitter, corruption, rate"
}

# Encrypted overlay networks (-o encrypted: WireGuard between the guests). A container on vm2 and
# one on vm3 reach each other by name; a capture on vm2's NIC while vm3's container fetches a page
# of a known pattern from vm2's shows the pattern for a plain overlay network and never for the
# encrypted one; the key rotated twice during a continuous ping loses nothing and reaches both
# guests; removal leaves no WireGuard link on the guests and no key in etcd. Prints its own PASS.
check_encrypted() {
    local id pid n out key=/cnet/v1/secrets/
    local etcdctl="ETCDCTL_API=3 etcdctl --endpoints http://$NET.1:2379"
    efail() {
        echo "FAIL: encrypted overlay: $* (left in place; logs: $0 exec vmN cat /var/log/cnetd.log)" >&2
        return 1
    }
    for n in 2 3; do on "$n" 'cnet rm -f ec2 ec3 pc2 pc3 >/dev/null 2>&1; true'; done
    on 1 'cnet network rm enc plain >/dev/null 2>&1; true'

    id=$(on 1 cnet network create -d overlay -o encrypted enc) && pid=$(on 1 cnet network create -d overlay plain) ||
        efail "network create" || return 1
    local page='mkdir -p /www && for i in $(seq 300); do echo CNETPLAINTEXTPATTERN; done >/www/p && exec httpd -f -p 80 -h /www'
    for n in e p; do
        local net=enc
        [ $n = e ] || net=plain
        on 2 "cnet run -d --network $net --name ${n}c2 busybox sh -c '$page'" >/dev/null &&
            on 3 "cnet run -d --network $net --name ${n}c3 busybox sleep 3600" >/dev/null ||
            efail "containers on $net" || return 1
    done
    echo "vm3# cnet exec ec3 ping -c 3 -W 2 ec2" >&2
    on 3 cnet exec ec3 ping -c 3 -W 2 ec2 || efail "vm3's container does not reach vm2's by name" || return 1
    on 2 "ip -o link show | grep -q ' wg-${id:0:12}:'" || efail "no WireGuard link wg-${id:0:12} on vm2" || return 1

    # capture N: how often the pattern shows in a capture of vm2's NIC while Nc3 fetches Nc2's page
    # (the page itself must arrive: 300 lines), then how many captured packets are VXLAN (4789).
    capture() {
        local got
        on 2 'rm -f /tmp/enc.pcap; (timeout 60 tcpdump -U -ni eth0 -w /tmp/enc.pcap udp >/dev/null 2>&1 &); sleep 2' &&
            got=$(on 3 "cnet exec ${1}c3 timeout 10 wget -qO- http://${1}c2/p | grep -c CNETPLAINTEXTPATTERN") &&
            [ "$got" = 300 ] || {
            echo "the page did not arrive on network ${1}: $got lines" >&2
            return 1
        }
        on 2 'sleep 1; pkill -x tcpdump; sleep 1; [ -s /tmp/enc.pcap ] || exit 1;' \
            'echo $(tcpdump -nr /tmp/enc.pcap -A 2>/dev/null | grep -c CNETPLAINTEXTPATTERN)' \
            '$(tcpdump -nr /tmp/enc.pcap udp port 4789 2>/dev/null | wc -l) $(tcpdump -nr /tmp/enc.pcap 2>/dev/null | wc -l)'
    }
    local plain enc
    plain=$(capture p) && enc=$(capture e) || efail "capturing on vm2's eth0" || return 1
    echo "capture on vm2's eth0 (pattern lines, VXLAN packets, packets): plain overlay $plain; encrypted $enc"
    set -- $plain $enc
    [ "$1" -gt 0 ] && [ "$2" -gt 0 ] || efail "the plain overlay's capture shows no plaintext (the check cannot fail)" || return 1
    [ "$4" = 0 ] && [ "$5" = 0 ] && [ "$6" -gt 0 ] || efail "plaintext or VXLAN on the underlay of the encrypted network" || return 1

    # The VXLAN guard on vm2: a packet naming plain's VNI from the lab's own namespace (on the
    # segment, on no host of the cluster) and one naming enc's VNI in plaintext from vm3 (a peer,
    # but not through WireGuard) reach neither VXLAN device; one naming plain's VNI from vm3, sent
    # last, reaches plain's (the marker).
    local vni_enc vni_plain rx_enc rx_plain
    vni() { on 1 "cnet network inspect $1" | sed -n 's/.*"com.docker.network.driver.overlay.vxlanid_list": "\([0-9]*\)".*/\1/p'; }
    vni_enc=$(vni enc) && vni_plain=$(vni plain) && [ -n "$vni_enc" ] && [ -n "$vni_plain" ] ||
        efail "reading the networks' VNIs" || return 1
    pid=${pid:0:12}
    rx() { on 2 "cat /sys/class/net/vx-$1/statistics/rx_packets"; }
    vxlan_packet() { printf '\\x08\\x00\\x00\\x00\\x%02x\\x%02x\\x%02x\\x00%s' $(($1 >> 16)) $((($1 >> 8) & 255)) $(($1 & 255)) \
        "$(printf '\\xff%.0s' 1 2 3 4 5 6)\\x02\\x00\\x00\\x00\\x00\\x99\\x08\\x06$(printf '\\x00%.0s' $(seq 28))"; }
    rx_enc=$(rx "${id:0:12}") && rx_plain=$(rx "$pid") || efail "reading vm2's VXLAN counters" || return 1
    ip netns exec "$NS" bash -c "printf '$(vxlan_packet "$vni_plain")' >/dev/udp/$NET.2/4789" &&
        on 3 "bash -c \"printf '$(vxlan_packet "$vni_enc")' >/dev/udp/$NET.2/4789\"" &&
        on 3 "bash -c \"printf '$(vxlan_packet "$vni_plain")' >/dev/udp/$NET.2/4789\"" ||
        efail "sending hand-made VXLAN packets" || return 1
    wait_on 2 20 "the marker on vx-$pid" "[ \$(cat /sys/class/net/vx-$pid/statistics/rx_packets) -gt $rx_plain ]" ||
        efail "vm3's plaintext packet for plain's VNI never reached vm2 (the check cannot fail)" || return 1
    sleep 1
    [ "$(rx "$pid")" = $((rx_plain + 1)) ] || efail "a stranger's packet reached plain's VXLAN device on vm2" || return 1
    [ "$(rx "${id:0:12}")" = "$rx_enc" ] || efail "a plaintext packet reached enc's VXLAN device on vm2" || return 1
    echo "VXLAN guard on vm2: a stranger's packet for plain (VNI $vni_plain) and vm3's plaintext one for enc" \
        "(VNI $vni_enc) dropped, vm3's for plain taken"

    # Two rotations during a 20 s ping (every 0.2 s): nothing lost, both guests on the last key.
    on 1 "$etcdctl get $key${id}" | grep -q '"serial":1' || efail "no key for enc in etcd" || return 1
    on 3 cnet exec ec3 ping -q -i 0.2 -c 100 -W 1 ec2 >"$STATE/enc.ping" 2>&1 &
    local ping=$!
    sleep 5
    echo "vm1# cnet network rotate-key enc (twice, during a ping)" >&2
    on 1 cnet network rotate-key enc && sleep 5 && on 1 cnet network rotate-key enc || efail "rotate-key" || return 1
    wait "$ping"
    grep -E 'transmitted|round-trip' "$STATE/enc.ping"
    grep -q '100 packets transmitted, 100 packets received' "$STATE/enc.ping" || efail "packets lost across the rotation" || return 1
    for n in 2 3; do
        wait_on "$n" 20 "key 3 on vm$n" "grep -q 'network secret received network=enc serial=Some(3)' /var/log/cnetd.log" ||
            efail "vm$n did not apply the rotated key" || return 1
    done
    on 3 cnet exec ec3 ping -c 2 -W 2 ec2 >/dev/null || efail "ec3 lost ec2 after the rotation" || return 1

    # Removal: no WireGuard link left, no key in etcd (an etcdctl failure is a failure).
    for n in 2 3; do on "$n" 'cnet rm -f ec2 ec3 pc2 pc3 >/dev/null 2>&1; true'; done
    on 1 cnet network rm enc plain >/dev/null || efail "network rm" || return 1
    for n in 1 2 3; do
        out=$(on "$n" 'ip -o link show') || efail "ip link on vm$n" || return 1
        ! grep -q ' wg-' <<<"$out" || efail "a WireGuard link is left on vm$n" || return 1
    done
    out=$(on 1 "$etcdctl get --prefix --keys-only /cnet/v1/") || efail "etcdctl on vm1" || return 1
    ! grep -q "$key\|$id" <<<"$out" || efail "keys of enc left in etcd: $out" || return 1
    echo "PASS: encrypted overlay: by name across guests, no plaintext on the underlay (the plain overlay's" \
        "capture shows it), forged VXLAN dropped, key rotated twice during a ping with no loss, nothing left after removal"
}

cmd=${1:-}
shift || true
case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    test) cmd_test "$@" ;;
    etcd) cmd_etcd "$@" ;;
    exec)
        [ $# -ge 2 ] || die "usage: $0 exec N|vmN CMD..."
        n=${1#vm}
        shift
        guest_ok "$n"
        on "$n" "$@"
        ;;
    console)
        [ $# -eq 1 ] || die "usage: $0 console N|vmN"
        n=${1#vm}
        guest_ok "$n"
        cat "$STATE/vm$n.console"
        ;;
    diagnose)
        [ $# -eq 1 ] || die "usage: $0 diagnose N|vmN"
        n=${1#vm}
        guest_ok "$n"
        diagnose "$n"
        ;;
    *) die "usage: $0 up | exec N CMD... | test [CHECK] | status | console N | diagnose N | etcd stop|start | down" ;;
esac
