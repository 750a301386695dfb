// A cluster of real runtimes (RaftGroup + ServiceStateMachine + KvService) in one process, with
// in-memory storage and an in-memory message bus that can cut nodes off, on the simulator's clock
// (SimClock): every timer and message delivery is an event of one scheduler, so a test's run depends
// on its seed alone, not on the machine's load. Tests wait for behaviour, never assert on timing.
import { after, afterEach, beforeEach } from "node:test";
import type { GroupStorage, PersistBatch } from "../../src/node/ports.js";
import { RaftGroup } from "../../src/node/raft-group.js";
import {
  type Entry,
  groupId,
  type HardState,
  type Message,
  type NodeId,
  nodeId,
  type PersistedState,
  type SnapshotMeta,
} from "../../src/raft/index.js";
import { ApplyNotifier } from "../../src/service/apply-notifier.js";
import type { ApplyOutcome } from "../../src/service/command.js";
import { GroupReplication } from "../../src/service/group-replication.js";
import { KvService } from "../../src/service/kv-service.js";
import { MemoryBackend, ServiceStateMachine } from "../../src/service/state-machine.js";
import { StreamService } from "../../src/service/stream-service.js";
import { SimClock } from "./sim-clock.js";

/** Storage that survives a simulated restart of its node (it lives in the test). */
export class MemoryGroupStorage implements GroupStorage {
  hardState: HardState | undefined;
  snapshot: SnapshotMeta | undefined;
  entries: Entry[] = [];

  async load(): Promise<PersistedState | undefined> {
    if (this.hardState === undefined) return undefined;
    return {
      hardState: this.hardState,
      ...(this.snapshot ? { snapshot: this.snapshot } : {}),
      entries: [...this.entries],
    };
  }

  async persist(batch: PersistBatch): Promise<void> {
    await Promise.resolve();
    if (batch.snapshot !== undefined) {
      this.snapshot = batch.snapshot;
      this.entries = this.entries.filter((e) => e.index > (batch.snapshot?.index ?? 0));
    }
    const first = batch.entries[0];
    if (first !== undefined) {
      this.entries = this.entries.filter((e) => e.index < first.index);
      this.entries.push(...batch.entries);
    }
    if (batch.hardState !== undefined) this.hardState = batch.hardState;
  }

  async compact(snapshot: SnapshotMeta): Promise<void> {
    this.snapshot = snapshot;
    this.entries = this.entries.filter((e) => e.index > snapshot.index);
  }
}

/** One member of the in-process cluster. */
export interface InProcessNode {
  readonly id: NodeId;
  readonly storage: MemoryGroupStorage;
  backend: MemoryBackend;
  group: RaftGroup<ApplyOutcome> | undefined;
  kv: KvService | undefined;
  streams: StreamService | undefined;
}

/** How long a message takes from one member to another, in simulated milliseconds. */
const deliveryDelayMs = 1;

/** Runs N members over an in-memory bus, on a simulated clock. */
export class InProcessCluster {
  readonly nodes = new Map<NodeId, InProcessNode>();
  /**
   * The one clock of every member. It runs while started: a test file starts it before each test and
   * pauses it after (see {@link runClockDuringTests}), so no time passes between tests.
   */
  readonly clock: SimClock;
  /** Members cut off from everyone (messages to and from them are dropped). */
  readonly isolated = new Set<NodeId>();
  /** Every batch handed to a sender, with the urgency the runtime gave it (recorded when set). */
  sends: { readonly messages: readonly Message[]; readonly urgent: boolean }[] | undefined;
  readonly #ids: NodeId[];

  /** Creates (but does not start) members 1..size; `seed` decides every random choice of the run. */
  constructor(size: number, seed = 1) {
    this.clock = new SimClock(seed);
    this.#ids = Array.from({ length: size }, (_, i) => nodeId(i + 1));
    for (const id of this.#ids) {
      this.nodes.set(id, {
        id,
        storage: new MemoryGroupStorage(),
        backend: new MemoryBackend(),
        group: undefined,
        kv: undefined,
        streams: undefined,
      });
    }
  }

  /** Starts (or restarts, from its storage and a fresh state machine) one member. */
  async start(id: NodeId): Promise<void> {
    const node = this.#node(id);
    node.backend = new MemoryBackend();
    const env = this.clock.env();
    const applied = new ApplyNotifier(undefined, env);
    const group = await RaftGroup.open<ApplyOutcome>({
      raft: {
        id,
        groupId: groupId(1),
        conf: { voters: this.#ids, learners: [] },
        electionTimeoutTicks: 10,
        heartbeatTicks: 1,
        preVote: true,
        checkQuorum: true,
        appendBytesMax: 1024 * 1024,
        inflightAppendsMax: 64,
      },
      env,
      storage: node.storage,
      sender: {
        send: (messages, urgent) => {
          this.sends?.push({ messages, urgent: urgent === true });
          this.#deliver(messages);
        },
      },
      stateMachine: new ServiceStateMachine(node.backend, undefined, (touched) => applied.notify(touched)),
      tickIntervalMs: 10,
      proposalTimeoutMs: 2_000,
      readTimeoutMs: 2_000,
    });
    node.group = group;
    node.kv = new KvService(new GroupReplication(group, node.backend, env));
    node.streams = new StreamService(new GroupReplication(group, node.backend, env), applied);
  }

  /** Starts every member. */
  async startAll(): Promise<void> {
    for (const id of this.#ids) await this.start(id);
  }

  /** Stops a member as a crash would (its storage stays; its state machine is rebuilt on start). */
  async stop(id: NodeId): Promise<void> {
    const node = this.#node(id);
    await node.group?.stop();
    node.group = undefined;
    node.kv = undefined;
    node.streams = undefined;
  }

  /**
   * Stops everything, running the clock meanwhile (stopping may wait for a write in flight); a clock
   * that was paused is paused again.
   */
  async close(): Promise<void> {
    const wasStarted = this.clock.started;
    this.clock.start();
    for (const id of this.#ids) await this.stop(id);
    if (!wasStarted) await this.clock.pause();
  }

  /** The current leader among running members, waiting up to `timeoutMs` simulated ms for one. */
  async leader(timeoutMs = 5_000): Promise<InProcessNode> {
    let found: InProcessNode | undefined;
    await this.clock.waitFor(
      "a leader among the running members",
      () => {
        found = [...this.nodes.values()].find(
          (node) => node.group?.softState.role === "leader" && !this.isolated.has(node.id),
        );
        return found !== undefined;
      },
      timeoutMs,
    );
    if (found === undefined) throw new Error("no leader elected in time");
    return found;
  }

  #node(id: NodeId): InProcessNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  #deliver(messages: readonly Message[]): void {
    for (const m of messages) {
      if (this.isolated.has(m.from) || this.isolated.has(m.to)) continue;
      // Asynchronously, as a network would: never re-enter the sender's loop.
      this.clock.after(deliveryDelayMs, () => this.nodes.get(m.to)?.group?.receive(m), "deliver");
    }
  }
}

/**
 * Runs `cluster`'s clock during each test of the enclosing suite and pauses it between them, so that
 * no simulated time passes while node:test moves on (the amount would depend on the runner); closes
 * the cluster after the suite. Call it inside `describe`, right after creating the cluster.
 */
export function runClockDuringTests(cluster: InProcessCluster): void {
  beforeEach(() => cluster.clock.start());
  afterEach(() => cluster.clock.pause());
  after(() => cluster.close());
}
