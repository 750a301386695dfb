// The stream operations Redis's XADD ids, XTRIM, XGROUP SETID / CREATECONSUMER / DELCONSUMER and
// XCLAIM's options need, as the state machine applies them through the real envelope codec: ids
// given by the client and their ordering refusals (Redis's texts), exact and approximate trims by
// count and by id, the consumers a group knows, a group's position, and claims of a consumer's own
// history, with a forced claim, a set idle time and delivery count.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryState } from "../../../../src/service/state.js";
import {
  type GivenId,
  getGroupMeta,
  getMessage,
  getStreamMeta,
  listPending,
  type StreamCommand,
  type StreamTrim,
} from "../../../../src/service/streams/index.js";
import { utf8 } from "../../../../src/util/bytes.js";
import { config, run } from "./helpers.js";

const T = 1_700_000_000_000;

const add = (s: MemoryState, id?: GivenId, trim?: StreamTrim) =>
  run(
    s,
    {
      type: "append",
      name: "s",
      payload: utf8("v"),
      headers: [],
      createWith: config(),
      ...(id !== undefined ? { id } : {}),
      ...(trim !== undefined ? { trim } : {}),
    },
    T,
  );
const idOf = (result: ReturnType<typeof add>) => (result.ok ? result.id : `refused: ${result.message}`);
const held = (s: MemoryState) => {
  const meta = getStreamMeta(s, "s");
  const ids: string[] = [];
  if (meta === undefined) return ids;
  for (let seq = meta.firstSeq; seq <= meta.lastSeq; seq++) {
    const m = getMessage(s, meta, seq);
    if (m !== undefined) ids.push(m.id);
  }
  return ids;
};

describe("streams: ids given by the client", () => {
  it("takes an id above the last, refuses one at or below it with Redis's text", () => {
    const s = new MemoryState();
    assert.equal(idOf(add(s, { ms: 1, n: 1 })), "1-1");
    const refused = "refused: The ID specified in XADD is equal or smaller than the target stream top item";
    assert.equal(idOf(add(s, { ms: 1, n: 1 })), refused);
    assert.equal(idOf(add(s, { ms: 1, n: 0 })), refused);
    assert.equal(idOf(add(s, { ms: 0 })), refused);
    assert.equal(getStreamMeta(s, "s")?.lastSeq, 1, "a refused id appends nothing");
  });

  it("gives the next free n of a millisecond, and the clock's id never goes below the last", () => {
    const s = new MemoryState();
    assert.equal(idOf(add(s, { ms: 0 })), "0-1", "0-0 is never an id");
    assert.equal(idOf(add(s, { ms: 0 })), "0-2");
    assert.equal(idOf(add(s, { ms: 7 })), "7-0");
    assert.equal(idOf(add(s, { ms: T + 5, n: 3 })), `${T + 5}-3`);
    assert.equal(idOf(add(s)), `${T + 5}-4`, "an id from the clock stays above a given one ahead of it");
  });

  it("moves to the next millisecond when n is exhausted, and refuses past the last possible id", () => {
    const s = new MemoryState();
    const max = Number.MAX_SAFE_INTEGER;
    assert.equal(idOf(add(s, { ms: T + 9, n: max })), `${T + 9}-${max}`);
    assert.equal(idOf(add(s)), `${T + 10}-0`);
    assert.equal(idOf(add(s, { ms: max, n: max })), `${max}-${max}`);
    assert.equal(
      idOf(add(s)),
      "refused: The stream has exhausted the last possible ID, unable to add more items",
    );
  });
});

describe("streams: trims", () => {
  const filled = (count: number) => {
    const s = new MemoryState();
    for (let i = 1; i <= count; i++) add(s, { ms: i, n: 0 });
    return s;
  };
  const trim = (s: MemoryState, t: StreamTrim) => run(s, { type: "trim", name: "s", trim: t }, T);

  it("an exact MAXLEN keeps the newest messages, and says when its bound stopped it", () => {
    const s = filled(10);
    assert.deepEqual(trim(s, { kind: "maxlen", max: 3, exact: true, limit: 0 }), {
      kind: "streams.trim",
      ok: true,
      trimmed: 7,
      more: false,
    });
    assert.deepEqual(held(s), ["8-0", "9-0", "10-0"]);
  });

  it("an exact MINID drops every message below the id", () => {
    const s = filled(5);
    const result = trim(s, { kind: "minid", ms: 3, n: 0, exact: true, limit: 0 });
    assert.equal(result.ok && result.kind === "streams.trim" && result.trimmed, 2);
    assert.deepEqual(held(s), ["3-0", "4-0", "5-0"]);
  });

  it("an approximate trim removes whole blocks of 100 sequences only, within its limit", () => {
    const s = filled(250);
    const none = trim(s, { kind: "maxlen", max: 200, exact: false, limit: 0 });
    assert.equal(none.ok && none.kind === "streams.trim" && none.trimmed, 0, "a block would leave 150");
    const one = trim(s, { kind: "maxlen", max: 120, exact: false, limit: 0 });
    assert.equal(one.ok && one.kind === "streams.trim" && one.trimmed, 100);
    assert.equal(held(s)[0], "101-0");
    const limited = trim(s, { kind: "minid", ms: 300, n: 0, exact: false, limit: 99 });
    assert.equal(limited.ok && limited.kind === "streams.trim" && limited.trimmed, 0, "a block is 100");
    const byId = trim(s, { kind: "minid", ms: 300, n: 0, exact: false, limit: 0 });
    assert.equal(byId.ok && byId.kind === "streams.trim" && byId.trimmed, 150);
  });

  it("an append trims in the same entry, its own message included (MAXLEN ~ 0)", () => {
    const s = new MemoryState();
    add(s, { ms: 1, n: 1 }, { kind: "maxlen", max: 0, exact: false, limit: 0 });
    assert.deepEqual(held(s), []);
    assert.equal(getStreamMeta(s, "s")?.lastIdMs, 1, "the last id stays");
    add(s, { ms: 2, n: 0 });
    add(s, { ms: 3, n: 0 }, { kind: "maxlen", max: 1, exact: true, limit: 0 });
    assert.deepEqual(held(s), ["3-0"]);
  });

  it("a trim of a missing stream is ERR_NOT_FOUND", () => {
    const result = trim(new MemoryState(), { kind: "maxlen", max: 0, exact: true, limit: 0 });
    assert.equal(!result.ok && result.code, "ERR_NOT_FOUND");
  });
});

describe("consumer groups: consumers, position and history claims", () => {
  const groupConfig = { ackWaitMs: 1e12, maxDeliveries: 0, deadLetterStream: "s.g.dlq", maxAckPending: 100 };
  const cmd = (c: Partial<StreamCommand> & { type: StreamCommand["type"] }) =>
    ({ stream: "s", group: "g", ...c }) as StreamCommand;
  const setup = (count: number) => {
    const s = new MemoryState();
    for (let i = 1; i <= count; i++) add(s, { ms: i, n: 0 });
    run(s, cmd({ type: "group-create", startAt: { kind: "first" }, config: groupConfig }), T);
    return s;
  };
  const group = (s: MemoryState) => {
    const meta = getStreamMeta(s, "s");
    const g = meta === undefined ? undefined : getGroupMeta(s, meta, "g");
    assert.ok(g !== undefined);
    return g;
  };

  it("knows a consumer once it is handed messages, created, or reads its history", () => {
    const s = setup(2);
    run(s, cmd({ type: "fetch", consumer: "c1", max: 1 }), T + 1);
    assert.deepEqual(group(s).consumers, [["c1", T + 1, T + 1, 1, 0]], "seen, active, 1 delivery, 0 again");
    assert.deepEqual(run(s, cmd({ type: "consumer-create", consumer: "c0" }), T + 2), {
      kind: "streams.consumer-create",
      ok: true,
      created: true,
    });
    assert.equal(
      run(s, cmd({ type: "consumer-create", consumer: "c0" }), T + 3).ok &&
        group(s).consumers?.find(([n]) => n === "c0")?.[1],
      T + 2,
      "creating a known consumer changes nothing",
    );
    run(s, cmd({ type: "fetch", consumer: "c1", max: 1 }), T + 4);
    run(s, cmd({ type: "fetch", consumer: "idle", max: 1 }), T + 5);
    assert.deepEqual(
      group(s).consumers?.map(([n]) => n),
      ["c0", "c1"],
      "a fetch that hands out nothing makes no consumer known",
    );
  });

  it("deleting a consumer drops what it holds and answers how many", () => {
    const s = setup(3);
    run(s, cmd({ type: "fetch", consumer: "c1", max: 2 }), T);
    run(s, cmd({ type: "fetch", consumer: "c2", max: 1 }), T);
    assert.deepEqual(run(s, cmd({ type: "consumer-delete", consumer: "c1" }), T), {
      kind: "streams.consumer-delete",
      ok: true,
      pending: 2,
    });
    assert.equal(group(s).pending, 1);
    assert.deepEqual(
      listPending(s, group(s), 10).map((p) => p.consumer),
      ["c2"],
    );
    assert.deepEqual(
      group(s).consumers?.map(([n]) => n),
      ["c2"],
    );
  });

  it("moves the group's position", () => {
    const s = setup(3);
    run(s, cmd({ type: "group-position", nextSeq: 3 }), T);
    const fetched = run(s, cmd({ type: "fetch", consumer: "c", max: 5 }), T);
    assert.deepEqual(fetched.ok && fetched.kind === "streams.fetch" && fetched.messages, [
      { seq: 3, deliveries: 1 },
    ]);
  });

  it("a history claim takes only the consumer's own messages and counts a delivery", () => {
    const s = setup(3);
    run(s, cmd({ type: "fetch", consumer: "c1", max: 2 }), T);
    run(s, cmd({ type: "fetch", consumer: "c2", max: 1 }), T);
    const history = run(
      s,
      cmd({
        type: "claim",
        consumer: "c1",
        minIdleMs: 0,
        target: { kind: "scan", fromSeq: 2, count: 10 },
        justId: false,
        ownOnly: true,
      }),
      T + 7,
    );
    assert.deepEqual(history.ok && history.kind === "streams.claim" && history.claimed, [
      { seq: 2, deliveries: 2 },
    ]);
  });

  it("counts redeliveries apart from first deliveries, per group and per consumer", () => {
    const s = setup(3);
    run(s, cmd({ type: "fetch", consumer: "c1", max: 2 }), T);
    run(s, cmd({ type: "settle", action: "nack", seqs: [1], delayMs: 0 }), T + 1);
    // c2 gets 1 again (nacked) and 3 for the first time.
    run(s, cmd({ type: "fetch", consumer: "c2", max: 5 }), T + 2);
    // c3 claims 2 from c1: delivered before, so a redelivery; a JUSTID claim is no delivery.
    const claim = (consumer: string, justId: boolean) =>
      run(
        s,
        cmd({ type: "claim", consumer, minIdleMs: 0, target: { kind: "seqs", seqs: [2] }, justId }),
        T + 3,
      );
    claim("c3", false);
    claim("c4", true);
    const g = group(s);
    assert.deepEqual([g.delivered, g.redelivered], [5, 2]);
    assert.deepEqual(
      g.consumers?.map(([name, , , delivered, redelivered]) => [name, delivered, redelivered]),
      [
        ["c1", 2, 0],
        ["c2", 2, 1],
        ["c3", 1, 1],
        ["c4", undefined, undefined],
      ],
    );
  });

  it("XCLAIM's options: forced, with a set idle time and delivery count, each sequence once", () => {
    const s = setup(3);
    run(s, cmd({ type: "group-position", nextSeq: 4 }), T);
    const forced = run(
      s,
      cmd({
        type: "claim",
        consumer: "c9",
        minIdleMs: 0,
        target: { kind: "seqs", seqs: [2, 2, 7] },
        justId: false,
        idleMs: 500,
        retryCount: 4,
        force: true,
      }),
      T + 1000,
    );
    assert.deepEqual(forced.ok && forced.kind === "streams.claim" && forced.claimed, [
      { seq: 2, deliveries: 4 },
    ]);
    assert.equal(group(s).pending, 1);
    assert.deepEqual(listPending(s, group(s), 10), [
      { seq: 2, consumer: "c9", availableAtMs: T + 1000 + 1e12, deliveries: 4, deliveredAtMs: T + 500 },
    ]);
    // Only messages the group has passed can be forced: one still to be handed out is skipped.
    run(s, cmd({ type: "group-position", nextSeq: 3 }), T);
    const later = run(
      s,
      cmd({
        type: "claim",
        consumer: "c9",
        minIdleMs: 0,
        target: { kind: "seqs", seqs: [3] },
        justId: false,
        force: true,
      }),
      T + 1000,
    );
    assert.deepEqual(later.ok && later.kind === "streams.claim" && later.claimed, []);
  });
});

describe("streams: a stream's last id set by hand (XSETID)", () => {
  const setId = (s: MemoryState, ms: number, n: number, extra: object = {}) =>
    run(s, { type: "set-id", name: "s", lastIdMs: ms, lastIdN: n, ...extra }, T);
  const refusal = (result: ReturnType<typeof setId>) =>
    result.ok ? "ok" : `${result.code}: ${result.message}`;

  it("refuses an id below the newest message or a count below the messages held, changing nothing", () => {
    const s = new MemoryState();
    add(s, { ms: 5, n: 1 });
    add(s, { ms: 5, n: 2 });
    assert.equal(
      refusal(setId(s, 5, 1)),
      "ERR_CONFLICT: The ID specified in XSETID is smaller than the target stream top item",
    );
    assert.equal(
      refusal(setId(s, 6, 0, { entriesAdded: 1 })),
      "ERR_CONFLICT: The entries_added specified in XSETID is smaller than the target stream length",
    );
    assert.equal(getStreamMeta(s, "s")?.lastIdMs, 5);
    assert.equal(
      refusal(run(s, { type: "set-id", name: "t", lastIdMs: 1, lastIdN: 0 }, T)).split(":")[0],
      "ERR_NOT_FOUND",
    );
  });

  it("sets the last id, entries added and largest deleted id; the next append goes past it", () => {
    const s = new MemoryState();
    add(s, { ms: 5, n: 1 });
    assert.equal(refusal(setId(s, 9, 0, { entriesAdded: 10, maxDeletedId: { ms: 7, n: 0 } })), "ok");
    const meta = getStreamMeta(s, "s");
    assert.deepEqual(
      [meta?.lastIdMs, meta?.lastIdN, meta?.maxDeletedIdMs, meta?.entriesAddedDelta],
      [9, 0, 7, 9],
    );
    assert.equal(idOf(add(s, { ms: 9, n: 0 })).startsWith("refused"), true);
    assert.equal(idOf(add(s, { ms: 9, n: 1 })), "9-1");
    // Redis 7.2: not below the largest deleted id.
    assert.equal(
      refusal(setId(s, 6, 0)),
      "ERR_CONFLICT: The ID specified in XSETID is smaller than current max_deleted_entry_id",
    );
  });
});
