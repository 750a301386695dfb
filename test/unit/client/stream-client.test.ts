// The client's stream and group calls and the CLI's stream commands against real HTTP servers on
// 127.0.0.1 over one single-replica log: append, read, groups, and a tail that keeps following,
// without gaps or repeats, when the node it reads from goes away.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CairnClient, type StreamMessageItem, type TailEvent } from "../../../src/client/index.js";
import { buildHttpApp } from "../../../src/server/http/index.js";
import { KvService } from "../../../src/service/kv/kv-service.js";
import { StreamService } from "../../../src/service/streams/stream-service.js";
import { LocalReplication } from "../../support/local-replication.js";
import { waitFor } from "../../support/wait-for.js";

const root = new URL("../../../", import.meta.url).pathname;
const run = promisify(execFile);

describe("CairnClient streams", () => {
  const log = new LocalReplication();
  const build = () =>
    buildHttpApp({
      kv: new KvService(log),
      streams: new StreamService(log, log.applied),
      readiness: () => ({ ready: true }),
    });
  const a = build();
  const b = build();
  let urlA = "";
  let urlB = "";

  before(async () => {
    urlA = await a.listen({ host: "127.0.0.1", port: 0 });
    urlB = await b.listen({ host: "127.0.0.1", port: 0 });
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it("creates, appends with ids, reads, and runs a group", async () => {
    const client = new CairnClient({ endpoints: [urlA], retryBudgetMs: 2_000 });
    assert.equal((await client.createStream("c1", { maxMessages: 10 })).created, true);
    assert.deepEqual(
      (await client.append("c1", "x", { id: "one" })).seq,
      (await client.append("c1", "x", { id: "one" })).seq,
    );
    await client.append("c1", new Uint8Array([0xff, 0]));
    const page = await client.read("c1", { from: 1 });
    assert.deepEqual(
      page.messages.map((m) => [m.seq, m.payload, m.encoding]),
      [
        [1, "x", "utf8"],
        [2, "/wA=", "base64"],
      ],
    );
    assert.equal((await client.streamInfo("c1"))?.messages, 2);
    assert.equal(await client.streamInfo("missing"), undefined);
    await client.createGroup("c1", "g", { startAt: "first", ackWaitMs: 60_000 });
    const fetched = await client.fetchMessages("c1", "g", "me", { max: 5 });
    assert.deepEqual(
      fetched.map((m) => [m.seq, m.deliveries]),
      [
        [1, 1],
        [2, 1],
      ],
    );
    assert.deepEqual(await client.ack("c1", "g", [1, 2]), {
      settled: [1, 2],
      notPending: [],
      duplicate: false,
    });
    assert.equal((await client.groupInfo("c1", "g")).acked, 2);
    assert.deepEqual(
      (await client.listStreams()).map((s) => s.name),
      ["c1"],
    );
    const batch = await client.appendBatch("c1", [
      { payload: "b1", id: "one" },
      { payload: new Uint8Array([1, 2]), headers: { h: "v" } },
    ]);
    assert.deepEqual(batch, {
      results: [
        {
          ok: true,
          seq: 1,
          id: batch.results[0]?.ok === true ? batch.results[0].id : "",
          duplicate: true,
        },
        {
          ok: true,
          seq: 3,
          id: batch.results[1]?.ok === true ? batch.results[1].id : "",
          duplicate: false,
        },
      ],
      duplicate: false,
    });
    await assert.rejects(
      client.appendBatch(
        "c1",
        [
          { payload: "b2", expectedLastSeq: 3 },
          { payload: "b3", expectedLastSeq: 3 },
        ],
        {
          atomic: true,
        },
      ),
      (error: Error & { code?: string }) => error.code === "ERR_CONFLICT",
    );
    assert.equal((await client.streamInfo("c1"))?.lastSeq, 3, "the refused atomic batch appended nothing");
  });

  it("fetch acknowledges a previous batch; a consumer loop acks each batch with its next fetch", async () => {
    const client = new CairnClient({ endpoints: [urlA], retryBudgetMs: 2_000 });
    await client.createStream("c2");
    await client.appendBatch(
      "c2",
      Array.from({ length: 5 }, (_, i) => ({ payload: `m${i + 1}` })),
    );
    await client.createGroup("c2", "g", { startAt: "first", ackWaitMs: 60_000 });
    const first = await client.fetchAndAck("c2", "g", "me", { max: 2 });
    assert.equal(first.acked, undefined);
    const second = await client.fetchAndAck("c2", "g", "me", { max: 1, ack: [1, 2, 4] });
    assert.deepEqual(second.acked, { settled: [1, 2], notPending: [4] });
    assert.deepEqual(
      second.messages.map((m) => m.seq),
      [3],
    );
    await assert.rejects(
      client.fetchAndAck("c2", "g", "me", { max: 1, ack: [0] }),
      (error: Error & { code?: string }) => error.code === "ERR_BAD_REQUEST",
    );
    assert.equal((await client.groupInfo("c2", "g")).pending, 1, "the refused fetch changed nothing");

    const stop = new AbortController();
    const seen: number[] = [];
    const taken = await client.consume(
      "c2",
      "g",
      "loop",
      (messages) => {
        seen.push(...messages.map((m) => m.seq));
        if (seen.includes(5)) stop.abort();
      },
      { max: 1, waitMs: 0, signal: stop.signal },
    );
    assert.deepEqual(seen, [4, 5]);
    assert.equal(taken, 2);
    const group = await client.groupInfo("c2", "g");
    assert.equal(group.acked, 4, "1 and 2 by the ride-along ack, 4 by the loop's next fetch, 5 on stop");
    assert.equal(group.pending, 1, "3 is still with `me`");
  });

  // The timeout also checks that closing node A does not wait for its keep-alive timeout (72 s) on
  // the connection the tail's long-poll was using when the close began.
  it("tail follows new messages and moves to another node when its node goes away", {
    timeout: 30_000,
  }, async () => {
    const client = new CairnClient({ endpoints: [urlA, urlB], retryBudgetMs: 2_000 });
    await client.createStream("t");
    await client.append("t", "before");
    const controller = new AbortController();
    const events: TailEvent[] = [];
    const seen: StreamMessageItem[] = [];
    const tail = (async () => {
      for await (const m of client.tail("t", {
        waitMs: 200,
        signal: controller.signal,
        onConnection: (e) => events.push(e),
      })) {
        seen.push(m);
        if (seen.length === 3) controller.abort();
      }
    })();
    // Once its long-poll waits, the tail has fixed where it starts: "one" comes after that point.
    await waitFor("the tail's long-poll to wait", () => log.applied.waiting === 1);
    await client.append("t", "one");
    await waitFor("the tail to deliver the first message", () => seen.length === 1);
    await a.close();
    await client.append("t", "two");
    await client.append("t", "three");
    await tail;
    assert.deepEqual(
      seen.map((m) => [m.seq, m.payload]),
      [
        [2, "one"],
        [3, "two"],
        [4, "three"],
      ],
    );
    assert.equal(events[0]?.kind, "lost");
    assert.deepEqual(events[1], { kind: "reconnected", endpoint: urlB, from: 3 });
  });

  it("the CLI sends, reads, updates settings and runs a group", { timeout: 180_000 }, async () => {
    const cairn = async (...args: string[]) =>
      (
        await run(
          process.execPath,
          ["--import", "tsx", `${root}src/cli/run.ts`, ...args, "--endpoints", urlB],
          {
            cwd: root,
            timeout: 30_000,
          },
        )
      ).stdout;
    await cairn("stream", "create", "cli", "--max-messages", "100");
    await cairn("stream", "send", "cli", "hello", "--id", "h1", "--header", "who=me");
    const read = await cairn("stream", "read", "cli", "--from", "1");
    assert.match(read, /^1\t\d+-0\thello$/m);
    await cairn("group", "create", "cli", "workers", "--start", "first");
    const fetched = await cairn("group", "fetch", "cli", "workers", "--consumer", "w1", "--ack");
    assert.match(fetched, /^1\t\d+-0\thello\t\(delivery 1\)$/m);
    const info = JSON.parse(await cairn("group", "info", "cli", "workers")) as { acked: number };
    assert.equal(info.acked, 1);
    await cairn("stream", "send", "cli", "again");
    const updated = JSON.parse(await cairn("stream", "update", "cli", "--max-messages", "1")) as {
      updated: boolean;
      stream: { firstSeq: number; messages: number; config: { maxMessages: number } };
    };
    assert.deepEqual(
      [updated.updated, updated.stream.firstSeq, updated.stream.messages, updated.stream.config.maxMessages],
      [true, 2, 1, 1],
    );
    const group = JSON.parse(
      await cairn("group", "update", "cli", "workers", "--ack-wait-ms", "5000", "--max-ack-pending", "7"),
    ) as { updated: boolean; group: { config: { ackWaitMs: number; maxAckPending: number } } };
    assert.deepEqual(
      [group.updated, group.group.config.ackWaitMs, group.group.config.maxAckPending],
      [true, 5000, 7],
    );
    await assert.rejects(cairn("group", "update", "cli", "workers"), /give at least one setting/);
  });

  it("the CLI sends --count copies and stdin lines in batches, ids deduplicated", {
    timeout: 60_000,
  }, async () => {
    const cairn = async (input: string, ...args: string[]) => {
      const pending = run(
        process.execPath,
        ["--import", "tsx", `${root}src/cli/run.ts`, ...args, "--endpoints", urlB],
        { cwd: root, timeout: 30_000 },
      );
      pending.child.stdin?.end(input);
      return JSON.parse((await pending).stdout) as Record<string, number>;
    };
    await new CairnClient({ endpoints: [urlB] }).createStream("many");
    const before = log.appliedIndex;
    const counted = await cairn(
      "",
      "stream",
      "send",
      "many",
      "x",
      "--count",
      "5",
      "--batch",
      "2",
      "--id",
      "c",
    );
    assert.deepEqual(counted, { sent: 5, appended: 5, duplicates: 0, failed: 0, firstSeq: 1, lastSeq: 5 });
    assert.equal(log.appliedIndex, before + 3, "5 messages in batches of 2: three writes");
    const lines = await cairn("one\ntwo\nthree\n", "stream", "send", "many", "--id", "c");
    assert.deepEqual(lines, { sent: 3, appended: 0, duplicates: 3, failed: 0, firstSeq: 1, lastSeq: 3 });
    const fresh = await cairn("four\nfive\n", "stream", "send", "many");
    assert.deepEqual(fresh, { sent: 2, appended: 2, duplicates: 0, failed: 0, firstSeq: 6, lastSeq: 7 });
    const page = await new CairnClient({ endpoints: [urlB] }).read("many", { from: 6 });
    assert.deepEqual(
      page.messages.map((m) => m.payload),
      ["four", "five"],
    );
  });
});
