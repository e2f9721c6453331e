/* fileio.c - durable whole-file writes and whole-file reads (see fileio.h). */
#include "model/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/errmsg.h"

/* write(2) until everything is out: a short write (a signal, a nearly full disk) is not an
 * error until write itself says so. */
static int write_all(int fd, const char *p, size_t len) {
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n, len -= (size_t)n;
    }
    return 0;
}

/* fsync the directory holding path, so a rename into it is on disk too. */
static int sync_dir_of(const char *path) {
    char *copy = strdup(path);
    if (!copy) return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int file_write_durable(const char *path, const void *data, size_t len, char *err, size_t errlen) {
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return errmsg_fail(err, errlen, "%s: out of memory", path);
    // the pid keeps two processes writing the same target from sharing a temporary file
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    const char *step = "create";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write_all(fd, data, len))
            step = "write";
        else if (fsync(fd))
            step = "fsync";
        else
            step = NULL;
        if (close(fd) && !step) step = "close";
    }
    if (!step && rename(tmp, path)) step = "rename";
    if (!step && sync_dir_of(path)) step = "fsync of its directory";
    if (step) {
        int e = errno;
        if (strcmp(step, "fsync of its directory")) unlink(tmp);
        errmsg_fail(err, errlen, "%s: %s failed: %s", strcmp(step, "create") ? path : tmp, step,
                    strerror(e));
    }
    free(tmp);
    return step ? -1 : 0;
}

int file_read_all(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    *data = NULL, *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) free(buf);
        buf = bigger, cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return errmsg_fail(err, errlen, "%s: %s", path, buf ? "read error" : "out of memory");
    }
    buf[n] = 0;
    *data = buf, *len = n;
    return 0;
}

int file_buffer_open(FileBuffer *b, char *err, size_t errlen) {
    b->data = NULL, b->len = 0;
    b->f = open_memstream(&b->data, &b->len);
    return b->f ? 0 : errmsg_fail(err, errlen, "out of memory for a file buffer");
}

int file_buffer_commit(FileBuffer *b, const char *path, char *err, size_t errlen) {
    int bad = ferror(b->f);
    bad |= fclose(b->f) != 0;
    int rc = bad ? errmsg_fail(err, errlen, "%s: out of memory", path)
                 : file_write_durable(path, b->data, b->len, err, errlen);
    free(b->data);
    b->f = NULL, b->data = NULL, b->len = 0;
    return rc;
}

void file_buffer_discard(FileBuffer *b) {
    if (b->f) fclose(b->f);
    free(b->data);
    b->f = NULL, b->data = NULL, b->len = 0;
}
