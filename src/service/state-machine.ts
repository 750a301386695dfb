// The replicated state machine the node runtime applies committed entries to: decodes each
// envelope, runs it against an overlay of committed state, and commits the round's effects with
// the new applied index in one step of the backend (one store transaction), so a restart resumes
// exactly after the last applied entry.

import type { StateMachine } from "../node/index.js";
import type { Entry } from "../raft/index.js";
import { type LogIndex, logIndex } from "../raft/index.js";
import { StorageError } from "../storage/index.js";
import {
  applyEnvelope,
  decodeEntryCommands,
  defaultIdempotencySettings,
  type EntryOutcome,
  type IdempotencySettings,
} from "./command.js";
import { MemoryState, type StateEffect, StateOverlay, type StateReader } from "./state.js";
import { hashState, hashStateInPages, type StateHash } from "./state-hash.js";
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
  /**
   * A reader of the committed state as of now that later commits do not change, for a long read
   * off the apply path (the state hash). Without it the state hash is taken on the apply path.
   */
  pinnedReader?(): Promise<PinnedReader>;
}

/** A view of committed state that later commits do not change; release it once read. */
export interface PinnedReader {
  readonly reader: StateReader;
  release(): void;
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
  /** Whether a background state hash is running. */
  #hashing = false;

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
    let overlay = new StateOverlay(this.#backend.reader);
    const applied = this.#backend.appliedIndex();
    let committed = applied;
    const touched = new Set<string>();
    const hashes: StateHash[] = [];
    const check = this.#stateCheck;
    const results: (EntryOutcome | undefined)[] = [];
    for (const entry of entries) {
      results.push(this.#applyOne(entry, applied, overlay, touched));
      // Every replica hashes its state at the same indexes, each as of that very entry.
      if (check === undefined || entry.index <= applied || entry.index % check.entriesBetween !== 0) continue;
      if (this.#backend.pinnedReader === undefined || check.pacer === undefined) {
        hashes.push({ index: entry.index, hash: hashState(overlay) });
        continue;
      }
      // The hash reads the whole state: on a large state that held the event loop for seconds
      // (docs/benchmarks.md, "Scale"). Commit through this entry, pin that state, and hash it
      // page by page while applying goes on.
      await this.#commit(overlay, entry.index, touched);
      committed = entry.index;
      overlay = new StateOverlay(this.#backend.reader);
      await this.#hashPinned(entry.index, check.onHash, check.pacer);
    }
    const last = entries.at(-1);
    if (last !== undefined && last.index > committed) await this.#commit(overlay, last.index, touched);
    if (last !== undefined && last.index > applied) {
      this.#onApplied?.(touched);
      for (const h of hashes) check?.onHash(h);
    }
    return results;
  }

  /** Commits `overlay`'s effects through `index`, noting the streams whose bookkeeping changed. */
  async #commit(overlay: StateOverlay, index: number, touched: Set<string>): Promise<void> {
    const effects = overlay.effects();
    // Any stream whose bookkeeping changed: appends, and the dead letters, retention and sweeps
    // that other commands cause.
    for (const effect of effects) {
      if (effect.space === "stream-meta") touched.add(streamNameDecoder.decode(effect.key));
    }
    await this.#backend.commit(effects, index);
  }

  /**
   * Pins the committed state (through `index`) and hashes it in the background, handing the hash
   * to `onHash` when done. One hash at a time: while one runs, later indexes are not hashed (the
   * check compares the indexes that replicas have in common).
   */
  async #hashPinned(
    index: number,
    onHash: (hash: StateHash) => void,
    pacer: () => () => Promise<void>,
  ): Promise<void> {
    const pinnedReader = this.#backend.pinnedReader;
    if (this.#hashing || pinnedReader === undefined) return;
    this.#hashing = true;
    let pinned: PinnedReader;
    try {
      pinned = await pinnedReader.call(this.#backend);
    } catch (error) {
      this.#hashing = false;
      throw error;
    }
    const run = async () => {
      try {
        // A state of a page or less is hashed before this await: the next index finds it done.
        onHash({ index, hash: await hashStateInPages(pinned.reader, pacer()) });
      } catch (error) {
        // The store closed under the hash (the node is stopping): there is nothing to report.
        // Anything else (a damaged value) crashes the process, as it would have in apply.
        if (!(error instanceof StorageError && error.code === "ERR_CLOSED")) throw error;
      } finally {
        pinned.release();
        this.#hashing = false;
      }
    };
    void run();
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
  /**
   * Makes the pause of one hash, called between its pages: at least a yield to the event loop.
   * With it, and a backend that pins a view, a hash is computed page by page in the background
   * instead of on the apply path.
   */
  readonly pacer?: () => () => Promise<void>;
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
