// Generates the faults a simulated cluster suffers, as a pure function of a seed: during the safety
// phase, crashes, partitions of every shape, slow disks and membership changes, never leaving more
// than a minority of nodes faulty at once (so a correct cluster must stay safe and may stay live);
// then everything heals for a liveness phase in which the cluster must converge. Some faults are
// aimed at whoever leads when they fire, at a moment of the leader's replication (see LeaderMoment),
// which is how Raft's Figure 8 interleaving becomes reachable; the injector resolves them at run time.
import { assert, assertNever } from "../../src/util/assert.js";
import { Prng } from "../../src/util/prng.js";
import { pickWeighted } from "./pick-weighted.js";

/**
 * A moment in the life of the leader that an aimed event waits for (from its scheduled time until the
 * next event's time at the latest, when it fires anyway):
 * - `now`: at once.
 * - `unreplicated`: the leader holds entries that no majority has yet (crashing or cutting it off
 *   now leaves them on a minority).
 * - `fresh`: no majority holds an entry of the leader's term yet (a newly elected leader whose no-op
 *   is still on its way).
 * - `old-term-quorum`: a majority holds an entry of an earlier term beyond what the leader knew
 *   committed when it was elected, and that entry is at the top of what a majority holds: the moment
 *   Raft §5.4.2 forbids committing by counting replicas (Figure 8).
 */
export type LeaderMoment = "now" | "unreplicated" | "fresh" | "old-term-quorum";

/** Every {@link LeaderMoment}, in a fixed order (the generator picks from it). */
export const leaderMoments: readonly LeaderMoment[] = ["now", "unreplicated", "fresh", "old-term-quorum"];

/**
 * Where an aimed event strikes: the injector turns it on whoever leads when it fires (a crash or an
 * isolation hits the leader, a partition puts the leader on the cut-off side), after waiting up to
 * `waitMs` for `moment` once the event is next in line (events fire in schedule order, so the ones
 * after it wait too). The schedule's node numbers are labels: the injector swaps the leader's label
 * with the aimed one when both are in the same fault state, so the budget the generator kept still
 * holds. On a repair, `aim` only delays it to the moment, so a repair and an aimed fault happen
 * together.
 */
export interface Aim {
  readonly moment: LeaderMoment;
  readonly waitMs: number;
}

interface Aimable {
  readonly aim?: Aim;
}

/** The aim of an event, if it is aimed. */
export function aimOf(event: FaultEvent): Aim | undefined {
  return "aim" in event ? event.aim : undefined;
}

/** One scheduled fault (or repair, or operator request), at a simulated time. */
export type FaultEvent =
  | ({ readonly kind: "crash"; readonly atMs: number; readonly node: number } & Aimable)
  | ({
      readonly kind: "restart";
      readonly atMs: number;
      readonly node: number;
      /**
       * The node comes back with an empty disk (a replaced disk, or state discarded as damaged):
       * its log, hard state and snapshot are gone and it restarts as a recovering member
       * (PersistedState.stateLost). The harness restarts it whole instead while another member
       * still recovers: two members without their state in three is damage on a majority.
       */
      readonly wiped?: true;
    } & Aimable)
  | ({
      readonly kind: "partition";
      readonly atMs: number;
      readonly minority: readonly number[];
      readonly majority: readonly number[];
    } & Aimable)
  | ({
      readonly kind: "partition-one-way";
      readonly atMs: number;
      readonly from: readonly number[];
      readonly to: readonly number[];
    } & Aimable)
  | {
      readonly kind: "bridge";
      readonly atMs: number;
      readonly bridge: number;
      readonly sideA: readonly number[];
      readonly sideB: readonly number[];
    }
  | ({ readonly kind: "isolate"; readonly atMs: number; readonly node: number } & Aimable)
  | ({ readonly kind: "heal"; readonly atMs: number } & Aimable)
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

/**
 * The kinds of action the generator chooses between. `switch` repairs one fault (a restart or a heal)
 * and, at the same moment, aims a crash or an isolation at the leader: with one fault allowed at a
 * time (three nodes), that is how one leader comes back while the next one goes away.
 * `leader-churn` chains three of them (Raft's Figure 8): cut off the leader while it holds entries no
 * majority has; when the next leader is fresh, bring the first back and cut off the new one; when the
 * first is re-elected and a majority holds its old-term entry, bring the second back and cut it off
 * again. A core that commits that entry by counting replicas then loses it.
 */
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
  | "transfer-leadership"
  | "switch"
  | "leader-churn";

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
  /** The share of crashes, isolations and partitions aimed at the leader. Default 1/2. */
  readonly aimedShare?: readonly [numerator: number, denominator: number];
  /** How long each step of a leader churn waits for its moment. Default 1,000 ms. */
  readonly churnWaitMs?: number;
  /**
   * The share of restarts that come back with a wiped disk (`wiped`). Decided with a PRNG of its
   * own, so a schedule differs from the one without wipes only in these flags. Default none.
   */
  readonly wipedRestartShare?: readonly [numerator: number, denominator: number];
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
  switch: 3,
  "leader-churn": 2,
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
  /** The network fault in force, if any. */
  network: Extract<FaultEvent, { kind: NetworkFaultKind }> | undefined;

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
        this.#setNetwork(event, event.minority);
        break;
      case "partition-one-way":
        this.#setNetwork(event, event.from);
        break;
      case "bridge":
        // Each side reaches a majority only through the bridge; count the smaller side as cut off.
        this.#setNetwork(event, event.sideA.length <= event.sideB.length ? event.sideA : event.sideB);
        break;
      case "isolate":
        this.#setNetwork(event, [event.node]);
        break;
      case "heal":
        this.networkMinority = [];
        this.networkFault = false;
        this.network = undefined;
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

  /**
   * What `node` suffers now, as a string: two nodes with the same signature are interchangeable (the
   * injector may swap their labels without changing what is broken).
   */
  signature(node: number): string {
    const net = this.network;
    let side = "";
    if (net !== undefined) {
      switch (net.kind) {
        case "partition":
          side = net.minority.includes(node) ? "cut" : "majority";
          break;
        case "partition-one-way":
          side = net.from.includes(node) ? "from" : net.to.includes(node) ? "to" : "";
          break;
        case "bridge":
          side = net.bridge === node ? "bridge" : net.sideA.includes(node) ? "a" : "b";
          break;
        case "isolate":
          side = net.node === node ? "isolated" : "rest";
          break;
        default:
          assertNever(net, "network fault");
      }
    }
    const flag = (set: Set<number>) => (set.has(node) ? "1" : "0");
    return `${flag(this.crashed)}${flag(this.slowDisk)}${flag(this.removed)}:${side}`;
  }

  #setNetwork(event: Extract<FaultEvent, { kind: NetworkFaultKind }>, minority: readonly number[]): void {
    assert(!this.networkFault, "a network fault while another is in force");
    this.networkMinority = minority;
    this.networkFault = true;
    this.network = event;
  }
}

/** The events that put a network fault in force. */
type NetworkFaultKind = "partition" | "partition-one-way" | "bridge" | "isolate";

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
  const crashableNow = () => nodes.filter((n) => !state.crashed.has(n) && !state.removed.has(n) && fits([n]));
  const aimedShare = options.aimedShare ?? [1, 2];
  const churnWaitMs = options.churnWaitMs ?? 1_000;
  // An aimed event waits at most until about when the next decision would come.
  const aimAt = (moment: LeaderMoment): Aim => ({ moment, waitMs: options.gapMaxMs });
  /** An aim for a fault, or none: the share of aimed faults, each at a moment picked uniformly. */
  const maybeAim = (): { aim?: Aim } =>
    prng.chance(...aimedShare) ? { aim: aimAt(prng.pick(leaderMoments)) } : {};
  /** Cuts off (isolates, or now and then crashes) the leader at `moment`, if the budget allows. */
  const cutOffLeader = (aim: Aim): FaultEvent | undefined => {
    const crashable = weights.crash > 0 ? crashableNow() : [];
    const isolatable = weights.isolate > 0 && !state.networkFault ? nodes.filter((n) => fits([n])) : [];
    if (isolatable.length > 0 && (crashable.length === 0 || prng.chance(3, 4)))
      return { kind: "isolate", atMs, node: prng.pick(isolatable), aim };
    if (crashable.length > 0) return { kind: "crash", atMs, node: prng.pick(crashable), aim };
    return undefined;
  };
  /** Repairs `fault` (a crash or an isolation the generator made) at `moment`. */
  const repair = (fault: FaultEvent, aim: Aim): FaultEvent =>
    fault.kind === "crash" ? { kind: "restart", atMs, node: fault.node, aim } : { kind: "heal", atMs, aim };

  for (;;) {
    atMs += prng.range(options.gapMinMs, options.gapMaxMs);
    if (atMs >= options.safetyPhaseMs) break;
    const healthy = nodes.filter((n) => !state.faulty().has(n));
    const running = nodes.filter((n) => !state.crashed.has(n) && !state.removed.has(n));
    // Each applicable action with what it emits; the weights pick one.
    const choices: { kind: FaultKind; make: () => void }[] = [];
    const add = (kind: FaultKind, make: () => FaultEvent | undefined) =>
      choices.push({
        kind,
        make: () => {
          const event = make();
          if (event !== undefined) emit(event);
        },
      });
    if (budget > 0) {
      const crashable = crashableNow();
      if (crashable.length > 0)
        add("crash", () => ({ kind: "crash", atMs, node: prng.pick(crashable), ...maybeAim() }));
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
          return {
            kind: "partition",
            atMs,
            minority: cut,
            majority: nodes.filter((n) => !cut.includes(n)),
            ...maybeAim(),
          };
        });
        add("partition-one-way", () => {
          const cut = minority();
          if (!fits(cut)) return undefined;
          return {
            kind: "partition-one-way",
            atMs,
            from: cut,
            to: nodes.filter((n) => !cut.includes(n)),
            ...maybeAim(),
          };
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
          add("isolate", () => ({ kind: "isolate", atMs, node: prng.pick(isolatable), ...maybeAim() }));
      }
      if (state.crashed.size > 0 || state.networkFault) {
        // Repair one fault and aim a new one at the leader, both at one moment of the leader's.
        choices.push({
          kind: "switch",
          make: () => {
            const aim = aimAt(prng.pick(leaderMoments));
            const heal = state.networkFault && (state.crashed.size === 0 || prng.chance(1, 2));
            emit(
              heal
                ? { kind: "heal", atMs, aim }
                : { kind: "restart", atMs, node: prng.pick([...state.crashed]), aim },
            );
            const fault = cutOffLeader(aim);
            if (fault !== undefined) emit(fault);
          },
        });
      }
      if (!state.networkFault) {
        choices.push({
          kind: "leader-churn",
          make: () => {
            const steps: LeaderMoment[] = ["unreplicated", "fresh", "old-term-quorum"];
            let last: FaultEvent | undefined;
            for (const moment of steps) {
              const aim: Aim = { moment, waitMs: churnWaitMs };
              if (last !== undefined) emit(repair(last, aim));
              last = cutOffLeader(aim);
              if (last === undefined) return;
              emit(last);
            }
            // Leave the last leader cut off for a while: the second one must win meanwhile.
            atMs += 2 * churnWaitMs;
          },
        });
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
    chosen?.make();
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
  const share = options.wipedRestartShare;
  const marked = share === undefined ? events : markWipedRestarts(seed, events, share);
  return { events: marked, safetyEndMs, livenessEndMs: safetyEndMs + options.livenessPhaseMs };
}

/**
 * Marks a `share` of the restarts wiped, with a PRNG of their own. A member that lost its state
 * stays out of elections until a leader made it whole, so it counts against the fault budget after
 * its restart too: other faults meanwhile (crashes, partitions) make the cluster unavailable for a
 * while, which the liveness phase repairs, but a membership removal in flight can leave it with no
 * electable majority for good (a removed member's longer log refuses the others' votes, and the
 * wiped one withholds its own; seeds 196 and 2790). So only runs without removals wipe.
 */
function markWipedRestarts(
  seed: number,
  events: readonly FaultEvent[],
  share: readonly [number, number],
): FaultEvent[] {
  const wipes = new Prng(seed ^ wipeStreamSalt);
  const state = new FaultState();
  // The operator's reconciliation carries a removal (and the re-addition) out whenever a leader
  // lets it, long after the schedule's events: no event window is safe, so runs that change their
  // membership wipe nothing (seed 2790 deadlocked so with a removal 1 s away).
  if (events.some((e) => e.kind === "remove-member")) return [...events];
  return events.map((e): FaultEvent => {
    state.apply(e);
    if (e.kind !== "restart" || !wipes.chance(...share)) return e;
    return { ...e, wiped: true };
  });
}

/** Separates the PRNG stream that picks wiped restarts from the schedule's own. */
const wipeStreamSalt = 0x3a1f_9c05;

/** One line per event, for printing a schedule next to its seed. */
export function describeFaultSchedule(schedule: FaultSchedule): string {
  const lines = schedule.events.map((e) => describeFaultEvent(e));
  lines.push(`${String(schedule.safetyEndMs).padStart(7)}ms safety phase ends: all repaired`);
  lines.push(`${String(schedule.livenessEndMs).padStart(7)}ms liveness phase ends`);
  return lines.join("\n");
}

/** One event as one line: time, kind, details, and the moment it is aimed at, if any. */
export function describeFaultEvent(event: FaultEvent): string {
  const { kind, atMs, ...rest } = event;
  const { aim: _aim, ...details } = rest as typeof rest & Aimable;
  const aim = aimOf(event);
  const aimed = aim === undefined ? "" : ` (aimed at the leader: ${aim.moment}, waits ${aim.waitMs}ms)`;
  return `${String(atMs).padStart(7)}ms ${kind} ${JSON.stringify(details)}${aimed}`;
}
