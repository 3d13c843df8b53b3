#!/usr/bin/env bash
# Compares shoal with redis-server using redis-benchmark.
#
# Builds shoal in release mode, starts `redis-server` (no persistence) and
# `shoal server` on free ports, then runs ROUNDS rounds, alternating redis
# and shoal, of `redis-benchmark -t set,get` with pipeline 1 and 16. Prints,
# per test and pipeline, the median requests/s and median p50 latency of
# each server and the shoal/redis ratios, then each server's CPU time per
# request (steadier than requests/s when the machine is shared).
#
# Environment: ROUNDS (default 3), REQUESTS (100000), CLIENTS (50),
# SHOAL_FLAGS (extra `shoal server` flags, e.g. "--threads 1": on a 2-core
# machine redis-benchmark needs one core, and redis-server uses one thread),
# REDIS_FLAGS (default "--save '' --appendonly no"; shoal fsyncs every write
# before answering, so "--appendonly yes --appendfsync always" is Redis at
# the same durability).
# Needs redis-server, redis-benchmark, redis-cli and python3 on PATH.
# Shared helpers live in bench/lib.sh.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
TESTS=set,get
PIPELINES=(1 16)

BENCH_NAME=compare-redis
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

require_tools redis-server redis-benchmark redis-cli python3
build_shoal "$root"

work=$(mktemp -d)
redis_pid=
shoal_pid=
cleanup() {
    # shellcheck disable=SC2086 # empty pids vanish
    stop_pids 30 $redis_pid $shoal_pid
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

redis_port=$(free_port)
# shellcheck disable=SC2086 # REDIS_FLAGS is a list of words
redis-server --port "$redis_port" --bind 127.0.0.1 ${REDIS_FLAGS:---save '' --appendonly no} \
    --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
wait_ping redis "$redis_port" "$redis_pid" "$work/redis.log"

shoal_port=$(free_port)
while [[ $shoal_port == "$redis_port" ]]; do shoal_port=$(free_port); done
mkdir "$work/shoal-data"
# shellcheck disable=SC2086 # SHOAL_FLAGS is a list of words
"$shoal_bin" server --port "$shoal_port" --dir "$work/shoal-data" --log-level warn ${SHOAL_FLAGS:-} \
    >"$work/shoal.log" 2>&1 &
shoal_pid=$!
wait_ping shoal "$shoal_port" "$shoal_pid" "$work/shoal.log"

echo "redis-server $(redis-server --version | grep -o 'v=[^ ]*') on port $redis_port," \
    "shoal on port $shoal_port; $ROUNDS rounds, $REQUESTS requests, $CLIENTS clients" >&2

# One line per measurement: server test pipeline rps p50_ms p99_ms
results=$work/results.txt
: >"$results"
# One line per run: server pipeline cpu_ticks (the server's user+sys time).
cpu=$work/cpu.txt
: >"$cpu"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for ((round = 1; round <= ROUNDS; round++)); do
    for pipeline in "${PIPELINES[@]}"; do
        for server in redis shoal; do
            if [[ $server == redis ]]; then port=$redis_port pid=$redis_pid; else port=$shoal_port pid=$shoal_pid; fi
            echo "round $round/$ROUNDS: $server -P $pipeline" >&2
            before=$(cpu_ticks "$pid")
            redis-benchmark -p "$port" -c "$CLIENTS" -n "$REQUESTS" -t "$TESTS" \
                -P "$pipeline" --csv | parse_benchmark_csv "$server" "$pipeline" >>"$results"
            echo "$server $pipeline $(($(cpu_ticks "$pid") - before))" >>"$cpu"
            if ! kill -0 "$shoal_pid" 2>/dev/null; then
                echo "compare-redis: shoal died; log:" >&2
                cat "$work/shoal.log" >&2
                exit 1
            fi
        done
    done
done

echo
print_medians "$results" p50

# Server CPU per request: far steadier than requests/s on a shared machine,
# because it does not depend on how much CPU the client got.
tests_per_run=$(awk -F, '{print NF}' <<<"$TESTS")
awk -v hz="$(getconf CLK_TCK)" -v per_run="$((REQUESTS * tests_per_run))" '
    { ticks[$1 " " $2] += $3; runs[$1 " " $2]++ }
    END {
        printf "\n%-8s %16s %16s %8s\n", "pipeline", "redis_us_per_req", "shoal_us_per_req", "ratio"
        for (p = 1; p <= 16; p *= 16) {
            r = ticks["redis " p] / hz * 1e6 / (runs["redis " p] * per_run)
            s = ticks["shoal " p] / hz * 1e6 / (runs["shoal " p] * per_run)
            printf "%-8s %16.2f %16.2f %8.2f\n", p, r, s, (r > 0 ? s / r : 0)
        }
        print "(server CPU time, user + system, per request, over all rounds; ratio is shoal/redis: < 1 means shoal used less CPU)"
    }' "$cpu"

