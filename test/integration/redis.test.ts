// Real Redis clients against a 3-node cluster of real processes, through a follower: redis-cli
// (basics, a pipe of 1,000 SETs, a WATCH transaction, a stream and a group), ioredis and node-redis
// in RESP2 and RESP3 (basics, a pipeline of 1,000 SETs, WATCH/MULTI/EXEC, and the stream workflow:
// XADD, XREAD BLOCK woken from another connection, XGROUP CREATE, XREADGROUP, XACK, XPENDING,
// XAUTOCLAIM, XINFO), and the HTTP API sees the same keys and streams.
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
    // redis-cli may exit before it reads stdin (it had its arguments): a write to the closed pipe
    // is EPIPE then, which says nothing about the command; its exit status and output do.
    child.stdin?.on("error", () => undefined);
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

    it(`ioredis in RESP${protocol}: the stream workflow, woken across connections`, async () => {
      const [host, port] = follower.redisAddress.split(":");
      const options = { host: host ?? "", port: Number(port), protocol, lazyConnect: true };
      const client = new Redis(options);
      const reader = new Redis(options);
      try {
        await client.connect();
        await reader.connect();
        const key = `io${protocol}:orders`;
        const waiting = reader.xread("BLOCK", 0, "STREAMS", key, "$");
        await waitFor("the reader to block", async () =>
          /blocked_clients:1/.test(await client.info("clients")),
        );
        const id = await client.xadd(key, "*", "item", "book", "qty", "2");
        assert.ok(id !== null);
        assert.deepEqual(await waiting, [[key, [[id, ["item", "book", "qty", "2"]]]]]);
        const pipeline = client.pipeline();
        for (let i = 0; i < 100; i++) pipeline.xadd(key, "*", "n", String(i));
        assert.equal(((await pipeline.exec()) ?? []).filter(([error]) => error === null).length, 100);
        assert.equal(await client.xlen(key), 101);
        assert.equal(await client.xgroup("CREATE", key, "billing", "0"), "OK");
        const batch = (await client.xreadgroup(
          "GROUP",
          "billing",
          "w1",
          "COUNT",
          60,
          "STREAMS",
          key,
          ">",
        )) as [string, [string, string[]][]][];
        const entries = batch[0]?.[1] ?? [];
        assert.equal(entries.length, 60);
        assert.deepEqual(entries[0], [id, ["item", "book", "qty", "2"]]);
        assert.equal(await client.xack(key, "billing", ...entries.slice(0, 50).map(([e]) => e)), 50);
        const pending = (await client.xpending(key, "billing")) as [
          number,
          string,
          string,
          [string, string][],
        ];
        assert.equal(pending[0], 10);
        assert.deepEqual(pending[3], [["w1", "10"]]);
        const claimed = (await client.xautoclaim(key, "billing", "w2", 0, "0", "COUNT", 5)) as [
          string,
          [string, string[]][],
          string[],
        ];
        assert.equal(claimed[1].length, 5);
        assert.equal(claimed[0], entries[55]?.[0]);
        const info = (await client.xinfo("STREAM", key)) as unknown[];
        assert.equal(info[info.indexOf("length") + 1], 101);
        assert.equal(info[info.indexOf("groups") + 1], 1);
        // The HTTP API serves the same stream: fields as headers.
        const response = await fetch(`${follower.httpUrl}/v1/streams/${key}/messages?limit=1`);
        const body = (await response.json()) as { messages: { id: string; headers: unknown }[] };
        assert.equal(body.messages[0]?.id, id);
        assert.deepEqual(body.messages[0]?.headers, { item: "book", qty: "2" });
      } finally {
        client.disconnect();
        reader.disconnect();
      }
    });

    it(`node-redis in RESP${protocol}: the stream workflow, woken across connections`, async () => {
      const client = createClient({
        url: `redis://${follower.redisAddress}`,
        RESP: protocol,
        // node-redis marks XREAD's and XREADGROUP's RESP3 replies unstable and asks for this.
        ...(protocol === 3 ? { unstableResp3: true } : {}),
      });
      client.on("error", () => undefined);
      const reader = client.duplicate();
      reader.on("error", () => undefined);
      try {
        await client.connect();
        await reader.connect();
        const key = `nr${protocol}:orders`;
        const waiting = reader.xRead({ key, id: "$" }, { BLOCK: 0 });
        await waitFor("the reader to block", async () =>
          /blocked_clients:1/.test(await client.info("clients")),
        );
        const id = await client.xAdd(key, "*", { item: "book" });
        // node-redis builds its objects without a prototype: compare their JSON.
        const woken = JSON.parse(JSON.stringify(await waiting)) as unknown;
        const expected = [{ id, message: { item: "book" } }];
        if (protocol === 2) assert.deepEqual(woken, [{ name: key, messages: expected }]);
        else assert.deepEqual(woken, { [key]: [[id, ["item", "book"]]] });
        for (let i = 0; i < 10; i++) await client.xAdd(key, "*", { n: String(i) });
        assert.equal(await client.xGroupCreate(key, "billing", "0"), "OK");
        const read = await client.xReadGroup("billing", "w1", { key, id: ">" }, { COUNT: 5 });
        const ids =
          protocol === 2
            ? ((read as { messages: { id: string }[] }[])[0]?.messages ?? []).map((m) => m.id)
            : ((read as Record<string, [string, string[]][]>)[key] ?? []).map(([e]) => e);
        assert.equal(ids.length, 5);
        assert.equal(ids[0], id);
        assert.equal(await client.xAck(key, "billing", ids.slice(0, 3)), 3);
        const pending = await client.xPending(key, "billing");
        assert.equal(pending.pending, 2);
        assert.deepEqual(JSON.parse(JSON.stringify(pending.consumers)), [
          { name: "w1", deliveriesCounter: 2 },
        ]);
        const claimed = await client.xAutoClaim(key, "billing", "w2", 0, "0-0");
        assert.deepEqual(
          claimed.messages.map((m) => m?.id),
          ids.slice(3),
        );
        const groups = await client.xInfoGroups(key);
        assert.equal(groups[0]?.name, "billing");
        assert.equal(groups[0]?.pending, 2);
        const consumers = await client.xInfoConsumers(key, "billing");
        assert.deepEqual(
          consumers.map((c) => [c.name, c.pending]),
          [
            ["w1", 0],
            ["w2", 2],
          ],
        );
        assert.equal((await client.xInfoStream(key)).length, 11);
      } finally {
        client.destroy();
        reader.destroy();
      }
    });
  }

  it("redis-cli: a stream and a consumer group", async () => {
    const at = follower.redisAddress;
    assert.equal(await redisCli(at, ["xadd", "cli:s", "1-1", "a", "1"]), "1-1\n");
    assert.equal(await redisCli(at, ["xgroup", "create", "cli:s", "g", "0"]), "OK\n");
    assert.equal(
      await redisCli(at, ["xreadgroup", "group", "g", "c", "streams", "cli:s", ">"]),
      "cli:s\n1-1\na\n1\n",
    );
    assert.equal(await redisCli(at, ["xack", "cli:s", "g", "1-1"]), "1\n");
    assert.equal(await redisCli(at, ["xlen", "cli:s"]), "1\n");
  });
});
