// How each stable error code appears over HTTP. Typed Record<ErrorCode, number>, so a new code
// does not compile until it has a status here.
import type { ErrorCode } from "../../service/index.js";

/** The HTTP status of each error code. */
export const httpStatusOf: Record<ErrorCode, number> = {
  ERR_BAD_REQUEST: 400,
  ERR_UNAUTHENTICATED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_CONFLICT: 409,
  ERR_NOT_INTEGER: 409,
  ERR_WRONG_TYPE: 409,
  ERR_IDEMPOTENCY_KEY_REUSED: 422,
  ERR_TOO_LARGE: 413,
  ERR_STREAM_FULL: 409,
  ERR_LIMIT: 409,
  ERR_BUSY: 429,
  ERR_RATE_LIMITED: 429,
  ERR_NOT_LEADER: 421,
  ERR_UNAVAILABLE: 503,
  ERR_TIMEOUT: 504,
  // Committed on a majority, but not confirmed on every voter within the wait: the gateway-style
  // "did not complete in time", with the body saying how many voters have it.
  ERR_WRITE_CONCERN: 504,
  ERR_NO_SPACE: 507,
  ERR_STORAGE_FAILED: 503,
  ERR_STATE_CORRUPT: 503,
  ERR_SHUTTING_DOWN: 503,
  ERR_INTERNAL: 500,
};

/** The one error body shape of the HTTP API. */
export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string } & Readonly<Record<string, unknown>>;
}

/** Builds the error body for a code, message and details. */
export function errorBody(
  code: ErrorCode,
  message: string,
  details: Readonly<Record<string, unknown>> = {},
): ErrorBody {
  return { error: { ...details, code, message } };
}
