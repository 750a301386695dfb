/**
 * Every stable error code the transport reports. Codes are part of the public contract (logs,
 * metrics, docs/errors.md); messages are for people and may change.
 */
export type TransportErrorCode =
  | "ERR_FRAME_TOO_LARGE"
  | "ERR_FRAME_CORRUPT"
  | "ERR_PROTOCOL_VERSION"
  | "ERR_HANDSHAKE_REJECTED"
  | "ERR_HANDSHAKE_TIMEOUT"
  | "ERR_PEER_UNKNOWN"
  | "ERR_TLS"
  | "ERR_MESSAGE_DECODE"
  | "ERR_QUEUE_FULL"
  | "ERR_CONNECTION_LOST"
  | "ERR_SNAPSHOT_ABORTED"
  | "ERR_SNAPSHOT_CORRUPT"
  | "ERR_TRANSPORT_CLOSED";

/** One transport failure with a stable `code`; `cause` keeps the lower-level error when there is one. */
export class TransportError extends Error {
  override readonly name = "TransportError";
  readonly code: TransportErrorCode;

  /** Creates an error with a stable code and a human-readable message. */
  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Whether `error` is a {@link TransportError}, optionally with the given code. */
export function isTransportError(error: unknown, code?: TransportErrorCode): error is TransportError {
  return error instanceof TransportError && (code === undefined || error.code === code);
}

/** `error` as a TransportError: itself if it is one, else one with `code` (and `context` before its text). */
export function asTransportError(error: unknown, code: TransportErrorCode, context?: string): TransportError {
  if (error instanceof TransportError) return error;
  const text = context === undefined ? String(error) : `${context}: ${String(error)}`;
  return new TransportError(code, text, { cause: error });
}
