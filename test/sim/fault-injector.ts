// Plays a fault schedule onto a running simulation: network faults go to the SimNetwork, node faults
// and operator requests to the cluster harness through a small interface, each at its scheduled time.
import { assertNever } from "../../src/util/assert.js";
import type { FaultEvent, FaultSchedule } from "./fault-schedule.js";
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
 * What the cluster harness must do for node faults and operator requests. Requests may fail (no
 * leader right now); the harness records that and moves on, since faults are allowed to make them fail.
 */
export interface FaultTarget {
  crash(node: number): void;
  restart(node: number): void;
  setDiskExtraLatency(node: number, extraMs: number): void;
  requestRemoveMember(node: number): void;
  requestAddMember(node: number): void;
  requestLeadershipTransfer(to: number): void;
}

/** Schedules every event of `schedule` on `scheduler`; `onEvent` sees each one as it fires (for logs). */
export function injectFaults(
  scheduler: Scheduler,
  schedule: FaultSchedule,
  network: PartitionableNetwork,
  target: FaultTarget,
  onEvent: (event: FaultEvent) => void = () => {},
): void {
  for (const event of schedule.events) {
    scheduler.at(
      event.atMs,
      () => {
        onEvent(event);
        applyFault(event, network, target);
      },
      `fault ${event.kind}`,
    );
  }
}

/** Carries out one fault event now. */
export function applyFault(event: FaultEvent, network: PartitionableNetwork, target: FaultTarget): void {
  switch (event.kind) {
    case "crash":
      target.crash(event.node);
      break;
    case "restart":
      target.restart(event.node);
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
