/* ssna_cmd.h - the offline subcommands of the `ssna` tool.
 *
 * Each subcommand is one function with main()'s signature (argv[0] is the subcommand name) that
 * returns a process exit code: 0 success, 1 failure at run time, 2 bad usage. Each lives in its
 * own daemon/ssna_cmd_<name>.c and prints its own --help.
 */
#ifndef SSNA_DAEMON_SSNA_CMD_H
#define SSNA_DAEMON_SSNA_CMD_H

/* Tokenize texts and print per-layer vectors of the frozen encoder as JSON. */
int ssna_cmd_encode(int argc, char **argv);
/* Run every item text of a file through the encoder into the LMDB cache (restartable). */
int ssna_cmd_embed(int argc, char **argv);
/* Train an SSNA model offline on a dataset, with validation-based early stopping. */
int ssna_cmd_train(int argc, char **argv);
/* Evaluate a checkpoint on the leave-one-out validation and test splits. */
int ssna_cmd_eval(int argc, char **argv);
/* Print one user's top-k recommendations with item texts. */
int ssna_cmd_recommend(int argc, char **argv);
/* Write the leave-one-out split of `ssna train` as RecBole atomic benchmark files. */
int ssna_cmd_export(int argc, char **argv);
/* Publish a dataset to Kafka as a live stream of Item and Interaction messages. */
int ssna_cmd_replay(int argc, char **argv);

/* ---- checked option values (ssna_cmd_args.c) ---- */

/* Option opt of subcommand cmd as a whole decimal integer in [lo, hi] (model/numparse.h): 0, or
 * -1 after printing `ssna CMD: OPT: "S" is not an integer in LO .. HI` to stderr (the caller then
 * exits 2). */
int ssna_opt_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out);
int ssna_opt_int(const char *cmd, const char *opt, const char *s, int lo, int hi, int *out);
/* A finite number in [lo, hi], with the same message on failure. */
int ssna_opt_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                    double *out);

/* s as a JSON string literal, quotes included (jansson's escaping; bytes that are not UTF-8
 * become U+FFFD so the line stays JSON), to free(); NULL when out of memory. */
char *ssna_json_string(const char *s);

#endif
