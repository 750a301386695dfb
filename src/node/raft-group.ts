// The runtime of one Raft group on this node: the only place where the pure core meets I/O. One
// serial loop takes each Ready from the core and carries out its contract (send, persist, send
// after persist, apply, serve reads, advance); a ticker drives the core's logical clock; proposals
// and reads get promises that settle when their entry is applied or their read is safe.
import {
  type ConfChange,
  type Entry,
  type LogIndex,
  logIndex,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftStatus,
  RawNode,
  type Ready,
  type SnapshotMessage,
  type SnapshotMeta,
  type SoftState,
} from "../raft/index.js";
import { AssertionError } from "../util/index.js";
import type { Cancel, Env } from "./env.js";
import type { GroupSnapshots, SnapshotBackup } from "./group-snapshots.js";
import { GroupMetrics } from "./metrics.js";
import { NodeError, type VoterCount } from "./node-error.js";
import type { GroupStorage, MessageSender, StateMachine } from "./ports.js";
import { ProposalTracker } from "./proposal-tracker.js";
import { ReadBarrier } from "./read-barrier.js";
import { compactionPoint, type SnapshotInterval, snapshotDue } from "./snapshot-due.js";
import { decodeSnapshotStream, encodeSnapshotStream } from "./snapshot-stream.js";

/** Settings and collaborators of a group runtime. */
export interface RaftGroupOptions<R> {
  /** The core's settings, less its randomness (which comes from `env`). */
  readonly raft: Omit<RaftConfig, "random">;
  readonly env: Env;
  readonly storage: GroupStorage;
  readonly sender: MessageSender;
  readonly stateMachine: StateMachine<R>;
  /** Length of one Raft tick. */
  readonly tickIntervalMs: number;
  /** How long a proposal may wait to be applied before failing with ERR_TIMEOUT. Default 5,000. */
  readonly proposalTimeoutMs?: number;
  /** How long a read may wait for its ReadIndex before failing with ERR_UNAVAILABLE. Default 5,000. */
  readonly readTimeoutMs?: number;
  /** The most proposals waiting at once; more are refused with ERR_UNAVAILABLE. Default 10,000. */
  readonly proposalsPendingMax?: number;
  /** The most reads waiting at once; more are refused with ERR_UNAVAILABLE. Default 10,000. */
  readonly readsPendingMax?: number;
  /** Called when storage fails for good: the group has stopped (fail-stop). */
  readonly onFatal?: (error: unknown) => void;
  /**
   * Called once with a broken invariant (an AssertionError from the core or the state machine, or
   * any error without a stable code, which only a bug throws) after the group stopped and refused
   * everything pending. The default rethrows it outside every promise chain, so the process
   * crashes (house rule: never go on in a state known to be wrong); tests and the simulator pass
   * their own to observe it.
   */
  readonly crash?: (error: unknown) => void;
  /** Called when the role or the known leader changes. */
  readonly onSoftState?: (soft: SoftState) => void;
  /**
   * Whether this node's own link to `peer` is up (the transport's view): a follower whose link to
   * its leader is down refuses reads and handed-over writes at once. Without it, links count as up.
   */
  readonly peerConnected?: (peer: NodeId) => boolean;
  /** Snapshots: without them the log is never compacted and no snapshot is sent or installed. */
  readonly snapshots?: {
    readonly service: GroupSnapshots;
    /** When to take a snapshot (and compact the log): a floor, a share of the state, a ceiling. */
    readonly interval: SnapshotInterval;
    /**
     * Streams a stored snapshot to the peer the message names: `stream` yields the bytes for the
     * peer's {@link RaftGroup.receiveSnapshot}, in any pieces the transport likes.
     */
    readonly send: (message: SnapshotMessage, stream: () => AsyncIterable<Uint8Array>) => Promise<void>;
  };
}

/** A wait for every voting member to hold an entry (the write concern "all"). */
interface AllVotersWaiter {
  readonly index: number;
  readonly resolve: () => void;
  readonly reject: (error: NodeError) => void;
  readonly cancelTimer: Cancel;
}

const storageCodes = new Set(["ERR_NO_SPACE"]);

/**
 * Whether `error` is a bug rather than an expected failure. Expected failures (storage, I/O) are
 * typed and carry a stable string `code`; an AssertionError is a broken invariant by definition,
 * and an error without a code (a TypeError, say) is a bug whose damage nobody can bound.
 */
function isBrokenInvariant(error: unknown): boolean {
  if (error instanceof AssertionError) return true;
  return !(error instanceof Error && "code" in error && typeof error.code === "string");
}

/** The default crash hook: a throw outside every promise chain ends the process (uncaughtException). */
function crashProcess(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

/** The data bytes of the entries in (`afterIndex`, `throughIndex`]. */
function sumDataBytes(entries: readonly Entry[], afterIndex: number, throughIndex: number): number {
  let total = 0;
  for (const e of entries) if (e.index > afterIndex && e.index <= throughIndex) total += e.data.length;
  return total;
}

/** A running member of one Raft group. */
export class RaftGroup<R> {
  readonly #options: RaftGroupOptions<R>;
  readonly #raw: RawNode;
  readonly #env: Env;
  readonly #proposals: ProposalTracker<R>;
  readonly #reads: ReadBarrier;
  #lastReadIndex: LogIndex | undefined;
  #readRoundsAnswered = 0;
  readonly #allVotersWaiters = new Set<AllVotersWaiter>();
  #soft: SoftState;
  /** The last leader this member knew of (itself included), named when it cannot reach one now. */
  #lastKnownLeaderId: NodeId | null;
  #appliedIndex: number;
  /** Data bytes of the log after the last snapshot (the loaded tail plus what was applied since). */
  #logBytesSinceSnapshot = 0;
  #running = false;
  #stopped = false;
  /** Why the group stopped for good, if it did: a storage failure, or a broken invariant (a bug). */
  #fatal: "ERR_STORAGE_FAILED" | "ERR_INTERNAL" | undefined;
  #noSpace = false;
  #cancelTick: Cancel = () => {};
  #idle: Promise<void> = Promise.resolve();
  /**
   * When this member last had contact with a leader: as a follower, its last append, heartbeat or
   * snapshot; as a leader, the last time a quorum acknowledged it (see #quorumContactMs).
   */
  #lastLeaderContactMs: number | null = null;
  /** The term of the last Ready's hard state: the term this member's role belongs to. */
  #term: number;
  /** As leader: when each peer last answered an append or heartbeat of this term. */
  readonly #peerAckMs = new Map<NodeId, number>();
  /**
   * The quorum's acknowledgement time as of the last ack and configuration it was computed from
   * (see #quorumContactMs; every request asks, acks arrive once per heartbeat or append round).
   */
  #quorumAck: { readonly voters: readonly NodeId[]; readonly acks: number; readonly ms: number } | undefined;
  /** Counts changes to #peerAckMs, so #quorumAck knows when it is stale. */
  #peerAcks = 0;
  /** When each peer was last heard from at all (votes included): whether a majority is in reach. */
  readonly #peerHeardMs = new Map<NodeId, number>();
  /** Requests waiting for an election to give this member a leader (see {@link awaitLeader}). */
  readonly #leaderWaiters = new Set<() => void>();
  /** Counters and latency histograms of this group, for /metrics. */
  readonly metrics = new GroupMetrics();
  /** The snapshot capture in progress, if any (a send of that snapshot waits for its file). */
  #capturing: Promise<SnapshotMeta | undefined> | undefined;

  private constructor(options: RaftGroupOptions<R>, raw: RawNode, appliedIndex: number) {
    this.#options = options;
    this.#env = options.env;
    this.#raw = raw;
    this.#appliedIndex = appliedIndex;
    this.#proposals = new ProposalTracker(options.env, this.metrics, {
      timeoutMs: options.proposalTimeoutMs ?? 5_000,
      pendingMax: options.proposalsPendingMax ?? 10_000,
    });
    this.#reads = new ReadBarrier({
      env: options.env,
      metrics: this.metrics,
      readIndex: (context) => raw.readIndex(context),
      kick: () => this.#kick(),
      appliedIndex: () => this.#appliedIndex,
      stopped: () => this.#stopped,
      memberId: raw.id,
      timeoutMs: options.readTimeoutMs ?? 5_000,
      pendingMax: options.readsPendingMax ?? 10_000,
    });
    const status = raw.status();
    this.#soft = { role: status.role, leaderId: status.leaderId };
    this.#lastKnownLeaderId = status.leaderId;
    this.#term = status.term;
  }

  /** Loads the group's persisted state, builds its core and starts ticking. */
  static async open<R>(options: RaftGroupOptions<R>): Promise<RaftGroup<R>> {
    const persisted = await options.storage.load();
    const applied = options.stateMachine.appliedIndex();
    const snapshotIndex = persisted?.snapshot?.index ?? 0;
    // Applied entries were committed, so the commit index is at least the applied index even when
    // the stored commit index lags (it is not written on every change).
    const raw = new RawNode(
      { ...options.raft, random: options.env.random },
      persisted === undefined
        ? undefined
        : {
            ...persisted,
            hardState: {
              ...persisted.hardState,
              commitIndex: logIndex(Math.max(persisted.hardState.commitIndex, applied)),
            },
            ...(applied > snapshotIndex ? { appliedIndex: applied } : {}),
          },
    );
    const group = new RaftGroup(options, raw, Math.max(applied, snapshotIndex));
    if (snapshotIndex > 0) options.snapshots?.service.holdBase(snapshotIndex);
    // Entries after the applied index are counted when they are applied again, not here too.
    group.#logBytesSinceSnapshot = sumDataBytes(persisted?.entries ?? [], snapshotIndex, applied);
    group.#scheduleTick();
    return group;
  }

  /** This member's id. */
  get id(): NodeId {
    return this.#raw.id;
  }

  /** The latest known role and leader. */
  /**
   * The highest index a ReadIndex round learned (the leader's commit index when it confirmed the
   * round), before this node applied it or not: how far a node that lags has to go.
   */
  get lastReadIndex(): LogIndex | undefined {
    return this.#lastReadIndex;
  }

  /** How many ReadIndex rounds the core has answered here (a check can tell whether one came back). */
  get readRoundsAnswered(): number {
    return this.#readRoundsAnswered;
  }

  get softState(): SoftState {
    return this.#soft;
  }

  /** The index of the last applied entry. */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /**
   * Milliseconds since this member last had contact with a leader, or null if never: how stale its
   * local state may be. A leader counts from the last time a quorum acknowledged it, so a leader
   * cut off from its followers (not yet deposed by check-quorum) or deposed reports its real age,
   * not 0.
   */
  leaderContactAgeMs(): number | null {
    const now = this.#env.monotonicMs();
    // Whole milliseconds: the monotonic clock has fractions, the HTTP API's schema says integer.
    if (this.#soft.role === "leader") return Math.floor(now - this.#quorumContactMs());
    return this.#lastLeaderContactMs === null ? null : Math.floor(now - this.#lastLeaderContactMs);
  }

  /**
   * Why a request that needs a leader would fail here now, or undefined when a leader is within
   * reach: none is known (an election, a restart that has not heard from one yet), none has been
   * heard from for an election timeout (a partition, a paused leader), or this node's link to it is
   * down; as leader, no majority acknowledged it for an election timeout (check-quorum deposes it
   * soon). The error is ERR_UNAVAILABLE (nothing was done) naming the leader this member last
   * knew, so a request fails at once instead of waiting out its timeout.
   */
  leaderUnavailable(): NodeError | undefined {
    const electionTimeoutMs = this.#options.raft.electionTimeoutTicks * this.#options.tickIntervalMs;
    const last = this.#lastKnownLeaderId;
    const unavailable = (why: string) =>
      new NodeError("ERR_UNAVAILABLE", `${why}; retry shortly or on another node`, last);
    const leaderId = this.#soft.leaderId;
    if (leaderId === null)
      return unavailable(`no leader is known${last === null ? "" : ` (the last was node ${last})`}`);
    const ageMs = this.leaderContactAgeMs();
    if (ageMs === null || ageMs > electionTimeoutMs) {
      return unavailable(
        this.#soft.role === "leader"
          ? "this leader has not heard from a majority for an election timeout"
          : `no word from the leader (node ${leaderId}) for an election timeout`,
      );
    }
    if (leaderId !== this.#raw.id && this.#options.peerConnected?.(leaderId) === false)
      return unavailable(`the link to the leader (node ${leaderId}) is down`);
    return undefined;
  }

  /**
   * Resolves with why no leader is in reach ({@link leaderUnavailable}), or undefined once one is.
   * A member that has heard from a majority of the voters (itself included) within an election
   * timeout is on the side that can elect a leader, so it waits up to an election timeout for one
   * (a leader killed or cut off: the others elect a new one within about that long, and a request
   * that waits is answered instead of failing and retrying into the same election); a member that
   * cannot hear a majority is cut off and gets its answer at once.
   */
  async awaitLeader(): Promise<NodeError | undefined> {
    const unreachable = this.leaderUnavailable();
    const electionTimeoutMs = this.#options.raft.electionTimeoutTicks * this.#options.tickIntervalMs;
    const ageMs = this.leaderContactAgeMs();
    // Only an election gives a leader: a known, live leader behind a broken link is no reason to wait.
    const electing = this.#soft.leaderId === null || ageMs === null || ageMs > electionTimeoutMs;
    if (unreachable === undefined || this.#soft.role === "leader" || !electing || !this.#majorityHeard())
      return unreachable;
    await new Promise<void>((resolve) => {
      const cancel = this.#env.after(electionTimeoutMs, () => {
        this.#leaderWaiters.delete(done);
        resolve();
      });
      const done = () => {
        cancel();
        resolve();
      };
      this.#leaderWaiters.add(done);
    });
    return this.#stoppedRefusal() ?? this.leaderUnavailable();
  }

  /** Whether a majority of the voters (this member included) was heard from within an election timeout. */
  #majorityHeard(): boolean {
    const electionTimeoutMs = this.#options.raft.electionTimeoutTicks * this.#options.tickIntervalMs;
    const now = this.#env.monotonicMs();
    const voters = this.#raw.conf().voters;
    const heard = voters.filter(
      (id) =>
        id === this.#raw.id ||
        now - (this.#peerHeardMs.get(id) ?? Number.NEGATIVE_INFINITY) <= electionTimeoutMs,
    );
    return heard.length > voters.length / 2;
  }

  /** Wakes the requests waiting for a leader (one is known now, or the group stopped). */
  #wakeLeaderWaiters(): void {
    const waiters = [...this.#leaderWaiters];
    this.#leaderWaiters.clear();
    for (const wake of waiters) wake();
  }

  /**
   * As leader: the latest time by which a majority of the voters had acknowledged this leader
   * (itself counted as now), and never before its election, which a majority's votes confirmed.
   */
  #quorumContactMs(): number {
    const now = this.#env.monotonicMs();
    const elected = this.#lastLeaderContactMs ?? now;
    const voters = this.#raw.conf().voters;
    let cached = this.#quorumAck;
    if (cached === undefined || cached.voters !== voters || cached.acks !== this.#peerAcks) {
      // This member counts as acknowledged now: as +Infinity here (it sorts first either way), so
      // the result does not depend on the clock and holds until the next ack.
      const contacts = voters
        .map((id) =>
          id === this.#raw.id
            ? Number.POSITIVE_INFINITY
            : (this.#peerAckMs.get(id) ?? Number.NEGATIVE_INFINITY),
        )
        .sort((a, b) => b - a);
      const ms = contacts[Math.floor(voters.length / 2)] ?? Number.NEGATIVE_INFINITY;
      cached = { voters, acks: this.#peerAcks, ms };
      this.#quorumAck = cached;
    }
    const quorumContact = cached.ms === Number.POSITIVE_INFINITY ? now : cached.ms;
    return Math.max(elected, quorumContact);
  }

  /** The core's status, for the dashboard and metrics. */
  status(): RaftStatus {
    return this.#raw.status();
  }

  /** Feeds a message from a peer. Messages for another member or group are dropped. */
  receive(message: Message): void {
    if (
      this.#stopped ||
      this.#fatal !== undefined ||
      message.to !== this.#raw.id ||
      message.groupId !== this.#options.raft.groupId
    )
      return;
    this.#peerHeardMs.set(message.from, this.#env.monotonicMs());
    // A message from an older term's leader proves nothing about the current one.
    if (message.term >= this.#term) {
      if (message.type === "append" || message.type === "heartbeat" || message.type === "snapshot") {
        this.#lastLeaderContactMs = this.#env.monotonicMs();
      } else if (
        this.#soft.role === "leader" &&
        message.term === this.#term &&
        (message.type === "append-response" || message.type === "heartbeat-response")
      ) {
        this.#peerAckMs.set(message.from, this.#env.monotonicMs());
        this.#peerAcks++;
      }
    }
    this.#raw.step(message);
    // An append response may have moved a voter's match index past what a waiter needs.
    if (message.type === "append-response") this.#checkAllVoters();
    this.#kick();
  }

  /** Tells the core a peer could not be reached (its queue overflowed or its connection is down). */
  reportUnreachable(peer: NodeId): void {
    if (this.#stopped) return;
    this.#raw.reportUnreachable(peer);
  }

  /** Starts an election now (used by tests and by an operator's "campaign"). */
  campaign(): void {
    if (this.#stopped) return;
    this.#raw.campaign();
    this.#kick();
  }

  /**
   * Proposes `data`; resolves with the state machine's result once the entry is applied here.
   * Rejects with NodeError: ERR_NOT_LEADER or ERR_UNAVAILABLE (not applied: retry is safe),
   * ERR_TIMEOUT (outcome unknown), ERR_NO_SPACE, ERR_STORAGE_FAILED, ERR_SHUTTING_DOWN, or
   * ERR_INTERNAL (a broken invariant stopped the group; the process is crashing).
   */
  propose(data: Uint8Array): Promise<R | undefined> {
    return this.proposeWithIndex(data).then(({ result }) => result);
  }

  /** {@link propose}, also answering the log index of the entry that carried `data`. */
  proposeWithIndex(data: Uint8Array): Promise<{ readonly result: R | undefined; readonly index: LogIndex }> {
    const refusal = this.#refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    // A leader cut off from its majority would append an entry that cannot commit and let the
    // client wait for its timeout, with an unknown outcome; refused here, nothing was done.
    const cutOff = this.#soft.role === "leader" ? this.leaderUnavailable() : undefined;
    if (cutOff !== undefined) return Promise.reject(cutOff);
    if (this.#proposals.full) {
      return Promise.reject(new NodeError("ERR_UNAVAILABLE", "too many proposals in flight"));
    }
    const result = this.#raw.propose(data);
    if (!result.ok) {
      if (result.reason === "not-leader") {
        return Promise.reject(
          new NodeError("ERR_NOT_LEADER", "this node is not the leader", result.leaderHint),
        );
      }
      return Promise.reject(new NodeError("ERR_UNAVAILABLE", `proposal refused: ${result.reason}`));
    }
    const index = result.index;
    return this.#track(index, result.term).then((applied) => ({ result: applied, index }));
  }

  /**
   * Resolves once every voting member has the entry at `index` on disk: by the leader's progress,
   * each voter's match index (which a follower reports only after persisting) and the leader's
   * own persisted index cover it. This is the write concern "all", waited for after the entry
   * committed on a majority. Rejects with ERR_WRITE_CONCERN, naming how many voters have it, when
   * `timeoutMs` passes or this member stops leading first (then the count is the majority the
   * commit proved, a lower bound); or with the stopped group's error.
   */
  waitReplicatedToAll(index: number, timeoutMs: number): Promise<void> {
    const refusal = this.#stoppedRefusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    return new Promise<void>((resolve, reject) => {
      const waiter: AllVotersWaiter = {
        index,
        resolve,
        reject,
        cancelTimer: this.#env.after(timeoutMs, () => {
          if (!this.#allVotersWaiters.delete(waiter)) return;
          const count = this.#votersWith(index);
          reject(
            count === undefined
              ? this.#leadershipLostWaiting()
              : new NodeError(
                  "ERR_WRITE_CONCERN",
                  `the write is durable on ${count.withEntry} of ${count.voters} voting members, not all of them within ${timeoutMs} ms; it is committed (a majority has it)`,
                  null,
                  { voterCount: count },
                ),
          );
        }),
      };
      this.#allVotersWaiters.add(waiter);
      this.#checkAllVoters();
    });
  }

  /** How many voting members have the entry at `index` on disk, by this leader's progress; undefined when not leading. */
  #votersWith(index: number): VoterCount | undefined {
    const status = this.#raw.status();
    if (status.role !== "leader") return undefined;
    const voters = status.peers.filter((p) => p.voter);
    return { withEntry: voters.filter((p) => p.matchIndex >= index).length, voters: voters.length };
  }

  #leadershipLostWaiting(): NodeError {
    const voters = this.#raw.conf().voters.length;
    const majority = Math.floor(voters / 2) + 1;
    return new NodeError(
      "ERR_WRITE_CONCERN",
      `this node stopped leading before every voting member confirmed the write; it is committed, durable on at least ${majority} of ${voters} voting members`,
      null,
      { voterCount: { withEntry: majority, voters } },
    );
  }

  /** Settles the waits for every voter that are met, and fails them all once this member no longer leads. */
  #checkAllVoters(): void {
    if (this.#allVotersWaiters.size === 0) return;
    const status = this.#raw.status();
    const leading = status.role === "leader";
    const voterMatches = status.peers.filter((p) => p.voter).map((p) => p.matchIndex);
    for (const waiter of this.#allVotersWaiters) {
      if (leading && !voterMatches.every((match) => match >= waiter.index)) continue;
      this.#allVotersWaiters.delete(waiter);
      waiter.cancelTimer();
      if (leading) waiter.resolve();
      else waiter.reject(this.#leadershipLostWaiting());
    }
  }

  /**
   * Proposes a membership change (one server at a time); resolves once it is applied here.
   * Rejects with ERR_NOT_LEADER, ERR_UNAVAILABLE (another change pending, no commit in this term
   * yet, or an invalid change: the message says which) or ERR_TIMEOUT like {@link propose}.
   */
  proposeConfChange(change: ConfChange): Promise<void> {
    const refusal = this.#refusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    const result = this.#raw.proposeConfChange(change);
    if (!result.ok) {
      if (result.reason === "not-leader") {
        return Promise.reject(
          new NodeError("ERR_NOT_LEADER", "this node is not the leader", result.leaderHint),
        );
      }
      const detail = result.reason === "invalid-conf-change" ? `: ${result.detail}` : "";
      return Promise.reject(
        new NodeError("ERR_UNAVAILABLE", `membership change refused: ${result.reason}${detail}`),
      );
    }
    return this.#track(result.index, result.term).then(() => undefined);
  }

  /**
   * Asks the leader to hand leadership to `to` (brought up to date, then told to campaign).
   * Resolves when the request is accepted; the transfer itself completes asynchronously.
   */
  transferLeadership(to: NodeId): void {
    const refusal = this.#refusal();
    if (refusal !== undefined) throw refusal;
    const result = this.#raw.transferLeadership(to);
    if (!result.ok) {
      if (result.reason === "not-leader")
        throw new NodeError("ERR_NOT_LEADER", "this node is not the leader", result.leaderHint);
      throw new NodeError("ERR_UNAVAILABLE", `transfer refused: ${result.reason}`);
    }
    this.#kick();
  }

  /** Waits for the entry proposed at (index, term) to be applied, or to be superseded, or times out. */
  #track(index: LogIndex, term: number): Promise<R | undefined> {
    const promise = this.#proposals.track(index, term);
    this.#kick();
    return promise;
  }

  /**
   * Resolves once every write acknowledged before the call is applied here (ReadIndex, Raft
   * dissertation §6.4), so a read of local state afterwards is linearizable. Reads that arrive
   * while a round is in flight share the next round. Rejects with ERR_UNAVAILABLE or
   * ERR_NOT_LEADER (retry is safe), ERR_SHUTTING_DOWN, ERR_STORAGE_FAILED or ERR_INTERNAL.
   */
  readBarrier(): Promise<void> {
    const refusal = this.#stoppedRefusal();
    if (refusal !== undefined) return Promise.reject(refusal);
    if (this.leaderUnavailable() !== undefined) {
      return this.awaitLeader().then((unreachable) =>
        unreachable === undefined ? this.readBarrier() : Promise.reject(unreachable),
      );
    }
    if (this.#reads.full) {
      return Promise.reject(new NodeError("ERR_UNAVAILABLE", "too many reads in flight"));
    }
    return this.#reads.wait();
  }

  /** Stops ticking and processing; fails everything pending with ERR_SHUTTING_DOWN. */
  async stop(): Promise<void> {
    if (this.#stopped) return this.#idle;
    this.#stopped = true;
    this.#cancelTick();
    this.#wakeLeaderWaiters();
    this.#failAll(new NodeError("ERR_SHUTTING_DOWN", "the node is stopping"));
    await this.#idle;
  }

  /**
   * How far this member's local state may be behind, for a read served from it without a leader
   * round trip (`consistency=stale`). Throws NodeError (ERR_STORAGE_FAILED, ERR_INTERNAL or
   * ERR_SHUTTING_DOWN) once the group stopped: its state no longer follows the log, and a read of
   * it could be stale without bound.
   */
  staleness(): { readonly appliedIndex: number; readonly leaderContactAgeMs: number | null } {
    const refusal = this.#stoppedRefusal();
    if (refusal !== undefined) throw refusal;
    // A member that may lack entries it acknowledged (state it discarded, a damaged tail) could
    // answer from a state that misses acknowledged writes: until a leader made it whole, only
    // ReadIndex reads (which wait for the leader's commit) are safe here.
    if (this.#raw.votesWithheld())
      throw new NodeError(
        "ERR_UNAVAILABLE",
        "this node is recovering lost or damaged data from the leader; read with consistency=linearizable or from another node",
      );
    return { appliedIndex: this.#appliedIndex, leaderContactAgeMs: this.leaderContactAgeMs() };
  }

  #refusal(): NodeError | undefined {
    const stopped = this.#stoppedRefusal();
    if (stopped !== undefined) return stopped;
    if (this.#noSpace)
      return new NodeError("ERR_NO_SPACE", "the disk is full; writes resume once space is freed");
    return undefined;
  }

  /** Why this group serves nothing at all any more (reads included), if it stopped. */
  #stoppedRefusal(): NodeError | undefined {
    if (this.#fatal === "ERR_STORAGE_FAILED")
      return new NodeError("ERR_STORAGE_FAILED", "storage failed; this node stopped accepting writes");
    if (this.#fatal === "ERR_INTERNAL")
      return new NodeError("ERR_INTERNAL", "a broken invariant stopped this node");
    if (this.#stopped) return new NodeError("ERR_SHUTTING_DOWN", "the node is stopping");
    return undefined;
  }

  /**
   * Fails every read still waiting once no leader is within reach (see {@link leaderUnavailable}):
   * a round sent to a leader that is gone would otherwise wait out the read timeout. A read has no
   * effect, so failing it is always safe.
   */
  #maybeFailReads(): void {
    if (this.#reads.idle) return;
    const error = this.leaderUnavailable();
    if (error !== undefined) this.#reads.failAll(error);
  }

  #scheduleTick(): void {
    if (this.#stopped) return;
    this.#cancelTick = this.#env.after(this.#options.tickIntervalMs, () => {
      if (this.#stopped) return;
      this.#raw.tick();
      this.#kick();
      this.#maybeFailReads();
      this.#scheduleTick();
    });
  }

  /** Runs the ready loop unless it is already running; it drains every Ready the core has. */
  #kick(): void {
    if (this.#running || this.#stopped || this.#fatal !== undefined) return;
    if (!this.#raw.hasReady()) return;
    this.#running = true;
    this.#idle = this.#loop();
  }

  async #loop(): Promise<void> {
    try {
      while (!this.#stopped && this.#fatal === undefined && this.#raw.hasReady()) {
        await this.#handleReady(this.#raw.ready());
      }
    } catch (error) {
      this.#stopOn(error);
    } finally {
      this.#running = false;
    }
  }

  async #handleReady(rd: Ready): Promise<void> {
    let deposed = false;
    if (rd.softState !== undefined) {
      const wasLeader = this.#soft.role === "leader";
      deposed = wasLeader && rd.softState.role !== "leader";
      // A deposed leader last knew a leader (itself) when a quorum last acknowledged it, unless it
      // has heard from a new leader since.
      if (deposed)
        this.#lastLeaderContactMs = Math.max(this.#lastLeaderContactMs ?? 0, this.#quorumContactMs());
      if (!wasLeader && rd.softState.role === "leader") {
        this.#lastLeaderContactMs = this.#env.monotonicMs();
        this.#peerAckMs.clear();
        this.#peerAcks++;
      }
      // A leader known after none, none after one, or another one: each counts as a change.
      if (rd.softState.leaderId !== this.#soft.leaderId) this.metrics.leaderChanges++;
      this.#soft = rd.softState;
      if (rd.softState.leaderId !== null) {
        this.#lastKnownLeaderId = rd.softState.leaderId;
        this.#wakeLeaderWaiters();
      }
      this.#options.onSoftState?.(rd.softState);
    }
    if (rd.hardState !== undefined) this.#term = rd.hardState.term;
    // A leader's new entries go out at once, before its own disk write starts, since the
    // followers' round trip is the longer path to a commit; so do heartbeats (ReadIndex rounds)
    // and votes. Only an append that merely updates the commit index waits for the end of this
    // turn of the event loop, behind the apply and the client replies it unblocks.
    this.#dispatch(
      rd.messages,
      rd.messages.some((m) => m.type !== "append" || m.entries.length > 0),
    );
    const persisting =
      rd.entries.length > 0 || rd.hardState !== undefined || rd.snapshot !== undefined
        ? this.#persistTimed(rd)
        : undefined;
    // Committed entries are already durable here (the core hands out only persisted ones), so
    // applying them overlaps with persisting this batch's new entries, unless a snapshot must be
    // installed first. The apply starts after the disk write was handed to the OS: its CPU work
    // (a millisecond or more for a large batch) must not delay the write.
    const overlap = rd.snapshot === undefined && rd.committedEntries.length > 0;
    const applying = overlap ? this.#applyTimed(rd.committedEntries) : undefined;
    // Observed below; this keeps a failure meanwhile from counting as an unhandled rejection.
    applying?.catch(() => undefined);
    if (persisting !== undefined) {
      try {
        await persisting;
      } catch (error) {
        await applying?.catch(() => undefined);
        throw error;
      }
    }
    // Acknowledgements and votes: a commit or an election waits for them. When this batch changed
    // the term or vote, the core held back everything here, a leader's snapshot messages included.
    this.#dispatch(rd.messagesAfterPersist, true);
    if (applying !== undefined) await applying;
    else if (rd.committedEntries.length > 0) await this.#applyTimed(rd.committedEntries);

    // Only after this batch's committed entries applied: the step that deposes a leader may also
    // commit its entries (a leader always steps down in the step that commits its own removal).
    if (deposed) this.#proposals.failAbove(this.#raw.status().commitIndex);

    for (const readState of rd.readStates) {
      if (readState.index > (this.#lastReadIndex ?? 0)) this.#lastReadIndex = readState.index;
      this.#readRoundsAnswered++;
    }
    this.#reads.answered(rd.readStates);
    this.#reads.serve();
    this.#raw.advance(rd);
    // The leader's own copy counts once persisted (advance), and a role or membership change
    // settles waits too.
    this.#checkAllVoters();
    this.#maybeSnapshot();
  }

  /**
   * Receives a snapshot streamed by the leader: stores it durably, then steps its message into the
   * core, which decides whether to install it (the next Ready then carries it). `stream` is what
   * the leader's snapshot sender produced (snapshot-stream.ts), in pieces of any size.
   */
  async receiveSnapshot(message: SnapshotMessage, stream: AsyncIterable<Uint8Array>): Promise<void> {
    const snapshots = this.#options.snapshots;
    if (snapshots === undefined || this.#stopped)
      throw new NodeError("ERR_UNAVAILABLE", "this node takes no snapshots");
    // The file's chunks are units of the state format: rebuild them whatever pieces arrived.
    await snapshots.service.receive(message.snapshot, decodeSnapshotStream(stream));
    this.receive(message);
    // The core's log now starts at the snapshot (the next Ready installs it), or it refused it.
    if (this.#raw.snapshotIndex() !== message.snapshot.index) snapshots.service.letGo(message.snapshot.index);
  }

  /**
   * Hands a batch of the core's messages to the network. A snapshot message carries only the
   * snapshot's name, so it never goes out bare, whichever list of the Ready it came in (the core
   * moves a leader's pending messages into `messagesAfterPersist` when the term or vote changes in
   * the same batch): it goes through the snapshot sender, which streams the stored file with it.
   */
  #dispatch(messages: readonly Message[], urgent: boolean): void {
    if (messages.length === 0) return;
    if (!messages.some((m) => m.type === "snapshot")) {
      this.#options.sender.send(messages, urgent);
      return;
    }
    const plain = messages.filter((m) => m.type !== "snapshot");
    if (plain.length > 0) this.#options.sender.send(plain, urgent);
    for (const m of messages) if (m.type === "snapshot") this.#sendSnapshot(m);
  }

  /**
   * Streams the stored snapshot a message names, then tells the core how it went. A base without a
   * file (compacted to the state store) has nothing to stream: a capture exports the state now,
   * which moves the base to a file, and the send is reported failed so that the core sends the new
   * base next time (a capture running meanwhile makes every send wait for it).
   */
  #sendSnapshot(message: SnapshotMessage): void {
    const snapshots = this.#options.snapshots;
    const report = (ok: boolean) => {
      if (this.#stopped || this.#fatal !== undefined) return;
      this.#raw.reportSnapshot(message.to, ok, message.snapshot.index);
      this.#kick();
    };
    if (snapshots === undefined) {
      report(false);
      return;
    }

    const run = async () => {
      await this.#capturing?.catch(() => undefined);
      if (!(await snapshots.service.has(message.snapshot.index))) {
        if (this.#capturing === undefined && !this.#stopped && this.#fatal === undefined)
          this.#capture(snapshots.service).catch(() => undefined);
        throw new NodeError("ERR_UNAVAILABLE", "the base has no snapshot file yet: capturing one");
      }
      const stored = await snapshots.service.open(message.snapshot.index);
      await snapshots.send(message, () => encodeSnapshotStream(stored.chunks()));
    };
    run().then(
      () => report(true),
      () => report(false),
    );
  }

  /**
   * Once the log since the base is due for compaction (snapshot-due.ts), compacts it to the state
   * store's durable applied index, recording only the new base's meta (GroupSnapshots.compactToState):
   * the state store holds the data, so no state is exported or written. Runs beside the ready loop;
   * at most one compaction or capture at a time.
   */
  #maybeSnapshot(): void {
    const snapshots = this.#options.snapshots;
    if (snapshots === undefined || this.#capturing !== undefined) return;
    const base = this.#raw.snapshotIndex();
    const log = { entries: this.#appliedIndex - base, bytes: this.#logBytesSinceSnapshot };
    if (!snapshotDue(snapshots.interval, log)) return;
    const point = compactionPoint(
      snapshots.interval,
      { ...log, base, applied: this.#appliedIndex },
      this.#followerMatchMin(),
    );
    if (point !== undefined) this.#compactToState(snapshots.service, point);
  }

  /** On a leader, the lowest index a follower (voter or learner) is known to have; else undefined. */
  #followerMatchMin(): number | undefined {
    if (this.#soft.role !== "leader") return undefined;
    let min: number | undefined;
    for (const peer of this.#raw.status().peers)
      if (peer.id !== this.id && (min === undefined || peer.matchIndex < min)) min = peer.matchIndex;
    return min;
  }

  /**
   * Starts a compaction to the state store, up to `point` (none and no capture may run):
   * #maybeSnapshot's.
   */
  #compactToState(service: GroupSnapshots, point: number): void {
    const bytesBefore = this.#logBytesSinceSnapshot;
    this.#logBytesSinceSnapshot = 0;
    const compaction = (async () => {
      const durable = await service.durableAppliedIndex();
      const result =
        durable === undefined || this.#stopped || this.#fatal !== undefined
          ? undefined
          : this.#raw.compact(logIndex(Math.min(durable, point)));
      if (!result?.ok) {
        // Nothing compacted (the store has not applied past the base yet): the log is as it was.
        this.#logBytesSinceSnapshot += bytesBefore;
        return undefined;
      }
      await service.compactToState(result.snapshot);
      this.metrics.logCompactions++;
      await this.#options.storage.compact(result.snapshot);
      return result.snapshot;
    })();
    this.#runAside(compaction, () => {
      this.#logBytesSinceSnapshot += bytesBefore;
    });
  }

  /**
   * Starts a capture (none may run): a snapshot file of the state as of now, which becomes the
   * base. For a follower behind a base without a file, or a backup.
   */
  #capture(service: GroupSnapshots): Promise<SnapshotMeta | undefined> {
    this.#logBytesSinceSnapshot = 0;
    // The export and the core's compaction happen together, synchronously: both see one applied index.
    const capture = service
      .capture((index) => {
        const result = this.#raw.compact(logIndex(index));
        if (result.ok) return result.snapshot;
        // Nothing applied in the store since the base: the file describes the base itself.
        return index === this.#raw.snapshotIndex() ? this.#raw.snapshot() : undefined;
      })
      .then(async (meta) => {
        if (meta === undefined) return meta;
        this.metrics.snapshotsTaken++;
        this.metrics.snapshotBytesWritten += service.storedBytes(meta.index) ?? 0;
        await this.#options.storage.compact(meta);
        return meta;
      });
    this.#runAside(capture);
    return capture;
  }

  /**
   * Makes `work` (a compaction or a capture) the one that runs: sends and the next one wait for it.
   * A full disk lets a later one try again (`onNoSpace` first); any other failure stops the group.
   */
  #runAside(work: Promise<SnapshotMeta | undefined>, onNoSpace?: () => void): void {
    this.#capturing = work;
    work
      .catch((error: unknown) => {
        const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
        if (code === "ERR_NO_SPACE") onNoSpace?.();
        else this.#stopOn(error);
      })
      .finally(() => {
        this.#capturing = undefined;
      });
  }

  /**
   * A backup (docs/operations.md): once every write acknowledged before the call is applied here
   * and in the state store, captures a snapshot through the same path as the periodic one (so the
   * log is compacted to it) and hands out that stored file's bytes, verified and kept from
   * retention until `read` finishes. When nothing was applied since the last snapshot, that one is
   * handed out. Rejects as {@link readBarrier} does, or ERR_UNAVAILABLE without snapshots.
   */
  async backup(): Promise<SnapshotBackup> {
    const snapshots = this.#options.snapshots;
    if (snapshots === undefined) throw new NodeError("ERR_UNAVAILABLE", "this node takes no snapshots");
    await this.readBarrier();
    // Bounded: each pass waits for the capture that ran, and the ready loop starts one only when due.
    for (let pass = 0; this.#capturing !== undefined && pass < 8; pass++)
      await this.#capturing.catch(() => undefined);
    await this.#options.stateMachine.settle?.();
    const refusal = this.#stoppedRefusal();
    if (refusal !== undefined) throw refusal;
    const captured =
      this.#capturing === undefined ? await this.#capture(snapshots.service) : await this.#capturing;
    const index = captured?.index ?? this.#raw.snapshotIndex();
    if (index === 0) throw new NodeError("ERR_UNAVAILABLE", "nothing applied yet: no snapshot to save");
    return snapshots.service.backup(index);
  }

  async #persistTimed(rd: Ready): Promise<void> {
    const startedMs = this.#env.monotonicMs();
    await this.#persist(rd);
    this.metrics.persistMs.observe(this.#env.monotonicMs() - startedMs);
  }

  /** Persists a Ready's writes; a full disk is retried until space is freed, any other failure is fatal. */
  async #persist(rd: Ready): Promise<void> {
    if (rd.snapshot !== undefined) {
      // Raft §7: the snapshot's data replaces the state machine before anything after it applies.
      const snapshots = this.#options.snapshots;
      if (snapshots === undefined)
        throw new NodeError("ERR_STORAGE_FAILED", "a snapshot arrived but this node cannot install one");
      await this.#options.stateMachine.settle?.();
      await snapshots.service.install(rd.snapshot);
      snapshots.service.holdBase(rd.snapshot.index);
      // The log after the installed snapshot starts empty: nothing applied here is above it.
      this.#logBytesSinceSnapshot = 0;

      this.#appliedIndex = Math.max(this.#appliedIndex, rd.snapshot.index);
    }

    for (let attempt = 0; ; attempt++) {
      try {
        await this.#options.storage.persist({
          ...(rd.snapshot !== undefined ? { snapshot: rd.snapshot } : {}),
          entries: rd.entries,
          ...(rd.hardState !== undefined ? { hardState: rd.hardState } : {}),
        });
        this.#noSpace = false;
        return;
      } catch (error) {
        const code = typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
        if (typeof code !== "string" || !storageCodes.has(code) || this.#stopped) throw error;
        // Out of space: nothing of this batch is acknowledged; refuse new writes and try again.
        this.#noSpace = true;
        await new Promise<void>((resolve) =>
          this.#env.after(Math.min(1000, 50 * 2 ** Math.min(attempt, 5)), resolve),
        );
      }
    }
  }

  async #applyTimed(entries: readonly Entry[]): Promise<void> {
    const startedMs = this.#env.monotonicMs();
    await this.#apply(entries);
    this.metrics.applyMs.observe(this.#env.monotonicMs() - startedMs);
    this.metrics.entriesApplied += entries.length;
  }

  async #apply(entries: readonly Entry[]): Promise<void> {
    const results = await this.#options.stateMachine.apply(entries);
    entries.forEach((entry, i) => {
      this.#appliedIndex = entry.index;
      this.#logBytesSinceSnapshot += entry.data.length;
      this.#proposals.applied(entry, results[i]);
    });
  }

  /**
   * Stops the group for good on a failure of the loop or of a snapshot capture: an expected storage
   * failure stops it (fail-stop: the process lives on and says why), a broken invariant crashes.
   */
  #stopOn(error: unknown): void {
    if (this.#fatal !== undefined) return;
    const brokenInvariant = isBrokenInvariant(error);
    this.#fatal = brokenInvariant ? "ERR_INTERNAL" : "ERR_STORAGE_FAILED";
    this.#cancelTick();
    this.#failAll(
      brokenInvariant
        ? new NodeError("ERR_INTERNAL", "a broken invariant stopped this node", null, { cause: error })
        : new NodeError("ERR_STORAGE_FAILED", "storage failed; this node stopped", null, { cause: error }),
    );
    if (brokenInvariant) (this.#options.crash ?? crashProcess)(error);
    else this.#options.onFatal?.(error);
  }

  #failAll(error: NodeError): void {
    this.#proposals.failAll(error);
    this.#reads.failAll(error);
    for (const w of this.#allVotersWaiters) {
      w.cancelTimer();
      w.reject(error);
    }
    this.#allVotersWaiters.clear();
  }
}
