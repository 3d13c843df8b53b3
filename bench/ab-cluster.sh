#!/usr/bin/env bash
# Two shoal builds side by side: a 3-node cluster of each in turn (ROUNDS
# alternating rounds), redis-benchmark --cluster SET and GET against it,
# then the median requests per second of each and the ratio NEW/OLD.
# For checking that a change did not slow the serving path.
#
#   bench/ab-cluster.sh OLD_SHOAL_BINARY NEW_SHOAL_BINARY
#
# Environment: ROUNDS (3), REQUESTS (200000), CLIENTS (50), PIPELINE (1).
set -euo pipefail
BENCH_NAME=ab-cluster
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
require_tools python3 redis-cli redis-benchmark
[[ $# -eq 2 ]] || bench_die "usage: $0 OLD_SHOAL_BINARY NEW_SHOAL_BINARY"
old=$1 new=$2
ROUNDS=${ROUNDS:-3} REQUESTS=${REQUESTS:-200000} CLIENTS=${CLIENTS:-50} PIPELINE=${PIPELINE:-1}
work=$(mktemp -d)
pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

# run BIN LABEL: one round on a fresh cluster; appends "LABEL TEST RPS" lines.
run() {
    local bin=$1 label=$2 base dir i
    base=$(free_port_block 3)
    dir=$(mktemp -d -p "$work")
    local spec="1=127.0.0.1:$base,2=127.0.0.1:$((base + 1)),3=127.0.0.1:$((base + 2))"
    for i in 1 2 3; do
        "$bin" server --id "$i" --initial-cluster "$spec" --dir "$dir/n$i" --log-level warn 2>"$dir/n$i.log" &
        pids+=($!)
        wait_ping "$label node $i" $((base + i - 1)) "${pids[-1]}" "$dir/n$i.log"
    done
    for ((i = 0; i < 100; i++)); do
        [[ $(redis-cli -p "$base" cluster info | tr -d '\r' | grep -c '^cluster_state:ok') == 1 ]] && break
        sleep 0.1
    done
    redis-benchmark --cluster -p "$base" -t set,get -r 100000 -n "$REQUESTS" -c "$CLIENTS" -P "$PIPELINE" -q 2>/dev/null |
        tr '\r' '\n' | grep -E '^(SET|GET): [0-9.]+ requests per second' |
        sed -E "s/^(SET|GET): ([0-9.]+).*/$label \1 \2/" >>"$work/results"
    stop_all
}

for ((round = 1; round <= ROUNDS; round++)); do
    run "$old" old
    run "$new" new
done
python3 - "$work/results" <<'EOF'
import collections, statistics, sys
rates = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, test, rps = line.split()
    rates[(label, test)].append(float(rps))
for test in ("SET", "GET"):
    old, new = statistics.median(rates[("old", test)]), statistics.median(rates[("new", test)])
    print(f"{test}: old {old:.0f}/s, new {new:.0f}/s (medians of {len(rates[('new', test)])}): new/old {new / old:.2f}")
EOF
