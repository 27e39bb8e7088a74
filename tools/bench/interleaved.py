"""What the Vireo-against-QEMU benchmarks (disk.py, net.py) share: rounds run interleaved
(Vireo, QEMU, Vireo, QEMU, ...) so that a busy machine slows both alike, and a Markdown table of
each metric's median per VMM with the ratio Vireo / QEMU."""
import statistics


def run_rounds(rounds, vmms, metrics, one):
    """Calls one(vmm) -> {metric: value} for each VMM in each round, printing every result."""
    results = {name: [] for name in vmms}
    for i in range(rounds):
        for name in vmms:
            r = one(name)
            results[name].append(r)
            print(f"round {i + 1}/{rounds} {name}: " +
                  " ".join(f"{k}={r[k]:g}" for k in metrics), flush=True)
    return results


def print_table(title, vmms, results, metrics, units):
    """The medians as a Markdown table under `title`; a ratio column when there are two VMMs."""
    print()
    print(title)
    print()
    print("| metric | " + " | ".join(f"{n} median" for n in vmms) +
          (" | Vireo / QEMU |" if len(vmms) == 2 else " |"))
    print("| --- | " + " | ".join("---" for _ in vmms) + (" | --- |" if len(vmms) == 2 else " |"))
    for k in metrics:
        med = [statistics.median(r[k] for r in results[n]) for n in vmms]
        row = f"| {k} ({units[k]}) | " + " | ".join(f"{v:.1f}" for v in med)
        if len(vmms) == 2:
            row += f" | {med[0] / med[1]:.2f}" if med[1] else " | -"
        print(row + " |")
