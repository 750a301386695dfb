// The streams service's reads for the Redis command list (by message id, newest first, and a wait
// over several streams) and its claims, through the real envelope codec and state machine on a
// single-replica log whose clock the test sets.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCairnError } from "../../../src/service/errors.js";
import { StreamService } from "../../../src/service/streams/stream-service.js";
import { utf8 } from "../../../src/util/bytes.js";
import { LocalReplication } from "../../support/local-replication.js";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** A stream `s` with messages a..e, two appended per millisecond from 1800000000000, and c deleted. */
async function setup() {
  const log = new LocalReplication();
  const streams = new StreamService(log, log.applied);
  await streams.create("s");
  const ids: string[] = [];
  for (const [i, payload] of ["a", "b", "c", "d", "e"].entries()) {
    log.clockMs = 1_800_000_000_000 + Math.floor(i / 2);
    ids.push((await streams.append("s", { payload: utf8(payload) })).id);
  }
  await streams.deleteMessages("s", [3]);
  return { log, streams, ids };
}

const payloads = (page: { messages: readonly { payload: Uint8Array }[] }) =>
  page.messages.map((m) => text(m.payload));

describe("StreamService: reads by message id and newest first", () => {
  it("message ids are <ms>-<n> by the leader's clock", async () => {
    const { ids } = await setup();
    assert.deepEqual(ids, [
      "1800000000000-0",
      "1800000000000-1",
      "1800000000001-0",
      "1800000000001-1",
      "1800000000002-0",
    ]);
  });

  it("reads from and to message ids, inclusive; a bare <ms> covers every id of that millisecond", async () => {
    const { streams } = await setup();
    assert.deepEqual(
      payloads(await streams.read("s", { fromId: "1800000000000-1", toId: "1800000000001-1" })),
      ["b", "d"],
    );
    assert.deepEqual(payloads(await streams.read("s", { fromId: "1800000000001", toId: "1800000000001" })), [
      "d",
    ]);
    assert.deepEqual(payloads(await streams.read("s", { fromId: "1800000000000-2" })), ["d", "e"]);
    assert.deepEqual(payloads(await streams.read("s", { toId: "1799999999999" })), []);
  });

  it("reads newest first, page by page, skipping deleted messages (XREVRANGE)", async () => {
    const { streams } = await setup();
    const first = await streams.read("s", { reverse: true, limit: 2 });
    assert.deepEqual(payloads(first), ["e", "d"]);
    const second = await streams.read("s", { reverse: true, limit: 2, to: first.next });
    assert.deepEqual(payloads(second), ["b", "a"]);
    assert.equal(second.next, 0, "the range is read");
    const byId = await streams.read("s", { reverse: true, fromId: "1800000000000-1", toId: "1800000000001" });
    assert.deepEqual(payloads(byId), ["d", "b"]);
  });

  it("refuses malformed ids, two starting points, and a reverse read that would wait", async () => {
    const { streams } = await setup();
    const code = (p: Promise<unknown>) =>
      p.then(
        () => "ok",
        (e: unknown) => (isCairnError(e) ? e.code : "other"),
      );
    assert.equal(await code(streams.read("s", { fromId: "1-2-3" })), "ERR_BAD_REQUEST");
    assert.equal(await code(streams.read("s", { from: 1, fromId: "1" })), "ERR_BAD_REQUEST");
    assert.equal(await code(streams.read("s", { to: 1, toId: "1" })), "ERR_BAD_REQUEST");
    assert.equal(await code(streams.read("s", { reverse: true, waitMs: 10 })), "ERR_BAD_REQUEST");
  });
});

describe("StreamService: claims", () => {
  it("takes over another consumer's idle messages with their payloads", async () => {
    const { log, streams } = await setup();
    await streams.createGroup("s", "g");
    await streams.fetch("s", "g", "c1", { max: 10 });
    log.clockMs += 5000;
    const none = await streams.claim("s", "g", "c2", { minIdleMs: 60_000, fromSeq: 0 });
    assert.deepEqual(none.messages, []);
    const claimed = await streams.claim("s", "g", "c2", { minIdleMs: 1000, seqs: [2, 4] });
    assert.deepEqual(
      claimed.messages.map((m) => [text(m.payload), m.deliveries]),
      [
        ["b", 2],
        ["d", 2],
      ],
    );
    const info = await streams.groupInfo("s", "g");
    assert.equal(info.consumers["c2"]?.pending, 2);
    assert.equal(info.consumers["c1"]?.pending, 2);
  });
});

describe("StreamService: a wait over several streams", () => {
  /** Resolves once `log`'s notifier holds a waiter: the read is waiting. */
  async function waiting(log: LocalReplication): Promise<void> {
    while (log.applied.waiting === 0) await new Promise((resolve) => setImmediate(resolve));
  }

  it("answers at once the streams that have messages, from each cursor", async () => {
    const { streams } = await setup();
    await streams.create("t");
    const found = await streams.readMany([
      { name: "s", afterId: "1800000000001-0" },
      { name: "t" },
      { name: "missing" },
    ]);
    assert.deepEqual(
      found.map((f) => [f.name, payloads(f)]),
      [["s", ["d", "e"]]],
    );
  });

  it("waits until any stream gets a message after the call (XREAD BLOCK with $)", async () => {
    const { log, streams } = await setup();
    await streams.create("t");
    const read = streams.readMany(
      [
        { name: "s", onlyNew: true },
        { name: "t", onlyNew: true },
      ],
      { waitMs: 30_000 },
    );
    await waiting(log);
    await streams.append("t", { payload: utf8("new") });
    const found = await read;
    assert.deepEqual(
      found.map((f) => [f.name, payloads(f), f.next]),
      [["t", ["new"], 2]],
    );
  });

  it("a stream created while waiting counts from its first message; an empty wait answers nothing", async () => {
    const { log, streams } = await setup();
    const controller = new AbortController();
    const read = streams.readMany([{ name: "later", onlyNew: true }], { waitMs: 30_000 });
    await waiting(log);
    await streams.append("later", { payload: utf8("first"), createIfMissing: {} });
    assert.deepEqual(
      (await read).map((f) => payloads(f)),
      [["first"]],
    );
    const aborted = streams.readMany([{ name: "s", onlyNew: true }], {
      waitMs: 30_000,
      signal: controller.signal,
    });
    await waiting(log);
    controller.abort();
    assert.deepEqual(await aborted, []);
  });
});
