/* safetensors.c - memory-mapped safetensors reader (see safetensors.h). */
#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/errmsg.h"
#include "model/half.h"
#include "model/json.h"

/* Headers beyond this are not safetensors files (the format itself caps them at 100 MB). */
#define SAFETENSORS_MAX_HEADER ((uint64_t)100 << 20)

static const struct {
    const char *name;
    int size;
} safetensors_dtypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2},    {"I64", 8},
                          {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},      {"BOOL", 1},
                          {"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};

static int dtype_size(const char *name) {
    for (size_t i = 0; i < sizeof safetensors_dtypes / sizeof safetensors_dtypes[0]; i++)
        if (!strcmp(name, safetensors_dtypes[i].name)) return safetensors_dtypes[i].size;
    return 0;
}

/* A JSON number that is a non-negative integer below 2^53, or -1. */
static int64_t json_index(const JsonValue *v) {
    if (!v || v->type != JSON_VALUE_NUMBER || v->number < 0 || v->number > 9007199254740992.0 ||
        v->number != (double)(int64_t)v->number)
        return -1;
    return (int64_t)v->number;
}

/* Validate one header entry and fill t; data_size is the byte count after the header. */
static int parse_tensor(SafetensorsTensor *t, const char *path, const char *name,
                        const JsonValue *v, const uint8_t *data, size_t data_size, char *err,
                        size_t errlen) {
    if (v->type != JSON_VALUE_OBJECT) {
        return errmsg_fail(err, errlen, "%s: corrupt header: tensor '%s' is not an object", path,
                           name);
    }
    const char *dtype = json_get_string(v, "dtype", NULL);
    const JsonValue *shape = json_get(v, "shape");
    const JsonValue *offs = json_get(v, "data_offsets");
    if (!dtype || !shape || shape->type != JSON_VALUE_ARRAY || !offs ||
        offs->type != JSON_VALUE_ARRAY || offs->len != 2) {
        snprintf(err, errlen,
                 "%s: corrupt header: tensor '%s' needs dtype, shape and data_offsets [begin, end]",
                 path, name);
        return -1;
    }
    t->elem_size = dtype_size(dtype);
    if (!t->elem_size || strlen(dtype) >= sizeof t->dtype) {
        return errmsg_fail(err, errlen, "%s: tensor '%s' has unknown dtype '%s'", path, name,
                           dtype);
    }
    strcpy(t->dtype, dtype);
    if (shape->len > SAFETENSORS_MAX_DIMS) {
        return errmsg_fail(err, errlen, "%s: tensor '%s' has %zu dimensions (at most %d supported)",
                           path, name, shape->len, SAFETENSORS_MAX_DIMS);
    }
    t->ndim = (int)shape->len;
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
        int64_t s = json_index(&shape->items[d]);
        // the cap keeps the running product far from overflow; no real tensor comes near it
        if (s < 0 || s > ((int64_t)1 << 40) || (s && n > (((uint64_t)1 << 62) / (uint64_t)s))) {
            return errmsg_fail(err, errlen,
                               "%s: corrupt header: tensor '%s' has an invalid shape[%d]", path,
                               name, d);
        }
        t->shape[d] = s;
        n *= (uint64_t)s;
    }
    int64_t begin = json_index(&offs->items[0]), end = json_index(&offs->items[1]);
    if (begin < 0 || end < begin) {
        return errmsg_fail(err, errlen, "%s: corrupt header: tensor '%s' has invalid data_offsets",
                           path, name);
    }
    if ((uint64_t)end > data_size) {
        snprintf(err, errlen,
                 "%s: truncated file: tensor '%s' ends at data byte %lld but the file holds only "
                 "%zu data bytes",
                 path, name, (long long)end, data_size);
        return -1;
    }
    if ((uint64_t)(end - begin) != n * (uint64_t)t->elem_size) {
        snprintf(err, errlen,
                 "%s: corrupt header: tensor '%s' spans %lld bytes but its shape and dtype %s "
                 "need %llu",
                 path, name, (long long)(end - begin), dtype,
                 (unsigned long long)(n * (uint64_t)t->elem_size));
        return -1;
    }
    t->n_elems = (size_t)n;
    t->data = data + begin;
    t->name = strdup(name);
    if (!t->name) {
        return errmsg_fail(err, errlen, "%s: out of memory", path);
    }
    return 0;
}

static int parse_header(Safetensors *st, const char *path, char *err, size_t errlen) {
    if (st->size < 8) {
        return errmsg_fail(err, errlen,
                           "%s: truncated file: %zu bytes, not even the 8-byte header length", path,
                           st->size);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | st->map[i];
    if (hlen > SAFETENSORS_MAX_HEADER || hlen > st->size - 8) {
        snprintf(err, errlen,
                 "%s: truncated or corrupt file: header length %llu but the file has %zu bytes",
                 path, (unsigned long long)hlen, st->size);
        return -1;
    }
    JsonValue root;
    char jerr[256];
    if (json_parse(&root, (const char *)st->map + 8, (size_t)hlen, jerr, sizeof jerr)) {
        return errmsg_fail(err, errlen, "%s: corrupt header: %s", path, jerr);
    }
    int rc = -1;
    if (root.type != JSON_VALUE_OBJECT) {
        snprintf(err, errlen, "%s: corrupt header: not a JSON object", path);
        goto done;
    }
    st->tensors = calloc(root.len ? root.len : 1, sizeof *st->tensors);
    if (!st->tensors) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto done;
    }
    const uint8_t *data = st->map + 8 + hlen;
    size_t data_size = st->size - 8 - (size_t)hlen;
    for (size_t i = 0; i < root.len; i++) {
        if (!strcmp(root.keys[i], "__metadata__")) continue;
        if (parse_tensor(&st->tensors[st->n_tensors], path, root.keys[i], &root.items[i], data,
                         data_size, err, errlen))
            goto done;
        st->n_tensors++;
    }
    rc = 0;
done:
    json_free(&root);
    return rc;
}

int safetensors_open(Safetensors *st, const char *path, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errmsg_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    st->size = (size_t)sb.st_size;
    st->path = strdup(path);
    if (st->size) {
        void *m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            snprintf(err, errlen, "%s: cannot map: %s", path, strerror(errno));
            close(fd);
            safetensors_close(st);
            return -1;
        }
        st->map = m;
    }
    close(fd);
    if (!st->path || parse_header(st, path, err, errlen)) {
        if (!st->path) snprintf(err, errlen, "%s: out of memory", path);
        safetensors_close(st);
        return -1;
    }
    return 0;
}

void safetensors_close(Safetensors *st) {
    if (st->map) munmap(st->map, st->size);
    for (size_t i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    free(st->tensors);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const SafetensorsTensor *safetensors_find(const Safetensors *st, const char *name) {
    for (size_t i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name)) return &st->tensors[i];
    return NULL;
}

/* "[a, b, c]" into buf. */
static const char *shape_str(char *buf, size_t len, const int64_t *shape, int ndim) {
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && o < len; d++)
        o += (size_t)snprintf(buf + o, len - o, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

int safetensors_read_f32(const Safetensors *st, const SafetensorsTensor *t,
                         const int64_t *want_shape, int want_ndim, float *out, char *err,
                         size_t errlen) {
    if (want_shape) {
        int same = want_ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = want_shape[d] == t->shape[d];
        if (!same) {
            char have[128], want[128];
            return errmsg_fail(err, errlen, "%s: tensor '%s' has shape %s, expected %s", st->path,
                               t->name, shape_str(have, sizeof have, t->shape, t->ndim),
                               shape_str(want, sizeof want, want_shape, want_ndim));
        }
    }
    // the data may sit at any byte offset, so 16/32/64-bit values are copied out, never cast
    if (!strcmp(t->dtype, "F32")) {
        memcpy(out, t->data, t->n_elems * 4);
    } else if (!strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16")) {
        int bf = t->dtype[0] == 'B';
        uint16_t chunk[1024];
        for (size_t i = 0; i < t->n_elems; i += 1024) {
            size_t n = t->n_elems - i < 1024 ? t->n_elems - i : 1024;
            memcpy(chunk, t->data + 2 * i, 2 * n);
            if (bf)
                bf16_to_float_array(chunk, out + i, n);
            else
                half_to_float_array(chunk, out + i, n);
        }
    } else if (!strcmp(t->dtype, "F64")) {
        for (size_t i = 0; i < t->n_elems; i++) {
            double v;
            memcpy(&v, t->data + 8 * i, 8);
            out[i] = (float)v;
        }
    } else {
        return errmsg_fail(err, errlen, "%s: tensor '%s' has dtype %s, not a floating-point type",
                           st->path, t->name, t->dtype);
    }
    return 0;
}

const char *safetensors_float_dtype(const Safetensors *st) {
    const char *found = NULL;
    for (size_t i = 0; i < st->n_tensors; i++) {
        const char *d = st->tensors[i].dtype;
        if (strcmp(d, "F32") && strcmp(d, "F16") && strcmp(d, "BF16") && strcmp(d, "F64")) continue;
        if (found && strcmp(found, d)) return "mixed";
        found = d;
    }
    return found ? found : "none";
}
