/* ssnad_ingest.c - apply one consumed message to the open transaction, and the partition hooks.
 *
 * Item: its text (title, categories, brand, text joined by single spaces, as the Scientific
 * .text files are) goes to the catalogue at once; a new or changed text is queued for the
 * encoder. Interaction: appended to the user's stored sequence; an item whose Item message has
 * not arrived gets a catalogue placeholder (empty text, no states): it stays in the sequence and
 * is never recommended until its states arrive. Rejected input (undecodable, invalid, duplicate
 * event id within the window) is counted, logged and dead-lettered; its offset still advances. */
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "daemon/ssnad.h"
#include "ingest/codec.h"
#include "model/errmsg.h"

/* Remember (topic, partition) -> next offset for the next checkpoint. */
static void advance(Ssnad *d, const char *topic, int32_t partition, int64_t next) {
    for (size_t i = 0; i < d->n_parts; i++)
        if (d->parts[i].partition == partition && !strcmp(d->parts[i].topic, topic)) {
            d->parts[i].offset = next;
            return;
        }
    if (d->n_parts == SSNAD_MAX_PARTS) return; // beyond the table: resumes from the group
    snprintf(d->part_topics[d->n_parts], sizeof d->part_topics[0], "%s", topic);
    d->parts[d->n_parts] = (KafkaPartition){
        .topic = d->part_topics[d->n_parts], .partition = partition, .offset = next};
    d->n_parts++;
}

/* Count, log and dead-letter a rejected message. 0, or -1 (err set) when the DeadLetter cannot
 * even be queued: the message must then not be passed over (the loop restarts, reads it again). */
static int dead_letter(Ssnad *d, const KafkaMessage *msg, const char *reason, const char *detail,
                       char *err, size_t errlen) {
    const char *labels[] = {"reason", reason, NULL};
    char merr[256];
    metric_counter_inc(metrics_counter(d->reg, "ssnad_dead_letter_total",
                                       "messages sent to the dead-letter topic, by reason", labels,
                                       merr, sizeof merr));
    log_warn("input rejected", LOG_STR("reason", reason), LOG_STR("topic", msg->topic),
             LOG_INT("partition", msg->partition), LOG_INT("offset", msg->offset),
             LOG_STR("error", detail));
    char full[768];
    snprintf(full, sizeof full, "%s: %s", reason, detail);
    return kafka_dead_letter_publish(d->producer, d->cfg->topic_dead_letter, msg, full, err,
                                     errlen);
}

/* title, categories, brand, text joined by single spaces (empty parts skipped); malloc'd. */
static char *item_text(const Ssna__Item *it, size_t *len) {
    size_t n = strlen(it->title) + strlen(it->brand) + strlen(it->text) + 4;
    for (size_t i = 0; i < it->n_categories; i++) n += strlen(it->categories[i]) + 1;
    char *s = malloc(n), *p = s;
    if (!s) return NULL;
    const char *parts[3] = {it->title, it->brand, it->text};
    for (int k = 0; k < 3; k++) {
        if (k == 1) // categories come between title and brand
            for (size_t i = 0; i < it->n_categories; i++)
                if (it->categories[i][0])
                    p += sprintf(p, "%s%s", p == s ? "" : " ", it->categories[i]);
        if (parts[k][0]) p += sprintf(p, "%s%s", p == s ? "" : " ", parts[k]);
    }
    *p = 0;
    *len = (size_t)(p - s);
    return s;
}

static int apply_item(Ssnad *d, const KafkaMessage *msg, char *err, size_t errlen) {
    Ssna__Item *it = NULL;
    char derr[512];
    if (codec_item_decode(msg->payload, msg->payload_len, NULL, &it, derr, sizeof derr)) {
        metric_counter_inc(d->m_items_rejected);
        return dead_letter(d, msg, "malformed_item", derr, err, errlen);
    }
    size_t len = 0;
    char *text = item_text(it, &len);
    int rc = -1;
    if (!text) {
        snprintf(err, errlen, "item %s: out of memory", it->item_id);
        goto done;
    }
    uint64_t hash = store_text_hash(text, len);
    int same = store_item_text_unchanged(d->store, d->txn, it->item_id, hash, err, errlen);
    if (same < 0) goto done;
    if (same) {
        metric_counter_inc(d->m_items_unchanged);
        rc = 0;
        goto done;
    }
    int known = store_get_item(d->store, d->txn, it->item_id, NULL, NULL, 0, err, errlen);
    if (known < 0) goto done;
    uint32_t idx;
    if (store_catalogue_put(d->txn, it->item_id, text, len, &idx, err, errlen) ||
        ssnad_state_ensure_item(d, idx, it->item_id, err, errlen) ||
        ssnad_embed_submit(d, it->item_id, text, len, hash, idx, msg->partition, msg->offset, err,
                           errlen))
        goto done;
    metric_counter_inc(known == STORE_OK ? d->m_items_changed : d->m_items_new);
    rc = 0;
done:
    free(text);
    codec_item_free(it);
    return rc;
}

/* The user's entry with its stored sequence loaded. Caller holds serve_mu. */
static SsnadUser *user_entry(Ssnad *d, const char *user_id, char *err, size_t errlen) {
    SsnadUser *u = ssnad_users_get(&d->users, user_id);
    if (!u) {
        snprintf(err, errlen, "user %s: out of memory", user_id);
        return NULL;
    }
    if (!u->loaded) {
        size_t n = 0;
        if (store_get_user_seq(d->store, d->txn, user_id, u->seq, SSNAD_SEQ_MAX, &n, NULL, err,
                               errlen) < 0)
            return NULL;
        u->seq_len = (int)n;
        u->variant = abtest_assign(d->ab, user_id, strlen(user_id));
        u->loaded = 1;
    }
    return u;
}

int ssnad_ingest_mark_pending(Ssnad *d, const char *user_id, char *err, size_t errlen) {
    pthread_mutex_lock(&d->serve_mu);
    SsnadUser *u = user_entry(d, user_id, err, errlen);
    int rc = u ? 0 : -1;
    if (u && !u->dirty) {
        rc = ssnad_userlist_push(&d->dirty, u) ? errmsg_fail(err, errlen, "out of memory") : 0;
        if (!rc) ssnad_users_set_dirty(&d->users, u, 1);
        u->src_partition = -1, u->src_offset = -1; // the event it answers is behind the store
        u->src_seen_s = clock_monotonic_s();
    }
    pthread_mutex_unlock(&d->serve_mu);
    return rc;
}

static int apply_event(Ssnad *d, const KafkaMessage *msg, char *err, size_t errlen) {
    Ssna__Interaction *ev = NULL;
    char derr[512];
    if (codec_interaction_decode(msg->payload, msg->payload_len, NULL, &ev, derr, sizeof derr)) {
        metric_counter_inc(d->m_events_rejected);
        return dead_letter(d, msg, "malformed_event", derr, err, errlen);
    }
    int rc = -1;
    if (ev->event_id[0] &&
        ssnad_dedup_check(&d->dedup, abtest_hash(ev->event_id, strlen(ev->event_id), 0x5eed))) {
        metric_counter_inc(d->m_events_dup);
        snprintf(derr, sizeof derr, "event_id %s was seen within the last %d events", ev->event_id,
                 SSNAD_DEDUP_WINDOW);
        rc = dead_letter(d, msg, "duplicate_event", derr, err, errlen);
        goto done;
    }
    uint32_t idx;
    int found = store_catalogue_get(d->store, d->txn, ev->item_id, &idx, NULL, NULL, err, errlen);
    if (found < 0) goto done;
    if (found == STORE_NOTFOUND &&
        store_catalogue_put(d->txn, ev->item_id, "", 0, &idx, err, errlen))
        goto done;
    if (ssnad_state_ensure_item(d, idx, ev->item_id, err, errlen)) goto done;
    // the user's stored sequence is read (when not in memory) before this event is appended to
    // it: read after, the event would be in the in-memory sequence twice
    pthread_mutex_lock(&d->serve_mu);
    SsnadUser *u = user_entry(d, ev->user_id, err, errlen);
    pthread_mutex_unlock(&d->serve_mu);
    if (!u || store_append_user_event(d->txn, ev->user_id, idx, err, errlen)) goto done;

    pthread_mutex_lock(&d->serve_mu); // only this thread evicts users: u is still there
    if (u->last_len > 0) { // prequential: score the last list before learning from the event
        int64_t pub[1024];
        int n = u->last_len < 1024 ? u->last_len : 1024;
        for (int i = 0; i < n; i++) pub[i] = u->last_list[i];
        abtest_observe(d->ab, u->variant, ev->user_id, strlen(ev->user_id), pub, (size_t)n, idx);
    }
    if (u->seq_len == SSNAD_SEQ_MAX) {
        memmove(u->seq, u->seq + 1, (SSNAD_SEQ_MAX - 1) * sizeof *u->seq);
        u->seq_len--;
    }
    u->seq[u->seq_len++] = idx;
    if (popwindow_add(d->pop, idx)) {
        u = NULL, snprintf(err, errlen, "out of memory (pop window)");
    } else if (!u->dirty && ssnad_userlist_push(&d->dirty, u)) {
        u = NULL, snprintf(err, errlen, "out of memory");
    } else {
        ssnad_users_set_dirty(&d->users, u, 1);
        u->refill = 0; // the list answers this new event
        u->src_partition = msg->partition, u->src_offset = msg->offset;
        u->src_event_ms = ev->event_time_ms;
        u->src_seen_s = clock_monotonic_s();
    }
    pthread_mutex_unlock(&d->serve_mu);
    if (!u) goto done;
    ssnad_train_offer(d, u->seq, u->seq_len);
    d->events_applied++;
    d->eps_count++;
    metric_counter_inc(d->m_events_applied);
    if (msg->timestamp_ms > 0) { // a catalogue load must not hold events back: this shows it
        double lag = (double)(clock_wall_ms() - msg->timestamp_ms) * 1e-3;
        metric_histogram_observe(d->m_apply_lag, lag);
        if (lag > d->apply_lag_max) metric_gauge_set(d->m_apply_lag_max, d->apply_lag_max = lag);
    }
    rc = 0;
done:
    codec_interaction_free(ev);
    return rc;
}

int ssnad_ingest_message(Ssnad *d, const KafkaMessage *msg, char *err, size_t errlen) {
    int rc;
    if (!strcmp(msg->topic, d->cfg->topic_items))
        rc = apply_item(d, msg, err, errlen);
    else if (!strcmp(msg->topic, d->cfg->topic_events))
        rc = apply_event(d, msg, err, errlen);
    else
        rc = dead_letter(d, msg, "unknown_topic", msg->topic, err, errlen);
    if (rc) return -1;
    advance(d, msg->topic, msg->partition, msg->offset + 1);
    d->since_checkpoint++;
    return 0;
}

int ssnad_on_assign(void *ctx, KafkaPartition *parts, size_t n) {
    Ssnad *d = ctx;
    StoreOffset *offs = NULL;
    size_t n_offs = 0;
    char err[512];
    if (!d->txn || store_get_offsets(d->store, d->txn, &offs, &n_offs, err, sizeof err)) {
        log_error("assign: cannot read stored offsets", LOG_STR("error", d->txn ? err : "no txn"));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        // a partition this store never saw starts at the beginning: the state is built from it
        parts[i].offset = KAFKA_OFFSET_BEGINNING;
        for (size_t j = 0; j < n_offs; j++)
            if (offs[j].partition == parts[i].partition && !strcmp(offs[j].topic, parts[i].topic))
                parts[i].offset = offs[j].offset;
        if (parts[i].offset >= 0) advance(d, parts[i].topic, parts[i].partition, parts[i].offset);
        log_info("partition assigned", LOG_STR("topic", parts[i].topic),
                 LOG_INT("partition", parts[i].partition), LOG_INT("offset", parts[i].offset));
    }
    free(offs);
    return 0;
}

void ssnad_on_revoke(void *ctx, const KafkaPartition *parts, size_t n, int lost) {
    Ssnad *d = ctx;
    char err[512];
    if (lost) {
        // another member may own them now (or the session expired in a broker outage): the
        // uncommitted work is redone by their owner; our in-memory state no longer matches the
        // store, so the daemon reloads itself from the last checkpoint and rejoins the group
        log_error("partitions lost", LOG_INT("partitions", n));
        store_txn_abort(d->txn);
        d->txn = NULL;
        d->fatal = 1, d->exit_code = SSNAD_EXIT_RELOAD;
        return;
    }
    if (d->txn && !d->fatal && ssnad_checkpoint(d, "revoke", err, sizeof err))
        log_error("revoke checkpoint failed", LOG_STR("error", err));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d->n_parts; j++)
            if (d->parts[j].partition == parts[i].partition &&
                !strcmp(d->parts[j].topic, parts[i].topic)) {
                d->n_parts--;
                if (j != d->n_parts) {
                    memcpy(d->part_topics[j], d->part_topics[d->n_parts], sizeof d->part_topics[0]);
                    d->parts[j] = d->parts[d->n_parts];
                    d->parts[j].topic = d->part_topics[j];
                }
                break;
            }
}
