// The view of replicated state that the state machines (key-value, streams) read and write while
// applying committed entries. It is synchronous and byte-level: the node runtime backs it with the
// state store, batching a whole apply round into one transaction.
import { type KeyKind, keyKind } from "../storage/index.js";
import { compareBytes } from "../util/index.js";

/**
 * The keyspaces of the state machine. Each is stored as one key kind of the state store, by the
 * byte in {@link spaceKinds}: never renumber them (the byte is in every stored key); a new space
 * takes a new byte. "meta" shares kind 0 with the store's own bookkeeping keys, which have names
 * of their own.
 */
export const spaceCodes = {
  meta: 0,
  kv: 1,
  "stream-meta": 2,
  "stream-message": 3,
  "consumer-group": 4,
  "kv-ttl": 5,
  dedupe: 6,
  "dedupe-ttl": 7,
  members: 8,
  "stream-dedupe": 9,
  "stream-dedupe-ttl": 10,
  "stream-garbage": 11,
  "consumer-pending": 12,
  "consumer-due": 13,
  auth: 14,
} as const;

/** A keyspace of the state machine. */
export type Space = keyof typeof spaceCodes;

/** Every space, in the order of their bytes. */
export const spaces = Object.keys(spaceCodes) as Space[];

/** The state store's key kind of each space. */
export const spaceKinds = Object.fromEntries(
  spaces.map((space) => [space, keyKind(spaceCodes[space])]),
) as Record<Space, KeyKind>;

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

/** How a value kept in state as bytes is encoded and decoded. */
export interface ValueCodec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** Reads and writes replicated state within one apply round. */
export interface StateWriter extends StateReader {
  /** Writes `value` at `key`. The state may keep `value` itself: the caller must not change it later. */
  put(space: Space, key: Uint8Array, value: Uint8Array): void;
  /**
   * Writes `value` at `key` as `codec` encodes it. The state may encode it only when its bytes are
   * needed, and hand the value itself to {@link readValue} with the same codec: a value rewritten
   * by every entry of a round (a stream's bookkeeping, by each append) is then encoded once. The
   * caller must not change `value` later.
   */
  putValue<T>(space: Space, key: Uint8Array, value: T, codec: ValueCodec<T>): void;
  delete(space: Space, key: Uint8Array): void;
}

/**
 * Reads the value at `key` through `codec` (undefined when absent). A value this apply round wrote
 * with {@link StateWriter.putValue} and the same codec comes back as it was written, unencoded.
 */
export function readValue<T>(
  state: StateReader,
  space: Space,
  key: Uint8Array,
  codec: ValueCodec<T>,
): T | undefined {
  if (state instanceof StateOverlay) return state.getValue(space, key, codec);
  const bytes = state.get(space, key);
  return bytes === undefined ? undefined : codec.decode(bytes);
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

/** Node's Buffer method that reads bytes as latin1 text; it accepts any Uint8Array as `this`. */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: unknown }).latin1Slice;

/** A string that identifies a byte key in a Map (latin1: one character per byte, so one-to-one). */
export function mapKeyOf(key: Uint8Array): string {
  // Called several times per applied command; latin1Slice skips building a Buffer view per call.
  if (typeof latin1Slice === "function") return latin1Slice.call(key, 0, key.length) as string;
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

  putValue<T>(space: Space, key: Uint8Array, value: T, codec: ValueCodec<T>): void {
    this.put(space, key, codec.encode(value));
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

/** One write of an apply round: a put (value present) or a delete (value undefined). */
export interface StateEffect {
  readonly space: Space;
  readonly key: Uint8Array;
  readonly value: Uint8Array | undefined;
}

/** A write of an apply round in the overlay; a typed one is encoded when its bytes are first needed. */
interface OverlayWrite {
  readonly space: Space;
  readonly key: Uint8Array;
  /** The bytes written; undefined for a delete, and for a typed write until encoded. */
  bytes: Uint8Array | undefined;
  readonly typed: TypedValue | undefined;
}

/** A value written with its codec: `encode` makes its bytes; `codec` says how to read it back. */
interface TypedValue {
  readonly value: unknown;
  readonly codec: unknown;
  readonly encode: () => Uint8Array;
}

/** The bytes of a write, encoding a typed one now (once). */
function bytesOf(write: OverlayWrite): Uint8Array | undefined {
  if (write.bytes === undefined && write.typed !== undefined) write.bytes = write.typed.encode();
  return write.bytes;
}

/**
 * Buffers the writes of one apply round over a reader of committed state, answering reads with
 * the buffered writes on top, so a batch of entries can be applied and then committed together
 * (effects plus the new applied index in one store transaction). A typed write
 * ({@link StateWriter.putValue}) is encoded only when read as bytes or when the round's effects are
 * taken, so of the many writes of one key in a round only the last is encoded.
 */
export class StateOverlay implements StateWriter {
  readonly #base: StateReader;
  readonly #writes = new Map<Space, Map<string, OverlayWrite>>();

  /** Creates an empty overlay over `base`. */
  constructor(base: StateReader) {
    this.#base = base;
  }

  #space(space: Space): Map<string, OverlayWrite> {
    let writes = this.#writes.get(space);
    if (writes === undefined) {
      writes = new Map();
      this.#writes.set(space, writes);
    }
    return writes;
  }

  get(space: Space, key: Uint8Array): Uint8Array | undefined {
    const write = this.#writes.get(space)?.get(mapKeyOf(key));
    return write !== undefined ? bytesOf(write) : this.#base.get(space, key);
  }

  /** The value at `key` through `codec`: a typed write of this round with that codec as written. */
  getValue<T>(space: Space, key: Uint8Array, codec: ValueCodec<T>): T | undefined {
    const write = this.#writes.get(space)?.get(mapKeyOf(key));
    if (write === undefined) return readValue(this.#base, space, key, codec);
    // A decoder's cast: putValue stored a T with this very codec.
    if (write.typed !== undefined && write.typed.codec === codec) return write.typed.value as T;
    const bytes = bytesOf(write);
    return bytes === undefined ? undefined : codec.decode(bytes);
  }

  *range(
    space: Space,
    start: Uint8Array,
    end: Uint8Array | undefined,
    limit: number,
  ): Iterable<readonly [Uint8Array, Uint8Array]> {
    const shadowed = this.#writes.get(space);
    // Nothing written to this space in the round: the base answers alone.
    if (shadowed === undefined || shadowed.size === 0) {
      yield* this.#base.range(space, start, end, limit);
      return;
    }
    const inRange = (key: Uint8Array) =>
      compareBytes(key, start) >= 0 && (end === undefined || compareBytes(key, end) < 0);
    const writes = [...shadowed.values()]
      .filter((w) => inRange(w.key))
      .sort((a, b) => compareBytes(a.key, b.key));
    // Merge the base range (skipping keys the overlay rewrote) with the overlay's own puts.
    const base = this.#base.range(space, start, end, Number.MAX_SAFE_INTEGER)[Symbol.iterator]();
    let next = base.next();
    let w = 0;
    let count = 0;
    while (count < limit) {
      while (!next.done && shadowed?.has(mapKeyOf(next.value[0]))) next = base.next();
      const write = writes[w];
      if (next.done && write === undefined) return;
      if (write !== undefined && (next.done || compareBytes(write.key, next.value[0]) <= 0)) {
        w++;
        const bytes = bytesOf(write);
        if (bytes !== undefined) {
          count++;
          yield [write.key, bytes];
        }
        continue;
      }
      if (!next.done) {
        count++;
        yield next.value;
        next = base.next();
      }
    }
  }

  /** An overlay over `base` holding `effects` (later ones win), without copying them. */
  static over(base: StateReader, effects: Iterable<StateEffect>): StateOverlay {
    const overlay = new StateOverlay(base);
    for (const { space, key, value } of effects) {
      overlay.#space(space).set(mapKeyOf(key), { space, key, bytes: value, typed: undefined });
    }
    return overlay;
  }

  put(space: Space, key: Uint8Array, value: Uint8Array): void {
    // The key is copied (it may be a view into a whole Raft entry); the value is kept as handed
    // over (every state machine builds it fresh): one allocation off V8's heap less per write,
    // which the garbage collector would otherwise have to sweep.
    this.#write(space, key, value, undefined);
  }

  putValue<T>(space: Space, key: Uint8Array, value: T, codec: ValueCodec<T>): void {
    this.#write(space, key, undefined, { value, codec, encode: () => codec.encode(value) });
  }

  delete(space: Space, key: Uint8Array): void {
    this.#write(space, key, undefined, undefined);
  }

  #write(space: Space, key: Uint8Array, bytes: Uint8Array | undefined, typed: OverlayWrite["typed"]): void {
    const copy = key.slice();
    this.#space(space).set(mapKeyOf(copy), { space, key: copy, bytes, typed });
  }

  /** The buffered writes, in no particular order; each key appears once with its last write. */
  effects(): StateEffect[] {
    const effects: StateEffect[] = [];
    for (const writes of this.#writes.values()) {
      for (const write of writes.values())
        effects.push({ space: write.space, key: write.key, value: bytesOf(write) });
    }
    return effects;
  }
}
