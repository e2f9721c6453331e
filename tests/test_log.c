/* test_log.c - daemon/log: every JSON record parses with the strict reader of model/json and
 * gives back the values logged (escapes, invalid UTF-8, non-finite numbers, truncation), the
 * text form, level filtering, and whole lines under concurrent logging. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "daemon/log.h"
#include "model/json.h"

static char *captured;
static size_t captured_len;
static FILE *capture;

static void capture_start(LogFormat format, LogLevel level) {
    captured = NULL;
    captured_len = 0;
    capture = open_memstream(&captured, &captured_len);
    log_configure(capture, format, level);
}

static void capture_stop(void) {
    log_configure(stderr, LOG_FORMAT_TEXT, LOG_INFO);
    fclose(capture);
}

/* Parse line i (0-based) of the captured text as JSON. */
static int parse_line(int i, JsonValue *v) {
    char *line = captured;
    for (int k = 0; k < i && line; k++) {
        line = strchr(line, '\n');
        if (line) line++;
    }
    if (!line || !*line) return -1;
    char *nl = strchr(line, '\n');
    char err[256];
    int rc = json_parse(v, line, nl ? (size_t)(nl - line) : strlen(line), err, sizeof err);
    if (rc < 0) fprintf(stderr, "line %d: %s\n", i, err);
    return rc;
}

static void test_json(void) {
    capture_start(LOG_FORMAT_JSON, LOG_INFO);
    log_debug("hidden", LOG_INT("x", 1));
    log_info("checkpoint committed", LOG_INT("events", 120000), LOG_F64("seconds", 0.5),
             LOG_BOOL("final", 1), LOG_STR("path", "/var/lib/\"ssna\"\n\\db\x01"),
             LOG_STR("bad", "caf\xc3\xa9 \xff\xc3 \xed\xa0\x80"), LOG_F64("nan", NAN),
             LOG_STR("none", NULL));
    log_warn("no fields");
    log_error("neg", LOG_INT("n", -5));
    capture_stop();
    CHECK(strstr(captured, "hidden") == NULL);
    JsonValue v;
    CHECK(parse_line(0, &v) == 0);
    CHECK(!strcmp(json_get_string(&v, "level", ""), "info"));
    CHECK(!strcmp(json_get_string(&v, "msg", ""), "checkpoint committed"));
    CHECK(json_get_number(&v, "events", 0) == 120000);
    CHECK(json_get_number(&v, "seconds", 0) == 0.5);
    CHECK(json_get_bool(&v, "final", 0) == 1);
    CHECK(!strcmp(json_get_string(&v, "path", ""), "/var/lib/\"ssna\"\n\\db\x01"));
    /* invalid sequences (lone 0xff, truncated 0xc3, a UTF-16 surrogate) become U+FFFD */
    CHECK(!strcmp(json_get_string(&v, "bad", ""),
                  "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"));
    CHECK(json_get(&v, "nan") && json_get(&v, "nan")->type == JSON_VALUE_NULL);
    CHECK(json_get(&v, "none") && json_get(&v, "none")->type == JSON_VALUE_NULL);
    const char *ts = json_get_string(&v, "ts", "");
    CHECK_MSG(strlen(ts) == 24 && ts[4] == '-' && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z',
              "timestamp '%s'", ts);
    json_free(&v);
    CHECK(parse_line(1, &v) == 0);
    CHECK(!strcmp(json_get_string(&v, "level", ""), "warn") && v.len == 3);
    json_free(&v);
    CHECK(parse_line(2, &v) == 0);
    CHECK(json_get_number(&v, "n", 0) == -5);
    json_free(&v);
    CHECK(parse_line(3, &v) == -1); /* exactly three records */
    free(captured);
}

static void test_truncation(void) {
    size_t big = 20000;
    char *value = malloc(big + 1);
    memset(value, 'x', big);
    value[big] = 0;
    value[100] = '"'; /* an escape inside the part that survives */
    capture_start(LOG_FORMAT_JSON, LOG_DEBUG);
    log_info("huge", LOG_STR("first", "kept"), LOG_STR("value", value), LOG_INT("after", 1));
    log_info("huge key", LOG_STR(value, "v"), LOG_INT("small", 2));
    capture_stop();
    JsonValue v;
    CHECK(parse_line(0, &v) == 0);
    const char *got = json_get_string(&v, "value", "");
    size_t len = strlen(got);
    CHECK(len > 7000 && len < 8192 && !strcmp(got + len - 3, "..."));
    CHECK(!strcmp(json_get_string(&v, "first", ""), "kept"));
    CHECK(json_get(&v, "after") == NULL); /* no room left: dropped whole */
    json_free(&v);
    CHECK(parse_line(1, &v) == 0); /* a field whose key does not fit is dropped */
    CHECK(!strcmp(json_get_string(&v, "msg", ""), "huge key"));
    json_free(&v);
    CHECK(strlen(captured) < 2 * 8192);
    free(captured);
    free(value);
}

static void test_text(void) {
    capture_start(LOG_FORMAT_TEXT, LOG_DEBUG);
    log_debug("consumer assigned", LOG_STR("topic", "events"), LOG_INT("partition", 3),
              LOG_STR("note", "two words"), LOG_STR("empty", ""), LOG_STR("eq", "a=b"),
              LOG_F64("lag", 1.5));
    capture_stop();
    char *space = strchr(captured, ' ');
    CHECK(space && space - captured == 24);
    CHECK(space && !strcmp(space, " DEBUG consumer assigned topic=events partition=3 "
                                  "note=\"two words\" empty=\"\" eq=\"a=b\" lag=1.5\n"));
    free(captured);
}

static void *log_many(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < 2000; i++)
        log_info("tick", LOG_INT("thread", id), LOG_INT("i", i),
                 LOG_STR("pad", "some text to make lines long enough to interleave if unlocked"));
    return NULL;
}

static void test_threads(void) {
    capture_start(LOG_FORMAT_JSON, LOG_INFO);
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, log_many, (void *)i);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    capture_stop();
    int lines = 0, bad = 0;
    long sum_i = 0;
    for (char *line = strtok(captured, "\n"); line; line = strtok(NULL, "\n")) {
        JsonValue v;
        char err[128];
        if (json_parse(&v, line, strlen(line), err, sizeof err) < 0) {
            bad++;
            continue;
        }
        sum_i += (long)json_get_number(&v, "i", -1e9);
        json_free(&v);
        lines++;
    }
    CHECK(bad == 0 && lines == 8000);
    CHECK(sum_i == 4L * 1999 * 2000 / 2);
    free(captured);
}

static void test_parsers(void) {
    LogLevel level;
    LogFormat format;
    CHECK(log_level_parse("warn", &level) == 0 && level == LOG_WARN);
    CHECK(log_level_parse("WARN", &level) == -1);
    CHECK(log_format_parse("text", &format) == 0 && format == LOG_FORMAT_TEXT);
    CHECK(log_format_parse("xml", &format) == -1);
    CHECK(!strcmp(log_level_name(LOG_ERROR), "error"));
    log_configure(stderr, LOG_FORMAT_TEXT, LOG_WARN);
    CHECK(!log_enabled(LOG_INFO) && log_enabled(LOG_ERROR));
    log_configure(stderr, LOG_FORMAT_TEXT, LOG_INFO);
}

int main(void) {
    test_json();
    test_truncation();
    test_text();
    test_threads();
    test_parsers();
    return check_done();
}
