// What stream and consumer-group commands answer, and the limits the state machine enforces.
import type { ErrorDetails, Refusal, Refusals } from "../errors.js";
import type { StreamCommand, StreamConfig } from "./stream-command.js";

/**
 * A message a fetch handed to a consumer, by sequence. The result of a fetch names messages rather
 * than carrying them, so an idempotency key remembers a few bytes per message, not its payload.
 */
export interface Delivery {
  readonly seq: number;
  /** How many times this message has been delivered to the group, this time included. */
  readonly deliveries: number;
}

/** The codes with which the state machine refuses a stream command. */
export type StreamFailureCode =
  | "ERR_NOT_FOUND"
  | "ERR_CONFLICT"
  | "ERR_STREAM_FULL"
  | "ERR_TOO_LARGE"
  | "ERR_LIMIT";

/** The kind tag of every stream command and result: `streams.` and the command's type. */
export type StreamResultKind = `streams.${StreamCommand["type"]}`;

/** A stream command that failed, tagged with its kind; nothing changed. */
export type StreamFailure = {
  readonly [K in StreamResultKind]: Refusals<K, StreamFailureCode>;
}[StreamResultKind];

/** What each stream command answers when it succeeds, by kind. */
export interface StreamSuccesses {
  readonly "streams.create": { readonly created: boolean };
  readonly "streams.delete": { readonly deleted: boolean };
  /** `updated` is false when the settings were already as asked. */
  readonly "streams.update": { readonly updated: boolean };
  /** `deleted`: the sequences that were held and are now deleted, in the order asked. */
  readonly "streams.message-delete": { readonly deleted: readonly number[] };
  readonly "streams.append": {
    readonly seq: number;
    readonly id: string;
    /** True when the message id was seen within the window: `seq` is the original's. */
    readonly duplicate: boolean;
  };
  /** One append result per message, in order (an atomic batch that fails is refused whole instead). */
  readonly "streams.append-batch": { readonly results: readonly AppendOutcome[] };
  readonly "streams.group-create": { readonly created: boolean };
  readonly "streams.group-delete": { readonly deleted: boolean };
  /** `updated` is false when the settings were already as asked. */
  readonly "streams.group-update": { readonly updated: boolean };
  readonly "streams.fetch": { readonly messages: readonly Delivery[] };
  readonly "streams.settle": {
    readonly settled: readonly number[];
    /** Sequences that were not in flight for this group (already settled, or never delivered). */
    readonly notPending: readonly number[];
  };
  readonly "streams.sweep": { readonly removed: number };
  /** `more` when the per-entry bound stopped an exact trim before it was done. */
  readonly "streams.trim": { readonly trimmed: number; readonly more: boolean };
  readonly "streams.group-position": Record<never, never>;
  readonly "streams.consumer-create": { readonly created: boolean };
  readonly "streams.set-id": Record<never, never>;
  /** How many messages the consumer held, now no longer in flight. */
  readonly "streams.consumer-delete": { readonly pending: number };
  readonly "streams.claim": {
    /** The messages now held by the claiming consumer, in sequence order. */
    readonly claimed: readonly Delivery[];
    /**
     * Sequences in flight whose messages were deleted meanwhile, in order among the claimed ones:
     * dropped from the group (left there by `ownOnly`, which reads a consumer's history).
     */
    readonly deleted: readonly number[];
    /** The ids of `deleted`, one each ("" when not kept: trimmed, or deleted by the HTTP API). */
    readonly deletedIds: readonly string[];
    /** Where a scan continues (0: it reached the end; always 0 for named sequences). */
    readonly next: number;
  };
}

/** What one message of a batch append answers: as an append alone would. */
export type AppendOutcome =
  | ({ readonly kind: "streams.append"; readonly ok: true } & StreamSuccesses["streams.append"])
  | Refusals<"streams.append", StreamFailureCode>;

/** The successful outcome of a stream command of kind `K`. */
export type StreamSuccess<K extends StreamResultKind> = {
  readonly kind: K;
  readonly ok: true;
} & StreamSuccesses[K];

/** The outcome of any stream command, tagged with its command's kind. */
export type StreamResult =
  | { readonly [K in StreamResultKind]: StreamSuccess<K> }[StreamResultKind]
  | StreamFailure;

/** The outcome of a stream command of kind `K`. */
export type StreamResultOf<K extends StreamResultKind> = Extract<StreamResult, { readonly kind: K }>;

/** Limits the state machine itself enforces; equal on every replica. */
export interface StreamMachineLimits {
  readonly streamsMax: number;
  readonly groupsPerStreamMax: number;
  /**
   * Messages and message ids that retention removes per append or update at most, so one entry's
   * work stays bounded; the leader's sweeps remove the rest.
   */
  readonly prunePerEntryMax: number;
  /** Payload bytes one fetch hands out, about (a fetch always hands out at least one message). */
  readonly fetchBytesMax: number;
  /** Messages one trim (Redis MAXLEN / MINID) removes per entry at most. */
  readonly trimPerEntryMax: number;
}

/**
 * Defaults: 10,000 streams, 100 groups per stream, 256 removals per entry, fetches of 4 MiB,
 * trims of 10,000 messages (Redis's own bound for an approximate trim).
 */
export const defaultStreamMachineLimits: StreamMachineLimits = {
  streamsMax: 10_000,
  groupsPerStreamMax: 100,
  prunePerEntryMax: 256,
  fetchBytesMax: 4 * 1024 * 1024,
  trimPerEntryMax: 10_000,
};

/** The default stream settings a dead-letter stream gets when the state machine creates it. */
export const deadLetterStreamConfig: StreamConfig = {
  maxMessages: 0,
  maxBytes: 0,
  maxAgeMs: 0,
  discard: "old",
  messageBytesMax: 2 * 1024 * 1024,
  dedupeWindowMs: 0,
};

/** A refusal of a command of kind `kind`, with the details of its code. */
export function failure<K extends StreamResultKind, C extends StreamFailureCode>(
  kind: K,
  code: C,
  message: string,
  details: ErrorDetails[C],
): Refusal<K, C> {
  return { kind, ok: false, code, message, details };
}

/**
 * Whether an idempotency key should remember this result. A fetch that handed out nothing gave
 * the client nothing a retry must repeat, and a long-poll proposes again with the same key until
 * one hands out messages: so an empty fetch leaves the key unused.
 */
export function streamResultIsRemembered(result: StreamResult): boolean {
  return !(result.ok && result.kind === "streams.fetch" && result.messages.length === 0);
}
