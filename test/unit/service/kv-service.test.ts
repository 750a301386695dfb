// The key-value service's operations for the Redis command list (expire, persist, multi-key writes,
// key count), run through the real envelope codec and state machine on a single-replica log.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCairnError } from "../../../src/service/errors.js";
import { KvService } from "../../../src/service/kv/kv-service.js";
import { utf8 } from "../../../src/util/bytes.js";
import { LocalReplication } from "../../support/local-replication.js";

const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

function setup() {
  const log = new LocalReplication();
  return { log, kv: new KvService(log, { putManyKeysMax: 3, valueBytesMax: 64 }) };
}

describe("KvService: TTLs of existing keys", () => {
  it("expire sets a TTL by the leader's clock and keeps the value; persist clears it", async () => {
    const { log, kv } = setup();
    await kv.put(utf8("a"), utf8("1"));
    const set = await kv.expire(utf8("a"), { afterMs: 5000 });
    assert.equal(set.changed, true);
    assert.equal((await kv.get(utf8("a"))).record?.expireAtMs, log.clockMs + 5000);
    assert.equal(text((await kv.get(utf8("a"))).record?.value), "1");
    assert.equal((await kv.persist(utf8("a"))).changed, true);
    assert.equal((await kv.get(utf8("a"))).record?.expireAtMs, 0);
    assert.equal((await kv.persist(utf8("a"))).changed, false);
  });

  it("a negative TTL or a past time deletes the key; a missing key is not changed", async () => {
    const { log, kv } = setup();
    await kv.put(utf8("a"), utf8("1"));
    await kv.put(utf8("b"), utf8("1"));
    assert.equal((await kv.expire(utf8("a"), { afterMs: -1 })).changed, true);
    assert.equal((await kv.expire(utf8("b"), { atMs: log.clockMs - 1 })).changed, true);
    assert.equal((await kv.get(utf8("a"))).record, undefined);
    assert.equal((await kv.get(utf8("b"))).record, undefined);
    assert.equal((await kv.expire(utf8("a"), { afterMs: 10 })).changed, false);
    assert.equal(await kv.count(), 0);
  });

  it("conditions follow Redis 7 (NX only without a TTL)", async () => {
    const { kv } = setup();
    await kv.put(utf8("a"), utf8("1"), { ttlMs: 1000 });
    assert.equal((await kv.expire(utf8("a"), { afterMs: 10 }, { condition: "nx" })).changed, false);
    assert.equal((await kv.expire(utf8("a"), { afterMs: 10 }, { condition: "xx" })).changed, true);
  });
});

describe("KvService: multi-key writes and the key count", () => {
  it("putMany writes all keys at one revision; ifNoneExist writes none if one exists", async () => {
    const { kv } = setup();
    const all = await kv.putMany([
      [utf8("a"), utf8("1")],
      [utf8("b"), utf8("2")],
    ]);
    assert.equal(all.written, true);
    assert.equal((await kv.get(utf8("b"))).record?.modRevision, all.revision);
    const none = await kv.putMany(
      [
        [utf8("c"), utf8("3")],
        [utf8("a"), utf8("9")],
      ],
      { ifNoneExist: true },
    );
    assert.deepEqual(none, { revision: all.revision, written: false, duplicate: false });
    assert.equal(await kv.count(), 2);
    assert.equal(await kv.count("stale"), 2);
  });

  it("refuses no keys, too many keys, and more bytes than one value may have", async () => {
    const { kv } = setup();
    const code = (p: Promise<unknown>) =>
      p.then(
        () => "ok",
        (e: unknown) => (isCairnError(e) ? e.code : "other"),
      );
    assert.equal(await code(kv.putMany([])), "ERR_BAD_REQUEST");
    const four = ["a", "b", "c", "d"].map((k) => [utf8(k), utf8("v")] as const);
    assert.equal(await code(kv.putMany(four)), "ERR_BAD_REQUEST");
    assert.equal(await code(kv.putMany([[utf8("a"), new Uint8Array(64)]])), "ERR_TOO_LARGE");
    assert.equal(await kv.count(), 0);
  });
});

describe("KvService: sweeping expired keys", () => {
  it("proposes a sweep only once a TTL is due by the leader's clock, and the key is then gone", async () => {
    const { log, kv } = setup();
    assert.equal(await kv.sweepExpiredIfDue(), false, "no key has a TTL");
    await kv.put(utf8("a"), utf8("1"), { ttlMs: 1000 });
    await kv.put(utf8("b"), utf8("2"));
    const before = log.appliedIndex;
    assert.equal(await kv.sweepExpiredIfDue(), false, "not due yet");
    assert.equal(log.appliedIndex, before, "nothing proposed before the key is due");
    log.clockMs += 1000;
    assert.equal(await kv.sweepExpiredIfDue(), true);
    assert.equal(await kv.count("stale"), 1);
    assert.equal((await kv.get(utf8("a"))).record, undefined);
    assert.equal(text((await kv.get(utf8("b"))).record?.value), "2");
    assert.equal(await kv.sweepExpiredIfDue(), false, "nothing left to sweep");
  });
});
