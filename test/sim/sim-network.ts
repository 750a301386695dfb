// A simulated network between the nodes of a cluster, generic over the message type: every link has
// a latency drawn from a seeded PRNG, may lose, duplicate or reorder messages, and can be cut one way
// or both ways. Everything runs on the shared Scheduler, so a seed replays every delivery exactly.
import { assert } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import type { Scheduler } from "./scheduler.js";

/** A probability as integers, numerator/denominator: the simulator never decides with floats. */
export type Probability = readonly [numerator: number, denominator: number];

/** How the network misbehaves when no partition is in force. */
export interface NetworkOptions {
  /** Latency of each message, uniform in [min, max] milliseconds. */
  readonly latencyMinMs: number;
  readonly latencyMaxMs: number;
  /** Chance a message is silently dropped. */
  readonly loss: Probability;
  /** Chance a message is delivered twice (the copy with its own latency). */
  readonly duplicate: Probability;
  /** Chance a message is held back by up to `reorderExtraMaxMs` so later ones overtake it. */
  readonly reorder: Probability;
  readonly reorderExtraMaxMs: number;
  /**
   * Whether links otherwise keep order (like TCP): a message is never delivered before an earlier
   * one on its link unless it was picked for reordering. Without it, random latency reorders freely.
   */
  readonly fifo: boolean;
  /** Messages in flight at once; a send beyond it is dropped and counted as `overflowed`. */
  readonly inflightMax: number;
}

/** What the network did, for reports and for tests that assert faults really happened. */
export interface NetworkCounters {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  reordered: number;
  /** Dropped at send because the link was cut. */
  blockedAtSend: number;
  /** Dropped on arrival because the link was cut while the message was in flight. */
  blockedInFlight: number;
  overflowed: number;
}

/** Receives a delivered message. A duplicated message is delivered as the same object twice. */
export type Deliver<M> = (from: number, to: number, message: M) => void;

const linkKey = (from: number, to: number) => `${from}>${to}`;

/** The simulated network. */
export class SimNetwork<M> {
  readonly #scheduler: Scheduler;
  readonly #prng: Prng;
  readonly #options: NetworkOptions;
  readonly #deliver: Deliver<M>;
  readonly #nodes = new Set<number>();
  /** Directed links that drop everything. */
  readonly #blocked = new Set<string>();
  /** Nodes a harness cut off itself (an aimed fault): apart from the schedule's partitions. */
  readonly #cutOff = new Set<number>();
  /** Per-link latency overrides (a slow link), [min, max]. */
  readonly #latencyOverrides = new Map<string, readonly [number, number]>();
  /** Per-link time of the latest in-order delivery, to keep FIFO links in order. */
  readonly #lastDeliveryMs = new Map<string, number>();
  #inflight = 0;
  readonly counters: NetworkCounters = {
    sent: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    reordered: 0,
    blockedAtSend: 0,
    blockedInFlight: 0,
    overflowed: 0,
  };

  /** Creates a fully connected network between `nodes`. */
  constructor(
    scheduler: Scheduler,
    prng: Prng,
    nodes: readonly number[],
    options: NetworkOptions,
    deliver: Deliver<M>,
  ) {
    assert(
      Number.isSafeInteger(options.latencyMinMs) &&
        options.latencyMinMs >= 0 &&
        options.latencyMaxMs >= options.latencyMinMs,
      `bad latency range [${options.latencyMinMs}, ${options.latencyMaxMs}]`,
    );
    assert(options.inflightMax >= 1 && options.reorderExtraMaxMs >= 0, "bad network limits");
    this.#scheduler = scheduler;
    this.#prng = prng;
    this.#options = options;
    this.#deliver = deliver;
    for (const n of nodes) this.addNode(n);
  }

  /** Adds a node (a new member), connected to everyone unless cut later. */
  addNode(node: number): void {
    this.#nodes.add(node);
  }

  /** Messages sent and not yet delivered or dropped. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Sends `message` from `from` to `to`; it arrives later, or never. */
  send(from: number, to: number, message: M): void {
    this.counters.sent++;
    if (this.isBlocked(from, to)) {
      this.counters.blockedAtSend++;
      return;
    }
    if (this.#prng.chance(...this.#options.loss)) {
      this.counters.lost++;
      return;
    }
    this.#schedule(from, to, message, true);
    if (this.#prng.chance(...this.#options.duplicate)) {
      this.counters.duplicated++;
      this.#schedule(from, to, message, false);
    }
  }

  #schedule(from: number, to: number, message: M, inOrder: boolean): void {
    if (this.#inflight >= this.#options.inflightMax) {
      this.counters.overflowed++;
      return;
    }
    const key = linkKey(from, to);
    const [min, max] = this.#latencyOverrides.get(key) ?? [
      this.#options.latencyMinMs,
      this.#options.latencyMaxMs,
    ];
    const now = this.#scheduler.nowMs;
    let atMs = now + this.#prng.range(min, max);
    if (this.#prng.chance(...this.#options.reorder)) {
      // Held back: later messages on the link may overtake it.
      this.counters.reordered++;
      atMs += 1 + this.#prng.below(this.#options.reorderExtraMaxMs + 1);
    } else if (this.#options.fifo && inOrder) {
      atMs = Math.max(atMs, this.#lastDeliveryMs.get(key) ?? 0);
      this.#lastDeliveryMs.set(key, atMs);
    }
    this.#inflight++;
    this.#scheduler.at(
      atMs,
      () => {
        this.#inflight--;
        if (this.isBlocked(from, to)) {
          this.counters.blockedInFlight++;
          return;
        }
        this.counters.delivered++;
        this.#deliver(from, to, message);
      },
      `deliver ${from}->${to}`,
    );
  }

  /**
   * The latency range of the link from -> to, [min, max] milliseconds (its override, else the
   * network's): connections riding the link (snapshot streams) draw their own delays from it.
   */
  linkLatencyRange(from: number, to: number): readonly [number, number] {
    return (
      this.#latencyOverrides.get(linkKey(from, to)) ?? [
        this.#options.latencyMinMs,
        this.#options.latencyMaxMs,
      ]
    );
  }

  /** Whether messages from `from` to `to` are dropped. */
  isBlocked(from: number, to: number): boolean {
    return this.#blocked.has(linkKey(from, to)) || this.#cutOff.has(from) || this.#cutOff.has(to);
  }

  /**
   * Cuts `node` off from everyone until {@link reconnect}, apart from the partitions (`healAll`
   * leaves it cut off): for a harness that aims a short isolation at a moment it picks.
   */
  cutOff(node: number): void {
    this.#cutOff.add(node);
  }

  /** Ends a {@link cutOff}. */
  reconnect(node: number): void {
    this.#cutOff.delete(node);
  }

  /** Cuts every link between the two sides, both ways. Nodes in neither side are unaffected. */
  partition(sideA: readonly number[], sideB: readonly number[]): void {
    this.partitionOneWay(sideA, sideB);
    this.partitionOneWay(sideB, sideA);
  }

  /** Cuts the links from every node of `from` to every node of `to`; the reverse direction still works. */
  partitionOneWay(from: readonly number[], to: readonly number[]): void {
    for (const a of from) {
      for (const b of to) if (a !== b) this.#blocked.add(linkKey(a, b));
    }
  }

  /**
   * Splits the cluster into two sides that cannot talk, except through `bridge`, which talks to both
   * (the topology that confuses leader election when the bridge is not the leader).
   */
  bridge(bridge: number, sideA: readonly number[], sideB: readonly number[]): void {
    assert(!sideA.includes(bridge) && !sideB.includes(bridge), "the bridge belongs to neither side");
    this.partition(sideA, sideB);
  }

  /** Cuts one node off from everyone, both ways. */
  isolate(node: number): void {
    const others = [...this.#nodes].filter((n) => n !== node);
    this.partition([node], others);
  }

  /** Restores every link (in-flight messages on healed links arrive). */
  healAll(): void {
    this.#blocked.clear();
  }

  /** Makes the link from `from` to `to` slower (or faster) than the default. */
  setLinkLatency(from: number, to: number, minMs: number, maxMs: number): void {
    assert(
      Number.isSafeInteger(minMs) && minMs >= 0 && maxMs >= minMs,
      `bad latency range [${minMs}, ${maxMs}]`,
    );
    this.#latencyOverrides.set(linkKey(from, to), [minMs, maxMs]);
  }

  /** Returns every link to the default latency. */
  clearLinkLatencies(): void {
    this.#latencyOverrides.clear();
  }

  /** The cut links as text, e.g. "1>2 2>1", or "fully connected". */
  describeTopology(): string {
    const cutOff = [...this.#cutOff].sort().map((n) => `${n} cut off`);
    const links = [...this.#blocked].sort();
    return links.length + cutOff.length === 0 ? "fully connected" : [...links, ...cutOff].join(" ");
  }
}
