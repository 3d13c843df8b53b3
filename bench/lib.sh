# Shell helpers shared by the bench/ scripts. Source it; do not run it.
#
# The sourcing script sets BENCH_NAME (the prefix of error messages) first.
# Needs python3 on PATH (free ports, medians).

: "${BENCH_NAME:=bench}"

# bench_die MESSAGE...: prints "BENCH_NAME: MESSAGE" on stderr and exits 1.
bench_die() {
    echo "$BENCH_NAME: $*" >&2
    exit 1
}

# require_tools TOOL...: exits unless every TOOL is on PATH.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || bench_die "$tool is not installed"
    done
}

# build_shoal ROOT: builds shoal in release mode; sets shoal_bin.
build_shoal() {
    echo "building shoal (release)..." >&2
    (cd "$1" && cargo build --release --quiet)
    shoal_bin=$1/target/release/shoal
}

# free_port: prints a TCP port on 127.0.0.1 that is free right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# free_port_block COUNT [TAKEN...]: prints a port B such that B..B+COUNT-1
# and B+10000..B+10000+COUNT-1 (the cluster bus / peer ports) are all free
# on 127.0.0.1 and none of them is one of the TAKEN ports. B is drawn from
# 10000..22000, so every port stays below Linux's ephemeral range (32768+),
# where an outgoing connection could grab it before the server binds.
free_port_block() {
    python3 - "$@" <<'EOF'
import random, socket, sys

count = int(sys.argv[1])
taken = {int(p) for p in sys.argv[2:]}


def free(port):
    s = socket.socket()  # no SO_REUSEADDR: a TIME_WAIT socket counts as taken
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


for _ in range(1000):
    base = random.randrange(10000, 22000)
    ports = [p + off for p in range(base, base + count) for off in (0, 10000)]
    if not taken.intersection(ports) and all(free(p) for p in ports):
        print(base)
        sys.exit(0)
sys.exit("no free block of %d ports (and +10000) found" % count)
EOF
}

# wait_ping NAME PORT PID LOG: waits up to 20 s for PONG on PORT, failing
# (and printing LOG) if PID dies first.
wait_ping() {
    local name=$1 port=$2 pid=$3 log=$4 i
    for ((i = 0; i < 200; i++)); do
        if [[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]]; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$BENCH_NAME: $name exited during startup; log:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    bench_die "$name did not answer PING on port $port"
}

# stop_pids GRACE_SECONDS PID...: SIGTERM to every PID, up to GRACE_SECONDS
# for them to exit, SIGKILL to whoever is left, then reaps those that are
# children of this shell. Never fails.
stop_pids() {
    local grace=$1 pid i alive
    shift
    [[ $# -gt 0 ]] || return 0
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < grace * 10; i++)); do
        alive=0
        for pid in "$@"; do
            if kill -0 "$pid" 2>/dev/null; then alive=1; break; fi
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "$@"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        wait "$pid" 2>/dev/null || true
    done
}

# parse_benchmark_csv SERVER PIPELINE: reads the stdout of
# `redis-benchmark --csv` and prints one tab-separated line per test:
# SERVER TEST PIPELINE RPS P50_MS P99_MS ("-" for a column the csv lacks;
# versions before 7 only have "test","rps"). Anything before the csv header
# (the "Cluster has N master nodes" / "Master i: ..." lines of --cluster,
# progress lines ending in a carriage return) and any line that is not a
# csv row is ignored.
parse_benchmark_csv() {
    awk -v server="$1" -v pipeline="$2" '
        function unquote(s) { gsub(/^"|"$/, "", s); return s }
        {
            # A progress line may share a physical line with the csv row,
            # separated by carriage returns: only the last piece counts.
            n = split($0, pieces, "\r")
            line = pieces[n]
            if (line == "" && n > 1) line = pieces[n - 1]
            if (line ~ /^"test","/) {
                cols = split(line, names, "\",\"")
                p50 = p99 = 0
                for (i = 1; i <= cols; i++) {
                    name = unquote(names[i])
                    if (name == "p50_latency_ms") p50 = i
                    if (name == "p99_latency_ms") p99 = i
                }
                header = 1
                next
            }
            if (!header || line !~ /^"[^"]+","[0-9.]+"/) next
            split(line, f, "\",\"")
            for (i in f) f[i] = unquote(f[i])
            printf "%s\t%s\t%s\t%s\t%s\t%s\n", server, f[1], pipeline, f[2],
                (p50 ? f[p50] : "-"), (p99 ? f[p99] : "-")
        }'
}

# print_medians RESULTS STYLE: prints the table of medians of the lines
# parse_benchmark_csv wrote to RESULTS, for servers "redis" and "shoal".
# STYLE "p50" prints rps and p50 with their ratios; STYLE "p50p99" prints
# rps with its ratio, then p50 and p99 of each server.
print_medians() {
    python3 - "$1" "$2" <<'EOF'
import statistics
import sys

path, style = sys.argv[1], sys.argv[2]
rows = {}
for line in open(path):
    server, test, pipeline, rps, p50, p99 = line.rstrip("\n").split("\t")
    cell = rows.setdefault((test, int(pipeline)),
                           {"redis": ([], [], []), "shoal": ([], [], [])})
    cell[server][0].append(float(rps))
    if p50 != "-":
        cell[server][1].append(float(p50))
    if p99 != "-":
        cell[server][2].append(float(p99))


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def ratio(a, b):
    return a / b if b else float("nan")


order = sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0] != "SET"))
if style == "p50":
    header = ("test", "pipeline", "redis_rps", "shoal_rps", "ratio",
              "redis_p50_ms", "shoal_p50_ms", "p50_ratio")
    print("{:<6} {:>8} {:>12} {:>12} {:>6} {:>12} {:>12} {:>9}".format(*header))
    for (test, pipeline), cell in order:
        r_rps, s_rps = med(cell["redis"][0]), med(cell["shoal"][0])
        r_p50, s_p50 = med(cell["redis"][1]), med(cell["shoal"][1])
        print("{:<6} {:>8} {:>12.0f} {:>12.0f} {:>6.2f} {:>12.3f} {:>12.3f} {:>9.2f}".format(
            test, pipeline, r_rps, s_rps, ratio(s_rps, r_rps), r_p50, s_p50, ratio(s_p50, r_p50)))
    n = len(next(iter(rows.values()))["redis"][0]) if rows else 0
    print(f"(medians of {n} rounds; ratios are shoal/redis: ratio > 1 means shoal served more requests/s, p50_ratio > 1 means shoal's median latency was higher)")
elif style == "p50p99":
    header = ("test", "pipeline", "redis_rps", "shoal_rps", "ratio",
              "redis_p50_ms", "shoal_p50_ms", "redis_p99_ms", "shoal_p99_ms")
    print("{:<6} {:>8} {:>12} {:>12} {:>6} {:>12} {:>12} {:>12} {:>12}".format(*header))
    for (test, pipeline), cell in order:
        r, s = cell["redis"], cell["shoal"]
        r_rps, s_rps = med(r[0]), med(s[0])
        print("{:<6} {:>8} {:>12.0f} {:>12.0f} {:>6.2f} {:>12.3f} {:>12.3f} {:>12.3f} {:>12.3f}".format(
            test, pipeline, r_rps, s_rps, ratio(s_rps, r_rps),
            med(r[1]), med(s[1]), med(r[2]), med(s[2])))
    n = len(next(iter(rows.values()))["redis"][0]) if rows else 0
    print(f"(medians of {n} rounds; ratio is shoal/redis requests/s: > 1 means shoal served more)")
else:
    sys.exit(f"print_medians: unknown style {style!r}")
EOF
}
