#!/usr/bin/env bash
# Installs what cnet needs on a fresh Debian 12 machine (as root) and builds the workspace.
# Idempotent: run it again after a pull.
set -euo pipefail
cd "$(dirname "$0")/.."
# In CI every build is a first build: incremental caches only cost disk there.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

export DEBIAN_FRONTEND=noninteractive
packages=(
    nftables          # cnet-firewall drives the `nft` binary through the nftables crate
    iproute2          # tests and examples only (product code speaks netlink itself)
    protobuf-compiler # etcd-client's build script runs protoc
    libprotobuf-dev   # ... and imports google/protobuf/*.proto from it
    busybox-static    # the built-in busybox image, and the clients inside test namespaces
    bind9-dnsutils    # dig, for DNS tests
    etcd-server       # overlay control plane, started by tests on their own
    etcd-client       # etcdctl, to look into the store (tests, the overlay lab)
    iperf3 dnsperf ethtool # benchmarks
    libpcap-dev tcpdump # `cnet capture -f` compiles filters with libpcap; tests read its pcap with tcpdump
    docker-registry skopeo apache2-utils # `cnet pull` tests: a registry in a namespace, skopeo pushes test images, htpasswd
    util-linux procps psmisc
    qemu-system-x86 kmod # examples/vm-lab: the guests, and depmod/modprobe for their kernel's modules
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# etcd-server's package starts a host-wide etcd; cnet's tests start their own in namespaces.
if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
    systemctl disable --now etcd >/dev/null 2>&1 || true
fi

# docker-registry's package starts a host-wide registry; the pull tests start their own in namespaces.
if command -v systemctl >/dev/null && systemctl is-active --quiet docker-registry 2>/dev/null; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

# The .debs the OSPF lab example builds its image from (examples/labs/ospf), kept so that tests
# and reruns need no download.
LAB_DEBS=/var/cache/cnet/debs
mkdir -p "$LAB_DEBS"
for pkg in bird2 libssh-gcrypt-4; do
    if ! ls "$LAB_DEBS/${pkg}"_*.deb >/dev/null 2>&1; then
        (cd "$LAB_DEBS" && apt-get download "$pkg" >/dev/null 2>&1) \
            || (apt-get update -qq && cd "$LAB_DEBS" && apt-get download "$pkg" >/dev/null 2>&1) \
            || { echo "setup.sh: cannot download $pkg (the OSPF lab example needs it)" >&2; exit 1; }
    fi
done

# The kernel the VM lab's guests boot (examples/vm-lab): Debian's package, downloaded here and
# unpacked by vm-lab.sh into this directory, never installed (the machine's kernel and /boot stay
# as they are).
VM_CACHE=/var/cache/cnet/vm
mkdir -p "$VM_CACHE"
if ! ls "$VM_CACHE"/linux-image-[0-9]*-amd64_*_amd64.deb >/dev/null 2>&1; then
    kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1; }
    kernel=$(kpkg)
    if [ -z "$kernel" ]; then apt-get update -qq; kernel=$(kpkg); fi
    (cd "$VM_CACHE" && apt-get download "$kernel" >/dev/null 2>&1) \
        || { echo "setup.sh: cannot download the kernel package ${kernel:-of linux-image-amd64} (the VM lab needs it)" >&2; exit 1; }
fi

if ! command -v cargo >/dev/null; then
    echo "cargo not found: install a Rust toolchain (rustup, 1.90 or newer) first" >&2
    exit 1
fi
cargo build --workspace --all-targets
cargo build --release --bins
# The binaries on PATH, as symlinks, so a later build is picked up without installing again.
for bin in cnetd cnet cnet-supervise; do
    ln -sf "$PWD/target/release/$bin" "/usr/local/bin/$bin"
done
echo "cnet built: cnetd, cnet and cnet-supervise are in /usr/local/bin (-> target/release)"
