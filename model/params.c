/* params.c - the flat parameter block, Adam, and its checkpoint blob.
 *
 * Blob layout (version 1, little-endian host byte order, all fields packed):
 *   "SSNAPRM\0" magic [8] | version u32 | ntensors u32 | total u64 | step i64
 *   per tensor: name_len u32 | name [name_len] | ndim u32 | shape i32 [PARAM_MAX_DIMS]
 *   params f32 [total] | m f32 [total] | v f32 [total]
 *   checksum u64 (FNV-1a over every byte before it)
 * Gradients are not saved: a checkpoint is taken between steps, when they mean nothing.
 */
#include "model/params.h"
#include "model/errmsg.h"
#include "model/pool.h"
#include "model/hash.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PARAMS_MAGIC   "SSNAPRM"
#define PARAMS_VERSION 1u

AdamConfig adam_defaults(void) {
    AdamConfig c = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f};
    return c;
}

void params_init(ParamSet *ps) {
    memset(ps, 0, sizeof(*ps));
}

int params_declare(ParamSet *ps, const char *name, int ndim, const int *shape, char *err,
                   size_t errlen) {
    if (ps->params)
        return errmsg_fail(err, errlen, "params_declare '%s': set already allocated", name);
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen >= PARAM_NAME_MAX)
        return errmsg_fail(err, errlen, "params_declare '%s': name length %zu not in [1, %d]", name,
                           nlen, PARAM_NAME_MAX - 1);
    if (ndim < 1 || ndim > PARAM_MAX_DIMS)
        return errmsg_fail(err, errlen, "params_declare '%s': ndim %d not in [1, %d]", name, ndim,
                           PARAM_MAX_DIMS);
    if (params_find(ps, name) >= 0)
        return errmsg_fail(err, errlen, "params_declare '%s': name already declared", name);
    size_t size = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0)
            return errmsg_fail(err, errlen, "params_declare '%s': dimension %d is %d (must be > 0)",
                               name, d, shape[d]);
        size *= (size_t)shape[d];
    }
    if (ps->ntensors == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 16;
        ParamTensor *t = realloc(ps->tensors, (size_t)cap * sizeof(*t));
        if (!t) return errmsg_fail(err, errlen, "params_declare '%s': out of memory", name);
        ps->tensors = t;
        ps->cap = cap;
    }
    ParamTensor *t = &ps->tensors[ps->ntensors];
    memset(t, 0, sizeof(*t));
    memcpy(t->name, name, nlen + 1);
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->offset = ps->total;
    t->size = size;
    ps->total += size;
    return ps->ntensors++;
}

int params_alloc(ParamSet *ps, char *err, size_t errlen) {
    if (ps->params) return errmsg_fail(err, errlen, "params_alloc: set already allocated");
    if (ps->total == 0) return errmsg_fail(err, errlen, "params_alloc: no tensors declared");
    // one allocation, four views: params | grads | m | v
    float *block = calloc(4 * ps->total, sizeof(float));
    if (!block)
        return errmsg_fail(err, errlen, "params_alloc: out of memory for %zu floats", ps->total);
    ps->params = block;
    ps->grads = block + ps->total;
    ps->m = block + 2 * ps->total;
    ps->v = block + 3 * ps->total;
    ps->step = 0;
    return 0;
}

float *params_data(const ParamSet *ps, int idx) {
    return ps->params + ps->tensors[idx].offset;
}

float *params_grad(const ParamSet *ps, int idx) {
    return ps->grads + ps->tensors[idx].offset;
}

int params_find(const ParamSet *ps, const char *name) {
    for (int i = 0; i < ps->ntensors; i++)
        if (strcmp(ps->tensors[i].name, name) == 0) return i;
    return -1;
}

void params_zero_grad(ParamSet *ps) {
    if (ps->grads) memset(ps->grads, 0, ps->total * sizeof(float));
}

void params_free(ParamSet *ps) {
    free(ps->tensors);
    free(ps->params); // grads, m, v are views into the same block
    memset(ps, 0, sizeof(*ps));
}

typedef struct {
    float *p, *g, *m, *v;
    float b1, b2, eps, wd, step_size, bc2_sqrt;
} AdamJob;

static void adam_range(void *arg, size_t begin, size_t end) {
    AdamJob *j = arg;
    // restrict locals: a store through p could otherwise alias j's floats and force reloads
    float *restrict p = j->p, *restrict m = j->m, *restrict v = j->v;
    const float *restrict g = j->g;
    float b1 = j->b1, b2 = j->b2, eps = j->eps, wd = j->wd, bc2_sqrt = j->bc2_sqrt;
    float step_size = j->step_size;
    for (size_t i = begin; i < end; i++) {
        float gi = g[i] + wd * p[i]; // L2 decay folded into the gradient (torch.optim.Adam)
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

void adam_step(ParamSet *ps, const AdamConfig *cfg) {
    ps->step++;
    // bias corrections in double, as torch computes them in Python floats
    double bc1 = 1.0 - pow((double)cfg->beta1, (double)ps->step);
    double bc2 = 1.0 - pow((double)cfg->beta2, (double)ps->step);
    AdamJob j = {ps->params,      ps->grads,         ps->m,
                 ps->v,           cfg->beta1,        cfg->beta2,
                 cfg->eps,        cfg->weight_decay, (float)(cfg->lr / bc1),
                 (float)sqrt(bc2)};
    pool_for(ps->total, 65536, adam_range, &j);
}

/* ---- serialisation -----------------------------------------------------------------------------
 */

static size_t header_size(void) {
    return 8 + 4 + 4 + 8 + 8;
}

static size_t tensor_entry_size(const ParamTensor *t) {
    return 4 + strlen(t->name) + 4 + 4 * PARAM_MAX_DIMS;
}

static unsigned char *put(unsigned char *p, const void *src, size_t n) {
    memcpy(p, src, n);
    return p + n;
}

size_t params_serialize(const ParamSet *ps, void **blob) {
    *blob = NULL;
    if (!ps->params) return 0;
    size_t len = header_size();
    for (int i = 0; i < ps->ntensors; i++) len += tensor_entry_size(&ps->tensors[i]);
    len += 3 * ps->total * sizeof(float) + 8;
    unsigned char *buf = malloc(len), *p = buf;
    if (!buf) return 0;
    uint32_t version = PARAMS_VERSION, ntensors = (uint32_t)ps->ntensors;
    uint64_t total = ps->total;
    int64_t step = ps->step;
    p = put(p, PARAMS_MAGIC, 8);
    p = put(p, &version, 4);
    p = put(p, &ntensors, 4);
    p = put(p, &total, 8);
    p = put(p, &step, 8);
    for (int i = 0; i < ps->ntensors; i++) {
        const ParamTensor *t = &ps->tensors[i];
        uint32_t nlen = (uint32_t)strlen(t->name), ndim = (uint32_t)t->ndim;
        int32_t shape[PARAM_MAX_DIMS] = {0};
        for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
        p = put(p, &nlen, 4);
        p = put(p, t->name, nlen);
        p = put(p, &ndim, 4);
        p = put(p, shape, sizeof(shape));
    }
    p = put(p, ps->params, ps->total * sizeof(float));
    p = put(p, ps->m, ps->total * sizeof(float));
    p = put(p, ps->v, ps->total * sizeof(float));
    uint64_t sum = hash_fnv1a(buf, (size_t)(p - buf));
    p = put(p, &sum, 8);
    *blob = buf;
    return len;
}

/* Bounds-checked reader over the blob; every failure names the byte offset. */
typedef struct {
    const unsigned char *s;
    size_t len, pos;
} Reader;

static int take(Reader *r, void *dst, size_t n, const char *what, char *err, size_t errlen) {
    if (r->len - r->pos < n)
        return errmsg_fail(err, errlen,
                           "params blob: truncated at offset %zu reading %s (%zu of %zu bytes)",
                           r->pos, what, n, r->len - r->pos);
    memcpy(dst, r->s + r->pos, n);
    r->pos += n;
    return 0;
}

/* Checks the header and tensor table against ps without touching it. */
static int check_layout(const ParamSet *ps, Reader *r, char *err, size_t errlen) {
    char magic[8];
    uint32_t version = 0, ntensors = 0;
    uint64_t total = 0;
    int64_t step = 0;
    if (take(r, magic, 8, "magic", err, errlen)) return -1;
    if (memcmp(magic, PARAMS_MAGIC, 8) != 0)
        return errmsg_fail(err, errlen,
                           "params blob: bad magic at offset 0 (not a parameter blob)");
    if (take(r, &version, 4, "version", err, errlen)) return -1;
    if (version != PARAMS_VERSION)
        return errmsg_fail(err, errlen, "params blob: version %u at offset 8, this build reads %u",
                           version, PARAMS_VERSION);
    if (take(r, &ntensors, 4, "tensor count", err, errlen) ||
        take(r, &total, 8, "total", err, errlen) || take(r, &step, 8, "step", err, errlen))
        return -1;
    if (ntensors != (uint32_t)ps->ntensors)
        return errmsg_fail(err, errlen, "params blob: %u tensors, the model declares %d", ntensors,
                           ps->ntensors);
    if (total != ps->total)
        return errmsg_fail(err, errlen, "params blob: %llu floats, the model declares %zu",
                           (unsigned long long)total, ps->total);
    for (int i = 0; i < ps->ntensors; i++) {
        const ParamTensor *t = &ps->tensors[i];
        uint32_t nlen = 0, ndim = 0;
        char name[PARAM_NAME_MAX];
        int32_t shape[PARAM_MAX_DIMS] = {0};
        size_t at = r->pos;
        if (take(r, &nlen, 4, "name length", err, errlen)) return -1;
        if (nlen >= PARAM_NAME_MAX)
            return errmsg_fail(err, errlen, "params blob: tensor %d name length %u at offset %zu",
                               i, nlen, at);
        if (take(r, name, nlen, "name", err, errlen)) return -1;
        name[nlen] = '\0';
        if (strcmp(name, t->name) != 0)
            return errmsg_fail(err, errlen,
                               "params blob: tensor %d is '%s' at offset %zu, expected '%s'", i,
                               name, at, t->name);
        if (take(r, &ndim, 4, "ndim", err, errlen) ||
            take(r, shape, sizeof(shape), "shape", err, errlen))
            return -1;
        int same = ndim == (uint32_t)t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = shape[d] == t->shape[d];
        if (!same)
            return errmsg_fail(
                err, errlen,
                "params blob: tensor '%s' at offset %zu has shape [%d %d %d %d] (ndim %u), "
                "expected [%d %d %d %d] (ndim %d)",
                name, at, shape[0], shape[1], shape[2], shape[3], ndim, t->shape[0],
                t->ndim > 1 ? t->shape[1] : 0, t->ndim > 2 ? t->shape[2] : 0,
                t->ndim > 3 ? t->shape[3] : 0, t->ndim);
    }
    return 0;
}

int params_blob_fits(const ParamSet *ps, const void *blob, size_t len) {
    char err[256];
    Reader r = {blob, len, 0};
    return check_layout(ps, &r, err, sizeof err) == 0;
}

int params_deserialize(ParamSet *ps, const void *blob, size_t len, char *err, size_t errlen) {
    if (!ps->params) return errmsg_fail(err, errlen, "params_deserialize: set not allocated");
    Reader r = {blob, len, 0};
    if (check_layout(ps, &r, err, errlen)) return -1;
    size_t data = 3 * ps->total * sizeof(float);
    if (len - r.pos != data + 8)
        return errmsg_fail(
            err, errlen,
            "params blob: %zu bytes after the tensor table at offset %zu, expected %zu "
            "(truncated or padded)",
            len - r.pos, r.pos, data + 8);
    uint64_t stored, sum = hash_fnv1a(r.s, len - 8);
    memcpy(&stored, r.s + len - 8, 8);
    if (stored != sum)
        return errmsg_fail(err, errlen, "params blob: checksum mismatch at offset %zu (corrupted)",
                           len - 8);
    // only now, with everything verified, is the set overwritten
    int64_t step;
    memcpy(&step, r.s + 24, 8);
    const unsigned char *p = r.s + r.pos;
    size_t bytes = ps->total * sizeof(float);
    memcpy(ps->params, p, bytes);
    memcpy(ps->m, p + bytes, bytes);
    memcpy(ps->v, p + 2 * bytes, bytes);
    ps->step = step;
    return 0;
}
