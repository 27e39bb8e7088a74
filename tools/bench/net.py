#!/usr/bin/env python3
"""Network benchmark: Vireo + passt against QEMU + passt (q35, virtio-net-pci, `-netdev stream` to
its own passt) with the same guest (the test bed's kernel and initramfs, scenario netbench), rounds
interleaved (Vireo, QEMU, Vireo, QEMU, ...). Run by tools/bench/net.sh (inside the test bed's L1
where this host lacks hardware virtualization).

    net.py KERNEL INITRD VIREOCTL [ROUNDS [MIB [SECS [VMMS]]]]

The servers run here, on 127.0.0.1; the guest reaches them at its gateway address (passt maps
the gateway to the host's loopback). Per boot the guest sends MIB MiB (guest -> host), receives
MIB MiB (host -> guest) and makes 1-byte request/response round trips for SECS seconds over one
connection (TCP_NODELAY). The table gives each metric's median per VMM and the ratio
Vireo / QEMU (throughput: higher is better; round-trip time: lower is better)."""
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interleaved import print_table, run_rounds  # noqa: E402  (beside this script)

kernel, initrd, vireoctl = sys.argv[1:4]
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
mib = int(sys.argv[5]) if len(sys.argv) > 5 else 64
secs = int(sys.argv[6]) if len(sys.argv) > 6 else 5
vmms = (sys.argv[7] if len(sys.argv) > 7 else "vireo,qemu").split(",")
MEM = 256
TIMEOUT = 900
METRICS = ["send", "recv", "rr"]
UNITS = {"send": "MiB/s guest→host", "recv": "MiB/s host→guest", "rr": "µs per round trip"}


def serve(conn):
    """One benchmark connection: 'S' + size (the guest sends), 'R' + size (we send), 'E' (echo)."""
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = b""
        while len(head) < 9:
            part = conn.recv(9 - len(head))
            if not part:
                return
            head += part
        kind, size = head[:1], struct.unpack("<Q", head[1:])[0]
        if kind == b"S":
            seen = 0
            while seen < size:
                part = conn.recv(1 << 20)
                if not part:
                    return
                seen += len(part)
            conn.sendall(struct.pack("<Q", seen))
        elif kind == b"R":
            chunk = bytes(1 << 16)
            left = size
            while left > 0:
                n = min(left, len(chunk))
                conn.sendall(chunk[:n])
                left -= n
        elif kind == b"E":
            while True:
                b = conn.recv(1)
                if not b:
                    return
                conn.sendall(b)


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(8)
port = listener.getsockname()[1]


def accept_forever():
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


threading.Thread(target=accept_forever, daemon=True).start()

CMDLINE = (f"console=ttyS0 quiet panic=-1 vireo.test=netbench vireo.port={port} "
           f"vireo.mib={mib} vireo.secs={secs}")
work = tempfile.mkdtemp(prefix="vireo-netbench-")
os.chmod(work, 0o777)  # passt runs as nobody when we are root: its socket goes here
domain = os.path.join(work, "bench.xml")
with open(domain, "w") as f:
    f.write(
        f"<domain type='kvm'><name>bench-net</name><memory unit='MiB'>{MEM}</memory>"
        f"<vcpu>1</vcpu><cpu mode='host-passthrough'/><os><type arch='x86_64'>hvm</type>"
        f"<kernel>{kernel}</kernel><initrd>{initrd}</initrd><cmdline>{CMDLINE}</cmdline></os>"
        f"<on_poweroff>destroy</on_poweroff><devices><interface type='user'>"
        f"<mac address='52:54:00:be:4c:01'/><backend type='passt'/><model type='virtio'/>"
        f"</interface></devices></domain>"
    )
PASST_SOCKET = os.path.join(work, "passt.sock")
QEMU = ["qemu-system-x86_64", "-machine", "q35", "-accel", "kvm", "-cpu", "host",
        "-m", str(MEM), "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
        "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
        "-append", CMDLINE,
        "-netdev", f"stream,id=n0,server=off,addr.type=unix,addr.path={PASST_SOCKET}",
        "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:be:4c:01"]


def run(argv):
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=TIMEOUT)
        return p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return (e.stdout or b"").decode(errors="replace") + f"\n(timed out after {TIMEOUT} s)"


def one(name):
    if name == "vireo":
        out = run([vireoctl, "create", domain, "--console"])
    else:
        # QEMU's own passt, started the way its manual says, on a socket QEMU connects to.
        if os.path.exists(PASST_SOCKET):
            os.unlink(PASST_SOCKET)
        passt = subprocess.Popen(["passt", "--foreground", "--quiet", "--socket", PASST_SOCKET],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        for _ in range(100):
            if os.path.exists(PASST_SOCKET):
                break
            time.sleep(0.05)
        try:
            out = run(QEMU)
        finally:
            passt.terminate()
            passt.wait()
    r = {}
    for m in METRICS:
        line = re.search(rf"VIREO-L2 NETBENCH {m} (.*)", out)
        value = line and re.search(r"(mibps|rtt_us)=([\d.]+)", line[1])
        if not value:
            raise SystemExit(f"{name}: no NETBENCH {m} result; output tail:\n{out[-3000:]}")
        r[m] = float(value[2])
    return r


results = run_rounds(rounds, vmms, METRICS, one)
print_table(f"Network, median of {rounds} rounds (virtio-net + passt, 1 vCPU, {mib} MiB each way, "
      f"{secs} s of 1-byte request/response, one TCP connection each)",
            vmms, results, METRICS, UNITS)
