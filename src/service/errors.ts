// The stable error codes clients see, in one place, with the details each code carries. Every
// protocol adapter maps these through a table typed Record<ErrorCode, ...>, so adding a code here
// forces every protocol to decide how to present it. docs/errors.md explains each code and what a
// client should do.
import type { Staleness } from "./replication.js";

/** Every error code a client can receive. */
export const errorCodes = [
  "ERR_BAD_REQUEST",
  "ERR_UNAUTHENTICATED",
  "ERR_FORBIDDEN",
  "ERR_NOT_FOUND",
  "ERR_CONFLICT",
  "ERR_NOT_INTEGER",
  "ERR_WRONG_TYPE",
  "ERR_IDEMPOTENCY_KEY_REUSED",
  "ERR_TOO_LARGE",
  "ERR_STREAM_FULL",
  "ERR_LIMIT",
  "ERR_BUSY",
  "ERR_RATE_LIMITED",
  "ERR_NOT_LEADER",
  "ERR_UNAVAILABLE",
  "ERR_TIMEOUT",
  "ERR_WRITE_CONCERN",
  "ERR_NO_SPACE",
  "ERR_STORAGE_FAILED",
  "ERR_STATE_CORRUPT",
  "ERR_SHUTTING_DOWN",
  "ERR_INTERNAL",
] as const;

/** A stable error code. */
export type ErrorCode = (typeof errorCodes)[number];

/** Details of a code that carries none. */
export type NoDetails = Readonly<Record<string, never>>;

/**
 * Where the leader can be reached, in each client protocol that it serves (absent: unknown, or the
 * protocol is not served), so an adapter names the leader in its client's own protocol.
 */
export type LeaderAddresses = {
  readonly http?: string;
  readonly redis?: string;
  readonly text?: string;
  readonly grpc?: string;
};

/**
 * The details each code carries next to its message, for clients to act on. Every field is
 * optional: a code may be raised where a detail is not known (the table {@link noDetails} holds
 * the compiler to that).
 */
export type ErrorDetails = {
  readonly ERR_BAD_REQUEST: NoDetails;
  readonly ERR_UNAUTHENTICATED: {
    /** A verified client certificate's name that is bound to no role (bind it, or present a token). */
    readonly certificate?: string;
  };
  readonly ERR_FORBIDDEN: {
    /** The permission the caller's role lacks, as a grant is written (`write:key:users/1`). */
    readonly missing?: string;
    /** Who was refused: the token's id, or `cert:<name>` for a client certificate. */
    readonly principal?: string;
    /** The key or stream the missing permission is about, if one. */
    readonly name?: string;
  };
  readonly ERR_NOT_FOUND: {
    /** A key read: the group revision it was read at. */
    readonly revision?: number;
    /** A stale key read: how far behind the answer may be. */
    readonly staleness?: Staleness;
    /** A message read: the sequences the stream holds. */
    readonly firstSeq?: number;
    readonly lastSeq?: number;
  };
  readonly ERR_CONFLICT: {
    /** A key write's condition failed: the key's modify revision now, null when it does not exist. */
    readonly currentRevision?: number | null;
    /** An append's expected last sequence failed: the stream's last sequence now. */
    readonly currentLastSeq?: number;
  };
  readonly ERR_NOT_INTEGER: NoDetails;
  readonly ERR_WRONG_TYPE: NoDetails;
  readonly ERR_IDEMPOTENCY_KEY_REUSED: NoDetails;
  readonly ERR_TOO_LARGE: {
    /** The limit that was exceeded, in bytes. */
    readonly limit?: number;
  };
  readonly ERR_STREAM_FULL: NoDetails;
  readonly ERR_LIMIT: NoDetails;
  readonly ERR_BUSY: NoDetails;
  readonly ERR_RATE_LIMITED: {
    /** How long until the caller's bucket holds a request again, in milliseconds. */
    readonly retryAfterMs?: number;
  };
  readonly ERR_NOT_LEADER: {
    /** The node this node believes leads, if any. */
    readonly leaderId?: number;
    /** Where that leader serves clients. */
    readonly leader?: LeaderAddresses;
  };
  readonly ERR_UNAVAILABLE: {
    /** The leader this node last knew, when it cannot reach a leader now. */
    readonly leaderId?: number;
    /** Where that leader serves clients. */
    readonly leader?: LeaderAddresses;
  };
  readonly ERR_TIMEOUT: NoDetails;
  readonly ERR_WRITE_CONCERN: {
    /** How many voting members had the write on disk when the wait ended. */
    readonly votersWithEntry?: number;
    /** How many voting members the cluster has. */
    readonly voters?: number;
  };
  readonly ERR_NO_SPACE: NoDetails;
  readonly ERR_STORAGE_FAILED: NoDetails;
  readonly ERR_STATE_CORRUPT: NoDetails;
  readonly ERR_SHUTTING_DOWN: NoDetails;
  readonly ERR_INTERNAL: NoDetails;
};

/**
 * The details of an error raised without any: one entry per code, so a code missing from
 * {@link ErrorDetails}, or a details type with a required field, does not compile.
 */
const noDetails: { readonly [C in ErrorCode]: ErrorDetails[C] } = {
  ERR_BAD_REQUEST: {},
  ERR_UNAUTHENTICATED: {},
  ERR_FORBIDDEN: {},
  ERR_NOT_FOUND: {},
  ERR_CONFLICT: {},
  ERR_NOT_INTEGER: {},
  ERR_WRONG_TYPE: {},
  ERR_IDEMPOTENCY_KEY_REUSED: {},
  ERR_TOO_LARGE: {},
  ERR_STREAM_FULL: {},
  ERR_LIMIT: {},
  ERR_BUSY: {},
  ERR_RATE_LIMITED: {},
  ERR_NOT_LEADER: {},
  ERR_UNAVAILABLE: {},
  ERR_TIMEOUT: {},
  ERR_WRITE_CONCERN: {},
  ERR_NO_SPACE: {},
  ERR_STORAGE_FAILED: {},
  ERR_STATE_CORRUPT: {},
  ERR_SHUTTING_DOWN: {},
  ERR_INTERNAL: {},
};

/** An expected failure with a stable code and the structured details of that code. */
export class CairnError<C extends ErrorCode = ErrorCode> extends Error {
  override readonly name = "CairnError";
  readonly code: C;
  readonly details: ErrorDetails[C];

  /** Creates an error; `details` travel to the client next to code and message. */
  constructor(code: C, message: string, details?: ErrorDetails[C], options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.details = details ?? noDetails[code];
  }

  /** Whether this is an error of `code`; narrows its details to that code's. */
  is<K extends ErrorCode>(code: K): this is CairnError<K> {
    const own: ErrorCode = this.code;
    return own === code;
  }
}

/**
 * Whether `value` is a CairnError, of any code. Use it rather than `instanceof`, which types a
 * generic class's parameters as `any`.
 */
export function isCairnError(value: unknown): value is CairnError {
  return value instanceof CairnError;
}

/**
 * A command the state machine refused with `code`, tagged with the command's kind `K`; nothing
 * changed. It carries that code's details.
 */
export type Refusal<K extends string, C extends ErrorCode> = {
  readonly kind: K;
  readonly ok: false;
  readonly code: C;
  readonly message: string;
  readonly details: ErrorDetails[C];
};

/** One {@link Refusal} variant per code of `C`, so a check of `code` narrows `details`. */
export type Refusals<K extends string, C extends ErrorCode> = C extends ErrorCode ? Refusal<K, C> : never;

/** The error a refused command raises to the client. */
export function refusalError<C extends ErrorCode>(refusal: Refusal<string, C>): CairnError<C> {
  return new CairnError(refusal.code, refusal.message, refusal.details);
}

/** Whether `value` is one of the stable error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && (errorCodes as readonly string[]).includes(value);
}
