// Real Redis clients against a 3-node cluster of real processes, through a follower: redis-cli
// (basics, a pipe of 1,000 SETs, a WATCH transaction), ioredis and node-redis in RESP2 and RESP3
// (basics, a pipeline of 1,000 SETs, WATCH/MULTI/EXEC), and the HTTP API sees the same keyspace.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { createClient } from "redis";
import { ProcessCluster, type ProcessNode } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

/** Runs redis-cli to completion with `input` on stdin; resolves with its output. */
function redisCli(address: string, args: readonly string[], input = ""): Promise<string> {
  const [host = "", port = ""] = address.split(":");
  return new Promise((resolve, reject) => {
    const child = execFile(
      "redis-cli",
      ["-h", host, "-p", port, ...args],
      { timeout: 60_000 },
      (error, stdout) => (error === null ? resolve(stdout) : reject(error)),
    );
    child.stdin?.end(input);
  });
}

describe("Redis clients through a follower of a 3-node cluster", { timeout: 300_000 }, () => {
  let cluster: ProcessCluster;
  let follower: ProcessNode;

  before(async () => {
    cluster = await ProcessCluster.create(3);
    await cluster.startAll();
    const leader = await cluster.leader();
    const other = cluster.nodes.find((n) => n !== leader);
    assert.ok(other !== undefined);
    follower = other;
    // The follower answers UNAVAILABLE until it has heard from the leader.
    await waitFor("the follower to know the leader", async () => {
      const response = await fetch(`${other.httpUrl}/v1/cluster`);
      return ((await response.json()) as { leader: unknown }).leader !== null;
    });
  });
  after(async () => {
    if (process.env["CAIRN_DEBUG_REDIS"] !== undefined)
      for (const n of cluster.nodes) console.log(n.name, n.output.slice(-3000));
    await cluster.close();
  });

  it("redis-cli: basics, and the HTTP API reads the same key", async () => {
    assert.equal(await redisCli(follower.redisAddress, ["set", "cli:a", "hello"]), "OK\n");
    assert.equal(await redisCli(follower.redisAddress, ["get", "cli:a"]), "hello\n");
    assert.equal(await redisCli(follower.redisAddress, ["incr", "cli:n"]), "1\n");
    assert.equal(await redisCli(follower.redisAddress, ["ping"]), "PONG\n");
    const response = await fetch(`${follower.httpUrl}/v1/kv/cli:a`);
    const body = (await response.json()) as { value?: string };
    assert.equal(body.value, "hello");
  });

  it("redis-cli: a pipe of 1,000 SETs and a WATCH transaction", async () => {
    let commands = "";
    for (let i = 0; i < 1000; i++) commands += `SET pipe:${i} ${i}\r\n`;
    const out = await redisCli(follower.redisAddress, ["--pipe"], commands);
    assert.match(out, /errors: 0, replies: 1000/);
    assert.equal(await redisCli(follower.redisAddress, ["get", "pipe:999"]), "999\n");
    const tx = await redisCli(
      follower.redisAddress,
      [],
      "WATCH cli:tx\nMULTI\nSET cli:tx 1\nINCR cli:tx\nEXEC\n",
    );
    assert.equal(tx, "OK\nOK\nQUEUED\nQUEUED\nOK\n2\n");
  });

  for (const protocol of [2, 3] as const) {
    it(`ioredis in RESP${protocol}: basics, a pipeline of 1,000 SETs, WATCH/MULTI/EXEC`, async () => {
      const [host, port] = follower.redisAddress.split(":");
      const client = new Redis({ host: host ?? "", port: Number(port), protocol, lazyConnect: true });
      try {
        await client.connect();
        const p = `io${protocol}:`;
        assert.equal(await client.set(`${p}a`, "1"), "OK");
        assert.equal(await client.get(`${p}a`), "1");
        assert.equal(await client.incrby(`${p}a`, 5), 6);
        assert.deepEqual(await client.mget(`${p}a`, `${p}missing`), ["6", null]);
        assert.equal(await client.expire(`${p}a`, 100), 1);
        const ttl = await client.ttl(`${p}a`);
        assert.ok(ttl > 0 && ttl <= 100, String(ttl));
        const pipeline = client.pipeline();
        for (let i = 0; i < 1000; i++) pipeline.set(`${p}pipe:${i}`, String(i));
        const results = (await pipeline.exec()) ?? [];
        assert.equal(results.length, 1000);
        assert.ok(results.every(([error, reply]) => error === null && reply === "OK"));
        await client.watch(`${p}w`);
        const committed = await client.multi().set(`${p}w`, "x").get(`${p}w`).exec();
        assert.deepEqual(committed, [
          [null, "OK"],
          [null, "x"],
        ]);
        await client.watch(`${p}w`);
        await redisCli(follower.redisAddress, ["set", `${p}w`, "changed"]);
        assert.equal(await client.multi().set(`${p}w`, "lost").exec(), null);
        assert.equal(await client.get(`${p}w`), "changed");
      } finally {
        client.disconnect();
      }
    });

    it(`node-redis in RESP${protocol}: basics, a pipeline of 1,000 SETs, WATCH/MULTI/EXEC`, async () => {
      const client = createClient({ url: `redis://${follower.redisAddress}`, RESP: protocol });
      client.on("error", () => undefined);
      try {
        await client.connect();
        const p = `nr${protocol}:`;
        assert.equal(await client.set(`${p}a`, "1"), "OK");
        assert.equal(await client.get(`${p}a`), "1");
        assert.equal(await client.incrBy(`${p}a`, 5), 6);
        assert.deepEqual(await client.mGet([`${p}a`, `${p}missing`]), ["6", null]);
        const replies = await Promise.all(
          Array.from({ length: 1000 }, (_, i) => client.set(`${p}pipe:${i}`, String(i))),
        );
        assert.ok(replies.every((reply) => reply === "OK"));
        await client.watch(`${p}w`);
        assert.deepEqual(await client.multi().set(`${p}w`, "x").get(`${p}w`).exec(), ["OK", "x"]);
        await client.watch(`${p}w`);
        await redisCli(follower.redisAddress, ["set", `${p}w`, "changed"]);
        await assert.rejects(client.multi().set(`${p}w`, "lost").exec());
        assert.equal(await client.get(`${p}w`), "changed");
      } finally {
        client.destroy();
      }
    });
  }
});
