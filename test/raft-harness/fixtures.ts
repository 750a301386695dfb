// Small builders shared by the Raft tests: entries with given terms, and a member restarted with a
// crafted log and term (the way a paper figure sets up its servers).
import assert from "node:assert/strict";
import { type Entry, logIndex, nodeId, term } from "../../src/raft/index.js";
import type { Net } from "./net.js";

/** Entries with the given terms starting at `from`; each carries "index@term" as data. */
export function entriesWithTerms(terms: readonly number[], from = 1): Entry[] {
  return terms.map((t, k) => ({
    term: term(t),
    index: logIndex(from + k),
    kind: "normal" as const,
    data: new TextEncoder().encode(`${from + k}@${t}`),
  }));
}

/**
 * Rewrites member `id`'s disk to hold a log with these terms at `currentTerm`, then restarts it.
 * With `keepBootstrap`, the stored entry 1 (the bootstrap configuration) stays and `terms` start at
 * index 2.
 */
export function setLog(
  net: Net,
  id: number,
  terms: readonly number[],
  currentTerm: number,
  commit = 0,
  keepBootstrap = false,
): void {
  const n = net.cluster.node(id);
  assert.ok(n.raw !== undefined, "node must be up");
  net.cluster.crash(id);
  const kept = keepBootstrap ? n.disk.entries.filter((e) => e.index === 1) : [];
  n.disk.entries = [...kept, ...entriesWithTerms(terms, kept.length + 1)];
  n.disk.snapshot = undefined;
  n.disk.written = true;
  n.disk.hardState = { term: term(currentTerm), votedFor: null, commitIndex: logIndex(commit) };
  net.cluster.restart(id);
}

/** The terms of member `id`'s log, from its first held entry. */
export function logTerms(net: Net, id: number): number[] {
  const s = net.cluster.raw(id).status();
  return net.cluster
    .raw(id)
    .entries(s.snapshotIndex + 1, s.lastIndex + 1)
    .map((e) => e.term);
}

/** Shorthand for a node id. */
export const n = nodeId;
