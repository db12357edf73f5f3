#!/usr/bin/env bash
# Builds the `bird:lab` image offline from Debian's bird2 package and the host's busybox-static and
# C library, and imports it with `cnet image import`. Only the .deb is downloaded (from the host's
# apt sources; or give them: ./build-image.sh bird2_*.deb libssh-gcrypt-4_*.deb). Run as root.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# bird2 and the one library of it the host may lack (libssh, for RPKI over SSH); the rest of its
# libraries are the host's (Debian 12's, the same as the package's).
debs=("$@")
if [ ${#debs[@]} -eq 0 ]; then
    (cd "$work" && apt-get download bird2 libssh-gcrypt-4 >/dev/null 2>&1)
    debs=("$work"/*.deb)
fi
root=$work/root
mkdir -p "$root"/{bin,etc,run/bird,tmp,usr/sbin,usr/lib/x86_64-linux-gnu,lib/x86_64-linux-gnu,lib64,proc,sys,dev}
for deb in "${debs[@]}"; do
    dpkg-deb -x "$deb" "$work/deb"
done
cp "$work/deb/usr/sbin/bird" "$work/deb/usr/sbin/birdcl" "$root/usr/sbin/"
# birdc (readline) is left out: birdcl is the client.
libs=$(LD_LIBRARY_PATH="$work/deb/usr/lib/x86_64-linux-gnu" ldd "$root/usr/sbin/bird" "$root/usr/sbin/birdcl" |
    awk '/not found/ {print "MISSING " $1; next} /=>/ {print $3} /^\t\/lib64/ {print $1}' | sort -u)
if grep -q MISSING <<<"$libs"; then
    echo "build-image.sh: libraries not found: $(grep MISSING <<<"$libs" | cut -d' ' -f2 | tr '\n' ' ')" >&2
    exit 1
fi
for lib in $libs; do
    dest=${lib#"$work/deb"}
    mkdir -p "$root$(dirname "$dest")"
    cp -L "$lib" "$root$dest"
done
cp /bin/busybox "$root/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
ln -s ../bin/ip "$root/usr/sbin/ip" 2>/dev/null || true
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
echo "root:x:0:" > "$root/etc/group"
tar -C "$root" -cf "$work/bird.tar" .
${CNET:-cnet} image import "$work/bird.tar" bird:lab
