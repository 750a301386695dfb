// A cluster of real nodes in one process, each assembled by CairnNode as `cairn node` assembles it
// (storage, runtime, peer host, services, housekeeping), with the in-memory twins of its I/O: a
// simulated disk (SimFileSystem), the lmdb-like MemoryStateStore and the fault-injecting in-memory
// transport (MemoryNetwork), all on the simulator's clock (SimClock): every timer, disk completion
// and message delivery is an event of one scheduler, so a test's run depends on its seed alone, not
// on the machine's load. Tests wait for behaviour, never assert on timing.
import { after, afterEach, beforeEach } from "node:test";
import {
  type GroupStorage,
  type MessageSender,
  type NodeWireMessage,
  nodeWireCodec,
  type PersistBatch,
} from "../../src/node/index.js";
import { CairnNode } from "../../src/node-assembly/index.js";
import type { Message, NodeId, PersistedState, SnapshotMeta } from "../../src/raft/index.js";
import { nodeId } from "../../src/raft/index.js";
import { MemoryStateStore, SimFileSystem } from "../../src/storage/index.js";
import { MemoryNetwork } from "../../src/transport/index.js";
import { Prng } from "../../src/util/prng.js";
import { SimClock } from "./sim-clock.js";

/**
 * A node's log storage as the test reaches it: what CairnNode built, with a switch that makes every
 * later write fail as a broken disk would.
 */
export class FaultableStorage implements GroupStorage {
  readonly #inner: GroupStorage;
  #failure: Error | undefined;
  #held: { readonly promise: Promise<void>; readonly resolve: () => void } | undefined;

  constructor(inner: GroupStorage) {
    this.#inner = inner;
  }

  /** From now on every persist and compaction fails with `error`. */
  failWith(error: Error): void {
    this.#failure = error;
  }

  load(): Promise<PersistedState | undefined> {
    return this.#inner.load();
  }

  /** From now on every persist waits until {@link release} (a disk that stopped answering). */
  hold(): void {
    if (this.#held !== undefined) return;
    let resolve: () => void = () => {};
    const promise = new Promise<void>((done) => {
      resolve = done;
    });
    this.#held = { promise, resolve };
  }

  /** Lets held and later persists through. */
  release(): void {
    this.#held?.resolve();
    this.#held = undefined;
  }

  async persist(batch: PersistBatch): Promise<void> {
    while (this.#held !== undefined) await this.#held.promise;
    return this.#failure === undefined ? this.#inner.persist(batch) : Promise.reject(this.#failure);
  }

  compact(snapshot: SnapshotMeta): Promise<void> {
    return this.#failure === undefined ? this.#inner.compact(snapshot) : Promise.reject(this.#failure);
  }
}

/** One member of the in-process cluster: its disk and state store outlive its incarnations. */
export interface InProcessNode {
  readonly id: NodeId;
  readonly fs: SimFileSystem;
  readonly store: MemoryStateStore;
  /** The running node, while it runs. */
  node: CairnNode | undefined;
  /** The running node's log storage. */
  storage: FaultableStorage | undefined;
}

/** Runs N members over an in-memory network, on a simulated clock. */
export class InProcessCluster {
  readonly nodes = new Map<NodeId, InProcessNode>();
  /**
   * The one clock of every member. It runs while started: a test file starts it before each test and
   * pauses it after (see {@link runClockDuringTests}), so no time passes between tests.
   */
  readonly clock: SimClock;
  /** Every batch handed to a sender, with the urgency the runtime gave it (recorded when set). */
  sends: { readonly messages: readonly Message[]; readonly urgent: boolean }[] | undefined;
  readonly #ids: NodeId[];
  readonly #network: MemoryNetwork<NodeWireMessage>;
  /** Members cut off from everyone. */
  readonly #isolated = new Set<NodeId>();

  /** Creates (but does not start) members 1..size; `seed` decides every random choice of the run. */
  constructor(size: number, seed = 1) {
    this.clock = new SimClock(seed);
    const clock = this.clock;
    const timers = clock.env();
    const prng = new Prng(seed).fork();
    this.#network = new MemoryNetwork<NodeWireMessage>({
      env: {
        nowMs: () => clock.nowMs,
        setTimer: (delayMs, callback) => {
          // One millisecond at least: a delivery never re-enters the sender's loop.
          return { cancel: timers.after(Math.max(1, delayMs), callback) };
        },
        below: (bound) => prng.below(bound),
      },
      codec: nodeWireCodec,
    });
    this.#ids = Array.from({ length: size }, (_, i) => nodeId(i + 1));
    const disk = { after: (delayMs: number, run: () => void) => clock.after(delayMs, run, "disk") };
    for (const id of this.#ids) {
      this.nodes.set(id, {
        id,
        fs: new SimFileSystem(prng.fork(), disk),
        store: new MemoryStateStore({ scheduler: disk }),
        node: undefined,
        storage: undefined,
      });
    }
  }

  /** Starts (or restarts, from its disk and state store) one member. */
  async start(id: NodeId): Promise<void> {
    const member = this.#member(id);
    const members = this.#ids.map((m) => ({ id: m, name: `n${m}`, peerAddress: `memory:${m}` }));
    member.node = await CairnNode.open({
      fs: member.fs.process(),
      dataDir: "/",
      env: this.clock.env(),
      transport: this.#network.transport(id),
      stateStore: member.store,
      membership: {
        clusterId: "in-process",
        id,
        name: `n${id}`,
        bootstrapped: true,
        initialVoters: this.#ids,
        members,
      },
      clientAddresses: { httpUrl: `http://n${id}.in-process` },
      peerAddress: `memory:${id}`,
      hooks: {
        wrapStorage: (inner) => {
          member.storage = new FaultableStorage(inner);
          return member.storage;
        },
        wrapSender: (inner): MessageSender => ({
          send: (messages, urgent) => {
            this.sends?.push({ messages, urgent: urgent === true });
            inner.send(messages, urgent);
          },
        }),
      },
    });
  }

  /** Starts every member. */
  async startAll(): Promise<void> {
    for (const id of this.#ids) await this.start(id);
  }

  /** Stops a member (its disk and state store stay; a restart recovers from them). */
  async stop(id: NodeId): Promise<void> {
    const member = this.#member(id);
    const node = member.node;
    member.node = undefined;
    member.storage = undefined;
    await node?.close();
  }

  /** Cuts a member off from everyone, both ways. */
  isolate(id: NodeId): void {
    this.#isolated.add(id);
    this.#network.isolate(id, this.#ids);
  }

  /** Ends a member's isolation. */
  reconnect(id: NodeId): void {
    this.#isolated.delete(id);
    this.#network.heal();
    for (const cut of this.#isolated) this.#network.isolate(cut, this.#ids);
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

  /** The current leader among running, connected members, waiting up to `timeoutMs` simulated ms for one. */
  async leader(timeoutMs = 5_000): Promise<CairnNode> {
    let found: CairnNode | undefined;
    await this.clock.waitFor(
      "a leader among the running members",
      () => {
        found = [...this.nodes.values()].find(
          (m) => m.node?.group.softState.role === "leader" && !this.#isolated.has(m.id),
        )?.node;
        return found !== undefined;
      },
      timeoutMs,
    );
    if (found === undefined) throw new Error("no leader elected in time");
    return found;
  }

  /** The running members other than `id`. */
  others(id: NodeId): CairnNode[] {
    return [...this.nodes.values()].flatMap((m) => (m.id === id || m.node === undefined ? [] : [m.node]));
  }

  /** The member `id`. */
  member(id: NodeId): InProcessNode {
    return this.#member(id);
  }

  #member(id: NodeId): InProcessNode {
    const member = this.nodes.get(id);
    if (member === undefined) throw new Error(`no node ${id}`);
    return member;
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
