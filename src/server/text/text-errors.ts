// How each stable error code appears in the text protocol, as the reason after `ERROR: `. Typed
// Record<ErrorCode, string>, so a new code does not compile until it has a reason here. Every
// failure that means "the cluster cannot answer right now" starts with `unavailable`, so a client
// that only checks that prefix never mistakes an outage for NOT_FOUND (Tolerex answered NOT_FOUND
// when every replica was down).
import type { CairnError, ErrorCode } from "../../service/index.js";

/** The `ERROR: ` reason of each error code. */
export const textReasonOf: Record<ErrorCode, string> = {
  ERR_BAD_REQUEST: "bad request",
  // The connection has not sent `AUTH <token>`, or its token was revoked or expired.
  ERR_UNAUTHENTICATED: "unauthenticated (send AUTH <token>)",
  ERR_FORBIDDEN: "permission denied",
  ERR_NOT_FOUND: "not found",
  ERR_CONFLICT: "conflict",
  ERR_NOT_INTEGER: "not an integer",
  ERR_WRONG_TYPE: "wrong type",
  ERR_IDEMPOTENCY_KEY_REUSED: "idempotency key reused",
  ERR_TOO_LARGE: "message too large",
  ERR_STREAM_FULL: "full",
  ERR_LIMIT: "limit reached",
  ERR_BUSY: "busy, retry shortly",
  // textReasonFor says how long: `busy, retry in N ms`.
  ERR_RATE_LIMITED: "busy, retry later",
  // A node that is no longer leader mid-call: nothing was done, another try finds the new leader.
  ERR_NOT_LEADER: "unavailable (leader changed, retry)",
  ERR_UNAVAILABLE: "unavailable",
  // The write left this node and no answer came: it may still apply. A retried SET of the same id
  // and message is harmless, as a SET overwrites.
  ERR_TIMEOUT: "unavailable (timed out, the write may still apply)",
  // Not "unavailable": the write is stored (on a majority), only the wait for every voter ended.
  ERR_WRITE_CONCERN: "write concern not met (stored on a majority, not on every voter)",
  ERR_NO_SPACE: "no space left",
  ERR_STORAGE_FAILED: "unavailable (storage failed)",
  ERR_STATE_CORRUPT: "unavailable (this node's data is damaged)",
  ERR_SHUTTING_DOWN: "unavailable (shutting down)",
  ERR_INTERNAL: "internal error",
};

/**
 * The `ERROR: ` reason of `error`: its code's, with the wait in it for a rate limit and the name
 * of an unbound client certificate.
 */
export function textReasonFor(error: CairnError): string {
  if (error.is("ERR_RATE_LIMITED") && error.details.retryAfterMs !== undefined) {
    return `busy, retry in ${error.details.retryAfterMs} ms`;
  }
  if (error.is("ERR_UNAUTHENTICATED") && error.details.certificate !== undefined) {
    return `unauthenticated (certificate name ${error.details.certificate} is not bound to a role; send AUTH <token>)`;
  }
  return textReasonOf[error.code];
}
