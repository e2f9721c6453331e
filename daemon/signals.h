/* signals.h - turn SIGTERM / SIGINT / SIGHUP into flags the daemon loop polls.
 *
 * The handlers only store into sig_atomic_t flags (async-signal-safe); the loop checks
 * signals_stop_requested() between batches, commits a final checkpoint and returns from main.
 * A second SIGTERM / SIGINT while stopping is remembered too (signals_stop_count) so an operator
 * can see that shutdown was asked again. SIGPIPE is ignored: a peer that hangs up is an error
 * return on the socket, never a process kill.
 */
#ifndef SSNA_DAEMON_SIGNALS_H
#define SSNA_DAEMON_SIGNALS_H

#include <signal.h>
#include <stddef.h>

/* Install the handlers (SA_RESTART off, so a blocking poll returns EINTR at once) and clear the
 * flags. 0, or -1 with err. */
int signals_install(char *err, size_t errlen);
/* For a command-line tool (ssna embed, ssna replay): SIGTERM / SIGINT only, into the same flags;
 * restart: SA_RESTART (interrupted reads resume; the tool polls signals_stop_requested between
 * units of work), else a blocking call returns EINTR. 0, or -1 with err. */
int signals_install_stop(int restart, char *err, size_t errlen);
/* The stop counter itself (non-zero once asked to stop), for code that polls a flag: ingest's
 * KafkaProducerOptions.stop. */
const volatile sig_atomic_t *signals_stop_flag(void);
/* Whether SIGTERM or SIGINT has arrived since signals_install(_stop). */
int signals_stop_requested(void);
/* How many SIGTERM / SIGINT have arrived. */
int signals_stop_count(void);
/* The last stop signal's number (SIGTERM, SIGINT), 0 if none. */
int signals_stop_signal(void);
/* Whether SIGHUP has arrived since the last call (the flag is cleared by reading it); the daemon
 * reopens its log or re-reads its configuration. */
int signals_take_reload(void);
/* Bound the shutdown: after seconds, SIGALRM writes "ssnad: shutdown stuck in PHASE after N s;
 * exiting" to stderr (PHASE: *phase at that moment, kept current by the caller) and ends the
 * process with exit_code through _exit, since whatever hangs could hang an orderly exit too.
 * seconds 0 disarms it (before an exec: a pending alarm survives execve). */
void signals_stop_deadline(unsigned seconds, const char *volatile const *phase, int exit_code);
/* Before the calling thread replaces the process image (ssnad's reload): blocks SIGTERM /
 * SIGINT in it, and makes a stop that any other thread receives from here on pending on it
 * (forwarded with tgkill), so that it survives execve until the new image's signals_install
 * unblocks it. Returns whether a stop arrived before (then exit instead of executing). */
int signals_hold_stops_for_exec(void);
/* Restore the default dispositions (for tests and a child process). */
void signals_restore(void);

#endif
