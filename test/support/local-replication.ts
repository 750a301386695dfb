// A single-replica stand-in for the replicated log: proposals apply at once to in-memory state
// through the real envelope and state machine code. Lets service and protocol tests run without a
// cluster; the real runtime is tested against the same port in the integration suite.
import { ApplyNotifier } from "../../src/service/apply-notifier.js";
import { type ApplyOutcome, applyEnvelope, decodeEnvelope } from "../../src/service/command.js";
import type { ReplicationPort, Staleness, WriteConcern } from "../../src/service/replication.js";
import { MemoryState, type StateReader } from "../../src/service/state.js";

/** An in-process, single-replica ReplicationPort with a settable clock. */
export class LocalReplication implements ReplicationPort {
  readonly state = new MemoryState();
  /** Notified after every applied proposal, as the real apply path does. */
  readonly applied: ApplyNotifier;
  appliedIndex = 0;
  clockMs = 1_700_000_000_000;
  /** What stale reads report as the age of the last leader contact. */
  leaderContactAgeMs: number | null = 0;
  /** When set, every proposal fails with this error instead of applying. */
  failWith: Error | undefined;
  /** The write concern of every proposal, in order (one replica meets "all" at once). */
  readonly writeConcerns: WriteConcern[] = [];

  /** Creates an empty log whose apply path notifies `applied` (a notifier with default limits if omitted). */
  constructor(applied = new ApplyNotifier()) {
    this.applied = applied;
  }

  async propose(data: Uint8Array, writeConcern: WriteConcern = "majority"): Promise<ApplyOutcome> {
    this.writeConcerns.push(writeConcern);
    if (this.failWith !== undefined) throw this.failWith;
    this.appliedIndex++;
    const outcome = applyEnvelope(this.state, decodeEnvelope(data));
    this.applied.notify();
    return outcome;
  }

  async readLinearizable<T>(read: (state: StateReader) => T): Promise<T> {
    if (this.failWith !== undefined) throw this.failWith;
    return read(this.state);
  }

  readStale<T>(read: (state: StateReader) => T): { value: T; staleness: Staleness } {
    return {
      value: read(this.state),
      staleness: { appliedIndex: this.appliedIndex, leaderContactAgeMs: this.leaderContactAgeMs },
    };
  }

  nowMs(): number {
    return this.clockMs;
  }
}
