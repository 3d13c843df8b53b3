#!/usr/bin/env bash
# Compares a 3-node shoal cluster with a 3-master Redis Cluster using
# `redis-benchmark --cluster`.
#
# Builds shoal in release mode; starts cluster-enabled `redis-server`s (no
# persistence): 3 masters with REDIS_REPLICAS replicas each, joined with
# `redis-cli --cluster create`, and `shoal local --nodes 3 --replicas
# REPLICAS` (three `shoal server`s; every shard a Raft group of REPLICAS
# replicas, its WAL fsynced per --fsync FSYNC), all on free ports of
# 127.0.0.1. Then runs ROUNDS rounds,
# alternating redis and shoal, of `redis-benchmark --cluster -t set,get` with
# pipeline 1 and 16, and prints, per test and pipeline, the median
# requests/s of each cluster, the shoal/redis ratio, and the median p50 and
# p99 latencies.
#
# Environment: REPLICAS (default 3), REDIS_REPLICAS (1), FSYNC (always),
# ROUNDS (default 3), REQUESTS (100000), CLIENTS (50),
# THREADS (unset: redis-benchmark --cluster then runs one client thread per
# master; set it to pass --threads THREADS), BENCH_TIMEOUT (600: seconds one
# redis-benchmark run may take).
#
# A non-zero exit of redis-benchmark, or output without the two csv rows,
# fails the run and prints what redis-benchmark printed. Beware: in cluster
# mode redis-benchmark 7.0 does not exit on an error reply to SET/GET (it
# refetches the slot map on MOVED/ASK/CLUSTERDOWN and otherwise just counts
# the error as a completed request), so after every run the script also
# checks that every master of the cluster holds keys (DBSIZE > 0).
#
# Caveat (redis-benchmark 7.0, multi-threaded as --cluster makes it): a
# client thread that runs out of requests before the others only notices
# the end at its next 250 ms timer tick, so a test's elapsed time is rounded
# up to roughly a multiple of 250 ms. With few requests per test (pipeline
# 16 and REQUESTS=100000 take well under a second) requests/s is coarsely
# quantised (400k, 200k, 133k, 100k, 80k, ...); raise REQUESTS, or set
# THREADS=1, for finer numbers. Latency percentiles are not affected.
# After the runs it prints each shoal node's WAL group commit: appends per
# batch (one write and one fsync per batch).
# Needs redis-server, redis-benchmark, redis-cli, python3 and timeout on PATH.
# Shared helpers live in bench/lib.sh.
set -euo pipefail

REPLICAS=${REPLICAS:-3}
REDIS_REPLICAS=${REDIS_REPLICAS:-1}
FSYNC=${FSYNC:-always}
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
THREADS=${THREADS:-}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-600}
TESTS=set,get
PIPELINES=(1 16)
NODES=3
REDIS_SERVERS=$((NODES * (1 + REDIS_REPLICAS)))

BENCH_NAME=compare-redis-cluster
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

require_tools redis-server redis-benchmark redis-cli python3 timeout
build_shoal "$root"

work=$(mktemp -d)
redis_pids=()
shoal_pid=
bench_pid=
cleanup() {
    # `shoal local` stops its nodes on SIGTERM (each gets up to 10 s to save).
    # shellcheck disable=SC2086 # empty pids vanish
    stop_pids 40 $bench_pid $shoal_pid "${redis_pids[@]}"
    # If `shoal local` died without stopping its nodes (or had to be
    # killed), they are still running: find them by the pids it printed,
    # and stop those whose command line still names our directory.
    local orphans=() pid
    if [[ -f $work/shoal-local.out ]]; then
        for pid in $(sed -n 's/^node [0-9]* pid \([0-9]*\):.*/\1/p' "$work/shoal-local.out"); do
            if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$work/shoal"; then
                orphans+=("$pid")
            fi
        done
    fi
    if ((${#orphans[@]})); then
        echo "$BENCH_NAME: stopping shoal nodes left behind: ${orphans[*]}" >&2
        stop_pids 15 "${orphans[@]}"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Redis Cluster -----------------------------------------------------------

redis_base=$(free_port_block "$REDIS_SERVERS")
redis_ports=()
mkdir "$work/redis"
for ((i = 0; i < REDIS_SERVERS; i++)); do
    port=$((redis_base + i))
    redis_ports+=("$port")
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file "nodes-$port.conf" --dir "$work/redis" \
        --save '' --appendonly no --daemonize no >"$work/redis/redis-$port.log" 2>&1 &
    redis_pids+=($!)
done
for ((i = 0; i < REDIS_SERVERS; i++)); do
    wait_ping "redis-${redis_ports[i]}" "${redis_ports[i]}" "${redis_pids[i]}" \
        "$work/redis/redis-${redis_ports[i]}.log"
done

create_args=()
for port in "${redis_ports[@]}"; do create_args+=("127.0.0.1:$port"); done
if ! redis-cli --cluster create "${create_args[@]}" --cluster-replicas "$REDIS_REPLICAS" --cluster-yes \
    >"$work/redis/create.log" 2>&1; then
    echo "$BENCH_NAME: redis-cli --cluster create failed:" >&2
    cat "$work/redis/create.log" >&2
    exit 1
fi

# Up to 30 s for every node to see the whole cluster with every slot served.
redis_ready=0
for ((attempt = 0; attempt < 300; attempt++)); do
    ok=0
    for port in "${redis_ports[@]}"; do
        info=$(redis-cli -p "$port" cluster info 2>/dev/null | tr -d '\r') || true
        role=$(redis-cli -p "$port" info replication 2>/dev/null | tr -d '\r') || true
        # A replica counts once its link to the master is up (synced).
        if grep -qx 'cluster_state:ok' <<<"$info" && grep -qx "cluster_known_nodes:$REDIS_SERVERS" <<<"$info" &&
            { grep -qx 'role:master' <<<"$role" || grep -qx 'master_link_status:up' <<<"$role"; }; then
            ok=$((ok + 1))
        fi
    done
    if ((ok == REDIS_SERVERS)); then redis_ready=1; break; fi
    sleep 0.1
done
if ((!redis_ready)); then
    echo "$BENCH_NAME: the Redis Cluster did not reach cluster_state:ok in 30 s:" >&2
    for port in "${redis_ports[@]}"; do
        echo "--- 127.0.0.1:$port cluster info" >&2
        redis-cli -p "$port" cluster info >&2 || true
    done
    exit 1
fi

# --- shoal cluster -------------------------------------------------------------

shoal_base=$(free_port_block "$NODES" "${redis_ports[@]}")
# `shoal local` makes DIR/node-i itself.
"$shoal_bin" local --nodes "$NODES" --port "$shoal_base" --dir "$work/shoal" --replicas "$REPLICAS" --fsync "$FSYNC" \
    >"$work/shoal-local.out" 2>"$work/shoal-local.err" &
shoal_pid=$!

shoal_log() {
    echo "--- shoal local stdout" >&2
    cat "$work/shoal-local.out" >&2
    echo "--- shoal local stderr" >&2
    cat "$work/shoal-local.err" >&2
}

# `shoal local` gives up after its own 30 s; allow a little more.
shoal_ready=0
for ((attempt = 0; attempt < 400; attempt++)); do
    if grep -qx ready "$work/shoal-local.out"; then shoal_ready=1; break; fi
    if ! kill -0 "$shoal_pid" 2>/dev/null; then
        echo "$BENCH_NAME: shoal local exited during startup" >&2
        shoal_log
        exit 1
    fi
    sleep 0.1
done
if ((!shoal_ready)); then
    echo "$BENCH_NAME: shoal local did not print ready in 40 s" >&2
    shoal_log
    exit 1
fi

echo "redis-server $(redis-server --version | grep -o 'v=[^ ]*') cluster ($NODES masters," \
    "$REDIS_REPLICAS replicas each) on ports ${redis_ports[*]}, shoal cluster (R=$REPLICAS," \
    "fsync $FSYNC) on ports $shoal_base..$((shoal_base + NODES - 1));" \
    "$ROUNDS rounds, $REQUESTS requests, $CLIENTS clients${THREADS:+, $THREADS client threads}" >&2

bench_args=(--cluster -h 127.0.0.1 -c "$CLIENTS" -n "$REQUESTS" -t "$TESTS" --csv)
if [[ -n $THREADS ]]; then bench_args+=(--threads "$THREADS"); fi

# check_alive: fails if a redis-server, `shoal local` or a shoal node died.
check_alive() {
    local pid
    for pid in "${redis_pids[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$BENCH_NAME: a redis-server (pid $pid) died; logs:" >&2
            tail -n 20 "$work"/redis/redis-*.log >&2
            exit 1
        fi
    done
    if ! kill -0 "$shoal_pid" 2>/dev/null || grep -q '^node [0-9]* exited' "$work/shoal-local.out"; then
        echo "$BENCH_NAME: shoal died" >&2
        shoal_log
        exit 1
    fi
}

# check_keys NAME PORT...: fails unless every PORT has at least one key.
check_keys() {
    local name=$1 port size
    shift
    for port in "$@"; do
        size=$(redis-cli -p "$port" DBSIZE 2>&1) || true
        if ! [[ $size =~ ^[0-9]+$ ]] || ((size == 0)); then
            bench_die "$name node 127.0.0.1:$port holds no keys after the benchmark" \
                "(DBSIZE: $size): its SETs must have failed"
        fi
    done
}
shoal_ports=()
for ((i = 0; i < NODES; i++)); do shoal_ports+=($((shoal_base + i))); done

# --- benchmark -----------------------------------------------------------------

# One line per measurement: server test pipeline rps p50_ms p99_ms
results=$work/results.txt
: >"$results"

for ((round = 1; round <= ROUNDS; round++)); do
    for pipeline in "${PIPELINES[@]}"; do
        for server in redis shoal; do
            if [[ $server == redis ]]; then port=${redis_ports[0]}; else port=$shoal_base; fi
            echo "round $round/$ROUNDS: $server -P $pipeline" >&2
            out=$work/bench.out
            err=$work/bench.err
            status=0
            # In the background so that a SIGINT/SIGTERM to this script is
            # handled at once (bash runs traps only between foreground
            # commands); cleanup stops it.
            timeout "$BENCH_TIMEOUT" redis-benchmark "${bench_args[@]}" -p "$port" -P "$pipeline" \
                >"$out" 2>"$err" &
            bench_pid=$!
            wait "$bench_pid" || status=$?
            bench_pid=
            rows=$(parse_benchmark_csv "$server" "$pipeline" <"$out")
            if ((status != 0)) || [[ -z $rows || $(wc -l <<<"$rows") -ne 2 ]]; then
                echo "$BENCH_NAME: redis-benchmark --cluster against $server (port $port," \
                    "-P $pipeline) failed (exit status $status); stdout:" >&2
                cat "$out" >&2
                echo "--- stderr" >&2
                cat "$err" >&2
                exit 1
            fi
            if [[ -s $err ]]; then
                echo "$BENCH_NAME: redis-benchmark wrote to stderr against $server (-P $pipeline):" >&2
                sed 's/^/    /' "$err" >&2
            fi
            printf '%s\n' "$rows" >>"$results"
            check_alive
            if [[ $server == redis ]]; then
                check_keys redis "${redis_ports[@]:0:NODES}"
            else
                check_keys shoal "${shoal_ports[@]}"
            fi
        done
    done
done

echo
print_medians "$results" p50p99
echo
for port in "${shoal_ports[@]}"; do
    wal=$(redis-cli -p "$port" INFO replication | tr -d '\r' | grep '^wal_' | tr '\n' ' ')
    echo "shoal 127.0.0.1:$port WAL: $wal"
done
