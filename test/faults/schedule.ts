// The nemesis's plan: a seeded list of faults, each struck at a time, held for a while and healed,
// with quiet stretches between them. A pure function of (seed, settings): the same seed replays the
// same schedule. Which node "the leader" or "a follower" is can only be known when a fault strikes,
// so those choices are resolved then, from a number the schedule fixed in advance.
import { assert, assertNever } from "../../src/util/assert.js";
import { Prng } from "../../src/util/prng.js";
import { pickWeighted } from "../sim/pick-weighted.js";

/** Which node a fault aims at: decided when it strikes (`salt` picks among several candidates). */
export type NodeAim = "leader" | "follower" | "any";

/** The shapes of network partition the nemesis makes (every link between two sides is cut). */
export type PartitionShape =
  /** The leader alone on one side. */
  | "isolate-leader"
  /** One follower alone. */
  | "isolate-follower"
  /** A random minority (with 5 nodes, two of them) on one side, the leader among them or not. */
  | "minority"
  /**
   * Two sides that cannot talk, and one bridge node that talks to both (in 3 nodes: two nodes cut
   * from each other, the third reaching both).
   */
  | "bridge"
  /** The leader's messages reach nobody, while it still hears everyone (one-way). */
  | "leader-mute"
  /** Nothing reaches the leader, while its messages still go out (one-way). */
  | "leader-deaf";

/** The files of a node that the `corrupt` fault damages. */
export type CorruptTarget =
  /** A WAL segment (a sealed one for a truncation: see docs/faults.md). */
  | "wal"
  /** The hard-state file (term, vote, commit index). */
  | "hard-state"
  /** The newest snapshot file (the WAL when the node has none). */
  | "snapshot"
  /** The state store's lmdb file: a flip lands in stored values, a truncation cuts the file. */
  | "state";

/** How the `corrupt` fault damages a file: one flipped byte, or the file cut short. */
export type CorruptDamage = "flip" | "truncate";

/** The targets and damages the nemesis picks from. */
export const corruptTargets: readonly CorruptTarget[] = ["wal", "hard-state", "snapshot", "state"];
const corruptDamages: readonly CorruptDamage[] = ["flip", "truncate"];

/** One fault. Every fault ends on its own (`holdMs`), so the cluster gets quiet stretches to recover. */
export type Fault =
  /** SIGKILL, restart after the hold. */
  | { readonly kind: "kill"; readonly aim: NodeAim }
  /** SIGSTOP, SIGCONT after the hold. */
  | { readonly kind: "pause"; readonly aim: NodeAim }
  /** Cut links; `blackhole` swallows bytes on open connections instead of refusing them. */
  | { readonly kind: "partition"; readonly shape: PartitionShape; readonly blackhole: boolean }
  /** Every log write and sync of one node waits `delayMs` in memory first. */
  | { readonly kind: "slow-disk"; readonly aim: NodeAim; readonly delayMs: number }
  /**
   * A power cut: every node's disk but the leader's first holds its writes `cacheMs` in memory (as a
   * disk cache does; disks differ in speed), then every node is SIGKILLed at once, losing what was
   * held; all restart after the hold. A node that acknowledged only what it had synced loses nothing
   * it acknowledged.
   */
  | { readonly kind: "crash-all"; readonly cacheMs: number }
  /**
   * SIGKILL, damage the stopped node's `target` file, restart it after the hold: it must find the
   * damage, recover from its peers and lose nothing acknowledged. Struck only while every other node
   * is whole (damage on a majority is out of the model: the cluster then refuses to serve).
   */
  | {
      readonly kind: "corrupt";
      readonly aim: NodeAim;
      readonly target: CorruptTarget;
      readonly damage: CorruptDamage;
    };

/** The kinds of fault, for selecting which a run uses. */
export type FaultKind = Fault["kind"];

/** Every fault kind. */
export const faultKinds: readonly FaultKind[] = [
  "kill",
  "pause",
  "partition",
  "slow-disk",
  "crash-all",
  "corrupt",
];

/** One scheduled fault: struck at `atMs` (since the run began), healed at `atMs + holdMs`. */
export interface ScheduledFault {
  readonly atMs: number;
  readonly holdMs: number;
  readonly fault: Fault;
  /** Chooses among candidate nodes when the fault strikes (deterministic given the same candidates). */
  readonly salt: number;
}

/** What a schedule is made from. */
export interface ScheduleOptions {
  readonly seed: number;
  /** How long faults may be active: every fault heals by then. */
  readonly durationMs: number;
  readonly kinds: readonly FaultKind[];
  /** Quiet time before the first fault and between faults, uniform in [min, max]. */
  readonly quietMinMs: number;
  readonly quietMaxMs: number;
  /** How long a fault holds, uniform in [min, max]. */
  readonly holdMinMs: number;
  readonly holdMaxMs: number;
}

/** Relative weights of the fault kinds (a power cut is rarer than the rest). */
const kindWeights: Readonly<Record<FaultKind, number>> = {
  kill: 4,
  pause: 3,
  partition: 6,
  "slow-disk": 2,
  "crash-all": 1,
  corrupt: 2,
};

const shapes: readonly PartitionShape[] = [
  "isolate-leader",
  "isolate-follower",
  "minority",
  "bridge",
  "leader-mute",
  "leader-deaf",
];
const aims: readonly NodeAim[] = ["leader", "follower", "any"];

/** Builds the schedule for `options`: the same options give the same schedule. */
export function faultSchedule(options: ScheduleOptions): ScheduledFault[] {
  assert(options.kinds.length > 0 || options.durationMs === 0, "a schedule needs at least one fault kind");
  assert(options.quietMaxMs >= options.quietMinMs && options.quietMinMs >= 0, "bad quiet range");
  assert(options.holdMaxMs >= options.holdMinMs && options.holdMinMs >= 1, "bad hold range");
  const prng = new Prng(options.seed);
  const out: ScheduledFault[] = [];
  let atMs = prng.range(options.quietMinMs, options.quietMaxMs);
  for (;;) {
    const holdMs = prng.range(options.holdMinMs, options.holdMaxMs);
    if (atMs + holdMs > options.durationMs) break;
    const kind = pickWeighted(
      prng,
      options.kinds.map((k) => [k, kindWeights[k]] as const),
    );
    if (kind === undefined) break;
    out.push({ atMs, holdMs, fault: faultOf(kind, prng), salt: prng.below(1_000_000) });
    atMs += holdMs + prng.range(options.quietMinMs, options.quietMaxMs);
  }
  return out;
}

function faultOf(kind: FaultKind, prng: Prng): Fault {
  switch (kind) {
    case "kill":
    case "pause":
      return { kind, aim: prng.pick(aims) };
    case "partition":
      return { kind, shape: prng.pick(shapes), blackhole: prng.chance(1, 2) };
    case "slow-disk":
      return { kind, aim: prng.pick(aims), delayMs: prng.range(50, 400) };
    case "crash-all":
      return { kind, cacheMs: prng.range(100, 500) };
    case "corrupt":
      return {
        kind,
        aim: prng.pick(aims),
        target: prng.pick(corruptTargets),
        damage: prng.pick(corruptDamages),
      };
    default:
      return assertNever(kind, "fault kind");
  }
}

/** A fault in a few words, for logs and reports. */
export function describeFault(fault: Fault): string {
  switch (fault.kind) {
    case "kill":
    case "pause":
      return `${fault.kind} ${fault.aim}`;
    case "partition":
      return `partition ${fault.shape}${fault.blackhole ? " (blackhole)" : ""}`;
    case "slow-disk":
      return `slow disk ${fault.aim} ${fault.delayMs} ms`;
    case "crash-all":
      return `crash all (disk caches ${fault.cacheMs} ms)`;
    case "corrupt":
      return `corrupt ${fault.aim}: ${fault.damage} ${fault.target}`;
    default:
      return assertNever(fault, "fault");
  }
}

/** An ordered pair of node indexes: messages from `from` to `to`. */
export interface Link {
  readonly from: number;
  readonly to: number;
}

/** Every link between the two sides, both ways. */
export function linksBetween(a: readonly number[], b: readonly number[]): Link[] {
  return a.flatMap((x) =>
    b.flatMap((y) => [
      { from: x, to: y },
      { from: y, to: x },
    ]),
  );
}

/**
 * The links a partition cuts, for `size` nodes with `leader` leading (undefined: none known, and a
 * leader-aimed shape falls back to a node picked by `salt`).
 */
export function partitionLinks(
  shape: PartitionShape,
  size: number,
  leader: number | undefined,
  salt: number,
): Link[] {
  const all = Array.from({ length: size }, (_, i) => i);
  const prng = new Prng(salt);
  const lead = leader ?? prng.below(size);
  const others = (side: readonly number[]) => all.filter((i) => !side.includes(i));
  switch (shape) {
    case "isolate-leader":
      return linksBetween([lead], others([lead]));
    case "isolate-follower": {
      const follower = prng.pick(others([lead]));
      return linksBetween([follower], others([follower]));
    }
    case "minority": {
      const side = prng.shuffle([...all]).slice(0, Math.floor((size - 1) / 2));
      return linksBetween(side, others(side));
    }
    case "bridge": {
      const [bridge = 0, ...rest] = prng.shuffle([...all]);
      const half = Math.floor(rest.length / 2);
      return linksBetween(rest.slice(0, half), rest.slice(half)).filter(
        (l) => l.from !== bridge && l.to !== bridge,
      );
    }
    case "leader-mute":
      return others([lead]).map((to) => ({ from: lead, to }));
    case "leader-deaf":
      return others([lead]).map((from) => ({ from, to: lead }));
    default:
      return assertNever(shape, "partition shape");
  }
}

/**
 * The nodes a set of cut links leaves without a majority to talk to both ways (themselves
 * included): the isolated node, the minority side, a leader that can only send or only hear.
 */
export function cutOff(links: readonly Link[], size: number): number[] {
  const cut = new Set(links.map(({ from, to }) => `${from}->${to}`));
  const talks = (a: number, b: number) => !cut.has(`${a}->${b}`) && !cut.has(`${b}->${a}`);
  const all = Array.from({ length: size }, (_, i) => i);
  return all.filter((n) => all.filter((m) => m === n || talks(n, m)).length <= size / 2);
}
