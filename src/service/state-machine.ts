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
  mapKeyOf,
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
  /** Writes `effects` and `appliedIndex` atomically; reads see them once this resolves. */
  commit(effects: readonly StateEffect[], appliedIndex: number): Promise<void>;
  /** Resolves once every commit reached the underlying store (before a snapshot replaces it). */
  settle?(): Promise<void>;
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
  readonly #onApplied: (() => void) | undefined;

  /**
   * Creates the state machine over a backend. `onApplied` runs after each applied batch is
   * committed (it wakes long-polls and event streams waiting for new messages).
   */
  constructor(
    backend: StateBackend,
    settings: IdempotencySettings = defaultIdempotencySettings,
    onApplied?: () => void,
  ) {
    this.#backend = backend;
    this.#settings = settings;
    this.#onApplied = onApplied;
  }

  appliedIndex(): LogIndex {
    return logIndex(this.#backend.appliedIndex());
  }

  async settle(): Promise<void> {
    await this.#backend.settle?.();
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
    if (last !== undefined && last.index > applied) {
      await this.#backend.commit(overlay.effects(), last.index);
      this.#onApplied?.();
    }
    return results;
  }
}

/** How many pairs one page of a range scan reads from the store. */
const scanPageMax = 1000;

/**
 * A backend on the node's state store (lmdb in production). A round's effects are written with the
 * applied index in one store transaction, but `commit` does not wait for it: the effects are
 * visible at once through a layer of pending writes over the store (as etcd reads through its
 * backend's write buffer), and leave that layer when their transaction has committed. Durability
 * does not depend on the store: every applied entry is already in the WAL, and a restart replays
 * from the store's own applied index. A failed store write stops the group at the next commit.
 */
export class StoreBackend implements StateBackend {
  readonly reader: StateReader;
  readonly #store: StateStore;
  readonly #group: GroupId;
  /** The newest pending write of each key, by space then key. */
  readonly #pending = new Map<Space, Map<string, StateEffect>>();
  #appliedIndex: number;
  #lastCommit: Promise<void> = Promise.resolve();
  #failure: unknown;

  /** Creates a backend for `group` of `store`. */
  constructor(store: StateStore, group: GroupId) {
    this.#store = store;
    this.#group = group;
    this.#appliedIndex = store.appliedIndex(group);
    const committed: StateReader = {
      get: (space, key) => store.get(group, space, key),
      range: (space, start, end, limit) => scan(store, group, space, start, end, limit),
    };
    this.reader = {
      get: (space, key) => {
        const pending = this.#pending.get(space)?.get(mapKeyOf(key));
        return pending !== undefined ? pending.value : committed.get(space, key);
      },
      range: (space, start, end, limit) => {
        const pending = this.#pending.get(space);
        if (pending === undefined || pending.size === 0) return committed.range(space, start, end, limit);
        return StateOverlay.over(committed, [...pending.values()]).range(space, start, end, limit);
      },
    };
  }

  appliedIndex(): number {
    // The store's own index moves past ours when a snapshot is installed into it.
    return Math.max(this.#appliedIndex, this.#store.appliedIndex(this.#group));
  }

  async commit(effects: readonly StateEffect[], appliedIndex: number): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    for (const e of effects) {
      let space = this.#pending.get(e.space);
      if (space === undefined) {
        space = new Map();
        this.#pending.set(e.space, space);
      }
      space.set(mapKeyOf(e.key), e);
    }
    this.#appliedIndex = appliedIndex;
    const write = this.#store.applyBatch(
      this.#group,
      logIndex(appliedIndex),
      effects.map(
        (e): Effect =>
          e.value === undefined
            ? { op: "delete", kind: e.space, key: e.key }
            : { op: "put", kind: e.space, key: e.key, value: e.value },
      ),
    );
    this.#lastCommit = write.then(
      () => {
        // Leave the pending layer, unless a later round wrote the key again.
        for (const e of effects) {
          const space = this.#pending.get(e.space);
          const id = mapKeyOf(e.key);
          if (space?.get(id) === e) space.delete(id);
        }
      },
      (error: unknown) => {
        this.#failure = error;
      },
    );
  }

  /** Resolves once every commit so far reached the store; rejects if one failed. */
  async settle(): Promise<void> {
    await this.#lastCommit;
    if (this.#failure !== undefined) throw this.#failure;
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
