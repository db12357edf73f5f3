#!/usr/bin/env bash
# Runs lab-docker.sh against a dockerd of its own inside a private network namespace (Debian's
# docker.io), so the host's interfaces and firewall are not touched, and removes everything after.
# nsenter --net, not `ip netns exec`: the latter remounts /sys and hides the cgroup mounts dockerd needs.
#   ./benches/peers/lab-docker-private.sh [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/cnet-labdocker.XXXX)
ns=cnetlabdocker$$
ip netns add "$ns"
cleanup() {
    nsenter --net=/run/netns/"$ns" sh -c "DOCKER_HOST=unix://$dir/docker.sock docker rm -f \$(DOCKER_HOST=unix://$dir/docker.sock docker ps -aq) >/dev/null 2>&1" || true
    [ -f "$dir/dockerd.pid" ] && kill "$(cat "$dir/dockerd.pid")" 2>/dev/null || true
    sleep 2
    pkill -f "$dir" 2>/dev/null || true
    grep "$dir" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
ip netns exec "$ns" ip link set lo up
nsenter --net=/run/netns/"$ns" dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
    -H "unix://$dir/docker.sock" --userland-proxy=false >"$dir/dockerd.log" 2>&1 &
export DOCKER_HOST=unix://$dir/docker.sock
for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
docker info >/dev/null
# busybox:local, imported from the host's static busybox, as ../shared/peers/setup.sh makes it.
root=$dir/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev}
cp /bin/busybox "$root/bin/busybox"
chroot "$root" /bin/busybox --install -s
tar -C "$root" -c . | docker import --change 'ENV PATH=/bin' - busybox:local >/dev/null
nsenter --net=/run/netns/"$ns" env DOCKER_HOST="$DOCKER_HOST" bash "$here/lab-docker.sh" "${1:-5}"
