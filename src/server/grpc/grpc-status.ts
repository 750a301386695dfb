// How each stable error code appears to a gRPC client. PostMessage answers a failure the way the
// seed did and its clients check it: status OK with `status: "error"` and a text in `message`
// (the seed's own text where it had one, table postMessageTextOf). The other methods have no
// status text to carry a failure (GetMessages) or only a worker as client (CatchUp): they end with
// a gRPC status (table grpcStatusOf). Both tables are typed Record<ErrorCode, ...>, so a new code
// does not compile until it has an entry in each. The gRPC status names say what a client may do:
// UNAVAILABLE means nothing was done (retry, with backoff); DEADLINE_EXCEEDED means the outcome is
// unknown (retry only with the same idempotency-key metadata, which answers the original instead
// of storing twice). docs/compat.md holds these tables for users.
import { Metadata, type StatusObject, status } from "@grpc/grpc-js";
import type { CairnError, ErrorCode } from "../../service/index.js";

/** The gRPC status of each error code. */
export const grpcStatusOf: Record<ErrorCode, status> = {
  ERR_BAD_REQUEST: status.INVALID_ARGUMENT,
  // The seed's 401 for a bad auth_token.
  ERR_UNAUTHENTICATED: status.UNAUTHENTICATED,
  ERR_FORBIDDEN: status.PERMISSION_DENIED,
  ERR_NOT_FOUND: status.NOT_FOUND,
  // A test-and-set that failed: gRPC's guide names ABORTED for it (retry at a higher level).
  ERR_CONFLICT: status.ABORTED,
  ERR_NOT_INTEGER: status.FAILED_PRECONDITION,
  ERR_WRONG_TYPE: status.FAILED_PRECONDITION,
  ERR_IDEMPOTENCY_KEY_REUSED: status.ALREADY_EXISTS,
  ERR_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  ERR_STREAM_FULL: status.RESOURCE_EXHAUSTED,
  ERR_LIMIT: status.RESOURCE_EXHAUSTED,
  ERR_BUSY: status.RESOURCE_EXHAUSTED,
  // The seed's 429 RATE_LIMITED.
  ERR_RATE_LIMITED: status.RESOURCE_EXHAUSTED,
  // The services hand writes to the leader; this reaches a client only when the node it was handed
  // to had just stepped down. Nothing was appended.
  ERR_NOT_LEADER: status.UNAVAILABLE,
  ERR_UNAVAILABLE: status.UNAVAILABLE,
  // The write left for the leader and no answer came: it may still commit.
  ERR_TIMEOUT: status.DEADLINE_EXCEEDED,
  // The write committed on a majority; the wait for every voter ended first.
  ERR_WRITE_CONCERN: status.DEADLINE_EXCEEDED,
  ERR_NO_SPACE: status.RESOURCE_EXHAUSTED,
  ERR_STORAGE_FAILED: status.UNAVAILABLE,
  ERR_STATE_CORRUPT: status.UNAVAILABLE,
  ERR_SHUTTING_DOWN: status.UNAVAILABLE,
  ERR_INTERNAL: status.INTERNAL,
};

/** The seed's text when no majority could take a write. */
const quorumLost = "Service temporarily unavailable for writes (quorum lost)";

/**
 * The `message` of a failed PostMessage, by code: the seed's texts where the seed had a failure of
 * that kind ("Failed to create message" for bad content, which Cairn's own message already starts
 * with; "Failed to replicate message to all workers"; the quorum-lost text), Cairn's message
 * otherwise. Cairn's message always travels in the `cairn-message` trailer too.
 */
export const postMessageTextOf: Record<ErrorCode, (error: CairnError) => string> = {
  ERR_BAD_REQUEST: (e) => e.message,
  // The seed answered 401 for a bad auth_token; a refused token never reaches PostMessage's
  // handler (the call ends UNAUTHENTICATED), a token lacking the stream's write permission does.
  ERR_UNAUTHENTICATED: (e) => `Unauthorized: ${e.message}`,
  ERR_FORBIDDEN: (e) => `Forbidden: ${e.message}`,
  ERR_NOT_FOUND: (e) => e.message,
  ERR_CONFLICT: (e) => e.message,
  ERR_NOT_INTEGER: (e) => e.message,
  ERR_WRONG_TYPE: (e) => e.message,
  ERR_IDEMPOTENCY_KEY_REUSED: (e) => e.message,
  ERR_TOO_LARGE: (e) => `Failed to create message: ${e.message}`,
  ERR_STREAM_FULL: (e) => `Failed to create message: ${e.message}`,
  ERR_LIMIT: (e) => `Failed to create message: ${e.message}`,
  ERR_BUSY: (e) => `Rate limited: ${e.message}`,
  // The seed's text for its 429 RATE_LIMITED.
  ERR_RATE_LIMITED: (e) => `Rate limited: ${e.message}`,
  ERR_NOT_LEADER: () => quorumLost,
  ERR_UNAVAILABLE: () => quorumLost,
  ERR_TIMEOUT: (e) =>
    `Outcome unknown, the message may still be added: retry with the same idempotency-key (${e.message})`,
  ERR_WRITE_CONCERN: (e) => `Failed to replicate message to all workers: ${e.message}`,
  ERR_NO_SPACE: () => quorumLost,
  ERR_STORAGE_FAILED: () => quorumLost,
  ERR_STATE_CORRUPT: () => quorumLost,
  ERR_SHUTTING_DOWN: () => quorumLost,
  ERR_INTERNAL: (e) => `Internal error: ${e.message}`,
};

/** Trailing metadata key carrying the stable Cairn code of a failure. */
export const codeTrailer = "cairn-code";
/** Trailing metadata key carrying the leader's gRPC address, when a failure names one. */
export const leaderTrailer = "cairn-leader";
/** Trailing metadata key carrying Cairn's message of a failed PostMessage. */
export const messageTrailer = "cairn-message";
/** Trailing metadata of ERR_WRITE_CONCERN: how many voting members had the message, and of how many. */
export const votersWithEntryTrailer = "cairn-voters-with-entry";
export const votersTrailer = "cairn-voters";
/** Trailing metadata of ERR_RATE_LIMITED: milliseconds until a retry is admitted. */
export const retryAfterTrailer = "cairn-retry-after-ms";

/** What a failure says, and the trailing metadata that goes with it (the Cairn code and details). */
function describeFailure(error: CairnError): { text: string; trailers: Record<string, string> } {
  const trailers: Record<string, string> = { [codeTrailer]: error.code };
  let text = error.message;
  if (error.is("ERR_NOT_LEADER")) {
    const at = error.details.leader?.grpc;
    text = `leadership changed, nothing was done; retry (${error.message})`;
    if (at !== undefined) {
      trailers[leaderTrailer] = at;
      text += `; leader at ${at}`;
    }
  }
  if (error.is("ERR_RATE_LIMITED") && error.details.retryAfterMs !== undefined) {
    trailers[retryAfterTrailer] = String(error.details.retryAfterMs);
  }
  if (error.is("ERR_WRITE_CONCERN")) {
    const { votersWithEntry, voters } = error.details;
    if (votersWithEntry !== undefined) trailers[votersWithEntryTrailer] = String(votersWithEntry);
    if (voters !== undefined) trailers[votersTrailer] = String(voters);
  }
  return { text, trailers };
}

/**
 * The status a failed call ends with: the code's gRPC status, the message as details, and the
 * Cairn code (and the leader's gRPC address, when known) as trailing metadata.
 */
export function grpcFailureOf(error: CairnError): Partial<StatusObject> & { code: status } {
  const { text, trailers } = describeFailure(error);
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(trailers)) metadata.set(key, value);
  return { code: grpcStatusOf[error.code], details: text, metadata };
}

/**
 * A failed PostMessage as the seed answered one: status OK, `status: "error"` and a text; the
 * Cairn code, message and details go in trailing metadata.
 */
export function postMessageFailureOf(error: CairnError): {
  readonly response: { readonly status: "error"; readonly message: string; readonly total_messages: 0 };
  readonly trailers: Readonly<Record<string, string>>;
} {
  const { text, trailers } = describeFailure(error);
  return {
    response: { status: "error", message: postMessageTextOf[error.code](error), total_messages: 0 },
    trailers: { ...trailers, [messageTrailer]: text },
  };
}
