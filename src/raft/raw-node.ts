// The Raft consensus core (etcd's RawNode design): a deterministic state machine driven by tick(),
// step() and proposals, which hands its I/O out as Ready batches. Protocol rules cite the Raft paper
// (Ongaro & Ousterhout 2014) by section and the dissertation (Ongaro 2014) where they come from there.
import { assert, assertNever } from "../util/assert.js";
import {
  applyConfChange,
  bootstrapChanges,
  type ConfChange,
  ConfHistory,
  encodeConfChanges,
  mustDecodeConfChanges,
} from "./conf-change.js";
import type { PersistedState, RaftConfig } from "./config.js";
import type {
  AppendMessage,
  AppendResponseMessage,
  HeartbeatResponseMessage,
  Message,
  MessageBody,
  SnapshotMessage,
  VoteRequestMessage,
} from "./messages.js";
import { Progress } from "./progress.js";
import { committedIndex, hasQuorum, voteResult } from "./quorum.js";
import { entryBytes, entryHeaderBytes, RaftLog } from "./raft-log.js";
import { ReadOnly, type ReleasedRead } from "./read-only.js";
import type {
  CompactResult,
  ConfChangeResult,
  ProposeResult,
  RaftStatus,
  ReadIndexResult,
  ReadState,
  Ready,
  Role,
  SoftState,
  TransferResult,
} from "./ready.js";
import {
  type Entry,
  type HardState,
  type LogIndex,
  logIndex,
  type NodeId,
  type SnapshotMeta,
  type Term,
  term as toTerm,
} from "./types.js";

const defaultApplyBytesMax = 1 << 20;
const defaultUncommittedBytesMax = 64 << 20;
const defaultReadIndexPendingMax = 4096;
/**
 * A leader sends a follower an (empty) append at its first heartbeat response after this many
 * heartbeat intervals without one, so a lost append's commit index reaches it on an idle cluster
 * too: one small message a second per follower at the default 100 ms heartbeat. Intervals, not
 * responses: the heartbeats of ReadIndex rounds (thousands a second under a read load) would
 * otherwise add an append to every tenth round.
 */
const appendRefreshHeartbeats = 10;

/**
 * One member of one Raft group. Synchronous and deterministic: the same inputs (including the
 * injected random source) produce the same outputs. See {@link Ready} for the I/O contract.
 */
export class RawNode {
  readonly id: NodeId;
  readonly #cfg: RaftConfig;
  readonly #applyBytesMax: number;
  readonly #uncommittedBytesMax: number;

  #term: Term;
  #votedFor: NodeId | null;
  #leaderId: NodeId | null = null;
  #role: Role = "follower";
  readonly #log: RaftLog;
  readonly #confs: ConfHistory;
  #progress = new Map<NodeId, Progress>();
  #votes = new Map<NodeId, boolean>();

  #ticks = 0;
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  #leadTransferee: NodeId | null = null;
  /** Leader: bytes of entries above the commit index, kept incrementally (checked per proposal). */
  #uncommittedBytes = 0;
  /** Leader: appends are owed to followers (new entries, or a commit to announce). */
  #broadcastPending = false;
  #broadcastEmptyPending = false;

  // ReadIndex (dissertation §6.4): reads wait for a heartbeat round started after they arrived.
  readonly #readOnly: ReadOnly;

  #msgs: Message[] = [];
  #msgsAfterPersist: Message[] = [];
  #readStates: ReadState[] = [];
  #prevSoft: SoftState;
  #prevHard: HardState;
  #readyInFlight: Ready | null = null;
  /**
   * Entries up to here may have been acknowledged and then lost to a damaged log tail (see
   * PersistedState.tailLostIndexMax); null once a leader gave this member a log past it.
   */
  #votesWithheldThrough: LogIndex | null = null;
  /** Set while this member recovers from lost or discarded state (PersistedState.stateLost). */
  #stateLost = false;
  /**
   * Set while a member that lost its state (and with it the record of its votes) may not vote
   * yet: the terms its fellow voters reported since it restarted (`heard`), and once every voter
   * answered, the highest of them (`highest`), a bound on every term it may have voted in before
   * the loss. Lifted once its durable hard state is past that term, or spent at it.
   */
  #voteFence: { readonly heard: Map<NodeId, Term>; highest: Term | null } | null = null;

  /** Creates a member: a brand-new one when `persisted` is absent, else restarts from disk. */
  constructor(config: RaftConfig, persisted?: PersistedState) {
    assert(config.heartbeatTicks >= 1, "heartbeatTicks must be >= 1");
    assert(
      config.electionTimeoutTicks > config.heartbeatTicks,
      "electionTimeoutTicks must exceed heartbeatTicks",
    );
    assert(config.appendBytesMax >= 1, "appendBytesMax must be >= 1");
    this.id = config.id;
    this.#cfg = config;
    this.#applyBytesMax = config.applyBytesMax ?? defaultApplyBytesMax;
    this.#uncommittedBytesMax = config.uncommittedBytesMax ?? defaultUncommittedBytesMax;
    this.#readOnly = new ReadOnly(config.readIndexPendingMax ?? defaultReadIndexPendingMax);
    const hard: HardState = persisted?.hardState ?? {
      term: toTerm(0),
      votedFor: null,
      commitIndex: logIndex(0),
    };
    const snapshot: SnapshotMeta = persisted?.snapshot ?? {
      index: logIndex(0),
      term: toTerm(0),
      conf: config.conf,
    };
    let entries = persisted?.entries ?? [];
    let bootstrapped = false;
    if (persisted === undefined && (config.conf.voters.length > 0 || config.conf.learners.length > 0)) {
      // A brand-new group writes its initial configuration as entry 1 (term 0), identical on every
      // initial member and therefore committed, so a member added later learns it from the log.
      const data = encodeConfChanges(bootstrapChanges(config.conf));
      entries = [{ term: toTerm(0), index: logIndex(1), kind: "conf-change", data }];
      bootstrapped = true;
    }
    this.#term = hard.term;
    this.#votedFor = hard.votedFor;
    this.#log = new RaftLog(snapshot, entries, hard.commitIndex, persisted?.appliedIndex ?? snapshot.index);
    if (bootstrapped) this.#log.bootstrap(logIndex(1));
    this.#confs = new ConfHistory(snapshot.conf);
    for (const e of entries) {
      if (e.kind === "conf-change") this.#confs.append(e.index, mustDecodeConfChanges(e.data));
    }
    if (this.#log.lastTerm() > this.#term) {
      // A crash between writing a Ready's entries and its hard state (the documented order) can
      // leave entries of a term the hard state never reached. That term was learned from those very
      // entries, so no vote was cast in it (a vote is persisted in an earlier Ready): adopt it.
      this.#term = this.#log.lastTerm();
      this.#votedFor = null;
    }
    this.#applyConf();
    const lost = persisted?.tailLostIndexMax;
    if (lost !== undefined && lost > this.#log.lastIndex()) this.#votesWithheldThrough = lost;
    this.#stateLost = persisted?.stateLost === true;
    if (this.#stateLost) this.#voteFence = { heard: new Map(), highest: null };
    this.#prevHard = hard;
    this.#becomeFollower(this.#term, null);
    this.#prevSoft = { role: this.#role, leaderId: this.#leaderId };
  }

  // ---------------------------------------------------------------- inputs

  /** Advances the logical clock by one tick (Raft §5.2 timeouts are counted in ticks). */
  tick(): void {
    this.#ticks++;
    if (this.#role === "leader") this.#tickLeader();
    else this.#tickElection();
  }

  /** Starts an election now (with a pre-vote first when configured), as if the timeout fired. */
  campaign(): void {
    if (this.#role === "leader") return;
    this.#hup(false);
  }

  /** Feeds one message from a peer into the core. */
  step(m: Message): void {
    assert(
      m.groupId === this.#cfg.groupId,
      `message for group ${m.groupId} stepped into ${this.#cfg.groupId}`,
    );
    assert(m.to === this.id, `message to ${m.to} stepped into ${this.id}`);
    if (m.from !== this.id) {
      const pr = this.#progress.get(m.from);
      if (pr !== undefined) pr.lastContactTick = this.#ticks;
    }
    if (m.term > this.#term) {
      if (m.type === "vote-request") {
        const inLease =
          this.#cfg.checkQuorum &&
          this.#leaderId !== null &&
          this.#electionElapsed < this.#cfg.electionTimeoutTicks;
        // Dissertation §4.2.3: while a leader is known alive, a vote request is ignored so a removed
        // or partitioned server cannot depose it. A transfer's campaign is deliberate and allowed.
        if (inLease && !m.transfer) return;
      }
      if (m.type === "vote-request" && m.preVote) {
        // A pre-vote does not change anyone's term.
      } else if (m.type === "vote-response" && m.preVote && !m.reject) {
        // A granted pre-vote carries the term the candidate would use, not the voter's.
      } else {
        const leader = m.type === "append" || m.type === "heartbeat" || m.type === "snapshot" ? m.from : null;
        this.#becomeFollower(m.term, leader);
      }
    } else if (m.term < this.#term) {
      if ((this.#cfg.checkQuorum || this.#cfg.preVote) && (m.type === "append" || m.type === "heartbeat")) {
        // A stale leader (for example one that was partitioned) must learn the new term, or with
        // pre-vote it could keep a minority busy forever; any answer at our term deposes it.
        this.#send({ type: "heartbeat-response", readRound: 0 }, m.from, false);
      } else if (m.type === "vote-request" && m.preVote) {
        this.#send({ type: "vote-response", preVote: true, reject: true }, m.from, false);
      }
      return;
    }

    if (m.type === "vote-request") {
      this.#handleVoteRequest(m);
      return;
    }
    switch (this.#role) {
      case "leader":
        this.#stepLeader(m);
        break;
      case "candidate":
      case "pre-candidate":
        this.#stepCandidate(m);
        break;
      case "follower":
        this.#stepFollower(m);
        break;
      default:
        assertNever(this.#role, "role");
    }
  }

  /** Proposes application data (Raft §5.3); only a leader accepts. */
  propose(data: Uint8Array): ProposeResult {
    const refused = this.#refuseProposal(data.length);
    if (refused !== undefined) return refused;
    const index = this.#appendEntry("normal", data);
    return { ok: true, index, term: this.#term };
  }

  /**
   * Proposes a membership change (dissertation §4.1, one server at a time). Refused while another
   * change is uncommitted, and until the leader has committed an entry of its own term: that rule
   * closes the single-server-change bug Ongaro described in 2015, where a new leader's change could
   * overlap an uncommitted change of a previous leader.
   */
  proposeConfChange(change: ConfChange): ConfChangeResult {
    const data = encodeConfChanges([change]);
    const refused = this.#refuseProposal(data.length);
    if (refused !== undefined) return refused;
    if (!this.#committedInTerm()) return { ok: false, reason: "no-commit-in-term" };
    if (this.#confs.lastChangeIndex() > this.#log.commitIndex)
      return { ok: false, reason: "conf-change-pending" };
    const applied = applyConfChange(this.#confs.current(), change);
    if (!applied.ok) return { ok: false, reason: "invalid-conf-change", detail: applied.reason };
    const index = this.#appendEntry("conf-change", data);
    return { ok: true, index, term: this.#term };
  }

  /**
   * Requests a linearizable read barrier (dissertation §6.4). The answer arrives as a ReadState in a
   * later Ready; a follower forwards the request to its leader.
   */
  readIndex(context: string): ReadIndexResult {
    if (this.#role === "leader") return this.#handleReadRequest(this.id, context);
    if (this.#leaderId === null) return { ok: false, reason: "not-leader", leaderHint: null };
    this.#send({ type: "read-index", context }, this.#leaderId, false);
    return { ok: true };
  }

  /**
   * Hands leadership to `to` (dissertation §3.10): proposals stop, `to` is brought up to date, then
   * told to campaign at once. Abandoned if it has not happened within an election timeout.
   */
  transferLeadership(to: NodeId): TransferResult {
    if (this.#role !== "leader") return { ok: false, reason: "not-leader", leaderHint: this.#leaderId };
    if (to === this.id) return { ok: false, reason: "already-leader" };
    if (!this.#confs.current().voters.includes(to)) return { ok: false, reason: "not-a-voter" };
    if (this.#leadTransferee === to) return { ok: true };
    this.#leadTransferee = to;
    this.#electionElapsed = 0;
    const pr = this.#progress.get(to);
    assert(pr !== undefined, "voter without progress");
    if (pr.matchIndex === this.#log.lastIndex()) this.#send({ type: "timeout-now" }, to, false);
    else this.#sendAppends(to, true);
    return { ok: true };
  }

  /** Reports that a peer could not be reached: stop streaming to it optimistically (probe again). */
  reportUnreachable(peer: NodeId): void {
    const pr = this.#progress.get(peer);
    if (this.#role === "leader" && pr !== undefined && pr.state === "replicate") pr.becomeProbe();
  }

  /**
   * Reports how sending a snapshot to `peer` ended; either way the leader probes it next. With
   * `snapshotIndex`, a late report about another snapshot than the one in flight is ignored (it
   * would end the newer transfer, and the leader would send that snapshot again).
   */
  reportSnapshot(peer: NodeId, ok: boolean, snapshotIndex?: LogIndex): void {
    const pr = this.#progress.get(peer);
    if (this.#role !== "leader" || pr === undefined || pr.state !== "snapshot") return;
    if (snapshotIndex !== undefined && snapshotIndex !== pr.pendingSnapshot) return;
    // On failure, probe from the match so a fresh snapshot is chosen if still needed.
    if (!ok) pr.pendingSnapshot = logIndex(0);
    pr.becomeProbe();
    // Wait for the follower's answer (or a heartbeat's) before sending more.
    pr.probeSent = true;
  }

  /**
   * Compacts the log up to `index`, which the application has captured in a durable snapshot
   * (Raft §7). Returns the snapshot's metadata (with the configuration as of `index`), which the
   * runtime stores next to the snapshot data and later sends to followers that fall behind.
   */
  compact(index: LogIndex): CompactResult {
    if (index > this.#log.appliedIndex || index > this.#log.persistedIndex)
      return { ok: false, reason: "not-applied" };
    if (index <= this.#log.snapshot.index) return { ok: false, reason: "already-compacted" };
    const t = this.#log.termAt(index);
    assert(t !== undefined, "compaction point has no term");
    const snapshot: SnapshotMeta = { index, term: t, conf: this.#confs.at(index) };
    this.#log.compact(snapshot);
    this.#confs.compactTo(index);
    return { ok: true, snapshot };
  }

  // ---------------------------------------------------------------- outputs

  /** Whether {@link ready} has anything to hand out. */
  hasReady(): boolean {
    if (this.#readyInFlight !== null) return false;
    if (this.#role === "leader" && (this.#broadcastPending || this.#readOnly.roundDue())) return true;
    if (this.#msgs.length > 0 || this.#msgsAfterPersist.length > 0 || this.#readStates.length > 0)
      return true;
    if (this.#log.pendingSnapshot !== undefined || this.#log.hasUnstable()) return true;
    if (this.#log.entriesToApply(1).length > 0) return true;
    if (!sameSoft(this.#softState(), this.#prevSoft)) return true;
    return !sameHard(this.#hardState(), this.#prevHard);
  }

  /** Takes the next batch of work (see {@link Ready}); call {@link advance} with it when it is done. */
  ready(): Ready {
    assert(this.#readyInFlight === null, "ready() called before the previous Ready was advanced");
    if (this.#role === "leader") {
      if (this.#broadcastPending) this.#flushBroadcast();
      this.#maybeStartReadRound();
    }
    const soft = this.#softState();
    const hard = this.#hardState();
    const snapshot = this.#log.pendingSnapshot;
    this.#log.pendingSnapshot = undefined;
    const entries = this.#log.unstableEntries();
    this.#log.markHandedOut();
    const committedEntries = this.#log.entriesToApply(this.#applyBytesMax);
    const lastApplying = committedEntries.at(-1);
    if (lastApplying !== undefined) this.#log.applyingTo(lastApplying.index);
    // Nothing may leave before a new term or vote is durable: a message carrying a term this node
    // could forget in a crash would let it lead or vote twice in that term (for example a lone
    // voter that wins at once and replicates to learners).
    const termOrVoteChanged = hard.term !== this.#prevHard.term || hard.votedFor !== this.#prevHard.votedFor;
    const messages = termOrVoteChanged ? [] : this.#msgs;
    const messagesAfterPersist = termOrVoteChanged
      ? [...this.#msgs, ...this.#msgsAfterPersist]
      : this.#msgsAfterPersist;
    const rd: Ready = {
      ...(sameSoft(soft, this.#prevSoft) ? {} : { softState: soft }),
      ...(sameHard(hard, this.#prevHard) ? {} : { hardState: hard }),
      ...(snapshot === undefined ? {} : { snapshot }),
      entries,
      messages,
      messagesAfterPersist,
      committedEntries,
      readStates: this.#readStates,
    };
    this.#prevSoft = soft;
    this.#prevHard = hard;
    this.#msgs = [];
    this.#msgsAfterPersist = [];
    this.#readStates = [];
    this.#readyInFlight = rd;
    return rd;
  }

  /** Acknowledges that `rd` was persisted, sent and applied as its contract says. */
  advance(rd: Ready): void {
    assert(this.#readyInFlight === rd, "advance() with a Ready that is not the one in flight");
    this.#readyInFlight = null;
    if (rd.snapshot !== undefined) this.#log.snapshotInstalled(rd.snapshot);
    const lastEntry = rd.entries.at(-1);
    if (lastEntry !== undefined) this.#log.persistedTo(lastEntry.index);
    const lastApplied = rd.committedEntries.at(-1);
    if (lastApplied !== undefined) this.#log.appliedTo(lastApplied.index);
    if (this.#role === "leader") {
      const self = this.#progress.get(this.id);
      self?.maybeUpdate(this.#log.persistedIndex);
      // The leader's own copy counts only now that it is durable.
      this.#maybeCommit();
    }
    // Every hard state handed out so far is durable now.
    this.#maybeLiftVoteFence();
  }

  /** Whether this member neither votes nor campaigns yet (see RaftStatus.votesWithheld). */
  votesWithheld(): boolean {
    return this.#withholdingVotes();
  }

  /**
   * The configuration in effect (what status().conf says, without building the rest of the
   * status: the request path asks for it on every read and write).
   */
  conf(): RaftStatus["conf"] {
    return this.#confs.current();
  }

  /** The index the log is compacted to (status().snapshotIndex, cheaply: asked after each apply). */
  snapshotIndex(): LogIndex {
    return this.#log.snapshot.index;
  }

  /** The snapshot the log is compacted to: what a follower behind it is sent. */
  snapshot(): SnapshotMeta {
    return this.#log.snapshot;
  }

  /** The member's state for the dashboard and metrics. */
  status(): RaftStatus {
    const conf = this.#confs.current();
    const peers =
      this.#role !== "leader"
        ? []
        : [...this.#progress.entries()]
            .sort(([a], [b]) => a - b)
            .map(([id, pr]) => ({
              id,
              voter: conf.voters.includes(id),
              matchIndex: id === this.id ? this.#log.persistedIndex : pr.matchIndex,
              nextIndex: pr.nextIndex,
              state: pr.state,
              inflight: pr.inflights.count,
              lastContactTick: id === this.id ? this.#ticks : pr.lastContactTick,
              recentActive: id === this.id || pr.recentActive,
            }));
    return {
      id: this.id,
      groupId: this.#cfg.groupId,
      role: this.#role,
      term: this.#term,
      votedFor: this.#votedFor,
      leaderId: this.#leaderId,
      commitIndex: this.#log.commitIndex,
      appliedIndex: this.#log.appliedIndex,
      persistedIndex: this.#log.persistedIndex,
      lastIndex: this.#log.lastIndex(),
      snapshotIndex: this.#log.snapshot.index,
      conf,
      leadTransferee: this.#leadTransferee,
      ticksSinceLeaderContact:
        this.#role === "leader" ? 0 : this.#leaderId === null ? null : this.#electionElapsed,
      ticks: this.#ticks,
      peers,
      votesWithheld: this.#withholdingVotes(),
    };
  }

  /** The entries held in memory in [lo, hi) (for tests and debugging; `lo` must not be compacted). */
  entries(lo: number, hi: number): Entry[] {
    return this.#log.slice(lo, Math.min(hi, this.#log.lastIndex() + 1));
  }

  /** The term of the entry at `index`, or undefined when compacted or absent. */
  termAt(index: number): Term | undefined {
    return this.#log.termAt(index);
  }

  /**
   * Checks this member's local invariants; throws an AssertionError naming the first broken one.
   * Tests call it after every step.
   */
  checkInvariants(): void {
    const log = this.#log;
    // Invariant: snapshotIndex <= appliedIndex <= commitIndex <= lastIndex.
    assert(log.snapshot.index <= log.appliedIndex || log.installingSnapshot(), "applied below snapshot");
    assert(log.appliedIndex <= log.commitIndex, `applied ${log.appliedIndex} > commit ${log.commitIndex}`);
    assert(log.commitIndex <= log.lastIndex(), `commit ${log.commitIndex} > last ${log.lastIndex()}`);
    assert(log.persistedIndex <= log.lastIndex(), "persisted beyond the log");
    assert(log.lastTerm() <= this.#term, "log holds a term above the current term");
    // Terms never decrease along the log: asserted where entries are appended (RaftLog).
    if (this.#role === "leader") {
      assert(this.#leaderId === this.id, "a leader must know itself as leader");
      assert(
        this.#uncommittedBytes === log.bytesBetween(log.commitIndex, log.lastIndex()),
        "uncommitted byte count drifted",
      );
      for (const [id, pr] of this.#progress) {
        assert(pr.matchIndex < pr.nextIndex, `peer ${id}: match ${pr.matchIndex} >= next ${pr.nextIndex}`);
        assert(pr.matchIndex <= log.lastIndex(), `peer ${id}: match beyond the leader's log`);
      }
    }
    if (this.#role === "candidate") assert(this.#votedFor === this.id, "a candidate votes for itself");
  }

  // ---------------------------------------------------------------- roles

  #becomeFollower(t: Term, leader: NodeId | null): void {
    if (t !== this.#term) {
      assert(t > this.#term, "term moved backwards");
      this.#term = t;
      this.#votedFor = null;
    }
    this.#role = "follower";
    this.#leaderId = leader;
    this.#resetVolatile();
  }

  #resetVolatile(): void {
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    // Raft §5.2: randomized timeouts make split votes rare.
    this.#randomizedElectionTimeout =
      this.#cfg.electionTimeoutTicks + this.#cfg.random.below(this.#cfg.electionTimeoutTicks);
    this.#leadTransferee = null;
    this.#votes = new Map();
    this.#broadcastPending = false;
    this.#broadcastEmptyPending = false;
    this.#readOnly.reset();
  }

  #becomePreCandidate(): void {
    assert(this.#role !== "leader", "a leader cannot become pre-candidate");
    // Dissertation §9.6: the term does not change, so a node cut off from the majority cannot
    // inflate terms and depose a healthy leader when it returns.
    this.#role = "pre-candidate";
    this.#leaderId = null;
    this.#resetVolatile();
  }

  #becomeCandidate(): void {
    assert(this.#role !== "leader", "a leader cannot become candidate");
    // Raft §5.2: increment the term and vote for yourself.
    this.#term = toTerm(this.#term + 1);
    this.#votedFor = this.id;
    this.#role = "candidate";
    this.#leaderId = null;
    this.#resetVolatile();
  }

  #becomeLeader(): void {
    assert(this.#role === "candidate", "only a candidate can become leader");
    this.#role = "leader";
    this.#leaderId = this.id;
    this.#resetVolatile();
    // Raft Figure 2: nextIndex starts after the leader's last entry, matchIndex at 0.
    this.#rebuildProgress(true);
    this.#uncommittedBytes = this.#log.bytesBetween(this.#log.commitIndex, this.#log.lastIndex());
    // Raft §8 / §5.4.2: a no-op of the new term lets earlier entries commit and ReadIndex start.
    this.#appendEntry("normal", new Uint8Array(0));
  }

  #hup(transfer: boolean): void {
    if (!this.#promotable()) return;
    if (this.#cfg.preVote && !transfer) this.#campaign("pre", false);
    else this.#campaign("vote", transfer);
  }

  /**
   * Whether this node may campaign: it is a voter in its latest configuration, or its removal is
   * not committed yet. A leader cut off right after appending its own removal is still a voter
   * under the committed configuration; the others may need its vote, and its longer log refuses
   * theirs, so it must be able to win, commit its removal (which needs only the new
   * configuration's majority) and step down (dissertation §4.2.2).
   */
  #promotable(): boolean {
    if (this.#log.installingSnapshot()) return false;
    if (this.#withholdingVotes()) return false;
    if (this.#confs.current().voters.includes(this.id)) return true;
    return this.#confs.at(this.#log.commitIndex).voters.includes(this.id);
  }

  #campaign(kind: "pre" | "vote", transfer: boolean): void {
    if (kind === "pre") this.#becomePreCandidate();
    else this.#becomeCandidate();
    const voteTerm = kind === "pre" ? toTerm(this.#term + 1) : this.#term;
    this.#votes.set(this.id, true);
    if (this.#tallyVotes()) return;
    for (const id of this.#confs.current().voters) {
      if (id === this.id) continue;
      const body: MessageBody = {
        type: "vote-request",
        preVote: kind === "pre",
        lastLogIndex: this.#log.lastIndex(),
        lastLogTerm: this.#log.lastTerm(),
        transfer,
      };
      // A real vote request may only leave once our own vote and new term are durable.
      this.#send(body, id, kind === "vote", voteTerm);
    }
  }

  /** Counts votes; acts on the outcome. Returns whether the campaign ended. */
  #tallyVotes(): boolean {
    const result = voteResult(this.#confs.current().voters, this.#votes);
    if (result === "won") {
      if (this.#role === "pre-candidate") this.#campaign("vote", false);
      else this.#becomeLeader();
      return true;
    }
    if (result === "lost") {
      this.#becomeFollower(this.#term, null);
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- ticks

  #tickElection(): void {
    this.#electionElapsed++;
    this.#maybeProbeVoterTerms();
    this.#maybeLiftVoteFence();
    // A node that may not campaign (a learner, or a removed node) keeps counting: restarting its
    // clock would keep it "in lease" of a leader long gone, and it would refuse forever the votes
    // of a candidate whose newer configuration needs them.
    if (this.#electionElapsed >= this.#randomizedElectionTimeout && this.#promotable()) {
      this.#electionElapsed = 0;
      this.#hup(false);
    }
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#cfg.electionTimeoutTicks) {
      this.#electionElapsed = 0;
      if (this.#cfg.checkQuorum) {
        const voters = this.#confs.current().voters;
        const active = (id: NodeId) => id === this.id || this.#progress.get(id)?.recentActive === true;
        // Dissertation §6.2: a leader that cannot reach a majority steps down, so clients go
        // looking for the real leader instead of waiting on this one.
        if (!hasQuorum(voters, active)) {
          this.#becomeFollower(this.#term, null);
          return;
        }
        for (const pr of this.#progress.values()) pr.recentActive = false;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.#leadTransferee = null;
    }
    if (this.#heartbeatElapsed >= this.#cfg.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      for (const [id, pr] of this.#progress) if (id !== this.id) pr.heartbeatsSinceAppend++;
      this.#broadcastHeartbeat();
    }
  }

  // ---------------------------------------------------------------- message handling

  /**
   * Whether this member may have lost entries it acknowledged and has not yet been given them
   * back by a leader: it then neither votes nor campaigns. A sole voter has nobody to recover
   * from and nobody whose safety its vote could break, so it is exempt.
   */
  #withholdingVotes(): boolean {
    if (this.#votesWithheldThrough === null && !this.#stateLost && this.#voteFence === null) return false;
    return this.#confs.current().voters.some((id) => id !== this.id);
  }

  /**
   * A member that lost its state also lost the record of its votes: it may have voted in any term
   * up to the one it was in, and a second vote in such a term could elect a second leader in it
   * (Raft §5.2: one vote per term). Every candidate it voted for is a voter whose own term has
   * been at least that term ever since (terms never go down on a member that kept its state), so
   * once every fellow voter reported its term after our restart, the highest report bounds every
   * term we may have voted in. Invariant: a member that lost its state grants no vote in a term at
   * or below that bound, except the one it spends on itself at the bound (docs/faults.md).
   */
  #maybeLiftVoteFence(): void {
    const fence = this.#voteFence;
    // Only a whole member knows its configuration (its log came back from the leader).
    if (fence === null || this.#stateLost) return;
    if (fence.highest === null) {
      const others = this.#confs.current().voters.filter((id) => id !== this.id);
      if (others.some((id) => !fence.heard.has(id))) return;
      fence.highest = toTerm(Math.max(0, ...others.map((id) => fence.heard.get(id) ?? 0)));
    }
    const highest = fence.highest;
    // At the bound itself, spend our vote on ourselves: the hard state then keeps us from voting
    // there again across restarts, as a vote cast before the loss would have.
    if (this.#term === highest && this.#votedFor === null) this.#votedFor = this.id;
    // Lifted only once that is durable (the last hard state handed out, with no Ready in flight): a
    // restart before it finds the runtime's recovering record and starts the fence again.
    const durable = this.#prevHard;
    const past = durable.term > highest || (durable.term === highest && durable.votedFor !== null);
    if (past && this.#readyInFlight === null) this.#voteFence = null;
  }

  /** Records the term a fellow voter answered our term probe with (see #maybeLiftVoteFence). */
  #noteVoterTerm(from: NodeId, t: Term): void {
    const fence = this.#voteFence;
    if (fence === null || fence.highest !== null) return;
    fence.heard.set(from, toTerm(Math.max(t, fence.heard.get(from) ?? 0)));
    this.#maybeLiftVoteFence();
  }

  /**
   * Asks every fellow voter that has not answered yet for its term, with a pre-vote request that
   * cannot win (an empty log): the answer carries the voter's term, or ours when it is not higher.
   * Nobody changes state for a pre-vote.
   */
  #maybeProbeVoterTerms(): void {
    const fence = this.#voteFence;
    if (fence === null || fence.highest !== null || this.#stateLost) return;
    if (this.#ticks % this.#cfg.heartbeatTicks !== 0) return;
    for (const id of this.#confs.current().voters) {
      if (id === this.id || fence.heard.has(id)) continue;
      this.#send(
        {
          type: "vote-request",
          preVote: true,
          lastLogIndex: logIndex(0),
          lastLogTerm: toTerm(0),
          transfer: false,
        },
        id,
        false,
      );
    }
  }

  /** A leader of our term (or a later one) gave us a log through `index`: recovered if past the loss. */
  #maybeStopWithholdingVotes(index: LogIndex): void {
    if (this.#votesWithheldThrough !== null && index >= this.#votesWithheldThrough) {
      this.#votesWithheldThrough = null;
    }
  }

  #handleVoteRequest(m: VoteRequestMessage): void {
    // Our term may have just risen to the fence's bound (this request's term): spend it first.
    this.#maybeLiftVoteFence();
    if (this.#withholdingVotes()) {
      // Our log may lack entries we acknowledged; a vote now could elect a leader without them.
      this.#send({ type: "vote-response", preVote: m.preVote, reject: true }, m.from, !m.preVote);
      return;
    }
    // Raft §5.2: one vote per term, first come first served (re-granting to the same candidate is
    // safe); a pre-vote for a future term commits to nothing.
    if (m.preVote && this.#leaderId !== null && this.#electionElapsed < this.#cfg.electionTimeoutTicks) {
      // Dissertation §9.6: refuse a pre-vote while a leader was heard from within the election
      // timeout, so a node rejoining after a partition cannot disrupt a healthy leader.
      this.#send({ type: "vote-response", preVote: true, reject: true }, m.from, false);
      return;
    }
    const canVote =
      this.#votedFor === m.from ||
      (this.#votedFor === null && this.#leaderId === null) ||
      (m.preVote && m.term > this.#term);
    // Raft §5.4.1: only for a candidate whose log is at least as up-to-date as ours.
    if (canVote && this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      this.#send({ type: "vote-response", preVote: m.preVote, reject: false }, m.from, !m.preVote, m.term);
      if (!m.preVote) {
        this.#electionElapsed = 0;
        this.#votedFor = m.from;
      }
    } else {
      this.#send({ type: "vote-response", preVote: m.preVote, reject: true }, m.from, !m.preVote);
    }
  }

  #stepFollower(m: Exclude<Message, VoteRequestMessage>): void {
    switch (m.type) {
      case "append":
        this.#electionElapsed = 0;
        this.#leaderId = m.from;
        this.#handleAppend(m);
        break;
      case "heartbeat":
        this.#electionElapsed = 0;
        this.#leaderId = m.from;
        // The leader sends min(commit, our match), so this exceeds what we hold only when we lost
        // entries we acknowledged (our state was emptied or discarded as damaged). Say so, as a
        // flagged rejection with our last index as the hint: the leader then forgets our match and
        // refills us.
        this.#log.commitTo(logIndex(Math.min(m.commitIndex, this.#log.lastIndex())));
        this.#send({ type: "heartbeat-response", readRound: m.readRound }, m.from, false);
        if (m.commitIndex > this.#log.lastIndex()) {
          this.#send(
            {
              type: "append-response",
              reject: true,
              index: m.commitIndex,
              hintIndex: this.#log.lastIndex(),
              hintTerm: toTerm(0),
              entriesLost: true,
            },
            m.from,
            false,
          );
        }
        break;
      case "snapshot":
        this.#electionElapsed = 0;
        this.#leaderId = m.from;
        this.#handleSnapshot(m);
        break;
      case "timeout-now":
        // Dissertation §3.10: campaign at once, skipping pre-vote and the lease check of voters.
        this.#hup(true);
        break;
      case "read-index":
        if (this.#leaderId !== null)
          this.#send({ type: "read-index", context: m.context }, this.#leaderId, false);
        break;
      case "read-index-response":
        this.#readStates.push({ context: m.context, index: m.index });
        break;
      case "vote-response":
        // A follower asks for votes only to learn its fellow voters' terms (#maybeProbeVoterTerms).
        if (m.preVote) this.#noteVoterTerm(m.from, m.term);
        break;
      case "append-response":
      case "heartbeat-response":
        break;
      default:
        assertNever(m, "message");
    }
  }

  #stepCandidate(m: Exclude<Message, VoteRequestMessage>): void {
    switch (m.type) {
      case "append":
      case "heartbeat":
      case "snapshot":
        // Raft §5.2: a candidate that hears from a leader of its term (or later) returns to follower.
        this.#becomeFollower(m.term, m.from);
        this.#stepFollower(m);
        break;
      case "vote-response":
        if (m.preVote !== (this.#role === "pre-candidate")) return;
        // A granted pre-vote names the term we would campaign in; a refusal carries the voter's term.
        if (m.preVote && !m.reject && m.term !== this.#term + 1) return;
        this.#votes.set(m.from, !m.reject);
        this.#tallyVotes();
        break;
      case "timeout-now":
      case "read-index":
      case "read-index-response":
      case "append-response":
      case "heartbeat-response":
        break;
      default:
        assertNever(m, "message");
    }
  }

  #stepLeader(m: Exclude<Message, VoteRequestMessage>): void {
    const pr = this.#progress.get(m.from);
    if (pr !== undefined) pr.recentActive = true;
    switch (m.type) {
      case "append-response":
        if (pr !== undefined) this.#handleAppendResponse(m, pr);
        break;
      case "heartbeat-response":
        if (pr !== undefined) this.#handleHeartbeatResponse(m, pr);
        break;
      case "read-index":
        this.#handleReadRequest(m.from, m.context);
        break;
      case "append":
      case "heartbeat":
      case "snapshot":
        // Raft §5.2 Election Safety: at most one leader per term.
        assert(false, `two leaders in term ${this.#term}: ${this.id} and ${m.from}`);
        break;
      case "vote-response":
      case "timeout-now":
      case "read-index-response":
        break;
      default:
        assertNever(m, "message");
    }
  }

  #handleAppend(m: AppendMessage): void {
    const log = this.#log;
    // The transport validates messages; a malformed append reaching the core is a bug.
    m.entries.forEach((e, k) => {
      assert(e.index === m.prevLogIndex + 1 + k, `append from ${m.from} with non-contiguous entries`);
      assert(e.term <= m.term, `append from ${m.from} carries an entry from a future term`);
    });
    if (m.prevLogIndex < log.commitIndex) {
      // Everything up to our commit matches already (Log Matching); say how far we are.
      this.#send(
        {
          type: "append-response",
          reject: false,
          index: log.commitIndex,
          hintIndex: logIndex(0),
          hintTerm: toTerm(0),
          entriesLost: false,
        },
        m.from,
        true,
      );
      return;
    }
    const result = log.maybeAppend(m.prevLogIndex, m.prevLogTerm, m.entries);
    if (result === undefined) {
      // Raft §5.3: reject, with a hint that lets the leader skip a whole conflicting term at once.
      const hint = log.findConflictByTerm(logIndex(Math.min(m.prevLogIndex, log.lastIndex())), m.prevLogTerm);
      this.#send(
        {
          type: "append-response",
          reject: true,
          index: m.prevLogIndex,
          hintIndex: hint.index,
          hintTerm: hint.term,
          // A member that lost entries it acknowledged says so: the leader's match for it is void.
          entriesLost: this.#stateLost || this.#votesWithheldThrough !== null,
        },
        m.from,
        true,
      );
      return;
    }
    if (result.firstWritten !== undefined) {
      this.#confs.truncateFrom(result.firstWritten);
      for (const e of m.entries) {
        if (e.index >= result.firstWritten && e.kind === "conf-change") {
          this.#confs.append(e.index, mustDecodeConfChanges(e.data));
        }
      }
      this.#applyConf();
    }
    // Raft §5.3 rule 5: commit up to the leader's commit, but not past what this append proved.
    log.commitTo(logIndex(Math.min(m.commitIndex, result.lastNewIndex)));
    // Log Matching: our log now equals the leader's through lastNewIndex; a leader of our term or
    // later holds every entry we may have acknowledged and lost (Raft §5.4.3).
    this.#maybeStopWithholdingVotes(result.lastNewIndex);
    // A member that lost its state is whole again once it holds the leader's commit index at an
    // entry of the leader's term: every entry committed before this term lies at or below it.
    if (this.#stateLost && log.commitIndex >= m.commitIndex && log.termAt(log.commitIndex) === m.term)
      this.#stateLost = false;
    // Acknowledged only after persisting: the leader counts this toward a majority.
    this.#send(
      {
        type: "append-response",
        reject: false,
        index: result.lastNewIndex,
        hintIndex: logIndex(0),
        hintTerm: toTerm(0),
        entriesLost: false,
      },
      m.from,
      true,
    );
  }

  #handleSnapshot(m: SnapshotMessage): void {
    const snap = m.snapshot;
    const log = this.#log;
    const ack = (index: LogIndex) =>
      this.#send(
        {
          type: "append-response",
          reject: false,
          index,
          hintIndex: logIndex(0),
          hintTerm: toTerm(0),
          entriesLost: false,
        },
        m.from,
        true,
      );
    if (snap.index <= log.commitIndex) {
      ack(log.commitIndex);
      return;
    }
    if (log.matchTerm(snap.index, snap.term)) {
      // Raft §7 rule 6: the log already holds the snapshot's last entry; keep what follows it.
      log.commitTo(snap.index);
      this.#maybeStopWithholdingVotes(snap.index);
      ack(snap.index);
      return;
    }
    log.restore(snap);
    this.#confs.reset(snap.conf);
    this.#applyConf();
    this.#maybeStopWithholdingVotes(snap.index);
    ack(snap.index);
  }

  #handleAppendResponse(m: AppendResponseMessage, pr: Progress): void {
    if (m.reject) {
      let probe = m.hintIndex;
      if (m.hintTerm > 0) {
        // Skip every leader entry whose term is above the follower's hint term: none can match.
        probe = this.#log.findConflictByTerm(m.hintIndex, m.hintTerm).index;
      }
      // A rejected append's commit index did not reach the follower's log.
      pr.commitSent = logIndex(0);
      if (pr.maybeDecrTo(m.index, probe, m.entriesLost)) {
        if (pr.state === "replicate") pr.becomeProbe();
        this.#sendAppends(m.from, false);
      }
      return;
    }
    if (!pr.maybeUpdate(m.index)) {
      // A probe answered at exactly the known match (for example by a follower whose commit index
      // covers the probe) still proves where its log stands: stream from there.
      if (pr.state === "probe" && m.index === pr.matchIndex) {
        pr.becomeReplicate();
        this.#sendAppends(m.from, false);
      }
      return;
    }
    switch (pr.state) {
      case "probe":
        pr.becomeReplicate();
        break;
      case "snapshot":
        if (pr.matchIndex >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case "replicate":
        pr.inflights.freeLE(m.index);
        break;
    }
    this.#maybeCommit();
    if (this.#role !== "leader") return;
    this.#sendAppends(m.from, false);
    if (this.#leadTransferee === m.from && pr.matchIndex === this.#log.lastIndex()) {
      this.#send({ type: "timeout-now" }, m.from, false);
    }
  }

  #handleHeartbeatResponse(m: HeartbeatResponseMessage, pr: Progress): void {
    pr.probeSent = false;
    // An append may have been lost: free a slot so a full window cannot wedge the pipeline.
    if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirst();
    // Sending even an empty append makes a follower that lost entries reject, which starts a probe.
    // One also goes to a follower whose last append carried an older commit index than ours (it
    // was paused, or took a snapshot, when the commit moved): a heartbeat's commit is capped at
    // its match, and a member that lost its state is whole again only once an append brings the
    // leader's own commit index (found by the simulator's wiped restarts: on an idle cluster such
    // a member withheld its vote for good). And one every few heartbeats regardless: the append
    // that carried the latest commit may have been lost, and commitSent cannot know (seed 574 at
    // level 1: the wiped member stayed recovering on an idle cluster).
    if (
      pr.matchIndex < this.#log.lastIndex() ||
      pr.commitSent < this.#log.commitIndex ||
      pr.heartbeatsSinceAppend >= appendRefreshHeartbeats
    )
      this.#sendAppends(m.from, true);
    const voters = this.#confs.current().voters;
    for (const r of this.#readOnly.ack(m.from, m.readRound, voters, this.id)) this.#releaseRead(r);
  }

  // ---------------------------------------------------------------- leader: replication

  #refuseProposal(bytes: number): ProposeResult | undefined {
    if (this.#role !== "leader") return { ok: false, reason: "not-leader", leaderHint: this.#leaderId };
    if (this.#leadTransferee !== null) return { ok: false, reason: "transfer-in-progress" };
    // Bounded: a leader cut off from its followers must not buffer without limit.
    if (this.#uncommittedBytes + entryHeaderBytes + bytes > this.#uncommittedBytesMax) {
      return { ok: false, reason: "too-many-uncommitted" };
    }
    return undefined;
  }

  #appendEntry(kind: Entry["kind"], data: Uint8Array): LogIndex {
    const index = logIndex(this.#log.lastIndex() + 1);
    const entry: Entry = { term: this.#term, index, kind, data };
    this.#log.appendNew([entry]);
    this.#uncommittedBytes += entryBytes(entry);
    if (kind === "conf-change") {
      this.#confs.append(index, mustDecodeConfChanges(data));
      this.#applyConf();
    }
    // Sent at the next ready(): proposals made between two Ready batches share one append.
    this.#broadcastPending = true;
    // A single-voter group commits as soon as the entry is durable (see advance()).
    return index;
  }

  #flushBroadcast(): void {
    const sendIfEmpty = this.#broadcastEmptyPending;
    this.#broadcastPending = false;
    this.#broadcastEmptyPending = false;
    for (const id of this.#progress.keys()) {
      if (id !== this.id) this.#sendAppends(id, sendIfEmpty);
    }
  }

  /** Sends appends to `to` while its progress allows: one probe, or a pipeline of batches. */
  #sendAppends(to: NodeId, sendIfEmpty: boolean): void {
    const pr = this.#progress.get(to);
    if (pr === undefined) return;
    let sent = this.#maybeSendAppend(to, pr, sendIfEmpty);
    while (sent && pr.state === "replicate" && pr.nextIndex <= this.#log.lastIndex()) {
      sent = this.#maybeSendAppend(to, pr, false);
    }
  }

  #maybeSendAppend(to: NodeId, pr: Progress, sendIfEmpty: boolean): boolean {
    if (pr.isPaused()) return false;
    const log = this.#log;
    const prevLogIndex = logIndex(pr.nextIndex - 1);
    const prevLogTerm = log.termAt(prevLogIndex);
    if (prevLogTerm === undefined) {
      // Raft §7: the entries this follower needs are compacted; send the snapshot instead.
      this.#send({ type: "snapshot", snapshot: log.snapshot }, to, false);
      pr.becomeSnapshot(log.snapshot.index);
      // What earlier appends carried did not reach a log that needs a snapshot.
      pr.commitSent = logIndex(0);
      return false;
    }
    const entries =
      pr.nextIndex <= log.lastIndex()
        ? log.slice(pr.nextIndex, log.lastIndex() + 1, this.#cfg.appendBytesMax)
        : [];
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.#send(
      { type: "append", prevLogIndex, prevLogTerm, entries, commitIndex: log.commitIndex },
      to,
      false,
    );
    pr.sentAppend(entries.length, logIndex(prevLogIndex + entries.length));
    pr.commitSent = log.commitIndex;
    pr.heartbeatsSinceAppend = 0;
    return true;
  }

  #broadcastHeartbeat(): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.id) continue;
      const commitIndex = logIndex(Math.min(pr.matchIndex, this.#log.commitIndex));
      this.#send({ type: "heartbeat", commitIndex, readRound: this.#readOnly.roundSent }, id, false);
    }
  }

  /** Raft §5.3-§5.4.2: commit the highest index a majority holds, if it is of the current term. */
  #maybeCommit(): void {
    const voters = this.#confs.current().voters;
    const matchOf = (id: NodeId): LogIndex =>
      id === this.id ? this.#log.persistedIndex : (this.#progress.get(id)?.matchIndex ?? logIndex(0));
    const index = committedIndex(voters, matchOf);
    if (index <= this.#log.commitIndex) return;
    // Raft §5.4.2: never commit an entry of an earlier term by counting replicas; it commits
    // indirectly once an entry of the current term above it does (Figure 8).
    if (this.#log.termAt(index) !== this.#term) return;
    const hadCommitInTerm = this.#committedInTerm();
    this.#uncommittedBytes -= this.#log.bytesBetween(this.#log.commitIndex, index);
    this.#log.commitTo(logIndex(index));
    this.#broadcastPending = true;
    this.#broadcastEmptyPending = true;
    if (!hadCommitInTerm) {
      for (const r of this.#readOnly.takeAwaitingCommit()) this.#handleReadRequest(r.from, r.context);
    }
    // Dissertation §4.2.2: a leader that is not part of the committed configuration steps down.
    if (!voters.includes(this.id) && this.#log.commitIndex >= this.#confs.lastChangeIndex()) {
      this.#becomeFollower(this.#term, null);
    }
  }

  #committedInTerm(): boolean {
    return this.#log.termAt(this.#log.commitIndex) === this.#term;
  }

  // ---------------------------------------------------------------- leader: ReadIndex

  #handleReadRequest(from: NodeId, context: string): ReadIndexResult {
    if (this.#readOnly.full()) return { ok: false, reason: "too-many-pending-reads" };
    if (!this.#committedInTerm()) {
      this.#readOnly.awaitCommit(from, context);
      return { ok: true };
    }
    const index = this.#log.commitIndex;
    const voters = this.#confs.current().voters;
    if (voters.length === 1 && voters[0] === this.id) {
      this.#releaseRead({ from, context, index });
      return { ok: true };
    }
    this.#readOnly.add(from, context, index);
    return { ok: true };
  }

  #maybeStartReadRound(): void {
    if (!this.#readOnly.roundDue()) return;
    this.#readOnly.startRound();
    this.#broadcastHeartbeat();
  }

  #releaseRead(r: ReleasedRead): void {
    if (r.from === this.id) this.#readStates.push({ context: r.context, index: r.index });
    else this.#send({ type: "read-index-response", context: r.context, index: r.index }, r.from, false);
  }

  // ---------------------------------------------------------------- configuration

  /** Brings the progress map in line with the configuration in force. */
  #applyConf(): void {
    const conf = this.#confs.current();
    const members = new Set([...conf.voters, ...conf.learners]);
    for (const id of [...this.#progress.keys()]) {
      if (!members.has(id)) this.#progress.delete(id);
    }
    for (const id of members) {
      if (!this.#progress.has(id)) {
        this.#progress.set(
          id,
          new Progress(logIndex(this.#log.lastIndex() + 1), this.#cfg.inflightAppendsMax),
        );
      }
    }
    if (this.#leadTransferee !== null && !conf.voters.includes(this.#leadTransferee))
      this.#leadTransferee = null;
  }

  #rebuildProgress(asLeader: boolean): void {
    this.#progress = new Map();
    this.#applyConf();
    if (asLeader) {
      const self = this.#progress.get(this.id);
      if (self !== undefined) {
        self.maybeUpdate(this.#log.persistedIndex);
        self.becomeReplicate();
        self.nextIndex = logIndex(this.#log.lastIndex() + 1);
      }
    }
  }

  // ---------------------------------------------------------------- plumbing

  #send(body: MessageBody, to: NodeId, afterPersist: boolean, t: Term = this.#term): void {
    const m: Message = { ...body, groupId: this.#cfg.groupId, from: this.id, to, term: t };
    if (afterPersist) this.#msgsAfterPersist.push(m);
    else this.#msgs.push(m);
  }

  #softState(): SoftState {
    return { role: this.#role, leaderId: this.#leaderId };
  }

  #hardState(): HardState {
    return { term: this.#term, votedFor: this.#votedFor, commitIndex: this.#log.commitIndex };
  }
}

function sameSoft(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leaderId === b.leaderId;
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor && a.commitIndex === b.commitIndex;
}
