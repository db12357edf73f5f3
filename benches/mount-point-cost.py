#!/usr/bin/env python3
"""What one namespace file costs its filesystem: the empty file cnetd bind-mounts a sandbox's
namespace on is created at CreateSandbox and unlinked at RemoveSandbox. In one directory holding
LIVE files, CHURN times create and unlink one more, and report the medians and p99s, on each
directory given (default: /tmp and /dev/shm, this machine's disk and a tmpfs). The reason cnetd
keeps <run>/netns on a tmpfs where /run is on a disk (docs/architecture.md, "Kernel object names").

    python3 benches/mount-point-cost.py [DIR ...]   (LIVE=1000 CHURN=3000 in the environment)
"""
import os
import sys
import tempfile
import time

LIVE = int(os.environ.get("LIVE", 1000))
CHURN = int(os.environ.get("CHURN", 3000))


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def measure(base):
    d = tempfile.mkdtemp(dir=base, prefix="cnet-mount-point-cost.")
    # Names as long as cnet's (a sandbox id is 64 hex digits).
    live = [os.path.join(d, f"live{i:060d}") for i in range(LIVE)]
    try:
        for p in live:
            open(p, "w").close()
        create, unlink = [], []
        for i in range(CHURN):
            p = os.path.join(d, f"{i:064x}")
            t = time.perf_counter()
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
            create.append(time.perf_counter() - t)
            os.close(fd)
            t = time.perf_counter()
            os.unlink(p)
            unlink.append(time.perf_counter() - t)
    finally:
        for p in live:
            if os.path.exists(p):
                os.unlink(p)
        os.rmdir(d)
    fs = os.popen(f"stat -f -c %T {base}").read().strip()
    us = lambda s: f"{s * 1e6:.1f} µs"
    print(f"| {base} ({fs}) | {us(percentile(create, .5))} / {us(percentile(create, .99))} "
          f"| {us(percentile(unlink, .5))} / {us(percentile(unlink, .99))} |")


print(f"{LIVE} files live, {CHURN} created and unlinked one after another\n")
print("| directory | create: median / p99 | unlink: median / p99 |")
print("|---|---|---|")
for base in sys.argv[1:] or ["/tmp", "/dev/shm"]:
    measure(base)
