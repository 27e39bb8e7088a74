#!/bin/sh
# Engine start-up benchmark: `vireoctl create probe.xml --console` from exec to exit.
#
#   tools/bench/engine.sh [RUNS]        (default 20 runs; builds vireoctl in release mode)
#
# Prints a table of medians: wall and CPU time of the whole command, the engine's own phases
# (host probe = KVM caps + the CPUID-enforcement test guest; VM build = memory, kernel load,
# ACPI, vCPUs; first guest exit = from Vm::start to the guest's first port write, i.e. the
# guest's first instructions have run), and peak RSS next to the guest's RAM size.
# Anchors (Firecracker's published figures): <= 8 CPU ms VMM start, <= 5 MiB VMM overhead.
set -eu

runs=${1:-20}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --quiet --release --no-default-features --bin vireoctl --bin vireo-runner
tools/build-test-guests >/dev/null
cache=${VIREO_TEST_GUESTS:-$HOME/.cache/vireo/test-guests}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for mem in 64 1024 quiet; do
size=$mem; mode=p
[ "$mem" = quiet ] && size=64 && mode=q
cat > "$work/probe-$mem.xml" <<XML
<domain type='kvm'>
  <name>bench-probe</name>
  <memory unit='MiB'>$size</memory>
  <vcpu>1</vcpu>
  <cpu mode='host-passthrough'/>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>$cache/probe.elf</kernel>
    <cmdline>console=ttyS0 vireo.probe=$mode</cmdline>
  </os>
</domain>
XML
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

bin=target/release/vireoctl
for mem in 64 1024 quiet; do
    : > "$work/rows-$mem"
    i=0
    while [ "$i" -lt "$runs" ]; do
        VIREO_BENCH_TIMINGS=1 /usr/bin/time -f "time: %e %U %S %M" \
            "$bin" create "$work/probe-$mem.xml" --console >/dev/null 2>"$work/err" || {
            cat "$work/err" >&2; exit 1; }
        t=$(grep '^time:' "$work/err")
        p=$(grep '^timings:' "$work/err" | sed 's/[a-z_]*=//g; s/timings: //')
        # wall ms, CPU ms (getrusage, all threads), peak RSS KiB, probe, build, first exit, total
        echo "$t $p" | awk '{printf "%.2f %.2f %d %s %s %s %s\n", $2*1000, $10, $5, $6, $7, $8, $9}' >> "$work/rows-$mem"
        i=$((i + 1))
    done
done
/usr/bin/time -f "%M" "$bin" version 2>"$work/base" >/dev/null
base_rss=$(tail -n 1 "$work/base")

printf "\nvireoctl create probe.xml --console, median of %s runs (release build)\n\n" "$runs"
printf "| guest | wall ms | CPU ms (user+sys) | host probe ms | VM build ms | first guest exit ms | engine total ms | peak RSS MiB |\n"
printf "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
for mem in 64 1024 quiet; do
    col() { cut -d' ' -f"$1" "$work/rows-$mem" | median; }
    rss=$(col 3)
    label="$mem MiB, CPUID report"
    [ "$mem" = quiet ] && label="64 MiB, powers off at once"
    printf "| %s | %s | %s | %s | %s | %s | %s | %.1f |\n" "$label" "$(col 1)" "$(col 2)" "$(col 4)" "$(col 5)" "$(col 6)" "$(col 7)" "$(echo "$rss" | awk '{print $1/1024}')"
done
printf "\nbaseline: peak RSS of \`vireoctl version\` = %.1f MiB (binary + libc, no VM)\n" "$(echo "$base_rss" | awk '{print $1/1024}')"
printf "guest RAM is mapped lazily: peak RSS counts only the guest pages touched (kernel image, tables).\n"

# The runner (what `vireoctl start` and the app start for each VM) against the in-process
# `create --console`, with the same quiet guest, timed precisely (wait4's rusage, not time's
# 10 ms ticks); and what merely loading each binary costs.
VIREO_BENCH_WORK=$work python3 - "$runs" <<'PY'
import os, statistics, subprocess, sys, time
runs, work = int(sys.argv[1]), os.environ["VIREO_BENCH_WORK"]
xml = f"{work}/probe-quiet.xml"
runtime = f"{work}/run"
os.makedirs(runtime, mode=0o700, exist_ok=True)
env = dict(os.environ, XDG_RUNTIME_DIR=runtime, XDG_STATE_HOME=f"{work}/state")
cases = [
    ("vireo-runner, 64 MiB guest that powers off at once", ["target/release/vireo-runner", "bench-probe", "--file", xml]),
    ("vireoctl create --console, same guest", ["target/release/vireoctl", "create", xml, "--console"]),
    ("vireo-runner --version (loading only)", ["target/release/vireo-runner", "--version"]),
    ("vireoctl version (loading only)", ["target/release/vireoctl", "version"]),
]
print("\n| process | to `ready` ms | wall ms | CPU ms | peak RSS MiB |\n| --- | --- | --- | --- | --- |")
for label, argv in cases:
    wall, cpu, ready = [], [], []
    for _ in range(runs):
        start = time.monotonic()
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        # The runner says `ready` once the VM runs: the start as `vireoctl start` sees it.
        for line in p.stdout:
            if line.strip() == b"ready":
                ready.append((time.monotonic() - start) * 1000)
                break
        p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall.append((time.monotonic() - start) * 1000)
        cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
        if status != 0:
            sys.exit(f"{label}: exit status {status}")
    # Peak RSS from /usr/bin/time: a child forked from Python counts Python's pages until it
    # execs, so wait4's figure here would be Python's.
    out = f"{work}/rss"
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + argv, env=env, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rss = int(open(out).read().split()[-1]) / 1024
    m = statistics.median
    to_ready = f"{m(ready):.1f}" if ready else "-"
    print(f"| {label} | {to_ready} | {m(wall):.1f} | {m(cpu):.1f} | {rss:.1f} |")
PY
