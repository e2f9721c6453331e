/* signals.c - see signals.h. */
#include "daemon/signals.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t stop_count;
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_pending;

static void on_stop(int sig) {
    stop_signal = sig;
    if (stop_count < 1000) stop_count = stop_count + 1;
}

static void on_reload(int sig) {
    (void)sig;
    reload_pending = 1;
}

static int set_handler(int sig, void (*handler)(int), char *err, size_t errlen) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) == 0) return 0;
    snprintf(err, errlen, "sigaction(%d): %s", sig, strerror(errno));
    return -1;
}

int signals_install(char *err, size_t errlen) {
    stop_count = 0;
    stop_signal = 0;
    reload_pending = 0;
    if (set_handler(SIGTERM, on_stop, err, errlen) < 0 ||
        set_handler(SIGINT, on_stop, err, errlen) < 0 ||
        set_handler(SIGHUP, on_reload, err, errlen) < 0 ||
        set_handler(SIGPIPE, SIG_IGN, err, errlen) < 0)
        return -1;
    return 0;
}

int signals_stop_requested(void) {
    return stop_count > 0;
}

int signals_stop_count(void) {
    return stop_count;
}

int signals_stop_signal(void) {
    return stop_signal;
}

int signals_take_reload(void) {
    if (!reload_pending) return 0;
    reload_pending = 0;
    return 1;
}

void signals_restore(void) {
    char err[64];
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        (void)set_handler(sigs[i], SIG_DFL, err, sizeof err);
}
