// The MIT 6.5840 Raft lab's tester, rebuilt over the in-memory cluster with simulated time: an event
// queue of message deliveries and ticks (100 ms each, so at most 10 heartbeats per second), a
// network that can disconnect servers, drop and delay messages and reorder replies, and the lab's
// helpers (checkOneLeader, one, nCommitted, wait ...). Deterministic from one seed.
import assert from "node:assert/strict";
import { type DistributiveOmit, type Message, type NodeId, nodeId } from "../../src/raft/index.js";
import { bytes, Cluster, type Envelope } from "../raft-harness/cluster.js";

/** Simulated milliseconds per tick. */
export const tickMs = 100;
/** The lab's RaftElectionTimeout (used for its sleeps). */
export const raftElectionTimeoutMs = 1000;

/** Options of a lab configuration. */
export interface LabOptions {
  readonly servers: number;
  readonly seed: number;
  readonly unreliable?: boolean;
  readonly longReordering?: boolean;
  /** Snapshot every this many applied entries (the lab's SnapShotInterval is 10). */
  readonly snapshotEvery?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
}

type Event =
  | { readonly at: number; readonly seq: number; readonly kind: "deliver"; readonly env: Envelope }
  | {
      readonly at: number;
      readonly seq: number;
      readonly kind: "tick";
      readonly node: NodeId;
      readonly life: number;
    }
  | {
      readonly at: number;
      readonly seq: number;
      readonly kind: "ready";
      readonly node: NodeId;
      readonly life: number;
    };

const requestTypes = new Set<Message["type"]>([
  "append",
  "heartbeat",
  "vote-request",
  "snapshot",
  "timeout-now",
  "read-index",
]);

/** A binary min-heap of events by (time, sequence). */
class EventQueue {
  #items: Event[] = [];
  get size(): number {
    return this.#items.length;
  }
  peek(): Event | undefined {
    return this.#items[0];
  }
  push(e: Event): void {
    const a = this.#items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i] as Event, a[p] as Event)) break;
      [a[i], a[p]] = [a[p] as Event, a[i] as Event];
      i = p;
    }
  }
  pop(): Event | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l] as Event, a[m] as Event)) m = l;
        if (r < a.length && before(a[r] as Event, a[m] as Event)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as Event, a[i] as Event];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** The lab's tester over simulated time. Servers are numbered 1..servers. */
export class Lab {
  readonly cluster: Cluster;
  readonly servers: number;
  now = 0;
  #seq = 0;
  readonly #queue = new EventQueue();
  readonly #connected = new Map<NodeId, boolean>();
  readonly #life = new Map<NodeId, number>();
  readonly #readyScheduled = new Set<NodeId>();
  unreliable: boolean;
  longReordering: boolean;
  /** Request messages sent (the lab counts RPCs, not replies). */
  rpcCount = 0;
  /** Entry payload bytes carried by appends. */
  rpcBytes = 0;

  /** Creates and starts `servers` connected servers. */
  constructor(opts: LabOptions) {
    this.servers = opts.servers;
    this.unreliable = opts.unreliable ?? false;
    this.longReordering = opts.longReordering ?? false;
    const ids = Array.from({ length: opts.servers }, (_, k) => k + 1);
    this.cluster = new Cluster({
      seed: opts.seed,
      voters: ids,
      electionTimeoutTicks: 5,
      heartbeatTicks: 1,
      preVote: opts.preVote ?? true,
      checkQuorum: opts.checkQuorum ?? true,
      appendBytesMax: 64 * 1024,
      inflightAppendsMax: 16,
      ...(opts.snapshotEvery === undefined ? {} : { snapshotEvery: opts.snapshotEvery }),
      onSend: (env) => this.#send(env),
    });
    for (const id of ids) {
      this.#connected.set(nodeId(id), true);
      this.#life.set(nodeId(id), 0);
      this.#scheduleTick(nodeId(id), this.cluster.prng.below(tickMs));
    }
  }

  #push(e: DistributiveOmit<Event, "seq">): void {
    this.#queue.push({ ...e, seq: this.#seq++ });
  }

  #scheduleTick(id: NodeId, delayMs: number): void {
    this.#push({ at: this.now + delayMs, kind: "tick", node: id, life: this.#life.get(id) ?? 0 });
  }

  #send(env: Envelope): void {
    const m = env.msg;
    const isRequest = requestTypes.has(m.type);
    if (isRequest) this.rpcCount++;
    if (m.type === "append") for (const e of m.entries) this.rpcBytes += e.data.length;
    const prng = this.cluster.prng;
    let delay = 1 + prng.below(3);
    if (this.unreliable) {
      delay = prng.below(27);
      // labrpc: an unreliable network loses about 10% of requests and 10% of replies.
      if (prng.chance(1, 10)) {
        this.#lost(m);
        return;
      }
    }
    if (this.longReordering && !isRequest && prng.chance(2, 3))
      delay = 200 + prng.below(1 + prng.below(2000));
    this.#push({ at: this.now + delay, kind: "deliver", env });
  }

  #lost(m: Message): void {
    if (m.type === "snapshot")
      this.cluster.nodes.get(m.from)?.raw?.reportSnapshot(m.to, false, m.snapshot.index);
  }

  #run(e: Event): void {
    if (e.kind === "ready") {
      this.#readyScheduled.delete(e.node);
      if (e.life === this.#life.get(e.node)) this.cluster.processReady(e.node);
      return;
    }
    if (e.kind === "tick") {
      if (e.life !== this.#life.get(e.node)) return;
      const raw = this.cluster.nodes.get(e.node)?.raw;
      if (raw === undefined) return;
      raw.tick();
      raw.checkInvariants();
      this.cluster.processReady(e.node);
      this.#scheduleTick(e.node, tickMs);
      return;
    }
    const m = e.env.msg;
    const ok = this.#connected.get(m.from) === true && this.#connected.get(m.to) === true;
    if (!ok || this.cluster.nodes.get(m.to)?.raw === undefined) {
      this.#lost(m);
      return;
    }
    this.cluster.deliver(e.env);
    if (m.type === "snapshot")
      this.cluster.nodes.get(m.from)?.raw?.reportSnapshot(m.to, true, m.snapshot.index);
    this.cluster.processReady(m.to);
  }

  /** Runs the simulation for `ms` simulated milliseconds. */
  sleep(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const next = this.#queue.peek();
      if (next === undefined || next.at > until) break;
      this.#queue.pop();
      this.now = next.at;
      this.#run(next);
    }
    this.now = until;
  }

  // ------------------------------------------------------------ the lab's config API

  /** Cuts server `i` off the network (both directions). */
  disconnect(i: number): void {
    this.#connected.set(nodeId(i), false);
  }

  /** Reconnects server `i`. */
  connect(i: number): void {
    this.#connected.set(nodeId(i), true);
  }

  /** Whether server `i` is connected. */
  isConnected(i: number): boolean {
    return this.#connected.get(nodeId(i)) === true;
  }

  /** Kills server `i` (crash1): its persisted state survives; it is also disconnected. */
  crash(i: number): void {
    this.disconnect(i);
    if (this.cluster.node(i).raw === undefined) return;
    this.cluster.crash(i);
    this.#life.set(nodeId(i), (this.#life.get(nodeId(i)) ?? 0) + 1);
  }

  /** Restarts server `i` from its persisted state (start1); it stays disconnected until connect(i). */
  restart(i: number): void {
    if (this.cluster.node(i).raw !== undefined) this.crash(i);
    this.cluster.restart(i);
    this.#scheduleTick(nodeId(i), this.cluster.prng.below(tickMs));
  }

  /** Whether server `i` is running. */
  isUp(i: number): boolean {
    return this.cluster.node(i).raw !== undefined;
  }

  /** Start(cmd) at server `i`: the index and term it would have, and whether `i` believes it leads. */
  start(i: number, cmd: string): { index: number; term: number; isLeader: boolean } {
    const raw = this.cluster.node(i).raw;
    if (raw === undefined) return { index: -1, term: -1, isLeader: false };
    const r = raw.propose(bytes(cmd));
    // Like a runtime's loop: proposals made at the same instant share one Ready (and one append).
    const id = nodeId(i);
    if (!this.#readyScheduled.has(id)) {
      this.#readyScheduled.add(id);
      this.#push({ at: this.now, kind: "ready", node: id, life: this.#life.get(id) ?? 0 });
    }
    if (!r.ok) return { index: -1, term: raw.status().term, isLeader: false };
    return { index: r.index, term: r.term, isLeader: true };
  }

  /** GetState() of server `i`. */
  state(i: number): { term: number; isLeader: boolean } {
    const s = this.cluster.raw(i).status();
    return { term: s.term, isLeader: s.role === "leader" };
  }

  /** Ids 1..servers. */
  ids(): number[] {
    return Array.from({ length: this.servers }, (_, k) => k + 1);
  }

  /**
   * checkOneLeader: up to 10 times, sleep about half a second, then require at most one leader per
   * term among connected servers; returns the leader of the latest term.
   */
  checkOneLeader(): number {
    for (let iter = 0; iter < 10; iter++) {
      this.sleep(450 + this.cluster.prng.below(100));
      const byTerm = new Map<number, number[]>();
      for (const i of this.ids()) {
        if (!this.isConnected(i) || !this.isUp(i)) continue;
        const s = this.state(i);
        if (s.isLeader) byTerm.set(s.term, [...(byTerm.get(s.term) ?? []), i]);
      }
      let last = -1;
      for (const [t, leaders] of byTerm) {
        assert.ok(leaders.length <= 1, `term ${t} has ${leaders.length} (>1) leaders`);
        if (t > last) last = t;
      }
      const leader = byTerm.get(last)?.[0];
      if (leader !== undefined) return leader;
    }
    assert.fail("expected one leader, got none");
  }

  /** checkTerms: every connected server agrees on the term; returns it. */
  checkTerms(): number {
    let term = -1;
    for (const i of this.ids()) {
      if (!this.isConnected(i) || !this.isUp(i)) continue;
      const t = this.state(i).term;
      if (term === -1) term = t;
      else assert.equal(t, term, "servers disagree on term");
    }
    return term;
  }

  /** checkNoLeader: no connected server believes it leads. */
  checkNoLeader(): void {
    for (const i of this.ids()) {
      if (this.isConnected(i) && this.isUp(i))
        assert.ok(!this.state(i).isLeader, `expected no leader, ${i} claims`);
    }
  }

  /** How many servers applied something at `index`, and what (they must all agree). */
  nCommitted(index: number): { count: number; cmd: string | undefined } {
    let count = 0;
    let cmd: string | undefined;
    for (const n of this.cluster.nodes.values()) {
      const v = n.app.values.get(index);
      if (v === undefined) continue;
      if (cmd !== undefined) assert.equal(v, cmd, `committed values do not match at index ${index}`);
      cmd = v;
      count++;
    }
    return { count, cmd };
  }

  /**
   * one(cmd, expectedServers, retry): submit `cmd` to whichever server leads, wait (up to 2 s per
   * try, 10 s in all) until at least `expectedServers` applied it; returns its index.
   */
  one(cmd: string, expectedServers: number, retry: boolean): number {
    const t0 = this.now;
    let starti = 0;
    while (this.now - t0 < 10_000) {
      let index = -1;
      for (let k = 0; k < this.servers; k++) {
        starti = (starti % this.servers) + 1;
        if (!this.isConnected(starti) || !this.isUp(starti)) continue;
        const r = this.start(starti, cmd);
        if (r.isLeader) {
          index = r.index;
          break;
        }
      }
      if (index !== -1) {
        const t1 = this.now;
        while (this.now - t1 < 2000) {
          const { count, cmd: got } = this.nCommitted(index);
          if (count >= expectedServers && got === cmd) return index;
          this.sleep(20);
        }
        if (!retry) assert.fail(`one(${cmd}) failed to reach agreement`);
      } else {
        this.sleep(50);
      }
    }
    assert.fail(`one(${cmd}) failed to reach agreement in 10 s`);
  }

  /** wait(index, n, startTerm): waits for `n` servers to commit `index`; undefined if the term moved on. */
  wait(index: number, n: number, startTerm: number): string | undefined {
    let to = 10;
    for (let iters = 0; iters < 30; iters++) {
      if (this.nCommitted(index).count >= n) break;
      this.sleep(to);
      if (to < 1000) to *= 2;
      if (startTerm > -1) {
        for (const i of this.ids()) {
          if (this.isUp(i) && this.state(i).term > startTerm) return undefined;
        }
      }
    }
    const { count, cmd } = this.nCommitted(index);
    assert.ok(count >= n, `only ${count} decided for index ${index}; wanted ${n}`);
    return cmd;
  }

  /** The largest log index any server applied. */
  maxIndex(): number {
    let max = 0;
    for (const n of this.cluster.nodes.values()) max = Math.max(max, n.app.appliedIndex);
    return max;
  }

  /** A random command string. */
  randCmd(): string {
    return `c${this.cluster.prng.nextU32()}`;
  }
}
