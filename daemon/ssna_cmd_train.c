/* ssna train / eval / recommend - not built yet; see the open issues. */
#include <stdio.h>

#include "daemon/ssna_cmd.h"

static int not_yet(const char *name) {
    fprintf(stderr, "ssna %s: not implemented yet\n", name);
    return 2;
}

int ssna_cmd_train(int argc, char **argv) {
    return not_yet("train");
}

int ssna_cmd_eval(int argc, char **argv) {
    return not_yet("eval");
}

int ssna_cmd_recommend(int argc, char **argv) {
    return not_yet("recommend");
}
