// The replicated state machine the node runtime applies committed entries to: decodes each
// envelope, runs it against an overlay of committed state, and commits the round's effects with
// the new applied index in one step of the backend (one store transaction), so a restart resumes
// exactly after the last applied entry.

import type { StateMachine } from "../node/ports.js";
import type { Entry } from "../raft/index.js";
import { type LogIndex, logIndex } from "../raft/index.js";
import {
  type ApplyOutcome,
  applyEnvelope,
  decodeEnvelope,
  defaultIdempotencySettings,
  type IdempotencySettings,
} from "./command.js";
import { MemoryState, type StateEffect, StateOverlay, type StateReader } from "./state.js";

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
