// Key-value operations for every protocol: validates input against the limits, proposes writes
// through the replicated log, reads linearizably (or stale on request) and turns state machine
// outcomes into typed results or CairnErrors with stable codes.

import { kvNeeds } from "../auth/index.js";
import type { ResultOf } from "../command.js";
import { CairnError, refusalError } from "../errors.js";
import { proposeCommand } from "../propose.js";
import {
  type ReplicationPort,
  readStaleReported,
  type Staleness,
  type WithStaleness,
  type WriteConcern,
  withWriteConcern,
} from "../replication.js";
import { prefixEnd } from "../state.js";
import {
  getKv,
  type KvCommand,
  type KvDelete,
  type KvExpiry,
  type KvPut,
  type KvRangePage,
  type KvRangeQuery,
  type KvRecord,
  type KvTtlCondition,
  type KvUpdateOp,
  kvExpiringCount,
  kvKeyCount,
  kvRevision,
  nextExpiryMs,
  rangeKv,
  type StepResult,
  type TransactionStep,
} from "./index.js";

/** Size limits of the key-value API. */
export interface KvLimits {
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  /** Keys per range page at most; a larger page asked for reads this many. */
  readonly rangeLimitMax: number;
  /** Keys per range page when the caller does not say. */
  readonly rangePageDefault: number;
  /** Bytes of keys and values per range page at most (a page always holds at least one key). */
  readonly rangeBytesMax: number;
  readonly ttlMsMax: number;
  /** Keys one multi-key write names at most. */
  readonly putManyKeysMax: number;
}

/**
 * Defaults: 1 KiB keys (the state store keys keys by them), 1 MiB values, range pages of 100 keys
 * and at most 1,000 and 4 MiB (as a stream read page), TTLs up to a year.
 */
export const defaultKvLimits: KvLimits = {
  keyBytesMax: 1024,
  valueBytesMax: 1024 * 1024,
  rangeLimitMax: 1000,
  rangePageDefault: 100,
  rangeBytesMax: 4 * 1024 * 1024,
  ttlMsMax: 365 * 24 * 3600 * 1000,
  putManyKeysMax: 1000,
};

/** How a read is served: after a ReadIndex barrier (default) or from local state. */
export type Consistency = "linearizable" | "stale";

/** A key read, with the group revision it was read at. */
export interface KvGetResult {
  readonly record: KvRecord | undefined;
  readonly revision: number;
  /** Present for stale reads: how far behind the answer may be. */
  readonly staleness?: Staleness;
}

/** Which keys a range read covers, and how many per page at most. */
export type KvRangeOptions = (
  | { readonly prefix: Uint8Array; readonly after?: Uint8Array }
  | { readonly start: Uint8Array; readonly end?: Uint8Array; readonly after?: Uint8Array }
) & { readonly limit?: number };

/** Conditions and options of a put. */
export interface KvPutOptions {
  readonly ifRevision?: number;
  readonly ifAbsent?: boolean;
  readonly ttlMs?: number;
  readonly idempotencyKey?: string;
}

/** A successful write. `duplicate` is true when an idempotency key answered from the first try. */
export interface KvWriteAck {
  readonly revision: number;
  readonly duplicate: boolean;
}

/** The keys a transaction step names. */
function stepKeys(step: TransactionStep): readonly Uint8Array[] {
  switch (step.type) {
    case "put-many":
      return step.pairs.map(([key]) => key);
    case "copy":
      return [step.from, step.to];
    case "stream":
    case "flush":
      return [];
    default:
      return [step.key];
  }
}

/** The value bytes a transaction step carries. */
function stepValueBytes(step: TransactionStep): number {
  switch (step.type) {
    case "stream":
      return step.command.type === "append" ? step.command.payload.length : 0;
    case "put":
    case "set":
      return step.value.length;
    case "put-many":
      return step.pairs.reduce((sum, [, value]) => sum + value.length, 0);
    case "update":
      return step.op.kind === "append" || step.op.kind === "set-range" ? step.op.bytes.length : 0;
    default:
      return 0;
  }
}

/** The key-value service. */
export class KvService {
  readonly #log: ReplicationPort;
  readonly #limits: KvLimits;
  /** Whether a sweep is in flight (housekeeping ticks must not stack proposals behind a slow one); one for every view. */
  #gates = { sweeping: false };
  /** This service under each write concern, shared by all of them ("majority": the one built). */
  #views: Map<WriteConcern, KvService>;

  /** Creates the service over a replicated log; limits not given take their defaults. */
  constructor(log: ReplicationPort, limits: Partial<KvLimits> = {}) {
    this.#log = log;
    this.#limits = { ...defaultKvLimits, ...limits };
    this.#views = new Map([["majority", this]]);
  }

  /** This service with its writes acknowledged under `writeConcern` (reads are the same). */
  withWriteConcern(writeConcern: WriteConcern): KvService {
    let view = this.#views.get(writeConcern);
    if (view === undefined) {
      const base = this.#views.get("majority") ?? this;
      view = new KvService(withWriteConcern(base.#log, writeConcern), this.#limits);
      view.#gates = this.#gates;
      view.#views = this.#views;
      this.#views.set(writeConcern, view);
    }
    return view;
  }

  /** The limits in force. */
  get limits(): KvLimits {
    return this.#limits;
  }

  /** Reads one key. */
  async get(key: Uint8Array, consistency: Consistency = "linearizable"): Promise<KvGetResult> {
    this.#checkKey(key);
    this.#log.authorize?.([{ permission: "read", resource: "key", key }]);
    const read = (state: Parameters<typeof getKv>[0]) => ({
      record: getKv(state, key),
      revision: kvRevision(state),
    });
    if (consistency === "stale") {
      const { value, staleness } = this.#log.readStale(read);
      return { ...value, staleness };
    }
    return this.#log.readLinearizable(read);
  }

  /**
   * Reads a page of keys by prefix or [start, end): `rangePageDefault` keys unless `limit` says,
   * and never more than `rangeLimitMax` keys or `rangeBytesMax` bytes (the page's `next` then says
   * where to go on). A stale page says how far behind it may be.
   */
  async range(
    options: KvRangeOptions,
    consistency: Consistency = "linearizable",
  ): Promise<WithStaleness<KvRangePage>> {
    const asked = options.limit ?? this.#limits.rangePageDefault;
    if (!Number.isSafeInteger(asked) || asked < 1) {
      throw new CairnError("ERR_BAD_REQUEST", "limit must be a positive integer");
    }
    const query: KvRangeQuery = {
      ...options,
      limit: Math.min(asked, this.#limits.rangeLimitMax),
      bytesMax: this.#limits.rangeBytesMax,
    };
    this.#log.authorize?.([
      "prefix" in options
        ? { permission: "read", resource: "key-range", start: options.prefix, end: prefixEnd(options.prefix) }
        : { permission: "read", resource: "key-range", start: options.start, end: options.end },
    ]);
    if (consistency === "stale") {
      const { value, staleness } = readStaleReported(this.#log, (state) => rangeKv(state, query));
      return { ...value, staleness };
    }
    return this.#log.readLinearizable((state) => rangeKv(state, query));
  }

  /** Writes a value, honouring conditions; throws ERR_CONFLICT when a condition fails. */
  async put(
    key: Uint8Array,
    value: Uint8Array,
    options: KvPutOptions = {},
  ): Promise<KvWriteAck & { created: boolean }> {
    this.#checkKey(key);
    if (value.length > this.#limits.valueBytesMax) {
      throw new CairnError(
        "ERR_TOO_LARGE",
        `value is ${value.length} bytes; the limit is ${this.#limits.valueBytesMax}`,
        {
          limit: this.#limits.valueBytesMax,
        },
      );
    }
    if (options.ttlMs !== undefined && !(Number.isSafeInteger(options.ttlMs) && options.ttlMs >= 1)) {
      throw new CairnError("ERR_BAD_REQUEST", "ttlMs must be a positive integer");
    }
    if (options.ttlMs !== undefined && options.ttlMs > this.#limits.ttlMsMax) {
      throw new CairnError("ERR_BAD_REQUEST", `ttlMs may be at most ${this.#limits.ttlMsMax}`);
    }
    if (
      options.ifRevision !== undefined &&
      !(Number.isSafeInteger(options.ifRevision) && options.ifRevision >= 0)
    ) {
      throw new CairnError("ERR_BAD_REQUEST", "ifRevision must be a non-negative integer");
    }
    const command: KvPut = {
      type: "put",
      key,
      value,
      ...(options.ifRevision !== undefined ? { ifRevision: options.ifRevision } : {}),
      ...(options.ifAbsent === true ? { ifAbsent: true } : {}),
      ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
    };
    const { result, duplicate } = await this.#propose(command, options.idempotencyKey);
    if (!result.ok) throw refusalError(result);
    return { revision: result.revision, created: result.created, duplicate };
  }

  /** Deletes a key; `deleted` says whether it existed. Throws ERR_CONFLICT on a failed condition. */
  async delete(
    key: Uint8Array,
    options: { readonly ifRevision?: number; readonly idempotencyKey?: string } = {},
  ): Promise<KvWriteAck & { deleted: boolean }> {
    this.#checkKey(key);
    const command: KvDelete =
      options.ifRevision !== undefined
        ? { type: "delete", key, ifRevision: options.ifRevision }
        : { type: "delete", key };
    const { result, duplicate } = await this.#propose(command, options.idempotencyKey);
    if (!result.ok) throw refusalError(result);
    return { revision: result.revision, deleted: result.deleted, duplicate };
  }

  /** Adds `by` to a signed 64-bit integer value; throws ERR_NOT_INTEGER if it is not one. */
  async increment(
    key: Uint8Array,
    by: bigint,
    options: { readonly idempotencyKey?: string } = {},
  ): Promise<KvWriteAck & { value: string }> {
    this.#checkKey(key);
    if (by < -(2n ** 63n) || by >= 2n ** 63n)
      throw new CairnError("ERR_NOT_INTEGER", "increment out of range");
    const { result, duplicate } = await this.#propose({ type: "increment", key, by }, options.idempotencyKey);
    if (!result.ok) throw refusalError(result);
    return { revision: result.revision, value: result.value, duplicate };
  }

  /** Proposes a key-value command; resolves with that command's result. */
  /**
   * Sets when an existing key expires, keeping its value (Redis EXPIRE, PEXPIRE, EXPIREAT,
   * PEXPIREAT): `afterMs` from the leader's time of the write, or at leader time `atMs`; a time
   * already past (a negative `afterMs` included) deletes the key. `condition` is Redis 7's NX, XX,
   * GT or LT. `changed` is false when the key does not exist or the condition did not hold.
   */
  async expire(
    key: Uint8Array,
    when: { readonly afterMs: number } | { readonly atMs: number },
    options: { readonly condition?: KvTtlCondition; readonly idempotencyKey?: string } = {},
  ): Promise<KvWriteAck & { changed: boolean }> {
    this.#checkKey(key);
    const ms = "afterMs" in when ? when.afterMs : when.atMs;
    if (!Number.isSafeInteger(ms)) throw new CairnError("ERR_BAD_REQUEST", "an expiry must be an integer");
    if ("afterMs" in when && ms > this.#limits.ttlMsMax) {
      throw new CairnError("ERR_BAD_REQUEST", `a TTL may be at most ${this.#limits.ttlMsMax} ms`);
    }
    // The log carries no negative times: a relative time already past is the earliest absolute one.
    const expiry: KvExpiry =
      "afterMs" in when && ms >= 0 ? { kind: "after", ms } : { kind: "at", ms: Math.max(0, ms) };
    return this.#setTtl(key, expiry, options.condition, options.idempotencyKey);
  }

  /** Clears an existing key's TTL (Redis PERSIST); `changed` is false when it had none or is absent. */
  async persist(
    key: Uint8Array,
    options: { readonly idempotencyKey?: string } = {},
  ): Promise<KvWriteAck & { changed: boolean }> {
    this.#checkKey(key);
    return this.#setTtl(key, { kind: "never" }, undefined, options.idempotencyKey);
  }

  async #setTtl(
    key: Uint8Array,
    expiry: KvExpiry,
    condition: KvTtlCondition | undefined,
    idempotencyKey: string | undefined,
  ): Promise<KvWriteAck & { changed: boolean }> {
    const { result, duplicate } = await this.#propose(
      { type: "set-ttl", key, expiry, ...(condition !== undefined ? { condition } : {}) },
      idempotencyKey,
    );
    return { revision: result.revision, changed: result.changed, duplicate };
  }

  /**
   * Writes several keys in one entry at one revision, clearing their TTLs (Redis MSET); with
   * `ifNoneExist`, writes none if any exists (MSETNX), and `written` says which happened.
   */
  async putMany(
    pairs: readonly (readonly [key: Uint8Array, value: Uint8Array])[],
    options: { readonly ifNoneExist?: boolean; readonly idempotencyKey?: string } = {},
  ): Promise<KvWriteAck & { written: boolean }> {
    if (pairs.length === 0 || pairs.length > this.#limits.putManyKeysMax) {
      throw new CairnError("ERR_BAD_REQUEST", `give 1 to ${this.#limits.putManyKeysMax} keys`);
    }
    let bytes = 0;
    for (const [key, value] of pairs) {
      this.#checkKey(key);
      bytes += key.length + value.length;
    }
    // One entry carries them all: bound it as one value, so it fits what a single put may send.
    if (bytes > this.#limits.valueBytesMax) {
      throw new CairnError(
        "ERR_TOO_LARGE",
        `keys and values are ${bytes} bytes together; the limit is ${this.#limits.valueBytesMax}`,
        { limit: this.#limits.valueBytesMax },
      );
    }
    const { result, duplicate } = await this.#propose(
      { type: "put-many", pairs, ...(options.ifNoneExist === true ? { ifNoneExist: true } : {}) },
      options.idempotencyKey,
    );
    return { revision: result.revision, written: result.written, duplicate };
  }

  /**
   * Throws unless the current principal may run `steps` (ERR_UNAUTHENTICATED, ERR_FORBIDDEN):
   * for a caller that gathers several principals' steps into one transaction, which it then
   * proposes as the node itself.
   */
  authorizeSteps(steps: readonly TransactionStep[]): void {
    this.#log.authorize?.(kvNeeds({ type: "transaction", watch: [], commands: steps }));
  }

  /** How many keys are stored, expired ones not yet swept included (Redis DBSIZE). */
  async count(consistency: Consistency = "linearizable"): Promise<number> {
    if (consistency === "stale") return this.#log.readStale(kvKeyCount).value;
    return this.#log.readLinearizable(kvKeyCount);
  }

  /** How many keys are stored and how many of them carry a TTL (Redis INFO's keyspace line). */
  async stats(consistency: Consistency = "linearizable"): Promise<{ keys: number; expires: number }> {
    const read = (state: Parameters<typeof kvKeyCount>[0]) => ({
      keys: kvKeyCount(state),
      expires: kvExpiringCount(state),
    });
    if (consistency === "stale") return this.#log.readStale(read).value;
    return this.#log.readLinearizable(read);
  }

  /**
   * Redis's SET in one entry: an optional NX / XX condition, the old value when `returnOld`, and
   * the expiry (`keep` keeps the key's TTL; `never` clears it). `written` is false when the
   * condition did not hold; `old` is null when the key was absent or not asked for.
   */
  async set(
    key: Uint8Array,
    value: Uint8Array,
    options: {
      readonly condition?: "nx" | "xx";
      readonly returnOld?: boolean;
      readonly expiry?: KvExpiry | { readonly kind: "keep" };
      readonly idempotencyKey?: string;
    } = {},
  ): Promise<KvWriteAck & { written: boolean; old: Uint8Array | null }> {
    this.#checkKey(key);
    this.#checkValue(value.length);
    const expiry = options.expiry ?? { kind: "never" };
    if (expiry.kind === "after" || expiry.kind === "at") this.#checkExpiry(expiry);
    const { result, duplicate } = await this.#propose(
      {
        type: "set",
        key,
        value,
        ...(options.condition !== undefined ? { condition: options.condition } : {}),
        ...(options.returnOld === true ? { returnOld: true } : {}),
        expiry,
      },
      options.idempotencyKey,
    );
    return { revision: result.revision, written: result.written, old: result.old, duplicate };
  }

  /**
   * An atomic read-modify-write of one key (APPEND, SETRANGE, INCRBYFLOAT, GETDEL, GETEX), applied
   * in the state machine. Throws ERR_NOT_INTEGER (not a float), ERR_TOO_LARGE (over the value limit).
   */
  async update(
    key: Uint8Array,
    op:
      | { readonly kind: "append"; readonly bytes: Uint8Array }
      | { readonly kind: "set-range"; readonly offset: number; readonly bytes: Uint8Array }
      | { readonly kind: "increment-float"; readonly by: string }
      | { readonly kind: "get-delete" }
      | { readonly kind: "get-expire"; readonly expiry: KvExpiry | { readonly kind: "keep" } },
    options: { readonly idempotencyKey?: string } = {},
  ): Promise<KvWriteAck & { value: Uint8Array | null; length: number }> {
    this.#checkKey(key);
    const valueBytesMax = this.#limits.valueBytesMax;
    let full: KvUpdateOp;
    switch (op.kind) {
      case "append":
        this.#checkValue(op.bytes.length);
        full = { ...op, valueBytesMax };
        break;
      case "set-range":
        if (!Number.isSafeInteger(op.offset) || op.offset < 0) {
          throw new CairnError("ERR_BAD_REQUEST", "offset is out of range");
        }
        this.#checkValue(op.offset + op.bytes.length);
        full = { ...op, valueBytesMax };
        break;
      case "get-expire":
        if (op.expiry.kind === "after" || op.expiry.kind === "at") this.#checkExpiry(op.expiry);
        full = op;
        break;
      case "increment-float":
        if (op.by.length > 64) throw new CairnError("ERR_NOT_INTEGER", "value is not a valid float");
        full = op;
        break;
      case "get-delete":
        full = op;
        break;
    }
    const { result, duplicate } = await this.#propose(
      { type: "update", key, op: full },
      options.idempotencyKey,
    );
    if (!result.ok) throw refusalError(result);
    return { revision: result.revision, value: result.value, length: result.length, duplicate };
  }

  /**
   * Copies `from` to `to` with its TTL (Redis COPY), or moves it (`move`: RENAME, RENAMENX).
   * Without `replace`, an existing target is kept and `done` is false. A move of a missing key
   * throws ERR_NOT_FOUND.
   */
  async copy(
    from: Uint8Array,
    to: Uint8Array,
    options: { readonly move: boolean; readonly replace: boolean; readonly idempotencyKey?: string },
  ): Promise<KvWriteAck & { done: boolean }> {
    this.#checkKey(from);
    this.#checkKey(to);
    const { result, duplicate } = await this.#propose(
      { type: "copy", from, to, move: options.move, replace: options.replace },
      options.idempotencyKey,
    );
    if (!result.ok) throw refusalError(result);
    return { revision: result.revision, done: result.done, duplicate };
  }

  /** Removes every key in one entry (Redis FLUSHALL); answers how many were removed. */
  async flush(options: { readonly idempotencyKey?: string } = {}): Promise<{ removed: number }> {
    const { result } = await this.#propose({ type: "flush" }, options.idempotencyKey);
    return { removed: result.removed };
  }

  /**
   * Applies `commands` as one entry (Redis MULTI/EXEC), unless a watched key's modify revision
   * (0: absent) has changed by then: `aborted`, and nothing ran. Each command's result is given in
   * order; a refused command does not undo the others. The commands see keys and streams as one
   * keyspace, as Redis does (KvTransaction's `sharedKeyspace`).
   */
  async transaction(
    watch: readonly (readonly [key: Uint8Array, revision: number])[],
    commands: readonly TransactionStep[],
  ): Promise<{ aborted: boolean; results: readonly StepResult[] }> {
    if (commands.length > this.#limits.putManyKeysMax) {
      throw new CairnError(
        "ERR_BAD_REQUEST",
        `a transaction holds at most ${this.#limits.putManyKeysMax} commands`,
      );
    }
    let bytes = 0;
    for (const [key] of watch) this.#checkKey(key);
    for (const step of commands) {
      for (const key of stepKeys(step)) {
        this.#checkKey(key);
        bytes += key.length;
      }
      bytes += stepValueBytes(step);
    }
    this.#checkValue(bytes);
    const { result } = await this.#propose(
      { type: "transaction", watch, commands, sharedKeyspace: true },
      undefined,
    );
    return { aborted: result.aborted, results: result.results };
  }

  #checkValue(bytes: number): void {
    if (bytes > this.#limits.valueBytesMax) {
      throw new CairnError(
        "ERR_TOO_LARGE",
        `value is ${bytes} bytes; the limit is ${this.#limits.valueBytesMax}`,
        {
          limit: this.#limits.valueBytesMax,
        },
      );
    }
  }

  #checkExpiry(expiry: { readonly kind: "after" | "at"; readonly ms: number }): void {
    if (!Number.isSafeInteger(expiry.ms) || expiry.ms < 0) {
      throw new CairnError("ERR_BAD_REQUEST", "an expiry must be a non-negative integer");
    }
    if (expiry.kind === "after" && expiry.ms > this.#limits.ttlMsMax) {
      throw new CairnError("ERR_BAD_REQUEST", `a TTL may be at most ${this.#limits.ttlMsMax} ms`);
    }
  }

  /**
   * Proposes one sweep of expired keys (at most `max`) when the earliest expiry in the local state
   * is due by this node's clock, and says whether it did. The leader calls it from its
   * housekeeping: the entry carries the leader's timestamp, so every replica expires the same keys
   * whatever its own clock says. Like `StreamService.sweepIfDue`, it never overlaps itself.
   */
  async sweepExpiredIfDue(max = 1000): Promise<boolean> {
    if (this.#gates.sweeping) return false;
    const due = this.#log.readStale(nextExpiryMs).value;
    if (due === undefined || due > this.#log.nowMs()) return false;
    this.#gates.sweeping = true;
    try {
      await this.#propose({ type: "expire", max }, undefined);
      return true;
    } finally {
      this.#gates.sweeping = false;
    }
  }

  #propose<K extends KvCommand>(
    command: K,
    idempotencyKey: string | undefined,
  ): Promise<{ result: ResultOf<{ readonly service: "kv"; readonly command: K }>; duplicate: boolean }> {
    return proposeCommand(this.#log, { service: "kv", command }, idempotencyKey);
  }

  #checkKey(key: Uint8Array): void {
    if (key.length === 0) throw new CairnError("ERR_BAD_REQUEST", "key must not be empty");
    if (key.length > this.#limits.keyBytesMax) {
      throw new CairnError(
        "ERR_TOO_LARGE",
        `key is ${key.length} bytes; the limit is ${this.#limits.keyBytesMax}`,
        {
          limit: this.#limits.keyBytesMax,
        },
      );
    }
  }
}
