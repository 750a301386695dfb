// Key-value operations for every protocol: validates input against the limits, proposes writes
// through the replicated log, reads linearizably (or stale on request) and turns state machine
// outcomes into typed results or CairnErrors with stable codes.
import type { ResultOf } from "./command.js";
import { CairnError, refusalError } from "./errors.js";
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
  kvKeyCount,
  kvRevision,
  rangeKv,
} from "./kv/index.js";
import { proposeCommand } from "./propose.js";
import {
  type ReplicationPort,
  readStaleReported,
  type Staleness,
  type WithStaleness,
} from "./replication.js";

/** Size limits of the key-value API. */
export interface KvLimits {
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  /** Keys per range page at most; a larger page asked for reads this many. */
  readonly rangeLimitMax: number;
  /** Keys per range page when the caller does not say. */
  readonly rangePageDefault: number;
  readonly ttlMsMax: number;
  /** Keys one multi-key write names at most. */
  readonly putManyKeysMax: number;
}

/**
 * Defaults: 1 KiB keys (the state store keys keys by them), 1 MiB values, range pages of 100 keys
 * and at most 1,000, TTLs up to a year.
 */
export const defaultKvLimits: KvLimits = {
  keyBytesMax: 1024,
  valueBytesMax: 1024 * 1024,
  rangeLimitMax: 1000,
  rangePageDefault: 100,
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

/** The key-value service. */
export class KvService {
  readonly #log: ReplicationPort;
  readonly #limits: KvLimits;

  /** Creates the service over a replicated log; limits not given take their defaults. */
  constructor(log: ReplicationPort, limits: Partial<KvLimits> = {}) {
    this.#log = log;
    this.#limits = { ...defaultKvLimits, ...limits };
  }

  /** The limits in force. */
  get limits(): KvLimits {
    return this.#limits;
  }

  /** Reads one key. */
  async get(key: Uint8Array, consistency: Consistency = "linearizable"): Promise<KvGetResult> {
    this.#checkKey(key);
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
   * and never more than `rangeLimitMax`. A stale page says how far behind it may be.
   */
  async range(
    options: KvRangeOptions,
    consistency: Consistency = "linearizable",
  ): Promise<WithStaleness<KvRangePage>> {
    const asked = options.limit ?? this.#limits.rangePageDefault;
    if (!Number.isSafeInteger(asked) || asked < 1) {
      throw new CairnError("ERR_BAD_REQUEST", "limit must be a positive integer");
    }
    const query: KvRangeQuery = { ...options, limit: Math.min(asked, this.#limits.rangeLimitMax) };
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

  /** How many keys are stored, expired ones not yet swept included (Redis DBSIZE). */
  async count(consistency: Consistency = "linearizable"): Promise<number> {
    if (consistency === "stale") return this.#log.readStale(kvKeyCount).value;
    return this.#log.readLinearizable(kvKeyCount);
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
