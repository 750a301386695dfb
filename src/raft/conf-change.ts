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
export type ConfChangeDecodeError =
  | "truncated"
  | "bad-version"
  | "bad-count"
  | "bad-type"
  | "bad-node"
  | "trailing-bytes";

/**
 * Encodes the payload of a "conf-change" entry: a version byte (1), the number of changes as an
 * unsigned LEB128 varint, then per change a type byte (1 add-voter, 2 add-learner, 3 promote,
 * 4 remove) and the node id as a varint (1 byte for ids below 128). A proposal carries exactly one
 * change; only the bootstrap entry of a new group (index 1) lists several, one per initial member,
 * so that a node joining later learns the initial configuration from the log itself.
 */
export function encodeConfChanges(changes: readonly ConfChange[]): Uint8Array {
  const bytes = [version];
  pushVarint(bytes, changes.length);
  for (const c of changes) {
    bytes.push(typeCodes[c.type]);
    pushVarint(bytes, c.node);
  }
  return Uint8Array.from(bytes);
}

function pushVarint(bytes: number[], value: number): void {
  let n = value;
  // Division rather than bit shifts: ids may use all 53 bits of a safe integer.
  while (n >= 0x80) {
    bytes.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  bytes.push(n);
}

/** Reads a canonical varint at `at`; returns the value and the next offset, or an error. */
function readVarint(data: Uint8Array, at: number): { value: number; next: number } | "truncated" | "bad" {
  let n = 0;
  let scale = 1;
  let k = at;
  for (;;) {
    const b = data[k];
    if (b === undefined) return "truncated";
    k++;
    n += (b & 0x7f) * scale;
    if (!Number.isSafeInteger(n)) return "bad";
    if ((b & 0x80) === 0) {
      // A trailing zero group would give one value two encodings; refuse it.
      if (b === 0 && k > at + 1) return "bad";
      return { value: n, next: k };
    }
    scale *= 0x80;
    if (scale > Number.MAX_SAFE_INTEGER) return "bad";
  }
}

/** Decodes {@link encodeConfChanges}'s output, or names what is wrong with the bytes. */
export function decodeConfChanges(
  data: Uint8Array,
): { ok: true; changes: ConfChange[] } | { ok: false; reason: ConfChangeDecodeError } {
  if (data.length === 0) return { ok: false, reason: "truncated" };
  if (data[0] !== version) return { ok: false, reason: "bad-version" };
  const count = readVarint(data, 1);
  if (count === "truncated") return { ok: false, reason: "truncated" };
  // Each change takes at least two bytes, which bounds the count before anything is allocated.
  if (count === "bad" || count.value < 1 || count.value > data.length)
    return { ok: false, reason: "bad-count" };
  const changes: ConfChange[] = [];
  let k = count.next;
  for (let c = 0; c < count.value; c++) {
    const code = data[k];
    if (code === undefined) return { ok: false, reason: "truncated" };
    const type = typesByCode.get(code);
    if (type === undefined) return { ok: false, reason: "bad-type" };
    const node = readVarint(data, k + 1);
    if (node === "truncated") return { ok: false, reason: "truncated" };
    if (node === "bad" || node.value < 1) return { ok: false, reason: "bad-node" };
    changes.push({ type, node: nodeId(node.value) });
    k = node.next;
  }
  if (k !== data.length) return { ok: false, reason: "trailing-bytes" };
  return { ok: true, changes };
}

/** Decodes a conf-change entry the core itself wrote; a bad payload there is corruption. */
export function mustDecodeConfChanges(data: Uint8Array): ConfChange[] {
  const decoded = decodeConfChanges(data);
  assert(decoded.ok, `undecodable conf-change entry: ${decoded.ok ? "" : decoded.reason}`);
  return decoded.changes;
}

/** The changes that build `conf` from an empty configuration: the bootstrap entry's payload. */
export function bootstrapChanges(conf: ConfState): ConfChange[] {
  return [
    ...conf.voters.map((node) => ({ type: "add-voter" as const, node })),
    ...conf.learners.map((node) => ({ type: "add-learner" as const, node })),
  ];
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
   * Records a conf-change entry appended at `index`, its changes applied in order. An entry whose
   * changes do not fit the configuration before it is a no-op (a leader validated it against the
   * same history, so this only happens to entries that will be truncated).
   */
  append(index: LogIndex, changes: readonly ConfChange[]): void {
    const last = this.#changes.at(-1);
    assert(last === undefined || index > last.index, "conf changes must be appended in order");
    let conf = this.current();
    for (const change of changes) {
      const applied = applyConfChange(conf, change);
      if (!applied.ok) return;
      conf = applied.conf;
    }
    this.#changes.push({ index, conf });
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
