#!/bin/sh
# Display-path benchmark: frames per second and CPU cost of the runner's VNC server at
# 1280x800 with the whole screen changing every frame (a thread rewrites a Scanout as fast as
# a guest could; a VNC client reads it over loopback), a 16-bit client (pixel conversion),
# and an idle viewer of a still screen.
#
#   tools/bench/display.sh [SECONDS]    (default 5 s per case; builds in release mode)
#
# QEMU's VNC server cannot be fed a Scanout: tools/bench/display-guest.sh compares the two
# with the same guest drawing full frames, read by this benchmark's client.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
VIREO_BENCH_SECONDS=${1:-5} cargo bench --quiet --no-default-features --bench display
