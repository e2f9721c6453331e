/* params.h - one flat block of named parameters, their gradients and Adam state.
 *
 * Every trainable tensor of a model is a slice of one float array, so a checkpoint is four
 * arrays (params, grads are not saved, m, v) plus the table of names and shapes: one blob.
 */
#ifndef SSNA_MODEL_PARAMS_H
#define SSNA_MODEL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#define PARAM_NAME_MAX 64
#define PARAM_MAX_DIMS 4

typedef struct {
    char name[PARAM_NAME_MAX];
    int ndim;
    int shape[PARAM_MAX_DIMS];
    size_t offset; /* in floats, into params/grads/m/v */
    size_t size;   /* product of shape */
} ParamTensor;

typedef struct {
    ParamTensor *tensors;
    int ntensors, cap;
    size_t total;  /* floats in each of params, grads, m, v */
    float *params; /* [total] */
    float *grads;  /* [total] */
    float *m, *v;  /* [total] Adam first/second moments */
    int64_t step;  /* Adam steps taken */
} ParamSet;

/* Adam hyper-parameters; adam_defaults() gives PyTorch's (lr 1e-3, 0.9, 0.999, 1e-8, wd 0). */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
} AdamConfig;

AdamConfig adam_defaults(void);

/* Start an empty set. */
void params_init(ParamSet *ps);
/* Declare a tensor (before params_alloc); returns its index or -1 with errbuf filled. */
int params_declare(ParamSet *ps, const char *name, int ndim, const int *shape, char *err,
                   size_t errlen);
/* Allocate params/grads/m/v for every declared tensor (zeroed); 0 or -1 with err. */
int params_alloc(ParamSet *ps, char *err, size_t errlen);
/* Pointer to a tensor's parameters / gradients by index. */
float *params_data(const ParamSet *ps, int idx);
float *params_grad(const ParamSet *ps, int idx);
/* Index of a tensor by name, or -1. */
int params_find(const ParamSet *ps, const char *name);
/* Zero all gradients. */
void params_zero_grad(ParamSet *ps);
/* Free everything. */
void params_free(ParamSet *ps);

/* One Adam step over the whole set (PyTorch semantics: L2 weight decay added to the gradient,
 * bias-corrected moments). Increments ps->step. */
void adam_step(ParamSet *ps, const AdamConfig *cfg);

/* Serialise the set (names, shapes, params, m, v, step) into a malloc'd blob; returns its size
 * or 0 on failure. */
size_t params_serialize(const ParamSet *ps, void **blob);
/* Restore from a blob made by params_serialize into a set with the same declared tensors;
 * names and shapes must match exactly. 0 or -1 with err naming the first mismatch. */
int params_deserialize(ParamSet *ps, const void *blob, size_t len, char *err, size_t errlen);
/* 1 when blob's header and tensor table match ps (the same tensors, each of the same shape):
 * params_deserialize would not refuse it for its layout. 0 otherwise (or unreadable). */
int params_blob_fits(const ParamSet *ps, const void *blob, size_t len);

#endif
