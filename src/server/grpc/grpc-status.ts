// How each stable error code appears to a gRPC client: one table typed Record<ErrorCode, Status>,
// so a new code does not compile until it has a status here. The gRPC status names say what a
// client may do: UNAVAILABLE means nothing was done (retry, with backoff); DEADLINE_EXCEEDED means
// the outcome is unknown (retry only with the same idempotency-key metadata, which answers the
// original instead of storing twice). docs/compatibility.md holds this table for users.
import { Metadata, type StatusObject, status } from "@grpc/grpc-js";
import type { CairnError, ErrorCode } from "../../service/index.js";

/** The gRPC status of each error code. */
export const grpcStatusOf: Record<ErrorCode, status> = {
  ERR_BAD_REQUEST: status.INVALID_ARGUMENT,
  ERR_NOT_FOUND: status.NOT_FOUND,
  // A test-and-set that failed: gRPC's guide names ABORTED for it (retry at a higher level).
  ERR_CONFLICT: status.ABORTED,
  ERR_NOT_INTEGER: status.FAILED_PRECONDITION,
  ERR_IDEMPOTENCY_KEY_REUSED: status.ALREADY_EXISTS,
  ERR_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  ERR_STREAM_FULL: status.RESOURCE_EXHAUSTED,
  ERR_LIMIT: status.RESOURCE_EXHAUSTED,
  // The seed's 429 RATE_LIMITED.
  ERR_BUSY: status.RESOURCE_EXHAUSTED,
  // The services hand writes to the leader; this reaches a client only when the node it was handed
  // to had just stepped down. Nothing was appended.
  ERR_NOT_LEADER: status.UNAVAILABLE,
  ERR_UNAVAILABLE: status.UNAVAILABLE,
  // The write left for the leader and no answer came: it may still commit.
  ERR_TIMEOUT: status.DEADLINE_EXCEEDED,
  ERR_NO_SPACE: status.RESOURCE_EXHAUSTED,
  ERR_STORAGE_FAILED: status.UNAVAILABLE,
  ERR_STATE_CORRUPT: status.UNAVAILABLE,
  ERR_SHUTTING_DOWN: status.UNAVAILABLE,
  ERR_INTERNAL: status.INTERNAL,
};

/** Trailing metadata key carrying the stable Cairn code of a failure. */
export const codeTrailer = "cairn-code";
/** Trailing metadata key carrying the leader's gRPC address, when a failure names one. */
export const leaderTrailer = "cairn-leader";

/**
 * The status a failed call ends with: the code's gRPC status, the message as details, and the
 * Cairn code (and the leader's gRPC address, when known) as trailing metadata.
 */
export function grpcFailureOf(error: CairnError): Partial<StatusObject> & { code: status } {
  const metadata = new Metadata();
  metadata.set(codeTrailer, error.code);
  let details = error.message;
  if (error.is("ERR_NOT_LEADER")) {
    const at = error.details.leader?.grpc;
    details = `leadership changed, nothing was done; retry (${error.message})`;
    if (at !== undefined) {
      metadata.set(leaderTrailer, at);
      details += `; leader at ${at}`;
    }
  }
  return { code: grpcStatusOf[error.code], details, metadata };
}
