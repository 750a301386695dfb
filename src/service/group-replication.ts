// Connects the services to a Raft group's runtime: proposals become log entries (on a follower, they
// are handed to the leader over the peer link), linearizable reads wait for a ReadIndex barrier,
// stale reads read committed state directly, and runtime errors keep their stable codes.
import type { Env } from "../node/env.js";
import { NodeError } from "../node/node-error.js";
import type { RaftGroup } from "../node/raft-group.js";
import type { ApplyOutcome } from "./command.js";
import { CairnError, isCairnError } from "./errors.js";
import type { LeaderLink } from "./leader-link.js";
import type { ReplicationPort, Staleness } from "./replication.js";
import type { StateReader } from "./state.js";
import type { StateBackend } from "./state-machine.js";

/** A {@link ReplicationPort} over one Raft group and the backend its state machine writes. */
export class GroupReplication implements ReplicationPort {
  readonly #group: RaftGroup<ApplyOutcome>;
  readonly #backend: StateBackend;
  readonly #env: Env;
  readonly #link: LeaderLink | undefined;

  /**
   * Creates the port. With `link`, a write made on a follower is handed to the leader; without,
   * it is refused with ERR_NOT_LEADER (a client must find the leader itself).
   */
  constructor(group: RaftGroup<ApplyOutcome>, backend: StateBackend, env: Env, link?: LeaderLink) {
    this.#group = group;
    this.#backend = backend;
    this.#env = env;
    this.#link = link;
  }

  async propose(data: Uint8Array): Promise<ApplyOutcome> {
    if (this.#link !== undefined && !this.#link.leads) return this.#link.propose(data);
    let outcome: ApplyOutcome | undefined;
    try {
      outcome = await this.#group.propose(data);
    } catch (error) {
      const failure = toCairnError(error);
      throw this.#link?.withLeaderAddresses(failure) ?? failure;
    }
    if (outcome === undefined) throw new CairnError("ERR_INTERNAL", "the proposal applied without a result");
    return outcome;
  }

  async readLinearizable<T>(read: (state: StateReader) => T): Promise<T> {
    try {
      await this.#group.readBarrier();
    } catch (error) {
      throw toCairnError(error);
    }
    return readChecked(() => read(this.#backend.reader));
  }

  readStale<T>(read: (state: StateReader) => T): { value: T; staleness: Staleness } {
    let staleness: Staleness;
    try {
      // Taken before the read: apply cannot run in between, and an applied index that lags the
      // state read only overstates how stale the answer is.
      staleness = this.#group.staleness();
    } catch (error) {
      throw toCairnError(error);
    }
    return { value: readChecked(() => read(this.#backend.reader)), staleness };
  }

  nowMs(): number {
    return this.#env.nowMs();
  }
}

/** Runs a read of the local state; a value that fails its checksum is ERR_STATE_CORRUPT for the client. */
function readChecked<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof Error && "code" in error && error.code === "ERR_STATE_CORRUPT")
      throw toCairnError(error);
    throw error;
  }
}

/** Keeps a runtime error's stable code; anything else is an internal error. */
export function toCairnError(error: unknown): CairnError {
  if (isCairnError(error)) return error;
  if (error instanceof NodeError) {
    return new CairnError(
      error.code,
      error.message,
      error.leaderId !== null ? { leaderId: error.leaderId } : {},
      { cause: error },
    );
  }
  // A read of damaged state (a value failing its checksum) keeps its code: the client should go
  // to another node, and this is no bug.
  if (error instanceof Error && "code" in error && error.code === "ERR_STATE_CORRUPT")
    return new CairnError("ERR_STATE_CORRUPT", error.message, {}, { cause: error });
  return new CairnError(
    "ERR_INTERNAL",
    error instanceof Error ? error.message : String(error),
    {},
    { cause: error },
  );
}
