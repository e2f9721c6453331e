/* ssna - the offline command-line tool: encoder, cache, training, evaluation, replay. */
#include <stdio.h>
#include <string.h>

#include "daemon/ssna_cmd.h"

struct ssna_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct ssna_command commands[] = {
    {"encode", ssna_cmd_encode, "tokenize texts and print the encoder's per-layer vectors"},
    {"embed", ssna_cmd_embed, "encode every item text of a file into the LMDB cache"},
    {"train", ssna_cmd_train, "train an SSNA model offline (leave-one-out, early stopping)"},
    {"eval", ssna_cmd_eval, "evaluate a checkpoint: Recall/NDCG@10/50 against all items"},
    {"recommend", ssna_cmd_recommend, "print one user's top-k with item texts"},
    {"export", ssna_cmd_export, "write the train/valid/test split as RecBole atomic files"},
    {"replay", ssna_cmd_replay, "publish a dataset to Kafka as a live event stream"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: ssna <command> [options]\n\n"
                 "SSNA sequential recommender: offline tools.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'ssna <command> --help' for a command's options.\n"
                 "The streaming daemon is a separate program: ssnad --help.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ssna: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
