// Crash safety of the WAL on the simulated disk. A fast-check property drives random sequences of
// appends, truncations, compactions, waits and crashes (with random latencies, torn writes and lost
// directory entries); a second test crashes a fixed script after every single disk operation. After
// every crash the recovered log must equal the log after some prefix of the issued records that
// contains every acknowledged one: nothing synced is lost, nothing unwritten appears, order holds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type GroupId, type HardState, logIndex, nodeId, term } from "../../../src/raft/types.js";
import {
  HardStateStore,
  makeDirDurable,
  SimFileSystem,
  SnapshotStore,
  Wal,
  type WalOptions,
  type WalRecord,
  type WalRecovery,
} from "../../../src/storage/index.js";
import { Prng } from "../../../src/util/prng.js";
import { entries, g1, g2, g3, ManualScheduler, ModelLog, plain, settle } from "./helpers.js";

const dir = "/node/wal";
const options: Partial<WalOptions> = { segmentBytesMax: 1000, recordBytesMax: 400, pendingBytesMax: 800 };
const groups: readonly GroupId[] = [g1, g2, g3];

/** Steps the scheduler until `promise` settles (or nothing is left to run, which is a hang). */
async function drive<T>(scheduler: ManualScheduler, promise: Promise<T>): Promise<T> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await settle();
  while (!done) {
    if (!(await scheduler.step())) {
      await settle();
      if (!done) throw new Error("operation hung with nothing scheduled");
    }
  }
  return promise;
}

function applyModel(models: Map<GroupId, ModelLog>, record: WalRecord): void {
  let m = models.get(record.group);
  if (m === undefined) {
    m = new ModelLog();
    models.set(record.group, m);
  }
  switch (record.type) {
    case "entries":
      m.append(record.entries);
      return;
    case "truncate-suffix":
      m.truncate(record.fromIndex);
      return;
    case "compact":
      m.compact(record.throughIndex);
      return;
  }
}

function cloneModels(models: ReadonlyMap<GroupId, ModelLog>): Map<GroupId, ModelLog> {
  return new Map([...models].map(([g, m]) => [g, m.clone()]));
}

/** What was issued since the last recovery, and what was acknowledged. */
class History {
  base = new Map<GroupId, ModelLog>();
  accepted = new Map<GroupId, ModelLog>();
  records: WalRecord[] = [];
  /** How many of `records`, from the first, are acknowledged. */
  ackedRecords = 0;

  issue(wal: Wal, batch: WalRecord[]): Promise<void> {
    const start = this.records.length;
    this.records.push(...batch);
    for (const r of batch) applyModel(this.accepted, r);
    const single = batch[0];
    const p =
      batch.length === 1 && single?.type === "compact"
        ? wal.compact(single.group, single.throughIndex, single.term)
        : wal.write(batch);
    return p.then(() => {
      // Durability is in log order, so an acknowledged record vouches for every record before it.
      // (A compaction resolves only after deleting segments, possibly after later writes resolved.)
      if (batch[0]?.type !== "compact")
        assert.ok(this.ackedRecords <= start, "writes resolve in the order they were issued");
      this.ackedRecords = Math.max(this.ackedRecords, start + batch.length);
    });
  }

  /** Checks a recovery against every allowed prefix; adopts the match as the new base. */
  verify(recovery: WalRecovery, context: string): void {
    assert.deepEqual(recovery.corruption, [], `${context}: crash damage reported as corruption`);
    assert.equal(recovery.allGroupsSuspect, false);
    const models = cloneModels(this.base);
    const matches = (): boolean =>
      groups.every((g) => {
        const m = models.get(g) ?? new ModelLog();
        const r = recovery.groups.get(g);
        const got =
          r === undefined
            ? { e: [], c: 0, l: 0 }
            : { e: plain(r.entries), c: r.compactIndex, l: r.lastIndex };
        return (
          JSON.stringify(got) === JSON.stringify({ e: plain(m.list()), c: m.compactIndex, l: m.lastIndex })
        );
      });
    for (let i = 0; i < this.ackedRecords; i++) applyModel(models, this.records[i] as WalRecord);
    for (let i = this.ackedRecords; ; i++) {
      if (matches()) break;
      const next = this.records[i];
      if (next === undefined) {
        const summary = groups.map((g) => `${g}: last ${recovery.groups.get(g)?.lastIndex}`).join(", ");
        const issued = this.records.map((r) =>
          r.type === "entries"
            ? `${r.group}:e${r.entries[0]?.index}+${r.entries.length}`
            : r.type === "compact"
              ? `${r.group}:c${r.throughIndex}`
              : `${r.group}:t${r.fromIndex}`,
        );
        assert.fail(
          `${context}: recovered log (${summary}) is no prefix holding the ${this.ackedRecords} acknowledged records of ${issued.join(" ")}`,
        );
      }
      applyModel(models, next);
    }
    this.base = models;
    this.accepted = cloneModels(models);
    this.records = [];
    this.ackedRecords = 0;
  }

  /** A random valid batch following the accepted log. */
  randomBatch(prng: Prng): WalRecord[] {
    const group = prng.pick(groups);
    const m = this.accepted.get(group) ?? new ModelLog();
    const roll = prng.below(100);
    if (roll < 20) {
      return [
        {
          type: "truncate-suffix",
          group,
          fromIndex: logIndex(prng.range(m.compactIndex + 1, m.lastIndex + 1)),
        },
      ];
    }
    const batch: WalRecord[] = [];
    const first = prng.chance(4, 5) ? m.lastIndex + 1 : prng.range(m.compactIndex + 1, m.lastIndex + 1);
    batch.push({
      type: "entries",
      group,
      entries: entries(first, prng.range(1, 4), prng.range(1, 9), prng.range(0, 60)),
    });
    // Sometimes a second group rides in the same batch.
    const other = groups[(groups.indexOf(group) + 1) % groups.length] ?? g1;
    if (prng.chance(1, 3)) {
      const o = this.accepted.get(other) ?? new ModelLog();
      batch.push({
        type: "entries",
        group: other,
        entries: entries(o.lastIndex + 1, prng.range(1, 3), 1, prng.range(0, 30)),
      });
    }
    return batch;
  }
}

/** Hard state saves of one group since the last recovery. */
interface HardStateHistory {
  base: HardState | undefined;
  issued: HardState[];
  acked: number;
}

const conf = { voters: [nodeId(1), nodeId(2), nodeId(3)], learners: [] };

/** The node's whole storage on one simulated disk: WAL, snapshots and hard state. */
async function openNode(
  scheduler: ManualScheduler,
  fs: SimFileSystem,
): Promise<{ wal: Wal; recovery: WalRecovery; snaps: SnapshotStore; hard: HardStateStore }> {
  // One view per process: code of a crashed process that is still running touches nothing more.
  const view = fs.process();
  const { wal, recovery } = await drive(scheduler, Wal.open(view, dir, options));
  const snaps = await drive(scheduler, SnapshotStore.open(view, "/node/snap", { chunkBytesMax: 64 }));
  const hard = await drive(scheduler, HardStateStore.open(view, "/node/hard"));
  return { wal, recovery, snaps, hard };
}

/** The WAL and snapshot store of a node, opened without driving a scheduler (for scripts). */
async function openNodeDirect(fs: SimFileSystem): Promise<{ wal: Wal; snaps: SnapshotStore }> {
  const view = fs.process();
  const { wal } = await Wal.open(view, dir, options);
  const snaps = await SnapshotStore.open(view, "/node/snap", { chunkBytesMax: 64 });
  return { wal, snaps };
}

async function runRandom(seed: number, steps: number): Promise<void> {
  const prng = new Prng(seed);
  const scheduler = new ManualScheduler();
  const fs = new SimFileSystem(prng.fork(), scheduler, { latencyMsMin: 0, latencyMsMax: 4 });
  await drive(scheduler, makeDirDurable(fs, dir));
  const history = new History();
  let node = await openNode(scheduler, fs);
  history.verify(node.recovery, `seed ${seed} first open`);
  const hardStates = new Map<GroupId, HardStateHistory>(
    groups.map((g) => [g, { base: undefined, issued: [], acked: 0 }]),
  );
  let snapshotting = new Set<GroupId>();
  let nextTerm = 1;
  const failures: unknown[] = [];

  /** After a crash: every compaction is covered by a durable snapshot; hard state is one that was saved. */
  const verifyOthers = async (context: string): Promise<void> => {
    for (const g of groups) {
      const compactIndex = node.recovery.groups.get(g)?.compactIndex ?? 0;
      const [latest] = await drive(scheduler, node.snaps.list(g));
      if (compactIndex > 0) {
        assert.ok(
          latest !== undefined && latest >= compactIndex,
          `${context}: group ${g} compacted past its snapshots`,
        );
      }
      if (latest !== undefined) await drive(scheduler, node.snaps.verify(g, latest));
      const h = hardStates.get(g);
      assert.ok(h !== undefined);
      const loaded = await drive(scheduler, node.hard.load(g));
      const allowed = h.acked === 0 ? [h.base, ...h.issued] : h.issued.slice(h.acked - 1);
      assert.ok(
        allowed.some((a) => JSON.stringify(a) === JSON.stringify(loaded)),
        `${context}: group ${g} hard state ${JSON.stringify(loaded)} was never the latest save`,
      );
      hardStates.set(g, { base: loaded, issued: [], acked: 0 });
    }
  };

  for (let step = 0; step < steps; step++) {
    const roll = prng.below(100);
    if (roll < 40) {
      // A batch built on the accepted log; the second record (other group) is independent of the first.
      const batch = history.randomBatch(prng);
      history.issue(node.wal, batch).catch((e: unknown) => failures.push(e));
    } else if (roll < 45) {
      // A snapshot: written and committed first, then the log is compacted up to it (Raft §7).
      const group = prng.pick(groups);
      const m = history.accepted.get(group) ?? new ModelLog();
      const through = prng.range(m.compactIndex, m.lastIndex);
      if (through > 0 && !snapshotting.has(group)) {
        snapshotting.add(group);
        const { wal, snaps } = node;
        const inFlight = snapshotting;
        const chunks = prng.range(0, 3);
        const t = term(prng.range(1, 9));
        void (async () => {
          const w = await snaps.create(group, { index: logIndex(through), term: t, conf });
          for (let c = 0; c < chunks; c++) await w.write(new Uint8Array(50).fill(c));
          await w.commit();
          if (through >= (history.accepted.get(group)?.compactIndex ?? 0)) {
            await history.issue(wal, [{ type: "compact", group, throughIndex: logIndex(through), term: t }]);
          }
        })()
          .catch((e: unknown) => failures.push(e))
          .finally(() => inFlight.delete(group));
      }
    } else if (roll < 50) {
      const group = prng.pick(groups);
      const h = hardStates.get(group);
      assert.ok(h !== undefined);
      const state: HardState = {
        term: term(nextTerm++),
        votedFor: nodeId(prng.range(1, 3)),
        commitIndex: logIndex(0),
      };
      h.issued.push(state);
      const position = h.issued.length;
      const saving = node.hard.save(group, state);
      saving.then(
        () => {
          h.acked = Math.max(h.acked, position);
        },
        (e: unknown) => failures.push(e),
      );
    } else if (roll < 94) {
      for (let i = prng.range(1, 6); i > 0; i--) await scheduler.step();
    } else {
      fs.crash();
      await settle();
      node = await openNode(scheduler, fs);
      snapshotting = new Set();
      history.verify(node.recovery, `seed ${seed} step ${step}`);
      await verifyOthers(`seed ${seed} step ${step}`);
    }
  }
  await scheduler.runUntilIdle();
  assert.deepEqual(failures, []);
  assert.equal(
    history.ackedRecords,
    history.records.length,
    "every write was acknowledged once the disk went idle",
  );
  fs.crash();
  node = await openNode(scheduler, fs);
  history.verify(node.recovery, `seed ${seed} final`);
  await verifyOthers(`seed ${seed} final`);
}

describe("Wal crash safety", () => {
  it("property: after any crash the log is a prefix of the issued records holding every acknowledged one, compactions are covered by snapshots, hard state is a saved one", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 }), async (seed) => {
        await runRandom(seed, 150);
      }),
      { numRuns: 60 },
    );
  });

  it("recovers to a consistent state when the crash falls on any single disk operation of a script", async () => {
    // The script crosses every persistence boundary: append, sync, segment roll, snapshot write
    // (temp file, fsync, rename, directory fsync), compaction with segment deletion, truncation.
    const script = async (fs: SimFileSystem, scheduler: ManualScheduler, history: History): Promise<void> => {
      const { wal, snaps } = await openNodeDirect(fs);
      // A snapshot is committed before the log is compacted up to it (Raft §7).
      const snapshotThenCompact = async (group: GroupId, through: number): Promise<void> => {
        const w = await snaps.create(group, { index: logIndex(through), term: term(1), conf });
        for (let c = 0; c < 3; c++) await w.write(new Uint8Array(60).fill(c));
        await w.commit();
        await history.issue(wal, [
          { type: "compact", group, throughIndex: logIndex(through), term: term(1) },
        ]);
      };
      for (let i = 1; i <= 12; i++) {
        await history.issue(wal, [
          { type: "entries", group: g1, entries: entries(2 * i - 1, 2, 1, 50) },
          {
            type: "entries",
            group: g2,
            entries: entries((history.accepted.get(g2)?.lastIndex ?? 0) + 1, 1, 1, 20),
          },
        ]);
        if (i === 6) await snapshotThenCompact(g1, 8);
        if (i === 8) await snapshotThenCompact(g2, 7);
        if (i === 10)
          await history.issue(wal, [{ type: "truncate-suffix", group: g2, fromIndex: logIndex(10) }]);
      }
      await wal.close();
      void scheduler;
    };
    const countSteps = async (): Promise<number> => {
      const scheduler = new ManualScheduler();
      const fs = new SimFileSystem(new Prng(1), scheduler);
      await drive(scheduler, makeDirDurable(fs, dir));
      let steps = 0;
      const run = script(fs, scheduler, new History());
      let done = false;
      void run.then(() => {
        done = true;
      });
      await settle();
      while (!done) {
        assert.ok(await scheduler.step(), "script hung");
        steps++;
      }
      return steps;
    };
    const total = await countSteps();
    assert.ok(total > 50, `script took only ${total} disk operations`);
    for (let cut = 0; cut <= total; cut++) {
      for (const seed of [cut, cut + 100_000]) {
        const scheduler = new ManualScheduler();
        const fs = new SimFileSystem(new Prng(seed), scheduler);
        await drive(scheduler, makeDirDurable(fs, dir));
        const history = new History();
        void script(fs, scheduler, history).catch(() => undefined);
        await settle();
        for (let i = 0; i < cut; i++) await scheduler.step();
        fs.crash();
        const context = `crash after ${cut} of ${total} operations (seed ${seed})`;
        const { wal, recovery } = await drive(scheduler, Wal.open(fs, dir, options));
        history.verify(recovery, context);
        const snaps = await drive(scheduler, SnapshotStore.open(fs, "/node/snap", { chunkBytesMax: 64 }));
        for (const g of [g1, g2]) {
          const compactIndex = recovery.groups.get(g)?.compactIndex ?? 0;
          const [latest] = await drive(scheduler, snaps.list(g));
          if (compactIndex > 0)
            assert.ok(latest !== undefined && latest >= compactIndex, `${context}: no snapshot`);
          if (latest !== undefined) await drive(scheduler, snaps.verify(g, latest));
        }
        // The recovered log must also accept new writes where it left off.
        const last = recovery.groups.get(g1)?.lastIndex ?? 0;
        await drive(scheduler, wal.write([{ type: "entries", group: g1, entries: entries(last + 1, 1) }]));
      }
    }
  });
});
