// One real RaftGroup driven by hand: a manual clock whose timers fire only when the test advances
// it, storage whose writes the test can hold back, a sender that records every batch, and peers
// that exist only as the messages the test writes for them. Everything the loop awaits settles
// through microtasks, so `settled()` (one turn of the event loop) leaves it idle: tests script an
// exact interleaving of messages and disk writes, with no real time involved.
import { setImmediate } from "node:timers/promises";
import type { Cancel, Env } from "../../src/node/env.js";
import type { GroupSnapshots } from "../../src/node/group-snapshots.js";
import type { PersistBatch, StateMachine } from "../../src/node/ports.js";
import { RaftGroup, type RaftGroupOptions } from "../../src/node/raft-group.js";
import {
  type Entry,
  groupId,
  type LogIndex,
  logIndex,
  type Message,
  type MessageBody,
  type NodeId,
  nodeId,
  type SnapshotMessage,
  type Term,
  term,
} from "../../src/raft/index.js";
import { Prng } from "../../src/util/prng.js";
import { MemoryGroupStorage } from "./memory-group-storage.js";

/** The group every scripted member belongs to. */
export const scriptedGroupId = groupId(1);

/** Lets everything the loop has in flight run to completion (it waits only on microtasks here). */
export async function settled(): Promise<void> {
  await setImmediate();
}

/** An Env whose clock moves only when the test says, firing due timers in order. */
export class ManualEnv implements Env {
  readonly random: Prng;
  #now = 0;
  #seq = 0;
  readonly #timers = new Map<number, { readonly at: number; readonly run: () => void }>();

  /** Creates the environment; `seed` decides the core's election timeouts and the run's nonce. */
  constructor(seed: number) {
    this.random = new Prng(seed);
  }

  nowMs(): number {
    return 1_700_000_000_000 + this.#now;
  }

  monotonicMs(): number {
    return this.#now;
  }

  after(delayMs: number, run: () => void): Cancel {
    const id = ++this.#seq;
    this.#timers.set(id, { at: this.#now + delayMs, run });
    return () => {
      this.#timers.delete(id);
    };
  }

  /** Runs `run` once the loop settles (as {@link settled} waits for), without moving the clock. */
  defer(run: () => void): void {
    globalThis.setImmediate(run);
  }

  /** Moves the clock `ms` forward; fires each due timer in order and lets the loop settle after it. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    for (;;) {
      let next: [number, { readonly at: number; readonly run: () => void }] | undefined;
      for (const timer of this.#timers) {
        if (timer[1].at <= target && (next === undefined || timer[1].at < next[1].at)) next = timer;
      }
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].run();
      await settled();
    }
    this.#now = target;
  }
}

/** In-memory group storage whose writes the test can hold back, to batch inputs into one Ready. */
export class GatedStorage extends MemoryGroupStorage {
  /** Writes waiting at the gate right now. */
  waiting = 0;
  /** When set, every write fails with it (a storage failure). */
  failWith: Error | undefined;
  #gate: Promise<void> | undefined;
  #open: () => void = () => {};

  /** Holds every write from now on until {@link release}. */
  hold(): void {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }

  /** Lets the held writes (and later ones) through. */
  release(): void {
    this.#gate = undefined;
    this.#open();
  }

  override async persist(batch: PersistBatch): Promise<void> {
    this.waiting++;
    try {
      await this.#gate;
    } finally {
      this.waiting--;
    }
    if (this.failWith !== undefined) throw this.failWith;
    await super.persist(batch);
  }
}

/** A state machine that answers `applied <index>` per entry and lets a test intervene in apply. */
export class ScriptedStateMachine implements StateMachine<string> {
  #applied: LogIndex;
  /** Called for every entry before it applies; may throw, as a broken apply would. */
  onApply: ((entry: Entry) => void) | undefined;

  /** Creates it at `appliedIndex` (what a restarted node's state store would hold). */
  constructor(appliedIndex = 0) {
    this.#applied = logIndex(appliedIndex);
  }

  appliedIndex(): LogIndex {
    return this.#applied;
  }

  async apply(entries: readonly Entry[]): Promise<readonly string[]> {
    await Promise.resolve();
    return entries.map((entry) => {
      this.onApply?.(entry);
      this.#applied = entry.index;
      return `applied ${entry.index}`;
    });
  }
}

/** What a scripted member was built from, and what it sent. */
export interface ScriptedGroup {
  readonly group: RaftGroup<string>;
  readonly env: ManualEnv;
  readonly storage: GatedStorage;
  readonly stateMachine: ScriptedStateMachine;
  /** Every batch handed to the plain message sender. */
  readonly sent: Message[][];
  /** Every snapshot message handed to the snapshot sender (with its data). */
  readonly snapshotsSent: SnapshotMessage[];
  /** Errors the group reported through onFatal (fail-stop). */
  readonly fatal: unknown[];
  /** Errors the group handed to its crash hook (a broken invariant). */
  readonly crashed: unknown[];
}

/** Options of {@link openScripted}; the defaults make member 1 of voters 1, 2, 3. */
export interface ScriptedOptions {
  readonly id?: number;
  readonly voters?: readonly number[];
  readonly seed?: number;
  readonly storage?: GatedStorage;
  readonly stateMachine?: ScriptedStateMachine;
  readonly checkQuorum?: boolean;
  readonly snapshots?: GroupSnapshots;
  /** When false the group keeps its default crash hook (which crashes the process). */
  readonly catchCrash?: boolean;
  /** The transport's view of this member's links (default: every link up). */
  readonly peerConnected?: (peer: NodeId) => boolean;
}

/** Tick length of scripted members; election timeouts are 10 ticks, heartbeats every tick. */
export const scriptedTickMs = 10;

/** Opens member `id` of a scripted group (not yet campaigning). */
export async function openScripted(options: ScriptedOptions = {}): Promise<ScriptedGroup> {
  const env = new ManualEnv(options.seed ?? 1);
  const storage = options.storage ?? new GatedStorage();
  const stateMachine = options.stateMachine ?? new ScriptedStateMachine();
  const sent: Message[][] = [];
  const snapshotsSent: SnapshotMessage[] = [];
  const fatal: unknown[] = [];
  const crashed: unknown[] = [];
  const groupOptions: RaftGroupOptions<string> = {
    raft: {
      id: nodeId(options.id ?? 1),
      groupId: scriptedGroupId,
      conf: { voters: (options.voters ?? [1, 2, 3]).map(nodeId), learners: [] },
      electionTimeoutTicks: 10,
      heartbeatTicks: 1,
      preVote: false,
      checkQuorum: options.checkQuorum ?? false,
      appendBytesMax: 1024 * 1024,
      inflightAppendsMax: 16,
    },
    env,
    storage,
    sender: { send: (messages) => void sent.push([...messages]) },
    stateMachine,
    tickIntervalMs: scriptedTickMs,
    proposalTimeoutMs: 60_000,
    readTimeoutMs: 60_000,
    onFatal: (error) => void fatal.push(error),
    ...(options.peerConnected === undefined ? {} : { peerConnected: options.peerConnected }),
    ...(options.catchCrash === false ? {} : { crash: (error: unknown) => void crashed.push(error) }),
    ...(options.snapshots === undefined
      ? {}
      : {
          snapshots: {
            service: options.snapshots,
            interval: { entriesBetween: 1_000_000 },
            send: async (message: SnapshotMessage) => {
              snapshotsSent.push(message);
            },
          },
        }),
  };
  const group = await RaftGroup.open(groupOptions);
  return { group, env, storage, stateMachine, sent, snapshotsSent, fatal, crashed };
}

/** Every message the member sent so far, in order. */
export function sentMessages(member: ScriptedGroup): Message[] {
  return member.sent.flat();
}

/** Writes a message from peer `from` to member `to` of the scripted group. */
export function fromPeer(from: number, to: number, t: number, body: MessageBody): Message {
  const header: { groupId: typeof scriptedGroupId; from: NodeId; to: NodeId; term: Term } = {
    groupId: scriptedGroupId,
    from: nodeId(from),
    to: nodeId(to),
    term: term(t),
  };
  return { ...header, ...body };
}

/** A granted vote. */
export function voteGranted(from: number, to: number, t: number): Message {
  return fromPeer(from, to, t, { type: "vote-response", preVote: false, reject: false });
}

/** A follower's acknowledgement that it holds the log through `index`. */
export function appendAck(from: number, to: number, t: number, index: number): Message {
  return fromPeer(from, to, t, {
    type: "append-response",
    reject: false,
    index: logIndex(index),
    hintIndex: logIndex(0),
    hintTerm: term(0),
    entriesLost: false,
  });
}

/** A leader's heartbeat. */
export function heartbeat(from: number, to: number, t: number, commitIndex: number): Message {
  return fromPeer(from, to, t, { type: "heartbeat", commitIndex: logIndex(commitIndex), readRound: 0 });
}

/** Makes member 1 of voters 1, 2, 3 leader in term `t` with member 2's vote; its no-op is unacknowledged. */
export async function electMember1(member: ScriptedGroup, t: number): Promise<void> {
  member.group.campaign();
  await settled();
  member.group.receive(voteGranted(2, 1, t));
  await settled();
}
