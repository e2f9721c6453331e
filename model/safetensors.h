/* safetensors.h - read-only access to a Hugging Face .safetensors file.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the byte after the
 * header), optionally "__metadata__", then the raw little-endian data. The file is memory-mapped;
 * safetensors_open validates the whole header (dtype names, shape products against byte counts,
 * every offset against the file size) so later reads cannot go out of bounds. Every error names
 * the file and, where there is one, the tensor.
 */
#ifndef SSNA_MODEL_SAFETENSORS_H
#define SSNA_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define SAFETENSORS_MAX_DIMS 8

typedef struct {
    char *name;
    char dtype[8]; /* "F32", "F16", "BF16", "I64", ... as in the header */
    int elem_size; /* bytes per element of dtype */
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    size_t n_elems;      /* product of shape */
    const uint8_t *data; /* n_elems * elem_size bytes inside the mapping */
} SafetensorsTensor;

typedef struct {
    char *path;
    uint8_t *map; /* the whole file, read-only */
    size_t size;  /* file size in bytes */
    SafetensorsTensor *tensors;
    size_t n_tensors;
} Safetensors;

/* Map path and validate its header. 0 on success; -1 with a message naming the file (and tensor)
 * for an unreadable, truncated or corrupt file or an unknown dtype. */
int safetensors_open(Safetensors *st, const char *path, char *err, size_t errlen);
/* Unmap and free (a zeroed or failed-open struct is fine). */
void safetensors_close(Safetensors *st);
/* Tensor by exact name, or NULL. */
const SafetensorsTensor *safetensors_find(const Safetensors *st, const char *name);
/* Copy tensor t, converted to float32 from F32/F16/BF16/F64, into out[t->n_elems]. When
 * want_shape is not NULL the tensor's shape must equal want_shape[0..want_ndim). -1 with a
 * message naming the file and tensor on a shape mismatch or a non-float dtype. */
int safetensors_read_f32(const Safetensors *st, const SafetensorsTensor *t,
                         const int64_t *want_shape, int want_ndim, float *out, char *err,
                         size_t errlen);
/* The storage dtype of the floating-point tensors ("F16", ...; "mixed" when they differ; "none"
 * when there are none). */
const char *safetensors_float_dtype(const Safetensors *st);

#endif
