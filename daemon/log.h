/* log.h - structured, thread-safe logging for ssnad.
 *
 * One record per line, either a JSON object
 *   {"ts":"2026-11-24T18:30:00.123Z","level":"info","msg":"checkpoint","events":1200}
 * or a plain text form for terminals
 *   2026-11-24T18:30:00.123Z INFO checkpoint events=1200
 * Key/values are typed fields built with LOG_STR / LOG_INT / LOG_F64 / LOG_BOOL. A record is
 * formatted into a local buffer and written with one fwrite under a mutex, so lines from several
 * threads never interleave. The logger is process-wide (like syslog); until log_configure is
 * called it writes text at level info to stderr.
 */
#ifndef SSNA_DAEMON_LOG_H
#define SSNA_DAEMON_LOG_H

#include <stdint.h>
#include <stdio.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } LogLevel;
typedef enum { LOG_FORMAT_JSON = 0, LOG_FORMAT_TEXT } LogFormat;
typedef enum {
    LOG_FIELD_END = 0,
    LOG_FIELD_STR,
    LOG_FIELD_INT,
    LOG_FIELD_F64,
    LOG_FIELD_BOOL
} LogFieldType;

/* One key/value of a record; key NULL ends the list. */
typedef struct {
    const char *key;
    LogFieldType type;
    union {
        const char *s;
        long long i;
        double f;
    };
} LogField;

#define LOG_STR(k, v)  ((LogField){.key = (k), .type = LOG_FIELD_STR, .s = (v)})
#define LOG_INT(k, v)  ((LogField){.key = (k), .type = LOG_FIELD_INT, .i = (long long)(v)})
#define LOG_F64(k, v)  ((LogField){.key = (k), .type = LOG_FIELD_F64, .f = (double)(v)})
#define LOG_BOOL(k, v) ((LogField){.key = (k), .type = LOG_FIELD_BOOL, .i = !!(v)})
#define LOG_END        ((LogField){.key = NULL, .type = LOG_FIELD_END, .i = 0})

/* log_info("checkpoint", LOG_INT("events", n)); the field list may be empty. */
#define log_debug(...) log_emit(LOG_DEBUG, __VA_ARGS__, LOG_END)
#define log_info(...)  log_emit(LOG_INFO, __VA_ARGS__, LOG_END)
#define log_warn(...)  log_emit(LOG_WARN, __VA_ARGS__, LOG_END)
#define log_error(...) log_emit(LOG_ERROR, __VA_ARGS__, LOG_END)

/* Send records to out (not closed by the logger) in the given format, dropping those below
 * min_level. Safe to call while other threads log. */
void log_configure(FILE *out, LogFormat format, LogLevel min_level);
/* Whether a record at this level would be written (to skip costly field preparation). */
int log_enabled(LogLevel level);
/* Write one record: msg, then LogField values passed by value, ending with LOG_END. Use the
 * log_info() etc. macros, which append LOG_END. Strings may be NULL (written as null / -). */
void log_emit(LogLevel level, const char *msg, ...);
/* "debug" | "info" | "warn" | "error" -> *out; 0, or -1 if unknown. */
int log_level_parse(const char *name, LogLevel *out);
/* "json" | "text" -> *out; 0, or -1 if unknown. */
int log_format_parse(const char *name, LogFormat *out);
/* Lower-case name of a level ("info"). */
const char *log_level_name(LogLevel level);

#endif
