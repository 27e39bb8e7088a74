#!/bin/sh
# Linux boot benchmark: Vireo against QEMU microvm and q35 with the test bed's stock Debian
# kernel and initramfs, interleaved, median of RUNS (default 5). Where this host lacks hardware
# virtualization it runs inside the test bed's L1 (tools/testbed), so absolute figures are TCG
# figures: read the ratios.
#
#   tools/bench/linux-boot.sh [RUNS]   (VIREO_BENCH_VMMS=vireo,vireo-ps2kbd,… picks VMMs)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${1:-5}
cargo build --quiet --release --no-default-features --bin vireoctl --bin vireo-runner
set -- $(tools/testbed paths)
kernel=$1 initrd=$2
if target/release/vireoctl host-validate 2>/dev/null | grep -Eq '^hardware virtualization +: PASS'; then
  exec python3 tools/bench/linux-boot.py "$kernel" "$initrd" "$root/target/release/vireoctl" "$runs" "${VIREO_BENCH_VMMS:-}"
fi
exec tools/testbed run python3 tools/bench/linux-boot.py "$kernel" "$initrd" "$root/target/release/vireoctl" "$runs" "${VIREO_BENCH_VMMS:-}"
