// Level 2 of the simulator: the real runtime (src/node RaftGroup) over the real storage (Wal and
// HardStateStore through WalGroupStorage) on a simulated disk per node (SimFileSystem: data durable
// only once synced, a crash keeps a random prefix of the rest, possibly torn), with the simulator's
// clock, timers and randomness as the runtime's Env and Raft messages on the SimNetwork. Every
// asynchronous operation completes only when the event queue says so (runSimulationAsync lets the
// promise reactions run between events). The replicated state machine is the product's own
// (ServiceStateMachine over a MemoryBackend, rebuilt from the log on restart), and clients talk to
// each node's real KvService: the command envelope, idempotency keys, conditional puts and deletes,
// increments and ReadIndex reads are the code users run.
import type { Cancel, Env } from "../../src/node/env.js";
import type { GroupStorage, PersistBatch, StateMachine } from "../../src/node/ports.js";
import { RaftGroup } from "../../src/node/raft-group.js";
import { WalGroupStorage } from "../../src/node/wal-group-storage.js";
import {
  type ConfChange,
  type Entry,
  type GroupId,
  groupId,
  type Message,
  type NodeId,
  nodeId,
  type PersistedState,
  type SnapshotMeta,
} from "../../src/raft/index.js";
import { type ApplyOutcome, decodeEnvelope } from "../../src/service/command.js";
import { CairnError } from "../../src/service/errors.js";
import { GroupReplication } from "../../src/service/group-replication.js";
import { KvService } from "../../src/service/kv-service.js";
import type { StateReader } from "../../src/service/state.js";
import { MemoryBackend, ServiceStateMachine, type StateBackend } from "../../src/service/state-machine.js";
import { HardStateStore } from "../../src/storage/hard-state-store.js";
import { SimFileSystem } from "../../src/storage/sim-file-system.js";
import { keyKindCode } from "../../src/storage/state-store.js";
import { Wal } from "../../src/storage/wal.js";
import { assert } from "../../src/util/assert.js";
import { crc32 } from "../../src/util/crc.js";
import type { Prng } from "../../src/util/prng.js";
import { entryHash, simTiming } from "./core-cluster.js";
import { type LeaderView, quorumIndex } from "./fault-injector.js";
import type { ServiceKvInput, ServiceKvOutput } from "./kv-service-model.js";
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

/** The simulated clock starts here as epoch milliseconds (the envelope's leader timestamp). */
const epochMs = 1_700_000_000_000;

/** One incarnation of a node's process: dead once the node crashes, so its timers and I/O stop. */
interface Incarnation {
  alive: boolean;
  group: RaftGroup<ApplyOutcome> | undefined;
  readonly backend: StateBackend;
  kv: KvService | undefined;
  /** The last index this incarnation's state machine was handed (entries must come in order). */
  appliedThrough: number;
  /** The durable log as the storage reported it (for observations). */
  log: Entry[];
  /** The storage, which also knows the terms of entries handed to it but not yet durable. */
  storage: ObservedStorage | undefined;
  wasLeader: boolean;
  /** The commit index when this incarnation last became leader (aimed faults look at it). */
  commitAtElection: number;
}

interface RuntimeMember {
  readonly id: number;
  readonly fs: SimFileSystem;
  current: Incarnation | undefined;
}

/** Builds the level-2 cluster for one run; pass it to `runSimulationAsync`. */
export function runtimeCluster(hooks: { readonly trace?: (line: string) => void } = {}) {
  return (env: SimEnvironment<Message>): SimCluster<Message, ServiceKvInput, ServiceKvOutput> =>
    new RuntimeCluster(env, hooks.trace ?? (() => {}));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const hashes = new WeakMap<Uint8Array, string>();

/**
 * The digest the safety checker compares level-2 entries by: the envelope's idempotency key (which
 * names the client request) and a checksum of the whole entry (attempts differ in their timestamp).
 */
export function serviceEntryHash(e: Entry): string {
  if (e.kind !== "normal" || e.data.length === 0) return entryHash(e);
  let hash = hashes.get(e.data);
  if (hash === undefined) {
    let key: string;
    try {
      key = decodeEnvelope(e.data).idempotencyKey ?? "-";
    } catch {
      key = "undecodable";
    }
    hash = `${key}#${crc32(e.data).toString(16)}`;
    hashes.set(e.data, hash);
  }
  return hash;
}

/** Every key of every space of the state machine, as text, for comparing replicas. */
export function describeServiceState(reader: StateReader): string {
  const parts: string[] = [];
  const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  for (const space of Object.keys(keyKindCode) as (keyof typeof keyKindCode)[]) {
    for (const [key, value] of reader.range(space, new Uint8Array(0), undefined, Number.MAX_SAFE_INTEGER)) {
      parts.push(`${space}/${hex(key)}=${hex(value)}`);
    }
  }
  return parts.join("\n");
}

class RuntimeCluster implements SimCluster<Message, ServiceKvInput, ServiceKvOutput> {
  readonly #env: SimEnvironment<Message>;
  readonly #prng: Prng;
  readonly #trace: (line: string) => void;
  readonly #members = new Map<number, RuntimeMember>();
  readonly #observations: RaftObservation[] = [];
  readonly #initial: readonly NodeId[];
  readonly #desired: Set<number>;
  readonly #leaderHint = new Map<number, number>();
  /**
   * For each idempotency key, the digest of the entry that first applied it (on any node: if nodes
   * disagree, state machine safety fails anyway). An acknowledged write is that entry.
   */
  readonly #firstEntryOf = new Map<string, string>();
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
      const member: RuntimeMember = { id, fs, current: undefined };
      this.#members.set(id, member);
      this.#start(member);
    }
    this.#scheduleOperator();
    this.kv = {
      submit: (
        clientId: number,
        input: ServiceKvInput,
        done: (r: SubmitResult<ServiceKvOutput>) => void,
        requestId: string,
      ) => this.#submit(clientId, input, done, requestId),
    };
  }

  // ------------------------------------------------------------------ lifecycle

  /** The Env of one incarnation: the simulator's clock and timers, silent once the process died. */
  #envOf(inc: Incarnation): Env {
    const scheduler = this.#env.scheduler;
    return {
      nowMs: () => epochMs + scheduler.nowMs,
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
      backend: new MemoryBackend(),
      kv: undefined,
      appliedThrough: 0,
      log: [],
      storage: undefined,
      wasLeader: false,
      commitAtElection: 0,
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
    inc.storage = storage;
    const service = new ServiceStateMachine(inc.backend);
    inc.appliedThrough = service.appliedIndex();
    const stateMachine: StateMachine<ApplyOutcome> = {
      appliedIndex: () => service.appliedIndex(),
      settle: () => service.settle(),
      apply: async (entries) => {
        for (const e of entries) this.#observeApply(m.id, inc, e);
        const results = await service.apply(entries);
        entries.forEach((e, i) => {
          this.#rememberFirstEntry(e, results[i]);
        });
        return results;
      },
    };
    const env = this.#envOf(inc);
    const raftGroup = await RaftGroup.open<ApplyOutcome>({
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
        const status = inc.group?.status();
        const t = status?.term ?? 0;
        if (leading && !inc.wasLeader) {
          inc.commitAtElection = status?.commitIndex ?? 0;
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
    inc.kv = new KvService(new GroupReplication(raftGroup, inc.backend, env));
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
    const leader = this.#leader()?.inc.group;
    try {
      leader?.transferLeadership(nodeId(to));
    } catch {
      // Refused (not a voter, already leader): operator requests may fail under faults.
    }
  }

  leaderView(): LeaderView | undefined {
    const leader = this.#leader();
    const g = leader?.inc.group;
    if (leader === undefined || g === undefined) return undefined;
    const s = g.status();
    const q = quorumIndex(s.peers.filter((p) => p.voter).map((p) => p.matchIndex));
    return {
      node: leader.id,
      term: s.term,
      lastIndex: s.lastIndex,
      quorumIndex: q,
      quorumTerm: q === 0 ? 0 : leader.inc.storage?.termAt(q),
      commitAtElection: leader.inc.commitAtElection,
    };
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
    const leader = this.#leader()?.inc.group;
    if (leader === undefined) return;
    const voters = new Set<number>(leader.status().conf.voters);
    let change: ConfChange | undefined;
    for (const id of this.#desired) if (!voters.has(id)) change = { type: "add-voter", node: nodeId(id) };
    for (const id of voters) if (!this.#desired.has(id)) change = { type: "remove", node: nodeId(id) };
    if (change === undefined) return;
    leader.proposeConfChange(change).catch(() => {});
  }

  /** The running member that leads in the highest term, if any. */
  #leader(): { id: number; inc: Incarnation } | undefined {
    let best: { id: number; inc: Incarnation; term: number } | undefined;
    for (const m of this.#members.values()) {
      const inc = m.current;
      const g = inc?.group;
      if (inc === undefined || g?.softState.role !== "leader") continue;
      const term = g.status().term;
      if (best === undefined || best.term < term) best = { id: m.id, inc, term };
    }
    return best;
  }

  deliver(_from: number, to: number, message: Message): void {
    this.#members.get(to)?.current?.group?.receive(message);
  }

  // ------------------------------------------------------------------ state machine and clients

  #observeApply(node: number, inc: Incarnation, e: Entry): void {
    assert(e.index === inc.appliedThrough + 1, `node ${node} applies ${e.index} after ${inc.appliedThrough}`);
    inc.appliedThrough = e.index;
    const dataHash = serviceEntryHash(e);
    const currentTerm = inc.group?.status().term ?? e.term;
    this.#observations.push({ type: "committed", node, index: e.index, term: e.term, dataHash, currentTerm });
    this.#observations.push({ type: "applied", node, index: e.index, term: e.term, dataHash });
  }

  #rememberFirstEntry(e: Entry, outcome: ApplyOutcome | undefined): void {
    if (outcome === undefined || !outcome.ok || outcome.duplicate) return;
    const key = decodeEnvelope(e.data).idempotencyKey;
    if (key !== undefined && !this.#firstEntryOf.has(key)) this.#firstEntryOf.set(key, serviceEntryHash(e));
  }

  #clientLatency(): number {
    return this.#prng.range(simTiming.clientLatencyMinMs, simTiming.clientLatencyMaxMs);
  }

  #reply(done: (r: SubmitResult<ServiceKvOutput>) => void, result: SubmitResult<ServiceKvOutput>): void {
    this.#env.scheduler.after(this.#clientLatency(), () => done(result), "client reply");
  }

  /**
   * A client sends to the node it believes leads (else a random one). Any node serves reads (a
   * follower's ReadIndex goes through the leader); a follower refuses writes with ERR_NOT_LEADER and
   * a hint, which the client follows next time.
   */
  #submit(
    clientId: number,
    input: ServiceKvInput,
    done: (r: SubmitResult<ServiceKvOutput>) => void,
    requestId: string,
  ): void {
    const n = this.#env.options.clusterSize;
    const target = this.#leaderHint.get(clientId) ?? 1 + this.#prng.below(n);
    this.#env.scheduler.after(
      this.#clientLatency(),
      () => {
        const inc = this.#member(target).current;
        const kv = inc?.kv;
        if (inc === undefined || kv === undefined) {
          this.#leaderHint.delete(clientId); // the connection fails; the client times out
          return;
        }
        callKv(kv, input, requestId).then(
          (output) => {
            if (!inc.alive) return;
            if (input.op !== "get") {
              this.#observations.push({
                type: "acked-write",
                clientId,
                dataHash: this.#firstEntryOf.get(requestId) ?? "",
              });
            }
            this.#reply(done, { kind: "ok", output });
          },
          (error: unknown) => {
            if (!inc.alive) return;
            const code = error instanceof CairnError ? error.code : "ERR_INTERNAL";
            switch (code) {
              case "ERR_NOT_LEADER": {
                // Never appended: a definite failure. Follow the hint, or try another node.
                const hint = error instanceof CairnError ? error.details["leaderId"] : undefined;
                this.#leaderHint.set(clientId, typeof hint === "number" ? hint : 1 + this.#prng.below(n));
                this.#reply(done, { kind: "failed", reason: code });
                return;
              }
              case "ERR_UNAVAILABLE":
                // The service promises this had no effect (not appended, superseded, read refused).
                this.#leaderHint.delete(clientId);
                this.#reply(done, { kind: "failed", reason: code });
                return;
              case "ERR_TIMEOUT":
              case "ERR_SHUTTING_DOWN":
              case "ERR_STORAGE_FAILED":
              case "ERR_NO_SPACE":
                // The outcome is unknown: stay silent and let the client time out.
                return;
              default:
                // Anything else is an answer no correct service gives to these requests.
                this.#reply(done, { kind: "ok", output: { kind: "error", code } });
            }
          },
        );
      },
      `client ${clientId} request`,
    );
  }

  // ------------------------------------------------------------------ observations and convergence

  #observeLog(node: number, inc: Incarnation): void {
    const log = inc.log;
    const commit = Math.min(inc.appliedThrough, log.at(-1)?.index ?? 0);
    const at = log.findIndex((e) => e.index > commit);
    const tail = at < 0 ? [] : log.slice(at);
    const base = log[at < 0 ? log.length - 1 : at - 1];
    const entries: ObservedEntry[] = tail.map((e) => ({
      index: e.index,
      term: e.term,
      dataHash: serviceEntryHash(e),
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
    const leaderAt = this.#leader();
    const leader = leaderAt?.inc.group;
    if (leaderAt === undefined || leader === undefined) {
      const states = [...this.#members.values()].map((m) => {
        const s = m.current?.group?.status();
        return s === undefined
          ? `${m.id}: down`
          : `${m.id}: ${s.role} t${s.term} last ${s.lastIndex} commit ${s.commitIndex}`;
      });
      return [`no leader at the end of the liveness phase (${states.join("; ")})`];
    }
    const problems: string[] = [];
    const ls = leader.status();
    const voters = [...ls.conf.voters].sort((a, b) => a - b);
    const wanted = [...this.#desired].sort((a, b) => a - b);
    if (voters.join() !== wanted.join()) problems.push(`voters ${voters} but the operator wants ${wanted}`);
    if (ls.commitIndex !== ls.lastIndex)
      problems.push(`leader committed ${ls.commitIndex} of ${ls.lastIndex}`);
    const want = describeServiceState(leaderAt.inc.backend.reader);
    for (const id of voters) {
      const inc = this.#member(id).current;
      const applied = inc?.group?.appliedIndex;
      if (inc === undefined || applied === undefined) {
        problems.push(`node ${id} is down`);
      } else if (applied !== ls.commitIndex) {
        problems.push(`node ${id} applied ${applied}, leader ${leaderAt.id} committed ${ls.commitIndex}`);
      } else if (describeServiceState(inc.backend.reader) !== want) {
        problems.push(`node ${id}'s state differs from leader ${leaderAt.id}'s`);
      }
    }
    return problems;
  }
}

/** Conflict details carry the key's modify revision, or null when it is absent. */
function currentRevisionOf(error: CairnError): number | null {
  const r = error.details["currentRevision"];
  return typeof r === "number" ? r : null;
}

/**
 * Runs one request through the node's KvService and turns its answer into the model's terms: a
 * failed condition or a non-integer is an answer; every other failure is thrown for the caller.
 */
async function callKv(kv: KvService, input: ServiceKvInput, requestId: string): Promise<ServiceKvOutput> {
  const key = encoder.encode(input.key);
  const idempotencyKey = requestId;
  try {
    switch (input.op) {
      case "get": {
        const { record } = await kv.get(key);
        return record === undefined
          ? { kind: "value", value: null, version: 0, revision: 0 }
          : {
              kind: "value",
              value: decoder.decode(record.value),
              version: record.version,
              revision: record.modRevision,
            };
      }
      case "put": {
        const ack = await kv.put(key, encoder.encode(input.value), { idempotencyKey });
        return { kind: "written", revision: ack.revision, created: ack.created };
      }
      case "put-if": {
        const condition =
          input.condition.kind === "absent" ? { ifAbsent: true } : { ifRevision: input.condition.revision };
        const ack = await kv.put(key, encoder.encode(input.value), { ...condition, idempotencyKey });
        return { kind: "written", revision: ack.revision, created: ack.created };
      }
      case "delete": {
        const ack = await kv.delete(key, {
          ...(input.ifRevision === undefined ? {} : { ifRevision: input.ifRevision }),
          idempotencyKey,
        });
        return { kind: "deleted", deleted: ack.deleted, revision: ack.revision };
      }
      case "incr": {
        const ack = await kv.increment(key, BigInt(input.by), { idempotencyKey });
        return { kind: "incremented", value: ack.value, revision: ack.revision };
      }
    }
  } catch (error) {
    if (error instanceof CairnError && error.code === "ERR_CONFLICT")
      return { kind: "conflict", currentRevision: currentRevisionOf(error) };
    if (error instanceof CairnError && error.code === "ERR_NOT_INTEGER") return { kind: "not-integer" };
    throw error;
  }
}

/** A GroupStorage that reports the durable log after every load and completed persist. */
class ObservedStorage implements GroupStorage {
  readonly #inner: GroupStorage;
  readonly #report: (log: Entry[]) => void;
  #log: Entry[] = [];
  /** The log as handed to storage, durable or not: the runtime's own view of its entries. */
  #written: Entry[] = [];

  constructor(inner: GroupStorage, report: (log: Entry[]) => void) {
    this.#inner = inner;
    this.#report = report;
  }

  async load(): Promise<PersistedState | undefined> {
    const loaded = await this.#inner.load();
    this.#log = [...(loaded?.entries ?? [])];
    this.#written = this.#log;
    this.#report(this.#log);
    return loaded;
  }

  /** The term of the entry at `index` as last handed to storage, if known. */
  termAt(index: number): number | undefined {
    const first = this.#written[0];
    if (first === undefined) return undefined;
    return this.#written[index - first.index]?.term;
  }

  async persist(batch: PersistBatch): Promise<void> {
    const head = batch.entries[0];
    if (head !== undefined)
      this.#written = this.#written.filter((e) => e.index < head.index).concat(batch.entries);
    await this.#inner.persist(batch);
    if (head === undefined) return;
    this.#log = this.#log.filter((e) => e.index < head.index).concat(batch.entries);
    this.#report(this.#log);
  }

  compact(snapshot: SnapshotMeta): Promise<void> {
    return this.#inner.compact(snapshot);
  }
}
