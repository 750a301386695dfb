// Connects the services to a Raft group's runtime: proposals become log entries (on a follower, they
// are handed to the leader over the peer link), linearizable reads wait for a ReadIndex barrier,
// stale reads read committed state directly, and runtime errors keep their stable codes.
import type { Env, RaftGroup } from "../node/index.js";
import { NodeError } from "../node/index.js";
import { type AuthGuard, currentPrincipal, type Need } from "./auth/index.js";
import type { ApplyOutcome, EntryOutcome } from "./command.js";
import type { CommandBatcher } from "./command-batcher.js";
import { CairnError, isCairnError } from "./errors.js";
import type { LeaderLink } from "./leader-link.js";
import type { ReplicationPort, Staleness, WriteConcern } from "./replication.js";
import type { StateReader } from "./state.js";
import type { StateBackend } from "./state-machine.js";

/**
 * How long a leader waits, after a write committed, for every voting member to have it (the write
 * concern "all") before answering ERR_WRITE_CONCERN. With the proposal's own 5 s, it stays within
 * the 10 s a follower waits for the leader's answer, so a follower relays the verdict.
 */
export const allVotersTimeoutMsDefault = 4_000;

/**
 * Proposes the envelope `data` through `batcher` to `group`, which must lead, and resolves with its
 * outcome once applied; for `writeConcern` "all", once every voting member has it on disk too.
 * Rejects with the runtime's NodeError. A refused command (an outcome that is not ok) changed
 * nothing, so it is not waited on.
 */
export async function proposeOnLeader(
  batcher: CommandBatcher,
  group: RaftGroup<EntryOutcome>,
  data: Uint8Array,
  writeConcern: WriteConcern,
  allVotersTimeoutMs: number,
): Promise<ApplyOutcome> {
  const { outcome, index } = await batcher.propose(data);
  if (writeConcern === "all" && outcome.ok) await group.waitReplicatedToAll(index, allVotersTimeoutMs);
  return outcome;
}

/** A {@link ReplicationPort} over one Raft group and the backend its state machine writes. */
export class GroupReplication implements ReplicationPort {
  readonly #group: RaftGroup<EntryOutcome>;
  readonly #batcher: CommandBatcher;
  readonly #backend: StateBackend;
  readonly #env: Env;
  readonly #link: LeaderLink | undefined;
  readonly #allVotersTimeoutMs: number;
  readonly #guard: AuthGuard | undefined;

  /**
   * Creates the port; its proposals go through `batcher`, many commands per entry. With `link`, a write made on a follower is handed to the leader; without,
   * it is refused with ERR_NOT_LEADER (a client must find the leader itself). With `guard`, every
   * operation checks its principal's permissions (src/service/auth).
   */
  constructor(
    group: RaftGroup<EntryOutcome>,
    batcher: CommandBatcher,
    backend: StateBackend,
    env: Env,
    link?: LeaderLink,
    options: { readonly allVotersTimeoutMs?: number; readonly guard?: AuthGuard } = {},
  ) {
    this.#group = group;
    this.#batcher = batcher;
    this.#backend = backend;
    this.#env = env;
    this.#link = link;
    this.#allVotersTimeoutMs = options.allVotersTimeoutMs ?? allVotersTimeoutMsDefault;
    this.#guard = options.guard;
  }

  authorize(needs: readonly Need[]): void {
    this.#guard?.check(needs);
  }

  async propose(data: Uint8Array, writeConcern: WriteConcern = "majority"): Promise<ApplyOutcome> {
    // The principal travels with the write: the leader checks it again against its own state.
    if (this.#link !== undefined && !this.#link.leads)
      return this.#link.propose(data, writeConcern, currentPrincipal());
    try {
      return await proposeOnLeader(this.#batcher, this.#group, data, writeConcern, this.#allVotersTimeoutMs);
    } catch (error) {
      const failure = toCairnError(error);
      throw this.#link?.withLeaderAddresses(failure) ?? failure;
    }
  }

  async readLinearizable<T>(read: (state: StateReader) => T): Promise<T> {
    try {
      await this.#group.readBarrier();
    } catch (error) {
      const failure = toCairnError(error);
      throw this.#link?.withLeaderAddresses(failure) ?? failure;
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
    const count = error.voterCount;
    return new CairnError(
      error.code,
      error.message,
      error.leaderId !== null
        ? { leaderId: error.leaderId }
        : count !== null
          ? { votersWithEntry: count.withEntry, voters: count.voters }
          : {},
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
