#!/bin/sh
# Network benchmark: Vireo + passt against QEMU + passt (-machine q35, virtio-net-pci, -netdev
# stream) with the test bed's stock Debian kernel and its netbench guest
# (tools/testbed-guest/init): TCP throughput guest -> host and host -> guest of MIB MiB each and
# SECS seconds of 1-byte request/response round trips, against servers on the host's loopback,
# Vireo and QEMU interleaved for ROUNDS rounds (default 3) in ONE run, medians compared. Where
# this host lacks hardware virtualization it all runs inside one test bed L1 (tools/testbed), so
# absolute figures are nested-TCG figures: read the ratios.
#
#   tools/bench/net.sh [ROUNDS [MIB [SECS]]]     defaults 3, 64, 5
#   VIREO_BENCH_VMMS=qemu tools/bench/net.sh     only one side (vireo, qemu; default both)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
rounds=${1:-3} mib=${2:-64} secs=${3:-5}
cargo build --quiet --release --no-default-features --bin vireoctl
set -- $(tools/testbed paths)
kernel=$1 initrd=$2
args="$kernel $initrd $root/target/release/vireoctl $rounds $mib $secs ${VIREO_BENCH_VMMS:-vireo,qemu}"
if target/release/vireoctl host-validate 2>/dev/null | grep -Eq '^hardware virtualization +: PASS'; then
  exec python3 tools/bench/net.py $args
fi
exec tools/testbed run python3 tools/bench/net.py $args
