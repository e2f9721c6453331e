/* log.c - see log.h. */
#include "daemon/log.h"
#include "model/utf8.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A record longer than this is cut (strings end in "..."); the line stays valid JSON. */
#define LOG_LINE_MAX 8192
/* Room kept free for the closing of a record (`..."}` plus newline). */
#define LOG_LINE_RESERVE 16

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_out; /* NULL means stderr; set under log_mutex */
static LogFormat log_format = LOG_FORMAT_TEXT;
static LogLevel log_min_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_names_upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};

typedef struct {
    char buf[LOG_LINE_MAX];
    size_t len;
    int full; /* set once an append did not fit; later appends are dropped */
} LogLine;

static void line_put(LogLine *l, const char *s, size_t n) {
    if (l->full) return;
    if (l->len + n + LOG_LINE_RESERVE > sizeof l->buf) {
        l->full = 1;
        return;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_puts(LogLine *l, const char *s) {
    line_put(l, s, strlen(s));
}

/* Append s escaped for a JSON string (json != 0) or a quoted text value; invalid UTF-8 becomes
 * U+FFFD so a hostile input never breaks the line's encoding. */
static void line_put_escaped(LogLine *l, const char *s, int json) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    if (l->full) return;
    for (size_t i = 0; i < n && !l->full;) {
        unsigned char c = p[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            line_put(l, esc, 2);
            i++;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
            line_put(l, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, json ? "\\u%04x" : "\\x%02x", c);
            line_puts(l, esc);
            i++;
        } else {
            size_t len = utf8_sequence_length(p + i, n - i);
            if (len == 0) {
                line_puts(l, "\xef\xbf\xbd");
                i++;
            } else {
                line_put(l, s + i, len);
                i += len;
            }
        }
    }
    if (l->full) {
        /* the reserve always leaves room for this and the record's closing */
        memcpy(l->buf + l->len, "...", 3);
        l->len += 3;
    }
}

/* Text values are bare unless they need quotes to be read back unambiguously. */
static int text_needs_quotes(const char *s) {
    if (!*s) return 1;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '"' || *s == '=' || *s == '\\' || *s == 0x7f)
            return 1;
    return 0;
}

/* The closing quote of a value goes in even when the line is full (the reserve keeps room). */
static void line_force_quote(LogLine *l) {
    l->buf[l->len++] = '"';
}

/* Append a string value; a long one is cut with "..." but stays quoted. -1 if not even its
 * opening fitted (the caller then drops the whole field). */
static int line_put_string_value(LogLine *l, const char *s, int json) {
    if (!s) {
        line_puts(l, json ? "null" : "-");
    } else if (json || text_needs_quotes(s)) {
        line_put(l, "\"", 1);
        if (l->full) return -1;
        line_put_escaped(l, s, json);
        line_force_quote(l);
        return 0;
    } else {
        size_t start = l->len;
        line_put_escaped(l, s, json);
        if (l->len == start) return -1;
        return 0;
    }
    return l->full ? -1 : 0;
}

/* Append one field; a field that does not fit is dropped whole so the line stays parseable. */
static void line_put_field(LogLine *l, const LogField *f, int json) {
    char num[40];
    size_t mark = l->len;
    if (l->full) return;
    if (json) {
        line_put(l, ",\"", 2);
        line_put_escaped(l, f->key, 1);
        line_put(l, "\":", 2);
    } else {
        line_put(l, " ", 1);
        line_put_escaped(l, f->key, 0);
        line_put(l, "=", 1);
    }
    if (l->full) {
        l->len = mark;
        return;
    }
    switch (f->type) {
    case LOG_FIELD_STR:
        if (line_put_string_value(l, f->s, json) < 0) l->len = mark;
        return;
    case LOG_FIELD_INT:
        snprintf(num, sizeof num, "%lld", f->i);
        break;
    case LOG_FIELD_BOOL:
        snprintf(num, sizeof num, "%s", f->i ? "true" : "false");
        break;
    case LOG_FIELD_F64:
        /* JSON has no NaN or infinities */
        if (isfinite(f->f))
            snprintf(num, sizeof num, "%.15g", f->f);
        else
            snprintf(num, sizeof num, "%s", json ? "null" : isnan(f->f) ? "NaN" : "Inf");
        break;
    default:
        snprintf(num, sizeof num, "%s", json ? "null" : "?");
        break;
    }
    line_puts(l, num);
    if (l->full) l->len = mark;
}

static void line_put_timestamp(LogLine *l) {
    struct timespec ts;
    struct tm tm;
    char stamp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000L);
    line_puts(l, stamp);
}

void log_configure(FILE *out, LogFormat format, LogLevel min_level) {
    pthread_mutex_lock(&log_mutex);
    log_out = out;
    log_format = format;
    log_min_level = min_level;
    pthread_mutex_unlock(&log_mutex);
}

int log_enabled(LogLevel level) {
    pthread_mutex_lock(&log_mutex);
    int enabled = level >= log_min_level;
    pthread_mutex_unlock(&log_mutex);
    return enabled;
}

void log_emit(LogLevel level, const char *msg, ...) {
    if ((int)level < LOG_DEBUG || level > LOG_ERROR) level = LOG_ERROR;
    pthread_mutex_lock(&log_mutex);
    LogFormat format = log_format;
    int enabled = level >= log_min_level;
    pthread_mutex_unlock(&log_mutex);
    if (!enabled) return;

    LogLine *l = malloc(sizeof *l);
    if (!l) return;
    l->len = 0;
    l->full = 0;
    int json = format == LOG_FORMAT_JSON;
    if (json) {
        line_puts(l, "{\"ts\":\"");
        line_put_timestamp(l);
        line_puts(l, "\",\"level\":\"");
        line_puts(l, level_names[level]);
        line_puts(l, "\",\"msg\":");
        line_put_string_value(l, msg ? msg : "", 1);
    } else {
        line_put_timestamp(l);
        line_puts(l, " ");
        line_puts(l, level_names_upper[level]);
        line_puts(l, " ");
        line_put_escaped(l, msg ? msg : "", 0);
    }
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        LogField f = va_arg(ap, LogField);
        if (!f.key) break;
        line_put_field(l, &f, json);
    }
    va_end(ap);
    if (json) l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';

    pthread_mutex_lock(&log_mutex);
    FILE *out = log_out ? log_out : stderr;
    fwrite(l->buf, 1, l->len, out);
    fflush(out);
    pthread_mutex_unlock(&log_mutex);
    free(l);
}

int log_level_parse(const char *name, LogLevel *out) {
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++) {
        if (!strcmp(name, level_names[i])) {
            *out = (LogLevel)i;
            return 0;
        }
    }
    return -1;
}

int log_format_parse(const char *name, LogFormat *out) {
    if (!strcmp(name, "json"))
        *out = LOG_FORMAT_JSON;
    else if (!strcmp(name, "text"))
        *out = LOG_FORMAT_TEXT;
    else
        return -1;
    return 0;
}

const char *log_level_name(LogLevel level) {
    if ((int)level < LOG_DEBUG || level > LOG_ERROR) return "?";
    return level_names[level];
}
