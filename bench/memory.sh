#!/usr/bin/env bash
# Memory per dataset, shoal against redis-server, in one run.
#
# For each dataset, starts a fresh redis-server (no persistence) and a fresh
# standalone `shoal server` (release build), loads the same commands into
# each with `redis-cli --pipe`, waits for the server to settle, and prints
# the growth of its resident set (RSS after loading less RSS when empty),
# INFO used_memory, the shoal/redis ratio of the growth, and how much of
# the growth is left after FLUSHALL (`left`: what the server keeps that is
# not the keys: shoal's log window and allocator pages, Redis's allocator
# pages). Datasets:
#   strings      N string keys (16-byte keys, 64-byte values)
#   hash         one hash of N fields (16-byte fields, 16-byte values)
#   zset         one sorted set of N members (16-byte members)
#   small-hashes N/10 hashes of 10 fields (8-byte fields, 8-byte values)
#
# Environment: N (default 1000000), DATASETS (default all four, space
# separated), SHOAL_FLAGS (extra `shoal server` flags), SETTLE_S (seconds
# to wait after loading before measuring, default 3: shoal snapshots and
# purges its log in the background).
# Needs redis-server, redis-cli and python3 on PATH.
set -euo pipefail

N=${N:-1000000}
DATASETS=${DATASETS:-strings hash zset small-hashes}
SETTLE_S=${SETTLE_S:-3}

BENCH_NAME=memory
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"

require_tools redis-server redis-cli python3
build_shoal "$root"

work=$(mktemp -d)
pid=
cleanup() {
    # shellcheck disable=SC2086 # an empty pid vanishes
    stop_pids 30 $pid
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_bytes() { awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$1/status"; }
used_memory() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}'; }

# commands DATASET: the dataset's commands in RESP, on stdout.
commands() {
    python3 - "$1" "$N" <<'EOF'
import sys
dataset, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
if dataset == "strings":
    for i in range(n):
        cmd(b"SET", b"k:%014d" % i, b"v" * 64)
elif dataset == "hash":
    for i in range(0, n, 100):
        args = [b"HSET", b"bighash"]
        for j in range(i, min(i + 100, n)):
            args += [b"f:%014d" % j, b"value:%010d" % j]
        cmd(*args)
elif dataset == "zset":
    for i in range(0, n, 100):
        args = [b"ZADD", b"bigzset"]
        for j in range(i, min(i + 100, n)):
            args += [b"%d" % j, b"m:%014d" % j]
        cmd(*args)
elif dataset == "small-hashes":
    for i in range(n // 10):
        args = [b"HSET", b"h:%010d" % i]
        for j in range(10):
            args += [b"field%03d" % j, b"val%05d" % j]
        cmd(*args)
else:
    sys.exit("unknown dataset " + dataset)
EOF
}

# measure SERVER DATASET: prints "rss_growth used_memory left" for one
# fresh server.
measure() {
    local server=$1 dataset=$2 port before after used flushed
    port=$(free_port)
    if [[ $server == redis ]]; then
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
            >"$work/redis.log" 2>&1 &
        pid=$!
        wait_ping redis "$port" "$pid" "$work/redis.log"
    else
        rm -rf "$work/shoal-data" && mkdir "$work/shoal-data"
        # shellcheck disable=SC2086 # SHOAL_FLAGS is a list of words
        "$shoal_bin" server --port "$port" --dir "$work/shoal-data" --log-level warn ${SHOAL_FLAGS:-} \
            >"$work/shoal.log" 2>&1 &
        pid=$!
        wait_ping shoal "$port" "$pid" "$work/shoal.log"
    fi
    before=$(rss_bytes "$pid")
    commands "$dataset" | redis-cli -p "$port" --pipe >"$work/pipe.log" 2>&1 \
        || bench_die "$server: loading $dataset failed: $(tail -3 "$work/pipe.log")"
    grep -q "errors: 0" "$work/pipe.log" || bench_die "$server: errors loading $dataset: $(tail -3 "$work/pipe.log")"
    # Measuring, not waiting for a condition: background snapshots settle.
    sleep "$SETTLE_S"
    after=$(rss_bytes "$pid")
    used=$(used_memory "$port")
    redis-cli -p "$port" flushall >/dev/null
    # Measuring, not waiting for a condition, as above.
    sleep "$SETTLE_S"
    flushed=$(rss_bytes "$pid")
    echo "$((after - before)) $used $((flushed - before))"
    stop_pids 30 "$pid"
    pid=
}

printf '%-13s %12s %12s %12s %12s %12s %12s %7s\n' \
    dataset redis_rss+ shoal_rss+ redis_used shoal_used redis_left shoal_left rss_x
for dataset in $DATASETS; do
    echo "loading $dataset (N=$N) into redis-server..." >&2
    read -r redis_growth redis_used redis_left < <(measure redis "$dataset")
    echo "loading $dataset (N=$N) into shoal..." >&2
    read -r shoal_growth shoal_used shoal_left < <(measure shoal "$dataset")
    ratio=$(python3 -c "print(f'{$shoal_growth / max($redis_growth, 1):.2f}')")
    printf '%-13s %12s %12s %12s %12s %12s %12s %7s\n' "$dataset" "$redis_growth" "$shoal_growth" \
        "$redis_used" "$shoal_used" "$redis_left" "$shoal_left" "$ratio"
done
