// The production backend of the state machine: committed state in the state store (lmdb), with a
// layer of applied rounds not yet written to it. Rounds are batched into one store transaction per
// interval (the WAL already holds every applied entry), reads see the pending layer first, and a
// cache keeps the values the state machine reads back.
import { FifoMap } from "toad-cache";
import type { Cancel } from "../node/index.js";
import { type GroupId, logIndex } from "../raft/index.js";
import type { Effect, KeyValue, RangeQuery, StateStore } from "../storage/index.js";
import { assert, bytesEqual, compareBytes } from "../util/index.js";
import {
  keyAfter,
  mapKeyOf,
  type Space,
  type StateEffect,
  StateOverlay,
  type StateReader,
  spaceKinds,
} from "./state.js";
import type { PinnedReader, StateBackend } from "./state-machine.js";

/** How many pairs one page of a range scan reads from the store. */
const scanPageMax = 1000;

/** How a {@link StoreBackend} batches its writes to the store. */
export interface StoreBackendOptions {
  /**
   * How long applied effects may wait in memory before they are written to the store, all rounds
   * of that time in one transaction with the newest value of each key. 0 writes every round at
   * once (one transaction per round). Default 0.
   */
  readonly flushIntervalMs: number;
  /**
   * The most keys waiting to be written: reaching it starts a write at once, and a round that finds
   * a write already running with this many keys waiting waits for it. Default 10,000.
   */
  readonly pendingKeysMax: number;
  /** The most keys whose store values are kept in memory for reads (0: none). Default 10,000. */
  readonly cachedKeysMax: number;
  /** Runs `run` once after `delayMs` (the runtime's timer); needed when `flushIntervalMs` > 0. */
  readonly after?: (delayMs: number, run: () => void) => Cancel;
}

const defaultStoreBackendOptions: StoreBackendOptions = {
  flushIntervalMs: 0,
  pendingKeysMax: 10_000,
  cachedKeysMax: 10_000,
};

/**
 * A backend on the node's state store (lmdb in production). `commit` does not wait for the store:
 * a round's effects are visible at once through a layer of pending writes over the store (as etcd
 * reads through its backend's write buffer), and leave that layer once a store transaction holds
 * them. Rounds are written to the store together, every `flushIntervalMs`, in one transaction that
 * carries the newest value of each key and the last round's applied index (as etcd batches its
 * bbolt commits): a hot key written by a thousand rounds costs one store write, and the store
 * syncs its file a few times a second instead of once per round, which the WAL's fsyncs on the
 * same disk would otherwise queue behind. Durability does not depend on the store: every applied
 * entry is already in the WAL, and a restart replays from the store's own applied index. The
 * values of recently read or written keys stay in memory (a bounded cache) so that hot keys are not
 * read back from the store. A failed store write stops the group at the next commit.
 */
export class StoreBackend implements StateBackend {
  readonly reader: StateReader;
  readonly #store: StateStore;
  readonly #group: GroupId;
  readonly #options: StoreBackendOptions;
  /** The newest pending write of each key, by space then key: what reads see over the store. */
  readonly #pending = new Map<Space, Map<string, StateEffect>>();
  /** The pending writes not yet handed to a store transaction, by space then key. */
  #unwritten = new Map<Space, Map<string, StateEffect>>();
  #unwrittenKeys = 0;
  /** Whether a round was committed since the last store write began (its applied index at least). */
  #dirty = false;
  /**
   * The smallest key of each space (null: the space is empty), as reads see it; absent when not
   * known. It answers the frequent ranges that end below the first key (pruning expired
   * idempotency keys, TTL sweeps) without a store cursor.
   */
  readonly #lowest = new Map<Space, Uint8Array | null>();
  /**
   * Values of keys read lately (null: absent), kept current when such a key is written, oldest
   * first, at most `cachedKeysMax`: reads of hot keys (every write reads the key it replaces and
   * the group's counters) skip the store.
   */
  readonly #cached: FifoMap<Uint8Array | null>;
  /**
   * Whether `#lowest` and `#cached` may be used: false between `settle` and the next `commit`,
   * since a snapshot may replace the store's data meanwhile.
   */
  #knowsStore = true;
  #appliedIndex: number;
  #writing: Promise<void> | undefined;
  #cancelTimer: Cancel | undefined;
  #failure: unknown;

  /** Creates a backend for `group` of `store`. */
  constructor(store: StateStore, group: GroupId, options: Partial<StoreBackendOptions> = {}) {
    this.#store = store;
    this.#group = group;
    this.#options = { ...defaultStoreBackendOptions, ...options };
    // toad-cache's FifoMap (fastify's own cache library: a Map and a linked list): a Map dropping
    // its oldest key through `keys().next()` cost about 7 µs per new key once full (each call
    // walks past the deleted slots at the front of V8's table), 30% of the leader's CPU while a
    // million keys were filled (docs/benchmarks.md, "Scale"). First in, first out, as that Map
    // was: a hit moves nothing, which keeps a hit as cheap as a Map lookup (its LruMap's move to
    // the back cost about 0.5 µs per linearizable get). Max 0 means no cache.
    this.#cached = new FifoMap(Math.max(1, this.#options.cachedKeysMax));
    assert(
      this.#options.flushIntervalMs === 0 || this.#options.after !== undefined,
      "a flush interval needs a timer",
    );
    this.#appliedIndex = store.appliedIndex(group);
    const committed: StateReader = {
      get: (space, key) => store.get(group, spaceKinds[space], key),
      range: (space, start, end, limit) =>
        scan((query) => store.range(group, query), space, start, end, limit),
    };
    const merged = (space: Space, start: Uint8Array, end: Uint8Array | undefined, limit: number) => {
      const pending = this.#pending.get(space);
      if (pending === undefined || pending.size === 0) return committed.range(space, start, end, limit);
      return StateOverlay.over(committed, pending.values()).range(space, start, end, limit);
    };
    this.reader = {
      get: (space, key) => {
        const id = mapKeyOf(key);
        const pending = this.#pending.get(space)?.get(id);
        if (pending !== undefined) return pending.value;
        if (!this.#knowsStore || this.#options.cachedKeysMax === 0) return committed.get(space, key);
        const cacheKey = `${space}\u0000${id}`;
        const cached = this.#cached.get(cacheKey);
        if (cached !== undefined) return cached ?? undefined;
        const value = committed.get(space, key);
        this.#remember(cacheKey, value ?? null);
        return value;
      },
      range: (space, start, end, limit) => {
        if (limit <= 0) return [];
        if (this.#knowsStore && end !== undefined) {
          let lowest = this.#lowest.get(space);
          if (lowest === undefined) {
            lowest = null;
            for (const [key] of merged(space, new Uint8Array(0), undefined, 1)) lowest = key;
            this.#lowest.set(space, lowest);
          }
          if (lowest === null || compareBytes(end, lowest) <= 0) return [];
        }
        return merged(space, start, end, limit);
      },
    };
  }

  appliedIndex(): number {
    // The store's own index moves past ours when a snapshot is installed into it.
    return Math.max(this.#appliedIndex, this.#store.appliedIndex(this.#group));
  }

  async commit(effects: readonly StateEffect[], appliedIndex: number): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (!this.#knowsStore) {
      this.#lowest.clear();
      this.#cached.clear();
      this.#knowsStore = true;
    }
    for (const e of effects) {
      const id = mapKeyOf(e.key);
      layerOf(this.#pending, e.space).set(id, e);
      const unwritten = layerOf(this.#unwritten, e.space);
      if (!unwritten.has(id)) this.#unwrittenKeys++;
      unwritten.set(id, e);
      this.#noteLowest(e);
    }
    this.#appliedIndex = appliedIndex;
    this.#dirty = true;
    if (this.#unwrittenKeys >= this.#options.pendingKeysMax) {
      // Bounded: while the store is behind, rounds wait for it rather than pile up in memory.
      if (this.#writing !== undefined) await this.#writing;
      this.#startWrite();
    } else if (this.#options.flushIntervalMs === 0) {
      this.#startWrite();
    } else if (this.#cancelTimer === undefined) {
      this.#cancelTimer = this.#options.after?.(this.#options.flushIntervalMs, () => {
        this.#cancelTimer = undefined;
        this.#startWrite();
      });
    }
  }

  /** Writes every pending effect to the store and waits for it; rejects if a store write failed. */
  async settle(): Promise<void> {
    // A snapshot may replace the store's data next: forget what was known about it.
    this.#knowsStore = false;
    this.#lowest.clear();
    this.#cached.clear();
    await this.#flush();
  }

  /**
   * Writes every pending effect to the store, then pins a view of it (one read transaction): the
   * committed state as of now, which later commits do not change.
   */
  async pinnedReader(): Promise<PinnedReader> {
    await this.#flush();
    const view = this.#store.readView(this.#group);
    const range = (space: Space, start: Uint8Array, end: Uint8Array | undefined, limit: number) =>
      scan((query) => view.range(query), space, start, end, limit);
    return {
      reader: {
        get: (space, key) => {
          for (const [found, value] of range(space, key, keyAfter(key), 1)) {
            if (bytesEqual(found, key)) return value;
          }
          return undefined;
        },
        range,
      },
      release: () => view.release(),
    };
  }

  /** Waits until every committed effect is in the store; rejects if a store write failed. */
  async #flush(): Promise<void> {
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#writing !== undefined) await this.#writing;
      else if (this.#dirty) this.#startWrite();
      else return;
    }
  }

  #remember(cacheKey: string, value: Uint8Array | null): void {
    if (this.#options.cachedKeysMax > 0) this.#cached.set(cacheKey, value);
  }

  #noteLowest(e: StateEffect): void {
    const lowest = this.#lowest.get(e.space);
    if (lowest === undefined) return;
    if (e.value !== undefined) {
      if (lowest === null || compareBytes(e.key, lowest) < 0) this.#lowest.set(e.space, e.key);
    } else if (lowest !== null && bytesEqual(e.key, lowest)) {
      this.#lowest.delete(e.space);
    }
  }

  /** Hands every unwritten effect to one store transaction, unless one is running (it chains). */
  #startWrite(): void {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (this.#writing !== undefined || this.#failure !== undefined) return;
    const batch = this.#unwritten;
    this.#unwritten = new Map();
    this.#unwrittenKeys = 0;
    this.#dirty = false;
    const effects: StateEffect[] = [];
    for (const layer of batch.values()) for (const e of layer.values()) effects.push(e);
    const write = this.#store
      .applyBatch(
        this.#group,
        logIndex(this.#appliedIndex),
        effects.map(
          (e): Effect =>
            e.value === undefined
              ? { op: "delete", kind: spaceKinds[e.space], key: e.key }
              : { op: "put", kind: spaceKinds[e.space], key: e.key, value: e.value },
        ),
      )
      .then(
        () => {
          // Leave the pending layer, unless a later round wrote the key again. A cached key takes
          // its new value; others stay out of the cache until read (most keys written once, such
          // as stream messages, are never read back by the state machine).
          const cached = this.#knowsStore && this.#cached.size > 0;
          for (const e of effects) {
            const layer = this.#pending.get(e.space);
            const id = mapKeyOf(e.key);
            if (layer?.get(id) !== e) continue;
            layer.delete(id);
            if (!cached) continue;
            const cacheKey = `${e.space}\u0000${id}`;
            if (this.#cached.get(cacheKey) !== undefined) this.#remember(cacheKey, e.value ?? null);
          }
        },
        (error: unknown) => {
          this.#failure = error;
        },
      )
      .finally(() => {
        this.#writing = undefined;
        // Rounds that came while this write ran go in the next one, after the same interval.
        if (this.#dirty && this.#cancelTimer === undefined) {
          if (this.#options.flushIntervalMs === 0) this.#startWrite();
          else
            this.#cancelTimer = this.#options.after?.(this.#options.flushIntervalMs, () => {
              this.#cancelTimer = undefined;
              this.#startWrite();
            });
        }
      });
    this.#writing = write;
  }
}

function layerOf(layers: Map<Space, Map<string, StateEffect>>, space: Space): Map<string, StateEffect> {
  let layer = layers.get(space);
  if (layer === undefined) {
    layer = new Map();
    layers.set(space, layer);
  }
  return layer;
}

/** Pages through a store range (`read`: the store's or a view's): the store caps each read, scans may want more. */
function* scan(
  read: (query: RangeQuery) => KeyValue[],
  space: Space,
  start: Uint8Array,
  end: Uint8Array | undefined,
  limit: number,
): Iterable<readonly [Uint8Array, Uint8Array]> {
  let from = start;
  let left = limit;
  while (left > 0) {
    const asked = Math.min(left, scanPageMax);
    const page = read({
      kind: spaceKinds[space],
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
