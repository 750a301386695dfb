// The streams service's reads for the Redis command list (by message id, newest first, and a wait
// over several streams) and its claims, through the real envelope codec and state machine on a
// single-replica log whose clock the test sets.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCairnError } from "../../../src/service/errors.js";
import { StreamService } from "../../../src/service/stream-service.js";
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
