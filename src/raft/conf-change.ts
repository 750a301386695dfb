// Membership changes, one server at a time (Raft dissertation §4.1): the change itself, its compact
// binary encoding inside a "conf-change" log entry, and the rules for applying it to a ConfState.
import { assert } from "../util/assert.js";
import { type ConfState, type LogIndex, type NodeId, nodeId } from "./types.js";

/**
 * One membership change.
 * - `add-voter`: a node that is not a member becomes a voter.
 * - `add-learner`: a node that is not a member becomes a learner (receives the log, never votes).
 * - `promote`: a learner becomes a voter (the usual way to add a voter: learn first, then promote).
 * - `remove`: a voter or learner leaves.
 */
export interface ConfChange {
  readonly type: "add-voter" | "add-learner" | "promote" | "remove";
  readonly node: NodeId;
}

const version = 1;
const typeCodes: Record<ConfChange["type"], number> = {
  "add-voter": 1,
  "add-learner": 2,
  promote: 3,
  remove: 4,
};
const typesByCode = new Map<number, ConfChange["type"]>(
  Object.entries(typeCodes).map(([k, v]) => [v, k as ConfChange["type"]]),
);

/** Why a conf-change payload could not be decoded. */
export type ConfChangeDecodeError = "truncated" | "bad-version" | "bad-type" | "bad-node" | "trailing-bytes";

/**
 * Encodes a change as: version byte (1), type byte (1 add-voter, 2 add-learner, 3 promote,
 * 4 remove), then the node id as an unsigned LEB128 varint (1 byte for ids below 128).
 */
export function encodeConfChange(change: ConfChange): Uint8Array {
  const bytes = [version, typeCodes[change.type]];
  let n = change.node as number;
  // Division rather than bit shifts: node ids may use all 53 bits of a safe integer.
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  bytes.push(n);
  return Uint8Array.from(bytes);
}

/** Decodes {@link encodeConfChange}'s output, or names what is wrong with the bytes. */
export function decodeConfChange(
  data: Uint8Array,
): { ok: true; change: ConfChange } | { ok: false; reason: ConfChangeDecodeError } {
  if (data.length < 3) return { ok: false, reason: "truncated" };
  if (data[0] !== version) return { ok: false, reason: "bad-version" };
  const type = typesByCode.get(data[1] ?? 0);
  if (type === undefined) return { ok: false, reason: "bad-type" };
  let n = 0;
  let scale = 1;
  let k = 2;
  for (;;) {
    const b = data[k];
    if (b === undefined) return { ok: false, reason: "truncated" };
    k++;
    n += (b & 0x7f) * scale;
    if (!Number.isSafeInteger(n)) return { ok: false, reason: "bad-node" };
    if ((b & 0x80) === 0) {
      // A trailing zero group would make two encodings of one id; refuse it.
      if (b === 0 && k > 3) return { ok: false, reason: "bad-node" };
      break;
    }
    scale *= 0x80;
    if (scale > Number.MAX_SAFE_INTEGER) return { ok: false, reason: "bad-node" };
  }
  if (k !== data.length) return { ok: false, reason: "trailing-bytes" };
  if (n < 1) return { ok: false, reason: "bad-node" };
  return { ok: true, change: { type, node: nodeId(n) } };
}

/** Decodes a conf-change entry the core itself wrote; a bad payload there is corruption. */
export function mustDecodeConfChange(data: Uint8Array): ConfChange {
  const decoded = decodeConfChange(data);
  assert(decoded.ok, `undecodable conf-change entry: ${decoded.ok ? "" : decoded.reason}`);
  return decoded.change;
}

/** Why a change cannot apply to a configuration. */
export type ConfChangeInvalidReason = "already-member" | "not-a-learner" | "not-a-member" | "last-voter";

/**
 * Applies one change to a configuration, or says why it does not fit. Removing the last voter is
 * refused: a group without voters can never commit again.
 */
export function applyConfChange(
  conf: ConfState,
  change: ConfChange,
): { ok: true; conf: ConfState } | { ok: false; reason: ConfChangeInvalidReason } {
  const isVoter = conf.voters.includes(change.node);
  const isLearner = conf.learners.includes(change.node);
  const sorted = (ids: readonly NodeId[]): NodeId[] => [...ids].sort((a, b) => a - b);
  switch (change.type) {
    case "add-voter":
      if (isVoter || isLearner) return { ok: false, reason: "already-member" };
      return { ok: true, conf: { voters: sorted([...conf.voters, change.node]), learners: conf.learners } };
    case "add-learner":
      if (isVoter || isLearner) return { ok: false, reason: "already-member" };
      return { ok: true, conf: { voters: conf.voters, learners: sorted([...conf.learners, change.node]) } };
    case "promote":
      if (!isLearner) return { ok: false, reason: "not-a-learner" };
      return {
        ok: true,
        conf: {
          voters: sorted([...conf.voters, change.node]),
          learners: conf.learners.filter((id) => id !== change.node),
        },
      };
    case "remove":
      if (!isVoter && !isLearner) return { ok: false, reason: "not-a-member" };
      if (isVoter && conf.voters.length === 1) return { ok: false, reason: "last-voter" };
      return {
        ok: true,
        conf: {
          voters: conf.voters.filter((id) => id !== change.node),
          learners: conf.learners.filter((id) => id !== change.node),
        },
      };
  }
}

/**
 * The configurations found in the log view, so the one in force can be recomputed when a suffix
 * is truncated or a prefix compacted. Raft dissertation §4.1: a server uses the latest configuration
 * in its log, committed or not.
 */
export class ConfHistory {
  #base: ConfState;
  #changes: { index: LogIndex; conf: ConfState }[] = [];

  /** Starts from the configuration as of the log's snapshot (or the initial one). */
  constructor(base: ConfState) {
    this.#base = base;
  }

  /** The configuration in force: the latest in the log. */
  current(): ConfState {
    return this.#changes.at(-1)?.conf ?? this.#base;
  }

  /** The index of the latest conf-change entry in the log view, or 0 when there is none. */
  lastChangeIndex(): number {
    return this.#changes.at(-1)?.index ?? 0;
  }

  /** The configuration as of `index` (the latest change at or below it). */
  at(index: number): ConfState {
    let conf = this.#base;
    for (const c of this.#changes) {
      if (c.index > index) break;
      conf = c.conf;
    }
    return conf;
  }

  /**
   * Records a conf-change entry appended at `index`. An entry whose change does not fit the
   * configuration before it is a no-op (a leader validated it against the same history, so this
   * only happens to entries that will be truncated).
   */
  append(index: LogIndex, change: ConfChange): void {
    const last = this.#changes.at(-1);
    assert(last === undefined || index > last.index, "conf changes must be appended in order");
    const applied = applyConfChange(this.current(), change);
    if (applied.ok) this.#changes.push({ index, conf: applied.conf });
  }

  /** Forgets changes at or above `index` (their entries were truncated). */
  truncateFrom(index: number): void {
    this.#changes = this.#changes.filter((c) => c.index < index);
  }

  /** Folds changes at or below `index` into the base (their entries were compacted away). */
  compactTo(index: number): void {
    this.#base = this.at(index);
    this.#changes = this.#changes.filter((c) => c.index > index);
  }

  /** Resets to a snapshot's configuration (every entry was replaced). */
  reset(base: ConfState): void {
    this.#base = base;
    this.#changes = [];
  }
}
