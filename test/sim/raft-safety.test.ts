// The Raft safety checker: a clean three-node run passes, and each property fails when a violation
// is planted into that run's observation log, with the events that prove it named in the report.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkRaftSafety,
  type ObservedEntry,
  type RaftObservation,
  type RaftViolationKind,
} from "./raft-safety.js";

const e = (index: number, term: number, dataHash: string): ObservedEntry => ({ index, term, dataHash });
const log = (node: number, ...entries: ObservedEntry[]): RaftObservation => ({ type: "log", node, entries });
const leader = (node: number, term: number): RaftObservation => ({ type: "became-leader", node, term });
const committed = (node: number, entry: ObservedEntry, currentTerm: number): RaftObservation => ({
  type: "committed",
  node,
  ...entry,
  currentTerm,
});
const applied = (node: number, entry: ObservedEntry): RaftObservation => ({
  type: "applied",
  node,
  ...entry,
});

/** Node 1 leads term 1 and replicates three entries to nodes 2 and 3, which all commit and apply. */
function cleanRun(): RaftObservation[] {
  const entries = [e(1, 1, "noop"), e(2, 1, "put-a"), e(3, 1, "put-b")];
  const events: RaftObservation[] = [log(1), log(2), log(3), leader(1, 1)];
  for (let n = 1; n <= 3; n++) events.push(log(1, ...entries.slice(0, n)));
  events.push(log(2, ...entries), log(3, ...entries));
  for (const node of [1, 2, 3]) {
    for (const entry of entries) events.push(committed(node, entry, 1), applied(node, entry));
  }
  events.push({ type: "acked-write", clientId: 7, dataHash: "put-a", index: 2, term: 1 });
  events.push({ type: "acked-write", clientId: 7, dataHash: "put-b" });
  return events;
}

function kinds(events: RaftObservation[]): RaftViolationKind[] {
  return checkRaftSafety(events).map((v) => v.kind);
}

describe("Raft safety checker", () => {
  it("passes a clean run", () => {
    assert.deepEqual(checkRaftSafety(cleanRun()), []);
  });

  it("passes a leader change where the new leader truncates a follower's uncommitted tail", () => {
    const events = cleanRun();
    events.push({ type: "stepped-down", node: 1, term: 1 });
    // Node 3 had an uncommitted term-1 entry at 4 that node 2, leader of term 2, never saw.
    events.push(log(3, e(1, 1, "noop"), e(2, 1, "put-a"), e(3, 1, "put-b"), e(4, 1, "lost-tail")));
    events.push(leader(2, 2), log(2, e(1, 1, "noop"), e(2, 1, "put-a"), e(3, 1, "put-b"), e(4, 2, "noop2")));
    events.push(log(3, e(1, 1, "noop"), e(2, 1, "put-a"), e(3, 1, "put-b"), e(4, 2, "noop2")));
    events.push(committed(2, e(4, 2, "noop2"), 2), applied(3, e(4, 2, "noop2")));
    assert.deepEqual(checkRaftSafety(events), []);
  });

  it("passes Raft Figure 8: an old-term entry on a minority, absent at the next leader, committed later", () => {
    const events: RaftObservation[] = [log(1), log(2), log(3), leader(1, 2), log(1, e(1, 2, "x"))];
    events.push(leader(3, 3), log(3, e(1, 3, "y")), leader(1, 4), log(2, e(1, 2, "x")));
    events.push(log(1, e(1, 2, "x"), e(2, 4, "z")), committed(1, e(1, 2, "x"), 4));
    assert.deepEqual(checkRaftSafety(events), []);
  });

  it("catches two leaders in one term", () => {
    const events = cleanRun();
    events.push(leader(2, 1));
    const violations = checkRaftSafety(events);
    assert.deepEqual(
      violations.map((v) => v.kind),
      ["election-safety"],
    );
    assert.deepEqual(violations[0]?.evidence, [3, events.length - 1]);
    assert.match(violations[0]?.message ?? "", /term 1 has two leaders: node 1 .* and node 2/);
  });

  it("does not count the same leader observed twice", () => {
    assert.deepEqual(kinds([...cleanRun(), leader(1, 1)]), []);
  });

  it("catches a leader deleting or overwriting its own entries", () => {
    const deleting = [...cleanRun(), log(1, e(1, 1, "noop"), e(2, 1, "put-a"))];
    assert.deepEqual(kinds(deleting), ["leader-append-only"]);
    const overwriting = [...cleanRun(), log(1, e(1, 1, "noop"), e(2, 1, "put-a"), e(3, 1, "other"))];
    assert.ok(kinds(overwriting).includes("leader-append-only"));
  });

  it("allows a truncation after the leader stepped down, and compaction while leading", () => {
    const afterStepDown: RaftObservation[] = [
      ...cleanRun(),
      { type: "stepped-down", node: 1, term: 1 },
      log(1, e(1, 1, "noop"), e(2, 1, "put-a")),
    ];
    assert.deepEqual(kinds(afterStepDown), []);
    const compacted: RaftObservation[] = [
      ...cleanRun(),
      { type: "log", node: 1, entries: [e(3, 1, "put-b")], compactedThrough: { index: 2, term: 1 } },
    ];
    assert.deepEqual(kinds(compacted), []);
  });

  it("catches two logs disagreeing on an entry with the same index and term", () => {
    assert.deepEqual(kinds([...cleanRun(), log(3, e(1, 1, "noop"), e(2, 1, "put-a"), e(3, 1, "forged"))]), [
      "log-matching",
    ]);
  });

  it("catches two logs that agree at an index and term but differ before it", () => {
    const events: RaftObservation[] = [
      log(1, e(1, 1, "a"), e(2, 2, "b"), e(3, 3, "c")),
      log(2, e(1, 1, "a"), e(2, 1, "other"), e(3, 3, "c")),
    ];
    const violations = checkRaftSafety(events);
    assert.deepEqual(
      violations.map((v) => v.kind),
      ["log-matching"],
    );
    assert.match(violations[0]?.message ?? "", /follows a term-2 entry .* but a term-1 entry on node 2/);
  });

  it("uses a snapshot's last term as the predecessor of the first entry kept", () => {
    const events: RaftObservation[] = [
      { type: "log", node: 1, entries: [e(3, 2, "c")], compactedThrough: { index: 2, term: 1 } },
      log(2, e(1, 1, "a"), e(2, 2, "b"), e(3, 2, "c")),
    ];
    assert.deepEqual(kinds(events), ["log-matching"]);
    const agreeing: RaftObservation[] = [
      { type: "log", node: 1, entries: [e(3, 2, "c")], compactedThrough: { index: 2, term: 2 } },
      log(2, e(1, 1, "a"), e(2, 2, "b"), e(3, 2, "c")),
    ];
    assert.deepEqual(kinds(agreeing), []);
  });

  it("catches a leader elected without a committed entry", () => {
    const events = cleanRun();
    events.push({ type: "stepped-down", node: 1, term: 1 }, { type: "crashed", node: 3 });
    // Node 3 comes back with a log that lost entry 3 and wins term 2 anyway.
    events.push({ type: "restarted", node: 3 }, log(3, e(1, 1, "noop"), e(2, 1, "put-a")), leader(3, 2));
    const violations = checkRaftSafety(events);
    assert.deepEqual(
      violations.map((v) => v.kind),
      ["leader-completeness"],
    );
    assert.match(
      violations[0]?.message ?? "",
      /\(3, t1, put-b\) was committed .* node 3, elected leader of term 2/,
    );
  });

  it("catches two nodes applying different entries at one index, and conflicting commits", () => {
    assert.deepEqual(kinds([...cleanRun(), applied(2, e(3, 2, "other"))]), ["state-machine-safety"]);
    assert.deepEqual(kinds([...cleanRun(), committed(2, e(2, 1, "other"), 1)]), ["state-machine-safety"]);
  });

  it("catches an acknowledged write that never got applied", () => {
    const missing: RaftObservation[] = [
      ...cleanRun(),
      { type: "acked-write", clientId: 9, dataHash: "put-c" },
    ];
    assert.deepEqual(kinds(missing), ["acked-write-lost"]);
    const elsewhere: RaftObservation[] = [
      ...cleanRun(),
      { type: "acked-write", clientId: 9, dataHash: "put-a", index: 3, term: 1 },
    ];
    const violations = checkRaftSafety(elsewhere);
    assert.deepEqual(
      violations.map((v) => v.kind),
      ["acked-write-lost"],
    );
    assert.match(violations[0]?.message ?? "", /index 3 holds \(3, t1, put-b\)/);
  });

  it("reports a log observation that is not contiguous", () => {
    assert.deepEqual(kinds([log(1, e(1, 1, "a"), e(3, 1, "b"))]), ["malformed-observation"]);
  });
});
