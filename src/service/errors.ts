// The stable error codes clients see, in one place. Every protocol adapter maps these through a
// table typed Record<ErrorCode, ...>, so adding a code here forces every protocol to decide how to
// present it. docs/errors.md explains each code and what a client should do.

/** Every error code a client can receive. */
export const errorCodes = [
  "ERR_BAD_REQUEST",
  "ERR_NOT_FOUND",
  "ERR_CONFLICT",
  "ERR_NOT_INTEGER",
  "ERR_IDEMPOTENCY_KEY_REUSED",
  "ERR_TOO_LARGE",
  "ERR_STREAM_FULL",
  "ERR_LIMIT",
  "ERR_BUSY",
  "ERR_NOT_LEADER",
  "ERR_UNAVAILABLE",
  "ERR_TIMEOUT",
  "ERR_NO_SPACE",
  "ERR_STORAGE_FAILED",
  "ERR_SHUTTING_DOWN",
  "ERR_INTERNAL",
] as const;

/** A stable error code. */
export type ErrorCode = (typeof errorCodes)[number];

/** An expected failure with a stable code and optional structured details for the client. */
export class CairnError extends Error {
  override readonly name = "CairnError";
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  /** Creates an error; `details` travel to the client next to code and message. */
  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

/** Whether `value` is one of the stable error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && (errorCodes as readonly string[]).includes(value);
}
