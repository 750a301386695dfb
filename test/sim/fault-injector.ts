// Plays a fault schedule onto a running simulation: network faults go to the SimNetwork, node faults
// and operator requests to the cluster harness through a small interface. Events fire in schedule
// order at their time; an aimed event first waits for its moment of the leader's (until the next
// event's time at the latest) and then strikes whoever leads, found through the harness.
import { assertNever } from "../../src/util/assert.js";
import {
  aimOf,
  type FaultEvent,
  type FaultSchedule,
  FaultState,
  type LeaderMoment,
} from "./fault-schedule.js";
import type { Scheduler } from "./scheduler.js";

/** The network operations the injector needs (SimNetwork implements them). */
export interface PartitionableNetwork {
  partition(sideA: readonly number[], sideB: readonly number[]): void;
  partitionOneWay(from: readonly number[], to: readonly number[]): void;
  bridge(bridge: number, sideA: readonly number[], sideB: readonly number[]): void;
  isolate(node: number): void;
  healAll(): void;
}

/**
 * What an aimed fault looks at: the running node that leads in the highest term, and how far its
 * entries have spread.
 */
export interface LeaderView {
  readonly node: number;
  readonly term: number;
  readonly lastIndex: number;
  /** The highest index a majority of the voters holds (the leader's durable log counting for it). */
  readonly quorumIndex: number;
  /** The term of the entry at `quorumIndex` (0 at index 0), or undefined when the leader cannot tell. */
  readonly quorumTerm: number | undefined;
  /** The commit index the leader had when it was elected. */
  readonly commitAtElection: number;
}

/**
 * What the cluster harness must do for node faults and operator requests. Requests may fail (no
 * leader right now); the harness records that and moves on, since faults are allowed to make them fail.
 */
export interface FaultTarget {
  crash(node: number): void;
  /** Restarts a crashed node; `wiped`: with an empty disk, as a recovering member (see FaultEvent). */
  restart(node: number, wiped?: boolean): void;
  setDiskExtraLatency(node: number, extraMs: number): void;
  requestRemoveMember(node: number): void;
  requestAddMember(node: number): void;
  requestLeadershipTransfer(to: number): void;
  /** The leader as an aimed fault sees it; undefined while no running node leads. */
  leaderView(): LeaderView | undefined;
}

/** The highest index held by a majority of the voters, given each voter's match index. */
export function quorumIndex(voterMatches: readonly number[]): number {
  const sorted = [...voterMatches].sort((a, b) => b - a);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** Whether the leader is at `moment` (see {@link LeaderMoment}). */
export function atLeaderMoment(moment: LeaderMoment, view: LeaderView): boolean {
  switch (moment) {
    case "now":
      return true;
    case "unreplicated":
      return view.lastIndex > view.quorumIndex;
    case "fresh":
      return view.quorumTerm !== view.term;
    case "old-term-quorum":
      return (
        view.quorumIndex > view.commitAtElection &&
        view.quorumTerm !== undefined &&
        view.quorumTerm < view.term
      );
    default:
      return assertNever(moment, "leader moment");
  }
}

/** A fired event: the schedule's event, the same with real node ids, when it fired, and how it was aimed. */
export interface FiredFault {
  readonly scheduled: FaultEvent;
  readonly resolved: FaultEvent;
  readonly firedMs: number;
  /** For an aimed fault: whether its moment never came and it fired at its deadline. */
  readonly missedMoment?: boolean;
  /** For an aimed fault: whom it hit, or why it could not hit the leader. */
  readonly note?: string;
}

/** The running injector: the harness loop calls `poll` after each event while an aimed event waits. */
export interface FaultInjector {
  /** Fires the waiting aimed event if its moment has come. Cheap when nothing waits. */
  poll(): void;
  /** Every event fired so far, in order. */
  readonly fired: readonly FiredFault[];
}

/**
 * Schedules every event of `schedule` on `scheduler`, in order; `onEvent` sees each one (with real
 * node ids) as it fires. The caller must call `poll()` after every simulation event so aimed events
 * fire at their moment (Scheduler.afterEvent, or the asynchronous loop after promises settle).
 */
export function injectFaults(
  scheduler: Scheduler,
  schedule: FaultSchedule,
  network: PartitionableNetwork,
  target: FaultTarget,
  onEvent: (event: FaultEvent) => void = () => {},
): FaultInjector {
  const events = schedule.events;
  const fired: FiredFault[] = [];
  // The schedule's numbers are labels; `real[label]` is the node a label stands for now.
  const real = new Map<number, number>();
  const labelOf = (node: number) => {
    for (const [label, n] of real) if (n === node) return label;
    return node;
  };
  const realOf = (label: number) => real.get(label) ?? label;
  const state = new FaultState();
  let cursor = 0;
  let waiting = false;

  /** When the aimed event at the cursor fires at the latest (set once it is next in line). */
  let deadlineMs: number | undefined;
  /** Swaps labels so that the aimed event's node is the leader, when that changes nothing else. */
  const aim = (event: FaultEvent): string | undefined => {
    let wanted: readonly number[];
    switch (event.kind) {
      case "crash":
      case "isolate":
        wanted = [event.node];
        break;
      case "partition":
        wanted = event.minority;
        break;
      case "partition-one-way":
        wanted = event.from;
        break;
      default:
        return undefined;
    }
    const view = target.leaderView();
    if (view === undefined) return "no leader";
    const leaderLabel = labelOf(view.node);
    if (wanted.includes(leaderLabel)) return `at leader ${view.node}`;
    const signature = state.signature(leaderLabel);
    const swap = wanted.find((label) => state.signature(label) === signature);
    if (swap === undefined) return `leader ${view.node} is not interchangeable`;
    const node = realOf(swap);
    real.set(swap, view.node);
    real.set(leaderLabel, node);
    return `at leader ${view.node}`;
  };

  const fire = (event: FaultEvent, missedMoment: boolean) => {
    const note = aimOf(event) === undefined ? undefined : aim(event);
    const resolved = withRealNodes(event, realOf);
    state.apply(event);
    fired.push({
      scheduled: event,
      resolved,
      firedMs: scheduler.nowMs,
      ...(missedMoment ? { missedMoment } : {}),
      ...(note === undefined ? {} : { note }),
    });
    onEvent(resolved);
    applyFault(resolved, network, target);
  };

  /** Fires every event that is due, in order; stops at a future one or an aimed one still waiting. */
  const pump = () => {
    waiting = false;
    for (;;) {
      const event = events[cursor];
      if (event === undefined || scheduler.nowMs < event.atMs) return;
      const aimed = aimOf(event);
      let missed = false;
      if (aimed !== undefined) {
        if (deadlineMs === undefined) {
          // Next in line now: wait for the moment, but never past the end of the safety phase.
          deadlineMs = Math.max(
            scheduler.nowMs,
            Math.min(scheduler.nowMs + aimed.waitMs, schedule.safetyEndMs),
          );
          scheduler.at(deadlineMs, pump, "fault deadline");
        }
        const view = target.leaderView();
        if (view === undefined || !atLeaderMoment(aimed.moment, view)) {
          if (scheduler.nowMs < deadlineMs) {
            waiting = true;
            return;
          }
          missed = true;
        }
      }
      cursor++;
      deadlineMs = undefined;
      fire(event, missed);
    }
  };

  for (const t of new Set(events.map((e) => e.atMs))) scheduler.at(t, pump, "fault");
  return {
    poll: () => {
      if (waiting) pump();
    },
    fired,
  };
}

/** The event with every label replaced by the node it stands for. */
function withRealNodes(event: FaultEvent, realOf: (label: number) => number): FaultEvent {
  const all = (labels: readonly number[]) => labels.map(realOf);
  switch (event.kind) {
    case "crash":
    case "restart":
    case "isolate":
    case "slow-disk":
    case "disk-normal":
    case "remove-member":
    case "add-member":
      return { ...event, node: realOf(event.node) };
    case "partition":
      return { ...event, minority: all(event.minority), majority: all(event.majority) };
    case "partition-one-way":
      return { ...event, from: all(event.from), to: all(event.to) };
    case "bridge":
      return { ...event, bridge: realOf(event.bridge), sideA: all(event.sideA), sideB: all(event.sideB) };
    case "heal":
      return event;
    case "transfer-leadership":
      return { ...event, to: realOf(event.to) };
    default:
      return assertNever(event, "fault event");
  }
}

/** Carries out one fault event now (its nodes are real node ids). */
export function applyFault(event: FaultEvent, network: PartitionableNetwork, target: FaultTarget): void {
  switch (event.kind) {
    case "crash":
      target.crash(event.node);
      break;
    case "restart":
      target.restart(event.node, event.wiped === true);
      break;
    case "partition":
      network.partition(event.minority, event.majority);
      break;
    case "partition-one-way":
      network.partitionOneWay(event.from, event.to);
      break;
    case "bridge":
      network.bridge(event.bridge, event.sideA, event.sideB);
      break;
    case "isolate":
      network.isolate(event.node);
      break;
    case "heal":
      network.healAll();
      break;
    case "slow-disk":
      target.setDiskExtraLatency(event.node, event.extraLatencyMs);
      break;
    case "disk-normal":
      target.setDiskExtraLatency(event.node, 0);
      break;
    case "remove-member":
      target.requestRemoveMember(event.node);
      break;
    case "add-member":
      target.requestAddMember(event.node);
      break;
    case "transfer-leadership":
      target.requestLeadershipTransfer(event.to);
      break;
    default:
      assertNever(event, "fault event");
  }
}
