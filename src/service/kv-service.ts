// Key-value operations for every protocol: validates input against the limits, proposes writes
// through the replicated log, reads linearizably (or stale on request) and turns state machine
// outcomes into typed results or CairnErrors with stable codes.
import type { ResultOf } from "./command.js";
import { CairnError, refusalError } from "./errors.js";
import {
  getKv,
  type KvCommand,
  type KvDelete,
  type KvPut,
  type KvRangePage,
  type KvRangeQuery,
  type KvRecord,
  kvRevision,
  rangeKv,
} from "./kv/index.js";
import { proposeCommand } from "./propose.js";
import type { ReplicationPort, Staleness } from "./replication.js";

/** Size limits of the key-value API. */
export interface KvLimits {
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  /** Keys per range page at most; a larger page asked for reads this many. */
  readonly rangeLimitMax: number;
  /** Keys per range page when the caller does not say. */
  readonly rangePageDefault: number;
  readonly ttlMsMax: number;
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
   * and never more than `rangeLimitMax`.
   */
  async range(options: KvRangeOptions, consistency: Consistency = "linearizable"): Promise<KvRangePage> {
    const asked = options.limit ?? this.#limits.rangePageDefault;
    if (!Number.isSafeInteger(asked) || asked < 1) {
      throw new CairnError("ERR_BAD_REQUEST", "limit must be a positive integer");
    }
    const query: KvRangeQuery = { ...options, limit: Math.min(asked, this.#limits.rangeLimitMax) };
    if (consistency === "stale") return this.#log.readStale((state) => rangeKv(state, query)).value;
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
