// A cluster of real runtimes (RaftGroup + ServiceStateMachine + KvService) in one process, with
// in-memory storage and an in-memory message bus that can cut nodes off. Real timers with a short
// tick: tests wait for behaviour (bounded), never assert on timing.
import type { Env } from "../../src/node/env.js";
import { systemEnv } from "../../src/node/env.js";
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

/** Runs N members over an in-memory bus. */
export class InProcessCluster {
  readonly nodes = new Map<NodeId, InProcessNode>();
  readonly env: Env = systemEnv();
  /** Members cut off from everyone (messages to and from them are dropped). */
  readonly isolated = new Set<NodeId>();
  /** Every batch handed to a sender, with the urgency the runtime gave it (recorded when set). */
  sends: { readonly messages: readonly Message[]; readonly urgent: boolean }[] | undefined;
  readonly #ids: NodeId[];

  /** Creates (but does not start) members 1..size. */
  constructor(size: number) {
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
    const applied = new ApplyNotifier();
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
      env: this.env,
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
    node.kv = new KvService(new GroupReplication(group, node.backend, this.env));
    node.streams = new StreamService(new GroupReplication(group, node.backend, this.env), applied);
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

  /** Stops everything. */
  async close(): Promise<void> {
    for (const id of this.#ids) await this.stop(id);
  }

  /** The current leader among running members, waiting up to `timeoutMs` for one. */
  async leader(timeoutMs = 5_000): Promise<InProcessNode> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const node of this.nodes.values()) {
        if (node.group?.softState.role === "leader" && !this.isolated.has(node.id)) return node;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no leader elected in time");
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
      setImmediate(() => this.nodes.get(m.to)?.group?.receive(m));
    }
  }
}
