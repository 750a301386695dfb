// What the services need from the node runtime, stated from the services' side. The runtime
// satisfies it structurally (it does not import the service layer), and tests can supply a
// single-replica twin that applies immediately.
import type { Need } from "./auth/index.js";
import type { ApplyOutcome } from "./command.js";
import { CairnError } from "./errors.js";
import type { StateReader } from "./state.js";

/** How far a locally served read may be behind, for `consistency=stale`. */
export interface Staleness {
  /** The Raft index of the last entry applied to the state that was read. */
  readonly appliedIndex: number;
  /** Milliseconds since this node last heard from a leader; 0 on the leader; null if never. */
  readonly leaderContactAgeMs: number | null;
}

/** A read's answer; for `consistency=stale` it says how far behind it may be. */
export type WithStaleness<T> = T & { readonly staleness?: Staleness };

/**
 * Runs a stale read through `log`, reporting its staleness with the answer, and with an expected
 * failure too (an ERR_NOT_FOUND from local state is just as stale as a value).
 */
export function readStaleReported<T>(
  log: ReplicationPort,
  read: (state: StateReader) => T,
): { readonly value: T; readonly staleness: Staleness } {
  const { value, staleness } = log.readStale(
    (state): { ok: true; value: T } | { ok: false; error: unknown } => {
      try {
        return { ok: true, value: read(state) };
      } catch (error) {
        return { ok: false, error };
      }
    },
  );
  if (value.ok) return { value: value.value, staleness };
  const error = value.error;
  if (error instanceof CairnError) {
    throw new CairnError(error.code, error.message, { ...error.details, staleness }, { cause: error.cause });
  }
  throw error;
}

/**
 * How durable a write must be before it is acknowledged: "majority" (every write: fsynced on a
 * majority of the voting members) or "all" (also on every voting member, waited for after the
 * commit, bounded in time). Cairn never acknowledges less than a majority.
 */
export type WriteConcern = (typeof writeConcerns)[number];

/** Every write concern, in their wire order (the peer call that hands a write to the leader). */
export const writeConcerns = ["majority", "all"] as const;

/** A replicated, linearizable log with the state machine applied to it. */
export interface ReplicationPort {
  /**
   * Proposes an encoded envelope; resolves with its outcome once it is committed on a majority
   * and applied here, and with `writeConcern` "all" once every voting member has it too. Rejects
   * with a CairnError: ERR_NOT_LEADER (never appended: safe to retry elsewhere), ERR_TIMEOUT
   * (outcome unknown: retry with the same idempotency key), ERR_WRITE_CONCERN (committed, but not
   * confirmed on every voter in time), ERR_UNAVAILABLE, ERR_NO_SPACE, ERR_STORAGE_FAILED,
   * ERR_SHUTTING_DOWN.
   */
  propose(data: Uint8Array, writeConcern?: WriteConcern): Promise<ApplyOutcome>;
  /** Runs `read` on state that reflects every write acknowledged before the call (ReadIndex). */
  readLinearizable<T>(read: (state: StateReader) => T): Promise<T>;
  /**
   * Runs `read` on the local state now, reporting how stale it may be. Throws a CairnError
   * (ERR_STORAGE_FAILED, ERR_INTERNAL, ERR_SHUTTING_DOWN) once the node stopped serving: a stopped
   * node's state no longer follows the log.
   */
  readStale<T>(read: (state: StateReader) => T): { readonly value: T; readonly staleness: Staleness };
  /** The clock that stamps proposals (the leader's), milliseconds since the epoch. */
  nowMs(): number;
  /**
   * Throws ERR_UNAUTHENTICATED or ERR_FORBIDDEN unless the current principal may do what `needs`
   * lists (src/service/auth). Absent: no authentication (tests, the simulator).
   */
  authorize?(needs: readonly Need[]): void;
}

/**
 * `log` with every proposal made under `writeConcern`, and the same authorization: a view that
 * dropped `authorize` would serve every request through it unchecked (found by `npm run fuzz`: a
 * read-only token appended with gRPC's write_concern 3 and HTTP's `Cairn-Write-Concern: all`).
 */
export function withWriteConcern(log: ReplicationPort, writeConcern: WriteConcern): ReplicationPort {
  const authorize = log.authorize;
  return {
    propose: (data) => log.propose(data, writeConcern),
    readLinearizable: (read) => log.readLinearizable(read),
    readStale: (read) => log.readStale(read),
    nowMs: () => log.nowMs(),
    ...(authorize === undefined ? {} : { authorize: (needs: readonly Need[]) => authorize.call(log, needs) }),
  };
}
