/* fileio.h - whole files in and out, the way a file kept for later must be written.
 *
 * file_write_durable is the one way ssna writes a file it means to keep (a training checkpoint,
 * say): the data goes to a temporary file beside the target, every write is checked, the file is
 * fsync'ed, renamed over the target, and the directory is fsync'ed so the rename itself survives
 * a power cut. A reader sees either the old file or the whole new one, never a part.
 */
#ifndef SSNA_MODEL_FILEIO_H
#define SSNA_MODEL_FILEIO_H

#include <stddef.h>
#include <stdio.h>

/* Replace path with data[0..len) durably (above). 0, or -1 with err naming the path and the
 * step that failed (a full disk is a failed write: the old file stays as it was). */
int file_write_durable(const char *path, const void *data, size_t len, char *err, size_t errlen);
/* A file built with stdio in memory, then kept: file_buffer_open, fprintf & co. into b->f,
 * then file_buffer_commit writes it with file_write_durable (or file_buffer_discard). */
typedef struct {
    FILE *f;
    char *data;
    size_t len;
} FileBuffer;

/* 0, or -1 with err (out of memory). */
int file_buffer_open(FileBuffer *b, char *err, size_t errlen);
/* Close the stream and replace path with what was written, durably; frees the buffer either way.
 * 0, or -1 with err naming path. */
int file_buffer_commit(FileBuffer *b, const char *path, char *err, size_t errlen);
/* Close and free without writing anything. */
void file_buffer_discard(FileBuffer *b);

/* Read a whole file into a malloc'd buffer with a NUL after its last byte (the caller frees
 * *data); *len excludes the NUL. 0, or -1 with err naming the path. */
int file_read_all(const char *path, char **data, size_t *len, char *err, size_t errlen);

#endif
