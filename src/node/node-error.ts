// Expected failures of the runtime, each with a stable code the service layer passes on to clients.

/** Why a proposal or read did not complete. */
export type NodeErrorCode =
  /** This member is not the leader; nothing was appended. `leaderId` may name the leader. */
  | "ERR_NOT_LEADER"
  /** Not appended or definitely not applied (no quorum, a transfer, a superseded entry): retry. */
  | "ERR_UNAVAILABLE"
  /** Appended, outcome unknown: it may still commit. Retry with the same idempotency key. */
  | "ERR_TIMEOUT"
  /**
   * The entry committed (it is durable on a majority) but not every voting member had it on disk
   * in time, or this member stopped leading before it could tell: `voters` says how many had it.
   */
  | "ERR_WRITE_CONCERN"
  /** The disk is full; writes are refused until space is freed. */
  | "ERR_NO_SPACE"
  /** Storage failed (fsync error); the group stopped for good (fail-stop). */
  | "ERR_STORAGE_FAILED"
  /** The group is stopping. */
  | "ERR_SHUTTING_DOWN"
  /** A broken invariant (a bug) stopped the group and crashes the process; outcome unknown. */
  | "ERR_INTERNAL";

/** How many voting members had an entry on disk, of how many there are. */
export interface VoterCount {
  readonly withEntry: number;
  readonly voters: number;
}

/**
 * A runtime failure with a stable code and, for ERR_NOT_LEADER, a leader hint; for
 * ERR_WRITE_CONCERN, how many voting members had the entry.
 */
export class NodeError extends Error {
  override readonly name = "NodeError";
  readonly code: NodeErrorCode;
  readonly leaderId: number | null;
  readonly voterCount: VoterCount | null;

  /** Creates an error. */
  constructor(
    code: NodeErrorCode,
    message: string,
    leaderId: number | null = null,
    options?: ErrorOptions & { readonly voterCount?: VoterCount },
  ) {
    super(message, options);
    this.code = code;
    this.leaderId = leaderId;
    this.voterCount = options?.voterCount ?? null;
  }
}
