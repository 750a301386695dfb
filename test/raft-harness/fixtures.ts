// Small builders shared by the Raft tests: entries with given terms, and a member restarted with a
// crafted log and term (the way a paper figure sets up its servers).
import assert from "node:assert/strict";
import {
  type Entry,
  encodeConfChanges,
  groupId,
  logIndex,
  type Message,
  type MessageBody,
  type NodeId,
  nodeId,
  type PersistedState,
  RawNode,
  term,
} from "../../src/raft/index.js";
import { Prng } from "../../src/util/prng.js";
import type { Net } from "./net.js";

/** Voters 1, 2 and 3 of group 1, as the direct-step tests below use them. */
export const threeVoters: readonly NodeId[] = [nodeId(1), nodeId(2), nodeId(3)];

/** The bootstrap entry (index 1, term 0) that makes voters 1, 2 and 3 the group. */
export const threeVoterBootstrap: Entry = {
  term: term(0),
  index: logIndex(1),
  kind: "conf-change",
  data: encodeConfChanges(threeVoters.map((node) => ({ type: "add-voter" as const, node }))),
};

/**
 * Member 1 of group 1 restarted from `persisted` (heartbeat every tick, election after 10, pre-vote
 * on, check-quorum off), for tests that step messages into one member directly.
 */
export function restartMember1(persisted: PersistedState, voters: readonly NodeId[] = threeVoters): RawNode {
  return new RawNode(
    {
      id: nodeId(1),
      groupId: groupId(1),
      conf: { voters: [...voters], learners: [] },
      electionTimeoutTicks: 10,
      heartbeatTicks: 1,
      preVote: true,
      checkQuorum: false,
      appendBytesMax: 1 << 20,
      inflightAppendsMax: 8,
      random: new Prng(1),
    },
    persisted,
  );
}

/** Steps a message from `from` at term `t` into member 1 and returns all it sends, every Ready done. */
export function deliverTo1(raw: RawNode, from: number, t: number, body: MessageBody): Message[] {
  raw.step({ ...body, groupId: groupId(1), from: nodeId(from), to: nodeId(1), term: term(t) } as Message);
  const out: Message[] = [];
  while (raw.hasReady()) {
    const rd = raw.ready();
    out.push(...rd.messages, ...rd.messagesAfterPersist);
    raw.advance(rd);
  }
  return out;
}

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
