/* ssna export - write the exact leave-one-out split `ssna train` builds as RecBole atomic
 * benchmark files, so another library trains and evaluates on the same examples. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/ssna_cmd.h"
#include "model/errmsg.h"
#include "model/fileio.h"
#include "daemon/ssna_data.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ssna export --data PATH --out DIR [--name NAME] [options]\n\n"
            "Write the leave-one-out split of `ssna train` (same reader, k-core and last-N\n"
            "truncation) as RecBole 1.x atomic benchmark files DIR/NAME.{train,valid,test}.inter,\n"
            "columns user_id:token, item_id_list:token_seq, item_id:token (external ids):\n"
            "  train  one row per training target: s[0..t) -> s[t], t = 1 .. n-3\n"
            "  valid  s[0..n-2) -> s[n-2]        test  s[0..n-1) -> s[n-1]\n"
            "for every user with at least 3 items (the users ssna eval ranks). Load them in\n"
            "RecBole with benchmark_filename: [train, valid, test].\n\n"
            "  --data PATH        a UniSRec folder or a user,item,timestamp CSV/TSV file\n"
            "  --name NAME        output NAME (default ssna); for a UniSRec folder holding\n"
            "                     several data sets use --in-name\n"
            "  --in-name NAME     the UniSRec NAME to read\n"
            "  --k-core K         CSV only: iterative K-core (default 5)\n"
            "  --max-len N        keep each user's last N items (default 50)\n");
}

/* ids must not contain the separators of the atomic format (tab, space, newline). */
static int check_token(const char *kind, const char *id, char *err, size_t errlen) {
    if (!*id || strpbrk(id, " \t\r\n")) {
        return errmsg_fail(err, errlen,
                           "%s id '%s' is empty or has whitespace: not an atomic token", kind, id);
    }
    return 0;
}

/* One row: user, the items s[0..t) space-separated, target s[t]. */
static void write_row(FILE *f, const Interactions *in, int u, int t) {
    const int *s = in->items + in->offsets[u];
    fprintf(f, "%s\t", in->user_ids[u]);
    for (int i = 0; i < t; i++) fprintf(f, i ? " %s" : "%s", in->item_ids[s[i]]);
    fprintf(f, "\t%s\n", in->item_ids[s[t]]);
}

static int write_split(const char *dir, const char *name, const char *split, const Interactions *in,
                       long *rows, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s.inter", dir, name, split);
    FileBuffer b;
    if (file_buffer_open(&b, err, errlen)) return -1;
    FILE *f = b.f;
    fprintf(f, "user_id:token\titem_id_list:token_seq\titem_id:token\n");
    *rows = 0;
    for (int u = 0; u < in->n_users; u++) {
        int n = in->offsets[u + 1] - in->offsets[u];
        if (n < 3) continue;
        if (!strcmp(split, "train"))
            for (int t = 1; t <= n - 3; t++) write_row(f, in, u, t), ++*rows;
        else
            write_row(f, in, u, !strcmp(split, "valid") ? n - 2 : n - 1), ++*rows;
    }
    return file_buffer_commit(&b, path, err, errlen);
}

int ssna_cmd_export(int argc, char **argv) {
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},   {"out", required_argument, 0, 'o'},
        {"name", required_argument, 0, 'n'},   {"in-name", required_argument, 0, 'i'},
        {"k-core", required_argument, 0, 'k'}, {"max-len", required_argument, 0, 'm'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    const char *data = NULL, *out = NULL, *name = "ssna", *in_name = NULL;
    int k_core = 5, max_len = 50, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'i':
            in_name = optarg;
            break;
        case 'k':
            if (ssna_opt_int("export", "--k-core", optarg, 0, 1000000, &k_core)) return 2;
            break;
        case 'm':
            if (ssna_opt_int("export", "--max-len", optarg, 3, 100000, &max_len)) return 2;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || !data || !out || max_len < 3 || !*name) {
        fprintf(stderr, "ssna export: missing --data / --out or a bad value\n");
        usage(stderr);
        return 2;
    }
    char err[4608], unisrec[256];
    Interactions in = {0};
    long rows[3];
    static const char *const splits[] = {"train", "valid", "test"};
    int rc = 1;
    if (ssna_data_load(data, in_name, k_core, max_len, &in, unisrec, sizeof unisrec, err,
                       sizeof err))
        goto fail;
    for (int u = 0; u < in.n_users; u++)
        if (check_token("user", in.user_ids[u], err, sizeof err)) goto fail;
    for (int i = 0; i < in.n_items; i++)
        if (check_token("item", in.item_ids[i], err, sizeof err)) goto fail;
    if (mkdir(out, 0777) && errno != EEXIST) {
        snprintf(err, sizeof err, "%s: %s", out, strerror(errno));
        goto fail;
    }
    for (int s = 0; s < 3; s++)
        if (write_split(out, name, splits[s], &in, &rows[s], err, sizeof err)) goto fail;
    char *qo = ssna_json_string(out), *qn = ssna_json_string(name);
    if (qo && qn) {
        printf("{\"command\":\"export\",\"dir\":%s,\"name\":%s,\"users\":%d,\"items\":%d,"
               "\"train_rows\":%ld,\"valid_rows\":%ld,\"test_rows\":%ld}\n",
               qo, qn, in.n_users, in.n_items, rows[0], rows[1], rows[2]);
        rc = 0;
    } else {
        snprintf(err, sizeof err, "out of memory");
    }
    free(qo), free(qn);
fail:
    if (rc) fprintf(stderr, "ssna export: %s\n", err);
    interactions_free(&in);
    return rc;
}
