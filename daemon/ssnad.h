/* ssnad.h - the ssnad daemon loop: state, ingest, embedding worker, trainer, publisher.
 *
 * Threads (docs/ssnad.md has the whole picture):
 *   main     owns every mutation of stored state: polls Kafka, applies messages inside ONE
 *            long-lived LMDB write transaction, publishes recommendations, commits checkpoints;
 *   embed    runs the frozen encoder over queued item texts (bounded queue);
 *   train    trains each variant's training copy round-robin and hands refreshed parameters +
 *            item vectors to the main thread;
 *   publish  (publish.threads = 2) scores the second half of each batch of lists;
 *   http     libmicrohttpd's thread (daemon/http.c): /healthz, /metrics, /abtest, and /recommend
 *            under Ssnad.serve_mu.
 * Modules: ssnad_state.c (store, models, item-state matrix), ssnad_checkpoint.c (what a
 * checkpoint commits and a start restores, the dump), ssnad_map.c (user table, duplicate
 * window), ssnad_embed.c (embedding queue), ssnad_train.c (trainer, training feed),
 * ssnad_snapshot.c (model snapshots), ssnad_warm.c (init=PATH), ssnad_ingest.c, ssnad_publish.c
 * (lists, refills, /recommend), ssnad_loop.c (the loop, metrics, hooks); abtest.c and abstats.c
 * (the live A/B and its statistics).
 */
#ifndef SSNA_DAEMON_SSNAD_H
#define SSNA_DAEMON_SSNAD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/abtest.h"
#include "daemon/config.h"
#include "daemon/http.h"
#include "daemon/metrics.h"
#include "daemon/popwindow.h"
#include "ingest/kafka.h"
#include "model/clock.h"
#include "model/encoder.h"
#include "model/panel.h"
#include "model/ssna.h"
#include "store/store.h"

#define SSNAD_DEDUP_WINDOW 16384 // recent event ids remembered for duplicate detection
#define SSNAD_MAX_PARTS    256   // assigned partitions tracked at once
#define SSNAD_EXIT_RESTART 3     // state no longer matches the store: restart from checkpoint
#define SSNAD_EXIT_RELOAD  4     // partitions lost: ssnad_main re-executes itself in place
#define SSNAD_EXIT_STUCK   5     // the shutdown outlasted stop.timeout_seconds (signals.h)
#define SSNAD_SEQ_MAX      STORE_USER_SEQ_MAX

/* ---- user table (ssnad_map.c): the users the loop holds in memory ---- */
typedef struct {
    char *id;
    int variant;                 // A/B arm (Ssnad.arm_var maps it to a model arm)
    int dirty;                   // sequence changed since the last published list
    int recent;                  // used since the eviction clock last passed (second chance)
    uint32_t seq[SSNAD_SEQ_MAX]; // latest sequence (dense item indexes, oldest first)
    int seq_len;
    int loaded;         // seq holds the stored sequence (read once from the store)
    int refill;         // the next list re-answers the same event (more items are recommendable)
    int32_t *last_list; // [top_k] dense indexes of the last published list (-1 padded)
    int last_len;
    uint32_t last_catalogue; // items recommendable (Ssnad.n_present) when it was computed
    // the event the next list answers (always of topics.events)
    int32_t src_partition;
    int64_t src_offset, src_event_ms;
    double src_seen_s; // monotonic seconds when consumed (latency metric)
} SsnadUser;

/* Open addressing by user id. At most `max` users are kept (users.cache_max): adding one more
 * evicts a clean user (no list pending), least recently used first by a clock over the slots;
 * its sequence is in the store and is read again on its next event. Dirty users are never
 * evicted, so the table exceeds max while many users wait for a list, and shrinks back to it
 * as their lists go out. */
typedef struct {
    SsnadUser **slots;
    size_t cap, count, max, hand;
    size_t n_dirty; // users with dirty set (ssnad_users_set_dirty): these cannot go
    uint64_t evicted;
} SsnadUserMap;

typedef struct {
    SsnadUser **v;
    size_t n, cap;
} SsnadUserList;

/* Find a user, or NULL (an evicted user is not found). */
SsnadUser *ssnad_users_find(SsnadUserMap *m, const char *id);
/* Find (marking it recently used) or create (zeroed, id copied, evicting one clean user when
 * the table holds max or more; max 0 = no bound); NULL when out of memory. */
SsnadUser *ssnad_users_get(SsnadUserMap *m, const char *id);
void ssnad_users_free(SsnadUserMap *m);
/* Mark a user as waiting for a list (dirty) or not; the table counts them. */
void ssnad_users_set_dirty(SsnadUserMap *m, SsnadUser *u, int dirty);
/* Mark dirty (with refill set), and push to out, every clean user held whose last published
 * list was drawn from too small a catalogue: it had fewer than k items, or the catalogue has at
 * least doubled since (n_present items now; lists that went out while a catalogue was still being
 * encoded). Each user is refilled at most log2(catalogue) times. Returns how many, or -1 when out
 * of memory. */
long ssnad_users_mark_stale(SsnadUserMap *m, int k, size_t n_present, SsnadUserList *out);
/* Append u to a list; -1 when out of memory. */
int ssnad_userlist_push(SsnadUserList *l, SsnadUser *u);

/* Ring of the last SSNAD_DEDUP_WINDOW event-id hashes with a set over them. */
typedef struct {
    uint32_t next, count;                 // first: next, count and ring are the checkpoint blob
    uint64_t ring[SSNAD_DEDUP_WINDOW];    // oldest at next once full
    uint64_t set[SSNAD_DEDUP_WINDOW * 2]; // open addressing; 0 = empty (hash 0 is mapped to 1)
} SsnadDedup;

/* 1 when the hash was seen within the window, else remember it and return 0. */
int ssnad_dedup_check(SsnadDedup *d, uint64_t h);
/* Rebuild the set from a serialized ring (ssnad_dedup_blob's layout); -1 if malformed. */
int ssnad_dedup_load(SsnadDedup *d, const void *blob, size_t len);
/* The ring as a blob for the checkpoint (points into d). */
const void *ssnad_dedup_blob(const SsnadDedup *d, size_t *len);

/* ---- one A/B arm ---- */
typedef struct {
    ConfigVariant cv;
    SsnaModel serve;         // main thread (and /recommend under serve_mu)
    SsnaModel serve_aux;     // the same parameters, for the publish helper thread (own scratch)
    int serve_reserved;      // both serving copies' scratch grown to a full publish batch
    float *raw;              // [vec_cap, d] serving item vectors (the user tower's input)
    float *norm;             // [vec_cap, d] the same L2-normalised: what lists are scored on
    Panels bounds;           // norm in int8 panels (model/panel.h): which items to score at all
    size_t bounds_axis_rows; // rows whose mean gave the bounds' axis (panel_pack)
    size_t n_vec, vec_cap;
    float *states; // [item_cap, layers, hidden]; aliases Ssnad.states when layers == max
    // trainer side
    SsnaModel train;     // only the trainer thread touches it (ssnad_snapshot.c writes it out)
    int warm_unsaved;    // started from init= and not yet in a committed snapshot reference
    int64_t serve_steps; // train steps behind the serving parameters
    MetricCounter *m_steps, *m_published;
    MetricCounter *m_seq_fresh, *m_seq_replay; // sequences trained on, by source
    MetricHistogram *m_freshness;              // event applied -> trained on (fresh sequences)
    MetricCounter *m_bounded, *m_scored;       // items bounded / scored exactly for lists
    MetricGauge *m_loss;
} SsnadVariant;

/* An encoded item for ssnad_state_set_items. */
typedef struct {
    uint32_t index;
    const char *id;
    const float *states; // [layers, hidden]
} SsnadItemState;

typedef struct SsnadEmbedQueue SsnadEmbedQueue;
typedef struct SsnadScorer SsnadScorer;
typedef struct SsnadFeed SsnadFeed;
typedef struct SsnadSnapshots SsnadSnapshots;

typedef struct Ssnad {
    const DaemonConfig *cfg;
    Store *store;
    StoreTxn *txn;         // the open write transaction; committed at each checkpoint
    SsnadSnapshots *snaps; // model snapshots in <db.path>/models (ssnad_snapshot.c)
    Encoder *enc;
    char *identity;
    int hidden, layers, first_layer; // layers = max a over variants, top layer first

    // item states: [item_cap, layers, hidden]; rows appended by the main thread only
    float *states;
    unsigned char *present; // [item_cap] 1 when the item's states are known
    size_t n_present;       // items with present set: the catalogue lists are drawn from
    char **item_ids;        // [item_cap] external id of each dense index (under serve_mu)
    size_t n_items, item_cap;
    // generation of each row's states: state_gen when ssnad_state_set_items last wrote them (0:
    // since start). A trainer refresh made from a copy older than a row's generation carries
    // that row's old vector; the hand-over recomputes those rows (ssnad_state_refresh_stale)
    uint64_t *row_gen; // [item_cap]
    uint64_t state_gen;

    SsnadVariant var[CONFIG_VARIANTS_MAX]; // the model arms, in the order of `variants`
    int n_var;
    // the A/B arms (SsnadUser.variant and the AbTest index them): arm_var[a] is the arm's model
    // in var[], or -1 for the pop arm, whose window (daemon/popwindow.h) pop is (under serve_mu)
    int arm_var[CONFIG_VARIANTS_MAX], n_arms;
    PopWindow *pop;
    MetricCounter *m_pop_published;

    pthread_mutex_t serve_mu; // serving models/vectors, user table, item matrix growth
    SsnadUserMap users;
    SsnadUserList dirty;    // users whose sequence changed since their last list (main thread)
    SsnadUserList deferred; // dirty users waiting for queued item texts (cold start)
    // item rows given states (ssnad_state_set_items) / as of the last sweep for short lists
    uint64_t items_ready, items_ready_swept;
    SsnadScorer *scorer; // publish helper (ssnad_publish.c); NULL with publish.threads = 1
    SsnadDedup dedup;
    uint64_t events_applied; // stored counter "events_applied"

    // partitions assigned and their next offsets (main thread)
    KafkaPartition parts[SSNAD_MAX_PARTS];
    char part_topics[SSNAD_MAX_PARTS][STORE_TOPIC_MAX + 1];
    size_t n_parts;

    KafkaConsumer *consumer;       // events: the deployment's group splits users between members
    KafkaConsumer *items_consumer; // items: a group of this member alone, so it reads them all
    KafkaProducer *producer;
    AbTest *ab;
    MetricsRegistry *reg;
    HttpServer *http;

    SsnadEmbedQueue *embed;        // the embedding worker and its queue (ssnad_embed.c)
    uint64_t collected_since_ckpt; // item states stored in the open transaction

    // the trainer's hand-over lock: the training feed and refreshes (ssnad_train.c) and the model
    // snapshots' states (ssnad_snapshot.c)
    pthread_mutex_t feed_mu;
    pthread_cond_t feed_cv;
    SsnadFeed *feed; // the training feed and thread (ssnad_train.c); NULL when not started

    // checkpointing
    uint64_t since_checkpoint;
    int warm_unsaved; // arms started from init= that no committed checkpoint references yet
    double last_checkpoint_s;
    int fatal; // set when the loop must stop (lost partitions, failed commit)
    int exit_code;

    MetricCounter *m_events_applied, *m_events_dup, *m_events_rejected;
    MetricCounter *m_items_new, *m_items_changed, *m_items_unchanged, *m_items_rejected;
    MetricCounter *m_checkpoints;
    MetricGauge *m_queue, *m_ckpt_age, *m_lag, *m_eps;
    MetricHistogram *m_latency, *m_ckpt_seconds;
    MetricHistogram *m_apply_lag; // an event's Kafka timestamp -> applied
    MetricGauge *m_apply_lag_max, *m_users_cached, *m_users_pending;
    MetricCounter *m_users_evicted, *m_lists_refilled;
    MetricGauge *m_heap; // glibc's heap in use (mallinfo2), refreshed once a second
    MetricCounter *m_offered, *m_fresh_dropped; // sequences offered to / dropped by the trainer
    double heap_since;
    uint64_t users_evicted_seen; // users.evicted already added to m_users_evicted
    double apply_lag_max;
    uint64_t eps_count;
    double eps_since;
} Ssnad;

/* ---- ssnad_state.c ---- */
/* Open the store, the encoder, the models (from their checkpoints or fresh) and the item-state
 * matrices; begin the long-lived transaction. 0 or -1 with err. */
int ssnad_state_open(Ssnad *d, const DaemonConfig *cfg, char *err, size_t errlen);
/* A serving set without store, encoder or Kafka, for tests and benches: d (zeroed) serves one
 * model variant (cfg, parameters from seed; training copy and both serving copies alike) over
 * item states [n_items, cfg->layers, cfg->hidden] (copied; present NULL = every item has its
 * states, else present[i] = 0 for a placeholder row): item matrices, serving vectors and their
 * int8 bounds as ssnad_state_open leaves them. 0 or -1 with err; ssnad_state_close frees it. */
int ssnad_state_open_serving(Ssnad *d, const SsnaConfig *cfg, uint64_t seed, const float *states,
                             const unsigned char *present, size_t n_items, char *err,
                             size_t errlen);
/* Abort the open transaction (if any) and free everything state_open (or open_serving) made. */
void ssnad_state_close(Ssnad *d);
/* Append (or replace) items' states at their dense indexes: grows the matrices, marks them
 * present, updates every variant's serving vectors (one item-tower pass per variant for all of
 * them). Main thread. 0 or -1. */
int ssnad_state_set_items(Ssnad *d, const SsnadItemState *items, size_t n, char *err,
                          size_t errlen);
/* Recompute variant v's serving vectors, with its serving parameters, of the rows a refresh made
 * from the trainer's copy of rows [0, n) as of state generation gen does not hold right: rows
 * below n whose states were written after gen, and rows [n, n_items). Caller holds serve_mu. */
int ssnad_state_refresh_stale(Ssnad *d, int v, size_t n, uint64_t gen, char *err, size_t errlen);
/* Make the catalogue index idx (of item id) exist in memory (a placeholder row until its
 * states arrive). */
int ssnad_state_ensure_item(Ssnad *d, uint32_t idx, const char *id, char *err, size_t errlen);

/* ---- ssnad_checkpoint.c: what a checkpoint commits and a start restores ---- */
/* Restore what the committed checkpoint holds besides items and models: the events counter, the
 * duplicate and pop windows, and the users whose lists were pending (marked dirty again).
 * ssnad_state_open calls it. 0 or -1 with err (naming the malformed blob). */
int ssnad_checkpoint_restore(Ssnad *d, char *err, size_t errlen);
/* Commit the checkpoint: store the finished embeddings, write model blobs, counters, dedup
 * window and the offsets of assigned partitions, commit (sync) and begin the next transaction.
 * It never waits for the encoder: an items partition's offset is held back to its first Item
 * message whose text is still queued, so a restart reads those again. On failure the loop must
 * stop (d->fatal). 0 or -1 with err. */
int ssnad_checkpoint(Ssnad *d, const char *why, char *err, size_t errlen);
/* Walk a pending-lists checkpoint blob (u32 length + id bytes per user), calling fn for each
 * user id (a non-zero return stops the walk and is returned). 0, or -1 with err (the byte where
 * the blob is malformed). */
int ssnad_pending_parse(const void *blob, size_t len, int (*fn)(void *ctx, const char *id),
                        void *ctx, char *err, size_t errlen);
/* Print the committed state for comparing two stores: counters, offsets, the item cache sorted
 * by item id (text hash, states digest) and, for each user id read from users_in (one per line;
 * may be NULL), the stored sequence as item ids. 0 or -1 with err. */
int ssnad_dump_state(const char *db_path, FILE *users_in, FILE *out, char *err, size_t errlen);

/* ---- ssnad_snapshot.c: model snapshots in <db.path>/models, referenced by checkpoints ---- */
/* Open the models environment and the snapshots' states (Ssnad.snaps, private to the module);
 * every variant starts by wanting a snapshot. 0 or -1 with err. */
int ssnad_snapshot_open(Ssnad *d, char *err, size_t errlen);
/* Close the models environment and free the states (a no-op when not open). */
void ssnad_snapshot_close(Ssnad *d);
enum { SSNAD_SNAPSHOT_SLOT = 1, SSNAD_SNAPSHOT_LEGACY = 2 };
/* Restore variant vi (both copies) from the snapshot the committed checkpoint names
 * (*found = SSNAD_SNAPSHOT_SLOT) or, in a store from before snapshots, from its model:<label>
 * checkpoint (SSNAD_SNAPSHOT_LEGACY). An arm that names its width (label "...:d=N") without a
 * model of its own goes on with the one saved under its label without ":d=N" when that has its
 * shape (SSNAD_SNAPSHOT_LEGACY: its first snapshot is its own). *found = 0: nothing stored.
 * 0 or -1 with err (a model of another shape under the arm's own label is refused, saying how
 * to keep it). */
int ssnad_snapshot_load(Ssnad *d, int vi, int *found, char *err, size_t errlen);
/* Trainer: 1 when some variant wants a snapshot (caller holds feed_mu). */
int ssnad_snapshot_wanted(Ssnad *d);
/* Trainer, between steps, without feed_mu: write and sync every wanted snapshot. */
void ssnad_snapshot_service(Ssnad *d);
/* Main thread, trainer stopped: write every variant's snapshot now (a clean stop keeps all the
 * training done). 0 or -1 with err. */
int ssnad_snapshot_now(Ssnad *d, char *err, size_t errlen);
/* Main thread, in a checkpoint: reference every ready snapshot in the open transaction. */
int ssnad_snapshot_put_refs(Ssnad *d, char *err, size_t errlen);
/* Main thread, after the checkpoint committed: its references are current; ask for the next. */
void ssnad_snapshot_committed(Ssnad *d);

/* ---- ssnad_warm.c: an arm started from an `ssna train` checkpoint (init=PATH) ---- */
/* Copy the checkpoint v->cv.init (best weights) into both of v's models after checking that it
 * fits the arm: encoder identity, pooling, variant and shapes. 0, or -1 with err. */
int ssnad_warm_start(Ssnad *d, SsnadVariant *v, char *err, size_t errlen);

/* ---- ssnad_embed.c: the embedding queue (Ssnad.embed, private to it) and its thread ---- */
/* Make the queue (embed.queue_max texts) and start the encoder thread. 0 or -1 with err. */
int ssnad_embed_start(Ssnad *d, char *err, size_t errlen);
/* Stop the thread, free the queue and any texts left in it (also after a failed start; a no-op
 * when never started). Until started, and after, the queue reads as empty with no room. */
void ssnad_embed_stop(Ssnad *d);
/* Queue the text of the Item message at (partition, offset) of the items topic (copies it);
 * blocks while the queue is full (the loop checks ssnad_embed_room first). 0 or -1. */
int ssnad_embed_submit(Ssnad *d, const char *id, const char *text, size_t len, uint64_t hash,
                       uint32_t index, int32_t partition, int64_t offset, char *err, size_t errlen);
/* Store finished items (in the open txn) and make them recommendable. 0, or -1 with err (a
 * store error, or results lost for want of memory: the daemon restarts from its checkpoint). */
int ssnad_embed_collect(Ssnad *d, char *err, size_t errlen);
/* Lower the offset of every items-topic partition in parts[0..n) to its first Item message
 * whose text is queued, being encoded or not yet collected. */
void ssnad_embed_hold_back(Ssnad *d, KafkaPartition *parts, size_t n);
size_t ssnad_embed_depth(Ssnad *d);
/* Free slots in the embedding queue (the main thread submits at most one text per message). */
size_t ssnad_embed_room(Ssnad *d);

/* ---- ssnad_train.c: the training feed (Ssnad.feed, private to it) and the trainer ---- */
/* Make the training feed and start the training thread, and wait until it has set up its
 * scheduling (train.sched) and cgroup (train.cgroup). 0, or -1 with err (a cgroup it could not
 * join, say; the feed is gone again). */
int ssnad_train_start(Ssnad *d, char *err, size_t errlen);
/* Make the training feed without a thread: tests and benches post refreshes themselves
 * (ssnad_train_post_refresh). 0 or -1 with err. */
int ssnad_train_open(Ssnad *d, char *err, size_t errlen);
/* Stop the thread (if any) and free the feed with any refresh not taken. A no-op when neither
 * started nor opened; every other ssnad_train_* then does nothing. */
void ssnad_train_stop(Ssnad *d);
/* Hand variant vi's refreshed parameters and item vectors to the main thread: rows [0, n) of
 * buffers of cap rows, and their int8 panels, made with the parameters of Adam step `steps` from
 * item states as of generation gen (Ssnad.state_gen). The feed owns them from here (bounds is
 * emptied); an older refresh not yet taken is freed. */
void ssnad_train_post_refresh(Ssnad *d, int vi, float *params, float *raw, float *norm,
                              Panels *bounds, size_t n, size_t cap, int64_t steps, uint64_t gen);
/* Take the serving buffers vi's last hand-over replaced (the caller owns them; NULLs and empty
 * panels when none). Returns their rows (0 when none). */
size_t ssnad_train_take_spare(Ssnad *d, int vi, float **raw, float **norm, Panels *bounds);
/* Offer a user's changed sequence to the trainer (never blocks on training: staged while the
 * trainer holds feed_mu). */
void ssnad_train_offer(Ssnad *d, const uint32_t *seq, int len);
/* 1 (err set) when the trainer has stopped on an error it cannot get past (no memory for its
 * batch, a failed step or refresh): the models would silently stop learning, so the loop stops
 * the daemon. 0 while it trains (or holds feed_mu: asked again next turn). Main thread. */
int ssnad_train_failed(Ssnad *d, char *err, size_t errlen);
/* Hand staged offers to the trainer if feed_mu is free (main thread, once a turn). */
void ssnad_train_flush_offers(Ssnad *d);
/* Tell the trainer how many item rows exist; changed_row >= 0: that existing row got new states
 * (a placeholder's text arrived, or a text changed). Every row written up to state generation
 * gen has been told (a copy the trainer syncs after this holds them). */
void ssnad_train_set_items(Ssnad *d, size_t n_items, long changed_row, uint64_t gen);
/* Swap in the trainer's refreshed parameters and item vectors, and compute the vectors of rows
 * that arrived after its snapshot, in one hold of serve_mu (main thread). */
void ssnad_train_take_refresh(Ssnad *d);

/* ---- ssnad_ingest.c ---- */
/* Apply one consumed message (item, event, or bad input -> dead letter). 0, or -1 when the
 * loop cannot go on (err set). */
int ssnad_ingest_message(Ssnad *d, const KafkaMessage *msg, char *err, size_t errlen);
/* Make a user dirty (its list is published on the next turns), reading its stored sequence:
 * the users whose lists were pending at the last checkpoint, on start. 0 or -1 with err. */
int ssnad_ingest_mark_pending(Ssnad *d, const char *user_id, char *err, size_t errlen);
/* Kafka hooks (ctx = Ssnad). */
int ssnad_on_assign(void *ctx, KafkaPartition *parts, size_t n);
void ssnad_on_revoke(void *ctx, const KafkaPartition *parts, size_t n, int lost);

/* ---- ssnad_publish.c ---- */
/* Top-k of a sequence with the serving model of variant v, excluding the sequence's own items
 * and items without states. Fills ids/scores (k entries max); returns the count or -1. */
int ssnad_top_k(Ssnad *d, int v, const uint32_t *seq, int len, int k, int32_t *ids, float *scores,
                char *err, size_t errlen);
/* ssnad_top_k for B sequences at once: one user-tower pass and one scoring sgemm per block of
 * 4,096 items. Row r (seqs[r], lens[r]) gets counts[r] entries in ids/scores [B, k]. Caller holds
 * serve_mu. 0 or -1 with err. */
int ssnad_top_k_batch(Ssnad *d, int v, const uint32_t *const *seqs, const int *lens, int B, int k,
                      int32_t *ids, float *scores, int *counts, char *err, size_t errlen);
/* Start / stop the publish helper thread (when publish.threads is 2). 0 or -1 with err. */
int ssnad_publish_start(Ssnad *d, char *err, size_t errlen);
void ssnad_publish_stop(Ssnad *d);
/* Tests: a helper that is posted jobs but never gets a core to run them (no thread), so the
 * main thread must take each back; ssnad_publish_stop ends it. 0 or -1 with err. */
int ssnad_publish_start_stalled(Ssnad *d, char *err, size_t errlen);
/* 1 while a job posted to the helper is not finished (never so once a batch has returned). */
int ssnad_publish_helper_busy(Ssnad *d);
/* Publish fresh lists for dirty users, for up to budget_s seconds. 0 or -1. */
int ssnad_publish_dirty(Ssnad *d, double budget_s, char *err, size_t errlen);
/* /recommend callback (ctx = Ssnad). */
int ssnad_http_recommend(void *ctx, const char *user, char **body, size_t *body_len);

/* ---- ssnad_loop.c ---- */
/* The consumer group through which this member alone reads the items topic: items.group.id, or
 * for auto "<group.id>.items.<FNV-1a of host name and the store's real path, 16 hex>". */
void ssnad_items_group(const DaemonConfig *cfg, char *out, size_t outlen);
/* Run the daemon until SIGTERM/SIGINT or a fatal error; returns the process exit code. */
int ssnad_run(const DaemonConfig *cfg);

#endif
