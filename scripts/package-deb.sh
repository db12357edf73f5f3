#!/usr/bin/env bash
# Builds the Debian package of cnet: cnet and cnetd, the systemd unit of cnetd, man pages and shell
# completions generated from the binaries' own definitions.
#
#   ./scripts/package-deb.sh [--no-build] [OUT_DIR]     # writes OUT_DIR/cnet_VERSION_ARCH.deb
#
# --no-build packages target/release as it is (scripts/setup.sh has built it).
set -euo pipefail
cd "$(dirname "$0")/.."
build=1
if [ "${1:-}" = "--no-build" ]; then
    build=0
    shift
fi
out=${1:-target/debian}
if [ "$build" = 1 ]; then
    cargo build --release --bins -p cnetd -p cnet -p cnet-runtime
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -m 0755 target/release/cnet "$stage/usr/bin/cnet"
# Next to cnet, where cnet looks for it: the supervisor of each running container.
install -D -m 0755 target/release/cnet-supervise "$stage/usr/bin/cnet-supervise"
install -D -m 0755 target/release/cnetd "$stage/usr/sbin/cnetd"
install -D -m 0644 packaging/cnetd.service "$stage/lib/systemd/system/cnetd.service"
mkdir -p "$stage/usr/share/man/man1" "$stage/usr/share/man/man8"
target/release/cnet __man "$stage/usr/share/man/man1"
target/release/cnetd --generate-man "$stage/usr/share/man/man8"
gzip -9n "$stage"/usr/share/man/man1/*.1 "$stage"/usr/share/man/man8/*.8
install -d "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d"
target/release/cnet completion bash > "$stage/usr/share/bash-completion/completions/cnet"
target/release/cnet completion zsh > "$stage/usr/share/zsh/vendor-completions/_cnet"
target/release/cnet completion fish > "$stage/usr/share/fish/vendor_completions.d/cnet.fish"
install -D -m 0644 README.md "$stage/usr/share/doc/cnet/README.md"
mkdir -p "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: cnet
Version: $version
Architecture: $arch
Maintainer: cnet developers <cnet@example.invalid>
Depends: nftables, busybox-static, libpcap0.8
Recommends: iproute2
Section: net
Priority: optional
Description: container networking with Docker's habits and lab topologies
 cnetd owns container networks (bridge, host, none, macvlan, p2p, VXLAN overlay), their
 firewall and their embedded DNS; cnet runs containers and topology labs on them.
CONTROL
cat > "$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    systemctl enable --now cnetd.service >/dev/null 2>&1 || true
fi
POSTINST
cat > "$stage/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl disable --now cnetd.service >/dev/null 2>&1 || true
fi
PRERM
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm"
mkdir -p "$out"
deb="$out/cnet_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zzstd --build "$stage" "$deb" >/dev/null
echo "$deb"
