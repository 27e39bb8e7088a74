#!/bin/sh
# Display benchmark with a real guest, beside QEMU: the test bed's guest redraws its whole
# 1280x800 virtio-gpu screen forever; Vireo's runner and QEMU's own VNC server (q35,
# virtio-gpu-pci) serve it in turn, read by the same client as tools/bench/display.sh. Where
# this host lacks hardware virtualization it runs inside the test bed's L1 (TCG), where the
# guest draws slowly: read the two rows against each other, not as absolute figures.
#
#   tools/bench/display-guest.sh [SECONDS] [ROUNDS]   (default 10 s, 2 rounds)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
seconds=${1:-10} rounds=${2:-2}
cargo build --quiet --release --no-default-features --bin vireoctl
bench=$(cargo bench --no-default-features --bench display --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*\/deps\/display-[^"]*\)".*/\1/p' | tail -n 1)
[ -n "$bench" ] || { echo "display-guest.sh: could not build benches/display.rs" >&2; exit 1; }
set -- $(tools/testbed paths)
kernel=$1 initrd=$2
args="$kernel $initrd $root/target/release/vireoctl $bench $seconds $rounds"
if target/release/vireoctl host-validate 2>/dev/null | grep -Eq '^hardware virtualization +: PASS'; then
  exec python3 tools/bench/display-guest.py $args
fi
exec tools/testbed run python3 tools/bench/display-guest.py $args
