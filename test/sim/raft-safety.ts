// Raft's safety properties (Raft §5.2, §5.3, §5.4, Figure 3) checked over a log of observations the
// simulator records while it runs a cluster, independent of the core's API: the harness turns
// whatever the core exposes into these events, and the checker needs nothing else.
import { assert, assertNever } from "../../src/util/assert.js";

/** One log entry as observed: its position, term and a digest of its payload. */
export interface ObservedEntry {
  readonly index: number;
  readonly term: number;
  readonly dataHash: string;
}

/**
 * Something the simulator saw happen on a node.
 * - `became-leader`: the node won the election for `term`.
 * - `stepped-down`: the node stopped being leader (any reason: higher term, check-quorum, transfer).
 * - `crashed` / `restarted`: the node's process stopped / came back (a crashed leader is no leader).
 * - `log`: the node's persisted log after a change (including right after recovery). `entries` are
 *   contiguous and ascending; entries up to `compactedThrough` live only in a snapshot.
 * - `committed`: the node learned that `index` (with entry term `term`) is committed, while its own
 *   current term was `currentTerm`. The entry was then committed in a term <= `currentTerm`.
 * - `applied`: the node applied the entry to its state machine.
 * - `acked-write`: a client got an acknowledgement for the write whose payload digest is `dataHash`
 *   (with the index and term when the runtime reports them).
 */
export type RaftObservation =
  | { readonly type: "became-leader"; readonly node: number; readonly term: number }
  | { readonly type: "stepped-down"; readonly node: number; readonly term: number }
  | { readonly type: "crashed"; readonly node: number }
  | { readonly type: "restarted"; readonly node: number }
  | {
      readonly type: "log";
      readonly node: number;
      readonly entries: readonly ObservedEntry[];
      readonly compactedThrough?: { readonly index: number; readonly term: number };
    }
  | {
      readonly type: "committed";
      readonly node: number;
      readonly index: number;
      readonly term: number;
      readonly dataHash: string;
      readonly currentTerm: number;
    }
  | {
      readonly type: "applied";
      readonly node: number;
      readonly index: number;
      readonly term: number;
      readonly dataHash: string;
    }
  | {
      readonly type: "acked-write";
      readonly clientId: number;
      readonly dataHash: string;
      readonly index?: number;
      readonly term?: number;
    };

/** The properties checked, named after the paper's Figure 3 (plus the client-visible one). */
export type RaftViolationKind =
  | "election-safety"
  | "leader-append-only"
  | "log-matching"
  | "leader-completeness"
  | "state-machine-safety"
  | "acked-write-lost"
  | "malformed-observation";

/** A broken property with the observations that prove it (by position in the observation log). */
export interface RaftViolation {
  readonly kind: RaftViolationKind;
  readonly message: string;
  /** Positions (0-based) in the observation log of the events that prove the violation. */
  readonly evidence: readonly number[];
}

/** An observation with its position in the log. */
interface Seen<E> {
  readonly at: number;
  readonly event: E;
}

type LogObservation = Extract<RaftObservation, { type: "log" }>;
type CommittedObservation = Extract<RaftObservation, { type: "committed" }>;
type AppliedObservation = Extract<RaftObservation, { type: "applied" }>;
type AckObservation = Extract<RaftObservation, { type: "acked-write" }>;

/** What the log-matching check remembers about one (index, term) pair. */
interface PairFacts {
  readonly dataHash: string;
  readonly dataAt: number;
  /** The term of the entry before it, when some observation showed that entry. */
  prevTerm?: number;
  prevAt?: number;
}

const entryText = (e: { index: number; term: number; dataHash: string }) =>
  `(${e.index}, t${e.term}, ${e.dataHash})`;

/**
 * Checks Raft safety incrementally: feed every observation to `observe` in the order it happened,
 * then call `finish` for the checks that need the whole run. Violations are collected, not thrown, so
 * a simulation can print all of them with its seed.
 */
export class RaftSafetyChecker {
  readonly #violations: RaftViolation[] = [];
  #count = 0;
  /** Election safety: who led each term. */
  readonly #leaderOfTerm = new Map<number, Seen<{ node: number }>>();
  /** Latest log observation per node. */
  readonly #latestLog = new Map<number, Seen<LogObservation>>();
  /** The term a node currently leads, if it is leader. */
  readonly #leading = new Map<number, { term: number }>();
  /** Leader completeness: each leader's log as it was when it was elected. */
  readonly #elections: { term: number; node: number; at: number; log: Seen<LogObservation> | undefined }[] =
    [];
  /** Log matching: facts per (index, term). */
  readonly #pairs = new Map<string, PairFacts>();
  /** Committed entries by index (the one with the smallest currentTerm is the strongest claim). */
  readonly #committed = new Map<number, Seen<CommittedObservation>>();
  /** State machine safety: the first entry applied at each index. */
  readonly #applied = new Map<number, Seen<AppliedObservation>>();
  readonly #acks: Seen<AckObservation>[] = [];

  /** Records one observation and runs the checks it can settle at once. */
  observe(event: RaftObservation): void {
    const at = this.#count++;
    switch (event.type) {
      case "became-leader":
        this.#onBecameLeader(at, event.node, event.term);
        break;
      case "stepped-down":
        this.#leading.delete(event.node);
        break;
      case "crashed":
      case "restarted":
        this.#leading.delete(event.node);
        break;
      case "log":
        this.#onLog(at, event);
        break;
      case "committed":
        this.#onCommitted(at, event);
        break;
      case "applied":
        this.#onApplied(at, event);
        break;
      case "acked-write":
        this.#acks.push({ at, event });
        break;
      default:
        assertNever(event, "raft observation");
    }
  }

  /** Runs the whole-run checks and returns every violation found. Call once, after the last event. */
  finish(): RaftViolation[] {
    this.#checkLeaderCompleteness();
    this.#checkAckedWrites();
    return [...this.#violations];
  }

  #report(kind: RaftViolationKind, message: string, evidence: number[]): void {
    this.#violations.push({ kind, message, evidence: [...new Set(evidence)].sort((a, b) => a - b) });
  }

  #onBecameLeader(at: number, node: number, term: number): void {
    // Raft §5.2 (election safety): at most one leader can be elected in a given term.
    const previous = this.#leaderOfTerm.get(term);
    if (previous === undefined) this.#leaderOfTerm.set(term, { at, event: { node } });
    else if (previous.event.node !== node) {
      this.#report(
        "election-safety",
        `term ${term} has two leaders: node ${previous.event.node} (event #${previous.at}) and node ${node} (event #${at})`,
        [previous.at, at],
      );
    }
    this.#leading.set(node, { term });
    this.#elections.push({ term, node, at, log: this.#latestLog.get(node) });
  }

  #onLog(at: number, event: LogObservation): void {
    if (!this.#wellFormedLog(at, event)) return;
    const previous = this.#latestLog.get(event.node);
    const leading = this.#leading.get(event.node);
    // While leading, each log must keep everything the previous one had, starting from the log the
    // node held when it was elected.
    if (previous !== undefined && leading !== undefined)
      this.#checkAppendOnly(previous, { at, event }, leading.term);
    this.#latestLog.set(event.node, { at, event });
    this.#checkLogMatching(at, event);
  }

  #wellFormedLog(at: number, event: LogObservation): boolean {
    let expected = event.compactedThrough === undefined ? undefined : event.compactedThrough.index + 1;
    for (const entry of event.entries) {
      if ((expected !== undefined && entry.index !== expected) || entry.index < 1) {
        this.#report(
          "malformed-observation",
          `node ${event.node}'s log (event #${at}) is not contiguous at index ${entry.index}`,
          [at],
        );
        return false;
      }
      expected = entry.index + 1;
    }
    return true;
  }

  /**
   * Raft §5.3 (leader append-only): while `term` lasts, every entry the leader had must still be
   * there, unchanged, unless a snapshot now covers it.
   */
  #checkAppendOnly(before: Seen<LogObservation>, after: Seen<LogObservation>, term: number): void {
    const afterByIndex = new Map(after.event.entries.map((e) => [e.index, e]));
    const compacted = after.event.compactedThrough?.index ?? 0;
    for (const entry of before.event.entries) {
      if (entry.index <= compacted) continue;
      const now = afterByIndex.get(entry.index);
      if (now === undefined || now.term !== entry.term || now.dataHash !== entry.dataHash) {
        const what = now === undefined ? "deleted" : `overwrote it with ${entryText(now)}`;
        this.#report(
          "leader-append-only",
          `node ${after.event.node}, leader of term ${term}, had ${entryText(entry)} (event #${before.at}) and then ${what} (event #${after.at})`,
          [before.at, after.at],
        );
        return;
      }
    }
  }

  /**
   * Raft §5.3 (log matching): if two logs contain an entry with the same index and term, the logs are
   * identical in all entries up through that index. By induction it suffices that each (index, term)
   * pair always carries the same payload and follows an entry of the same term.
   */
  #checkLogMatching(at: number, event: LogObservation): void {
    // The snapshot's last entry is the predecessor of the first entry kept.
    let prev: { term: number } | undefined = event.compactedThrough;
    for (const entry of event.entries) {
      const key = `${entry.index}:${entry.term}`;
      const facts = this.#pairs.get(key);
      const prevTerm = prev?.term ?? (entry.index === 1 ? 0 : undefined);
      if (facts === undefined) {
        const fresh: PairFacts = { dataHash: entry.dataHash, dataAt: at };
        if (prevTerm !== undefined) {
          fresh.prevTerm = prevTerm;
          fresh.prevAt = at;
        }
        this.#pairs.set(key, fresh);
      } else {
        if (facts.dataHash !== entry.dataHash) {
          this.#report(
            "log-matching",
            `index ${entry.index} term ${entry.term} holds ${facts.dataHash} in event #${facts.dataAt} but ${entry.dataHash} on node ${event.node} (event #${at})`,
            [facts.dataAt, at],
          );
        } else if (prevTerm !== undefined && facts.prevTerm !== undefined && facts.prevTerm !== prevTerm) {
          this.#report(
            "log-matching",
            `entry (${entry.index}, t${entry.term}) follows a term-${facts.prevTerm} entry in event #${facts.prevAt} but a term-${prevTerm} entry on node ${event.node} (event #${at}): the logs agree at ${entry.index} and differ before it`,
            [facts.prevAt ?? facts.dataAt, at],
          );
        } else if (prevTerm !== undefined && facts.prevTerm === undefined) {
          facts.prevTerm = prevTerm;
          facts.prevAt = at;
        }
      }
      prev = entry;
    }
  }

  #onCommitted(at: number, event: CommittedObservation): void {
    const previous = this.#committed.get(event.index);
    if (previous !== undefined) {
      const p = previous.event;
      if (p.term !== event.term || p.dataHash !== event.dataHash) {
        this.#report(
          "state-machine-safety",
          `index ${event.index} was committed as ${entryText(p)} on node ${p.node} (event #${previous.at}) and as ${entryText(event)} on node ${event.node} (event #${at})`,
          [previous.at, at],
        );
        return;
      }
      if (p.currentTerm <= event.currentTerm) return;
    }
    this.#committed.set(event.index, { at, event });
  }

  #onApplied(at: number, event: AppliedObservation): void {
    // Raft §5.4.3 (state machine safety): no two servers apply different entries at one index.
    const previous = this.#applied.get(event.index);
    if (previous === undefined) {
      this.#applied.set(event.index, { at, event });
      return;
    }
    const p = previous.event;
    if (p.term !== event.term || p.dataHash !== event.dataHash) {
      this.#report(
        "state-machine-safety",
        `node ${p.node} applied ${entryText(p)} (event #${previous.at}) but node ${event.node} applied ${entryText(event)} (event #${at})`,
        [previous.at, at],
      );
    }
  }

  /**
   * Raft §5.4 (leader completeness): an entry committed in term T is in the log of every leader of a
   * term > T. A `committed` observation made in current term C proves the entry was committed in a
   * term <= C, so every leader of a term > C must have had it when elected.
   */
  #checkLeaderCompleteness(): void {
    for (const election of this.#elections) {
      const log = election.log?.event;
      const byIndex = new Map((log?.entries ?? []).map((e) => [e.index, e]));
      const compacted = log?.compactedThrough?.index ?? 0;
      for (const [index, { at, event }] of this.#committed) {
        if (event.currentTerm >= election.term || index <= compacted) continue;
        const has = byIndex.get(index);
        if (has !== undefined && has.term === event.term && has.dataHash === event.dataHash) continue;
        const logAt = election.log === undefined ? [] : [election.log.at];
        this.#report(
          "leader-completeness",
          `${entryText(event)} was committed by term ${event.currentTerm} (event #${at}) but node ${election.node}, elected leader of term ${election.term} (event #${election.at}), ${has === undefined ? "lacked it" : `had ${entryText(has)}`}`,
          [at, election.at, ...logAt],
        );
      }
    }
  }

  /** Acknowledged means durable: every acknowledged write must be in the applied history. */
  #checkAckedWrites(): void {
    const indexesByHash = new Map<string, number[]>();
    for (const [index, { event }] of this.#applied) {
      const list = indexesByHash.get(event.dataHash);
      if (list) list.push(index);
      else indexesByHash.set(event.dataHash, [index]);
    }
    for (const { at, event } of this.#acks) {
      const indexes = indexesByHash.get(event.dataHash) ?? [];
      const found = indexes.some((i) => {
        const applied = this.#applied.get(i);
        assert(applied !== undefined, "index map out of sync");
        return (
          (event.index === undefined || event.index === i) &&
          (event.term === undefined || event.term === applied.event.term)
        );
      });
      if (!found) {
        const where =
          event.index === undefined
            ? ""
            : ` at index ${event.index}${event.term === undefined ? "" : ` term ${event.term}`}`;
        const instead = event.index === undefined ? undefined : this.#applied.get(event.index);
        this.#report(
          "acked-write-lost",
          `client ${event.clientId}'s acknowledged write ${event.dataHash}${where} (event #${at}) was never applied${instead ? `; index ${event.index} holds ${entryText(instead.event)} (event #${instead.at})` : ""}`,
          instead ? [at, instead.at] : [at],
        );
      }
    }
  }
}

/** Checks a whole observation log at once. */
export function checkRaftSafety(events: readonly RaftObservation[]): RaftViolation[] {
  const checker = new RaftSafetyChecker();
  for (const event of events) checker.observe(event);
  return checker.finish();
}
