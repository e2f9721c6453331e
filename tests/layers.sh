#!/usr/bin/env bash
# tests/layers.sh - the include arrows README states hold: model/ includes only model/; store/ and
# ingest/ include model/ (shared types) and themselves (ingest/ also its generated proto/ code);
# nothing below daemon/ includes daemon/. Prints every include that points the wrong way.
set -u
cd "${SSNA_SOURCE_DIR:?run through ctest}" || exit 1
bad=0
check() { # folder allowed-prefixes...
    local dir=$1
    shift
    local allowed
    allowed=$(printf '%s/|' "$@")
    while IFS= read -r line; do
        echo "layers: $line: $dir/ may include only ${*/%//} headers"
        bad=1
    done < <(grep -Hn '^#include "' "$dir"/*.[ch] | grep -Ev "#include \"(${allowed%|})")
}
check model model
check store store model
check ingest ingest model proto
[ "$bad" = 0 ] && echo "layers: every include points the way README says"
exit "$bad"
