#!/usr/bin/env python3
"""Display benchmark against QEMU: one guest (the test bed's `fbspin` scenario, redrawing its
whole 1280x800 virtio-gpu screen forever) served over VNC by Vireo's runner and by QEMU's
own VNC server (-device virtio-gpu-pci -vnc), one VMM at a time, each read for SECONDS by the
same client (benches/display.rs in VIREO_BENCH_REMOTE mode). Run by
tools/bench/display-guest.sh (inside the test bed's L1 where this host lacks hardware
virtualization, so the guest's drawing is slow and the figures are for comparison only).

Arguments: KERNEL INITRD VIREOCTL BENCH_BINARY [SECONDS] [ROUNDS]"""
import os
import signal
import subprocess
import sys
import tempfile
import time

kernel, initrd, vireoctl, bench = sys.argv[1:5]
seconds = sys.argv[5] if len(sys.argv) > 5 else "10"
rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 2
MEM = 512
CMDLINE = "console=ttyS0 quiet panic=-1 vireo.test=fbspin"
PORT_VIREO, PORT_QEMU = 5931, 5932
TIMEOUT = 300
work = tempfile.mkdtemp()


def wait_for(path, needle):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if needle in f.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.5)
    tail = open(path, "rb").read()[-2000:].decode(errors="replace") if os.path.exists(path) else ""
    raise SystemExit(f"no {needle!r} within {TIMEOUT} s; console tail:\n{tail}")


def measure(name, pid, port):
    env = dict(os.environ, VIREO_BENCH_SECONDS=seconds,
               VIREO_BENCH_REMOTE=f"{name}=127.0.0.1:{port}={pid}")
    done = subprocess.run([bench], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measuring {name} failed:\n{done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()


def fresh(name):
    """A console log path of its own for each boot (an old one would already say SPINNING)."""
    fresh.n = getattr(fresh, "n", 0) + 1
    return os.path.join(work, f"{name}-{fresh.n}.log")


def vireo():
    domain = os.path.join(work, "vireo.xml")
    with open(domain, "w") as f:
        f.write(
            f"<domain type='kvm'><name>bench-display</name><memory unit='MiB'>{MEM}</memory>"
            f"<vcpu>1</vcpu><cpu mode='host-passthrough'/><os><type arch='x86_64'>hvm</type>"
            f"<kernel>{kernel}</kernel><initrd>{initrd}</initrd><cmdline>{CMDLINE}</cmdline></os>"
            f"<devices><video><model type='virtio'/></video>"
            f"<graphics type='vnc' port='{PORT_VIREO}' listen='127.0.0.1'/></devices></domain>")
    log = fresh("vireo")
    # A detached runner serves VNC (`create --console` runs the VM in its own process, without).
    subprocess.run([vireoctl, "create", domain], check=True, stdin=subprocess.DEVNULL,
                   capture_output=True)
    console = subprocess.Popen([vireoctl, "console", "bench-display"], stdin=subprocess.PIPE,
                               stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(log, b"VIREO-L2 FB SPINNING")
        pids = subprocess.run(["pgrep", "-f", "runner bench-display"], capture_output=True,
                              text=True).stdout.split()
        if not pids:
            raise SystemExit("cannot find the runner of bench-display")
        return measure("vireo (runner)", pids[0], PORT_VIREO)
    finally:
        subprocess.run([vireoctl, "destroy", "bench-display"], capture_output=True)
        console.stdin.close()
        console.wait(timeout=60)


def qemu():
    log = fresh("qemu")
    p = subprocess.Popen(
        ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-m", str(MEM), "-smp", "1",
         "-machine", "q35", "-nodefaults", "-no-user-config", "-display", "none",
         "-device", "virtio-gpu-pci", "-vnc", f"127.0.0.1:{PORT_QEMU - 5900}",
         "-serial", f"file:{log}", "-kernel", kernel, "-initrd", initrd, "-append", CMDLINE],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(log, b"VIREO-L2 FB SPINNING")
        return measure("qemu-q35 (its VNC)", p.pid, PORT_QEMU)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)


rows = []
for r in range(rounds):
    for run in (vireo, qemu):
        lines = run()
        if not rows:
            rows.extend(lines[:2])
        rows.append(lines[-1])
        print(f"round {r + 1}/{rounds}: {lines[-1]}", flush=True)
print()
print("\n".join(rows))
