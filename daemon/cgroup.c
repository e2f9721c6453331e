/* cgroup.c - see cgroup.h. */
#include "daemon/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "model/errmsg.h"

int cgroup_join_thread(const char *dir, char *err, size_t errlen) {
    char path[4096];
    // v2 first: a v1 hierarchy has no cgroup.threads, a v2 one no tasks
    const char *file = "cgroup.threads";
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path) {
        return errmsg_fail(err, errlen, "cgroup %.200s...: path too long", dir);
    }
    if (access(path, F_OK)) {
        file = "tasks";
        snprintf(path, sizeof path, "%s/%s", dir, file);
        if (access(path, F_OK)) {
            snprintf(err, errlen,
                     "cgroup %s: neither cgroup.threads (v2) nor tasks (v1) there, not a cgroup "
                     "directory (%s)",
                     dir, strerror(errno));
            return -1;
        }
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return errmsg_fail(err, errlen, "cgroup %s: cannot open %s: %s", dir, file,
                           strerror(errno));
    }
    char tid[32];
    int n = snprintf(tid, sizeof tid, "%ld\n", (long)syscall(SYS_gettid));
    // one write: the kernel takes one thread id per write
    ssize_t w = write(fd, tid, (size_t)n);
    int werr = errno;
    close(fd);
    if (w != n) {
        return errmsg_fail(err, errlen, "cgroup %s: cannot add thread %.*s to %s: %s%s", dir, n - 1,
                           tid, file, w < 0 ? strerror(werr) : "short write",
                           w < 0 && werr == EOPNOTSUPP
                               ? " (cgroup v2: the cgroup must be threaded, "
                                 "cgroup.type = threaded)"
                               : "");
    }
    return 0;
}
