// Level 1 of the simulator: Raft cores (RawNode) driven directly over the simulated clock and
// network, each with an in-memory disk whose writes become durable only when their fsync completes,
// and a key-value state machine built from the checker's own model. In most runs each member
// compacts its log every few applied entries into a snapshot of that state, and a leader sends the
// snapshot to a follower that needs compacted entries (Raft §7), so the core's snapshot paths run
// under the same faults and checkers as the rest. Fast enough for thousands of seeds a minute;
// level 2 (runtime-cluster.ts) runs the real runtime and storage instead.
import {
  type ConfChange,
  type Entry,
  groupId,
  type HardState,
  logIndex,
  type Message,
  type NodeId,
  nodeId,
  type RaftConfig,
  RawNode,
  type Ready,
  type SnapshotMeta,
  term,
} from "../../src/raft/index.js";
import { assert } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import { type LeaderView, quorumIndex } from "./fault-injector.js";
import { applyKv, type KvInput, type KvKeyState, type KvOutput } from "./kv-model.js";
import type { SubmitResult } from "./kv-workload.js";
import type { ObservedEntry, RaftObservation } from "./raft-safety.js";
import type { SimCluster, SimEnvironment } from "./sim-runner.js";

/** Timing of the simulated members, shared by both levels. */
export const simTiming = {
  /** One Raft tick. */
  tickIntervalMs: 10,
  /** Raft §5.2: 100-200 ms of silence before a follower campaigns. */
  electionTimeoutTicks: 10,
  heartbeatTicks: 2,
  /** How often the simulated operator retries membership changes that did not take. */
  operatorIntervalMs: 300,
  /** One-way latency between a client and the node it talks to, uniform in [min, max]. */
  clientLatencyMinMs: 1,
  clientLatencyMaxMs: 3,
  /** After the workload stops, how long the cluster has to converge before the check fails. */
  settleMs: 5_000,
} as const;

/**
 * The simulated operator's next step toward the desired voters: one change at a time, additions
 * first looked at, removals last (the last one found wins), or nothing when the voters match.
 */
export function nextMembershipChange(
  voters: readonly number[],
  desired: ReadonlySet<number>,
): ConfChange | undefined {
  const current = new Set<number>(voters);
  let change: ConfChange | undefined;
  for (const id of desired) if (!current.has(id)) change = { type: "add-voter", node: nodeId(id) };
  for (const id of current) if (!desired.has(id)) change = { type: "remove", node: nodeId(id) };
  return change;
}

/** Runs the simulated operator's `reconcile` every `operatorIntervalMs`, for the whole run. */
export function runOperator(env: Pick<SimEnvironment<unknown>, "scheduler">, reconcile: () => void): void {
  env.scheduler.after(
    simTiming.operatorIntervalMs,
    () => {
      reconcile();
      runOperator(env, reconcile);
    },
    "operator",
  );
}

/** A client command as it travels in a log entry: the request id doubles as the idempotency key. */
export interface KvCommand {
  readonly requestId: string;
  readonly input: KvInput;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The digest the safety checker compares entries by: the payload itself (short, and unique per request). */
export function entryHash(e: Pick<Entry, "kind" | "data">): string {
  return e.kind === "normal" ? decoder.decode(e.data) : `conf:${Array.from(e.data).join(",")}`;
}

/**
 * A snapshot as level 1 stores and sends it: the core's metadata and the key-value state as of its
 * index. The state is never changed once captured (it is copied in and out), so one object can sit
 * on a disk and travel in messages at once.
 */
export interface CoreSnapshot {
  readonly meta: SnapshotMeta;
  readonly state: KvState;
}

/**
 * What level 1's network carries: a Raft message and, with a snapshot message, the snapshot itself
 * (Raft §7: InstallSnapshot carries the state machine's state; the core sees only the metadata).
 */
export interface CoreWire {
  readonly message: Message;
  readonly snapshot?: CoreSnapshot;
}

/** What a member's disk holds durably. */
interface CoreDisk {
  written: boolean;
  hardState: HardState;
  /** The latest snapshot; every entry up to its index is gone from `entries`. */
  snapshot: CoreSnapshot | undefined;
  entries: Entry[];
  /**
   * Set when the disk was wiped (a replaced disk), until the member is whole again: the runtime's
   * `recovering` record, which survives a crash during the recovery.
   */
  recovering: boolean;
}

/**
 * How long a leader waits for a follower to answer a snapshot before it reports the transfer failed
 * and probes again: the simulated network tells no sender about a loss (level 2's runtime gives up
 * after 2 s; level 1's links are faster).
 */
const snapshotReceiptMs = 300;

/** The replicated key-value state, with one remembered answer per request id (idempotency). */
export interface KvState {
  appliedIndex: number;
  readonly keys: Map<string, KvKeyState>;
  readonly answers: Map<string, KvOutput>;
  /** The payload of the entry that first applied each request id. */
  readonly firstEntryOf: Map<string, string>;
}

interface Waiter {
  readonly clientId: number;
  readonly requestId: string;
  readonly done: (r: SubmitResult) => void;
}

interface PendingRead {
  readonly key: string;
  readonly done: (r: SubmitResult) => void;
  index?: number;
}

interface CoreMember {
  readonly id: number;
  raw: RawNode | undefined;
  readonly disk: CoreDisk;
  /** The Ready whose writes are being fsynced, the snapshot it installs, and the timer that completes them. */
  held: { rd: Ready; snapshot: CoreSnapshot | undefined; timer: number } | undefined;
  /** Snapshots received from leaders by index, until the core hands one out to install (or skips it). */
  readonly received: Map<number, CoreSnapshot>;
  state: KvState;
  waiters: Waiter[];
  reads: Map<string, PendingRead>;
  wasLeader: boolean;
  /** The commit index when this member last became leader (aimed faults look at it). */
  commitAtElection: number;
  diskExtraMs: number;
}

/** Options of the level-1 cluster that only tests and the mutant script change. */
export interface CoreClusterHooks {
  /** Receives one readable line per notable event (`npm run sim -- --seed N` prints them). */
  readonly trace?: (line: string) => void;
}

/** Builds the level-1 cluster for one run; pass it to `runSimulation`. */
export function coreCluster(hooks: CoreClusterHooks = {}) {
  return (env: SimEnvironment<CoreWire>): SimCluster<CoreWire> => new CoreCluster(env, hooks);
}

/** A fresh, empty key-value state. */
export const emptyKvState = (): KvState => ({
  appliedIndex: 0,
  keys: new Map(),
  answers: new Map(),
  firstEntryOf: new Map(),
});

/** A copy of `s` that later applies to `s` do not change (key states and answers are never mutated). */
export function cloneKvState(s: KvState): KvState {
  return {
    appliedIndex: s.appliedIndex,
    keys: new Map(s.keys),
    answers: new Map(s.answers),
    firstEntryOf: new Map(s.firstEntryOf),
  };
}

/** Encodes a client command as a log entry's payload. */
export function encodeKvCommand(command: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

/**
 * Applies one entry's payload (see {@link entryHash}) to `s`: a request id seen before gets its
 * first answer again without a second effect. Returns the command and its answer.
 */
export function applyKvCommand(s: KvState, payload: string): { command: KvCommand; output: KvOutput } {
  const command = JSON.parse(payload) as KvCommand;
  let output = s.answers.get(command.requestId);
  if (output === undefined) {
    const key = command.input.key;
    const result = applyKv(s.keys.get(key) ?? { value: null, version: 0 }, command.input);
    s.keys.set(key, result.newState);
    output = result.output;
    s.answers.set(command.requestId, output);
    s.firstEntryOf.set(command.requestId, payload);
  }
  return { command, output };
}

/** The state as text, for comparing replicas. */
export function describeKvState(s: KvState): string {
  return JSON.stringify([...s.keys].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

class CoreCluster implements SimCluster<CoreWire> {
  readonly #env: SimEnvironment<CoreWire>;
  readonly #prng: Prng;
  readonly #trace: (line: string) => void;
  readonly #members = new Map<number, CoreMember>();
  readonly #observations: RaftObservation[] = [];
  readonly #initial: readonly NodeId[];
  /** The membership the operator wants; changes that fail are retried. */
  readonly #desired: Set<number>;
  /** Each client's idea of the leader, from the last "not leader" answer. */
  readonly #leaderHint = new Map<number, number>();
  #readSeq = 0;
  /** Per run: sometimes one entry per append message, which widens the windows between replicas. */
  readonly #appendBytesMax: number;
  readonly #inflightAppendsMax: number;
  /** Per run: compact every this many applied entries (Raft §7), or never. */
  readonly #snapshotEntries: number | undefined;
  /** Snapshot work, for the report (a run that compacts should show sends and installs too). */
  readonly counters = { compactions: 0, snapshotsSent: 0, snapshotsInstalled: 0, wipes: 0, recovered: 0 };
  readonly kv;

  constructor(env: SimEnvironment<CoreWire>, hooks: CoreClusterHooks) {
    this.#env = env;
    this.#prng = env.prng;
    this.#trace = hooks.trace ?? (() => {});
    this.#snapshotEntries = env.options.runtime.snapshotEntries;
    this.#appendBytesMax = this.#prng.chance(1, 3) ? 1 : 16 * 1024;
    this.#inflightAppendsMax = this.#prng.range(2, 16);
    const ids = Array.from({ length: env.options.clusterSize }, (_, i) => i + 1);
    this.#initial = ids.map(nodeId);
    this.#desired = new Set(ids);
    for (const id of ids) {
      const member: CoreMember = {
        id,
        raw: undefined,
        disk: {
          written: false,
          hardState: { term: term(0), votedFor: null, commitIndex: logIndex(0) },
          snapshot: undefined,
          entries: [],
          recovering: false,
        },
        held: undefined,
        received: new Map(),
        state: emptyKvState(),
        waiters: [],
        reads: new Map(),
        wasLeader: false,
        commitAtElection: 0,
        diskExtraMs: 0,
      };
      this.#members.set(id, member);
      this.#start(member);
    }
    runOperator(this.#env, () => this.#reconcileMembership());
    this.kv = {
      submit: (clientId: number, input: KvInput, done: (r: SubmitResult) => void, requestId: string) =>
        this.#submit(clientId, input, done, requestId),
    };
  }

  // ------------------------------------------------------------------ lifecycle

  #config(id: number): RaftConfig {
    return {
      id: nodeId(id),
      groupId: groupId(1),
      conf: { voters: this.#initial, learners: [] },
      electionTimeoutTicks: simTiming.electionTimeoutTicks,
      heartbeatTicks: simTiming.heartbeatTicks,
      preVote: true,
      checkQuorum: true,
      appendBytesMax: this.#appendBytesMax,
      inflightAppendsMax: this.#inflightAppendsMax,
      random: this.#prng.fork(),
    };
  }

  #start(m: CoreMember): void {
    const d = m.disk;
    const snapshot = d.snapshot;
    m.raw = d.written
      ? new RawNode(this.#config(m.id), {
          hardState: d.hardState,
          ...(snapshot === undefined ? {} : { snapshot: snapshot.meta }),
          entries: [...d.entries],
          ...(d.recovering ? { stateLost: true } : {}),
        })
      : new RawNode(this.#config(m.id));
    // The state machine is volatile: rebuilt from the snapshot, then from the log after it.
    m.state = snapshot === undefined ? emptyKvState() : cloneKvState(snapshot.state);
    m.wasLeader = false;
    this.#observeLog(m);
    const tick = () => {
      if (m.raw === undefined) return;
      m.raw.tick();
      this.#drive(m);
      this.#env.scheduler.after(simTiming.tickIntervalMs, tick, `tick ${m.id}`);
    };
    this.#env.scheduler.after(1 + this.#prng.below(simTiming.tickIntervalMs), tick, `tick ${m.id}`);
    this.#drive(m);
  }

  #member(id: number): CoreMember {
    const m = this.#members.get(id);
    assert(m !== undefined, `no member ${id}`);
    return m;
  }

  crash(node: number): void {
    const m = this.#member(node);
    if (m.raw === undefined) return;
    const held = m.held;
    if (held !== undefined) {
      this.#env.scheduler.cancel(held.timer);
      this.#crashWrite(m, held.rd, held.snapshot);
    }
    m.raw = undefined;
    m.held = undefined;
    m.received.clear();
    m.waiters = [];
    m.reads.clear();
    this.#observations.push({ type: "crashed", node });
    this.#trace(`node ${node} crashed (log ${m.disk.entries.length} entries on disk)`);
  }

  /**
   * A crash in the middle of an fsync: the write may be lost, kept whole, or torn (a prefix of its
   * entries survives, the hard state does not), as the seed's disk options say. A snapshot being
   * installed is written first (the Ready's order), so a torn write keeps it.
   */
  #crashWrite(m: CoreMember, rd: Ready, snapshot: CoreSnapshot | undefined): void {
    const disk = this.#env.options.disk;
    const prng = this.#prng;
    if (rd.entries.length > 0 && prng.chance(...disk.tornWriteOnCrash)) {
      const kept = prng.range(0, rd.entries.length - 1);
      this.#persist(m, { entries: rd.entries.slice(0, kept) }, snapshot);
      this.#trace(`node ${m.id}: torn write keeps ${kept} of ${rd.entries.length} entries`);
    } else if (prng.chance(...disk.lostUnsyncedOnCrash)) {
      this.#trace(`node ${m.id}: unsynced write lost`);
    } else {
      this.#persist(m, rd, snapshot);
    }
  }

  restart(node: number, wiped = false): void {
    const m = this.#member(node);
    if (m.raw !== undefined) return;
    this.#observations.push({ type: "restarted", node });
    const othersRecovering = [...this.#members.values()].some((o) => o !== m && o.disk.recovering);
    if (wiped && !othersRecovering) {
      // A replaced disk: log, hard state and snapshot gone; the member knows it lost its state.
      const d = m.disk;
      d.written = true;
      d.hardState = { term: term(0), votedFor: null, commitIndex: logIndex(0) };
      d.snapshot = undefined;
      d.entries = [];
      d.recovering = true;
      this.counters.wipes++;
      this.#trace(`node ${node} restarted with a wiped disk (recovering)`);
    } else {
      this.#trace(`node ${node} restarted${wiped ? " (not wiped: another member still recovers)" : ""}`);
    }
    this.#start(m);
  }

  setDiskExtraLatency(node: number, extraMs: number): void {
    this.#member(node).diskExtraMs = extraMs;
  }

  requestRemoveMember(node: number): void {
    this.#desired.delete(node);
    this.#reconcileMembership();
  }

  requestAddMember(node: number): void {
    this.#desired.add(node);
    this.#reconcileMembership();
  }

  requestLeadershipTransfer(to: number): void {
    const leader = this.#leader();
    const result = leader?.raw?.transferLeadership(nodeId(to));
    this.#trace(
      `transfer leadership to ${to}: ${result === undefined ? "no leader" : JSON.stringify(result)}`,
    );
    if (leader !== undefined) this.#drive(leader);
  }

  /** Proposes the next membership change needed to reach the desired membership, one at a time. */
  #reconcileMembership(): void {
    const leader = this.#leader();
    if (leader?.raw === undefined) return;
    const change = nextMembershipChange(leader.raw.status().conf.voters, this.#desired);
    if (change === undefined) return;
    const result = leader.raw.proposeConfChange(change);
    if (result.ok) this.#trace(`node ${leader.id} proposes ${change.type} ${change.node} at ${result.index}`);
    this.#drive(leader);
  }

  leaderView(): LeaderView | undefined {
    const m = this.#leader();
    const raw = m?.raw;
    if (m === undefined || raw === undefined) return undefined;
    const s = raw.status();
    const q = quorumIndex(s.peers.filter((p) => p.voter).map((p) => p.matchIndex));
    return {
      node: m.id,
      term: s.term,
      lastIndex: s.lastIndex,
      quorumIndex: q,
      quorumTerm: raw.termAt(q),
      commitAtElection: m.commitAtElection,
    };
  }

  /** The up member that leads in the highest term, if any. */
  #leader(): CoreMember | undefined {
    let best: CoreMember | undefined;
    for (const m of this.#members.values()) {
      const s = m.raw?.status();
      if (s?.role !== "leader") continue;
      if (best === undefined || (best.raw?.status().term ?? 0) < s.term) best = m;
    }
    return best;
  }

  // ------------------------------------------------------------------ the ready loop

  deliver(_from: number, to: number, wire: CoreWire): void {
    const m = this.#members.get(to);
    if (m?.raw === undefined) return;
    const message = wire.message;
    if (message.type === "snapshot") {
      const data = wire.snapshot;
      assert(data?.meta.index === message.snapshot.index, "a snapshot message without its data");
      // Kept until the core hands the snapshot out to install; it may also ignore it (stale term,
      // already committed), so each is kept under its own index.
      m.received.set(data.meta.index, data);
    }
    m.raw.step(message);
    this.#drive(m);
  }

  /** Takes Ready batches while no write is in flight; a batch with writes waits for its fsync. */
  #drive(m: CoreMember): void {
    for (;;) {
      const raw = m.raw;
      if (raw === undefined || m.held !== undefined || !raw.hasReady()) return;
      const rd = raw.ready();
      this.#observeSoft(m, raw, rd);
      for (const msg of rd.messages) this.#send(m, msg);
      const snapshot = rd.snapshot === undefined ? undefined : this.#takeReceived(m, rd.snapshot);
      if (rd.entries.length === 0 && rd.hardState === undefined && snapshot === undefined) {
        this.#finish(m, raw, rd);
        continue;
      }
      const { syncLatencyMinMs, syncLatencyMaxMs } = this.#env.options.disk;
      const delay = this.#prng.range(syncLatencyMinMs, syncLatencyMaxMs) + m.diskExtraMs;
      const timer = this.#env.scheduler.after(
        delay,
        () => {
          m.held = undefined;
          if (m.raw !== raw) return;
          this.#persist(m, rd, snapshot);
          if (snapshot !== undefined) this.#install(m, snapshot);
          this.#observeLog(m);
          this.#finish(m, raw, rd);
          this.#drive(m);
        },
        `fsync ${m.id}`,
      );
      m.held = { rd, snapshot, timer };
      return;
    }
  }

  /** The data of the snapshot a Ready hands out to install; it arrived with the snapshot message. */
  #takeReceived(m: CoreMember, meta: SnapshotMeta): CoreSnapshot {
    const data = m.received.get(meta.index);
    assert(data !== undefined, `node ${m.id} installs snapshot ${meta.index} it never received`);
    for (const index of m.received.keys()) if (index <= meta.index) m.received.delete(index);
    return data;
  }

  /** Replaces the state machine with a snapshot's state; the Ready's committed entries follow it. */
  #install(m: CoreMember, snapshot: CoreSnapshot): void {
    assert(
      snapshot.state.appliedIndex === snapshot.meta.index,
      `snapshot ${snapshot.meta.index} holds state applied to ${snapshot.state.appliedIndex}`,
    );
    assert(
      m.state.appliedIndex < snapshot.meta.index,
      `node ${m.id} installs snapshot ${snapshot.meta.index} after applying ${m.state.appliedIndex}`,
    );
    m.state = cloneKvState(snapshot.state);
    this.counters.snapshotsInstalled++;
    this.#trace(`node ${m.id} installed snapshot ${snapshot.meta.index} (term ${snapshot.meta.term})`);
  }

  /**
   * Compacts once `snapshotEntries` entries were applied since the last snapshot (Raft §7): the
   * state is captured and the log before it dropped, on disk and in the core. The capture is durable
   * at once, standing for a snapshot file written, synced and renamed before the log is truncated.
   */
  #maybeCompact(m: CoreMember, raw: RawNode): void {
    const every = this.#snapshotEntries;
    const d = m.disk;
    const applied = m.state.appliedIndex;
    if (every === undefined || applied - (d.snapshot?.meta.index ?? 0) < every) return;
    const result = raw.compact(logIndex(applied));
    // "not-applied": the entries are not durable here yet (a leader commits with its followers'
    // copies); the next batch tries again.
    if (!result.ok) return;
    d.snapshot = { meta: result.snapshot, state: cloneKvState(m.state) };
    d.entries = d.entries.filter((e) => e.index > applied);
    d.written = true;
    this.counters.compactions++;
    this.#trace(`node ${m.id} compacted its log through ${applied}`);
  }

  /** Steps 3-5 of the Ready contract: messages that promise durability, apply, reads; then advance. */
  #finish(m: CoreMember, raw: RawNode, rd: Ready): void {
    for (const msg of rd.messagesAfterPersist) this.#send(m, msg);
    const currentTerm = raw.status().term;
    for (const e of rd.committedEntries) this.#apply(m, e, currentTerm);
    for (const rs of rd.readStates) {
      const read = m.reads.get(rs.context);
      if (read !== undefined) read.index = rs.index;
    }
    this.#serveReads(m);
    raw.advance(rd);
    this.#maybeCompact(m, raw);
    // Whole again once the core votes again: its log and hard state past the loss are durable
    // (the core lifts its vote fence only then), so the runtime clears its recovering record.
    if (m.disk.recovering && !raw.votesWithheld()) {
      m.disk.recovering = false;
      this.counters.recovered++;
      this.#trace(`node ${m.id} recovered: voting again`);
    }
  }

  #send(m: CoreMember, msg: Message): void {
    if (msg.type === "snapshot") {
      this.#sendSnapshot(m, msg);
      return;
    }
    this.#env.network.send(m.id, msg.to, { message: msg });
  }

  /**
   * Raft §7: sends the stored snapshot the core names to a follower that needs compacted entries.
   * The core learns the outcome from the follower's answer; without one in `snapshotReceiptMs` the
   * transfer is reported failed, so the leader probes again and offers its snapshot afresh.
   */
  #sendSnapshot(m: CoreMember, msg: Extract<Message, { type: "snapshot" }>): void {
    const { to, snapshot: meta } = msg;
    const raw = m.raw;
    if (raw === undefined) return;
    const stored = m.disk.snapshot;
    if (stored === undefined || stored.meta.index !== meta.index) {
      // The Ready contract: a snapshot compacted away meanwhile is reported, and the core offers the newer one.
      raw.reportSnapshot(to, false, meta.index);
      return;
    }
    this.#trace(`node ${m.id} sends snapshot ${meta.index} to ${to}`);
    this.#env.network.send(m.id, to, { message: msg, snapshot: stored });
    this.counters.snapshotsSent++;
    this.#env.scheduler.after(
      snapshotReceiptMs,
      () => {
        if (m.raw !== raw) return;
        raw.reportSnapshot(to, false, meta.index);
        this.#drive(m);
      },
      `snapshot receipt ${m.id}`,
    );
  }

  #persist(
    m: CoreMember,
    batch: { readonly entries: readonly Entry[]; readonly hardState?: HardState },
    snapshot: CoreSnapshot | undefined,
  ): void {
    const d = m.disk;
    if (snapshot !== undefined) {
      // Raft §7 receiver rule 7: the core installs a snapshot only when its log lacks the snapshot's
      // last entry, so the whole stored log goes with it.
      d.snapshot = snapshot;
      d.entries = [];
      d.written = true;
    }
    const first = batch.entries[0];
    if (first !== undefined) {
      d.entries = d.entries.filter((e) => e.index < first.index);
      const last = d.entries.at(-1)?.index ?? d.snapshot?.meta.index ?? 0;
      assert(last === first.index - 1, `node ${m.id}: hole in the stored log`);
      d.entries.push(...batch.entries);
      d.written = true;
    }
    if (batch.hardState !== undefined) {
      d.hardState = batch.hardState;
      d.written = true;
    }
  }

  // ------------------------------------------------------------------ state machine and clients

  #apply(m: CoreMember, e: Entry, currentTerm: number): void {
    const s = m.state;
    assert(e.index === s.appliedIndex + 1, `node ${m.id} applies ${e.index} after ${s.appliedIndex}`);
    s.appliedIndex = e.index;
    const dataHash = entryHash(e);
    this.#observations.push({
      type: "committed",
      node: m.id,
      index: e.index,
      term: e.term,
      dataHash,
      currentTerm,
    });
    this.#observations.push({ type: "applied", node: m.id, index: e.index, term: e.term, dataHash });
    if (e.kind !== "normal" || e.data.length === 0) return;
    const { command, output: answered } = applyKvCommand(s, dataHash);
    const keep: Waiter[] = [];
    for (const w of m.waiters) {
      if (w.requestId !== command.requestId) {
        keep.push(w);
        continue;
      }
      this.#observations.push({
        type: "acked-write",
        clientId: w.clientId,
        dataHash,
        index: e.index,
        term: e.term,
      });
      this.#reply(w.done, { kind: "ok", output: answered });
    }
    m.waiters = keep;
  }

  #serveReads(m: CoreMember): void {
    for (const [context, read] of m.reads) {
      if (read.index === undefined || read.index > m.state.appliedIndex) continue;
      m.reads.delete(context);
      const s = m.state.keys.get(read.key) ?? { value: null, version: 0 };
      this.#reply(read.done, { kind: "ok", output: { kind: "value", value: s.value, version: s.version } });
    }
  }

  #clientLatency(): number {
    return this.#prng.range(simTiming.clientLatencyMinMs, simTiming.clientLatencyMaxMs);
  }

  #reply(done: (r: SubmitResult) => void, result: SubmitResult): void {
    this.#env.scheduler.after(this.#clientLatency(), () => done(result), "client reply");
  }

  /** A client sends to the node it believes leads (else a random one); only a leader serves. */
  #submit(clientId: number, input: KvInput, done: (r: SubmitResult) => void, requestId: string): void {
    const n = this.#env.options.clusterSize;
    const target = this.#leaderHint.get(clientId) ?? 1 + this.#prng.below(n);
    this.#env.scheduler.after(
      this.#clientLatency(),
      () => {
        const m = this.#member(target);
        const raw = m.raw;
        if (raw === undefined) {
          this.#leaderHint.delete(clientId); // the connection fails; the client times out
          return;
        }
        const fail = (reason: string, hint: number | null) => {
          if (hint === null) this.#leaderHint.delete(clientId);
          else this.#leaderHint.set(clientId, hint);
          this.#reply(done, { kind: "failed", reason });
        };
        const status = raw.status();
        if (status.role !== "leader") {
          fail("not-leader", status.leaderId ?? 1 + this.#prng.below(n));
          return;
        }
        if (input.op === "get") {
          const context = `read-${m.id}-${this.#readSeq++}`;
          const result = raw.readIndex(context);
          if (!result.ok) fail(result.reason, null);
          else m.reads.set(context, { key: input.key, done });
        } else {
          // A retry of a request that was applied already gets the remembered answer.
          const known = m.state.answers.get(requestId);
          if (known !== undefined) {
            this.#reply(done, { kind: "ok", output: known });
            return;
          }
          const result = raw.propose(encodeKvCommand({ requestId, input }));
          if (!result.ok) fail(result.reason, null);
          else m.waiters.push({ clientId, requestId, done });
        }
        this.#drive(m);
      },
      `client ${clientId} request`,
    );
  }

  // ------------------------------------------------------------------ observations and convergence

  #observeSoft(m: CoreMember, raw: RawNode, rd: Ready): void {
    const soft = rd.softState;
    if (soft === undefined) return;
    const t = raw.status().term;
    const leading = soft.role === "leader";
    if (leading && !m.wasLeader) {
      m.commitAtElection = raw.status().commitIndex;
      this.#observations.push({ type: "became-leader", node: m.id, term: t });
      this.#trace(`node ${m.id} became leader in term ${t}`);
    }
    if (!leading && m.wasLeader) {
      this.#observations.push({ type: "stepped-down", node: m.id, term: t });
      this.#trace(`node ${m.id} stepped down in term ${t}`);
    }
    m.wasLeader = leading;
  }

  /**
   * Records the durable log. The prefix up to the durable commit index (or the snapshot, whichever
   * is further) is reported as compacted: committed entries are compared through
   * `committed`/`applied` instead, which keeps each observation small (the log grows to thousands
   * of entries).
   */
  #observeLog(m: CoreMember): void {
    const d = m.disk;
    const snap = d.snapshot?.meta;
    const last = d.entries.at(-1)?.index ?? snap?.index ?? 0;
    const commit = Math.max(Math.min(d.hardState.commitIndex, last), snap?.index ?? 0);
    const at = d.entries.findIndex((e) => e.index > commit);
    const cut = at < 0 ? d.entries.length : at;
    const tail = d.entries.slice(cut);
    const base = d.entries[cut - 1] ?? snap;
    const entries: ObservedEntry[] = tail.map((e) => ({
      index: e.index,
      term: e.term,
      dataHash: entryHash(e),
    }));
    this.#observations.push({
      type: "log",
      node: m.id,
      entries,
      ...(base === undefined ? {} : { compactedThrough: { index: base.index, term: base.term } }),
    });
  }

  observations(): readonly RaftObservation[] {
    return this.#observations;
  }

  /**
   * Liveness: after the workload stops, the cluster gets up to `settleMs` more to converge (every
   * wanted voter up, in the configuration, and applied up to the leader's commit index with the same
   * key-value state); whatever still differs then is a problem.
   */
  convergenceProblems(): readonly string[] {
    const scheduler = this.#env.scheduler;
    scheduler.runUntil(() => this.#lagging(false).length === 0, scheduler.nowMs + simTiming.settleMs);
    return this.#lagging(true);
  }

  #lagging(compareState: boolean): string[] {
    const problems: string[] = [];
    const leader = this.#leader();
    if (leader?.raw === undefined) {
      const states = [...this.#members.values()].map((m) => {
        const st = m.raw?.status();
        return st === undefined
          ? `${m.id}: down`
          : `${m.id}: ${st.role} t${st.term} last ${st.lastIndex} commit ${st.commitIndex} voters ${st.conf.voters.join(",")} leader ${st.leaderId ?? "-"}`;
      });
      return [`no leader at the end of the liveness phase (${states.join("; ")})`];
    }
    const ls = leader.raw.status();
    const voters = [...ls.conf.voters].sort((a, b) => a - b);
    const wanted = [...this.#desired].sort((a, b) => a - b);
    if (voters.join() !== wanted.join()) problems.push(`voters ${voters} but the operator wants ${wanted}`);
    if (ls.commitIndex !== ls.lastIndex)
      problems.push(`leader ${leader.id} committed ${ls.commitIndex} of ${ls.lastIndex}`);
    const want = compareState ? describeKvState(leader.state) : "";
    for (const id of voters) {
      const m = this.#member(id);
      if (m.raw === undefined) {
        problems.push(`node ${id} is down`);
        continue;
      }
      if (m.disk.recovering) {
        // The vote fence's liveness: a member whose disk was replaced must become a voter again.
        const st = m.raw.status();
        problems.push(
          `node ${id} still recovers from its wiped disk (withholds its vote; t${st.term} commit ${st.commitIndex} of leader ${leader.id}'s ${ls.commitIndex}, voters ${st.conf.voters.join(",")})`,
        );
      } else if (m.state.appliedIndex !== ls.commitIndex) {
        problems.push(
          `node ${id} applied ${m.state.appliedIndex}, leader ${leader.id} committed ${ls.commitIndex}`,
        );
      } else if (compareState && describeKvState(m.state) !== want) {
        problems.push(`node ${id}'s key-value state differs from leader ${leader.id}'s`);
      }
    }
    return problems;
  }
}
