// The command envelope: it round-trips through entry bytes, malformed entry bytes fail only with
// DecodeError, and idempotency keys return the first result within the window and are forgotten
// (and pruned) after it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  applyEnvelope,
  decodeEnvelope,
  decodeStoredResult,
  type Envelope,
  encodeEnvelope,
} from "../../../src/service/command.js";
import { getKv } from "../../../src/service/kv/index.js";
import { MemoryState } from "../../../src/service/state.js";
import { deadLetterStreamConfig } from "../../../src/service/streams/index.js";
import { ByteReader, ByteWriter, DecodeError, utf8 } from "../../../src/util/bytes.js";

const putA = (value: string, tsMs: number, idempotencyKey?: string): Envelope => ({
  tsMs,
  ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
  command: { service: "kv", command: { type: "put", key: utf8("a"), value: utf8(value) } },
});
const settings = { windowMs: 1000, prunePerEntryMax: 10 };

describe("command envelope", () => {
  it("round-trips", () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.option(fc.string({ minLength: 1, maxLength: 30 }), { nil: undefined }),
        fc.string(),
        (tsMs, key, value) => {
          const envelope = putA(value, tsMs, key);
          assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
        },
      ),
    );
  });

  it("fails only with DecodeError on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodeEnvelope(bytes);
        } catch (error) {
          assert.ok(error instanceof DecodeError, String(error));
        }
      }),
    );
  });
});

describe("idempotency keys", () => {
  it("a retry with the same key gets the first result and changes nothing", () => {
    const s = new MemoryState();
    const first = applyEnvelope(s, putA("1", 100, "k1"), settings);
    assert.deepEqual(first, {
      ok: true,
      result: { kind: "kv.put", ok: true, revision: 1, created: true },
      duplicate: false,
    });
    const retry = applyEnvelope(s, putA("1", 200, "k1"), settings);
    assert.deepEqual(retry, {
      ok: true,
      result: { kind: "kv.put", ok: true, revision: 1, created: true },
      duplicate: true,
    });
    assert.equal(getKv(s, utf8("a"))?.version, 1);
  });

  it("the same key with a different request is refused", () => {
    const s = new MemoryState();
    applyEnvelope(s, putA("1", 100, "k1"), settings);
    const other = applyEnvelope(s, putA("2", 150, "k1"), settings);
    assert.equal(other.ok, false);
    assert.equal(other.ok === false && other.code, "ERR_IDEMPOTENCY_KEY_REUSED");
    assert.equal(new TextDecoder().decode(getKv(s, utf8("a"))?.value), "1");
  });

  it("after the window the key is forgotten and pruned", () => {
    const s = new MemoryState();
    applyEnvelope(s, putA("1", 100, "k1"), settings);
    applyEnvelope(s, putA("x", 1101), settings);
    assert.equal(s.size("dedupe"), 0, "pruned by a later entry's time");
    assert.equal(s.size("dedupe-ttl"), 0);
    const again = applyEnvelope(s, putA("1", 1200, "k1"), settings);
    assert.deepEqual(again, {
      ok: true,
      result: { kind: "kv.put", ok: true, revision: 3, created: false },
      duplicate: false,
    });
  });

  it("a key recorded under a slow leader survives a fast leader's return for the whole window", () => {
    // Leader F's clock is ahead by more than the window; leadership moves to C (correct clock),
    // which records key k1; F leads again shortly after. By real time only 40 ms passed since k1
    // was recorded, well inside the 1000 ms window, so the retry must still be answered from the
    // table, not executed a second time.
    const s = new MemoryState();
    applyEnvelope(s, putA("f", 100 + 1500), settings); // F: real time 100
    applyEnvelope(s, putA("1", 110, "k1"), settings); // C: real time 110
    const retry = applyEnvelope(s, putA("1", 150 + 1500, "k1"), settings); // F: real time 150
    assert.equal(retry.ok && retry.duplicate, true, "the key was forgotten early");
    assert.equal(getKv(s, utf8("a"))?.version, 2, "the retry was applied twice");
  });

  it("prunes at most prunePerEntryMax keys per entry", () => {
    const s = new MemoryState();
    for (let i = 0; i < 25; i++) applyEnvelope(s, putA(String(i), 100, `k${i}`), settings);
    applyEnvelope(s, putA("y", 5000), settings);
    assert.equal(s.size("dedupe"), 15);
  });
});

describe("remembered results", () => {
  /** Replaces the result remembered for `key` by `json`, as the previous release wrote it. */
  function rememberAs(s: MemoryState, key: string, json: string): void {
    const stored = s.get("dedupe", utf8(key));
    assert.ok(stored !== undefined);
    const reader = new ByteReader(stored);
    s.put("dedupe", utf8(key), new ByteWriter().u64(reader.u64()).u32(reader.u32()).string(json).finish());
  }

  it("a retry answers the first result with its kind, also when the previous release remembered it untagged", () => {
    const s = new MemoryState();
    applyEnvelope(s, putA("1", 100, "k1"), settings);
    rememberAs(s, "k1", '{"ok":true,"revision":1,"created":true}');
    assert.deepEqual(applyEnvelope(s, putA("1", 200, "k1"), settings), {
      ok: true,
      result: { kind: "kv.put", ok: true, revision: 1, created: true },
      duplicate: true,
    });
  });

  it("a refusal the previous release remembered keeps its details", () => {
    const s = new MemoryState();
    applyEnvelope(s, putA("1", 100), settings);
    const ifAbsent: Envelope = {
      tsMs: 150,
      idempotencyKey: "k2",
      command: { service: "kv", command: { type: "put", key: utf8("a"), value: utf8("2"), ifAbsent: true } },
    };
    const first = applyEnvelope(s, ifAbsent, settings);
    rememberAs(s, "k2", '{"ok":false,"code":"ERR_CONFLICT","message":"key exists","currentRevision":1}');
    const retry = applyEnvelope(s, { ...ifAbsent, tsMs: 160 }, settings);
    assert.deepEqual(retry, { ...first, duplicate: true });
    assert.deepEqual(retry.ok && retry.result, {
      kind: "kv.put",
      ok: false,
      code: "ERR_CONFLICT",
      message: "key exists",
      details: { currentRevision: 1 },
    });
  });

  it("a stream result remembered with its old `op` tag reads back with its kind", () => {
    const s = new MemoryState();
    const create: Envelope = {
      tsMs: 100,
      command: { service: "streams", command: { type: "create", name: "s", config: deadLetterStreamConfig } },
    };
    applyEnvelope(s, create, settings);
    const append: Envelope = {
      tsMs: 110,
      idempotencyKey: "k3",
      command: {
        service: "streams",
        command: { type: "append", name: "s", payload: utf8("p"), headers: [] },
      },
    };
    applyEnvelope(s, append, settings);
    rememberAs(s, "k3", '{"ok":true,"op":"append","seq":1,"id":"110-0","duplicate":false}');
    assert.deepEqual(applyEnvelope(s, { ...append, tsMs: 120 }, settings), {
      ok: true,
      result: { kind: "streams.append", ok: true, seq: 1, id: "110-0", duplicate: false },
      duplicate: true,
    });
  });

  it("a remembered result that does not fit its command's result type is corruption", () => {
    const command = putA("1", 0).command;
    assert.throws(
      () => decodeStoredResult(command, '{"ok":true,"revision":"1","created":true}'),
      DecodeError,
    );
    assert.throws(
      () => decodeStoredResult(command, '{"kind":"kv.delete","ok":true,"deleted":true,"revision":1}'),
      DecodeError,
    );
    assert.throws(
      () => decodeStoredResult(command, '{"ok":false,"code":"ERR_NOPE","message":"x"}'),
      DecodeError,
    );
    assert.throws(() => decodeStoredResult(command, "not json"), DecodeError);
  });
});
