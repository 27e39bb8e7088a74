#!/usr/bin/env python3
"""Key-press latency into a real Linux guest, by the three ways a key reaches the virtio
keyboard: `vireoctl send-key` (a process per key, as scripts use it), the GUI's screen channel
(a JSON key message on the runner's control socket) and a VNC client's KeyEvent. Run by
tools/bench/display-latency.sh (inside the test bed's L1 where this host lacks hardware
virtualization).

    display-latency.py KERNEL INITRD VIREOCTL [PRESSES]

The guest (scenario `keys` of tools/testbed-guest/init) prints "VIREO-L2 KEY code value" on
its serial console for each evdev event. Host and guest clocks cannot be compared, so this
measures the round trip on the host's clock: from just before the key is sent to the moment
the guest's line for that press arrives on `vireoctl console`. That includes the guest's
serial output and the console's relay, so it bounds the input latency from above."""
import json
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

kernel, initrd, vireoctl = sys.argv[1:4]
presses = int(sys.argv[4]) if len(sys.argv) > 4 else 20
NAME = "bench-keys"
KEY_A, KEYSYM_A = 30, 0x61
BOOT_TIMEOUT = 300

work = tempfile.mkdtemp(prefix="vireo-keybench-")
runtime = os.path.join(work, "xdg-runtime")
os.makedirs(runtime, mode=0o700)
env = dict(os.environ, XDG_RUNTIME_DIR=runtime, XDG_CONFIG_HOME=os.path.join(work, "config"),
           XDG_DATA_HOME=os.path.join(work, "data"))
# In the nested test bed the KVM paravirtual leaves stay hidden (see tests/linux_support).
features = "<features><kvm><hidden state='on'/></kvm></features>" \
    if os.environ.get("VIREO_IN_TESTBED") else ""
domain = os.path.join(work, "keys.xml")
with open(domain, "w") as f:
    f.write(
        f"<domain type='kvm'><name>{NAME}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>"
        f"{features}<os><type arch='x86_64'>hvm</type><kernel>{kernel}</kernel>"
        f"<initrd>{initrd}</initrd><cmdline>console=ttyS0 quiet nokaslr panic=-1 vireo.test=keys"
        f"</cmdline></os><on_poweroff>destroy</on_poweroff><devices>"
        f"<video><model type='virtio'/></video><input type='keyboard' bus='virtio'/>"
        f"<graphics type='vnc' autoport='yes'/></devices></domain>"
    )


def ctl(*args):
    return subprocess.run([vireoctl, *args], env=env, capture_output=True, text=True)


lines = queue.Queue()


def follow(stream):
    for raw in stream:
        lines.put((time.monotonic(), raw.decode(errors="replace").rstrip()))


def wait_for(text, timeout):
    """The host time the first new console line containing `text` arrived."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            at, line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            sys.exit(f"display-latency: no '{text}' from the guest within {timeout} s")
        if text in line:
            return at


def measure(press, release):
    """Milliseconds from each press to the guest's line for it."""
    samples = []
    for _ in range(presses):
        sent = time.monotonic()
        press()
        samples.append((wait_for(f"VIREO-L2 KEY {KEY_A} 1", 30) - sent) * 1000)
        release()
        wait_for(f"VIREO-L2 KEY {KEY_A} 0", 30)
    return samples


def send_key():
    out = ctl("send-key", NAME, str(KEY_A))
    if out.returncode != 0:
        sys.exit(f"display-latency: send-key failed: {out.stderr}")


def screen_channel():
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(runtime, "vireo", f"{NAME}.sock"))
    s.sendall(b'{"request":"screen"}\n')
    reply = s.makefile("rb").readline()
    if json.loads(reply).get("reply") != "screen":
        sys.exit(f"display-latency: the runner answered {reply!r} to a screen request")
    # The updates are drained so the runner never waits on this client.
    threading.Thread(target=lambda: [None for _ in iter(lambda: s.recv(1 << 16), b"")],
                     daemon=True).start()

    def key(pressed):
        s.sendall(json.dumps({"input": "key", "code": KEY_A, "pressed": pressed}).encode()
                  + b"\n")
    return key


def read_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise OSError("the VNC server hung up")
        data += chunk
    return data


def vnc():
    uri = ctl("domdisplay", NAME).stdout.strip()
    host, port = uri.removeprefix("vnc://").rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    read_exact(s, 12)
    s.sendall(b"RFB 003.008\n")
    types = read_exact(s, read_exact(s, 1)[0])
    if 1 not in types:
        sys.exit(f"display-latency: the VNC server wants authentication ({list(types)})")
    s.sendall(b"\x01")
    if read_exact(s, 4) != b"\0\0\0\0":
        sys.exit("display-latency: the VNC server refused the connection")
    s.sendall(b"\x01")
    init = read_exact(s, 24)
    read_exact(s, int.from_bytes(init[20:24], "big"))

    def key(down):
        s.sendall(bytes([4, int(down), 0, 0]) + KEYSYM_A.to_bytes(4, "big"))
    return key


def row(path, samples):
    samples = sorted(samples)
    p90 = samples[min(len(samples) - 1, int(len(samples) * 0.9))]
    return (f"| {path:<26} | {len(samples):>3} | {statistics.median(samples):>8.2f} | "
            f"{p90:>8.2f} | {samples[0]:>8.2f} | {samples[-1]:>8.2f} |")


started = ctl("create", domain)
if started.returncode != 0:
    sys.exit(f"display-latency: starting the guest failed: {started.stderr}")
console = subprocess.Popen([vireoctl, "console", NAME], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
threading.Thread(target=follow, args=(console.stdout,), daemon=True).start()
try:
    wait_for("VIREO-L2 KEYS READY", BOOT_TIMEOUT)
    results = [("vireoctl send-key", measure(send_key, lambda: None))]
    channel = screen_channel()
    results.append(("screen channel (GUI)",
                    measure(lambda: channel(True), lambda: channel(False))))
    keyboard = vnc()
    results.append(("VNC KeyEvent", measure(lambda: keyboard(True), lambda: keyboard(False))))
finally:
    ctl("destroy", NAME)
    console.kill()
print("key press -> guest evdev -> guest serial line seen by the host, milliseconds")
print("| path                       |   n |   median |      p90 |      min |      max |")
print("|----------------------------|-----|----------|----------|----------|----------|")
for path, samples in results:
    print(row(path, samples))
