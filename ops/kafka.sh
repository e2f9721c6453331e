#!/usr/bin/env bash
# ops/kafka.sh - a local single-node Apache Kafka 4.x (KRaft, broker + controller in one JVM) for
# ssna: the main job and the integration tests run against it.
#
#   ops/kafka.sh start  [WORKDIR]   format storage once, start, wait until it answers, create topics
#   ops/kafka.sh stop   [WORKDIR]   SIGTERM, bounded wait, then SIGKILL
#   ops/kafka.sh status [WORKDIR]   exit 0 when running and answering, 1 when stopped, 2 when hung
#
# WORKDIR (default: <repo>/work/kafka) holds server.properties, the data (data/), the logs
# (server.log, kafka.out) and kafka.pid. The jars come from ops/kafka/lib (ops/setup.sh fetches
# them from Maven Central); java is whatever `java` is on PATH and must be 17 or newer.
#
# Environment (read by start; stop and status use what start recorded in WORKDIR/kafka.env):
#   SSNA_KAFKA_PORT             client port on 127.0.0.1 (default 19092)
#   SSNA_KAFKA_CONTROLLER_PORT  KRaft controller port (default SSNA_KAFKA_PORT + 1)
#   SSNA_KAFKA_PARTITIONS       partitions of events, items, recommendations (default 4)
#   SSNA_KAFKA_EXTRA_TOPICS     more topics to create, space-separated name:partitions[:config]
#                               (e.g. "recommendations-b:4:cleanup.policy=compact dead-letter-b:1")
#   SSNA_KAFKA_HEAP             JVM heap, e.g. 512m (default 512m)
#   SSNA_KAFKA_START_TIMEOUT    seconds to wait for the port to answer (default 120)
#   SSNA_KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL (default 30)
#   SSNA_KAFKA_LIB              jar folder (default <repo>/ops/kafka/lib)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here="$root/ops/kafka"

die() {
    printf 'kafka.sh: %s\n' "$*" >&2
    exit 1
}
say() { printf 'kafka.sh: %s\n' "$*" >&2; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

cmd="${1:-}"
work="${2:-$root/work/kafka}"
case "$cmd" in
start | stop | status) ;;
-h | --help | help)
    usage
    exit 0
    ;;
*)
    usage >&2
    exit 2
    ;;
esac
mkdir -p "$work"
work=$(cd "$work" && pwd)
pidfile="$work/kafka.pid"
envfile="$work/kafka.env"

# Ports: the environment wins at start; otherwise what the last start recorded, so a restart of
# the same work folder keeps its port and stop/status find the broker.
env_port="${SSNA_KAFKA_PORT:-}"
env_cport="${SSNA_KAFKA_CONTROLLER_PORT:-}"
if [ -f "$envfile" ]; then
    # shellcheck disable=SC1090
    . "$envfile"
fi
if [ "$cmd" = start ] && [ -n "$env_port" ]; then
    SSNA_KAFKA_PORT="$env_port"
    SSNA_KAFKA_CONTROLLER_PORT="$env_cport"
fi
port="${SSNA_KAFKA_PORT:-19092}"
cport="${SSNA_KAFKA_CONTROLLER_PORT:-$((port + 1))}"
lib="${SSNA_KAFKA_LIB:-$here/lib}"

port_answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

running_pid() {
    local pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # a recycled pid is not our broker
    grep -q kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

log_tail() {
    say "last lines of $work/kafka.out:"
    tail -n 20 "$work/kafka.out" 2>/dev/null >&2 || true
    say "last lines of $work/server.log:"
    tail -n 30 "$work/server.log" 2>/dev/null >&2 || true
}

check_java() {
    command -v java >/dev/null 2>&1 || die "no java on PATH (Kafka 4 needs Java 17+; apt-get install default-jre-headless)"
    local v
    v=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    [ -n "$v" ] || die "cannot read the version of $(command -v java)"
    [ "${v%%.*}" -ge 17 ] 2>/dev/null || die "java $v on PATH is too old: Kafka 4 needs Java 17 or newer"
    [ -f "$lib/.complete" ] || die "no Kafka jars in $lib (run ops/setup.sh, which runs mvn dependency:copy-dependencies in ops/kafka)"
    ls "$lib"/kafka_2.13-*.jar >/dev/null 2>&1 || die "$lib has no kafka_2.13 jar: delete it and run ops/setup.sh again"
}

# Short-lived tool JVMs start faster with the client compiler and one GC thread.
tool_java() { java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$lib/*" \
    -Dlog4j2.configurationFile="$here/log4j2.properties" -Dkafka.logs.dir="$work/tools" "$@"; }

random_cluster_id() {
    # a Kafka Uuid: 16 random bytes, URL-safe base64 without padding. Like Kafka's own
    # Uuid.randomUuid, never one starting with '-': the storage tool would read it as an option.
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
        case "$id" in -*) ;; *) printf '%s' "$id"; return ;; esac
    done
}

create_topics() {
    local parts="${SSNA_KAFKA_PARTITIONS:-4}" t
    # name:partitions:extra config
    # shellcheck disable=SC2086 # the extra topics are a space-separated list
    for t in "events:$parts:" "items:$parts:" "recommendations:$parts:cleanup.policy=compact" \
        "dead-letter:1:" ${SSNA_KAFKA_EXTRA_TOPICS:-}; do
        IFS=: read -r name n config <<<"$t"
        set -- --bootstrap-server "127.0.0.1:$port" --create --if-not-exists --topic "$name" \
            --partitions "$n" --replication-factor 1
        if [ -n "$config" ]; then set -- "$@" --config "$config"; fi
        tool_java org.apache.kafka.tools.TopicCommand "$@" >>"$work/topics.log" 2>&1 || {
            tail -n 20 "$work/topics.log" >&2
            die "creating topic $name failed (log: $work/topics.log)"
        }
    done
    touch "$work/.topics"
    say "topics: events, items ($parts partitions each), recommendations ($parts, compacted), dead-letter (1)${SSNA_KAFKA_EXTRA_TOPICS:+, $SSNA_KAFKA_EXTRA_TOPICS}"
}

start() {
    check_java
    local pid
    if pid=$(running_pid); then
        say "already running (pid $pid, 127.0.0.1:$port)"
        [ -f "$work/.topics" ] || create_topics
        return 0
    fi
    if port_answers "$port"; then die "port $port on 127.0.0.1 is taken by another process"; fi
    if port_answers "$cport"; then die "controller port $cport on 127.0.0.1 is taken by another process"; fi
    printf 'SSNA_KAFKA_PORT=%s\nSSNA_KAFKA_CONTROLLER_PORT=%s\n' "$port" "$cport" >"$envfile"
    sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$cport|g" -e "s|@DATA_DIR@|$work/data|g" \
        "$here/server.properties" >"$work/server.properties"
    if [ ! -f "$work/data/meta.properties" ]; then
        local id
        id=$(random_cluster_id)
        say "formatting storage in $work/data (cluster id $id)"
        tool_java kafka.tools.StorageTool format -t "$id" -c "$work/server.properties" \
            >"$work/format.log" 2>&1 || {
            cat "$work/format.log" >&2
            die "formatting storage failed"
        }
        rm -f "$work/.topics"
    fi
    say "starting broker on 127.0.0.1:$port (controller $cport), work folder $work"
    # setsid: the broker outlives this shell and a Ctrl-C in the caller's terminal.
    setsid java -Xms128m -Xmx"${SSNA_KAFKA_HEAP:-512m}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$here/log4j2.properties" \
        -Dkafka.logs.dir="$work" -cp "$lib/*" kafka.Kafka "$work/server.properties" \
        >"$work/kafka.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pidfile"
    local limit="${SSNA_KAFKA_START_TIMEOUT:-120}" waited=0
    until port_answers "$port"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log_tail
            die "the broker exited during start-up"
        fi
        if [ "$waited" -ge "$limit" ]; then
            log_tail
            kill -KILL "$pid" 2>/dev/null || true
            die "the broker did not answer on 127.0.0.1:$port within ${limit}s"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "broker answers on 127.0.0.1:$port after ${waited}s (pid $pid)"
    [ -f "$work/.topics" ] || create_topics
}

stop() {
    local pid limit="${SSNA_KAFKA_STOP_TIMEOUT:-30}" waited=0
    if ! pid=$(running_pid); then
        say "not running"
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge "$limit" ]; then
            say "no exit ${limit}s after SIGTERM: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
    rm -f "$pidfile"
    say "stopped (pid $pid)"
}

status() {
    local pid
    if ! pid=$(running_pid); then
        echo "stopped"
        return 1
    fi
    if port_answers "$port"; then
        echo "running pid $pid 127.0.0.1:$port"
        return 0
    fi
    echo "pid $pid alive but 127.0.0.1:$port does not answer"
    return 2
}

"$cmd"
