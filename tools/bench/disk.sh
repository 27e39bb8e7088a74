#!/bin/sh
# Disk benchmark: Vireo against QEMU (-machine q35, virtio-blk, cache=none, aio=threads) with the
# test bed's stock Debian kernel and its blkbench guest (tools/testbed-guest/init): sequential
# O_DIRECT write and read of MIB MiB and SECS seconds of 4 KiB O_DIRECT random reads on one raw
# image, Vireo and QEMU interleaved for ROUNDS rounds (default 3) in ONE run, medians compared.
# Where this host lacks hardware virtualization it all runs inside one test bed L1
# (tools/testbed), so absolute figures are nested-TCG figures: read the ratios.
#
#   tools/bench/disk.sh [ROUNDS [MIB [SECS]]]     defaults 3, 64, 5
#   VIREO_BENCH_VMMS=qemu tools/bench/disk.sh     only one side (vireo, qemu; default both)
#   VIREO_BENCH_IO=native tools/bench/disk.sh     io_uring on both sides (default threads)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
rounds=${1:-3} mib=${2:-64} secs=${3:-5}
cargo build --quiet --release --no-default-features --bin vireoctl
set -- $(tools/testbed paths)
kernel=$1 initrd=$2
args="$kernel $initrd $root/target/release/vireoctl $rounds $mib $secs ${VIREO_BENCH_VMMS:-vireo,qemu}"
if target/release/vireoctl host-validate 2>/dev/null | grep -Eq '^hardware virtualization +: PASS'; then
  exec env VIREO_BENCH_IO="${VIREO_BENCH_IO:-threads}" python3 tools/bench/disk.py $args
fi
exec tools/testbed run env VIREO_BENCH_IO="${VIREO_BENCH_IO:-threads}" python3 tools/bench/disk.py $args
