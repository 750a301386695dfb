// The view of replicated state that the state machines (key-value, streams) read and write while
// applying committed entries. It is synchronous and byte-level: the node runtime backs it with the
// state store, batching a whole apply round into one transaction.
import { compareBytes } from "../util/bytes.js";

/** A keyspace of the state machine; each maps to its own namespace in the state store. */
export type Space = "meta" | "kv" | "kv-ttl" | "dedupe" | "dedupe-ttl";

/** Reads replicated state. `range` yields keys in [start, end) in byte order, at most `limit`. */
export interface StateReader {
  get(space: Space, key: Uint8Array): Uint8Array | undefined;
  range(
    space: Space,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
  ): Iterable<readonly [Uint8Array, Uint8Array]>;
}

/** Reads and writes replicated state within one apply round. */
export interface StateWriter extends StateReader {
  put(space: Space, key: Uint8Array, value: Uint8Array): void;
  delete(space: Space, key: Uint8Array): void;
}

/** The smallest byte string greater than every string starting with `prefix`, or undefined if none. */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  const end = Uint8Array.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] ?? 0) < 0xff) {
      end[i] = (end[i] ?? 0) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return undefined;
}

/** The first key strictly after `key` in byte order: `key` followed by a zero byte. */
export function keyAfter(key: Uint8Array): Uint8Array {
  const next = new Uint8Array(key.length + 1);
  next.set(key);
  return next;
}

interface SortedSpace {
  keys: Uint8Array[];
  values: Map<string, Uint8Array>;
}

function mapKeyOf(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}

/**
 * State held in memory in sorted arrays: the reference implementation of {@link StateWriter} for
 * tests and the simulator. Writes are O(n) (array insertion), fine at test sizes.
 */
export class MemoryState implements StateWriter {
  readonly #spaces = new Map<Space, SortedSpace>();

  #space(space: Space): SortedSpace {
    let s = this.#spaces.get(space);
    if (s === undefined) {
      s = { keys: [], values: new Map() };
      this.#spaces.set(space, s);
    }
    return s;
  }

  /** Index of the first key >= `key`. */
  static #lowerBound(keys: readonly Uint8Array[], key: Uint8Array): number {
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(keys[mid] ?? new Uint8Array(0), key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get(space: Space, key: Uint8Array): Uint8Array | undefined {
    return this.#space(space).values.get(mapKeyOf(key));
  }

  *range(
    space: Space,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
  ): Iterable<readonly [Uint8Array, Uint8Array]> {
    const s = this.#space(space);
    let count = 0;
    for (let i = MemoryState.#lowerBound(s.keys, start); i < s.keys.length && count < limit; i++) {
      const key = s.keys[i];
      if (key === undefined || (end !== undefined && compareBytes(key, end) >= 0)) return;
      const value = s.values.get(mapKeyOf(key));
      if (value !== undefined) {
        count++;
        yield [key, value];
      }
    }
  }

  put(space: Space, key: Uint8Array, value: Uint8Array): void {
    const s = this.#space(space);
    const id = mapKeyOf(key);
    if (!s.values.has(id)) s.keys.splice(MemoryState.#lowerBound(s.keys, key), 0, Uint8Array.from(key));
    s.values.set(id, Uint8Array.from(value));
  }

  delete(space: Space, key: Uint8Array): void {
    const s = this.#space(space);
    const id = mapKeyOf(key);
    if (!s.values.delete(id)) return;
    s.keys.splice(MemoryState.#lowerBound(s.keys, key), 1);
  }

  /** How many keys a space holds. */
  size(space: Space): number {
    return this.#space(space).keys.length;
  }
}
