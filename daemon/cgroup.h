/* cgroup.h - move one thread of the daemon into a control group of its own.
 *
 * Why: SCHED_IDLE keeps the training thread off a core a serving thread wants, but only among
 * the daemon's own threads. Under group scheduling (an autogroup per session, a systemd
 * service's cgroup) the kernel first divides the cores between groups, and the trainer's time
 * counts against the daemon's group: a group whose trainer always runs has used its share, so a
 * serving thread that wakes up waits behind the other groups (a co-located broker, say). In a
 * cgroup of its own with cpu.idle = 1 the trainer gets only cycles that no group wants, and
 * the daemon's group keeps its share for ingest and publishing (docs/ssnad.md, "Sharing a
 * machine").
 */
#ifndef SSNA_DAEMON_CGROUP_H
#define SSNA_DAEMON_CGROUP_H

#include <stddef.h>

/* Move the calling thread into the cgroup directory dir: its thread id is written to
 * dir/cgroup.threads (cgroup v2, where dir must be a threaded cgroup in the process's threaded
 * subtree) or, where that file does not exist, dir/tasks (cgroup v1). 0, or -1 with err naming
 * dir and the reason. */
int cgroup_join_thread(const char *dir, char *err, size_t errlen);

#endif
