/* randread: 4 KiB random reads with O_DIRECT from a block device, one at a time (queue depth 1),
 * for the disk benchmark's guest (tools/testbed-guest/init, scenario blkbench):
 *   randread DEVICE SECONDS   prints "iops=N reads=N seconds=S"
 * Offsets are 4 KiB-aligned, spread over the whole device by a fixed-seed xorshift generator,
 * so every run (under Vireo and under QEMU) reads the same sequence. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: randread DEVICE SECONDS\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY | O_DIRECT);
  if (fd < 0) {
    perror(argv[1]);
    return 1;
  }
  uint64_t size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) != 0 || size < 4096) {
    perror("BLKGETSIZE64");
    return 1;
  }
  void *buf;
  if (posix_memalign(&buf, 4096, 4096) != 0) return 1;
  uint64_t blocks = size / 4096, x = 0x9e3779b97f4a7c15ull, reads = 0;
  double limit = atof(argv[2]), start = now(), elapsed = 0;
  while (elapsed < limit) {
    for (int i = 0; i < 64; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      if (pread(fd, buf, 4096, (off_t)(x % blocks) * 4096) != 4096) {
        perror("pread");
        return 1;
      }
      reads++;
    }
    elapsed = now() - start;
  }
  printf("iops=%.0f reads=%llu seconds=%.2f\n", reads / elapsed, (unsigned long long)reads, elapsed);
  return 0;
}
