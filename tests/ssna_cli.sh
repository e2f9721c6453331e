#!/usr/bin/env bash
# tests/ssna_cli.sh - `ssna train / eval / recommend` end to end on MovieLens ratings.csv (the
# generic CSV path): the final JSON line, --resume continuing the same run, eval reproducing the
# best epoch's test metrics, recommend printing k items, and the usage / input errors.
# Runs the id variant (no encoder cache needed) on the last 20 items per user, two short epochs.
set -uo pipefail
ssna="${SSNA_BUILD_DIR:?run through ctest}/daemon/ssna"
data="${SSNA_DATA_DIR:?run through ctest}/movielens-latest-small/ratings.csv"
py="${SSNA_PYTHON:-/usr/bin/python3}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check DESCRIPTION COMMAND...
    if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi
}
[ -f "$data" ] || { echo "FAILED: $data missing"; exit 1; }
[ -x "$ssna" ] || { echo "FAILED: $ssna not built"; exit 1; }
json() { # json FILE EXPR: evaluate EXPR on the last line of FILE parsed as j
    "$py" -c 'import json,sys; j=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(eval(sys.argv[2]))' "$1" "$2"
}
common=(--data "$data" --max-len 20 --variant id --batch 128 --eval-batch 256 --out "$tmp/m.ckpt")

"$ssna" train "${common[@]}" --epochs 1 > "$tmp/t1.json" 2> "$tmp/t1.err"
check "train exits 0" test $? -eq 0
check "a progress line with loss, metrics, seconds, RSS" \
    test "$(grep -cE '^epoch +[0-9]+  loss [0-9.]+  valid R@10 [0-9.]+ .* train [0-9.]+s .*peak RSS [0-9]+ MB' "$tmp/t1.err")" -eq 1
check "final JSON: 610 users, 1 epoch, every metric" \
    test "$(json "$tmp/t1.json" '(j["users"], j["epochs"], sorted(j["test"]), j["variant"])')" = \
    "(610, 1, ['ndcg@10', 'ndcg@50', 'recall@10', 'recall@50'], 'id')"

"$ssna" train "${common[@]}" --epochs 2 --resume > "$tmp/t2.json" 2> "$tmp/t2.err"
check "resume exits 0" test $? -eq 0
check "resume says where it continues" grep -q "resuming .* after epoch 1" "$tmp/t2.err"
check "resume runs exactly one more epoch" test "$(grep -c '^epoch' "$tmp/t2.err")" -eq 1
check "resumed JSON counts 2 epochs" test "$(json "$tmp/t2.json" 'j["epochs"]')" = 2

"$ssna" eval --ckpt "$tmp/m.ckpt" --data "$data" --max-len 20 > "$tmp/e.json"
check "eval exits 0" test $? -eq 0
check "eval of the best weights reproduces the best epoch's test metrics" test \
    "$(json "$tmp/e.json" 'j["test"]')" = "$(json "$tmp/t2.json" 'j["test"]')"

"$ssna" eval --ckpt "$tmp/m.ckpt" --data "$data" --max-len 20 --per-user "$tmp/ranks.tsv" > "$tmp/e2.json"
check "eval --per-user: a header and one line per user" test "$(wc -l < "$tmp/ranks.tsv")" -eq 611
check "eval --per-user: the mean of [test rank < 10] is the printed test R@10" test \
    "$("$py" -c 'import sys; r=[int(l.split()[2]) for l in open(sys.argv[1]).readlines()[1:]]; print("%.6f" % (sum(x < 10 for x in r) / len(r)))' "$tmp/ranks.tsv")" = \
    "$(json "$tmp/e2.json" '"%.6f" % j["test"]["recall@10"]')"
printf 'SSNAPOP 1\nmeta {}\nn_items 3\n1\nx\n' > "$tmp/bad.pop"
"$ssna" eval --ckpt "$tmp/bad.pop" --data "$data" 2> "$tmp/bp.err"
check "a malformed popularity file exits 1" test $? -eq 1
check "its error names the file and line" grep -q "bad.pop:5: expected a count" "$tmp/bp.err"

# --test-curve: every epoch's line carries the test figures, the best epoch's are the ones the
# final JSON reports, and the epoch chosen is the same as without it (chosen on validation)
"$ssna" train "${common[@]}" --out "$tmp/tc.ckpt" --epochs 3 --test-curve > "$tmp/tc.json" 2> "$tmp/tc.err"
check "train --test-curve exits 0" test $? -eq 0
check "train --test-curve: a test figure on each of the 3 epoch lines" \
    test "$(grep -cE '^epoch +[0-9]+  loss .* test R@10 [0-9.]+ R@50 [0-9.]+ N@10 [0-9.]+ N@50 [0-9.]+  train' "$tmp/tc.err")" -eq 3
check "train --test-curve: the best epoch's line holds the reported test figures" test \
    "$("$py" -c 'import re,sys; b=[l for l in open(sys.argv[1]) if l.startswith("epoch") and l.rstrip().endswith("*")][-1]; print(re.search(r"test R@10 ([0-9.]+) R@50 ([0-9.]+)", b).groups())' "$tmp/tc.err")" = \
    "$(json "$tmp/tc.json" '("%.4f" % j["test"]["recall@10"], "%.4f" % j["test"]["recall@50"])')"
"$ssna" train "${common[@]}" --out "$tmp/tc0.ckpt" --epochs 3 > "$tmp/tc0.json" 2> /dev/null
check "train --test-curve chooses the epoch and reports the test figures it would without" test \
    "$(json "$tmp/tc.json" '(j["best_epoch"], j["test"])')" = "$(json "$tmp/tc0.json" '(j["best_epoch"], j["test"])')"
# ops/bench/selection reads those lines: its rule "R@10, patience 10" is ssna train's own, so on
# this run it must choose the reported epoch and figure; a log without test figures is refused
selection="$(dirname "$0")/../ops/bench/selection"
"$py" "$selection" --patience 10 "$tmp/tc.err" > "$tmp/sel.txt"
check "selection exits 0" test $? -eq 0
check "selection's R@10 rule chooses what ssna train reported" test \
    "$(grep -E '^\| R@10 \| 10 \|' "$tmp/sel.txt" | awk -F'|' '{gsub(/ /, ""); print $4 "|" $6}')" = \
    "$(json "$tmp/tc.json" '"%.4f|%d" % (j["test"]["recall@10"], j["best_epoch"])')"
"$py" "$selection" "$tmp/t1.err" 2> "$tmp/sel.err"
check "selection refuses a log without test figures, naming its line" test $? -ne 0 -a \
    "$(grep -c "t1.err:[0-9]*: no test figures" "$tmp/sel.err")" -eq 1

"$ssna" recommend --ckpt "$tmp/m.ckpt" --data "$data" --max-len 20 --user 1 -k 5 > "$tmp/r.txt"
check "recommend exits 0" test $? -eq 0
check "recommend prints 5 ranked items" test "$(grep -cE '^ *[1-5]  ' "$tmp/r.txt")" -eq 5

"$ssna" train --help > "$tmp/h.txt"
check "train --help exits 0 and documents --patience" grep -q -- "--patience" "$tmp/h.txt"
"$ssna" train --data "$data" 2> "$tmp/u.err"
check "train without --out is a usage error (2)" test $? -eq 2
"$ssna" train --data "$tmp/none.csv" --variant id --out "$tmp/x.ckpt" 2> "$tmp/n.err"
check "missing data exits 1" test $? -eq 1
check "the error names the file" grep -q "$tmp/none.csv" "$tmp/n.err"
"$ssna" train --data "$data" --out "$tmp/x.ckpt" 2> "$tmp/d.err"
check "gru without --db exits 1 and says why" grep -q -- "--db DIR is required" "$tmp/d.err"
# numbers are checked: atoi once made "--epochs x" 0 epochs and "--batch 12abc" a batch of 12
for bad in "--epochs x" "--batch 12abc" "--layers -1" "--lr 1e-3x" "--max-len 2" "--tau 0"; do
    set -- $bad
    "$ssna" train --data "$data" --variant id --out "$tmp/x.ckpt" "$1" "$2" 2> "$tmp/num.err"
    check "train $bad is a usage error (2)" test $? -eq 2
    check "train $bad: the error names the option and the value" \
        grep -q -- "$1: \"$2\" is not a" "$tmp/num.err"
done
"$ssna" train --data "$data" --variant id --out "$tmp/x.ckpt" --loss sampled 2> "$tmp/loss.err"
check "train --loss sampled is a usage error (2) naming the choices" test $? -eq 2 -a \
    "$(grep -c -- '--loss: "sampled" is not inbatch, full or logq' "$tmp/loss.err")" -eq 1
# kept NAME KEY VALUE OPTION...: a run with OPTION reports KEY = VALUE (python repr), a --resume
# of it trains on with the same, and eval of its checkpoint reproduces its best epoch's metrics:
# --tau and --score are the checkpoint's, not the command line's
kept() {
    local name=$1 key=$2 value=$3
    shift 3
    "$ssna" train "${common[@]}" --out "$tmp/$name.ckpt" "$@" --epochs 1 > "$tmp/$name.json"
    check "train $* exits 0 and reports it" test $? -eq 0 -a \
        "$(json "$tmp/$name.json" "repr(j['$key'])")" = "$value"
    "$ssna" train "${common[@]}" --out "$tmp/$name.ckpt" --epochs 2 --resume > "$tmp/$name.2.json"
    check "a resumed $* run trains on with it" test \
        "$(json "$tmp/$name.2.json" "(j['$key'], j['epochs'])")" = "($value, 2)"
    "$ssna" eval --ckpt "$tmp/$name.ckpt" --data "$data" --max-len 20 > "$tmp/$name.e.json"
    check "eval of a $* model reproduces its best epoch's test metrics" test \
        "$(json "$tmp/$name.e.json" 'j["test"]')" = "$(json "$tmp/$name.2.json" 'j["test"]')"
}
kept tau tau 0.15 --tau 0.15
# --score dot (RecBole's logits); recommend ranks by the same dot products
kept dot score "'dot'" --score dot
"$ssna" recommend --ckpt "$tmp/dot.ckpt" --data "$data" --max-len 20 --user 1 -k 5 > "$tmp/dot.r.txt"
check "recommend of a --score dot model prints 5 ranked items" test $? -eq 0 -a \
    "$(grep -cE '^ *[1-5]  ' "$tmp/dot.r.txt")" -eq 5
"$ssna" train "${common[@]}" --out "$tmp/x.ckpt" --score cosine 2> "$tmp/score.err"
check "train --score cosine is a usage error (2) naming the choices" test $? -eq 2 -a \
    "$(grep -c -- '--score: "cosine" is not cos or dot' "$tmp/score.err")" -eq 1
for loss in logq full; do # the loss is the checkpoint's: a resumed run keeps it
    "$ssna" train "${common[@]}" --out "$tmp/$loss.ckpt" --loss $loss --epochs 1 > "$tmp/$loss.json"
    check "train --loss $loss exits 0 and says so" test $? -eq 0 -a \
        "$(json "$tmp/$loss.json" 'j["loss"]')" = $loss
    "$ssna" train "${common[@]}" --out "$tmp/$loss.ckpt" --epochs 2 --resume > "$tmp/$loss.2.json"
    check "a resumed --loss $loss run trains on with $loss" test \
        "$(json "$tmp/$loss.2.json" '(j["loss"], j["epochs"])')" = "('$loss', 2)"
done

"$ssna" export --data "$data" --out "$tmp/exp" --k-core 5q 2> "$tmp/num.err"
check "export --k-core 5q is a usage error (2)" test $? -eq 2
# the summary line stays JSON whatever the folder is called: a quote, a backslash, a tab and a
# byte that is not UTF-8 (shown as U+FFFD)
odd="$tmp/a\"b\\c"$'\t'$'\xff'
"$ssna" export --data "$data" --out "$odd" --k-core 5 > "$tmp/exp.json" 2> "$tmp/exp.err"
check "export into an oddly named folder exits 0" test $? -eq 0
check "its summary line is JSON naming the folder" test \
    "$(json "$tmp/exp.json" 'j["dir"].endswith("a\"b\\c\t\ufffd") and j["users"] == 610')" = True
exit $fail
