// Applies a fault schedule (schedule.ts) to a cluster in real time: strikes each fault at its time,
// resolves "the leader" or "a follower" at that moment, holds it, heals it, and keeps a log of what
// it did. One fault at a time; `healAll` undoes whatever is left when the run ends.
import { assertNever } from "../../src/util/assert.js";
import { Prng } from "../../src/util/prng.js";
import type { FaultCluster } from "./fault-cluster.js";
import type { RealClock } from "./real-clock.js";
import {
  cutOff,
  describeFault,
  type Fault,
  type NodeAim,
  partitionLinks,
  type ScheduledFault,
} from "./schedule.js";

/** One fault as it was applied. */
export interface AppliedFault {
  readonly atMs: number;
  /** When it was healed (run time); undefined while it holds. */
  healedAtMs: number | undefined;
  readonly kind: Fault["kind"];
  readonly description: string;
  /**
   * The nodes it struck, by index: the node killed, paused or slowed, every node of a power cut, or
   * the nodes a partition left without a majority to talk to.
   */
  readonly struck: readonly number[];
}

/** How to undo a fault that is in force. */
type Undo = () => Promise<void>;

/** Runs a schedule against a cluster. */
export class Nemesis {
  readonly #cluster: FaultCluster;
  readonly #clock: RealClock;
  readonly #say: (line: string) => void;
  readonly applied: AppliedFault[] = [];
  #undo: Undo | undefined;
  #stopped = false;

  /** Creates a nemesis; `say` receives one line per fault struck and healed. */
  constructor(cluster: FaultCluster, clock: RealClock, say: (line: string) => void) {
    this.#cluster = cluster;
    this.#clock = clock;
    this.#say = say;
  }

  /**
   * Runs the schedule to its end (or until {@link stop}); every fault is healed when it resolves.
   * Striking and healing take real time (a restart takes seconds), so when a heal ends late the rest
   * of the schedule shifts by as much: each quiet stretch keeps its planned length.
   */
  async run(schedule: readonly ScheduledFault[]): Promise<void> {
    let lagMs = 0;
    for (const planned of schedule) {
      await this.#until(planned.atMs + lagMs);
      if (this.#stopped) break;
      const struck = await this.#strike(planned.fault, planned.salt);
      const applied: AppliedFault = { ...struck, kind: planned.fault.kind, healedAtMs: undefined };
      this.applied.push(applied);
      this.#say(
        `t=${this.#clock.nowMs}ms strike ${applied.description} on ${applied.struck.map((n) => `n${n + 1}`).join(",")}`,
      );
      await this.#until(planned.atMs + lagMs + planned.holdMs);
      await this.healAll();
      applied.healedAtMs = this.#clock.nowMs;
      lagMs = Math.max(lagMs, this.#clock.nowMs - planned.atMs - planned.holdMs);
    }
  }

  /** Stops striking; a fault in force stays until {@link healAll}. */
  stop(): void {
    this.#stopped = true;
  }

  /** Heals the fault in force, if any. */
  async healAll(): Promise<void> {
    const undo = this.#undo;
    this.#undo = undefined;
    if (undo === undefined) return;
    await undo();
    this.#say(`t=${this.#clock.nowMs}ms healed`);
  }

  async #until(atMs: number): Promise<void> {
    while (!this.#stopped && this.#clock.nowMs < atMs) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, atMs - this.#clock.nowMs)));
    }
  }

  /** The node a fault aims at, resolved now. */
  async #aim(aim: NodeAim, salt: number): Promise<number> {
    const cluster = this.#cluster;
    const prng = new Prng(salt);
    const all = Array.from({ length: cluster.size }, (_, i) => i);
    if (aim === "any") return prng.pick(all);
    const leader = await cluster.leader();
    if (leader === undefined) return prng.pick(all);
    return aim === "leader" ? leader : prng.pick(all.filter((i) => i !== leader));
  }

  /** Applies a fault and remembers how to undo it. */
  async #strike(fault: Fault, salt: number): Promise<Pick<AppliedFault, "atMs" | "description" | "struck">> {
    const cluster = this.#cluster;
    const atMs = this.#clock.nowMs;
    const description = describeFault(fault);
    switch (fault.kind) {
      case "kill": {
        const node = await this.#aim(fault.aim, salt);
        await cluster.kill(node);
        this.#undo = () => cluster.restart(node);
        return { atMs, description, struck: [node] };
      }
      case "corrupt": {
        const node = await this.#aim(fault.aim, salt);
        if (!cluster.supportsCorruption)
          return { atMs, description: `${description} (not supported: skipped)`, struck: [] };
        // One node's damage at a time: a second before the first healed would be damage on a
        // majority of three, which the cluster answers by refusing to serve, not by healing.
        if (!(await cluster.allWhole()))
          return { atMs, description: `${description} (a node still recovers: skipped)`, struck: [] };
        await cluster.kill(node);
        const what = await cluster.corrupt(node, fault.target, fault.damage, salt);
        this.#undo = () => cluster.restart(node);
        return { atMs, description: `${description}: ${what}`, struck: [node] };
      }
      case "crash-all": {
        const all = Array.from({ length: cluster.size }, (_, i) => i);
        if (cluster.supportsSlowDisk) {
          const leader = await cluster.leader();
          const cached = all.filter((node) => node !== leader);
          for (const node of cached) await cluster.slowDisk(node, fault.cacheMs);
          // Let writes pile up in the caches before the power goes.
          await new Promise((resolve) => setTimeout(resolve, 2 * fault.cacheMs));
        }
        await Promise.all(all.map((node) => cluster.kill(node)));
        this.#undo = async () => {
          for (const node of all) await cluster.healDisk(node);
          await Promise.all(all.map((node) => cluster.restart(node)));
        };
        return { atMs, description, struck: all };
      }
      case "pause": {
        const node = await this.#aim(fault.aim, salt);
        cluster.pause(node);
        this.#undo = async () => cluster.resume(node);
        return { atMs, description, struck: [node] };
      }
      case "partition": {
        const links = partitionLinks(fault.shape, cluster.size, await cluster.leader(), salt);
        cluster.cut(links, fault.blackhole);
        this.#undo = async () => cluster.healLinks();
        return {
          atMs,
          description: `${description}: ${links.map((l) => `n${l.from + 1}->n${l.to + 1}`).join(" ")}`,
          struck: cutOff(links, cluster.size),
        };
      }
      case "slow-disk": {
        const node = await this.#aim(fault.aim, salt);
        if (!cluster.supportsSlowDisk)
          return { atMs, description: `${description} (not supported: skipped)`, struck: [] };
        await cluster.slowDisk(node, fault.delayMs);
        this.#undo = () => cluster.healDisk(node);
        return { atMs, description, struck: [node] };
      }
      default:
        return assertNever(fault, "fault");
    }
  }
}
