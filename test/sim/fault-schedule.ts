// Generates the faults a simulated cluster suffers, as a pure function of a seed: during the safety
// phase, crashes, partitions of every shape, slow disks and membership changes, never leaving more
// than a minority of nodes faulty at once (so a correct cluster must stay safe and may stay live);
// then everything heals for a liveness phase in which the cluster must converge.
import { assert, assertNever } from "../../src/util/assert.js";
import { Prng } from "../../src/util/prng.js";
import { pickWeighted } from "./pick-weighted.js";

/** One scheduled fault (or repair, or operator request), at a simulated time. */
export type FaultEvent =
  | { readonly kind: "crash"; readonly atMs: number; readonly node: number }
  | { readonly kind: "restart"; readonly atMs: number; readonly node: number }
  | {
      readonly kind: "partition";
      readonly atMs: number;
      readonly minority: readonly number[];
      readonly majority: readonly number[];
    }
  | {
      readonly kind: "partition-one-way";
      readonly atMs: number;
      readonly from: readonly number[];
      readonly to: readonly number[];
    }
  | {
      readonly kind: "bridge";
      readonly atMs: number;
      readonly bridge: number;
      readonly sideA: readonly number[];
      readonly sideB: readonly number[];
    }
  | { readonly kind: "isolate"; readonly atMs: number; readonly node: number }
  | { readonly kind: "heal"; readonly atMs: number }
  | {
      readonly kind: "slow-disk";
      readonly atMs: number;
      readonly node: number;
      readonly extraLatencyMs: number;
    }
  | { readonly kind: "disk-normal"; readonly atMs: number; readonly node: number }
  | { readonly kind: "remove-member"; readonly atMs: number; readonly node: number }
  | { readonly kind: "add-member"; readonly atMs: number; readonly node: number }
  | { readonly kind: "transfer-leadership"; readonly atMs: number; readonly to: number };

/** The kinds of action the generator chooses between. */
export type FaultKind =
  | "crash"
  | "restart"
  | "partition"
  | "partition-one-way"
  | "bridge"
  | "isolate"
  | "heal"
  | "slow-disk"
  | "disk-normal"
  | "remove-member"
  | "add-member"
  | "transfer-leadership";

/** Settings for {@link generateFaultSchedule}. */
export interface FaultScheduleOptions {
  readonly clusterSize: 3 | 5;
  readonly safetyPhaseMs: number;
  readonly livenessPhaseMs: number;
  /** Time between two decisions, uniform in [min, max]. */
  readonly gapMinMs: number;
  readonly gapMaxMs: number;
  /** Extra latency of a slow disk, uniform in [min, max]. */
  readonly slowDiskExtraMinMs: number;
  readonly slowDiskExtraMaxMs: number;
  /** Relative weights of each action (integers; 0 disables one). Missing kinds use the defaults. */
  readonly weights?: Partial<Record<FaultKind, number>>;
}

/** A generated schedule: events in time order, and where the phases end. */
export interface FaultSchedule {
  readonly events: readonly FaultEvent[];
  /** When the safety phase ends; every fault is repaired at exactly this time. */
  readonly safetyEndMs: number;
  /** When the liveness phase (no faults) ends. */
  readonly livenessEndMs: number;
}

/** Default action weights: faults and their repairs in rough balance. */
export const defaultFaultWeights: Readonly<Record<FaultKind, number>> = {
  crash: 4,
  restart: 5,
  partition: 3,
  "partition-one-way": 2,
  bridge: 2,
  isolate: 2,
  heal: 5,
  "slow-disk": 2,
  "disk-normal": 3,
  "remove-member": 1,
  "add-member": 2,
  "transfer-leadership": 2,
};

/** The node ids of a cluster: 1..size. */
export function clusterNodes(size: number): number[] {
  return Array.from({ length: size }, (_, i) => i + 1);
}

/** The most nodes that may be faulty at once while a majority stays healthy. */
export function faultBudget(clusterSize: number): number {
  return Math.floor((clusterSize - 1) / 2);
}

/**
 * What is broken at one moment. A node counts as faulty when it is crashed, has a slow disk, is
 * removed from the membership, or is on the cut-off side of the network fault in force.
 */
export class FaultState {
  readonly crashed = new Set<number>();
  readonly slowDisk = new Set<number>();
  readonly removed = new Set<number>();
  /** The nodes the current network fault cuts off from the majority (empty when healed). */
  networkMinority: readonly number[] = [];
  networkFault = false;

  /** The faulty nodes, each once. */
  faulty(): Set<number> {
    return new Set([...this.crashed, ...this.slowDisk, ...this.removed, ...this.networkMinority]);
  }

  /** Applies one event; asserts it makes sense in this state (a restart of a running node does not). */
  apply(event: FaultEvent): void {
    switch (event.kind) {
      case "crash":
        assert(!this.crashed.has(event.node), `crash of crashed node ${event.node}`);
        this.crashed.add(event.node);
        break;
      case "restart":
        assert(this.crashed.delete(event.node), `restart of running node ${event.node}`);
        break;
      case "partition":
        this.#setNetwork(event.minority);
        break;
      case "partition-one-way":
        this.#setNetwork(event.from);
        break;
      case "bridge":
        // Each side reaches a majority only through the bridge; count the smaller side as cut off.
        this.#setNetwork(event.sideA.length <= event.sideB.length ? event.sideA : event.sideB);
        break;
      case "isolate":
        this.#setNetwork([event.node]);
        break;
      case "heal":
        this.networkMinority = [];
        this.networkFault = false;
        break;
      case "slow-disk":
        assert(!this.slowDisk.has(event.node), `slow-disk of slow node ${event.node}`);
        this.slowDisk.add(event.node);
        break;
      case "disk-normal":
        assert(this.slowDisk.delete(event.node), `disk-normal of normal node ${event.node}`);
        break;
      case "remove-member":
        assert(!this.removed.has(event.node), `removal of removed node ${event.node}`);
        this.removed.add(event.node);
        break;
      case "add-member":
        assert(this.removed.delete(event.node), `add of member ${event.node}`);
        break;
      case "transfer-leadership":
        break;
      default:
        assertNever(event, "fault event");
    }
  }

  #setNetwork(minority: readonly number[]): void {
    assert(!this.networkFault, "a network fault while another is in force");
    this.networkMinority = minority;
    this.networkFault = true;
  }
}

/** Picks `count` distinct nodes from `nodes`. */
function pickSome(prng: Prng, nodes: readonly number[], count: number): number[] {
  return prng.shuffle(nodes.slice()).slice(0, count);
}

/**
 * Generates a fault schedule from `seed`. A pure function of its arguments. During the safety phase
 * at most `faultBudget(clusterSize)` nodes are faulty at any time, at most one network fault and one
 * membership change are in force at once; at `safetyEndMs` everything is repaired, and the liveness
 * phase has no faults.
 */
export function generateFaultSchedule(seed: number, options: FaultScheduleOptions): FaultSchedule {
  assert(options.gapMinMs >= 1 && options.gapMaxMs >= options.gapMinMs, "bad gap range");
  assert(options.safetyPhaseMs >= 0 && options.livenessPhaseMs >= 0, "bad phase lengths");
  const prng = new Prng(seed);
  const nodes = clusterNodes(options.clusterSize);
  const budget = faultBudget(options.clusterSize);
  const weights = { ...defaultFaultWeights, ...options.weights };
  const state = new FaultState();
  const events: FaultEvent[] = [];
  const emit = (event: FaultEvent) => {
    state.apply(event);
    events.push(event);
  };
  /** Whether making `extra` faulty keeps the faulty count within the budget. */
  const fits = (extra: readonly number[]) => new Set([...state.faulty(), ...extra]).size <= budget;

  let atMs = 0;
  for (;;) {
    atMs += prng.range(options.gapMinMs, options.gapMaxMs);
    if (atMs >= options.safetyPhaseMs) break;
    const healthy = nodes.filter((n) => !state.faulty().has(n));
    const running = nodes.filter((n) => !state.crashed.has(n) && !state.removed.has(n));
    // Each applicable action with the event it would emit; the weights pick one.
    const choices: { kind: FaultKind; make: () => FaultEvent | undefined }[] = [];
    const add = (kind: FaultKind, make: () => FaultEvent | undefined) => choices.push({ kind, make });
    if (budget > 0) {
      const crashable = running.filter((n) => fits([n]));
      if (crashable.length > 0) add("crash", () => ({ kind: "crash", atMs, node: prng.pick(crashable) }));
      const slowable = running.filter((n) => !state.slowDisk.has(n) && fits([n]));
      if (slowable.length > 0) {
        add("slow-disk", () => ({
          kind: "slow-disk",
          atMs,
          node: prng.pick(slowable),
          extraLatencyMs: prng.range(options.slowDiskExtraMinMs, options.slowDiskExtraMaxMs),
        }));
      }
      if (state.removed.size === 0) {
        const removable = nodes.filter((n) => fits([n]));
        if (removable.length > 0)
          add("remove-member", () => ({ kind: "remove-member", atMs, node: prng.pick(removable) }));
      }
      if (!state.networkFault) {
        const minority = () => pickSome(prng, nodes, prng.range(1, budget));
        add("partition", () => {
          const cut = minority();
          if (!fits(cut)) return undefined;
          return { kind: "partition", atMs, minority: cut, majority: nodes.filter((n) => !cut.includes(n)) };
        });
        add("partition-one-way", () => {
          const cut = minority();
          if (!fits(cut)) return undefined;
          return { kind: "partition-one-way", atMs, from: cut, to: nodes.filter((n) => !cut.includes(n)) };
        });
        add("bridge", () => {
          const [bridge, ...rest] = prng.shuffle(nodes.slice());
          assert(bridge !== undefined, "empty cluster");
          const half = Math.floor(rest.length / 2);
          const sideA = rest.slice(0, half);
          const sideB = rest.slice(half);
          if (!fits(sideA.length <= sideB.length ? sideA : sideB)) return undefined;
          return { kind: "bridge", atMs, bridge, sideA, sideB };
        });
        const isolatable = nodes.filter((n) => fits([n]));
        if (isolatable.length > 0)
          add("isolate", () => ({ kind: "isolate", atMs, node: prng.pick(isolatable) }));
      }
    }
    if (state.crashed.size > 0)
      add("restart", () => ({ kind: "restart", atMs, node: prng.pick([...state.crashed]) }));
    if (state.networkFault) add("heal", () => ({ kind: "heal", atMs }));
    if (state.slowDisk.size > 0) {
      add("disk-normal", () => ({ kind: "disk-normal", atMs, node: prng.pick([...state.slowDisk]) }));
    }
    if (state.removed.size > 0)
      add("add-member", () => ({ kind: "add-member", atMs, node: prng.pick([...state.removed]) }));
    if (healthy.length > 0)
      add("transfer-leadership", () => ({ kind: "transfer-leadership", atMs, to: prng.pick(healthy) }));

    const chosen = pickWeighted(
      prng,
      choices.map((c) => [c, weights[c.kind]] as const),
    );
    if (chosen === undefined) continue;
    const event = chosen.make();
    if (event !== undefined) emit(event);
  }

  // Repair everything at the end of the safety phase, in a fixed order.
  const safetyEndMs = options.safetyPhaseMs;
  if (state.networkFault) emit({ kind: "heal", atMs: safetyEndMs });
  for (const node of [...state.crashed].sort((a, b) => a - b))
    emit({ kind: "restart", atMs: safetyEndMs, node });
  for (const node of [...state.slowDisk].sort((a, b) => a - b))
    emit({ kind: "disk-normal", atMs: safetyEndMs, node });
  for (const node of [...state.removed].sort((a, b) => a - b))
    emit({ kind: "add-member", atMs: safetyEndMs, node });
  return { events, safetyEndMs, livenessEndMs: safetyEndMs + options.livenessPhaseMs };
}

/** One line per event, for printing a schedule next to its seed. */
export function describeFaultSchedule(schedule: FaultSchedule): string {
  const lines = schedule.events.map((e) => {
    const { kind, atMs, ...rest } = e;
    return `${String(atMs).padStart(7)}ms ${kind} ${JSON.stringify(rest)}`;
  });
  lines.push(`${String(schedule.safetyEndMs).padStart(7)}ms safety phase ends: all repaired`);
  lines.push(`${String(schedule.livenessEndMs).padStart(7)}ms liveness phase ends`);
  return lines.join("\n");
}
