/* test_ssna_train.c - end-to-end learning on a slice of the real Scientific data (the first
 * 3,000 users' real sequences, ranked against ALL 4,385 items), and the checkpoint round trip
 * (best weights reload to the same metrics; a resumed run continues the same run bit for bit).
 *
 * Item states do not come from the encoder here (embedding 4,385 texts would make the test
 * minutes long). They are a deterministic stand-in: N(0, 1) vectors from a fixed seed, one per
 * item and layer, carrying no text signal at all. The untrained model is therefore at chance,
 * and a validation Recall@10 far above a random ranker's 10 / 4,385 = 0.0023 can only come from
 * what training learned from the sequences.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ingest/interactions.h"
#include "model/rng.h"
#include "model/ssna.h"
#include "model/ssna_train.h"

#define SLICE_USERS 3000
#define HIDDEN      64
#define LAYERS      2
#define EPOCHS      12

static double valid_r10(SsnaModel *m, const float *states, const SsnaSequences *seq) {
    Metrics mt;
    char err[512];
    int rc = ssna_evaluate(m, states, seq, SSNA_SPLIT_VALID, 256, &mt, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    return rc ? -1.0 : metrics_recall(&mt, 0);
}

int main(void) {
    const char *data = getenv("SSNA_DATA_DIR");
    CHECK_MSG(data != NULL, "SSNA_DATA_DIR is not set (run through ctest)");
    if (!data) return check_done();
    char dir[1024], err[512], ckpt[] = "/tmp/ssna_train_test_XXXXXX";
    snprintf(dir, sizeof dir, "%s/amazon-scientific", data);
    Interactions d;
    int rc = interactions_load_unisrec(&d, dir, "Scientific", 50, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return check_done();
    size_t n_states = (size_t)d.n_items * LAYERS * HIDDEN;
    float *states = malloc(n_states * sizeof(float));
    uint64_t state_seed = 3;
    CHECK(states != NULL);
    if (!states) return check_done();
    rng_fill_normal(states, n_states, 0.0f, 1.0f, &state_seed);
    SsnaSequences seq = {SLICE_USERS, d.offsets, d.items};

    SsnaConfig cfg = ssna_config_default(SSNA_VARIANT_GRU, d.n_items, HIDDEN, LAYERS);
    cfg.d = 64, cfg.inner = 64, cfg.hidden_dropout = 0.2f; /* small model, small data */
    SsnaModel m;
    CHECK_MSG(ssna_create(&m, &cfg, 11, err, sizeof err) == 0, "%s", err);
    AdamConfig adam = adam_defaults();
    adam.lr = 2e-3f;
    double random_r10 = 10.0 / d.n_items, before = valid_r10(&m, states, &seq), after = 0;
    uint64_t shuffle = 5;
    double first_loss = 0, loss = 0;
    for (int e = 0; e < EPOCHS; e++) {
        int steps;
        rc = ssna_train_epoch(&m, states, &seq, 128, &adam, &shuffle, &loss, &steps, err,
                              sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        if (e == 0) first_loss = loss;
        after = valid_r10(&m, states, &seq);
        printf("epoch %d: loss %.4f, %d steps, valid R@10 %.4f\n", e + 1, loss, steps, after);
    }
    printf("valid R@10: %.4f before training, %.4f after; random ranker %.4f\n", before, after,
           random_r10);
    CHECK_MSG(loss < first_loss, "loss %.4f did not fall below %.4f", loss, first_loss);
    CHECK_MSG(after > 6 * random_r10, "R@10 %.4f is not far above random %.4f", after, random_r10);
    CHECK(after > 3 * before);

    /* checkpoint: best weights reload to identical metrics ... */
    int fd = mkstemp(ckpt);
    CHECK(fd >= 0);
    SsnaTrainState st;
    memset(&st, 0, sizeof st);
    st.epoch = EPOCHS, st.shuffle_rng = shuffle, st.model_rng = m.rng;
    snprintf(st.meta, sizeof st.meta, "{\"test\":true}");
    CHECK_MSG(ssna_checkpoint_save(ckpt, &m, &st, NULL, 0, err, sizeof err) == 0, "%s", err);
    SsnaModel loaded;
    SsnaTrainState st2;
    rc = ssna_checkpoint_load(ckpt, 1, &loaded, &st2, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc == 0) {
        CHECK(st2.epoch == EPOCHS && st2.shuffle_rng == shuffle && !strcmp(st2.meta, st.meta));
        CHECK(loaded.cfg.d == 64 && loaded.cfg.layers == LAYERS);
        CHECK(valid_r10(&loaded, states, &seq) == after);
        /* ... and the resumed run takes the same next epoch as the one that kept going */
        double loss_a, loss_b;
        int steps;
        uint64_t sa = shuffle, sb = st2.shuffle_rng;
        ssna_free(&loaded);
        rc = ssna_checkpoint_load(ckpt, 0, &loaded, &st2, NULL, NULL, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        CHECK(ssna_train_epoch(&m, states, &seq, 128, &adam, &sa, &loss_a, &steps, err,
                               sizeof err) == 0);
        CHECK(ssna_train_epoch(&loaded, states, &seq, 128, &adam, &sb, &loss_b, &steps, err,
                               sizeof err) == 0);
        CHECK_MSG(loss_a == loss_b, "resumed loss %.9g vs %.9g", loss_b, loss_a);
        CHECK(memcmp(m.ps.params, loaded.ps.params, m.ps.total * sizeof(float)) == 0);
        ssna_free(&loaded);
    }
    remove(ckpt);
    ssna_free(&m);
    free(states);
    interactions_free(&d);
    return check_done();
}
