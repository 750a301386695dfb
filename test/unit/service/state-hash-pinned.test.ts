// The state hash off the apply path: on a backend that pins a view, the state machine hashes the
// state page by page in the background, yet every hash it reports is the one the in-memory backend
// computes on the apply path at the same index (the state as of that very entry), even when later
// entries change the state before the hash has read it; a store closed under a running hash ends
// it without a report. Method: the same log applied to both backends, with a pause the test opens.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type Entry, groupId, logIndex, term } from "../../../src/raft/index.js";
import { encodeEnvelope } from "../../../src/service/command.js";
import type { StateHash } from "../../../src/service/state-hash.js";
import { MemoryBackend, ServiceStateMachine } from "../../../src/service/state-machine.js";
import { StoreBackend } from "../../../src/service/store-backend.js";
import { LmdbStateStore, MemoryStateStore, type StateStore } from "../../../src/storage/index.js";
import { utf8 } from "../../../src/util/bytes.js";

/** Entry i puts the key k<i>; every seventh deletes the key put three entries before. */
function log(count: number): Entry[] {
  return Array.from({ length: count }, (_, n) => {
    const i = n + 1;
    const command =
      i % 7 === 0
        ? ({ type: "delete", key: utf8(`k${i - 3}`) } as const)
        : ({ type: "put", key: utf8(`k${i}`), value: utf8(`v${i}`) } as const);
    return {
      term: term(1),
      index: logIndex(i),
      kind: "normal",
      data: encodeEnvelope({ tsMs: 1000 + i, command: { service: "kv", command } }),
    };
  });
}

/** The hashes the in-memory backend computes on the apply path, by index. */
async function hashesOnTheApplyPath(entries: readonly Entry[], every: number): Promise<Map<number, string>> {
  const hashes = new Map<number, string>();
  const machine = new ServiceStateMachine(new MemoryBackend(), undefined, undefined, {
    entriesBetween: every,
    onHash: (h) => hashes.set(h.index, h.hash),
  });
  await machine.apply(entries);
  return hashes;
}

/** A state machine on `store` that hashes every `every` entries off the apply path; its reports. */
function hashingMachine(store: StateStore, every: number, pause: () => Promise<void>) {
  const reported: StateHash[] = [];
  const backend = new StoreBackend(store, groupId(1));
  const machine = new ServiceStateMachine(backend, undefined, undefined, {
    entriesBetween: every,
    onHash: (h) => reported.push(h),
    pacer: () => pause,
  });
  return { backend, machine, reported };
}

/** A pause that holds every page until `open()`, then lets them all through. */
function gate() {
  let opened = false;
  const waiting: (() => void)[] = [];
  return {
    pause: () =>
      opened
        ? new Promise<void>((resolve) => setImmediate(resolve))
        : new Promise<void>((r) => waiting.push(r)),
    open: () => {
      opened = true;
      for (const resolve of waiting.splice(0)) resolve();
    },
    get held() {
      return waiting.length;
    },
  };
}

/** Turns of the event loop until `done()` holds, at most `turnsMax`. */
async function turnsUntil(done: () => boolean, turnsMax = 100_000): Promise<void> {
  for (let turn = 0; turn < turnsMax && !done(); turn++) await new Promise((r) => setImmediate(r));
  assert.ok(done(), "the condition did not hold in time");
}

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

const stores: [string, () => Promise<StateStore>][] = [
  ["MemoryStateStore", async () => new MemoryStateStore()],
  [
    "LmdbStateStore",
    async () => {
      const root = await mkdtemp(join(tmpdir(), "cairn-hash-"));
      roots.push(root);
      return LmdbStateStore.open(root);
    },
  ],
];

for (const [name, make] of stores) {
  describe(`The state hash off the apply path (${name})`, () => {
    it("reports at each index the hash the apply path computes there", async () => {
      const entries = log(3000);
      const expected = await hashesOnTheApplyPath(entries, 500);
      const store = await make();
      const { machine, reported } = hashingMachine(
        store,
        500,
        () => new Promise((resolve) => setImmediate(resolve)),
      );
      // One batch per hash, each hash awaited before the next batch: none is skipped.
      for (let from = 0; from < entries.length; from += 500) {
        await machine.apply(entries.slice(from, from + 500));
        await turnsUntil(() => reported.length === (from + 500) / 500);
      }
      assert.deepEqual(
        reported.map((h) => [h.index, h.hash]),
        [...expected.entries()],
      );
      await store.close();
    });

    it("hashes a small state at every index of a batch: a hash within one page never skips the next", async () => {
      const entries = log(60);
      const expected = await hashesOnTheApplyPath(entries, 10);
      const store = await make();
      const { machine, reported } = hashingMachine(
        store,
        10,
        () => new Promise((resolve) => setImmediate(resolve)),
      );
      await machine.apply(entries);
      assert.deepEqual(
        reported.map((h) => [h.index, h.hash]),
        [...expected.entries()],
      );
      await store.close();
    });

    it("hashes the state as of its entry although later entries change it before the hash reads it", async () => {
      const entries = log(3000);
      const expected = await hashesOnTheApplyPath(entries, 1500);
      const store = await make();
      const pages = gate();
      const { backend, machine, reported } = hashingMachine(store, 1500, pages.pause);
      await machine.apply(entries);
      assert.equal(pages.held, 1, "the hash at 1500 waits after its first page");
      assert.deepEqual(reported, [], "nothing is reported before the hash has read everything");
      pages.open();
      await turnsUntil(() => reported.length === 1);
      // The hash at 3000 came while the one at 1500 ran: skipped, one hash at a time.
      assert.deepEqual(reported, [{ index: 1500, hash: expected.get(1500) }]);
      assert.equal(backend.appliedIndex(), 3000);
      await store.close();
    });

    it("ends a hash whose store closed under it without a report", async () => {
      const store = await make();
      const pages = gate();
      const { backend, machine, reported } = hashingMachine(store, 1500, pages.pause);
      await machine.apply(log(1500));
      assert.equal(pages.held, 1);
      await backend.settle();
      await store.close();
      pages.open();
      // Enough turns for the hash to read on; with a memory store the view is a copy and finishes.
      for (let turn = 0; turn < 100; turn++) await new Promise((r) => setImmediate(r));
      assert.ok(
        name === "MemoryStateStore" ? reported.length === 1 : reported.length === 0,
        `reported ${reported.length}`,
      );
    });
  });
}
