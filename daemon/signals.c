/* signals.c - see signals.h. */
#include "daemon/signals.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "model/errmsg.h"

static volatile sig_atomic_t stop_count;
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_pending;

static void on_stop(int sig) {
    stop_signal = sig;
    if (stop_count < 1000) stop_count = stop_count + 1;
}

static const char *volatile const *deadline_phase;
static volatile sig_atomic_t deadline_code;
static volatile sig_atomic_t deadline_seconds;

static void put(const char *s) { // write(2) and strlen are async-signal-safe
    ssize_t rc = write(STDERR_FILENO, s, strlen(s));
    (void)rc;
}

static void on_deadline(int sig) {
    (void)sig;
    char n[24];
    int i = (int)sizeof n - 1;
    n[i] = 0;
    unsigned v = (unsigned)deadline_seconds;
    do n[--i] = (char)('0' + v % 10), v /= 10;
    while (v && i > 0);
    const char *phase = deadline_phase && *deadline_phase ? *deadline_phase : "?";
    put("ssnad: shutdown stuck in ");
    put(phase);
    put(" after ");
    put(n + i);
    put(" s; exiting\n");
    _exit(deadline_code);
}

void signals_stop_deadline(unsigned seconds, const char *volatile const *phase, int exit_code) {
    if (!seconds) {
        alarm(0);
        return;
    }
    deadline_phase = phase, deadline_code = exit_code, deadline_seconds = (sig_atomic_t)seconds;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_deadline;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
}

static void on_reload(int sig) {
    (void)sig;
    reload_pending = 1;
}

static int set_handler_flags(int sig, void (*handler)(int), int flags, char *err, size_t errlen) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) == 0) return 0;
    return errmsg_fail(err, errlen, "sigaction(%d): %s", sig, strerror(errno));
}

static int set_handler(int sig, void (*handler)(int), char *err, size_t errlen) {
    return set_handler_flags(sig, handler, 0, err, errlen);
}

int signals_install_stop(int restart, char *err, size_t errlen) {
    stop_count = 0;
    stop_signal = 0;
    int flags = restart ? SA_RESTART : 0;
    if (set_handler_flags(SIGTERM, on_stop, flags, err, errlen) ||
        set_handler_flags(SIGINT, on_stop, flags, err, errlen))
        return -1;
    // ssnad blocks both before it re-executes itself for a reload (ssnad_main.c): a stop sent
    // meanwhile is pending until here, and is delivered to on_stop now
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM), sigaddset(&stops, SIGINT);
    return pthread_sigmask(SIG_UNBLOCK, &stops, NULL) ? -1 : 0;
}

const volatile sig_atomic_t *signals_stop_flag(void) {
    return &stop_count;
}

int signals_install(char *err, size_t errlen) {
    reload_pending = 0;
    if (signals_install_stop(0, err, errlen) < 0 ||
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

static volatile sig_atomic_t exec_tid; // the thread that will call execve

static void on_stop_before_exec(int sig) {
    if (stop_count < 1000) stop_count = stop_count + 1;
    // on the exec'ing thread the signal is blocked, so this runs on another one: make it
    // pending where execve keeps it (syscall() and getpid() are async-signal-safe)
    syscall(SYS_tgkill, getpid(), (pid_t)exec_tid, sig);
}

int signals_hold_stops_for_exec(void) {
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM), sigaddset(&stops, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stops, NULL);
    exec_tid = (sig_atomic_t)syscall(SYS_gettid);
    char err[64];
    (void)set_handler(SIGTERM, on_stop_before_exec, err, sizeof err);
    (void)set_handler(SIGINT, on_stop_before_exec, err, sizeof err);
    return stop_count > 0;
}

void signals_restore(void) {
    char err[64];
    alarm(0);
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGALRM};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        (void)set_handler(sigs[i], SIG_DFL, err, sizeof err);
}
