// Key-value operations for every protocol: validates input against the limits, proposes writes
// through the replicated log, reads linearizably (or stale on request) and turns state machine
// outcomes into typed results or CairnErrors with stable codes.
import type { CommandResult } from "./command.js";
import { CairnError } from "./errors.js";
import {
  getKv,
  type KvCommand,
  type KvRangePage,
  type KvRangeQuery,
  type KvRecord,
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
  readonly rangeLimitMax: number;
  readonly ttlMsMax: number;
}

/** Defaults: 1 KiB keys (the state store keys keys by them), 1 MiB values, 1,000 keys per range page, TTLs up to a year. */
export const defaultKvLimits: KvLimits = {
  keyBytesMax: 1024,
  valueBytesMax: 1024 * 1024,
  rangeLimitMax: 1000,
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

  /** Creates the service over a replicated log. */
  constructor(log: ReplicationPort, limits: KvLimits = defaultKvLimits) {
    this.#log = log;
    this.#limits = limits;
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

  /** Reads a page of keys by prefix or [start, end); a stale page says how far behind it may be. */
  async range(
    query: KvRangeQuery,
    consistency: Consistency = "linearizable",
  ): Promise<WithStaleness<KvRangePage>> {
    if (!Number.isSafeInteger(query.limit) || query.limit < 1 || query.limit > this.#limits.rangeLimitMax) {
      throw new CairnError(
        "ERR_BAD_REQUEST",
        `limit must be an integer from 1 to ${this.#limits.rangeLimitMax}`,
      );
    }
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
    const command: KvCommand = {
      type: "put",
      key,
      value,
      ...(options.ifRevision !== undefined ? { ifRevision: options.ifRevision } : {}),
      ...(options.ifAbsent === true ? { ifAbsent: true } : {}),
      ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
    };
    const { result, duplicate } = await this.#propose(command, options.idempotencyKey);
    if (!result.ok) throw conflictError(result);
    if (!("created" in result && "revision" in result)) throw unexpected(result);
    return { revision: result.revision, created: result.created, duplicate };
  }

  /** Deletes a key; `deleted` says whether it existed. Throws ERR_CONFLICT on a failed condition. */
  async delete(
    key: Uint8Array,
    options: { readonly ifRevision?: number; readonly idempotencyKey?: string } = {},
  ): Promise<KvWriteAck & { deleted: boolean }> {
    this.#checkKey(key);
    const command: KvCommand =
      options.ifRevision !== undefined
        ? { type: "delete", key, ifRevision: options.ifRevision }
        : { type: "delete", key };
    const { result, duplicate } = await this.#propose(command, options.idempotencyKey);
    if (!result.ok) throw conflictError(result);
    if (!("deleted" in result && "revision" in result)) throw unexpected(result);
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
    if (!result.ok) throw conflictError(result);
    if (!("value" in result)) throw unexpected(result);
    return { revision: result.revision, value: result.value, duplicate };
  }

  #propose(
    command: KvCommand,
    idempotencyKey: string | undefined,
  ): Promise<{ result: CommandResult; duplicate: boolean }> {
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

function conflictError(result: Extract<CommandResult, { ok: false }>): CairnError {
  if (result.code === "ERR_CONFLICT" && "currentRevision" in result) {
    return new CairnError("ERR_CONFLICT", result.message, { currentRevision: result.currentRevision });
  }
  return new CairnError(result.code, result.message);
}

function unexpected(result: CommandResult): CairnError {
  return new CairnError("ERR_INTERNAL", `unexpected state machine result ${JSON.stringify(result)}`);
}
