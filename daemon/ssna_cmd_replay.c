/* ssna replay - publish a dataset to Kafka as a live stream: Item messages (keyed by item id) and
 * Interaction messages (keyed by user id), users interleaved, each user's order kept, event times
 * strictly increasing, at a bounded rate, with progress on stderr. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include "daemon/signals.h"
#include "daemon/ssna_cmd.h"
#include "ingest/codec.h"
#include "ingest/kafka.h"
#include "ingest/replay_source.h"
#include "model/clock.h"

#define MAX_SETTINGS 32

enum { ITEMS_FIRST, ITEMS_JUST_IN_TIME, ITEMS_NONE };

typedef struct {
    const char *data, *brokers, *events_topic, *items_topic;
    double rate;        // events per second; 0 = as fast as the producer takes them
    int items;          // ITEMS_FIRST, ITEMS_JUST_IN_TIME or ITEMS_NONE
    long long skip;     // events of the interleaving left out at its start (an earlier replay's)
    long long limit;    // at most this many events; < 0 = all
    uint64_t seed;      // interleaving
    long long start_ms; // event time of the first event; < 0 = now
    int quiet;
    KafkaSetting settings[MAX_SETTINGS];
    size_t n_settings;
} ReplayOptions;

static void usage(FILE *out) {
    fprintf(out,
            "usage: ssna replay --data DIR --brokers HOST:PORT [options]\n\n"
            "Publish a UniSRec-format dataset (Scientific or Games folder) to Kafka as a live\n"
            "stream: Item messages keyed by item id, Interaction messages keyed by user id,\n"
            "users interleaved at random (--seed), each user's order kept, event_time_ms\n"
            "strictly increasing.\n\n"
            "options:\n"
            "  --data DIR              dataset folder (NAME.test.inter, NAME.text or NAME.item)\n"
            "  --brokers HOST:PORT     Kafka bootstrap servers\n"
            "  --rate N                events per second (default 0 = unlimited)\n"
            "  --items first|just-in-time|none\n"
            "                          all items before the first event (default), each\n"
            "                          item right before the first event that uses it, or\n"
            "                          no items (another replay publishes them)\n"
            "  --skip N                leave out the first N events of the interleaving (to\n"
            "                          continue an earlier replay of the same --seed)\n"
            "  --limit N               publish at most N events (after --skip)\n"
            "  --seed N                interleaving seed (default 1)\n"
            "  --start-time-ms T       event time of the first event (default: now)\n"
            "  --events-topic NAME     default events\n"
            "  --items-topic NAME      default items\n"
            "  --set kafka.KEY=VALUE   librdkafka property, e.g. --set kafka.linger.ms=20\n"
            "  --quiet                 no progress lines\n");
}

static int parse_args(int argc, char **argv, ReplayOptions *o) {
    enum { OPT_EVENTS = 256, OPT_ITEMS_TOPIC, OPT_START, OPT_SET };
    static const struct option longopts[] = {
        {"data", required_argument, 0, 'd'},
        {"brokers", required_argument, 0, 'b'},
        {"rate", required_argument, 0, 'r'},
        {"items", required_argument, 0, 'i'},
        {"limit", required_argument, 0, 'l'},
        {"skip", required_argument, 0, 'k'},
        {"seed", required_argument, 0, 's'},
        {"start-time-ms", required_argument, 0, OPT_START},
        {"events-topic", required_argument, 0, OPT_EVENTS},
        {"items-topic", required_argument, 0, OPT_ITEMS_TOPIC},
        {"set", required_argument, 0, OPT_SET},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    *o = (ReplayOptions){.events_topic = "events",
                         .items_topic = "items",
                         .items = ITEMS_FIRST,
                         .limit = -1,
                         .seed = 1,
                         .start_ms = -1};
    long n;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->data = optarg;
            break;
        case 'b':
            o->brokers = optarg;
            break;
        case 'r':
            if (ssna_opt_double("replay", "--rate", optarg, 0, 1e9, &o->rate)) return 2;
            break;
        case 'i':
            if (!strcmp(optarg, "first")) {
                o->items = ITEMS_FIRST;
            } else if (!strcmp(optarg, "just-in-time")) {
                o->items = ITEMS_JUST_IN_TIME;
            } else if (!strcmp(optarg, "none")) {
                o->items = ITEMS_NONE;
            } else {
                fprintf(stderr,
                        "ssna replay: --items: 'first', 'just-in-time' or 'none', not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'k':
            if (ssna_opt_long("replay", "--skip", optarg, 0, LONG_MAX, &n)) return 2;
            o->skip = (long long)n;
            break;
        case 'l':
            if (ssna_opt_long("replay", "--limit", optarg, 0, LONG_MAX, &n)) return 2;
            o->limit = (long long)n;
            break;
        case 's':
            if (ssna_opt_long("replay", "--seed", optarg, 0, LONG_MAX, &n)) return 2;
            o->seed = (uint64_t)n;
            break;
        case OPT_START:
            if (ssna_opt_long("replay", "--start-time-ms", optarg, 0, LONG_MAX, &n)) return 2;
            o->start_ms = (long long)n;
            break;
        case OPT_EVENTS:
            o->events_topic = optarg;
            break;
        case OPT_ITEMS_TOPIC:
            o->items_topic = optarg;
            break;
        case OPT_SET: {
            char *eq = strchr(optarg, '=');
            if (!eq || strncmp(optarg, "kafka.", 6) || o->n_settings == MAX_SETTINGS) {
                fprintf(stderr, "ssna replay: --set wants kafka.KEY=VALUE (at most %d), not '%s'\n",
                        MAX_SETTINGS, optarg);
                return 2;
            }
            *eq = 0; // argv is ours to split
            o->settings[o->n_settings++] = (KafkaSetting){optarg, eq + 1};
            break;
        }
        case 'q':
            o->quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || !o->data || !o->brokers) {
        if (optind < argc) fprintf(stderr, "ssna replay: unexpected argument '%s'\n", argv[optind]);
        if (!o->data || !o->brokers)
            fprintf(stderr, "ssna replay: --data and --brokers are needed\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

static int publish_item(KafkaProducer *p, const ReplayOptions *o, const ReplaySource *src,
                        uint32_t item, long long time_ms, char *err, size_t errlen) {
    Ssna__Item msg = SSNA__ITEM__INIT;
    msg.item_id = src->seqs.item_ids[item];
    // Games ships titles; Scientific's text is title + categories + brand already joined
    if (src->texts_are_titles)
        msg.title = src->item_texts[item];
    else
        msg.text = src->item_texts[item];
    msg.event_time_ms = time_ms;
    uint8_t *buf;
    size_t len;
    if (codec_item_encode(&msg, NULL, &buf, &len, err, errlen)) return -1;
    return kafka_producer_send_owned(p, o->items_topic, msg.item_id, strlen(msg.item_id), buf, len,
                                     err, errlen);
}

static int publish_event(KafkaProducer *p, const ReplayOptions *o, const ReplaySource *src,
                         const ReplayEvent *e, long long time_ms, char *err, size_t errlen) {
    char event_id[320];
    Ssna__Interaction msg = SSNA__INTERACTION__INIT;
    msg.user_id = src->seqs.user_ids[e->user];
    msg.item_id = src->seqs.item_ids[e->item];
    msg.event_time_ms = time_ms;
    msg.kind = SSNA__INTERACTION__KIND__PURCHASE; // an Amazon review follows a purchase
    // stable across replays of the same data: a consumer can drop a re-sent event
    snprintf(event_id, sizeof event_id, "%s:%u", msg.user_id, (unsigned)e->pos);
    msg.event_id = event_id;
    uint8_t *buf;
    size_t len;
    if (codec_interaction_encode(&msg, NULL, &buf, &len, err, errlen)) return -1;
    return kafka_producer_send_owned(p, o->events_topic, msg.user_id, strlen(msg.user_id), buf, len,
                                     err, errlen);
}

/* The stream itself; returns the process exit code. */
static int replay(const ReplayOptions *o, const ReplaySource *src, const ReplayEvent *events,
                  size_t n_events, KafkaProducer *p) {
    char err[512];
    int n_items = src->seqs.n_items;
    unsigned char *published = calloc((size_t)(n_items ? n_items : 1), 1);
    if (!published) return fprintf(stderr, "ssna replay: out of memory\n"), 1;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    long long t0 =
        o->start_ms >= 0 ? o->start_ms : (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    // event times advance by the offered inter-arrival time, at least 1 ms so they stay distinct
    long long step_ms = o->rate > 0 && o->rate < 1000 ? (long long)(1000 / o->rate) : 1;
    size_t items_sent = 0, events_sent = 0;
    int rc = 0;
    double start = clock_monotonic_s(), last_report = start; // items first count in the time taken
    if (o->items == ITEMS_FIRST) {
        for (int i = 0; i < n_items && !signals_stop_requested(); i++) {
            if (publish_item(p, o, src, (uint32_t)i, t0, err, sizeof err)) goto failed;
            published[i] = 1;
            items_sent++;
        }
    }
    double events_start = clock_monotonic_s();
    for (size_t k = 0; k < n_events && !signals_stop_requested(); k++) {
        if (o->rate > 0) { // pace against the schedule, not the previous send: no drift
            double due = events_start + (double)k / o->rate, wait = due - clock_monotonic_s();
            if (wait > 0) {
                kafka_producer_poll(p, 0);
                struct timespec ts = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        long long t = t0 + (long long)k * step_ms;
        const ReplayEvent *e = &events[k];
        if (o->items == ITEMS_JUST_IN_TIME && !published[e->item]) {
            if (publish_item(p, o, src, e->item, t, err, sizeof err)) goto failed;
            published[e->item] = 1;
            items_sent++;
        }
        if (publish_event(p, o, src, e, t, err, sizeof err)) goto failed;
        events_sent++;
        double now = clock_monotonic_s();
        if (!o->quiet && now - last_report >= 1.0) {
            fprintf(stderr, "replay: %zu/%zu events, %zu items, %.0f events/s\n", events_sent,
                    n_events, items_sent, events_sent / (now - events_start));
            last_report = now;
        }
    }
    goto flush;
failed:
    fprintf(stderr, "ssna replay: %s\n", err);
    rc = 1;
flush:
    free(published);
    if (kafka_producer_flush(p, 60000, err, sizeof err)) {
        fprintf(stderr, "ssna replay: %s\n", err);
        rc = 1;
    }
    double took = clock_monotonic_s() - start;
    KafkaProducerStats st;
    kafka_producer_stats(p, &st);
    fprintf(stderr,
            "replay: %s: published %zu items and %zu events in %.2f s (%.0f events/s); "
            "delivered %llu, failed %llu%s\n",
            src->name, items_sent, events_sent, took, took > 0 ? events_sent / took : 0.0,
            (unsigned long long)st.delivered, (unsigned long long)st.failed,
            signals_stop_requested() ? " (interrupted)" : "");
    return rc;
}

int ssna_cmd_replay(int argc, char **argv) {
    ReplayOptions o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc == 1 ? 0 : rc;
    char err[512];
    ReplaySource src;
    if (replay_source_load(o.data, &src, err, sizeof err)) {
        fprintf(stderr, "ssna replay: %s\n", err);
        return 1;
    }
    ReplayEvent *events = NULL;
    if (replay_source_interleave(&src, o.seed, &events, err, sizeof err)) {
        fprintf(stderr, "ssna replay: %s\n", err);
        replay_source_free(&src);
        return 1;
    }
    size_t total = (size_t)interactions_count(&src.seqs), skip = (size_t)o.skip, n;
    if (skip > total) skip = total;
    n = total - skip;
    if (o.limit >= 0 && (size_t)o.limit < n) n = (size_t)o.limit;
    KafkaProducer *p = NULL;
    // a broker slower than the replay fills the local queue: wait for it rather than abort
    KafkaProducerOptions po = {.brokers = o.brokers,
                               .settings = o.settings,
                               .n_settings = o.n_settings,
                               .wait_when_full = 1,
                               .stop = signals_stop_flag()};
    rc = 1;
    if (kafka_producer_open(&po, &p, err, sizeof err)) {
        fprintf(stderr, "ssna replay: %s\n", err);
    } else {
        signals_install_stop(0, err, sizeof err);
        if (!o.quiet)
            fprintf(stderr,
                    "replay: %s: %d users, %d items, %zu of %ld events (from event %zu) to %s\n",
                    src.name, src.seqs.n_users, src.seqs.n_items, n, interactions_count(&src.seqs),
                    skip, o.brokers);
        rc = replay(&o, &src, events + skip, n, p);
        kafka_producer_close(p, 10000);
    }
    free(events);
    replay_source_free(&src);
    return rc;
}
