#!/usr/bin/env python3
"""A redis-py RedisCluster writer that runs while the cluster changes shape.

Run as:  python3 tests/python/elastic_writer.py --port P --seconds S --prefix X

Sets unique keys X:0, X:1, ... through RedisCluster (which follows MOVED,
retries TRYAGAIN and re-reads CLUSTER SLOTS) for S seconds, then reads
every acknowledged key back. A write whose connection failed has an unknown
outcome and is not counted; any other error is raised (exit non-zero).
Prints "ok <acknowledged>" when every acknowledged write reads back.
"""

import argparse
import time
import warnings

import redis
from redis.cluster import RedisCluster

warnings.filterwarnings("ignore", category=DeprecationWarning)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args()
    rc = RedisCluster(host="127.0.0.1", port=args.port, cluster_error_retry_attempts=30)
    acked = []
    i = 0
    end = time.time() + args.seconds
    while time.time() < end:
        key = f"{args.prefix}:{i}"
        i += 1
        try:
            if rc.set(key, key):
                acked.append(key)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            pass  # outcome unknown: not counted either way
    missing = [k for k in acked if rc.get(k) != k.encode()]
    assert acked, "no write was acknowledged"
    assert not missing, f"{len(missing)} acknowledged writes missing, e.g. {missing[:5]}"
    print(f"ok {len(acked)}")


if __name__ == "__main__":
    main()
