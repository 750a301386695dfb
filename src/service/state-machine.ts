// The replicated state machine the node runtime applies committed entries to: decodes each
// envelope, runs it against an overlay of committed state, and commits the round's effects with
// the new applied index in one step of the backend (one store transaction), so a restart resumes
// exactly after the last applied entry.

import type { StateMachine } from "../node/ports.js";
import type { Entry } from "../raft/index.js";
import { type GroupId, type LogIndex, logIndex } from "../raft/index.js";
import type { Effect, StateStore } from "../storage/state-store.js";
import {
  type ApplyOutcome,
  applyEnvelope,
  decodeEnvelope,
  defaultIdempotencySettings,
  type IdempotencySettings,
} from "./command.js";
import {
  keyAfter,
  MemoryState,
  type Space,
  type StateEffect,
  StateOverlay,
  type StateReader,
} from "./state.js";

/** Where committed state lives: read it, and commit a round's effects with its applied index. */
export interface StateBackend {
  /** Committed state. */
  readonly reader: StateReader;
  /** The index of the last entry whose effects were committed. */
  appliedIndex(): number;
  /** Writes `effects` and `appliedIndex` atomically and durably. */
  commit(effects: readonly StateEffect[], appliedIndex: number): Promise<void>;
}

/** A backend in memory: for tests and the simulator's level-1 runs. */
export class MemoryBackend implements StateBackend {
  readonly reader: MemoryState;
  #appliedIndex = 0;

  /** Creates an empty backend, or one over existing state. */
  constructor(state = new MemoryState()) {
    this.reader = state;
  }

  appliedIndex(): number {
    return this.#appliedIndex;
  }

  async commit(effects: readonly StateEffect[], appliedIndex: number): Promise<void> {
    for (const e of effects) {
      if (e.value === undefined) this.reader.delete(e.space, e.key);
      else this.reader.put(e.space, e.key, e.value);
    }
    this.#appliedIndex = appliedIndex;
  }
}

/** Applies Cairn's command envelopes; no-ops and membership entries yield undefined. */
export class ServiceStateMachine implements StateMachine<ApplyOutcome> {
  readonly #backend: StateBackend;
  readonly #settings: IdempotencySettings;

  /** Creates the state machine over a backend. */
  constructor(backend: StateBackend, settings: IdempotencySettings = defaultIdempotencySettings) {
    this.#backend = backend;
    this.#settings = settings;
  }

  appliedIndex(): LogIndex {
    return logIndex(this.#backend.appliedIndex());
  }

  async apply(entries: readonly Entry[]): Promise<readonly (ApplyOutcome | undefined)[]> {
    const overlay = new StateOverlay(this.#backend.reader);
    const applied = this.#backend.appliedIndex();
    const results = entries.map((entry) => {
      // Applying is idempotent: entries at or below the applied index were committed before.
      if (entry.index <= applied || entry.kind !== "normal" || entry.data.length === 0) return undefined;
      return applyEnvelope(overlay, decodeEnvelope(entry.data), this.#settings);
    });
    const last = entries.at(-1);
    if (last !== undefined && last.index > applied) await this.#backend.commit(overlay.effects(), last.index);
    return results;
  }
}

/** How many pairs one page of a range scan reads from the store. */
const scanPageMax = 1000;

/**
 * A backend on the node's state store (lmdb in production): reads go straight to the store, and a
 * round's effects are written with the applied index in one store transaction.
 */
export class StoreBackend implements StateBackend {
  readonly reader: StateReader;
  readonly #store: StateStore;
  readonly #group: GroupId;

  /** Creates a backend for `group` of `store`. */
  constructor(store: StateStore, group: GroupId) {
    this.#store = store;
    this.#group = group;
    this.reader = {
      get: (space, key) => store.get(group, space, key),
      range: (space, start, end, limit) => scan(store, group, space, start, end, limit),
    };
  }

  appliedIndex(): number {
    return this.#store.appliedIndex(this.#group);
  }

  async commit(effects: readonly StateEffect[], appliedIndex: number): Promise<void> {
    await this.#store.applyBatch(
      this.#group,
      logIndex(appliedIndex),
      effects.map(
        (e): Effect =>
          e.value === undefined
            ? { op: "delete", kind: e.space, key: e.key }
            : { op: "put", kind: e.space, key: e.key, value: e.value },
      ),
    );
  }
}

/** Pages through a store range: the store caps each read, scans may want more. */
function* scan(
  store: StateStore,
  group: GroupId,
  space: Space,
  start: Uint8Array,
  end: Uint8Array | undefined,
  limit: number,
): Iterable<readonly [Uint8Array, Uint8Array]> {
  let from = start;
  let left = limit;
  while (left > 0) {
    const asked = Math.min(left, scanPageMax);
    const page = store.range(group, {
      kind: space,
      start: from,
      ...(end !== undefined ? { end } : {}),
      limit: asked,
    });
    for (const { key, value } of page) yield [key, value];
    const last = page.at(-1);
    if (page.length < asked || last === undefined) return;
    left -= page.length;
    from = keyAfter(last.key);
  }
}
