// Shared helpers for the storage tests: a hand-driven scheduler, entry builders and a reference
// model of a group's log that is written independently of the WAL's own bookkeeping.

import { type Entry, type GroupId, groupId, logIndex, term } from "../../../src/raft/types.js";
import type { Scheduler } from "../../../src/storage/index.js";

/** A scheduler the test drives: callbacks run in (time, arrival) order only when asked. */
export class ManualScheduler implements Scheduler {
  #queue: { at: number; seq: number; run: () => void }[] = [];
  #now = 0;
  #seq = 0;

  after(delayMs: number, run: () => void): void {
    this.#queue.push({ at: this.#now + delayMs, seq: this.#seq++, run });
    this.#queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  /** How many callbacks wait. */
  get size(): number {
    return this.#queue.length;
  }

  /** Runs the next callback, then lets promise continuations settle; false when nothing waits. */
  async step(): Promise<boolean> {
    // Work started by the caller may still be on its way to its first disk operation.
    if (this.#queue.length === 0) await settle();
    const next = this.#queue.shift();
    if (next === undefined) return false;
    this.#now = Math.max(this.#now, next.at);
    next.run();
    await settle();
    return true;
  }

  /** Steps until nothing waits (bounded, so a livelock fails the test instead of hanging it). */
  async runUntilIdle(stepsMax = 1_000_000): Promise<void> {
    for (let i = 0; i < stepsMax; i++) if (!(await this.step())) return;
    throw new Error("scheduler did not go idle");
  }

  /** Forgets every waiting callback (the process they belonged to crashed). */
  clear(): void {
    this.#queue = [];
  }
}

/** Lets every queued promise continuation run. */
export async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Builds consecutive entries from `first` with the given term and short payloads naming them. */
export function entries(first: number, count: number, t = 1, size = 8): Entry[] {
  return Array.from({ length: count }, (_, i) => {
    const index = first + i;
    const data = new Uint8Array(size);
    for (let b = 0; b < size; b++) data[b] = (index * 31 + t + b) & 0xff;
    return {
      term: term(t),
      index: logIndex(index),
      kind: index % 5 === 0 ? "conf-change" : "normal",
      data,
    } satisfies Entry;
  });
}

/** Group ids used by the tests. */
export const g1: GroupId = groupId(1);
export const g2: GroupId = groupId(2);
export const g3: GroupId = groupId(3);

/** A reference model of one group's log: index -> entry, plus the compaction point. */
export class ModelLog {
  readonly entries = new Map<number, Entry>();
  lastIndex = 0;
  compactIndex = 0;

  clone(): ModelLog {
    const copy = new ModelLog();
    for (const [i, e] of this.entries) copy.entries.set(i, e);
    copy.lastIndex = this.lastIndex;
    copy.compactIndex = this.compactIndex;
    return copy;
  }

  append(batch: readonly Entry[]): void {
    const first = batch[0]?.index ?? 0;
    this.truncate(first);
    for (const e of batch) this.entries.set(e.index, e);
    this.lastIndex = batch[batch.length - 1]?.index ?? this.lastIndex;
  }

  truncate(from: number): void {
    for (const i of [...this.entries.keys()]) if (i >= from) this.entries.delete(i);
    this.lastIndex = from - 1;
  }

  compact(through: number): void {
    for (const i of [...this.entries.keys()]) if (i <= through) this.entries.delete(i);
    this.compactIndex = Math.max(this.compactIndex, through);
    this.lastIndex = Math.max(this.lastIndex, through);
  }

  /** The live entries, in index order. */
  list(): Entry[] {
    return [...this.entries.values()].sort((a, b) => a.index - b.index);
  }
}

/** Comparable form of entries (typed arrays compare by content this way). */
export function plain(
  list: readonly Entry[],
): { term: number; index: number; kind: string; data: number[] }[] {
  return list.map((e) => ({ term: e.term, index: e.index, kind: e.kind, data: [...e.data] }));
}
