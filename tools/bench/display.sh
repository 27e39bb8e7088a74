#!/bin/sh
# Display-path benchmark: frames per second and CPU cost of the runner's VNC server at
# 1280x800 with the whole screen changing every frame (a thread rewrites a Scanout as fast as
# a guest could; a VNC client reads it over loopback), a 16-bit client (pixel conversion),
# and an idle viewer of a still screen.
#
#   tools/bench/display.sh [SECONDS]    (default 5 s per case; builds in release mode)
#
# QEMU's VNC server is not measured here: it cannot be fed a Scanout, and a fair comparison
# needs the same guest drawing full frames in both; see the report of the VNC branch.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
VIREO_BENCH_SECONDS=${1:-5} cargo bench --quiet --no-default-features --bench display
