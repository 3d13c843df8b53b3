#!/usr/bin/env bash
# A replica move under load: 3 shoal nodes (one shard each, 2 replicas,
# --balance off), one shard loaded with KEYS keys of VALUE_BYTES bytes
# (default 1,000,000 × 100 B, about 100 MB), a fourth node joined; then
# redis-benchmark --cluster writes (SET, 50 clients) while the loaded
# shard's replica moves to the new node. Prints how long the move took,
# the write rate before and during it (medians of redis-benchmark's
# per-interval rates) and their ratio, and how long a map change takes to
# reach every node.
#
# Environment: KEYS, VALUE_BYTES, STEADY_S (seconds of writes before the
# move, default 6). Runs on free 127.0.0.1 ports; data in a temporary dir.
set -euo pipefail
BENCH_NAME=move
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
require_tools python3 cargo redis-cli redis-benchmark

KEYS=${KEYS:-1000000}
VALUE_BYTES=${VALUE_BYTES:-100}
STEADY_S=${STEADY_S:-6}
build_shoal "$root"
base=$(free_port_block 4)
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

spec="1=127.0.0.1:$base,2=127.0.0.1:$((base + 1)),3=127.0.0.1:$((base + 2))"
for i in 1 2 3; do
    "$shoal_bin" server --id "$i" --initial-cluster "$spec" --shards 1 --replicas 2 --balance off \
        --dir "$work/n$i" --log-level warn 2>"$work/n$i.log" &
    pids+=($!)
    wait_ping "node $i" $((base + i - 1)) "${pids[-1]}" "$work/n$i.log"
done
"$shoal_bin" server --port $((base + 3)) --join "127.0.0.1:$base" --balance off \
    --dir "$work/n4" --log-level warn 2>"$work/n4.log" &
pids+=($!)
wait_ping "node 4" $((base + 3)) "${pids[-1]}" "$work/n4.log"

python3 - "$base" "$KEYS" "$VALUE_BYTES" "$STEADY_S" "$shoal_bin" <<'EOF'
import json, re, statistics, subprocess, sys, threading, time

base, keys, value_bytes, steady_s, shoal = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
ports = [base + i for i in range(4)]

def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout.strip()

def cluster_map():
    return json.loads(cli(base, "CLUSTER", "SHOAL", "MAP"))

# The loaded shard: the one owning the slot of "{m}"; writes go to its leader.
slot = int(cli(base, "CLUSTER", "KEYSLOT", "{m}"))
m = cluster_map()
shard = next(int(s) for s, info in m["shards"].items() if info["slots"]["start"] <= slot <= info["slots"]["end"])
leader = next(p for p in ports if not cli(p, "SET", "{m}:probe", "x").startswith("MOVED"))
value = "v" * value_bytes
t = time.time()
with subprocess.Popen(["redis-cli", "-p", str(leader), "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL) as pipe:
    chunk = []
    for i in range(keys):
        key = "{m}:%d" % i
        chunk.append("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
        if len(chunk) == 10000:
            pipe.stdin.write("".join(chunk).encode())
            chunk = []
    pipe.stdin.write("".join(chunk).encode())
print(f"loaded {keys} keys of {value_bytes} B into shard {shard} in {time.time() - t:.1f} s")
voters = [int(r) & 0xffffffff for r, role in m["shards"][str(shard)]["replicas"].items() if role == "Voter"]
leader_node = ports.index(leader) + 1
source = next(v for v in voters if v != leader_node)

bench = subprocess.Popen(
    ["redis-benchmark", "--cluster", "-p", str(base), "-t", "set", "-r", "100000", "-d", "100", "-c", "50", "-n", "100000000"],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
samples = []  # (time, rate)
def read_rates():
    # redis-benchmark rewrites its progress line (\r) a few times a second.
    buf = b""
    while chunk := bench.stdout.read1(4096):
        *lines, buf = re.split(rb"[\r\n]", buf + chunk)
        for line in lines:
            hit = re.search(rb"rps=([0-9.]+)", line)
            if hit:
                samples.append((time.time(), float(hit.group(1))))

reader = threading.Thread(target=read_rates, daemon=True)
reader.start()
time.sleep(steady_s)
t_move = time.time()
said = cli(base, "CLUSTER", "SHOAL", "MOVE-REPLICA", str(shard), str(source), "4")
while True:
    mm = cluster_map()
    if not mm["moves"] and any(int(r) & 0xffffffff == 4 for r in mm["shards"][str(shard)]["replicas"]):
        break
    time.sleep(0.05)
t_done = time.time()
time.sleep(2)
bench.kill()
before = [r for t, r in samples if t < t_move and r > 0]
during = [r for t, r in samples if t_move <= t <= t_done and r > 0]
print(f"{said}")
# The write rate around the move, one figure per redis-benchmark interval.
timeline = " ".join(f"{t - t_move:+.1f}s:{r / 1000:.1f}k" for t, r in samples if t_move - 2 <= t <= t_done + 1)
print(f"rate around the move (time from its start: rate): {timeline}")
print(f"move of shard {shard} (from node {source} to node 4): {t_done - t_move:.1f} s")
if before and during:
    b, d = statistics.median(before), statistics.median(during)
    print(f"SET rate, median per interval: before {b:.0f}/s ({len(before)} samples), during the move {d:.0f}/s ({len(during)} samples): {d / b:.2f} of steady")

# How long a map change takes to reach every node: a preferred-leader
# change committed, then every node's CLUSTER INFO polled for the epoch.
epochs = []
for trial in range(10):
    mm = cluster_map()
    target = next(int(r) & 0xffffffff for r, role in mm["shards"]["0"]["replicas"].items()
                  if role == "Voter" and int(r) != mm["shards"]["0"]["preferred_leader"])
    t = time.time()
    cli(base + 1, "CLUSTER", "SHOAL", "TRANSFER-LEADER", "0", str(target))
    want = cluster_map()["epoch"]
    seen = set()
    while len(seen) < 4:
        for i, p in enumerate(ports):
            info = cli(p, "CLUSTER", "INFO")
            if int(re.search(r"cluster_current_epoch:(\d+)", info).group(1)) >= want:
                seen.add(i)
        if time.time() - t > 10:
            break
    epochs.append(time.time() - t)
print(f"map change to every node (commit + follow): median {statistics.median(epochs) * 1000:.0f} ms, max {max(epochs) * 1000:.0f} ms over {len(epochs)} changes")
EOF
