// An in-memory Raft cluster for tests: RawNodes with a simulated disk each, a pluggable network,
// crash (rebuild from what was persisted) and cluster-wide safety checks after every step. Everything
// is deterministic from one seed. Reused by the paper tests, the interaction tests and the lab.
import assert from "node:assert/strict";
import {
  type ConfState,
  type Entry,
  type GroupId,
  groupId,
  type HardState,
  type LogIndex,
  logIndex,
  type Message,
  type NodeId,
  nodeId,
  type RaftConfig,
  RawNode,
  type ReadState,
  type Ready,
  type SnapshotMeta,
  term,
} from "../../src/raft/index.js";
import { Prng } from "../../src/util/prng.js";

/** A message on the wire, with the snapshot bytes the runtime would stream alongside a snapshot. */
export interface Envelope {
  readonly msg: Message;
  readonly snapshotData?: AppState;
}

/** The harness's state machine: the data applied at each index (null for no-ops and conf changes). */
export interface AppState {
  readonly appliedIndex: number;
  readonly values: ReadonlyMap<number, string>;
}

/** What survives a crash: the persisted hard state, snapshot and log. */
export interface Disk {
  /** Whether anything was ever persisted; a member that never wrote restarts as brand-new. */
  written: boolean;
  hardState: HardState;
  snapshot: { meta: SnapshotMeta; data: AppState } | undefined;
  entries: Entry[];
}

/** One member: its core (absent while crashed), disk and volatile state machine. */
export interface SimNode {
  readonly id: NodeId;
  raw: RawNode | undefined;
  readonly disk: Disk;
  app: { appliedIndex: number; values: Map<number, string> };
  readStates: ReadState[];
  /** Snapshot bytes received with a snapshot message, kept until the core says to install them. */
  incomingSnapshots: Map<number, AppState>;
}

/** Options of a cluster. */
export interface ClusterOptions {
  readonly seed: number;
  readonly voters: readonly number[];
  readonly learners?: readonly number[];
  readonly electionTimeoutTicks?: number;
  readonly heartbeatTicks?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly appendBytesMax?: number;
  readonly inflightAppendsMax?: number;
  /** Take a snapshot and compact whenever the applied index reaches a multiple of this. */
  readonly snapshotEvery?: number;
  /** Called for every message a node sends; the network decides when (or whether) it arrives. */
  readonly onSend: (env: Envelope) => void;
  /** Called for every applied entry (after the safety check). */
  readonly onApply?: (node: NodeId, entry: Entry) => void;
  /** Called for every Ready processed, before it is handled (for traces). */
  readonly onReady?: (node: NodeId, rd: Ready) => void;
}

/** Decodes harness payloads (UTF-8 strings). */
export const text = new TextDecoder();
/** Encodes harness payloads. */
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A cluster of in-memory members with cluster-wide safety checks. */
export class Cluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly group: GroupId = groupId(1);
  readonly prng: Prng;
  readonly #opts: ClusterOptions;
  /** Raft §5.2 Election Safety: at most one leader per term, ever. */
  readonly leaderOfTerm = new Map<number, NodeId>();
  /** Raft §5.4.3 State Machine Safety: every node applies the same entry at an index. */
  readonly appliedAt = new Map<number, { term: number; data: string; kind: string }>();
  /** Counts of messages sent, by type. */
  readonly sentByType = new Map<string, number>();

  /** Creates the members of the initial configuration (and nothing else). */
  constructor(opts: ClusterOptions) {
    this.#opts = opts;
    this.prng = new Prng(opts.seed);
    const conf: ConfState = {
      voters: opts.voters.map(nodeId),
      learners: (opts.learners ?? []).map(nodeId),
    };
    for (const id of [...conf.voters, ...conf.learners]) this.addNode(id, conf);
  }

  /** Creates a brand-new member with the given initial configuration (empty for a joining node). */
  addNode(id: NodeId, conf: ConfState): SimNode {
    assert.ok(!this.nodes.has(id), `node ${id} exists`);
    const node: SimNode = {
      id,
      raw: undefined,
      disk: {
        written: false,
        hardState: { term: term(0), votedFor: null, commitIndex: logIndex(0) },
        snapshot: undefined,
        entries: [],
      },
      app: { appliedIndex: 0, values: new Map() },
      readStates: [],
      incomingSnapshots: new Map(),
    };
    this.nodes.set(id, node);
    node.raw = new RawNode(this.config(id, conf));
    this.#configs.set(id, conf);
    return node;
  }

  readonly #configs = new Map<NodeId, ConfState>();

  /** The configuration of member `id`. */
  config(id: NodeId, conf: ConfState): RaftConfig {
    const o = this.#opts;
    return {
      id,
      groupId: this.group,
      conf,
      electionTimeoutTicks: o.electionTimeoutTicks ?? 10,
      heartbeatTicks: o.heartbeatTicks ?? 1,
      preVote: o.preVote ?? false,
      checkQuorum: o.checkQuorum ?? false,
      appendBytesMax: o.appendBytesMax ?? 64 * 1024,
      inflightAppendsMax: o.inflightAppendsMax ?? 8,
      random: this.prng.fork(),
    };
  }

  /** The member `id`, which must exist. */
  node(id: number): SimNode {
    const n = this.nodes.get(nodeId(id));
    assert.ok(n !== undefined, `no node ${id}`);
    return n;
  }

  /** The running core of `id`, which must be up. */
  raw(id: number): RawNode {
    const raw = this.node(id).raw;
    assert.ok(raw !== undefined, `node ${id} is down`);
    return raw;
  }

  /** Ids of the members that are up. */
  upIds(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raw !== undefined).map((n) => n.id);
  }

  /**
   * Crashes `id`: its core is lost; its disk survives. The state machine's last contents stay
   * readable (as a tester's record of what the node applied) until the node restarts.
   */
  crash(id: number): void {
    const n = this.node(id);
    n.raw = undefined;
    this.#held.delete(n.id);
    n.readStates = [];
    n.incomingSnapshots.clear();
  }

  /** Restarts a crashed member from its disk (the state machine restarts from the snapshot). */
  restart(id: number): void {
    const n = this.node(id);
    assert.ok(n.raw === undefined, `node ${id} is up`);
    const snap = n.disk.snapshot;
    n.app = {
      appliedIndex: snap?.data.appliedIndex ?? 0,
      values: new Map(snap?.data.values ?? []),
    };
    const conf = this.#configs.get(n.id) ?? { voters: [], learners: [] };
    // Like a runtime that finds no state on disk: the member starts as brand-new (and writes its
    // bootstrap entry again), since nothing it did before the crash was durable.
    n.raw = n.disk.written
      ? new RawNode(this.config(n.id, conf), {
          hardState: n.disk.hardState,
          ...(snap === undefined ? {} : { snapshot: snap.meta }),
          entries: [...n.disk.entries],
        })
      : new RawNode(this.config(n.id, conf));
    n.raw.checkInvariants();
  }

  /** Hands a message to its destination (dropped when the destination is down). */
  deliver(env: Envelope): void {
    const n = this.nodes.get(env.msg.to);
    if (n?.raw === undefined) return;
    if (env.msg.type === "snapshot") {
      assert.ok(env.snapshotData !== undefined, "snapshot message without data");
      // Kept by index: a stale or duplicate snapshot delivered later must not replace the data of
      // the one the core decided to install.
      n.incomingSnapshots.set(env.msg.snapshot.index, env.snapshotData);
    }
    n.raw.step(env.msg);
    n.raw.checkInvariants();
  }

  /** Processes Ready batches of `id` until it has none. Returns whether there was any. */
  processReady(id: NodeId): boolean {
    const n = this.nodes.get(id);
    if (n?.raw === undefined || this.#held.has(id)) return false;
    let any = false;
    while (this.beginReady(id)) {
      any = true;
      this.finishReady(id);
    }
    return any;
  }

  /** Processes Ready batches of every member until none has any. */
  processAll(): boolean {
    let any = false;
    for (const id of this.nodes.keys()) any = this.processReady(id) || any;
    return any;
  }

  /** Ready batches handed out by beginReady and not yet finished, by node. */
  readonly #held = new Map<NodeId, Ready>();

  /**
   * Hands out one Ready of `id` and sends its immediate messages, leaving its writes for
   * finishReady: the window in which a leader replicates entries it has not yet made durable.
   * Returns whether there was a Ready.
   */
  beginReady(id: NodeId): boolean {
    const n = this.nodes.get(id);
    const raw = n?.raw;
    if (n === undefined || raw === undefined || this.#held.has(id) || !raw.hasReady()) return false;
    const rd = raw.ready();
    this.#opts.onReady?.(id, rd);
    this.#checkLeader(n, raw, rd);
    // 1. Messages that may leave before the writes.
    for (const m of rd.messages) this.#send(n, m);
    this.#held.set(id, rd);
    return true;
  }

  /** Completes the Ready handed out by beginReady: persist, send, apply, advance. */
  finishReady(id: NodeId): void {
    const n = this.nodes.get(id);
    const raw = n?.raw;
    const rd = this.#held.get(id);
    if (n === undefined || raw === undefined || rd === undefined) return;
    this.#held.delete(id);
    // 2. Persist: snapshot, entries, hard state.
    this.#persist(n, raw, rd, true);
    // 3. Messages that promise durability.
    for (const m of rd.messagesAfterPersist) this.#send(n, m);
    // 4. Apply.
    for (const e of rd.committedEntries) this.#apply(n, e);
    n.readStates.push(...rd.readStates);
    raw.advance(rd);
    raw.checkInvariants();
    // Like the lab's applier: snapshot every `snapshotEvery` applied entries, once applied.
    const every = this.#opts.snapshotEvery;
    const snapIndex = n.disk.snapshot?.meta.index ?? 0;
    if (every !== undefined && n.app.appliedIndex >= snapIndex + every) {
      this.compact(id, logIndex(n.app.appliedIndex));
    }
  }

  #checkLeader(n: SimNode, raw: RawNode, rd: Ready): void {
    if (rd.softState?.role === "leader") {
      const t = raw.status().term;
      const prev = this.leaderOfTerm.get(t);
      assert.ok(prev === undefined || prev === n.id, `two leaders in term ${t}: ${prev} and ${n.id}`);
      this.leaderOfTerm.set(t, n.id);
    }
  }

  /**
   * Crashes `id` in the middle of a Ready: its immediate messages leave, then (with `keepEntries`)
   * the snapshot and entries reach the disk but the hard state does not, or nothing does.
   */
  crashDuringReady(id: number, keepEntries: boolean): void {
    const n = this.node(id);
    const raw = n.raw;
    if (raw === undefined) return;
    if (!this.#held.has(n.id) && !this.beginReady(n.id)) return;
    const rd = this.#held.get(n.id);
    if (rd !== undefined && keepEntries) this.#persist(n, raw, rd, false);
    this.crash(id);
  }

  #persist(n: SimNode, raw: RawNode, rd: Ready, withHardState: boolean): void {
    const disk = n.disk;
    if (rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined) disk.written = true;
    if (rd.snapshot !== undefined) {
      const data = n.incomingSnapshots.get(rd.snapshot.index);
      assert.ok(
        data !== undefined && data.appliedIndex === rd.snapshot.index,
        `node ${n.id}: snapshot ${rd.snapshot.index} to install without data (have ${[...n.incomingSnapshots.entries()].map(([k, v]) => `${k}:${v.appliedIndex}`).join(" ")})`,
      );
      disk.snapshot = { meta: rd.snapshot, data };
      // The core discarded its whole log for the snapshot; so does the disk.
      disk.entries = [];
      n.app = { appliedIndex: data.appliedIndex, values: new Map(data.values) };
      // A newer snapshot may have arrived while this one was being installed: keep its data.
      for (const index of [...n.incomingSnapshots.keys()]) {
        if (index <= rd.snapshot.index) n.incomingSnapshots.delete(index);
      }
    }
    const first = rd.entries[0];
    if (first !== undefined && raw.status().role === "leader" && first.term === raw.status().term) {
      // Raft Figure 3, Leader Append-Only: a leader never overwrites or deletes entries in its log.
      const lastStored = disk.entries.at(-1)?.index ?? disk.snapshot?.meta.index ?? 0;
      assert.ok(first.index > lastStored, `leader ${n.id} overwrites its log at ${first.index}`);
    }
    if (first !== undefined) {
      const base = disk.snapshot?.meta.index ?? 0;
      assert.ok(first.index > base, "persisting an entry covered by the snapshot");
      disk.entries = disk.entries.filter((e) => e.index < first.index);
      const last = disk.entries.at(-1);
      assert.ok(
        (last?.index ?? base) === first.index - 1,
        `hole in the stored log before ${first.index} (node ${n.id})`,
      );
      disk.entries.push(...rd.entries);
    }
    if (rd.hardState !== undefined && withHardState) {
      const old = disk.hardState;
      const hs = rd.hardState;
      assert.ok(hs.term >= old.term, `node ${n.id}: persisted term moved backwards`);
      // Raft §5.2: at most one vote per term, across crashes.
      if (hs.term === old.term && old.votedFor !== null) {
        assert.equal(hs.votedFor, old.votedFor, `node ${n.id} voted twice in term ${hs.term}`);
      }
      assert.ok(hs.commitIndex >= old.commitIndex, `node ${n.id}: persisted commit moved backwards`);
      disk.hardState = hs;
    }
  }

  #send(n: SimNode, m: Message): void {
    this.sentByType.set(m.type, (this.sentByType.get(m.type) ?? 0) + 1);
    if (m.type === "snapshot") {
      const snap = n.disk.snapshot;
      if (snap === undefined || snap.meta.index !== m.snapshot.index) {
        // The leader compacted again after choosing this snapshot: the runtime no longer has it,
        // so the stream fails and the core picks the newer snapshot next time.
        assert.ok(
          snap !== undefined && snap.meta.index > m.snapshot.index,
          `leader ${n.id} lacks its snapshot`,
        );
        n.raw?.reportSnapshot(m.to, false, m.snapshot.index);
        return;
      }
      this.#opts.onSend({ msg: m, snapshotData: snap.data });
      return;
    }
    this.#opts.onSend({ msg: m });
  }

  #apply(n: SimNode, e: Entry): void {
    assert.equal(
      e.index,
      n.app.appliedIndex + 1,
      `node ${n.id} applies ${e.index} after ${n.app.appliedIndex}`,
    );
    const data = e.kind === "normal" ? text.decode(e.data) : `conf:${Array.from(e.data).join(",")}`;
    const prev = this.appliedAt.get(e.index);
    if (prev === undefined) this.appliedAt.set(e.index, { term: e.term, data, kind: e.kind });
    else {
      assert.deepEqual(
        { term: e.term, data, kind: e.kind },
        prev,
        `node ${n.id} applies a different entry at ${e.index} (State Machine Safety)`,
      );
    }
    n.app.appliedIndex = e.index;
    if (e.kind === "normal" && e.data.length > 0) n.app.values.set(e.index, data);
    this.#opts.onApply?.(n.id, e);
  }

  /** Snapshots `id`'s state machine at `index` (its applied index) and compacts its log there. */
  compact(id: number, index: LogIndex): boolean {
    const n = this.node(id);
    const raw = this.raw(id);
    assert.equal(index, n.app.appliedIndex, "the harness snapshots at the applied index");
    const result = raw.compact(index);
    if (!result.ok) return false;
    n.disk.snapshot = {
      meta: result.snapshot,
      data: { appliedIndex: index, values: new Map(n.app.values) },
    };
    n.disk.entries = n.disk.entries.filter((e) => e.index > index);
    raw.checkInvariants();
    return true;
  }

  /**
   * Raft §5.3 Log Matching across the members that are up: if two logs hold an entry with the same
   * index and term, the logs are identical up to it. Checked on the overlapping in-memory views
   * above the smaller commit index (below it, State Machine Safety compares what is applied).
   */
  checkLogMatching(): void {
    const ups = this.upIds().map((id) => this.raw(id));
    for (let a = 0; a < ups.length; a++) {
      for (let b = a + 1; b < ups.length; b++) {
        const x = ups[a];
        const y = ups[b];
        if (x === undefined || y === undefined) continue;
        const sx = x.status();
        const sy = y.status();
        // Entries committed on both are compared by State Machine Safety when they are applied;
        // checking only above that keeps this cheap enough to run after every stabilization.
        const lo = Math.max(sx.snapshotIndex, sy.snapshotIndex, Math.min(sx.commitIndex, sy.commitIndex)) + 1;
        const hi = Math.min(sx.lastIndex, sy.lastIndex);
        let matched = false;
        for (let i = hi; i >= lo; i--) {
          const tx = x.termAt(i);
          if (!matched && tx !== undefined && tx === y.termAt(i)) matched = true;
          if (matched) {
            const ex: Entry | undefined = x.entries(i, i + 1)[0];
            const ey: Entry | undefined = y.entries(i, i + 1)[0];
            assert.ok(ex !== undefined && ey !== undefined);
            assert.equal(ex.term, ey.term, `log matching broken at ${i} between ${sx.id} and ${sy.id}`);
            assert.deepEqual(ex.data, ey.data, `log matching broken at ${i} between ${sx.id} and ${sy.id}`);
          }
        }
      }
    }
  }
}
