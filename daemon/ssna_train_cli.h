/* ssna_train_cli.h - the command line of `ssna train`, `ssna eval` and `ssna recommend`: one
 * option set, one parser, the --help text of each. */
#ifndef SSNA_DAEMON_SSNA_TRAIN_CLI_H
#define SSNA_DAEMON_SSNA_TRAIN_CLI_H

#include <stdint.h>

typedef struct {
    const char *data, *name, *db, *out, *ckpt, *text, *user, *per_user;
    int variant, loss, pop, layers, batch, eval_batch, epochs, patience, k, k_core, max_len;
    int resume, include_seen, latest;
    int test_curve; /* train: also evaluate the test split after every epoch (a diagnostic) */
    uint64_t seed;
    float lr;
    float dropout, attn_dropout; /* hidden / attention-probability dropout; < 0 = the default */
    int d, inner;                /* SASRec width and feed-forward size; 0 = the default */
    float tau;                   /* score temperature; 0 = the default */
    int score;                   /* SsnaScore: cos (0, the default) or dot */
    int item_ids;                /* 1 = text variants add a learned ID row to each item */
} SsnaTrainOptions;

/* Parse argv of subcommand cmd ("train", "eval", "recommend") into o, with the defaults the help
 * states. Returns -1 to go on, or the exit status: 0 after --help, 2 after a usage error (the
 * message and the usage are printed). */
int ssna_train_parse_options(const char *cmd, int argc, char **argv, SsnaTrainOptions *o);

#endif
