/* test_signals.c - daemon/signals: SIGTERM / SIGINT / SIGHUP become flags, SIGPIPE is harmless,
 * and a blocking poll is interrupted so the loop notices at once. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "daemon/signals.h"

static pthread_t main_thread;

static void *send_term_later(void *arg) {
    (void)arg;
    usleep(100 * 1000);
    pthread_kill(main_thread, SIGTERM);
    return NULL;
}

int main(void) {
    char err[128];
    CHECK(signals_install(err, sizeof err) == 0);
    CHECK(!signals_stop_requested() && signals_stop_count() == 0 && signals_stop_signal() == 0);
    CHECK(signals_take_reload() == 0);

    raise(SIGHUP);
    CHECK(!signals_stop_requested());
    CHECK(signals_take_reload() == 1);
    CHECK(signals_take_reload() == 0); /* reading clears it */

    /* a write to a pipe nobody reads is EPIPE, not death */
    int fds[2];
    CHECK(pipe(fds) == 0);
    close(fds[0]);
    CHECK(write(fds[1], "x", 1) == -1 && errno == EPIPE);
    close(fds[1]);

    /* SIGTERM arriving during a blocking poll: poll returns EINTR and the flag is up */
    main_thread = pthread_self();
    pthread_t t;
    pthread_create(&t, NULL, send_term_later, NULL);
    int rc = poll(NULL, 0, 20000);
    CHECK(rc == -1 && errno == EINTR);
    pthread_join(t, NULL);
    CHECK(signals_stop_requested() && signals_stop_count() == 1);
    CHECK(signals_stop_signal() == SIGTERM);

    raise(SIGINT);
    CHECK(signals_stop_count() == 2 && signals_stop_signal() == SIGINT);

    /* installing again starts from clear flags */
    CHECK(signals_install(err, sizeof err) == 0);
    CHECK(!signals_stop_requested());
    signals_restore();
    struct sigaction sa;
    sigaction(SIGTERM, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL);

    /* a command-line tool's stop: SIGTERM / SIGINT only (SIGHUP keeps its default), SA_RESTART
     * as asked, and the flag a polling loop reads goes up with them */
    CHECK(signals_install_stop(1, err, sizeof err) == 0);
    const volatile sig_atomic_t *flag = signals_stop_flag();
    CHECK(!*flag && !signals_stop_requested());
    sigaction(SIGINT, NULL, &sa);
    CHECK(sa.sa_handler != SIG_DFL && (sa.sa_flags & SA_RESTART));
    sigaction(SIGHUP, NULL, &sa);
    CHECK(sa.sa_handler == SIG_DFL);
    raise(SIGINT);
    CHECK(*flag && signals_stop_requested() && signals_stop_signal() == SIGINT);
    CHECK(signals_install_stop(0, err, sizeof err) == 0 && !*flag);
    sigaction(SIGTERM, NULL, &sa);
    CHECK(!(sa.sa_flags & SA_RESTART));
    raise(SIGTERM);
    CHECK(*flag && signals_stop_signal() == SIGTERM);
    signals_restore();
    return check_done();
}
