/* The display and keyboard probes of the Linux test guest (static, no libc beyond the basics).
 *   fbkeys fill   writes a known pattern to /dev/fb0 (32 bpp) and prints
 *                 "VIREO-L2 FB FILLED WxH": pixel (x, y) is R = x*7+y, G = y*5+x*3, B = x^y
 *                 (each mod 256), the pattern tests/linux_guest.rs compares a screenshot with
 *   fbkeys keys [NAME]  finds the input device named NAME (default "Vireo Virtio Keyboard"),
 *                 prints "VIREO-L2 KEYS READY", then "VIREO-L2 KEY code value" for every key
 *                 event (autorepeats, value 2, left out)
 *   fbkeys spin   redraws all of /dev/fb0 forever, every pixel changing every frame (the
 *                 display benchmark's guest), after printing "VIREO-L2 FB SPINNING WxH"
 *   fbkeys tablet finds "Vireo Virtio Tablet", prints "VIREO-L2 TABLET READY", then
 *                 "VIREO-L2 ABS code value" and "VIREO-L2 BTN code value" for its EV_ABS and
 *                 EV_KEY events */
#include <dirent.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <linux/input.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Maps /dev/fb0 (32 bpp); NULL after printing why not. */
static uint8_t *map_fb(struct fb_var_screeninfo *var, struct fb_fix_screeninfo *fix, size_t *len) {
  int fd = open("/dev/fb0", O_RDWR);
  if (fd < 0 || ioctl(fd, FBIOGET_VSCREENINFO, var) || ioctl(fd, FBIOGET_FSCREENINFO, fix)) {
    perror("VIREO-L2 FB-ERROR /dev/fb0");
    return NULL;
  }
  if (var->bits_per_pixel != 32) {
    printf("VIREO-L2 FB-ERROR bpp=%u\n", var->bits_per_pixel);
    return NULL;
  }
  *len = (size_t)fix->line_length * var->yres;
  uint8_t *fb = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (fb == MAP_FAILED) {
    perror("VIREO-L2 FB-ERROR mmap");
    return NULL;
  }
  return fb;
}

static int spin(void) {
  struct fb_var_screeninfo var;
  struct fb_fix_screeninfo fix;
  size_t len;
  uint8_t *fb = map_fb(&var, &fix, &len);
  if (!fb) return 1;
  printf("VIREO-L2 FB SPINNING %ux%u\n", var.xres, var.yres);
  fflush(stdout);
  for (uint32_t n = 0;; n++) {
    for (uint32_t y = 0; y < var.yres; y++) {
      uint32_t *row = (uint32_t *)(fb + (size_t)y * fix.line_length);
      for (uint32_t x = 0; x < var.xres; x++) row[x] = (x + y + n) * 0x010203u;
    }
    msync(fb, len, MS_SYNC);
  }
}

static int fill(void) {
  struct fb_var_screeninfo var;
  struct fb_fix_screeninfo fix;
  size_t len;
  /* Through a mapping, as graphical programs draw: the driver's deferred I/O notices the
   * written pages and flushes them to the device; msync asks for that at once. */
  uint8_t *fb = map_fb(&var, &fix, &len);
  if (!fb) return 1;
  for (uint32_t y = 0; y < var.yres; y++) {
    for (uint32_t x = 0; x < var.xres; x++) {
      uint32_t r = (x * 7 + y) & 0xff, g = (y * 5 + x * 3) & 0xff, b = (x ^ y) & 0xff;
      uint32_t pixel = r << var.red.offset | g << var.green.offset | b << var.blue.offset;
      memcpy(fb + (size_t)y * fix.line_length + x * 4, &pixel, 4);
    }
  }
  msync(fb, len, MS_SYNC);
  printf("VIREO-L2 FB FILLED %ux%u\n", var.xres, var.yres);
  fflush(stdout);
  return 0;
}

/* Opens the evdev device named `wanted` (waiting up to 10 s for it to appear); -1 if none. */
static int open_named(const char *wanted, char *path, size_t path_len) {
  char name[256];
  int fd = -1;
  for (int tries = 0; fd < 0 && tries < 100; tries++) {
    DIR *dir = opendir("/dev/input");
    struct dirent *e;
    while (dir && (e = readdir(dir)) && fd < 0) {
      if (strncmp(e->d_name, "event", 5)) continue;
      snprintf(path, path_len, "/dev/input/%s", e->d_name);
      int candidate = open(path, O_RDONLY);
      if (candidate < 0) continue;
      memset(name, 0, sizeof name);
      ioctl(candidate, EVIOCGNAME(sizeof name - 1), name);
      if (!strcmp(name, wanted)) fd = candidate;
      else close(candidate);
    }
    if (dir) closedir(dir);
    if (fd < 0) usleep(100000);
  }
  return fd;
}

static int keys(const char *name) {
  char path[300];
  int fd = open_named(name, path, sizeof path);
  if (fd < 0) {
    printf("VIREO-L2 NO-KEYBOARD\n");
    return 1;
  }
  printf("VIREO-L2 KEYS READY %s\n", path);
  fflush(stdout);
  struct input_event ev;
  while (read(fd, &ev, sizeof ev) == sizeof ev) {
    if (ev.type == EV_KEY && ev.value != 2) {
      printf("VIREO-L2 KEY %u %d\n", ev.code, ev.value);
      fflush(stdout);
    }
  }
  return 0;
}

static int tablet(void) {
  char path[300];
  int fd = open_named("Vireo Virtio Tablet", path, sizeof path);
  if (fd < 0) {
    printf("VIREO-L2 NO-TABLET\n");
    return 1;
  }
  printf("VIREO-L2 TABLET READY %s\n", path);
  fflush(stdout);
  struct input_event ev;
  while (read(fd, &ev, sizeof ev) == sizeof ev) {
    if (ev.type == EV_ABS || ev.type == EV_KEY) {
      printf("VIREO-L2 %s %u %d\n", ev.type == EV_ABS ? "ABS" : "BTN", ev.code, ev.value);
      fflush(stdout);
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "fill")) return fill();
  if (argc > 1 && !strcmp(argv[1], "keys")) return keys(argc > 2 ? argv[2] : "Vireo Virtio Keyboard");
  if (argc > 1 && !strcmp(argv[1], "tablet")) return tablet();
  if (argc > 1 && !strcmp(argv[1], "spin")) return spin();
  fprintf(stderr, "usage: fbkeys fill|keys [NAME]|tablet|spin\n");
  return 2;
}
