/* ssna encode - not built yet; see the open issues. */
#include <stdio.h>

#include "daemon/ssna_cmd.h"

int ssna_cmd_encode(int argc, char **argv) {
    fprintf(stderr, "ssna encode: not implemented yet\n");
    return 2;
}
