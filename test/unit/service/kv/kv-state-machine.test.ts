// The key-value state machine: each command's semantics (conditions, revisions, TTL by leader time,
// increments), range paging, and a model-based property test against a plain Map reference.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  applyKv,
  decodeKvCommand,
  encodeKvCommand,
  getKv,
  type KvCommand,
  type KvPutMany,
  type KvSetTtl,
  kvKeyCount,
  kvRevision,
  rangeKv,
} from "../../../../src/service/kv/index.js";
import { MemoryState } from "../../../../src/service/state.js";
import { ByteReader, DecodeError, utf8 } from "../../../../src/util/bytes.js";

const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const put = (
  key: string,
  value: string,
  extra: Partial<{ ifRevision: number; ifAbsent: boolean; ttlMs: number }> = {},
) => ({ type: "put", key: utf8(key), value: utf8(value), ...extra }) as const;

describe("kv state machine: put, get and delete", () => {
  it("stores values with etcd-style revisions and versions", () => {
    const s = new MemoryState();
    assert.deepEqual(applyKv(s, put("a", "1"), 1000), {
      kind: "kv.put",
      ok: true,
      revision: 1,
      created: true,
    });
    assert.deepEqual(applyKv(s, put("b", "x"), 1000), {
      kind: "kv.put",
      ok: true,
      revision: 2,
      created: true,
    });
    assert.deepEqual(applyKv(s, put("a", "2"), 1000), {
      kind: "kv.put",
      ok: true,
      revision: 3,
      created: false,
    });
    const a = getKv(s, utf8("a"));
    assert.equal(text(a?.value), "2");
    assert.equal(a?.createRevision, 1);
    assert.equal(a?.modRevision, 3);
    assert.equal(a?.version, 2);
    assert.equal(kvRevision(s), 3);
  });

  it("ifAbsent refuses an existing key and changes nothing", () => {
    const s = new MemoryState();
    applyKv(s, put("a", "1"), 0);
    const result = applyKv(s, put("a", "2", { ifAbsent: true }), 0);
    assert.deepEqual(result, {
      kind: "kv.put",
      ok: false,
      code: "ERR_CONFLICT",
      message: "key exists",
      details: { currentRevision: 1 },
    });
    assert.equal(text(getKv(s, utf8("a"))?.value), "1");
    assert.equal(kvRevision(s), 1);
  });

  it("ifRevision succeeds only at the key's modify revision; 0 means absent", () => {
    const s = new MemoryState();
    assert.equal(applyKv(s, put("a", "1", { ifRevision: 0 }), 0).ok, true);
    assert.equal(applyKv(s, put("a", "2", { ifRevision: 0 }), 0).ok, false);
    assert.equal(applyKv(s, put("a", "3", { ifRevision: 7 }), 0).ok, false);
    assert.deepEqual(applyKv(s, put("a", "4", { ifRevision: 1 }), 0), {
      kind: "kv.put",
      ok: true,
      revision: 2,
      created: false,
    });
  });

  it("deletes, reporting whether anything was there, and honours ifRevision", () => {
    const s = new MemoryState();
    applyKv(s, put("a", "1"), 0);
    assert.deepEqual(applyKv(s, { type: "delete", key: utf8("a"), ifRevision: 9 }, 0), {
      kind: "kv.delete",
      ok: false,
      code: "ERR_CONFLICT",
      message: "key is not at revision 9",
      details: { currentRevision: 1 },
    });
    assert.deepEqual(applyKv(s, { type: "delete", key: utf8("a") }, 0), {
      kind: "kv.delete",
      ok: true,
      deleted: true,
      revision: 2,
    });
    assert.deepEqual(applyKv(s, { type: "delete", key: utf8("a") }, 0), {
      kind: "kv.delete",
      ok: true,
      deleted: false,
      revision: 2,
    });
    assert.equal(getKv(s, utf8("a")), undefined);
  });

  it("a key re-created after deletion starts a new incarnation", () => {
    const s = new MemoryState();
    applyKv(s, put("a", "1"), 0);
    applyKv(s, put("a", "2"), 0);
    applyKv(s, { type: "delete", key: utf8("a") }, 0);
    applyKv(s, put("a", "3"), 0);
    const a = getKv(s, utf8("a"));
    assert.equal(a?.createRevision, 4);
    assert.equal(a?.version, 1);
  });
});

describe("kv state machine: increment", () => {
  it("treats a missing key as 0 and adds, positive or negative", () => {
    const s = new MemoryState();
    assert.deepEqual(applyKv(s, { type: "increment", key: utf8("n"), by: 5n }, 0), {
      kind: "kv.increment",
      ok: true,
      value: "5",
      revision: 1,
    });
    assert.deepEqual(applyKv(s, { type: "increment", key: utf8("n"), by: -7n }, 0), {
      kind: "kv.increment",
      ok: true,
      value: "-2",
      revision: 2,
    });
  });

  it("refuses a value that is not a decimal int64, and overflow, changing nothing", () => {
    const s = new MemoryState();
    for (const bad of ["abc", "1.5", " 1", "01", "", "9223372036854775808"]) {
      applyKv(s, put("x", bad), 0);
      const revision = kvRevision(s);
      const result = applyKv(s, { type: "increment", key: utf8("x"), by: 1n }, 0);
      assert.equal(result.ok, false, bad);
      assert.equal(kvRevision(s), revision);
    }
    applyKv(s, put("max", "9223372036854775807"), 0);
    const overflow = applyKv(s, { type: "increment", key: utf8("max"), by: 1n }, 0);
    assert.deepEqual(overflow, {
      kind: "kv.increment",
      ok: false,
      code: "ERR_NOT_INTEGER",
      message: "increment or decrement would overflow",
      details: {},
    });
    assert.equal(text(getKv(s, utf8("max"))?.value), "9223372036854775807");
  });

  it("keeps the key's TTL, as Redis INCR does", () => {
    const s = new MemoryState();
    applyKv(s, put("n", "1", { ttlMs: 100 }), 1000);
    applyKv(s, { type: "increment", key: utf8("n"), by: 1n }, 1050);
    assert.equal(getKv(s, utf8("n"))?.expireAtMs, 1100);
  });
});

describe("kv state machine: TTL by leader time", () => {
  it("hides a key once the applied clock passes its expiry, and a sweep removes it", () => {
    const s = new MemoryState();
    applyKv(s, put("t", "v", { ttlMs: 100 }), 1000);
    applyKv(s, put("other", "v"), 1099);
    assert.equal(text(getKv(s, utf8("t"))?.value), "v");
    applyKv(s, put("other", "w"), 1100);
    assert.equal(getKv(s, utf8("t")), undefined, "expired by the clock of the last applied entry");
    assert.equal(s.size("kv"), 2, "still stored until a sweep");
    assert.deepEqual(applyKv(s, { type: "expire", max: 100 }, 1100), {
      kind: "kv.expire",
      ok: true,
      expired: 1,
    });
    assert.equal(s.size("kv"), 1);
    assert.equal(s.size("kv-ttl"), 0);
  });

  it("the clock never runs backwards when a new leader's timestamps are behind", () => {
    const s = new MemoryState();
    applyKv(s, put("t", "v", { ttlMs: 10 }), 1000);
    applyKv(s, put("x", "y"), 2000);
    applyKv(s, put("x", "z"), 500);
    assert.equal(getKv(s, utf8("t")), undefined);
  });

  it("a put without ttl clears the TTL and its index entry", () => {
    const s = new MemoryState();
    applyKv(s, put("t", "v", { ttlMs: 10 }), 1000);
    applyKv(s, put("t", "w"), 1001);
    assert.equal(getKv(s, utf8("t"))?.expireAtMs, 0);
    assert.equal(s.size("kv-ttl"), 0);
    applyKv(s, { type: "expire", max: 10 }, 5000);
    assert.equal(text(getKv(s, utf8("t"))?.value), "w");
  });

  it("conditions see an expired key as absent; writing it starts a new incarnation", () => {
    const s = new MemoryState();
    applyKv(s, put("t", "v", { ttlMs: 10 }), 1000);
    const again = applyKv(s, put("t", "w", { ifAbsent: true }), 2000);
    assert.deepEqual(again, { kind: "kv.put", ok: true, revision: 2, created: true });
    assert.equal(getKv(s, utf8("t"))?.version, 1);
    assert.equal(s.size("kv-ttl"), 0);
  });

  it("a sweep removes at most max keys, earliest expiry first", () => {
    const s = new MemoryState();
    for (let i = 0; i < 5; i++) applyKv(s, put(`k${i}`, "v", { ttlMs: 10 + i }), 1000);
    assert.deepEqual(applyKv(s, { type: "expire", max: 3 }, 5000), {
      kind: "kv.expire",
      ok: true,
      expired: 3,
    });
    assert.equal(s.size("kv"), 2);
    assert.ok(s.get("kv", utf8("k4")) !== undefined && s.get("kv", utf8("k0")) === undefined);
  });
});

describe("kv state machine: range", () => {
  const s = new MemoryState();
  for (const k of ["a", "app/1", "app/2", "app/3", "apple", "b"]) applyKv(s, put(k, k), 0);
  applyKv(s, put("app/0", "gone", { ttlMs: 1 }), 0);
  applyKv(s, put("z", "z"), 10);
  const keys = (page: { items: readonly { key: Uint8Array }[] }) => page.items.map((i) => text(i.key));

  it("reads a prefix in byte order, skipping expired keys", () => {
    assert.deepEqual(keys(rangeKv(s, { prefix: utf8("app/"), limit: 10 })), ["app/1", "app/2", "app/3"]);
  });

  it("pages with a limit and a continuation key", () => {
    const first = rangeKv(s, { prefix: utf8("app"), limit: 2 });
    assert.deepEqual(keys(first), ["app/1", "app/2"]);
    assert.ok(first.next !== undefined);
    const second = rangeKv(s, { prefix: utf8("app"), limit: 2, after: first.next });
    assert.deepEqual(keys(second), ["app/3", "apple"]);
    assert.equal(second.next, undefined);
  });

  it("reads [start, end)", () => {
    assert.deepEqual(keys(rangeKv(s, { start: utf8("apple"), end: utf8("z"), limit: 10 })), ["apple", "b"]);
    assert.deepEqual(keys(rangeKv(s, { start: utf8("b"), limit: 10 })), ["b", "z"]);
  });
});

const keyArb = fc.constantFrom("a", "b", "c");
/** The commands the Map reference model knows. */
const commandArb: fc.Arbitrary<Exclude<KvCommand, KvSetTtl | KvPutMany>> = fc.oneof(
  fc.record({
    type: fc.constant("put" as const),
    key: keyArb.map(utf8),
    value: fc.string({ maxLength: 4 }).map(utf8),
  }),
  fc
    .record(
      {
        type: fc.constant("put" as const),
        key: keyArb.map(utf8),
        value: fc.nat(20).map((n) => utf8(String(n))),
        ifRevision: fc.nat(6),
        ifAbsent: fc.boolean(),
        ttlMs: fc.nat(50),
      },
      { requiredKeys: ["type", "key", "value"] },
    )
    .map(({ ifAbsent, ...rest }) => (ifAbsent === true ? { ...rest, ifAbsent } : rest)),
  fc.record({ type: fc.constant("delete" as const), key: keyArb.map(utf8) }),
  fc.record({ type: fc.constant("delete" as const), key: keyArb.map(utf8), ifRevision: fc.nat(6) }),
  fc.record({ type: fc.constant("increment" as const), key: keyArb.map(utf8), by: fc.bigInt(-5n, 5n) }),
  fc.record({ type: fc.constant("expire" as const), max: fc.nat(3) }),
);

/** Every command, for the codec. */
const anyCommandArb: fc.Arbitrary<KvCommand> = fc.oneof(
  commandArb,
  fc
    .record(
      {
        type: fc.constant("set-ttl" as const),
        key: keyArb.map(utf8),
        expiry: fc.oneof(
          // fast-check builds records without a prototype; the decoder builds plain objects.
          fc
            .record({ kind: fc.constantFrom("after" as const, "at" as const), ms: fc.nat() })
            .map((e) => ({ ...e })),
          fc.constant({ kind: "never" as const }),
        ),
        condition: fc.constantFrom("nx" as const, "xx" as const, "gt" as const, "lt" as const),
      },
      { requiredKeys: ["type", "key", "expiry"] },
    )
    .map((c): KvSetTtl => c),
  fc
    .record(
      {
        type: fc.constant("put-many" as const),
        pairs: fc.array(fc.tuple(keyArb.map(utf8), fc.string({ maxLength: 4 }).map(utf8)), { maxLength: 4 }),
        ifNoneExist: fc.constant(true as const),
      },
      { requiredKeys: ["type", "pairs"] },
    )
    .map((c): KvPutMany => c),
);

describe("kv state machine: TTL changes of existing keys", () => {
  const setTtl = (key: string, expiry: KvSetTtl["expiry"], condition?: KvSetTtl["condition"]): KvSetTtl => ({
    type: "set-ttl",
    key: utf8(key),
    expiry,
    ...(condition !== undefined ? { condition } : {}),
  });

  it("sets a TTL by the entry's leader time and keeps the value; the key expires by it", () => {
    const s = new MemoryState();
    applyKv(s, put("a", "1"), 1000);
    assert.deepEqual(applyKv(s, setTtl("a", { kind: "after", ms: 500 }), 1100), {
      kind: "kv.set-ttl",
      ok: true,
      changed: true,
      revision: 2,
    });
    const record = getKv(s, utf8("a"));
    assert.equal(text(record?.value), "1");
    assert.equal(record?.expireAtMs, 1600);
    assert.equal(record?.version, 2, "a TTL change is a write of the key, as WATCH sees it in Redis");
    applyKv(s, { type: "expire", max: 10 }, 1600);
    assert.equal(getKv(s, utf8("a")), undefined);
  });

  it("clears a TTL (persist); clearing none, or a missing key, changes nothing", () => {
    const s = new MemoryState();
    applyKv(s, put("a", "1", { ttlMs: 100 }), 1000);
    assert.equal(applyKv(s, setTtl("a", { kind: "never" }), 1050).ok, true);
    assert.equal(getKv(s, utf8("a"))?.expireAtMs, 0);
    applyKv(s, { type: "expire", max: 10 }, 5000);
    assert.equal(text(getKv(s, utf8("a"))?.value), "1", "no longer expires");
    const revision = kvRevision(s);
    assert.deepEqual(applyKv(s, setTtl("a", { kind: "never" }), 5000), {
      kind: "kv.set-ttl",
      ok: true,
      changed: false,
      revision,
    });
    assert.equal(
      applyKv(s, setTtl("missing", { kind: "after", ms: 10 }), 5000).kind === "kv.set-ttl" &&
        kvRevision(s) === revision,
      true,
    );
    assert.equal(getKv(s, utf8("missing")), undefined, "a TTL change never creates a key");
  });

  it("an expiry at or before the entry's time deletes the key, as Redis does", () => {
    const s = new MemoryState();
    applyKv(s, put("a", "1"), 1000);
    const result = applyKv(s, setTtl("a", { kind: "at", ms: 900 }), 1000);
    assert.equal(result.kind === "kv.set-ttl" && result.changed, true);
    assert.equal(getKv(s, utf8("a")), undefined);
    assert.equal(kvKeyCount(s), 0);
  });

  it("honours Redis 7's NX, XX, GT and LT, a key without a TTL counting as never expiring", () => {
    const changed = (condition: KvSetTtl["condition"], ttlMs: number | undefined, newAtMs: number) => {
      const s = new MemoryState();
      applyKv(s, put("a", "1", ttlMs !== undefined ? { ttlMs } : {}), 1000);
      const result = applyKv(s, setTtl("a", { kind: "at", ms: newAtMs }, condition), 1000);
      return result.kind === "kv.set-ttl" && result.changed;
    };
    assert.equal(changed("nx", undefined, 5000), true);
    assert.equal(changed("nx", 100, 5000), false);
    assert.equal(changed("xx", undefined, 5000), false);
    assert.equal(changed("xx", 100, 5000), true);
    assert.equal(changed("gt", 100, 5000), true);
    assert.equal(changed("gt", 100, 1050), false);
    assert.equal(changed("gt", undefined, 5000), false, "nothing is later than never");
    assert.equal(changed("lt", 100, 1050), true);
    assert.equal(changed("lt", 100, 5000), false);
    assert.equal(changed("lt", undefined, 5000), true, "any time is earlier than never");
  });
});

describe("kv state machine: multi-key writes and the key count", () => {
  const pairs = (...entries: [string, string][]): KvPutMany["pairs"] =>
    entries.map(([k, v]) => [utf8(k), utf8(v)] as const);

  it("writes every key at one revision and clears their TTLs (MSET)", () => {
    const s = new MemoryState();
    applyKv(s, put("a", "old", { ttlMs: 100 }), 1000);
    assert.deepEqual(applyKv(s, { type: "put-many", pairs: pairs(["a", "1"], ["b", "2"]) }, 1010), {
      kind: "kv.put-many",
      ok: true,
      written: true,
      revision: 2,
    });
    assert.equal(getKv(s, utf8("a"))?.modRevision, 2);
    assert.equal(getKv(s, utf8("b"))?.modRevision, 2);
    assert.equal(getKv(s, utf8("a"))?.expireAtMs, 0);
    applyKv(s, { type: "expire", max: 10 }, 5000);
    assert.equal(text(getKv(s, utf8("a"))?.value), "1");
  });

  it("with ifNoneExist writes nothing if any key exists (MSETNX); an expired key does not count", () => {
    const s = new MemoryState();
    applyKv(s, put("b", "x"), 1000);
    applyKv(s, put("c", "x", { ttlMs: 10 }), 1000);
    const refused = applyKv(
      s,
      { type: "put-many", pairs: pairs(["a", "1"], ["b", "2"]), ifNoneExist: true },
      1100,
    );
    assert.deepEqual(refused, { kind: "kv.put-many", ok: true, written: false, revision: 2 });
    assert.equal(getKv(s, utf8("a")), undefined);
    const written = applyKv(
      s,
      { type: "put-many", pairs: pairs(["a", "1"], ["c", "2"]), ifNoneExist: true },
      1100,
    );
    assert.equal(written.kind === "kv.put-many" && written.written, true);
    assert.equal(text(getKv(s, utf8("c"))?.value), "2");
  });

  it("counts stored keys through writes, deletes, TTL changes and sweeps", () => {
    const s = new MemoryState();
    applyKv(s, { type: "put-many", pairs: pairs(["a", "1"], ["b", "2"], ["a", "3"]) }, 1000);
    assert.equal(kvKeyCount(s), 2);
    applyKv(s, put("c", "1", { ttlMs: 10 }), 1000);
    applyKv(s, { type: "increment", key: utf8("n"), by: 1n }, 1000);
    assert.equal(kvKeyCount(s), 4);
    applyKv(s, { type: "delete", key: utf8("a") }, 1000);
    applyKv(s, { type: "delete", key: utf8("a") }, 1000);
    assert.equal(kvKeyCount(s), 3);
    applyKv(s, { type: "expire", max: 10 }, 2000);
    assert.equal(kvKeyCount(s), 2);
  });

  it("a keyspace written before the count existed is counted by a scan", () => {
    const s = new MemoryState();
    applyKv(s, put("a", "1"), 1000);
    applyKv(s, put("b", "1"), 1000);
    s.delete("meta", utf8("kv.count"));
    assert.equal(kvKeyCount(s), 2);
    applyKv(s, put("c", "1"), 1000);
    assert.equal(kvKeyCount(s), 3, "and stays counted by a scan");
  });
});

describe("kv state machine: properties", () => {
  it("command encoding round-trips", () => {
    fc.assert(
      fc.property(anyCommandArb, (command) => {
        const bytes = encodeKvCommand(command).finish();
        const reader = new ByteReader(bytes);
        assert.deepEqual({ ...decodeKvCommand(reader) }, { ...command });
        reader.end();
      }),
    );
  });

  it("decoding arbitrary bytes fails only with DecodeError", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        try {
          decodeKvCommand(new ByteReader(bytes));
        } catch (error) {
          assert.ok(error instanceof DecodeError, String(error));
        }
      }),
    );
  });

  it("agrees with a Map reference model on every read (no TTL) and is deterministic", () => {
    const noTtl = commandArb.filter((c) => !(c.type === "put" && c.ttlMs !== undefined));
    fc.assert(
      fc.property(fc.array(noTtl, { maxLength: 60 }), (commands) => {
        const s = new MemoryState();
        const twin = new MemoryState();
        const model = new Map<string, { value: string; rev: number }>();
        let revision = 0;
        for (const c of commands) {
          const result = applyKv(s, c, 0);
          applyKv(twin, c, 0);
          if (c.type !== "put" && c.type !== "delete" && c.type !== "increment") continue;
          const k = text(c.key) ?? "";
          const cur = model.get(k);
          const condOk =
            c.type === "increment" ||
            ((c.type !== "put" || c.ifAbsent !== true || cur === undefined) &&
              (c.ifRevision === undefined || (cur?.rev ?? 0) === c.ifRevision));
          if (c.type === "increment") {
            const base =
              cur === undefined ? 0n : /^-?(0|[1-9]\d*)$/.test(cur.value) ? BigInt(cur.value) : undefined;
            assert.equal(result.ok, base !== undefined);
            if (base !== undefined) model.set(k, { value: (base + c.by).toString(), rev: ++revision });
          } else {
            assert.equal(result.ok, condOk);
            if (condOk && c.type === "put") model.set(k, { value: text(c.value) ?? "", rev: ++revision });
            if (condOk && c.type === "delete" && cur !== undefined) {
              model.delete(k);
              revision++;
            }
          }
          assert.equal(kvRevision(s), revision);
          for (const key of ["a", "b", "c"]) {
            assert.equal(text(getKv(s, utf8(key))?.value), model.get(key)?.value);
            assert.equal(getKv(s, utf8(key))?.modRevision, model.get(key)?.rev);
          }
        }
        assert.deepEqual(
          rangeKv(s, { prefix: new Uint8Array(0), limit: 10 }),
          rangeKv(twin, { prefix: new Uint8Array(0), limit: 10 }),
        );
      }),
    );
  });
});

describe("kv state machine: next expiry", () => {
  it("names the earliest TTL, or nothing", async () => {
    const { nextExpiryMs } = await import("../../../../src/service/kv/index.js");
    const s = new MemoryState();
    assert.equal(nextExpiryMs(s), undefined);
    applyKv(s, put("late", "v", { ttlMs: 500 }), 1000);
    applyKv(s, put("soon", "v", { ttlMs: 100 }), 1000);
    assert.equal(nextExpiryMs(s), 1100);
  });
});
