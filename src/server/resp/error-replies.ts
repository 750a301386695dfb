// How each stable error code appears to a Redis client: one table typed Record<ErrorCode, ...>, so
// a new code does not compile until it has a reply here. Cluster conditions get their own prefixes
// (UNAVAILABLE, TIMEOUT, BUSY) so clients can tell "nothing was done" from "outcome unknown"; the
// rest use Redis's generic ERR prefix, with Redis's own texts where a Redis command has one.
import type { CairnError, ErrorCode } from "../../service/index.js";

/** The error reply text (without the leading `-`) of each code. */
export const respErrorOf: Record<ErrorCode, (error: CairnError) => string> = {
  ERR_BAD_REQUEST: (e) => `ERR ${e.message}`,
  // Redis's own texts (src/server.c, src/acl.c of Redis 7.2).
  ERR_UNAUTHENTICATED: (e) => {
    const certificate = e.is("ERR_UNAUTHENTICATED") ? e.details.certificate : undefined;
    // Clients read the NOAUTH prefix; a certificate's holder also learns why it is not enough.
    return certificate === undefined
      ? "NOAUTH Authentication required."
      : `NOAUTH Authentication required. Certificate name '${certificate}' is not bound to a role.`;
  },
  ERR_FORBIDDEN: (e) => {
    const details = e.is("ERR_FORBIDDEN") ? e.details : {};
    const user = details.principal ?? "default";
    return details.name !== undefined
      ? `NOPERM User ${user} has no permissions to access the '${details.name}' key`
      : `NOPERM User ${user} has no permissions to run this command (it needs ${details.missing ?? "more"})`;
  },
  ERR_NOT_FOUND: () => "ERR no such key",
  ERR_CONFLICT: (e) => `ERR ${e.message}`,
  // The state machine's texts are Redis's ("value is not an integer or out of range", "increment
  // or decrement would overflow", "value is not a valid float").
  ERR_NOT_INTEGER: (e) => `ERR ${e.message}`,
  // A key command on a stream's name or a stream command on a key's (one keyspace, as in Redis).
  ERR_WRONG_TYPE: () => "WRONGTYPE Operation against a key holding the wrong kind of value",
  ERR_IDEMPOTENCY_KEY_REUSED: (e) => `ERR ${e.message}`,
  ERR_TOO_LARGE: () => "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
  ERR_STREAM_FULL: (e) => `ERR ${e.message}`,
  ERR_LIMIT: (e) => `ERR ${e.message}`,
  ERR_BUSY: (e) => `BUSY ${e.message}; retry after a short backoff`,
  ERR_RATE_LIMITED: (e) =>
    e.is("ERR_RATE_LIMITED") && e.details.retryAfterMs !== undefined
      ? `BUSY ${e.message}; retry in ${e.details.retryAfterMs} ms`
      : `BUSY ${e.message}; retry after a short backoff`,
  // Services hand writes to the leader themselves; this reaches a client only when the leader it
  // was handed to had just stepped down.
  ERR_NOT_LEADER: (e) => {
    const details = e.is("ERR_NOT_LEADER") ? e.details : {};
    const at = details.leader?.redis;
    return `UNAVAILABLE no majority: leadership changed, nothing was done; retry${at !== undefined ? ` (leader at ${at})` : ""}`;
  },
  ERR_UNAVAILABLE: (e) =>
    `UNAVAILABLE no majority or no leader reachable, nothing was done; retry (${e.message})`,
  ERR_TIMEOUT: (e) => `TIMEOUT outcome unknown, retry if the command is safe to repeat (${e.message})`,
  ERR_WRITE_CONCERN: (e) =>
    `WRITECONCERN the write is committed on a majority, not on every voter (${e.message})`,
  ERR_NO_SPACE: (e) => `UNAVAILABLE no space left on the leader's disk; writes refused (${e.message})`,
  ERR_STORAGE_FAILED: (e) => `UNAVAILABLE storage failed on this node; use another node (${e.message})`,
  ERR_STATE_CORRUPT: (e) =>
    `UNAVAILABLE this node's copy of the data is damaged; use another node (${e.message})`,
  ERR_SHUTTING_DOWN: () => "UNAVAILABLE this node is shutting down; use another node",
  ERR_INTERNAL: (e) => `ERR internal error: ${e.message}`,
};
