#!/bin/sh
# Key-press latency into a real Linux guest (tools/bench/display-latency.py): `vireoctl
# send-key`, the GUI's screen channel and a VNC client's KeyEvent, each timed from the host's
# send to the guest's serial echo of the evdev event (a round trip on the host's clock; the
# guest's clock cannot be compared with it). Where this host lacks hardware virtualization it
# runs inside the test bed's L1 (tools/testbed), so absolute figures are nested-TCG figures.
#
#   tools/bench/display-latency.sh [PRESSES]      (default 20 per path; builds in release mode)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --quiet --release --no-default-features --bin vireoctl
set -- $(tools/testbed paths) "${1:-20}"
args="$1 $2 $root/target/release/vireoctl $3"
if target/release/vireoctl host-validate 2>/dev/null | grep -Eq '^hardware virtualization +: PASS'; then
  exec python3 tools/bench/display-latency.py $args
fi
exec tools/testbed run python3 tools/bench/display-latency.py $args
