/* ssna_train_cli.c - options and --help of the offline subcommands train / eval / recommend. */
#include "daemon/ssna_train_cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "daemon/ssna_cmd.h"
#include "model/ssna.h"

/* ---- options -------------------------------------------------------------------------------- */

enum {
    OPT_PATIENCE = 256,
    OPT_EVAL_BATCH,
    OPT_KCORE,
    OPT_MAXLEN,
    OPT_RESUME,
    OPT_LR,
    OPT_SEEN,
    OPT_LATEST,
    OPT_NAME,
    OPT_TEXT,
    OPT_PER_USER,
    OPT_LOSS,
    OPT_DROPOUT,
    OPT_ATTN_DROPOUT,
    OPT_D,
    OPT_INNER,
    OPT_TAU,
    OPT_SCORE,
    OPT_ITEM_IDS,
    OPT_TEST_CURVE
};

static const struct option long_options[] = {
    {"data", required_argument, 0, 'd'},
    {"db", required_argument, 0, 'b'},
    {"variant", required_argument, 0, 'v'},
    {"layers", required_argument, 0, 'a'},
    {"batch", required_argument, 0, 'B'},
    {"epochs", required_argument, 0, 'e'},
    {"seed", required_argument, 0, 's'},
    {"out", required_argument, 0, 'o'},
    {"ckpt", required_argument, 0, 'c'},
    {"user", required_argument, 0, 'u'},
    {"patience", required_argument, 0, OPT_PATIENCE},
    {"eval-batch", required_argument, 0, OPT_EVAL_BATCH},
    {"k-core", required_argument, 0, OPT_KCORE},
    {"max-len", required_argument, 0, OPT_MAXLEN},
    {"resume", no_argument, 0, OPT_RESUME},
    {"lr", required_argument, 0, OPT_LR},
    {"loss", required_argument, 0, OPT_LOSS},
    {"dropout", required_argument, 0, OPT_DROPOUT},
    {"attn-dropout", required_argument, 0, OPT_ATTN_DROPOUT},
    {"d", required_argument, 0, OPT_D},
    {"inner", required_argument, 0, OPT_INNER},
    {"tau", required_argument, 0, OPT_TAU},
    {"score", required_argument, 0, OPT_SCORE},
    {"item-ids", no_argument, 0, OPT_ITEM_IDS},
    {"test-curve", no_argument, 0, OPT_TEST_CURVE},
    {"include-seen", no_argument, 0, OPT_SEEN},
    {"latest", no_argument, 0, OPT_LATEST},
    {"name", required_argument, 0, OPT_NAME},
    {"text", required_argument, 0, OPT_TEXT},
    {"per-user", required_argument, 0, OPT_PER_USER},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static const char data_help[] =
    "  --data PATH        a UniSRec folder (NAME.{train,valid,test}.inter; train is optional)\n"
    "                     or a user,item,timestamp CSV/TSV file (header optional)\n"
    "  --name NAME        the UniSRec NAME when the folder holds several\n"
    "  --db DIR           LMDB cache of item layer states filled by `ssna embed` (not for id)\n"
    "  --k-core K         CSV only: iterative K-core on users and items (default 5)\n"
    "  --max-len N        keep each user's last N items (default 50)\n";

static void usage(const char *cmd, FILE *f) {
    if (!strcmp(cmd, "train")) {
        fprintf(f,
                "usage: ssna train --data PATH [--db DIR] --out CKPT [options]\n\n"
                "Train SSNA offline. Leave-one-out split: each user's last item is the test\n"
                "target, the one before it validation, the rest trains (every position of a\n"
                "training sequence predicts the next item; --loss says against what). After\n"
                "each epoch the validation Recall/NDCG@10/50 against all items are printed with\n"
                "the loss, seconds and peak RSS; the best validation R@10 epoch's test metrics\n"
                "are reported; training stops after --patience epochs without improvement. The\n"
                "last line of stdout is one JSON object with every metric and the timings.\n\n%s"
                "  --variant V        gru (default) | mean | weighted | tmoe | tmlp | id | pop\n"
                "                     (pop: most popular items of the training part, counted\n"
                "                     once; --out gets the counts, eval/recommend read them)\n"
                "  --layers A         encoder layers kept, from the top (default 3; tmoe/tmlp 1)\n"
                "  --batch N          users per Adam step (default: users / 32, within 16 ..\n"
                "                     256, so a small data set still gets ~32 steps an epoch)\n"
                "  --epochs N         maximum epochs (default 200)\n"
                "  --patience N       early stopping patience in epochs (default 10)\n"
                "  --lr X             Adam learning rate (default 1e-3, RecBole's)\n"
                "  --loss L           logq (default; alias sampled-logq): the batch's targets are\n"
                "                     the negatives, corrected by each item's share of the\n"
                "                     training targets (popular items are not pushed down);\n"
                "                     inbatch: the same uncorrected (UniSRec's, the paper's;\n"
                "                     the default before 2026-12-05); full: softmax over the\n"
                "                     whole catalogue (every item through the adapters each\n"
                "                     step: slower; RecBole's CE)\n"
                "  --dropout P        SASRec hidden dropout (default 0.5, RecBole's)\n"
                "  --attn-dropout P   dropout of the attention probabilities (default 0.5)\n"
                "  --d N              adapter output = SASRec width (default 256, the paper's;\n"
                "                     RecBole's SASRec: 64), a multiple of the 2 heads\n"
                "  --inner N          SASRec feed-forward size (default 256)\n"
                "  --tau X            temperature of the cosine scores (default 0.07)\n"
                "  --score S          cos (default): cos(u, v) / tau, the paper's; dot: u . v,\n"
                "                     RecBole SASRec's logits (offline only: ssnad serves cos)\n"
                "  --item-ids         text variants: add a learned ID vector to each item's text\n"
                "                     vector (UniSRec's text + ID fine-tuning; offline only:\n"
                "                     ssnad's catalogue grows, its items are text alone)\n"
                "  --seed S           initialisation, batch order and dropout seed (default 42)\n"
                "  --eval-batch N     users per evaluation batch (default 512)\n"
                "  --test-curve       also rank the test items after every epoch and print them\n"
                "                     on its progress line (a diagnostic of how far the test\n"
                "                     figure moves between epochs; the epoch reported is still\n"
                "                     the best validation one, chosen without them)\n"
                "  --out CKPT         checkpoint written after every epoch: parameters, Adam\n"
                "                     state, config and progress, plus the best epoch's weights\n"
                "  --resume           continue the run saved in --out (its config and options)\n",
                data_help);
    } else if (!strcmp(cmd, "eval")) {
        fprintf(f,
                "usage: ssna eval --ckpt CKPT --data PATH [--db DIR] [--latest]\n\n"
                "Evaluate a checkpoint's best-validation weights (--latest: the last epoch's) on\n"
                "the leave-one-out validation and test splits, ranking against ALL items;\n"
                "prints one JSON object with Recall/NDCG@10/50. --data must be the data set\n"
                "it was trained on. The user's own items are not removed; ties count against\n"
                "the held-out item.\n\n%s"
                "  --per-user FILE    also write one line per evaluated user: user id, 0-based\n"
                "                     rank of the validation and of the test item (TSV)\n",
                data_help);
    } else {
        fprintf(f,
                "usage: ssna recommend --ckpt CKPT --data PATH [--db DIR] --user ID [-k N]\n\n"
                "Print user ID's top-N items (default 10) after the whole sequence, one line\n"
                "each: rank, item id, score (the cosine; u . v for a --score dot model), item\n"
                "text. Items the user has seen are left out unless --include-seen.\n\n%s"
                "  --text FILE        item texts (default: the UniSRec NAME.text or NAME.item)\n",
                data_help);
    }
}

int ssna_train_parse_options(const char *cmd, int argc, char **argv, SsnaTrainOptions *o) {
    memset(o, 0, sizeof *o);
    o->layers = -1, o->batch = 0, o->eval_batch = 512, o->epochs = 200, o->patience = 10;
    o->k = 10, o->k_core = 5, o->max_len = 50, o->seed = 42, o->lr = 1e-3f;
    o->loss = SSNA_LOSS_LOGQ; // measured: docs/results.md
    o->dropout = o->attn_dropout = -1.0f;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "k:h", long_options, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->data = optarg;
            break;
        case 'b':
            o->db = optarg;
            break;
        case 'v':
            if (!strcmp(optarg, "pop")) {
                o->pop = 1;
                break;
            }
            if ((o->variant = ssna_variant_parse(optarg)) < 0) {
                fprintf(stderr, "ssna %s: unknown variant '%s'\n", cmd, optarg);
                return 2;
            }
            break;
        case 'a':
            if (ssna_opt_int(cmd, "--layers", optarg, 1, 1000, &o->layers)) return 2;
            break;
        case 'B':
            if (ssna_opt_int(cmd, "--batch", optarg, 1, 1 << 20, &o->batch)) return 2;
            break;
        case 'e':
            if (ssna_opt_int(cmd, "--epochs", optarg, 0, 1000000, &o->epochs)) return 2;
            break;
        case 's': {
            long seed;
            if (ssna_opt_long(cmd, "--seed", optarg, 0, LONG_MAX, &seed)) return 2;
            o->seed = (uint64_t)seed;
        } break;
        case 'o':
            o->out = optarg;
            break;
        case 'c':
            o->ckpt = optarg;
            break;
        case 'u':
            o->user = optarg;
            break;
        case 'k':
            if (ssna_opt_int(cmd, "-k", optarg, 1, 1000000, &o->k)) return 2;
            break;
        case OPT_PATIENCE:
            if (ssna_opt_int(cmd, "--patience", optarg, 0, 1000000, &o->patience)) return 2;
            break;
        case OPT_EVAL_BATCH:
            if (ssna_opt_int(cmd, "--eval-batch", optarg, 1, 1 << 20, &o->eval_batch)) return 2;
            break;
        case OPT_KCORE:
            if (ssna_opt_int(cmd, "--k-core", optarg, 0, 1000000, &o->k_core)) return 2;
            break;
        case OPT_MAXLEN:
            if (ssna_opt_int(cmd, "--max-len", optarg, 3, 100000, &o->max_len)) return 2;
            break;
        case OPT_RESUME:
            o->resume = 1;
            break;
        case OPT_LR: {
            double lr;
            if (ssna_opt_double(cmd, "--lr", optarg, 1e-9, 10, &lr)) return 2;
            o->lr = (float)lr;
            break;
        }
        case OPT_DROPOUT:
        case OPT_ATTN_DROPOUT: {
            double p;
            int attn = c == OPT_ATTN_DROPOUT;
            if (ssna_opt_double(cmd, attn ? "--attn-dropout" : "--dropout", optarg, 0.0, 0.99, &p))
                return 2;
            *(attn ? &o->attn_dropout : &o->dropout) = (float)p;
            break;
        }
        case OPT_D:
            if (ssna_opt_int(cmd, "--d", optarg, 2, 4096, &o->d)) return 2;
            break;
        case OPT_INNER:
            if (ssna_opt_int(cmd, "--inner", optarg, 1, 65536, &o->inner)) return 2;
            break;
        case OPT_TAU: {
            double tau;
            if (ssna_opt_double(cmd, "--tau", optarg, 1e-3, 100, &tau)) return 2;
            o->tau = (float)tau;
            break;
        }
        case OPT_SCORE:
            if ((o->score = ssna_score_parse(optarg)) < 0) {
                fprintf(stderr, "ssna %s: --score: \"%s\" is not cos or dot\n", cmd, optarg);
                return 2;
            }
            break;
        case OPT_LOSS:
            if ((o->loss = ssna_loss_parse(optarg)) < 0) {
                fprintf(stderr, "ssna %s: --loss: \"%s\" is not inbatch, full or logq\n", cmd,
                        optarg);
                return 2;
            }
            break;
        case OPT_ITEM_IDS:
            o->item_ids = 1;
            break;
        case OPT_TEST_CURVE:
            o->test_curve = 1;
            break;
        case OPT_SEEN:
            o->include_seen = 1;
            break;
        case OPT_LATEST:
            o->latest = 1;
            break;
        case OPT_NAME:
            o->name = optarg;
            break;
        case OPT_TEXT:
            o->text = optarg;
            break;
        case OPT_PER_USER:
            o->per_user = optarg;
            break;
        case 'h':
            usage(cmd, stdout);
            return 0;
        default:
            usage(cmd, stderr);
            return 2;
        }
    }
    if (o->layers < 0)
        o->layers = o->variant == SSNA_VARIANT_TMOE || o->variant == SSNA_VARIANT_TMLP ? 1 : 3;
    if (optind < argc || !o->data || o->batch < 0 || o->eval_batch < 1 || o->layers < 1 ||
        o->max_len < 3 || o->k < 1) {
        fprintf(stderr, "ssna %s: %s\n", cmd,
                optind < argc ? "unexpected argument" : "missing --data or a bad number");
        usage(cmd, stderr);
        return 2;
    }
    if (o->item_ids && o->variant == SSNA_VARIANT_ID) {
        fprintf(stderr, "ssna %s: --item-ids is for the text variants (id has IDs alone)\n", cmd);
        usage(cmd, stderr);
        return 2;
    }
    return -1; /* go on */
}
