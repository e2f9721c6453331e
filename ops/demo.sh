#!/usr/bin/env bash
# ops/demo.sh - README command #1: the main job end to end, on this machine.
#
#   1. ops/setup.sh: Debian packages, the real all-MiniLM-L6-v2 encoder, the Kafka jars, build
#   2. a local single-node Apache Kafka (ops/kafka.sh) with its data in work/demo/kafka
#   3. ssnad learning online (A/B: gru:a=3 and mean:a=3 against the most-popular control arm
#      pop) with its LMDB state in work/demo/db
#   4. ssna replay: the Amazon Scientific data (4,385 item texts, 59,427 interactions) as a live
#      stream at 1,000 events/s (the daemon keeps up, trains meanwhile and answers every event)
#   5. a summary: events/s, online hit rate per variant, one user's recommendations with texts
#   6. a clean stop (SIGTERM: final checkpoint) of ssnad and of the broker
#
# Environment: SSNA_DEMO_DATA (default ../shared/data/amazon-scientific), SSNA_DEMO_LIMIT (publish
# at most N events; default all), SSNA_DEMO_RATE (events/s; default 1000, 0 = as fast as the
# broker takes them: ssnad then ingests far ahead of its lists and training), SSNA_KAFKA_PORT (default 19092), SSNA_DEMO_HTTP (default
# 127.0.0.1:18080), SSNA_DEMO_TIMEOUT (seconds to wait for ssnad to apply the stream; 900),
# SSNA_DEMO_VARIANTS (the A/B arms, the first the control; default pop,gru:a=3,mean:a=3; e.g.
# pop,gru:a=3,gru:a=3:loss=inbatch),
# SSNA_DEMO_SET (more ssnad settings, space-separated key=value, e.g. "train.lr=0.001 train.batch=32").
# Re-running starts from a clean work/demo.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data="${SSNA_DEMO_DATA:-$root/../shared/data/amazon-scientific}"
port="${SSNA_KAFKA_PORT:-19092}"
http="${SSNA_DEMO_HTTP:-127.0.0.1:18080}"
timeout_s="${SSNA_DEMO_TIMEOUT:-900}"
work="$root/work/demo"
say() { printf '\n== %s\n' "$*"; }

bash "$root/ops/setup.sh"
ssna="$root/build/daemon/ssna"
ssnad="$root/build/daemon/ssnad"
[ -d "$data" ] || { echo "demo: no data at $data (set SSNA_DEMO_DATA)" >&2; exit 1; }

ssnad_pid=""
cleanup() {
    if [ -n "$ssnad_pid" ] && kill -0 "$ssnad_pid" 2>/dev/null; then
        kill -TERM "$ssnad_pid" 2>/dev/null || true
        wait "$ssnad_pid" 2>/dev/null || true
    fi
    SSNA_KAFKA_PORT="$port" bash "$root/ops/kafka.sh" stop "$work/kafka" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# a leftover broker from an interrupted run would hold the port
SSNA_KAFKA_PORT="$port" bash "$root/ops/kafka.sh" stop "$work/kafka" >/dev/null 2>&1 || true
rm -rf "$work"
mkdir -p "$work"

say "starting Kafka on 127.0.0.1:$port"
SSNA_KAFKA_PORT="$port" bash "$root/ops/kafka.sh" start "$work/kafka"

say "starting ssnad (log: $work/ssnad.log, HTTP: http://$http)"
extra_set=()
for kv in ${SSNA_DEMO_SET:-}; do extra_set+=(--set "$kv"); done
"$ssnad" --set brokers="127.0.0.1:$port" --set db.path="$work/db" \
    --set model.dir="$root/models/minilm-l6" --set variants="${SSNA_DEMO_VARIANTS:-pop,gru:a=3,mean:a=3}" \
    --set http.listen="$http" --set log.format=text --set checkpoint.every_seconds=10 \
    "${extra_set[@]}" >"$work/ssnad.log" 2>&1 &
ssnad_pid=$!

metric() { # metric NAME [LABEL-FILTER]: sum of the series of NAME whose labels match the filter
    curl -sf "http://$http/metrics" 2>/dev/null |
        awk -v n="$1" -v f="${2:-}" '$1 ~ "^"n"({|$)" && index($1, f) { s += $2 } END { printf "%d", s }'
}
for _ in $(seq 1 60); do
    curl -sf "http://$http/healthz" >/dev/null 2>&1 && break
    kill -0 "$ssnad_pid" 2>/dev/null || { tail -20 "$work/ssnad.log"; exit 1; }
    sleep 1
done

limit_args=(--rate "${SSNA_DEMO_RATE:-1000}")
[ -n "${SSNA_DEMO_LIMIT:-}" ] && limit_args+=(--limit "$SSNA_DEMO_LIMIT")
say "replaying $(basename "$data") into Kafka"
start=$(date +%s.%N)
"$ssna" replay --data "$data" --brokers "127.0.0.1:$port" "${limit_args[@]}"

say "waiting for ssnad to apply the stream"
published=0
SECONDS=0
for _ in $(seq 1 "$timeout_s"); do
    kill -0 "$ssnad_pid" 2>/dev/null || { echo "ssnad exited:"; tail -20 "$work/ssnad.log"; exit 1; }
    lag=$(curl -sf "http://$http/metrics" | awk '$1 ~ /^ssnad_consumer_lag_messages/ { print $2 }')
    queue=$(metric ssnad_embed_queue_depth)
    applied=$(metric ssnad_events_total 'result="applied"')
    line="events applied: $applied  consumer lag: ${lag:-?}  embed queue: $queue"
    if [ -t 1 ]; then printf '\r  %s   ' "$line"; elif [ $((SECONDS % 10)) = 0 ]; then echo "  $line"; fi
    if [ "${lag:-1}" = 0 ] && [ "$queue" = 0 ] && [ "$applied" -gt 0 ]; then
        published=1
        break
    fi
    sleep 1
done
end=$(date +%s.%N)
echo
[ "$published" = 1 ] || { echo "demo: ssnad did not catch up within ${timeout_s}s" >&2; exit 1; }
sleep 3 # the last lists of the final batch

say "summary"
applied=$(metric ssnad_events_total 'result="applied"')
awk -v a="$applied" -v s="$start" -v e="$end" \
    'BEGIN { printf "events applied: %d in %.1f s (%.0f events/s end to end, embedding included)\n", a, e - s, a / (e - s) }'
echo "recommendation lists published: $(metric ssnad_recommendations_published_total)"
echo "training steps: $(metric ssnad_train_steps_total)"
echo "training: $(metric ssnad_train_offered_total) sequences offered, $(metric ssnad_train_sequences_total 'source="fresh"') trained fresh, $(metric ssnad_train_fresh_dropped_total) dropped"
echo "live A/B per arm (prequential: was the next item in the list last published? GET /abtest):"
curl -sf "http://$http/abtest" | /usr/bin/python3 -c '
import json, sys
ab = json.load(sys.stdin)
def iv(x):
    return "-" if x["estimate"] is None else "%.4f [%.4f, %.4f]" % (x["estimate"], x["low"], x["high"])
k = ab["k"]
print("  | arm | lists scored | hit@%d [95%% CI] | NDCG@%d [95%% CI] | hit@%d vs %s: difference [95%% CI], p |" % (k, k, k, ab["control"]))
print("  |---|---|---|---|---|")
for a in ab["arms"]:
    c = a["cumulative"]
    vs = a.get("vs_control", {}).get("cumulative", {}).get("hit_rate")
    d = "(control)" if vs is None else ("-" if vs["difference"] is None else "%+.4f [%+.4f, %+.4f], p %.3g" % (vs["difference"], vs["low"], vs["high"], vs["p_value"] if vs["p_value"] is not None else float("nan")))
    print("  | %s | %d | %s | %s | %s |" % (a["variant"], c["scored"], iv(c["hit_rate"]), iv(c["ndcg"]), d))
'
user=$(awk -F'\t' 'NR == 2 { print $1 }' "$data"/*.test.inter)
user_id=$(awk -F'\t' -v u="$user" '$2 == u { print $1; exit }' "$data"/*.user2index 2>/dev/null || true)
user_id="${user_id:-$user}"
say "recommendations for user $user_id (GET /recommend?user=$user_id)"
curl -sf "http://$http/recommend?user=$user_id" | /usr/bin/python3 -m json.tool | head -60

say "stopping (SIGTERM: final checkpoint)"
kill -TERM "$ssnad_pid"
wait "$ssnad_pid" && echo "ssnad stopped cleanly" || { echo "ssnad exit status $?"; exit 1; }
ssnad_pid=""
SSNA_KAFKA_PORT="$port" bash "$root/ops/kafka.sh" stop "$work/kafka"
trap - EXIT
