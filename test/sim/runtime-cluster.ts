// Level 2 of the simulator: the real runtime (src/node RaftGroup) over the real storage (Wal and
// HardStateStore through WalGroupStorage) on a simulated disk per node (SimFileSystem: data durable
// only once synced, a crash keeps a random prefix of the rest, possibly torn), with the simulator's
// clock, timers and randomness as the runtime's Env and Raft messages on the SimNetwork. Every
// asynchronous operation completes only when the event queue says so (runSimulationAsync lets the
// promise reactions run between events). The replicated state machine is the checker's KV model
// (the same as level 1), rebuilt from the log on restart; the service layer (KvService) is not in
// the path yet, see README.md.
import type { Cancel, Env } from "../../src/node/env.js";
import type { GroupStorage, PersistBatch, StateMachine } from "../../src/node/ports.js";
import { RaftGroup } from "../../src/node/raft-group.js";
import { WalGroupStorage } from "../../src/node/wal-group-storage.js";
import {
  type ConfChange,
  type Entry,
  type GroupId,
  groupId,
  logIndex,
  type Message,
  type NodeId,
  nodeId,
  type PersistedState,
  type SnapshotMeta,
} from "../../src/raft/index.js";
import { HardStateStore } from "../../src/storage/hard-state-store.js";
import { SimFileSystem } from "../../src/storage/sim-file-system.js";
import { Wal } from "../../src/storage/wal.js";
import { assert } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import {
  applyKvCommand,
  describeKvState,
  emptyKvState,
  encodeKvCommand,
  entryHash,
  type KvState,
  simTiming,
} from "./core-cluster.js";
import type { KvInput, KvOutput } from "./kv-model.js";
import type { SubmitResult } from "./kv-workload.js";
import type { ObservedEntry, RaftObservation } from "./raft-safety.js";
import type { SimCluster, SimEnvironment } from "./sim-runner.js";

const group: GroupId = groupId(1);

/**
 * A longer tick than level 1 (elections after 250-500 ms): every simulated disk operation has its
 * own latency, and saving a hard state is five of them (write a temp file, fsync, rename, fsync the
 * directory), so a vote takes up to about 200 ms to become durable. With level 1's 100-200 ms
 * election timeout, candidates time out before their votes arrive and no election ever completes.
 */
const runtimeTickIntervalMs = 25;

/** One incarnation of a node's process: dead once the node crashes, so its timers and I/O stop. */
interface Incarnation {
  alive: boolean;
  group: RaftGroup<KvOutput> | undefined;
  readonly state: KvState;
  /** The durable log as the storage reported it (for observations). */
  log: Entry[];
  wasLeader: boolean;
}

interface RuntimeMember {
  readonly id: number;
  readonly fs: SimFileSystem;
  current: Incarnation | undefined;
  diskExtraMs: number;
}

/** Builds the level-2 cluster for one run; pass it to `runSimulationAsync`. */
export function runtimeCluster(hooks: { readonly trace?: (line: string) => void } = {}) {
  return (env: SimEnvironment<Message>): SimCluster<Message> =>
    new RuntimeCluster(env, hooks.trace ?? (() => {}));
}

class RuntimeCluster implements SimCluster<Message> {
  readonly #env: SimEnvironment<Message>;
  readonly #prng: Prng;
  readonly #trace: (line: string) => void;
  readonly #members = new Map<number, RuntimeMember>();
  readonly #observations: RaftObservation[] = [];
  readonly #initial: readonly NodeId[];
  readonly #desired: Set<number>;
  readonly #leaderHint = new Map<number, number>();
  readonly kv;

  constructor(env: SimEnvironment<Message>, trace: (line: string) => void) {
    this.#env = env;
    this.#prng = env.prng;
    this.#trace = trace;
    const ids = Array.from({ length: env.options.clusterSize }, (_, i) => i + 1);
    this.#initial = ids.map(nodeId);
    this.#desired = new Set(ids);
    const disk = env.options.disk;
    for (const id of ids) {
      const fs = new SimFileSystem(
        this.#prng.fork(),
        { after: (delayMs, run) => void env.scheduler.after(delayMs, run, `disk ${id}`) },
        { latencyMsMin: disk.syncLatencyMinMs, latencyMsMax: disk.syncLatencyMaxMs },
      );
      const member: RuntimeMember = { id, fs, current: undefined, diskExtraMs: 0 };
      this.#members.set(id, member);
      this.#start(member);
    }
    this.#scheduleOperator();
    this.kv = {
      submit: (clientId: number, input: KvInput, done: (r: SubmitResult) => void, requestId: string) =>
        this.#submit(clientId, input, done, requestId),
    };
  }

  // ------------------------------------------------------------------ lifecycle

  /** The Env of one incarnation: the simulator's clock and timers, silent once the process died. */
  #envOf(inc: Incarnation): Env {
    const scheduler = this.#env.scheduler;
    return {
      nowMs: () => scheduler.nowMs,
      monotonicMs: () => scheduler.nowMs,
      after: (delayMs: number, run: () => void): Cancel => {
        const id = scheduler.after(
          delayMs,
          () => {
            if (inc.alive) run();
          },
          "runtime timer",
        );
        return () => void scheduler.cancel(id);
      },
      random: this.#prng.fork(),
    };
  }

  #start(m: RuntimeMember): void {
    const inc: Incarnation = {
      alive: true,
      group: undefined,
      state: emptyKvState(),
      log: [],
      wasLeader: false,
    };
    m.current = inc;
    void this.#open(m, inc).catch((error: unknown) => {
      // A process that cannot start (corrupt log) stays down; the checkers judge the rest.
      this.#trace(`node ${m.id} failed to start: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  async #open(m: RuntimeMember, inc: Incarnation): Promise<void> {
    const fs = m.fs.process();
    const { wal, recovery } = await Wal.open(fs, "/wal", { segmentBytesMax: 4 * 1024 * 1024 });
    const hardStates = await HardStateStore.open(fs, "/hard-state");
    const storage = new ObservedStorage(new WalGroupStorage(hardStates, wal, recovery, group), (log) => {
      inc.log = log;
      if (inc.alive) this.#observeLog(m.id, inc);
    });
    const stateMachine: StateMachine<KvOutput> = {
      appliedIndex: () => logIndex(0),
      apply: (entries) => Promise.resolve(entries.map((e) => this.#apply(m.id, inc, e))),
    };
    const env = this.#envOf(inc);
    const raftGroup = await RaftGroup.open<KvOutput>({
      raft: {
        id: nodeId(m.id),
        groupId: group,
        conf: { voters: this.#initial, learners: [] },
        electionTimeoutTicks: simTiming.electionTimeoutTicks,
        heartbeatTicks: simTiming.heartbeatTicks,
        preVote: true,
        checkQuorum: true,
        appendBytesMax: 16 * 1024,
        inflightAppendsMax: 16,
      },
      env,
      storage,
      sender: {
        send: (messages) => {
          if (!inc.alive) return;
          for (const msg of messages) this.#env.network.send(m.id, msg.to, msg);
        },
      },
      stateMachine,
      tickIntervalMs: runtimeTickIntervalMs,
      proposalTimeoutMs: 2_000,
      readTimeoutMs: 2_000,
      onSoftState: (soft) => {
        if (!inc.alive) return;
        const leading = soft.role === "leader";
        const t = inc.group?.status().term ?? 0;
        if (leading && !inc.wasLeader) {
          this.#observations.push({ type: "became-leader", node: m.id, term: t });
          this.#trace(`node ${m.id} became leader in term ${t}`);
        }
        if (!leading && inc.wasLeader) this.#observations.push({ type: "stepped-down", node: m.id, term: t });
        inc.wasLeader = leading;
      },
    });
    if (!inc.alive) {
      void raftGroup.stop();
      return;
    }
    inc.group = raftGroup;
  }

  #member(id: number): RuntimeMember {
    const m = this.#members.get(id);
    assert(m !== undefined, `no member ${id}`);
    return m;
  }

  crash(node: number): void {
    const m = this.#member(node);
    const inc = m.current;
    if (inc === undefined) return;
    inc.alive = false;
    m.current = undefined;
    m.fs.crash();
    this.#observations.push({ type: "crashed", node });
    this.#trace(`node ${node} crashed`);
  }

  restart(node: number): void {
    const m = this.#member(node);
    if (m.current !== undefined) return;
    this.#observations.push({ type: "restarted", node });
    this.#trace(`node ${node} restarted`);
    this.#start(m);
  }

  setDiskExtraLatency(node: number, extraMs: number): void {
    const m = this.#member(node);
    const disk = this.#env.options.disk;
    m.fs.setFaults({
      latencyMsMin: disk.syncLatencyMinMs + extraMs,
      latencyMsMax: disk.syncLatencyMaxMs + extraMs,
    });
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
    try {
      leader?.transferLeadership(nodeId(to));
    } catch {
      // Refused (not a voter, already leader): operator requests may fail under faults.
    }
  }

  #scheduleOperator(): void {
    this.#env.scheduler.after(
      simTiming.operatorIntervalMs,
      () => {
        this.#reconcileMembership();
        this.#scheduleOperator();
      },
      "operator",
    );
  }

  #reconcileMembership(): void {
    const leader = this.#leader();
    if (leader === undefined) return;
    const voters = new Set<number>(leader.status().conf.voters);
    let change: ConfChange | undefined;
    for (const id of this.#desired) if (!voters.has(id)) change = { type: "add-voter", node: nodeId(id) };
    for (const id of voters) if (!this.#desired.has(id)) change = { type: "remove", node: nodeId(id) };
    if (change === undefined) return;
    leader.proposeConfChange(change).catch(() => {});
  }

  #leader(): RaftGroup<KvOutput> | undefined {
    let best: RaftGroup<KvOutput> | undefined;
    for (const m of this.#members.values()) {
      const g = m.current?.group;
      if (g?.softState.role !== "leader") continue;
      if (best === undefined || best.status().term < g.status().term) best = g;
    }
    return best;
  }

  deliver(_from: number, to: number, message: Message): void {
    this.#members.get(to)?.current?.group?.receive(message);
  }

  // ------------------------------------------------------------------ state machine and clients

  #apply(node: number, inc: Incarnation, e: Entry): KvOutput | undefined {
    const s = inc.state;
    assert(e.index === s.appliedIndex + 1, `node ${node} applies ${e.index} after ${s.appliedIndex}`);
    s.appliedIndex = e.index;
    const dataHash = entryHash(e);
    const currentTerm = inc.group?.status().term ?? e.term;
    this.#observations.push({ type: "committed", node, index: e.index, term: e.term, dataHash, currentTerm });
    this.#observations.push({ type: "applied", node, index: e.index, term: e.term, dataHash });
    if (e.kind !== "normal" || e.data.length === 0) return undefined;
    return applyKvCommand(s, dataHash).output;
  }

  #clientLatency(): number {
    return this.#prng.range(simTiming.clientLatencyMinMs, simTiming.clientLatencyMaxMs);
  }

  #reply(done: (r: SubmitResult) => void, result: SubmitResult): void {
    this.#env.scheduler.after(this.#clientLatency(), () => done(result), "client reply");
  }

  #submit(clientId: number, input: KvInput, done: (r: SubmitResult) => void, requestId: string): void {
    const n = this.#env.options.clusterSize;
    const target = this.#leaderHint.get(clientId) ?? 1 + this.#prng.below(n);
    this.#env.scheduler.after(
      this.#clientLatency(),
      () => {
        const inc = this.#member(target).current;
        const g = inc?.group;
        if (inc === undefined || g === undefined) {
          this.#leaderHint.delete(clientId);
          return;
        }
        const soft = g.softState;
        if (soft.role !== "leader") {
          this.#leaderHint.set(clientId, soft.leaderId ?? 1 + this.#prng.below(n));
          this.#reply(done, { kind: "failed", reason: "not-leader" });
          return;
        }
        if (input.op === "get") {
          // A failed read had no effect, so any refusal is a definite failure.
          g.readBarrier().then(
            () => {
              if (!inc.alive) return;
              const s = inc.state.keys.get(input.key) ?? { value: null, version: 0 };
              this.#reply(done, {
                kind: "ok",
                output: { kind: "value", value: s.value, version: s.version },
              });
            },
            () => {
              if (inc.alive) this.#reply(done, { kind: "failed", reason: "read refused" });
            },
          );
          return;
        }
        // Any failure of a proposal may hide a late commit: stay silent and let the client time out.
        g.propose(encodeKvCommand({ requestId, input })).then(
          (output) => {
            if (!inc.alive || output === undefined) return;
            this.#observations.push({
              type: "acked-write",
              clientId,
              dataHash: ackHash(inc.state, requestId),
            });
            this.#reply(done, { kind: "ok", output });
          },
          () => {},
        );
      },
      `client ${clientId} request`,
    );
  }

  // ------------------------------------------------------------------ observations and convergence

  #observeLog(node: number, inc: Incarnation): void {
    const log = inc.log;
    const commit = Math.min(inc.state.appliedIndex, log.at(-1)?.index ?? 0);
    const at = log.findIndex((e) => e.index > commit);
    const tail = at < 0 ? [] : log.slice(at);
    const base = log[at < 0 ? log.length - 1 : at - 1];
    const entries: ObservedEntry[] = tail.map((e) => ({
      index: e.index,
      term: e.term,
      dataHash: entryHash(e),
    }));
    this.#observations.push({
      type: "log",
      node,
      entries,
      ...(base === undefined ? {} : { compactedThrough: { index: base.index, term: base.term } }),
    });
  }

  observations(): readonly RaftObservation[] {
    return this.#observations;
  }

  convergenceProblems(): readonly string[] {
    const problems: string[] = [];
    let leaderMember: RuntimeMember | undefined;
    for (const m of this.#members.values()) {
      const g = m.current?.group;
      if (g?.softState.role !== "leader") continue;
      if (
        leaderMember?.current?.group === undefined ||
        leaderMember.current.group.status().term < g.status().term
      )
        leaderMember = m;
    }
    const leaderInc = leaderMember?.current;
    const leader = leaderInc?.group;
    if (leaderMember === undefined || leaderInc === undefined || leader === undefined) {
      const states = [...this.#members.values()].map((m) => {
        const s = m.current?.group?.status();
        return s === undefined
          ? `${m.id}: down`
          : `${m.id}: ${s.role} t${s.term} last ${s.lastIndex} commit ${s.commitIndex}`;
      });
      return [`no leader at the end of the liveness phase (${states.join("; ")})`];
    }
    const ls = leader.status();
    const voters = [...ls.conf.voters].sort((a, b) => a - b);
    const wanted = [...this.#desired].sort((a, b) => a - b);
    if (voters.join() !== wanted.join()) problems.push(`voters ${voters} but the operator wants ${wanted}`);
    if (ls.commitIndex !== ls.lastIndex)
      problems.push(`leader committed ${ls.commitIndex} of ${ls.lastIndex}`);
    const want = describeKvState(leaderInc.state);
    for (const id of voters) {
      const inc = this.#member(id).current;
      if (inc?.group === undefined) {
        problems.push(`node ${id} is down`);
      } else if (inc.state.appliedIndex !== ls.commitIndex) {
        problems.push(
          `node ${id} applied ${inc.state.appliedIndex}, leader ${leaderMember.id} committed ${ls.commitIndex}`,
        );
      } else if (describeKvState(inc.state) !== want) {
        problems.push(`node ${id}'s key-value state differs from leader ${leaderMember.id}'s`);
      }
    }
    return problems;
  }
}

/** The digest of the entry that first applied `requestId` (idempotent retries share one effect). */
function ackHash(state: KvState, requestId: string): string {
  return state.firstEntryOf.get(requestId) ?? "";
}

/** A GroupStorage that reports the durable log after every load and completed persist. */
class ObservedStorage implements GroupStorage {
  readonly #inner: GroupStorage;
  readonly #report: (log: Entry[]) => void;
  #log: Entry[] = [];

  constructor(inner: GroupStorage, report: (log: Entry[]) => void) {
    this.#inner = inner;
    this.#report = report;
  }

  async load(): Promise<PersistedState | undefined> {
    const loaded = await this.#inner.load();
    this.#log = [...(loaded?.entries ?? [])];
    this.#report(this.#log);
    return loaded;
  }

  async persist(batch: PersistBatch): Promise<void> {
    await this.#inner.persist(batch);
    const first = batch.entries[0];
    if (first === undefined) return;
    this.#log = this.#log.filter((e) => e.index < first.index).concat(batch.entries);
    this.#report(this.#log);
  }

  compact(snapshot: SnapshotMeta): Promise<void> {
    return this.#inner.compact(snapshot);
  }
}
