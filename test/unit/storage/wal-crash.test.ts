// Crash safety of the WAL on the simulated disk. A fast-check property drives random sequences of
// appends, truncations, compactions, waits and crashes (with random latencies, torn writes and lost
// directory entries); a second test crashes a fixed script after every single disk operation. After
// every crash the recovered log must equal the log after some prefix of the issued records that
// contains every acknowledged one: nothing synced is lost, nothing unwritten appears, order holds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type GroupId, logIndex, term } from "../../../src/raft/types.js";
import {
  SimFileSystem,
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
    if (roll < 10) {
      const through = prng.range(m.compactIndex, m.lastIndex + (prng.chance(1, 5) ? 4 : 0));
      return [{ type: "compact", group, throughIndex: logIndex(through), term: term(prng.range(1, 9)) }];
    }
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

async function runRandom(seed: number, steps: number): Promise<void> {
  const prng = new Prng(seed);
  const scheduler = new ManualScheduler();
  const fs = new SimFileSystem(prng.fork(), scheduler, { latencyMsMin: 0, latencyMsMax: 4 });
  await drive(scheduler, fs.mkdir(dir));
  const history = new History();
  let { wal, recovery } = await drive(scheduler, Wal.open(fs, dir, options));
  history.verify(recovery, `seed ${seed} first open`);
  const failures: unknown[] = [];
  for (let step = 0; step < steps; step++) {
    const roll = prng.below(100);
    if (roll < 45) {
      // A batch built on the accepted log; the second record (other group) is independent of the first.
      const batch = history.randomBatch(prng);
      history.issue(wal, batch).catch((e: unknown) => failures.push(e));
    } else if (roll < 94) {
      for (let i = prng.range(1, 6); i > 0; i--) await scheduler.step();
    } else {
      fs.crash();
      await settle();
      ({ wal, recovery } = await drive(scheduler, Wal.open(fs, dir, options)));
      history.verify(recovery, `seed ${seed} step ${step}`);
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
  ({ recovery } = await drive(scheduler, Wal.open(fs, dir, options)));
  history.verify(recovery, `seed ${seed} final`);
}

describe("Wal crash safety", () => {
  it("property: after any crash the recovered log is a prefix of the issued records holding every acknowledged one", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 }), async (seed) => {
        await runRandom(seed, 150);
      }),
      { numRuns: 60 },
    );
  });

  it("recovers to a consistent state when the crash falls on any single disk operation of a script", async () => {
    // The script crosses every persistence boundary: append, sync, segment roll, compaction with
    // segment deletion, and reopening after a torn tail.
    const script = async (fs: SimFileSystem, scheduler: ManualScheduler, history: History): Promise<void> => {
      const { wal } = await Wal.open(fs, dir, options);
      for (let i = 1; i <= 12; i++) {
        await history.issue(wal, [
          { type: "entries", group: g1, entries: entries(2 * i - 1, 2, 1, 50) },
          {
            type: "entries",
            group: g2,
            entries: entries((history.accepted.get(g2)?.lastIndex ?? 0) + 1, 1, 1, 20),
          },
        ]);
        if (i === 6)
          await history.issue(wal, [
            { type: "compact", group: g1, throughIndex: logIndex(8), term: term(1) },
          ]);
        if (i === 8)
          await history.issue(wal, [
            { type: "compact", group: g2, throughIndex: logIndex(7), term: term(1) },
          ]);
        if (i === 10)
          await history.issue(wal, [{ type: "truncate-suffix", group: g2, fromIndex: logIndex(10) }]);
      }
      await wal.close();
      void scheduler;
    };
    const countSteps = async (): Promise<number> => {
      const scheduler = new ManualScheduler();
      const fs = new SimFileSystem(new Prng(1), scheduler);
      await drive(scheduler, fs.mkdir(dir));
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
        await drive(scheduler, fs.mkdir(dir));
        const history = new History();
        void script(fs, scheduler, history).catch(() => undefined);
        await settle();
        for (let i = 0; i < cut; i++) await scheduler.step();
        fs.crash();
        const { wal, recovery } = await drive(scheduler, Wal.open(fs, dir, options));
        history.verify(recovery, `crash after ${cut} of ${total} operations (seed ${seed})`);
        // The recovered log must also accept new writes where it left off.
        const last = recovery.groups.get(g1)?.lastIndex ?? 0;
        await drive(scheduler, wal.write([{ type: "entries", group: g1, entries: entries(last + 1, 1) }]));
      }
    }
  });
});
