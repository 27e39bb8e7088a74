/* cpuid-dump: what the guest's CPUID instruction returns, on every online CPU, as lines the
 * Linux-guest tests compare with the table Vireo resolved:
 *   VIREO-CPUID cpu=N leaf=0xL sub=0xS eax=... ebx=... ecx=... edx=...
 * Leaves: 0..max basic, 0x40000000..max hypervisor, 0x80000000..max extended. Subleaf 0 always;
 * for leaves with subleaves, 1..63 where any register is non-zero. The enumerating leaves (4,
 * 0xB, 0x1F, 0x8000001D) stop at the subleaf that ends the enumeration (cache type 0, level
 * type 0), announced as `VIREO-CPUID cpu=N leaf=0xL stop=0xS`: past it the CPU only echoes the
 * subleaf, and 64 such lines per leaf and CPU cost minutes of serial output in the nested test
 * bed. `cpuid-dump topo` limits CPUs other than 0 to the per-CPU topology leaves (1, 4, 0xB,
 * 0x1F, 0x8000001E). */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static int indexed(unsigned l) {
  static const unsigned list[] = {4, 7, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x17, 0x18, 0x1d, 0x1e, 0x1f,
                                  0x20, 0x23, 0x24, 0x8000001d, 0x80000020, 0x80000026};
  for (unsigned i = 0; i < sizeof list / sizeof list[0]; i++) if (list[i] == l) return 1;
  return 0;
}

/* Whether subleaf `r` ends the enumeration of leaf `l` (an enumerating leaf's invalid entry). */
static int ends_enumeration(unsigned l, const unsigned r[4]) {
  if (l == 4 || l == 0x8000001d) return (r[0] & 0x1f) == 0;
  if (l == 0xb || l == 0x1f) return ((r[2] >> 8) & 0xff) == 0;
  return 0;
}

static int topo_leaf(unsigned l) { return l == 1 || l == 4 || l == 0xb || l == 0x1f || l == 0x8000001e; }

static void range(int cpu, unsigned first, int only_topo) {
  unsigned r[4];
  cpuid(first, 0, r);
  unsigned last = r[0];
  if (last < first || last - first > 0xff) last = first; /* an absent range reports garbage */
  for (unsigned l = first; l <= last; l++) {
    if (only_topo && !topo_leaf(l)) continue;
    for (unsigned s = 0; s < (indexed(l) ? 64u : 1u); s++) {
      cpuid(l, s, r);
      if (s && !(r[0] | r[1] | r[2] | r[3])) continue;
      printf("VIREO-CPUID cpu=%d leaf=0x%x sub=0x%x eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x\n", cpu, l, s,
             r[0], r[1], r[2], r[3]);
      if (ends_enumeration(l, r)) {
        printf("VIREO-CPUID cpu=%d leaf=0x%x stop=0x%x\n", cpu, l, s);
        break;
      }
    }
  }
}

int main(int argc, char **argv) {
  int topo = argc > 1 && !strcmp(argv[1], "topo");
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  for (int cpu = 0; cpu < n; cpu++) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set)) { printf("VIREO-CPUID cpu=%d unreachable\n", cpu); continue; }
    unsigned r[4];
    cpuid(0x40000000, 0, r);
    range(cpu, 0, topo && cpu);
    if (r[0] >= 0x40000000 && r[0] <= 0x400000ff) range(cpu, 0x40000000, topo && cpu);
    range(cpu, 0x80000000, topo && cpu);
  }
  printf("VIREO-CPUID end\n");
  return 0;
}
