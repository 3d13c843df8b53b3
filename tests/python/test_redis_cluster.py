#!/usr/bin/env python3
"""redis-py's RedisCluster against a running shoal (or Redis) cluster.

Run as:  python3 tests/python/test_redis_cluster.py --port P [--keys N]

P is any node's client port; the client discovers the others with CLUSTER
SLOTS. The checks run twice: with redis-py's default protocol (RESP3) and
with protocol=2. Each run flushes every primary first, so the cluster must
hold nothing the caller still needs. A failing assertion or an unexpected
exception propagates and the process exits non-zero. Prints "ok" on success.
"""

import argparse
import collections
import time
import warnings

from redis.cluster import LoadBalancingStrategy, RedisCluster

warnings.filterwarnings("ignore", category=DeprecationWarning)


def check_topology(r):
    # Every node leads some shards and holds replicas of others. redis-py
    # fixes a node's role where CLUSTER SLOTS first names it, so some nodes
    # show as replicas; broadcasts below therefore target ALL_NODES, each
    # node answering for the shards it leads (as a Redis master does).
    nodes = r.get_nodes()
    assert len(nodes) >= 2, f"expected several nodes, got {nodes!r}"
    assert r.get_primaries(), nodes
    # The server's slot function agrees with the client's.
    for key, slot in [
        ("123456789", 12739),
        ("foo", 12182),
        ("user1000", 3443),
        ("{user1000}.following", 3443),
        ("foo{}{bar}", 8363),
        ("foo{{bar}}zap", 4015),
    ]:
        assert r.keyslot(key) == slot, (key, r.keyslot(key))
        assert r.cluster_keyslot(key) == slot, (key, r.cluster_keyslot(key))
    return nodes


def dbsizes(r, nodes):
    return {n.name: r.dbsize(target_nodes=n) for n in nodes}


def flush(r):
    r.flushdb(target_nodes=RedisCluster.ALL_NODES)


def check_bulk(r, nodes, count, tag):
    """Writes `count` keys spread over every slot, reads them back, and
    checks each node holds exactly the keys the client routed to it."""
    flush(r)
    assert all(size == 0 for size in dbsizes(r, nodes).values()), dbsizes(r, nodes)

    data = {f"bulk:{tag}:{i}": f"value:{tag}:{i}" for i in range(count)}
    assert all(r.mset_nonatomic(data)), "some MSET failed"
    keys = list(data)
    assert r.mget_nonatomic(keys) == [data[k] for k in keys]

    # A few through single-key commands too.
    for k in keys[:: count // 50 or 1]:
        assert r.get(k) == data[k], k
    assert r.get(f"bulk:{tag}:missing") is None

    expected = collections.Counter(r.get_node_from_key(k).name for k in keys)
    sizes = dbsizes(r, nodes)
    assert sizes == dict(expected), f"dbsize per node {sizes} != routed {dict(expected)}"
    assert all(sizes[n.name] > 0 for n in nodes), f"a node got no keys: {sizes}"
    assert sum(sizes.values()) == count


def check_hash_tags(r):
    assert r.mset({"{user1000}.a": "1", "{user1000}.b": "2"}) is True
    assert r.mget("{user1000}.a", "{user1000}.missing", "{user1000}.b") == ["1", None, "2"]
    assert r.exists("{user1000}.a", "{user1000}.b", "{user1000}.missing") == 2
    assert r.delete("{user1000}.a", "{user1000}.b") == 2
    assert r.mget("{user1000}.a", "{user1000}.b") == [None, None]


def check_counters(r):
    # Counters on every node: redis-py's incr() sends INCRBY.
    names = [f"counter:{i}" for i in range(30)]
    for name in names:
        assert r.incr(name) == 1
        assert r.incr(name, 41) == 42
        assert r.execute_command("INCR", name) == 43
        assert r.decr(name) == 42
    assert r.mget_nonatomic(names) == ["42"] * len(names)


def check_replica_reads(port, kwargs):
    """Reads through replicas: redis-py sends READONLY to them and spreads
    reads over each shard's replicas. Replica reads may lag, so wait
    (bounded) for them to catch up with what the primaries acknowledged."""
    writer = RedisCluster(host="127.0.0.1", port=port, decode_responses=True, **kwargs)
    reader = RedisCluster(
        host="127.0.0.1",
        port=port,
        decode_responses=True,
        load_balancing_strategy=LoadBalancingStrategy.ROUND_ROBIN_REPLICAS,
        **kwargs,
    )
    try:
        assert reader.get_replicas(), "CLUSTER SLOTS lists replicas"
        data = {f"replica:{i}": str(i) for i in range(300)}
        assert all(writer.mset_nonatomic(data))
        keys = list(data)
        deadline = time.monotonic() + 20
        while reader.mget_nonatomic(keys) != [data[k] for k in keys]:
            assert time.monotonic() < deadline, "replicas did not catch up in 20 s"
            time.sleep(0.05)
        # A pipeline of reads through the replicas (issue: READONLY was
        # ignored for pipelined reads).
        pipe = reader.pipeline(transaction=False)
        for k in keys:
            pipe.get(k)
        assert pipe.execute() == [data[k] for k in keys]
    finally:
        writer.close()
        reader.close()


def run(port, protocol, count):
    kwargs = {} if protocol is None else {"protocol": protocol}
    r = RedisCluster(host="127.0.0.1", port=port, decode_responses=True, **kwargs)
    try:
        assert r.ping() is True
        nodes = check_topology(r)
        check_bulk(r, nodes, count, protocol or "default")
        check_hash_tags(r)
        check_counters(r)
        check_replica_reads(port, kwargs)
    finally:
        r.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keys", type=int, default=20000)
    args = parser.parse_args()
    run(args.port, None, args.keys)  # redis-py's default: RESP3
    run(args.port, 2, args.keys)
    print("ok")


if __name__ == "__main__":
    main()
