// The log view: AppendEntries' consistency check, truncation and append checked against a plain
// array model over random logs, plus the positions (persisted, committed, applied) across
// truncation, compaction and snapshot restore, and byte-limited slicing at its limit.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { entryBytes, RaftLog } from "../../../src/raft/raft-log.js";
import { type Entry, logIndex, nodeId, type SnapshotMeta, term } from "../../../src/raft/types.js";

const origin: SnapshotMeta = {
  index: logIndex(0),
  term: term(0),
  conf: { voters: [nodeId(1)], learners: [] },
};

/** Entries with the given terms from index `from` on, payload = "i@t". */
function ents(terms: number[], from = 1): Entry[] {
  return terms.map((t, k) => ({
    term: term(t),
    index: logIndex(from + k),
    kind: "normal" as const,
    data: new TextEncoder().encode(`${from + k}@${t}`),
  }));
}

const termsOf = (log: RaftLog): number[] =>
  log.slice(log.firstIndex(), log.lastIndex() + 1).map((e) => e.term);

/** Non-decreasing term sequences. */
const termsArb = fc.array(fc.nat(3), { maxLength: 12 }).map((steps) => {
  const terms: number[] = [];
  for (const s of steps) terms.push((terms.at(-1) ?? 1) + s);
  return terms;
});

describe("RaftLog", () => {
  it("appends like the reference model (Raft §5.3 receiver rules 2-4)", () => {
    fc.assert(
      fc.property(termsArb, termsArb, fc.nat(14), fc.nat(14), (mine, leaders, prevRaw, countRaw) => {
        const log = new RaftLog(origin, ents(mine), logIndex(0), logIndex(0));
        const prev = Math.min(prevRaw, leaders.length);
        const count = Math.min(countRaw, leaders.length - prev);
        const sent = ents(leaders, 1).slice(prev, prev + count);
        const prevTerm = term(prev === 0 ? 0 : (leaders[prev - 1] ?? 0));
        const result = log.maybeAppend(logIndex(prev), prevTerm, sent);
        const matches = prev === 0 || mine[prev - 1] === prevTerm;
        if (!matches) {
          assert.equal(result, undefined);
          assert.deepEqual(termsOf(log), mine);
          return;
        }
        // Reference: keep ours where it agrees; from the first disagreement on, take the leader's.
        let expected = [...mine];
        for (const e of sent) {
          if (expected[e.index - 1] !== e.term) {
            expected = [
              ...expected.slice(0, e.index - 1),
              ...sent.filter((x) => x.index >= e.index).map((x) => x.term),
            ];
            break;
          }
        }
        assert.equal(result?.lastNewIndex, prev + count);
        assert.deepEqual(termsOf(log), expected);
      }),
    );
  });

  it("finds the probe point that skips a conflicting term", () => {
    const log = new RaftLog(origin, ents([1, 1, 2, 2, 2, 5, 5]), logIndex(0), logIndex(0));
    assert.deepEqual(log.findConflictByTerm(logIndex(7), term(4)), { index: 5, term: 2 });
    assert.deepEqual(log.findConflictByTerm(logIndex(7), term(5)), { index: 7, term: 5 });
    assert.deepEqual(log.findConflictByTerm(logIndex(4), term(1)), { index: 2, term: 1 });
    assert.deepEqual(log.findConflictByTerm(logIndex(7), term(0)), { index: 0, term: 0 });
    assert.deepEqual(log.findConflictByTerm(logIndex(99), term(3)), { index: 5, term: 2 });
  });

  it("compares up-to-dateness by last term, then length (Raft §5.4.1)", () => {
    const log = new RaftLog(origin, ents([1, 2, 2]), logIndex(0), logIndex(0));
    assert.equal(log.isUpToDate(logIndex(1), term(3)), true);
    assert.equal(log.isUpToDate(logIndex(3), term(2)), true);
    assert.equal(log.isUpToDate(logIndex(2), term(2)), false);
    assert.equal(log.isUpToDate(logIndex(9), term(1)), false);
  });

  it("cuts slices at the byte limit but always moves one entry", () => {
    const log = new RaftLog(origin, ents([1, 1, 1, 1]), logIndex(0), logIndex(0));
    const one = entryBytes(log.entryAt(1) as Entry);
    assert.equal(log.slice(1, 5, one * 2).length, 2);
    assert.equal(log.slice(1, 5, one * 2 - 1).length, 1);
    assert.equal(log.slice(1, 5, 1).length, 1);
    assert.equal(log.slice(1, 5).length, 4);
  });

  it("hands out unstable entries once and re-hands overwritten ones", () => {
    const log = new RaftLog(origin, [], logIndex(0), logIndex(0));
    log.appendNew(ents([1, 1, 1]));
    assert.equal(log.unstableEntries().length, 3);
    log.markHandedOut();
    assert.deepEqual(log.unstableEntries(), []);
    // Before the write completes, a new leader overwrites index 3.
    log.maybeAppend(logIndex(2), term(1), ents([2], 3));
    log.persistedTo(logIndex(3));
    assert.equal(log.persistedIndex, 2, "the overwritten entry is not durable");
    assert.deepEqual(
      log.unstableEntries().map((e) => e.term),
      [2],
    );
  });

  it("applies only committed, persisted entries, in bounded batches", () => {
    const log = new RaftLog(origin, ents([1, 1, 1, 1]), logIndex(0), logIndex(0));
    log.commitTo(logIndex(4));
    const first = log.entriesToApply(1);
    assert.equal(first.length, 1);
    log.applyingTo(logIndex(1));
    assert.deepEqual(
      log.entriesToApply(1 << 20).map((e) => e.index),
      [2, 3, 4],
    );
    log.appendNew(ents([2], 5));
    log.commitTo(logIndex(5));
    log.applyingTo(logIndex(4));
    assert.deepEqual(log.entriesToApply(1 << 20), [], "entry 5 is not persisted yet");
  });

  it("compacts applied entries and keeps the term of the compaction point", () => {
    const log = new RaftLog(origin, ents([1, 1, 2, 2]), logIndex(3), logIndex(3));
    log.compact({ index: logIndex(3), term: term(2), conf: origin.conf });
    assert.equal(log.firstIndex(), 4);
    assert.equal(log.termAt(3), 2);
    assert.equal(log.termAt(2), undefined);
    assert.throws(() => log.compact({ index: logIndex(4), term: term(2), conf: origin.conf }), /applied/);
  });

  it("restores from a snapshot, discarding the log until it is installed", () => {
    const log = new RaftLog(origin, ents([1, 1]), logIndex(1), logIndex(1));
    const snap: SnapshotMeta = { index: logIndex(10), term: term(3), conf: origin.conf };
    log.restore(snap);
    assert.equal(log.lastIndex(), 10);
    assert.equal(log.commitIndex, 10);
    assert.equal(log.installingSnapshot(), true);
    assert.deepEqual(log.entriesToApply(1 << 20), []);
    log.snapshotInstalled(snap);
    assert.equal(log.appliedIndex, 10);
    assert.equal(log.persistedIndex, 10);
    assert.equal(log.installingSnapshot(), false);
  });

  it("refuses to start with a commit index beyond its entries", () => {
    assert.throws(() => new RaftLog(origin, ents([1]), logIndex(2), logIndex(0)), /commit/);
  });
});
