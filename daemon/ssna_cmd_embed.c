/* ssna embed - not built yet; see the open issues. */
#include <stdio.h>

#include "daemon/ssna_cmd.h"

int ssna_cmd_embed(int argc, char **argv) {
    fprintf(stderr, "ssna embed: not implemented yet\n");
    return 2;
}
