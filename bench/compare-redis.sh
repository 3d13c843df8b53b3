#!/usr/bin/env bash
# Compares shoal with redis-server using redis-benchmark.
#
# Builds shoal in release mode, starts `redis-server` (no persistence) and
# `shoal server` on free ports, then runs ROUNDS rounds, alternating redis
# and shoal, of `redis-benchmark -t set,get` with pipeline 1 and 16. Prints,
# per test and pipeline, the median requests/s and median p50 latency of
# each server and the shoal/redis ratios.
#
# Environment: ROUNDS (default 3), REQUESTS (100000), CLIENTS (50).
# Needs redis-server, redis-benchmark, redis-cli and python3 on PATH.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
TESTS=set,get
PIPELINES=(1 16)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

for tool in redis-server redis-benchmark redis-cli python3; do
    command -v "$tool" >/dev/null || { echo "compare-redis: $tool is not installed" >&2; exit 1; }
done

echo "building shoal (release)..." >&2
cargo build --release --quiet
shoal_bin=$root/target/release/shoal

work=$(mktemp -d)
redis_pid=
shoal_pid=
cleanup() {
    for pid in $redis_pid $shoal_pid; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $redis_pid $shoal_pid; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_ping NAME PORT PID: waits up to 20 s for PONG, failing if PID dies.
wait_ping() {
    local name=$1 port=$2 pid=$3 i
    for ((i = 0; i < 200; i++)); do
        if [[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]]; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "compare-redis: $name exited during startup; log:" >&2
            cat "$work/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "compare-redis: $name did not answer PING on port $port" >&2
    exit 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
wait_ping redis "$redis_port" "$redis_pid"

shoal_port=$(free_port)
while [[ $shoal_port == "$redis_port" ]]; do shoal_port=$(free_port); done
mkdir "$work/shoal-data"
"$shoal_bin" server --port "$shoal_port" --dir "$work/shoal-data" --log-level warn \
    >"$work/shoal.log" 2>&1 &
shoal_pid=$!
wait_ping shoal "$shoal_port" "$shoal_pid"

echo "redis-server $(redis-server --version | grep -o 'v=[^ ]*') on port $redis_port," \
    "shoal on port $shoal_port; $ROUNDS rounds, $REQUESTS requests, $CLIENTS clients" >&2

# One line per measurement: server test pipeline rps p50_ms
results=$work/results.txt
: >"$results"

for ((round = 1; round <= ROUNDS; round++)); do
    for pipeline in "${PIPELINES[@]}"; do
        for server in redis shoal; do
            if [[ $server == redis ]]; then port=$redis_port; else port=$shoal_port; fi
            echo "round $round/$ROUNDS: $server -P $pipeline" >&2
            csv=$(redis-benchmark -p "$port" -c "$CLIENTS" -n "$REQUESTS" -t "$TESTS" \
                -P "$pipeline" --csv)
            # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
            # (older versions only have "test","rps": p50 is then "-").
            awk -F'","' -v server="$server" -v pipeline="$pipeline" '
                NR == 1 {
                    p50 = 0
                    for (i = 1; i <= NF; i++) {
                        name = $i; gsub(/"/, "", name)
                        if (name == "p50_latency_ms") p50 = i
                    }
                    next
                }
                {
                    for (i = 1; i <= NF; i++) gsub(/"/, "", $i)
                    print server, $1, pipeline, $2, (p50 ? $p50 : "-")
                }' <<<"$csv" >>"$results"
            if ! kill -0 "$shoal_pid" 2>/dev/null; then
                echo "compare-redis: shoal died; log:" >&2
                cat "$work/shoal.log" >&2
                exit 1
            fi
        done
    done
done

echo
python3 - "$results" <<'EOF'
import statistics
import sys

rows = {}
for line in open(sys.argv[1]):
    server, test, pipeline, rps, p50 = line.split()
    cell = rows.setdefault((test, int(pipeline)), {"redis": ([], []), "shoal": ([], [])})
    cell[server][0].append(float(rps))
    if p50 != "-":
        cell[server][1].append(float(p50))


def med(xs):
    return statistics.median(xs) if xs else float("nan")


header = ("test", "pipeline", "redis_rps", "shoal_rps", "ratio",
          "redis_p50_ms", "shoal_p50_ms", "p50_ratio")
print("{:<6} {:>8} {:>12} {:>12} {:>6} {:>12} {:>12} {:>9}".format(*header))
for (test, pipeline), cell in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0] != "SET")):
    r_rps, s_rps = med(cell["redis"][0]), med(cell["shoal"][0])
    r_p50, s_p50 = med(cell["redis"][1]), med(cell["shoal"][1])
    print("{:<6} {:>8} {:>12.0f} {:>12.0f} {:>6.2f} {:>12.3f} {:>12.3f} {:>9.2f}".format(
        test, pipeline, r_rps, s_rps, s_rps / r_rps, r_p50, s_p50,
        s_p50 / r_p50 if r_p50 else float("nan")))
n = len(next(iter(rows.values()))["redis"][0]) if rows else 0
print(f"(medians of {n} rounds; ratios are shoal/redis: ratio > 1 means shoal served more requests/s, p50_ratio > 1 means shoal's median latency was higher)")
EOF
