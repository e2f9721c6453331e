/* ssna replay - not built yet; see the open issues. */
#include <stdio.h>

#include "daemon/ssna_cmd.h"

int ssna_cmd_replay(int argc, char **argv) {
    fprintf(stderr, "ssna replay: not implemented yet\n");
    return 2;
}
