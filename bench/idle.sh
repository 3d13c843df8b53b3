#!/usr/bin/env bash
# What idle shard groups cost: 3 shoal nodes, SHARDS shards per node, 3
# replicas each (so 3 x SHARDS groups per node, plus the metadata group),
# no clients. Measured twice in one run, hibernation off
# (--hibernate-after-ms 0) and on (the default): each node's CPU time
# (user + system, /proc) over MEASURE_S seconds once every group has a
# leader (and, with hibernation, once every group is asleep). Prints % of
# one core per node (median of the three) and CPU microseconds per group
# per second, and how long the groups took to go quiet.
#
# Environment: SHARDS (default 334: about 1,000 groups per node),
# MEASURE_S (default 20). Free 127.0.0.1 ports; data in a temporary dir.
set -euo pipefail
BENCH_NAME=idle
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
require_tools python3 cargo redis-cli

SHARDS=${SHARDS:-334}
MEASURE_S=${MEASURE_S:-20}
build_shoal "$root"
work=$(mktemp -d)
pids=()
cleanup() {
    stop_pids 5 "${pids[@]}"
    rm -rf "$work"
}
trap cleanup EXIT

# run LABEL HIBERNATE_AFTER_MS: one measurement; prints a result line.
run() {
    local label=$1 after=$2 base spec i
    base=$(free_port_block 3)
    spec="1=127.0.0.1:$base,2=127.0.0.1:$((base + 1)),3=127.0.0.1:$((base + 2))"
    pids=()
    for i in 1 2 3; do
        "$shoal_bin" server --id "$i" --initial-cluster "$spec" --shards "$SHARDS" --replicas 3 --balance off \
            --hibernate-after-ms "$after" --dir "$work/$label-n$i" --log-level warn 2>"$work/$label-n$i.log" &
        pids+=($!)
    done
    for i in 1 2 3; do
        wait_ping "node $i" $((base + i - 1)) "${pids[$((i - 1))]}" "$work/$label-n$i.log"
    done
    python3 - "$label" "$base" "$after" "$MEASURE_S" "${pids[@]}" <<'PY'
import os, statistics, subprocess, sys, time

label, base, after, measure = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
pids = [int(p) for p in sys.argv[5:]]
ports = [base, base + 1, base + 2]

def groups(port):
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "replication"], capture_output=True, text=True).stdout
    rows = [l for l in out.splitlines() if l.startswith("group") or l.startswith("meta:")]
    fields = [dict(kv.split("=", 1) for kv in l.split(":", 1)[1].split(",")) for l in rows]
    return fields

def cpu(pid):
    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

started = time.time()
deadline = started + 600
while True:
    seen = [groups(p) for p in ports]
    led = all(g["leader"] != "-" for node in seen for g in node)
    quiet = all(g.get("asleep") == "1" for node in seen for g in node)
    if led and (after == 0 or quiet):
        break
    if time.time() > deadline:
        sys.exit(f"{label}: groups not settled in 600 s")
    time.sleep(1)
settled = time.time() - started
if after == 0:
    time.sleep(5)  # elections over, nothing but heartbeats left
count = len(seen[0])
before = [cpu(p) for p in pids]
time.sleep(measure)
used = [(cpu(p) - b) / measure for p, b in zip(pids, before)]
median = statistics.median(used)
print(f"{label:<13} groups/node {count:>5}  settled in {settled:6.1f} s  cpu/node {median * 100:6.2f}% of a core "
      f"(nodes: {', '.join(f'{u * 100:.2f}%' for u in used)})  {median * 1e6 / count:8.1f} us/s per group")
PY
    stop_pids 10 "${pids[@]}"
    pids=()
}

echo "3 nodes, $SHARDS shards per node, 3 replicas; ${MEASURE_S} s of idle per measurement"
run never-quiet 0
run quiet 2000
