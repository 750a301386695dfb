// A cluster of real processes as the nemesis sees it: nodes by index that can be killed, restarted,
// paused and resumed by pid, links (ordered pairs of nodes) that can be cut, and a way to ask who
// leads. Cairn and etcd each implement it, so one schedule runs against both.
import type { CorruptDamage, CorruptTarget, Link } from "./schedule.js";

/** What the nemesis can do to a cluster. */
export interface FaultCluster {
  /** The system's name in reports ("cairn", "etcd"). */
  readonly system: string;
  readonly size: number;
  /** The nodes' client URLs, by index. */
  readonly urls: readonly string[];
  /** Whether the slow-disk fault can be applied (etcd's disk cannot be slowed from outside). */
  readonly supportsSlowDisk: boolean;
  /** Whether the corrupt fault can be applied (Cairn's files only: etcd is the availability reference). */
  readonly supportsCorruption: boolean;
  /** Starts every node and waits until a leader is known. */
  start(): Promise<void>;
  /** SIGKILL; resolves once the process is gone. */
  kill(node: number): Promise<void>;
  /** Starts a stopped node again on its data and waits until it answers. */
  restart(node: number): Promise<void>;
  /** SIGSTOP. */
  pause(node: number): void;
  /** SIGCONT. */
  resume(node: number): void;
  /** Whether the node's process is running (paused counts as running). */
  isRunning(node: number): boolean;
  /**
   * Cuts the links: messages from `from` to `to` no longer arrive. `blackhole` swallows bytes on
   * open connections (the ends notice only by their own timeouts) instead of refusing connections.
   */
  cut(links: readonly Link[], blackhole: boolean): void;
  /** Restores every link. */
  healLinks(): void;
  /** Slows a node's disk: every log write and sync waits `delayMs` (only when `supportsSlowDisk`). */
  slowDisk(node: number, delayMs: number): Promise<void>;
  /** Gives a node its usual disk speed back. */
  healDisk(node: number): Promise<void>;
  /**
   * Damages a stopped node's files (only when `supportsCorruption`); `salt` picks the file and the
   * spot. Returns what it did, for the log.
   */
  corrupt(node: number, target: CorruptTarget, damage: CorruptDamage, salt: number): Promise<string>;
  /** Whether every node answers and none says it is recovering lost or damaged data. */
  allWhole(): Promise<boolean>;
  /**
   * The node that leads, as the nodes say (the highest term wins when two claim it), or undefined
   * when none answers in time.
   */
  leader(): Promise<number | undefined>;
  /** Every node's recent output, for a failure report. */
  logs(): string;
  /** Kills every process and removes every file. */
  close(): Promise<void>;
}
