#!/bin/sh
# Cold-start benchmark of the GUI against virt-manager (issue 6 §8): time from exec to the first
# frame of the main window, under Xvfb, on this machine, runs interleaved (vireo, virt-manager,
# vireo, …) so that load from other processes hits both alike.
#
#   tools/bench/startup.sh [RUNS]        (default 10 runs each; builds `vireo` in release mode)
#
# Needs: Xvfb (xvfb), dbus-run-session (dbus), a C compiler with libx11-dev and libxdamage-dev,
# and virt-manager (Debian package `virt-manager`, run as
# `virt-manager --no-fork --connect test:///default`, libvirt's built-in mock hypervisor).
#
# Each run gets a fresh Xvfb, a fresh session bus (dbus-run-session) and empty XDG_*/HOME
# directories, so neither app sees user state, caches or a running instance of itself.
# Accessibility is off for both (GTK_A11Y=none, NO_AT_BRIDGE=1): a fresh session bus would
# otherwise make the first app that asks launch the at-spi bus, a cost a desktop session has
# already paid.
#
# "First frame" is measured by tools/bench/first-frame.c: the first X DAMAGE report on the
# mapped top-level window with the app's title ("Vireo" / "Virtual Machine Manager"), i.e. the
# app has put its first pixels into its window. The "map" column is when that window was mapped.
#
# The environment is passed through. On a machine without a GPU render node (/dev/dri/renderD*),
# as under this Xvfb, vireo itself draws with cairo and keeps GL uninitialised (src/ui/renderer.rs):
# GTK 4's GL renderer on Mesa's software rasteriser costs seconds. `GSK_RENDERER=ngl
# tools/bench/startup.sh` measures the software-GL path anyway. virt-manager (GTK 3) draws with
# cairo either way. `RUST_LOG=vireo::startup=debug vireo` prints where vireo's start-up time goes.
set -eu

runs=${1:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --quiet --release --bin vireo
# The benchmark's own packages (not needed by the test suite, so not in apt-packages.txt).
missing=""
command -v virt-manager >/dev/null || missing="$missing virt-manager"
dpkg-query -W -f='${Status}' libxdamage-dev 2>/dev/null | grep -q 'install ok installed' || missing="$missing libxdamage-dev"
if [ -n "$missing" ]; then
    echo "startup.sh: installing$missing" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo=sudo; fi
    $sudo apt-get install -y -q --no-install-recommends $missing >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/first-frame" tools/bench/first-frame.c -lX11 -lXdamage

# Runs one cold start of "$@" and appends "MAP_MS FRAME_MS" to the file $1; $2 is the title.
measure() {
    out=$1 title=$2
    shift 2
    home=$(mktemp -d "$work/home.XXXXXX")
    mkdir -p "$home/run" && chmod 700 "$home/run"
    # A display number nobody uses (other Xvfb servers, e.g. xvfb-run's :99, may be running).
    num=200
    while [ -e "/tmp/.X$num-lock" ] || [ -e "/tmp/.X11-unix/X$num" ]; do num=$((num + 1)); done
    display=:$num
    Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
    xvfb=$!
    # Xvfb is ready once its socket exists.
    i=0
    while [ ! -S "/tmp/.X11-unix/X${display#:}" ] && [ $i -lt 500 ]; do
        sleep 0.01
        i=$((i + 1))
    done
    env DISPLAY="$display" HOME="$home" XDG_CONFIG_HOME="$home/config" \
        XDG_DATA_HOME="$home/data" XDG_CACHE_HOME="$home/cache" XDG_STATE_HOME="$home/state" \
        XDG_RUNTIME_DIR="$home/run" GTK_A11Y=none NO_AT_BRIDGE=1 \
        dbus-run-session -- "$work/first-frame" "$title" 30000 -- "$@" \
        >>"$out" 2>"$work/last.err" || {
        echo "startup.sh: $1 did not show its window; its output:" >&2
        cat "$work/last.err" >&2
    }
    kill "$xvfb" 2>/dev/null || true
    wait "$xvfb" 2>/dev/null || true
    rm -rf "$home"
}

: >"$work/vireo"
: >"$work/virt-manager"
n=1
while [ $n -le "$runs" ]; do
    measure "$work/vireo" "Vireo" "$root/target/release/vireo"
    measure "$work/virt-manager" "Virtual Machine Manager" \
        virt-manager --no-fork --connect test:///default
    n=$((n + 1))
done

# median, min, max of column $1 of file $2
stats() {
    cut -d' ' -f"$1" "$2" | sort -n | awk '{a[NR]=$1}
        END {m = NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.0f %.0f %.0f\n", m, a[1], a[NR]}'
}

printf '%s\n' "Cold start to first frame, Xvfb, $runs runs each, interleaved ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-16s %-6s %8s %8s %8s %6s\n' app event median_ms min_ms max_ms ok_runs
for app in vireo virt-manager; do
    ok=$(wc -l <"$work/$app")
    [ "$ok" -gt 0 ] || { printf '%-16s no successful run\n' "$app"; continue; }
    set -- $(stats 1 "$work/$app")
    printf '%-16s %-6s %8s %8s %8s %6s\n' "$app" map "$1" "$2" "$3" "$ok"
    set -- $(stats 2 "$work/$app")
    printf '%-16s %-6s %8s %8s %8s %6s\n' "$app" frame "$1" "$2" "$3" "$ok"
    eval "frame_$(echo $app | tr - _)=$1"
done
if [ -n "${frame_vireo:-}" ] && [ -n "${frame_virt_manager:-}" ]; then
    awk -v a="$frame_vireo" -v b="$frame_virt_manager" \
        'BEGIN {printf "ratio vireo/virt-manager (median first frame): %.3f (target < 0.333)\n", a/b}'
fi
