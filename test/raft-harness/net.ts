// A step-by-step network for the in-memory cluster: messages wait in a queue until the test delivers
// them, partitions and a seeded drop rate decide which arrive. Used by paper and interaction tests.
import assert from "node:assert/strict";
import {
  type ConfState,
  type Message,
  type NodeId,
  nodeId,
  type ProposeResult,
  type Ready,
} from "../../src/raft/index.js";
import { bytes, Cluster, type ClusterOptions, type Envelope } from "./cluster.js";

/** Options of a step-by-step cluster. */
export type NetOptions = Omit<ClusterOptions, "onSend">;

/** A cluster whose messages move only when the test says so. */
export class Net {
  readonly cluster: Cluster;
  pending: Envelope[] = [];
  /** Node id -> partition number; nodes in different partitions cannot talk. */
  #partitionOf = new Map<NodeId, number>();
  /** Probability (numerator / 1000) that a delivered message is lost. */
  dropPerMille = 0;
  /** Extra filter: return false to drop a message. */
  filter: ((m: Message) => boolean) | undefined;
  readonly dropped: Message[] = [];

  /** Creates the cluster. */
  constructor(opts: NetOptions & { onReady?: (node: NodeId, rd: Ready) => void }) {
    this.cluster = new Cluster({ ...opts, onSend: (env) => this.pending.push(env) });
  }

  /** Whether a message from `a` to `b` can pass the current partition. */
  connected(a: NodeId, b: NodeId): boolean {
    return (this.#partitionOf.get(a) ?? 0) === (this.#partitionOf.get(b) ?? 0);
  }

  /** Splits the nodes into groups that cannot reach each other; unnamed nodes join the first group. */
  partition(...groups: number[][]): void {
    this.#partitionOf.clear();
    groups.forEach((g, k) => {
      for (const id of g) this.#partitionOf.set(nodeId(id), k);
    });
  }

  /** Cuts `id` off from everyone else. */
  isolate(id: number): void {
    this.#partitionOf.set(nodeId(id), 1_000_000 + id);
  }

  /** Removes every partition. */
  heal(): void {
    this.#partitionOf.clear();
  }

  /** Delivers every queued message (those that pass), in order. Returns how many arrived. */
  deliverAll(): number {
    const batch = this.pending;
    this.pending = [];
    let n = 0;
    for (const env of batch) if (this.deliverOne(env)) n++;
    return n;
  }

  /** Delivers one envelope if the network lets it through; reports a lost snapshot to its sender. */
  deliverOne(env: Envelope): boolean {
    const m = env.msg;
    const lost =
      !this.connected(m.from, m.to) ||
      (this.filter !== undefined && !this.filter(m)) ||
      (this.dropPerMille > 0 && this.cluster.prng.below(1000) < this.dropPerMille) ||
      this.cluster.nodes.get(m.to)?.raw === undefined;
    if (lost) {
      this.dropped.push(m);
      if (m.type === "snapshot")
        this.cluster.nodes.get(m.from)?.raw?.reportSnapshot(m.to, false, m.snapshot.index);
      return false;
    }
    this.cluster.deliver(env);
    // The runtime's snapshot stream finished: tell the sender (etcd's ReportSnapshot).
    if (m.type === "snapshot")
      this.cluster.nodes.get(m.from)?.raw?.reportSnapshot(m.to, true, m.snapshot.index);
    return true;
  }

  /** Processes Readies and delivers messages until nothing moves (bounded). */
  stabilize(roundsMax = 1000): void {
    for (let round = 0; round < roundsMax; round++) {
      const readied = this.cluster.processAll();
      if (!readied && this.pending.length === 0) {
        this.cluster.checkLogMatching();
        return;
      }
      this.deliverAll();
    }
    assert.fail(`cluster did not stabilize in ${roundsMax} rounds`);
  }

  /** Ticks node `id` `n` times (Ready batches are processed by the next stabilize). */
  tick(id: number, n = 1): void {
    const raw = this.cluster.raw(id);
    for (let k = 0; k < n; k++) {
      raw.tick();
      raw.checkInvariants();
    }
  }

  /** Ticks every node that is up, `n` rounds, stabilizing after each round. */
  tickAll(n = 1): void {
    for (let k = 0; k < n; k++) {
      for (const id of this.cluster.upIds()) this.tick(id);
      this.stabilize();
    }
  }

  /** Makes `id` campaign and runs the election to its end. */
  elect(id: number): void {
    this.cluster.raw(id).campaign();
    this.stabilize();
    assert.equal(this.cluster.raw(id).status().role, "leader", `node ${id} did not win`);
  }

  /** Proposes `data` at `id` and stabilizes; returns the result. */
  propose(id: number, data: string): ProposeResult {
    const r = this.cluster.raw(id).propose(bytes(data));
    this.stabilize();
    return r;
  }

  /** The leader among the nodes that are up, if exactly one believes it leads in the highest term. */
  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const id of this.cluster.upIds()) {
      const s = this.cluster.raw(id).status();
      if (s.role === "leader" && (best === undefined || s.term > best.term)) best = { id, term: s.term };
    }
    return best?.id;
  }

  /** Adds a brand-new node that knows no configuration yet (it learns it from the leader). */
  addEmptyNode(id: number): void {
    const empty: ConfState = { voters: [], learners: [] };
    this.cluster.addNode(nodeId(id), empty);
  }
}
