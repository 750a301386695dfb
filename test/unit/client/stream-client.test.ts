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

  it("the CLI sends, reads, updates settings and runs a group", { timeout: 60_000 }, async () => {
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
});
