/*
 * first-frame: start a GUI program and report when its main window first shows pixels.
 *
 *   first-frame TITLE TIMEOUT_MS -- PROGRAM [ARGS...]
 *
 * Prints "MAP_MS FRAME_MS" (milliseconds since the exec) on stdout and exits 0, or exits 1 with a
 * reason on stderr when the window did not appear within TIMEOUT_MS. The program is killed (its
 * whole process group) either way.
 *
 * Why event-driven instead of polling `xwininfo` every few milliseconds: polling spawns a process
 * per probe, which steals CPU from the app being measured and rounds every result up to the poll
 * period. Listening to the X server costs nothing while waiting and is exact:
 *   MAP:   the server maps a top-level window whose title is TITLE (no window manager runs under
 *          Xvfb, so the app's own window is a direct child of the root);
 *   FRAME: the first DAMAGE report on that window after it is mapped, i.e. the app has drawn its
 *          first frame into it (a mapped window with background None is not painted by the
 *          server, so this damage comes from the app's rendering).
 * A damage object is attached to every top-level window as soon as it is created, so rendering
 * right after the map cannot be missed.
 */
#define _GNU_SOURCE
#include <X11/Xatom.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/extensions/Xdamage.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The window's title: _NET_WM_NAME (UTF-8, what GTK sets) or else WM_NAME. */
static int has_title(Display *dpy, Window w, const char *title) {
    Atom net_wm_name = XInternAtom(dpy, "_NET_WM_NAME", False);
    Atom utf8 = XInternAtom(dpy, "UTF8_STRING", False);
    Atom type;
    int format;
    unsigned long n, after;
    unsigned char *data = NULL;
    int match = 0;
    if (XGetWindowProperty(dpy, w, net_wm_name, 0, 1024, False, utf8, &type, &format, &n, &after,
                           &data) == Success && data) {
        match = strcmp((char *)data, title) == 0;
        XFree(data);
        if (match)
            return 1;
    }
    char *name = NULL;
    if (XFetchName(dpy, w, &name) && name) {
        match = strcmp(name, title) == 0;
        XFree(name);
    }
    return match;
}

static int ignore_x_errors(Display *dpy, XErrorEvent *ev) {
    (void)dpy;
    (void)ev; /* windows may vanish between an event and our query of them */
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: first-frame TITLE TIMEOUT_MS -- PROGRAM [ARGS...]\n");
        return 2;
    }
    const char *title = argv[1];
    double timeout = atof(argv[2]);
    Display *dpy = XOpenDisplay(NULL);
    if (!dpy) {
        fprintf(stderr, "first-frame: cannot open display %s\n", getenv("DISPLAY"));
        return 2;
    }
    int damage_event, damage_error;
    if (!XDamageQueryExtension(dpy, &damage_event, &damage_error)) {
        fprintf(stderr, "first-frame: the X server has no DAMAGE extension\n");
        return 2;
    }
    XSetErrorHandler(ignore_x_errors);
    Window root = DefaultRootWindow(dpy);
    XSelectInput(dpy, root, SubstructureNotifyMask);
    XSync(dpy, False);

    double start = now_ms();
    pid_t child = fork();
    if (child == 0) {
        setpgid(0, 0);
        execvp(argv[4], argv + 4);
        perror("first-frame: exec");
        _exit(127);
    }
    setpgid(child, child);

    Window target = None;
    double mapped = -1, framed = -1;
    while (framed < 0) {
        double left = start + timeout - now_ms();
        if (left <= 0)
            break;
        if (!XPending(dpy)) {
            struct pollfd pfd = {ConnectionNumber(dpy), POLLIN, 0};
            poll(&pfd, 1, (int)left + 1);
            if (!XPending(dpy))
                continue;
        }
        XEvent ev;
        XNextEvent(dpy, &ev);
        double t = now_ms() - start;
        if (ev.type == CreateNotify && ev.xcreatewindow.parent == root) {
            Window w = ev.xcreatewindow.window;
            XSelectInput(dpy, w, PropertyChangeMask);
            XDamageCreate(dpy, w, XDamageReportNonEmpty);
        } else if (ev.type == MapNotify && target == None &&
                   has_title(dpy, ev.xmap.window, title)) {
            target = ev.xmap.window;
            mapped = t;
        } else if (ev.type == PropertyNotify && target == None) {
            /* a title set after the map */
            XWindowAttributes attrs;
            if (XGetWindowAttributes(dpy, ev.xproperty.window, &attrs) &&
                attrs.map_state == IsViewable && has_title(dpy, ev.xproperty.window, title)) {
                target = ev.xproperty.window;
                mapped = t;
            }
        } else if (ev.type == damage_event + XDamageNotify) {
            XDamageNotifyEvent *dev = (XDamageNotifyEvent *)&ev;
            XDamageSubtract(dpy, dev->damage, None, None);
            if (target != None && dev->drawable == target)
                framed = t;
        }
    }
    kill(-child, SIGKILL);
    waitpid(child, NULL, 0);
    if (framed < 0) {
        fprintf(stderr, "first-frame: no window titled '%s' %s within %.0f ms\n", title,
                mapped < 0 ? "was mapped" : "drew a frame", timeout);
        return 1;
    }
    printf("%.1f %.1f\n", mapped, framed);
    return 0;
}
