#!/usr/bin/env python3
"""Linux boot benchmark: Vireo against QEMU (-machine microvm and q35), same kernel, initramfs,
memory and command line, runs interleaved. Run by tools/bench/linux-boot.sh (inside the test
bed's L1 where this host lacks hardware virtualization).

For each VMM and run: wall time from process start to the guest's first userspace line
("VIREO-L2 UP"), the guest's own uptime at that line, the VMM's CPU time (user + system, from
wait4), peak RSS, and the VMM's own memory at that line: the resident memory of its processes
outside the guest's RAM mapping (what the VMM costs beyond the guest). Prints medians and the
ratios against QEMU."""
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

kernel, initrd, vireoctl = sys.argv[1], sys.argv[2], sys.argv[3]
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 5
MEM = 256
CMDLINE = "console=ttyS0 quiet panic=-1 vireo.test=up"
TIMEOUT = 300

work = tempfile.mkdtemp()
domain = os.path.join(work, "bench.xml")
with open(domain, "w") as f:
    f.write(
        f"<domain type='kvm'><name>bench-linux</name><memory unit='MiB'>{MEM}</memory>"
        f"<vcpu>1</vcpu><cpu mode='host-passthrough'/><os><type arch='x86_64'>hvm</type>"
        f"<kernel>{kernel}</kernel><initrd>{initrd}</initrd><cmdline>{CMDLINE}</cmdline></os>"
        f"</domain>"
    )

QEMU = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-m", str(MEM), "-smp", "1",
        "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio", "-no-reboot",
        "-kernel", kernel, "-initrd", initrd, "-append", CMDLINE]
# The same domain with libvirt's PS/2 keyboard: what probing the i8042 and atkbd costs.
domain_ps2 = os.path.join(work, "bench-ps2.xml")
with open(domain_ps2, "w") as f:
    f.write(open(domain).read().replace("</os>", "</os><devices><input type='keyboard' bus='ps2'/></devices>")
            .replace("bench-linux", "bench-linux-ps2"))
RUNNER = os.path.join(os.path.dirname(vireoctl), "vireo-runner")
VMMS = {
    # What `vireoctl start` and the app run: the runner process, its console read by a
    # separate `vireoctl console` (not counted: it is the viewer, not the VMM).
    "vireo-runner": ["runner"],
    "vireo": [vireoctl, "create", domain, "--console"],
    "vireo-ps2kbd": [vireoctl, "create", domain_ps2, "--console"],
    "qemu-microvm": QEMU[:1] + ["-machine", "microvm"] + QEMU[1:],
    "qemu-q35": QEMU[:1] + ["-machine", "q35"] + QEMU[1:],
}


def descendants(root):
    """`root` and every process below it (the runner vireoctl starts, for instance)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def own_memory_mib(root):
    """Resident memory of `root`'s process tree outside mappings as large as the guest's RAM."""
    total_kib = 0
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/smaps") as f:
                size = 0
                for line in f:
                    if line.startswith("Size:"):
                        size = int(line.split()[1])
                    elif line.startswith("Rss:") and size < MEM * 1024 * 9 // 10:
                        total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def start_runner():
    """The runner, once it says `ready`, and a console client reading the guest's serial."""
    p = subprocess.Popen([RUNNER, "bench-linux", "--file", domain], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for line in p.stdout:
        if line.strip() == b"ready":
            break
        if line.startswith(b"error:"):
            raise SystemExit(f"vireo-runner: {line.decode().strip()}")
    viewer = subprocess.Popen([vireoctl, "console", "bench-linux"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p, viewer


def one(argv):
    start = time.monotonic()
    viewer = None
    if argv == ["runner"]:
        p, viewer = start_runner()
        source = viewer
    else:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        source = p
    out, marker_at, uptime, own = b"", None, None, None
    while time.monotonic() - start < TIMEOUT:
        ready, _, _ = select.select([source.stdout], [], [], 1.0)
        if not ready:
            continue
        chunk = os.read(source.stdout.fileno(), 65536)
        if not chunk:
            break
        out += chunk
        if marker_at is None and b"VIREO-L2 UP" in out:
            marker_at = time.monotonic() - start
            own = own_memory_mib(p.pid)
        if uptime is None and marker_at is not None:
            rest = out[out.index(b"VIREO-L2 UP"):]
            if b"\n" in rest:  # the line may arrive in pieces
                uptime = float(rest.split(b"\n")[0].split(b"uptime=")[1].strip())
        if marker_at is not None and b"reboot: Power down" in out:
            break
    # Reap with wait4 (not Popen.poll, which would take the child's rusage with it).
    pid, _, ru = os.wait4(p.pid, os.WNOHANG)
    if pid == 0:
        time.sleep(2)  # let it power off on its own
        pid, _, ru = os.wait4(p.pid, os.WNOHANG)
    if pid == 0:
        p.send_signal(signal.SIGKILL)
        _, _, ru = os.wait4(p.pid, 0)
    p.returncode = 0  # reaped above
    if viewer is not None:
        try:
            viewer.wait(timeout=10)
        except subprocess.TimeoutExpired:
            viewer.kill()
            viewer.wait()
    if marker_at is None:
        tail = out.decode(errors="replace")[-2000:]
        raise SystemExit(f"{argv[0]}: no VIREO-L2 UP within {TIMEOUT} s; output tail:\n{tail}")
    return marker_at, uptime, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, own


# A fifth argument (or VIREO_BENCH_VMMS), e.g. vireo,vireo-ps2kbd, runs only those.
picked = sys.argv[5] if len(sys.argv) > 5 else os.environ.get("VIREO_BENCH_VMMS", "")
only = [n for n in picked.split(",") if n]
if only:
    VMMS = {n: argv for n, argv in VMMS.items() if n in only}
results = {name: [] for name in VMMS}
for i in range(runs):
    for name, argv in VMMS.items():
        results[name].append(one(argv))
        print(f"run {i + 1}/{runs} {name}: to userspace {results[name][-1][0]:.2f} s", flush=True)

med = {n: [statistics.median(col) for col in zip(*rows)] for n, rows in results.items()}
print()
print(f"Linux boot, median of {runs} runs ({MEM} MiB, 1 vCPU, same kernel and initramfs)")
print()
refs = [r for r in ("qemu-microvm", "qemu-q35") if r in med]
print("| VMM | to userspace (wall) | guest uptime at /init | VMM CPU | peak RSS |"
      " VMM memory outside guest RAM |"
      + "".join(f" wall vs {r.removeprefix('qemu-')} |" for r in refs))
print("| --- | --- | --- | --- | --- | --- |" + " --- |" * len(refs))
for n, (wall, up, cpu, rss, own) in med.items():
    print(f"| {n} | {wall:.2f} s | {up:.2f} s | {cpu:.2f} s | {rss:.1f} MiB | {own:.1f} MiB |"
          + "".join(f" {wall / med[r][0]:.2f} |" for r in refs))
