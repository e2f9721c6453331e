#!/usr/bin/env bash
# tests/ssnad_warm.sh - an A/B arm started from an offline model (variants = ...:init=PATH), with
# the real MiniLM encoder, no broker needed (state opens before Kafka is contacted):
#   a tiny catalogue embedded by `ssna embed`, a gru a=3 model trained on it by `ssna train`;
#   ssnad starts the arm from it ("model initialised"), writes its own snapshot on a clean stop,
#   and on restart restores that snapshot and no longer reads init (a missing file is then fine);
#   a --item-ids model keeps its ID rows through --resume and eval (offline only);
#   an arm that names its width (d=64) starts from a checkpoint of that width;
#   an init of another variant, of other kept layers, of an id model (no encoder), with dot-product
#   scores, another tau or item-ID rows, of another width, or a missing file, each stop ssnad at
#   start-up with exit 1 and an error naming the arm and the reason.
set -uo pipefail
build="${SSNA_BUILD_DIR:?run through ctest}"
model="${SSNA_MODEL_DIR:?run through ctest}"
ssna="$build/daemon/ssna" ssnad="$build/daemon/ssnad"
tmp=$(mktemp -d)
trap '[ $fail = 0 ] && rm -rf "$tmp"' EXIT
fail=0
check() { # check DESCRIPTION COMMAND...
    if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi
}
[ -x "$ssnad" ] && [ -d "$model" ] || { echo "FAILED: ssnad or $model missing"; exit 1; }

# 12 items, 30 users with 6 events each
{
    printf 'item_id:token\ttext:token_seq\n'
    for i in $(seq 0 11); do printf 'I%02d\tlab item %d: glass beaker set, %d ml\n' "$i" "$i" $((50 * i + 50)); done
} > "$tmp/items.text"
{
    echo "user,item,timestamp"
    for u in $(seq 0 29); do for t in $(seq 0 5); do
        printf 'u%d,I%02d,%d\n' "$u" $(((u + 3 * t) % 12)) "$t"
    done; done
} > "$tmp/log.csv"
"$ssna" embed --items "$tmp/items.text" --db "$tmp/cache" --layers 3 --model "$model" \
    > /dev/null 2> "$tmp/embed.err"
check "ssna embed of the catalogue" test $? -eq 0
for v in gru id; do
    db=(--db "$tmp/cache")
    [ $v = id ] && db=()
    "$ssna" train --data "$tmp/log.csv" --k-core 1 "${db[@]}" --variant $v --epochs 2 \
        --out "$tmp/$v.ckpt" > /dev/null 2> "$tmp/train-$v.err"
    check "ssna train --variant $v" test $? -eq 0
done
# the same gru a=3 shape, other scores (RecBole's dot product, another temperature) or ID rows;
# and another width
for opt in dot tau ids d64; do
    args=(--score dot)
    [ $opt = tau ] && args=(--tau 0.15)
    [ $opt = ids ] && args=(--item-ids)
    [ $opt = d64 ] && args=(--d 64)
    "$ssna" train --data "$tmp/log.csv" --k-core 1 --db "$tmp/cache" --variant gru --epochs 1 \
        "${args[@]}" --out "$tmp/gru-$opt.ckpt" > "$tmp/train-$opt.json" 2> "$tmp/train-$opt.err"
    check "ssna train --variant gru ${args[*]}" test $? -eq 0
done
json() { python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
# the ID rows are the checkpoint's: a resume trains on with them, eval reproduces the best epoch
"$ssna" train --data "$tmp/log.csv" --k-core 1 --db "$tmp/cache" --variant gru --epochs 2 \
    --resume --out "$tmp/gru-ids.ckpt" > "$tmp/train-ids2.json" 2> "$tmp/train-ids2.err"
check "--item-ids: train and its resume report the ID rows" test \
    "$(json "$tmp/train-ids.json" 'j["item_ids"]') $(json "$tmp/train-ids2.json" '(j["item_ids"], j["epochs"])')" = "True (True, 2)"
"$ssna" eval --ckpt "$tmp/gru-ids.ckpt" --data "$tmp/log.csv" --k-core 1 --db "$tmp/cache" \
    > "$tmp/eval-ids.json" 2> "$tmp/eval-ids.err"
check "--item-ids: eval reproduces the best epoch's test metrics" test \
    "$(json "$tmp/eval-ids.json" 'j["test"]')" = "$(json "$tmp/train-ids2.json" 'j["test"]')"
"$ssna" train --data "$tmp/log.csv" --k-core 1 --variant id --item-ids --out "$tmp/x.ckpt" \
    2> "$tmp/id-ids.err"
check "--item-ids with --variant id is a usage error (2) saying why" test $? -eq 2 -a \
    "$(grep -c -- '--item-ids is for the text variants' "$tmp/id-ids.err")" -eq 1

# run ssnad on db with variants ARM until its log shows PATTERN (or it exits); then SIGTERM
run() { # run NAME ARM PATTERN -> exit status of ssnad
    local name=$1 arm=$2 pattern=$3
    "$ssnad" --set brokers=127.0.0.1:1 --set db.path="$tmp/db-$name" --set model.dir="$model" \
        --set variants="$arm" --set http.listen=off --set log.format=text \
        > "$tmp/$name.log" 2>&1 &
    local pid=$! waited=0
    while kill -0 $pid 2>/dev/null && ! grep -q "$pattern" "$tmp/$name.log" 2>/dev/null &&
        [ $waited -lt 600 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -TERM $pid 2>/dev/null
    wait $pid
}
run warm "gru:a=3:init=$tmp/gru.ckpt" "ssnad running"
check "a warm arm starts from the checkpoint" grep -q "model initialised variant=\"gru:a=3\" from=$tmp/gru.ckpt" "$tmp/warm.log"
check "a clean stop without any event still snapshots it" grep -q "model saved variant=\"gru:a=3\"" "$tmp/warm.log"
mv "$tmp/db-warm" "$tmp/db-again"
run again "gru:a=3:init=$tmp/none.ckpt" "ssnad running"
check "a restart restores the arm's own snapshot" grep -q "model restored variant=\"gru:a=3\"" "$tmp/again.log"
check "and does not read init any more" test "$(grep -c "model initialised\|none.ckpt" "$tmp/again.log")" -eq 0
# an init= arm is 256 wide by default (ssna train's); a 64-wide model goes in as :d=64
run d64 "gru:a=3:d=64:init=$tmp/gru-d64.ckpt" "ssnad running"
check "an arm naming its width starts from a checkpoint of that width" grep -q "model initialised variant=\"gru:a=3:d=64\" from=$tmp/gru-d64.ckpt" "$tmp/d64.log"

expect_refused() { # expect_refused NAME ARM NEEDLE
    run "$1" "$2" "startup failed"
    local st=$?
    check "$1: ssnad exits 1" test $st -eq 1
    check "$1: the error says '$3'" grep -q "startup failed.*$3" "$tmp/$1.log"
}
expect_refused variant "mean:a=3:init=$tmp/gru.ckpt" "variant mean:a=3: init .* differs in its variant"
expect_refused layers "gru:a=2:init=$tmp/gru.ckpt" "variant gru:a=2: init .* differs in its kept layers"
expect_refused encoder "gru:a=3:init=$tmp/id.ckpt" "another encoder"
expect_refused dot "gru:a=3:init=$tmp/gru-dot.ckpt" "differs in its score (ssnad serves cos, not dot)"
expect_refused tau "gru:a=3:init=$tmp/gru-tau.ckpt" "variant gru:a=3: init .* differs in its tau"
expect_refused ids "gru:a=3:init=$tmp/gru-ids.ckpt" "differs in its item ids (ssnad's items are text alone)"
expect_refused missing "gru:a=3:init=$tmp/none.ckpt" "variant gru:a=3: init: .*none.ckpt"
expect_refused width "gru:a=3:init=$tmp/gru-d64.ckpt" "variant gru:a=3: init .* differs in its d (the checkpoint is 64 wide, the arm 256: name its width in the arm, :d=64)"
exit $fail
