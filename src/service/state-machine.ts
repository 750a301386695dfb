// The replicated state machine the node runtime applies committed entries to: decodes each
// envelope, runs it against an overlay of committed state, and commits the round's effects with
// the new applied index in one step of the backend (one store transaction), so a restart resumes
// exactly after the last applied entry.

import type { StateMachine } from "../node/index.js";
import type { Entry } from "../raft/index.js";
import { type LogIndex, logIndex } from "../raft/index.js";
import {
  applyEnvelope,
  decodeEntryCommands,
  defaultIdempotencySettings,
  type EntryOutcome,
  type IdempotencySettings,
} from "./command.js";
import { MemoryState, type StateEffect, StateOverlay, type StateReader } from "./state.js";
import { hashState, type StateHash } from "./state-hash.js";
import { type StreamCommand, streamOfCommand } from "./streams/index.js";

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

/**
 * Applies Cairn's command envelopes, one or several per entry, each with its own outcome; no-ops and
 * membership entries yield undefined.
 */
export class ServiceStateMachine implements StateMachine<EntryOutcome> {
  readonly #backend: StateBackend;
  readonly #settings: IdempotencySettings;
  readonly #onApplied: ((touchedStreams: ReadonlySet<string>) => void) | undefined;
  readonly #stateCheck: StateCheckOptions | undefined;

  /**
   * Creates the state machine over a backend. `onApplied` runs after each applied batch is
   * committed, with the streams the batch touched (it wakes long-polls, fetches and event streams
   * waiting on them). With `stateCheck`, the state is hashed after every entry whose index is a
   * multiple of `entriesBetween`, and the hash handed to `onHash` once its batch is committed.
   */
  constructor(
    backend: StateBackend,
    settings: IdempotencySettings = defaultIdempotencySettings,
    onApplied?: (touchedStreams: ReadonlySet<string>) => void,
    stateCheck?: StateCheckOptions,
  ) {
    this.#backend = backend;
    this.#settings = settings;
    this.#onApplied = onApplied;
    this.#stateCheck = stateCheck;
  }

  appliedIndex(): LogIndex {
    return logIndex(this.#backend.appliedIndex());
  }

  async settle(): Promise<void> {
    await this.#backend.settle?.();
  }

  async apply(entries: readonly Entry[]): Promise<readonly (EntryOutcome | undefined)[]> {
    const overlay = new StateOverlay(this.#backend.reader);
    const applied = this.#backend.appliedIndex();
    const touched = new Set<string>();
    const hashes: StateHash[] = [];
    const check = this.#stateCheck;
    const results = entries.map((entry) => {
      const result = this.#applyOne(entry, applied, overlay, touched);
      // Every replica hashes its state at the same indexes, each as of that very entry.
      if (check !== undefined && entry.index > applied && entry.index % check.entriesBetween === 0)
        hashes.push({ index: entry.index, hash: hashState(overlay) });
      return result;
    });
    const last = entries.at(-1);
    if (last !== undefined && last.index > applied) {
      const effects = overlay.effects();
      // Any stream whose bookkeeping changed: appends, and the dead letters, retention and sweeps
      // that other commands cause.
      for (const effect of effects) {
        if (effect.space === "stream-meta") touched.add(streamNameDecoder.decode(effect.key));
      }
      await this.#backend.commit(effects, last.index);
      this.#onApplied?.(touched);
      for (const h of hashes) check?.onHash(h);
    }
    return results;
  }

  #applyOne(
    entry: Entry,
    applied: number,
    overlay: StateOverlay,
    touched: Set<string>,
  ): EntryOutcome | undefined {
    // Applying is idempotent: entries at or below the applied index were committed before.
    if (entry.index <= applied || entry.kind !== "normal" || entry.data.length === 0) return undefined;
    // The commands of one entry apply one after another, exactly as entries of one command each.
    return decodeEntryCommands(entry.data).map((envelope) => {
      const { command } = envelope;
      if (command.service === "streams") touchedBy(command.command, touched);
      // A transaction's stream commands wake that stream's waiters as the same commands alone do.
      if (command.service === "kv" && command.command.type === "transaction") {
        for (const step of command.command.commands)
          if (step.type === "stream") touchedBy(step.command, touched);
      }
      return applyEnvelope(overlay, envelope, this.#settings);
    });
  }
}

/** The cross-replica state check's settings (see state-hash.ts). */
export interface StateCheckOptions {
  /** Hash the state at every index that is a multiple of this. */
  readonly entriesBetween: number;
  /** Receives each hash once the entries up to it are committed. */
  readonly onHash: (hash: StateHash) => void;
}

const streamNameDecoder = new TextDecoder();

/**
 * Adds the stream a command acts on to `touched`: group commands change what a fetch waiting on
 * the stream may hand out (a nack, a claim, a raised limit) without changing the stream itself.
 */
function touchedBy(command: StreamCommand, touched: Set<string>): void {
  const name = streamOfCommand(command);
  if (name !== undefined) touched.add(name);
}
