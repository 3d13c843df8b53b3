#!/usr/bin/env node
// ioredis's Cluster against a running shoal cluster, reading from replicas.
//
// Run as:  node tests/node/ioredis_cluster.js PORT
//
// ioredis gives each node one role from CLUSTER SLOTS: a node that leads
// any shard is a master connection and never sends READONLY, and with
// `scaleReads: 'slave'` reads of a slot go to the replicas CLUSTER SLOTS
// lists for it. A shoal follower serves such reads (linearizably, through
// its leader's read index) instead of answering MOVED, which ioredis would
// follow back to the same replica until "Too many Cluster redirections".
// Prints "ok" on success; any failure exits non-zero.

'use strict';

const Redis = require('ioredis');
const assert = require('assert');

async function main() {
  const port = Number(process.argv[2]);
  assert(port > 0, 'usage: ioredis_cluster.js PORT');
  const options = { scaleReads: 'slave', maxRedirections: 4, redisOptions: { maxRetriesPerRequest: 2 } };
  const cluster = new Redis.Cluster([{ host: '127.0.0.1', port }], options);
  try {
    const keys = Array.from({ length: 300 }, (_, i) => `ioredis:${i}`);
    for (const key of keys) {
      assert.strictEqual(await cluster.set(key, `v:${key}`), 'OK');
      // Read at once from a replica: a linearizable read sees the write.
      assert.strictEqual(await cluster.get(key), `v:${key}`, `read of ${key} after its write`);
    }
    // Pipelined reads (an ioredis pipeline keeps to one slot) from a
    // replica.
    const tagged = Array.from({ length: 100 }, (_, i) => `{ioredis}:${i}`);
    assert.strictEqual(await cluster.mset(...tagged.flatMap((k) => [k, `v:${k}`])), 'OK');
    const pipeline = cluster.pipeline();
    for (const key of tagged) pipeline.get(key);
    const results = await pipeline.exec();
    results.forEach(([err, value], i) => {
      assert.ifError(err);
      assert.strictEqual(value, `v:${tagged[i]}`);
    });
    // The reads reached replicas: every node served some of them.
    const served = await Promise.all(
      cluster.nodes('all').map(async (node) => {
        const info = await node.info('stats');
        return Number(/keyspace_hits:(\d+)/.exec(info)[1]);
      }),
    );
    assert(served.filter((hits) => hits > 0).length >= 2, `reads served per node: ${served}`);
  } finally {
    cluster.disconnect();
  }
  console.log('ok');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
