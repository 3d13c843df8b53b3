#!/usr/bin/env bash
# A split under load: 3 shoal nodes (one shard each, 3 replicas, --balance
# off, no automatic splits), shard 0 loaded with KEYS keys of VALUE_BYTES
# bytes (default 1,000,000 x 100 B, about 100 MB, spread over its slots);
# then redis-benchmark --cluster writes (SET, 50 clients, random keys over
# every slot) while shard 0 splits at the slot halving its keys. Prints how
# long the split took (the command, to the map routing the new shard), the
# write rate before, during and just after it (medians of redis-benchmark's
# per-interval rates) and their ratios, and the rate timeline around it.
#
# Environment: KEYS, VALUE_BYTES, STEADY_S (seconds of writes before the
# split, default 6). Free 127.0.0.1 ports; data in a temporary dir.
set -euo pipefail
BENCH_NAME=split
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
require_tools python3 cargo redis-cli redis-benchmark

KEYS=${KEYS:-1000000}
VALUE_BYTES=${VALUE_BYTES:-100}
STEADY_S=${STEADY_S:-6}
build_shoal "$root"
base=$(free_port_block 3)
work=$(mktemp -d)
pids=()
cleanup() {
    stop_pids 5 "${pids[@]}"
    rm -rf "$work"
}
trap cleanup EXIT

spec="1=127.0.0.1:$base,2=127.0.0.1:$((base + 1)),3=127.0.0.1:$((base + 2))"
for i in 1 2 3; do
    "$shoal_bin" server --id "$i" --initial-cluster "$spec" --shards 1 --replicas 3 --balance off \
        --shard-max-keys 0 --shard-max-bytes 0 --dir "$work/n$i" --log-level warn 2>"$work/n$i.log" &
    pids+=($!)
done
for i in 1 2 3; do
    wait_ping "node $i" $((base + i - 1)) "${pids[$((i - 1))]}" "$work/n$i.log"
done

python3 - "$base" "$KEYS" "$VALUE_BYTES" "$STEADY_S" <<'PY'
import json, re, statistics, subprocess, sys, threading, time

base, keys, value_bytes, steady_s = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ports = [base, base + 1, base + 2]

def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout.strip()

def cluster_map():
    return json.loads(cli(base, "CLUSTER", "SHOAL", "MAP"))

def crc16(data):
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xffff if crc & 0x8000 else (crc << 1) & 0xffff
    return crc

while True:
    try:
        m = cluster_map()
        break
    except Exception:
        time.sleep(0.2)
end = m["shards"]["0"]["slots"]["end"]
# Shard 0's keys: one hash tag per slot of the shard, keys spread over them.
tags, t = [], 0
while len(tags) <= end:
    tag = "t%d" % t
    if crc16(tag.encode()) % 16384 <= end:
        tags.append(tag)
    t += 1
# Shard 0's leader, once elected (a key of its first tag answers OK there).
leader = None
while leader is None:
    leader = next((p for p in ports if cli(p, "SET", "{%s}probe" % tags[0], "x") == "OK"), None)
    time.sleep(0.1)
value = "v" * value_bytes
t = time.time()
with subprocess.Popen(["redis-cli", "-p", str(leader), "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL) as pipe:
    chunk = []
    for i in range(keys):
        key = "{%s}:%d" % (tags[i % len(tags)], i)
        chunk.append("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
        if len(chunk) == 10000:
            pipe.stdin.write("".join(chunk).encode())
            chunk = []
    pipe.stdin.write("".join(chunk).encode())
held = int(cli(leader, "DBSIZE"))
print(f"loaded {keys} keys of {value_bytes} B into shard 0 (slots 0-{end}) in {time.time() - t:.1f} s; its leader holds {held} keys")

bench = subprocess.Popen(
    ["redis-benchmark", "--cluster", "-p", str(base), "-t", "set", "-r", "100000", "-d", "100", "-c", "50", "-n", "100000000"],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
samples = []
def read_rates():
    buf = b""
    while chunk := bench.stdout.read1(4096):
        *lines, buf = re.split(rb"[\r\n]", buf + chunk)
        for line in lines:
            hit = re.search(rb"rps=([0-9.]+)", line)
            if hit:
                samples.append((time.time(), float(hit.group(1))))
threading.Thread(target=read_rates, daemon=True).start()
time.sleep(steady_s)
t_split = time.time()
said = cli(base + 1, "CLUSTER", "SHOAL", "SPLIT", "0")
while True:
    mm = cluster_map()
    if not mm["splits"] and len(mm["shards"]) == 4:
        break
    time.sleep(0.01)
t_done = time.time()
time.sleep(3)
bench.kill()
print(said)
timeline = " ".join(f"{t - t_split:+.1f}s:{r / 1000:.1f}k" for t, r in samples if t_split - 2 <= t <= t_done + 2)
print(f"rate around the split (time from its start: rate): {timeline}")
print(f"split of shard 0 ({keys} keys): {(t_done - t_split) * 1000:.0f} ms from the command to the map routing the new shard")
before = [r for t, r in samples if t < t_split and r > 0]
during = [r for t, r in samples if t_split <= t <= t_done + 0.5 and r > 0]
after = [r for t, r in samples if t_done + 0.5 < t and r > 0]
if before and during:
    b, d = statistics.median(before), statistics.median(during)
    a = statistics.median(after) if after else float("nan")
    print(f"SET rate, median per interval: before {b:.0f}/s, during the split (+0.5 s) {d:.0f}/s ({d / b:.2f} of steady, "
          f"{len(during)} samples), after {a:.0f}/s ({a / b:.2f})")
PY
