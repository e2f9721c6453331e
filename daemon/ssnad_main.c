/* ssnad - the streaming online-learning recommender daemon. */
#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out, "usage: ssnad [--config FILE]\n\n"
                 "Streaming SSNA recommender daemon: consumes Interaction and Item events from\n"
                 "Kafka, learns online, publishes top-k Recommendations.\n\n"
                 "The daemon loop is not built yet (see the open issues); this binary only\n"
                 "answers --help.\n");
}

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
