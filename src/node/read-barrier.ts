// Linearizable reads of one Raft group (ReadIndex, Raft dissertation §6.4): reads queue up, one
// round at a time asks the core for a read index (a heartbeat round confirming leadership), and a
// round's reads are released once the state machine has applied through that index. Reads that
// arrive while a round is in flight share the next one.
import type { LogIndex, ReadState } from "../raft/index.js";
import type { Cancel, Env } from "./env.js";
import type { GroupMetrics } from "./metrics.js";
import { NodeError } from "./node-error.js";

interface ReadWaiter {
  readonly resolve: () => void;
  readonly reject: (error: NodeError) => void;
}

interface ReadRound {
  readonly waiters: ReadWaiter[];
  readonly cancelTimer: Cancel;
  /** Set once the core answered: reads are safe once this index is applied. */
  index?: LogIndex;
}

/** What a {@link ReadBarrier} needs of its group. */
export interface ReadBarrierPorts {
  readonly env: Env;
  readonly metrics: GroupMetrics;
  /** Asks the core for a read index under `context`; its answer arrives in a Ready's read states. */
  readonly readIndex: (context: string) => { ok: true } | { ok: false; reason: string };
  /** Runs the ready loop (the round's heartbeats go out in the next Ready). */
  readonly kick: () => void;
  /** The index the state machine has applied through. */
  readonly appliedIndex: () => number;
  /** Whether the group stopped (no round may start). */
  readonly stopped: () => boolean;
  /** This member's id, in each round's context. */
  readonly memberId: number;
  /** How long a read may wait for its ReadIndex before failing with ERR_UNAVAILABLE. */
  readonly timeoutMs: number;
  /** The most reads waiting at once. */
  readonly pendingMax: number;
}

/** The ReadIndex rounds of one group and the reads waiting on them. */
export class ReadBarrier {
  readonly #ports: ReadBarrierPorts;
  readonly #rounds = new Map<string, ReadRound>();
  #queue: ReadWaiter[] = [];
  /**
   * Names this run of the group in its ReadIndex contexts. The sequence restarts at 0 with every
   * run, so without it a late answer to a read made before a restart would carry the context of a
   * new read and release it at an index from before the new read arrived.
   */
  readonly #nonce: string;
  #seq = 0;
  #waiting = 0;

  /** Creates the barrier; its nonce takes 64 bits from the injected randomness. */
  constructor(ports: ReadBarrierPorts) {
    this.#ports = ports;
    // 64 random bits from the injected source: crypto-seeded in production, seeded in the simulator.
    const word = () =>
      ports.env.random
        .below(2 ** 32)
        .toString(16)
        .padStart(8, "0");
    this.#nonce = `${word()}${word()}`;
  }

  /** Whether no more reads may wait (the next is refused with ERR_UNAVAILABLE). */
  get full(): boolean {
    return this.#waiting >= this.#ports.pendingMax;
  }

  /** Whether no read waits (none queued, no round in flight). */
  get idle(): boolean {
    return this.#rounds.size === 0 && this.#queue.length === 0;
  }

  /** Resolves once every write acknowledged before the call is applied here. */
  wait(): Promise<void> {
    const { env, metrics } = this.#ports;
    this.#waiting++;
    metrics.reads++;
    const startedMs = env.monotonicMs();
    const promise = new Promise<void>((resolve, reject) => {
      this.#queue.push({
        resolve: () => {
          this.#waiting--;
          metrics.readMs.observe(env.monotonicMs() - startedMs);
          resolve();
        },
        reject: (error) => {
          this.#waiting--;
          metrics.readsFailed++;
          reject(error);
        },
      });
    });
    if (this.#rounds.size === 0) this.#startRound();
    return promise;
  }

  /** Records the core's answers: each answered round is safe to serve once its index applies. */
  answered(readStates: readonly ReadState[]): void {
    for (const readState of readStates) {
      const round = this.#rounds.get(readState.context);
      if (round !== undefined) round.index = readState.index;
    }
  }

  /** Releases the rounds whose index is applied, and starts the next round when none is in flight. */
  serve(): void {
    const applied = this.#ports.appliedIndex();
    for (const [context, round] of this.#rounds) {
      if (round.index === undefined || round.index > applied) continue;
      this.#rounds.delete(context);
      round.cancelTimer();
      for (const w of round.waiters) w.resolve();
    }
    if (this.#rounds.size === 0) this.#startRound();
  }

  /** Fails every waiting read with `error`. */
  failAll(error: NodeError): void {
    for (const [, round] of this.#rounds) {
      round.cancelTimer();
      for (const w of round.waiters) w.reject(error);
    }
    this.#rounds.clear();
    for (const w of this.#queue) w.reject(error);
    this.#queue = [];
  }

  #startRound(): void {
    const ports = this.#ports;
    if (this.#queue.length === 0 || ports.stopped()) return;
    const waiters = this.#queue;
    this.#queue = [];
    const context = `${ports.memberId}.${this.#nonce}.${++this.#seq}`;
    const result = ports.readIndex(context);
    if (!result.ok) {
      const error =
        result.reason === "not-leader"
          ? new NodeError("ERR_UNAVAILABLE", "no leader is known; retry shortly")
          : new NodeError("ERR_UNAVAILABLE", `read refused: ${result.reason}`);
      for (const w of waiters) w.reject(error);
      return;
    }
    const cancelTimer = ports.env.after(ports.timeoutMs, () => {
      const round = this.#rounds.get(context);
      if (round === undefined) return;
      this.#rounds.delete(context);
      for (const w of round.waiters)
        w.reject(new NodeError("ERR_UNAVAILABLE", "the read could not be confirmed by a quorum in time"));
      this.#startRound();
    });
    this.#rounds.set(context, { waiters, cancelTimer });
    ports.kick();
  }
}
