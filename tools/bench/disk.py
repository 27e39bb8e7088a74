#!/usr/bin/env python3
"""Disk benchmark: Vireo against QEMU q35 (virtio-blk, cache=none) on the same raw
image with the same guest (the test bed's kernel and initramfs, scenario blkbench), rounds
interleaved (Vireo, QEMU, Vireo, QEMU, ...). Run by tools/bench/disk.sh (inside the test bed's L1
where this host lacks hardware virtualization).

    disk.py KERNEL INITRD VIREOCTL [ROUNDS [MIB [SECS [VMMS]]]]

VIREO_BENCH_IO=threads (default) compares Vireo's io='threads' with QEMU's aio=threads;
VIREO_BENCH_IO=native compares Vireo's io='native' (io_uring) with QEMU's aio=io_uring.

Each boot prints "VIREO-L2 BENCH seqread=MiB/s seqwrite=MiB/s randread_iops=N"; the table gives
each metric's median per VMM and the ratio Vireo / QEMU (higher is better for all three)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interleaved import print_table, run_rounds  # noqa: E402  (beside this script)

kernel, initrd, vireoctl = sys.argv[1:4]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
mib = int(sys.argv[5]) if len(sys.argv) > 5 else 64
secs = int(sys.argv[6]) if len(sys.argv) > 6 else 5
vmms = (sys.argv[7] if len(sys.argv) > 7 else "vireo,qemu").split(",")
MEM = 256
IO = os.environ.get("VIREO_BENCH_IO", "threads")
QEMU_AIO = {"threads": "threads", "native": "io_uring"}[IO]
TIMEOUT = 900
CMDLINE = f"console=ttyS0 quiet panic=-1 vireo.test=blkbench vireo.mib={mib} vireo.secs={secs}"
METRICS = ["seqwrite", "seqread", "randread_iops"]
UNITS = {"seqwrite": "MiB/s", "seqread": "MiB/s", "randread_iops": "IOPS"}

# The image lives on a real file system that takes O_DIRECT: in L1 the run's results folder
# (L1's tmpfs takes neither O_DIRECT nor large files), else the temporary directory.
work = tempfile.mkdtemp(prefix="vireo-diskbench-", dir=os.environ.get("VIREO_TESTBED_OUT"))
image = os.path.join(work, "bench.raw")
with open(image, "wb") as f:
    f.truncate((mib + 64) << 20)
domain = os.path.join(work, "bench.xml")
with open(domain, "w") as f:
    f.write(
        f"<domain type='kvm'><name>bench-disk</name><memory unit='MiB'>{MEM}</memory>"
        f"<vcpu>1</vcpu><cpu mode='host-passthrough'/><os><type arch='x86_64'>hvm</type>"
        f"<kernel>{kernel}</kernel><initrd>{initrd}</initrd><cmdline>{CMDLINE}</cmdline></os>"
        f"<on_poweroff>destroy</on_poweroff><devices><disk type='file' device='disk'>"
        f"<driver name='qemu' type='raw' cache='none' io='{IO}'/><source file='{image}'/>"
        f"<target dev='vda' bus='virtio'/></disk></devices></domain>"
    )

ARGV = {
    "vireo": [vireoctl, "create", domain, "--console"],
    "qemu": ["qemu-system-x86_64", "-machine", "q35", "-accel", "kvm", "-cpu", "host",
             "-m", str(MEM), "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
             "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
             "-append", CMDLINE,
             "-drive", f"file={image},if=virtio,format=raw,cache=none,aio={QEMU_AIO}"],
}


def one(name):
    try:
        p = subprocess.run(ARGV[name], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=TIMEOUT)
        out = p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + f"\n(timed out after {TIMEOUT} s)"
    m = re.search(r"VIREO-L2 BENCH seqread=([\d.]+) seqwrite=([\d.]+) randread_iops=(\d+)", out)
    if not m:
        raise SystemExit(f"{name}: no BENCH line; output tail:\n{out[-3000:]}")
    return {"seqread": float(m[1]), "seqwrite": float(m[2]), "randread_iops": float(m[3])}


results = run_rounds(rounds, vmms, METRICS, one)
shutil.rmtree(work)
print_table(f"Disk, median of {rounds} rounds (raw image, cache=none, Vireo io={IO}, QEMU "
      f"aio={QEMU_AIO}, {mib} MiB sequential, "
      f"{secs} s of 4 KiB random reads, queue depth 1, O_DIRECT in the guest)",
            vmms, results, METRICS, UNITS)
