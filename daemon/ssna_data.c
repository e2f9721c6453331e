/* ssna_data.c - the offline subcommands' data set reader. */
#include "daemon/ssna_data.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "model/errmsg.h"

/* The NAME of the single DIR/NAME.test.inter. */
static int find_unisrec_name(const char *dir, char *name, size_t len, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) {
        return errmsg_fail(err, errlen, "%s: %s", dir, strerror(errno));
    }
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 11 && !strcmp(e->d_name + n - 11, ".test.inter") && n - 11 < len) {
            snprintf(name, len, "%.*s", (int)(n - 11), e->d_name);
            found++;
        }
    }
    closedir(d);
    if (found != 1) {
        return errmsg_fail(err, errlen,
                           "%s: expected exactly one NAME.test.inter (found %d); use --name", dir,
                           found);
    }
    return 0;
}

int ssna_data_load(const char *data, const char *name, int k_core, int max_len, Interactions *out,
                   char *name_out, size_t name_len, char *err, size_t errlen) {
    if (name_len) name_out[0] = 0;
    DIR *d = opendir(data);
    if (d) { /* a UniSRec folder */
        closedir(d);
        if (name)
            snprintf(name_out, name_len, "%s", name);
        else if (find_unisrec_name(data, name_out, name_len, err, errlen))
            return -1;
        return interactions_load_unisrec(out, data, name_out, max_len, err, errlen);
    }
    InteractionOptions io = interactions_default_options();
    io.k_core = k_core;
    io.max_len = max_len;
    return interactions_load_csv(out, data, &io, err, errlen);
}
