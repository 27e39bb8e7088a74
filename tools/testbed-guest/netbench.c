/* netbench: TCP throughput and request latency from inside the network benchmark's guest
 * (tools/testbed-guest/init, scenario netbench), against servers on the host side that the guest
 * reaches at its gateway (tools/bench/net.py):
 *   netbench send HOST PORT MIB      sends MIB MiB, waits for the server's 8-byte count
 *   netbench recv HOST PORT MIB      asks for MIB MiB and reads them
 *   netbench rr HOST PORT SECONDS    1-byte request, 1-byte answer, over one connection, repeated
 * Each prints one line: "mibps=X bytes=N seconds=S" or "rtt_us=X requests=N seconds=S".
 * Timing is the guest's CLOCK_MONOTONIC, the same under every VMM. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int dial(const char *host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
      connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("connect");
    exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void full(int fd, void *buf, size_t n, int writing) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = writing ? write(fd, (char *)buf + done, n - done) : read(fd, (char *)buf + done, n - done);
    if (r <= 0) {
      perror(writing ? "write" : "read");
      exit(1);
    }
    done += r;
  }
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: netbench send|recv|rr HOST PORT MIB|SECONDS\n");
    return 2;
  }
  const char *mode = argv[1];
  int fd = dial(argv[2], atoi(argv[3]));
  long arg = atol(argv[4]);
  static char buf[1 << 16];
  if (strcmp(mode, "send") == 0 || strcmp(mode, "recv") == 0) {
    uint64_t total = (uint64_t)arg << 20, done = 0;
    int sending = mode[0] == 's';
    /* The request: direction and size, 9 bytes. */
    char req[9];
    req[0] = sending ? 'S' : 'R';
    memcpy(req + 1, &total, 8);
    full(fd, req, sizeof req, 1);
    double t0 = now();
    while (done < total) {
      size_t n = total - done < sizeof buf ? total - done : sizeof buf;
      if (sending) {
        full(fd, buf, n, 1);
      } else {
        ssize_t r = read(fd, buf, n);
        if (r <= 0) {
          perror("read");
          return 1;
        }
        n = r;
      }
      done += n;
    }
    if (sending) {
      uint64_t seen;
      full(fd, &seen, 8, 0); /* the server has all of it */
    }
    double s = now() - t0;
    printf("mibps=%.1f bytes=%llu seconds=%.3f\n", total / s / (1 << 20), (unsigned long long)total, s);
  } else {
    char req[9] = {'E'}, b = 'x';
    full(fd, req, sizeof req, 1);
    long n = 0;
    double t0 = now(), end = t0 + arg;
    while (now() < end) {
      full(fd, &b, 1, 1);
      full(fd, &b, 1, 0);
      n++;
    }
    double s = now() - t0;
    printf("rtt_us=%.1f requests=%ld seconds=%.3f\n", s / n * 1e6, n, s);
  }
  close(fd);
  return 0;
}
