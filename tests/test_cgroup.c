/* test_cgroup.c - daemon/cgroup: the calling thread's id (not the process's) goes to
 * cgroup.threads where the directory has one (cgroup v2), else to tasks (v1); anything else is
 * an error naming the directory. Plain directories stand in for cgroupfs here: what the kernel
 * does with the id is measured by ops/bench/stream, not asserted in a test. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "daemon/cgroup.h"

typedef struct {
    const char *dir;
    long tid;
    int rc;
    char err[512];
} Join;

static void *join_from_thread(void *arg) { // a thread of its own: its id differs from the pid
    Join *j = arg;
    j->tid = (long)syscall(SYS_gettid);
    j->rc = cgroup_join_thread(j->dir, j->err, sizeof j->err);
    return NULL;
}

static Join join(const char *dir) {
    Join j = {.dir = dir};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, join_from_thread, &j) == 0);
    pthread_join(t, NULL);
    return j;
}

static void touch(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (f) fclose(f);
}

static long read_id(const char *dir, const char *name) { // -1: empty or unreadable
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    long id = -1;
    if (f && fscanf(f, "%ld", &id) != 1) id = -1;
    if (f) fclose(f);
    return id;
}

int main(void) {
    char root[64], dir[600];
    check_temp_dir(root, sizeof root, "cgroup");

    // v1: tasks gets the thread's id
    snprintf(dir, sizeof dir, "%s/v1", root);
    CHECK(mkdir(dir, 0755) == 0);
    touch(dir, "tasks");
    Join j = join(dir);
    CHECK_MSG(j.rc == 0, "v1: %s", j.err);
    CHECK(j.tid != (long)getpid());
    CHECK_MSG(read_id(dir, "tasks") == j.tid, "tasks holds %ld, thread %ld", read_id(dir, "tasks"),
              j.tid);

    // v2: cgroup.threads wins over a tasks file
    snprintf(dir, sizeof dir, "%s/v2", root);
    CHECK(mkdir(dir, 0755) == 0);
    touch(dir, "cgroup.threads");
    touch(dir, "tasks");
    j = join(dir);
    CHECK_MSG(j.rc == 0, "v2: %s", j.err);
    CHECK(read_id(dir, "cgroup.threads") == j.tid);
    CHECK(read_id(dir, "tasks") == -1);

    // not a cgroup: an empty directory, a missing one
    snprintf(dir, sizeof dir, "%s/empty", root);
    CHECK(mkdir(dir, 0755) == 0);
    j = join(dir);
    CHECK(j.rc == -1 && strstr(j.err, dir) && strstr(j.err, "not a cgroup directory"));
    snprintf(dir, sizeof dir, "%s/missing", root);
    j = join(dir);
    CHECK_MSG(j.rc == -1 && strstr(j.err, dir) && strstr(j.err, "No such file"), "%s", j.err);

    // tasks that cannot be opened for writing, and one whose write fails
    snprintf(dir, sizeof dir, "%s/dirtasks", root);
    char sub[700];
    snprintf(sub, sizeof sub, "%s/tasks", dir);
    CHECK(mkdir(dir, 0755) == 0 && mkdir(sub, 0755) == 0);
    j = join(dir);
    CHECK_MSG(j.rc == -1 && strstr(j.err, "cannot open tasks"), "%s", j.err);
    rmdir(sub);
    CHECK(symlink("/dev/full", sub) == 0);
    j = join(dir);
    CHECK_MSG(j.rc == -1 && strstr(j.err, "cannot add thread") && strstr(j.err, "No space"), "%s",
              j.err);

    check_remove_tree(root);
    return check_done();
}
