// A shared-keyspace transaction (Redis's one keyspace): each step sees a stream as a key of type
// stream, as Redis's commands do. Every case goes through the real envelope codec, and checks both
// the step's result and what the state holds afterwards (a refused step changes nothing).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyEnvelope, decodeEnvelope, encodeEnvelope } from "../../../../src/service/command.js";
import { getKv, type StepResult, type TransactionStep } from "../../../../src/service/kv/index.js";
import { MemoryState } from "../../../../src/service/state.js";
import { getStreamMeta } from "../../../../src/service/streams/index.js";
import { utf8 } from "../../../../src/util/bytes.js";
import { config } from "../streams/helpers.js";

const T = 1_700_000_000_000;

const xadd = (name: string): TransactionStep => ({
  type: "stream",
  command: { type: "append", name, payload: utf8("v"), headers: [], createWith: config() },
});
const set = (key: string, extra: object = {}): TransactionStep => ({
  type: "set",
  key: utf8(key),
  value: utf8("x"),
  expiry: { kind: "never" },
  ...extra,
});

/** Applies `steps` as one transaction entry; `sharedKeyspace` as the Redis adapter proposes it. */
function tx(state: MemoryState, steps: readonly TransactionStep[], sharedKeyspace = true): StepResult[] {
  const command = { type: "transaction", watch: [], commands: steps, sharedKeyspace } as const;
  const envelope = decodeEnvelope(encodeEnvelope({ tsMs: T, command: { service: "kv", command } }));
  const outcome = applyEnvelope(state, envelope);
  assert.ok(outcome.ok && outcome.result.kind === "kv.transaction");
  return [...outcome.result.results];
}

const codeOf = (result: StepResult | undefined) => (result === undefined || result.ok ? "ok" : result.code);

describe("shared keyspace: a stream is a key", () => {
  it("string commands on a stream's name answer ERR_WRONG_TYPE and change nothing", () => {
    const s = new MemoryState();
    tx(s, [xadd("s")]);
    const results = tx(s, [
      { type: "increment", key: utf8("s"), by: 1n },
      { type: "update", key: utf8("s"), op: { kind: "append", bytes: utf8("a"), valueBytesMax: 100 } },
      { type: "update", key: utf8("s"), op: { kind: "get-delete" } },
      set("s", { returnOld: true }),
    ]);
    assert.deepEqual(results.map(codeOf), [
      "ERR_WRONG_TYPE",
      "ERR_WRONG_TYPE",
      "ERR_WRONG_TYPE",
      "ERR_WRONG_TYPE",
    ]);
    assert.equal(getKv(s, utf8("s")), undefined);
    assert.equal(getStreamMeta(s, "s")?.lastSeq, 1);
  });

  it("a stream command on a key's name answers ERR_WRONG_TYPE and creates no stream", () => {
    const s = new MemoryState();
    const [written, added] = tx(s, [set("k"), xadd("k")]);
    assert.equal(codeOf(written), "ok");
    assert.equal(added?.kind, "streams.append");
    assert.equal(codeOf(added), "ERR_WRONG_TYPE");
    assert.equal(getStreamMeta(s, "k"), undefined);
  });

  it("a read reports a stream; SET NX finds it; SET, MSET and DEL replace or remove it", () => {
    const s = new MemoryState();
    tx(s, [xadd("a"), xadd("b"), xadd("c"), xadd("d")]);
    const [read, nx] = tx(s, [{ type: "read", key: utf8("a") }, set("a", { condition: "nx" })]);
    assert.deepEqual(read, { kind: "kv.read", ok: true, value: null, expireAtMs: 0, stream: true });
    assert.equal(nx?.kind === "kv.set" && nx.ok && nx.written, false);
    const [overwritten, many, deleted] = tx(s, [
      set("a", { condition: "xx" }),
      { type: "put-many", pairs: [[utf8("b"), utf8("y")]] },
      { type: "delete", key: utf8("c") },
    ]);
    assert.equal(overwritten?.kind === "kv.set" && overwritten.ok && overwritten.written, true);
    assert.equal(many?.ok, true);
    assert.equal(deleted?.kind === "kv.delete" && deleted.ok && deleted.deleted, true);
    for (const name of ["a", "b", "c"]) assert.equal(getStreamMeta(s, name), undefined, name);
    assert.equal(new TextDecoder().decode(getKv(s, utf8("a"))?.value), "x");
    assert.equal(new TextDecoder().decode(getKv(s, utf8("b"))?.value), "y");
    assert.notEqual(getStreamMeta(s, "d"), undefined);
  });

  it("MSETNX writes nothing when one name is a stream; RENAMENX onto a stream does not move", () => {
    const s = new MemoryState();
    tx(s, [xadd("s"), set("k")]);
    const [many, renamed] = tx(s, [
      {
        type: "put-many",
        pairs: [
          [utf8("n"), utf8("1")],
          [utf8("s"), utf8("2")],
        ],
        ifNoneExist: true,
      },
      { type: "copy", from: utf8("k"), to: utf8("s"), move: true, replace: false },
    ]);
    assert.equal(many?.kind === "kv.put-many" && many.ok && many.written, false);
    assert.equal(renamed?.kind === "kv.copy" && renamed.ok && renamed.done, false);
    assert.equal(getKv(s, utf8("n")), undefined);
    assert.notEqual(getStreamMeta(s, "s"), undefined);
  });

  it("a stream cannot expire, be copied or renamed (ERR_BAD_REQUEST); PERSIST finds no TTL", () => {
    const s = new MemoryState();
    tx(s, [xadd("s")]);
    const [expired, persisted, copied] = tx(s, [
      { type: "set-ttl", key: utf8("s"), expiry: { kind: "after", ms: 1000 } },
      { type: "set-ttl", key: utf8("s"), expiry: { kind: "never" } },
      { type: "copy", from: utf8("s"), to: utf8("t"), move: true, replace: true },
    ]);
    assert.equal(codeOf(expired), "ERR_BAD_REQUEST");
    assert.equal(persisted?.kind === "kv.set-ttl" && persisted.ok && persisted.changed, false);
    assert.equal(codeOf(copied), "ERR_BAD_REQUEST");
    assert.notEqual(getStreamMeta(s, "s"), undefined);
  });

  it("FLUSHALL removes keys and streams, counting both", () => {
    const s = new MemoryState();
    tx(s, [xadd("s"), xadd("t"), set("k")]);
    const [flushed] = tx(s, [{ type: "flush" }]);
    assert.equal(flushed?.kind === "kv.flush" && flushed.removed, 3);
    assert.equal(getStreamMeta(s, "s"), undefined);
    assert.equal(getStreamMeta(s, "t"), undefined);
    assert.equal(getKv(s, utf8("k")), undefined);
  });

  it("a transaction without sharedKeyspace (entries written before it) keeps the two apart", () => {
    const s = new MemoryState();
    tx(s, [xadd("s")], false);
    const [incremented, added, flushed] = tx(
      s,
      [{ type: "increment", key: utf8("s"), by: 1n }, xadd("s"), { type: "flush" }],
      false,
    );
    assert.equal(codeOf(incremented), "ok");
    assert.equal(codeOf(added), "ok");
    assert.equal(flushed?.kind === "kv.flush" && flushed.removed, 1);
    assert.equal(getStreamMeta(s, "s")?.lastSeq, 2);
  });
});
