#!/usr/bin/env bash
# Failover time of a 3-node shoal cluster (every shard a Raft group of 3):
# for TRIALS trials each of SIGKILL and SIGSTOP of the node leading one
# key's shard, how long after the fault the first write sent after it is
# acknowledged, through shoal's cluster client (which follows -MOVED,
# retries -TRYAGAIN and gives up on a silent node after REPLY_TIMEOUT_MS).
# Prints each trial, then p50 / p99 / max per fault as a markdown table.
#
# Environment: TRIALS (default 10), REPLY_TIMEOUT_MS (250), SERVER_FLAGS
# (extra `shoal server` flags, e.g. "--election-timeout-ms 200").
# Runs on 127.0.0.1 ports it finds free; data under a temporary directory.
set -euo pipefail
BENCH_NAME=failover
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
require_tools python3 cargo

TRIALS=${TRIALS:-10}
REPLY_TIMEOUT_MS=${REPLY_TIMEOUT_MS:-250}
build_shoal "$root"
(cd "$root" && cargo build --release --quiet --example failover)
base=$(free_port_block 3)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$root/target/release/examples/failover" "$shoal_bin" "$base" "$work/data" "$TRIALS" "$REPLY_TIMEOUT_MS" ${SERVER_FLAGS:-}
