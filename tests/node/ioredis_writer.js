#!/usr/bin/env node
// ioredis's Cluster writing while the cluster changes shape (shards split
// and merge): unique keys PREFIX:0, PREFIX:1, ... for SECONDS, then every
// acknowledged key read back. ioredis follows MOVED (and refreshes its
// slots) and retries TRYAGAIN by itself; nothing else may reach us.
//
// Run as:  node tests/node/ioredis_writer.js PORT SECONDS PREFIX
// Prints "ok <acknowledged>" on success; any failure exits non-zero.

'use strict';

const Redis = require('ioredis');
const assert = require('assert');

async function main() {
  const [port, seconds, prefix] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
  assert(port > 0 && seconds > 0 && prefix, 'usage: ioredis_writer.js PORT SECONDS PREFIX');
  const cluster = new Redis.Cluster([{ host: '127.0.0.1', port }], { maxRedirections: 32 });
  const acked = [];
  try {
    const end = Date.now() + seconds * 1000;
    for (let i = 0; Date.now() < end; i++) {
      const key = `${prefix}:${i}`;
      assert.strictEqual(await cluster.set(key, key), 'OK');
      acked.push(key);
    }
    for (const key of acked) {
      assert.strictEqual(await cluster.get(key), key, `acknowledged ${key} reads back`);
    }
  } finally {
    cluster.disconnect();
  }
  assert(acked.length > 0, 'no write was acknowledged');
  console.log(`ok ${acked.length}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
