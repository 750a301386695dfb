// How soon a node repairs damage it found while running (docs/faults.md, "Repair while running").
// A repair discards the node's replicated state and refills it from the leader; damage found again
// soon after one points at the disk or a bug, not at a stray bit flip, and repairing at once would
// turn the node into a loop of discards and refills that loads the leader. So a repair that follows
// another within `quietMs` waits first, twice as long as the previous wait, up to `delayMaxMs`.

/** The repair pacing. */
export interface RepairBackoffSettings {
  /** Damage found at least this long after the previous repair is repaired at once. */
  readonly quietMs: number;
  /** The first wait, for damage found within `quietMs` of a repair. */
  readonly delayMinMs: number;
  /** The longest wait. */
  readonly delayMaxMs: number;
}

/** Defaults: five quiet minutes reset the pacing; waits of 5 s, 10 s, 20 s ... up to 5 min. */
export const defaultRepairBackoff: RepairBackoffSettings = {
  quietMs: 300_000,
  delayMinMs: 5_000,
  delayMaxMs: 300_000,
};

/** The pacing of one process's repairs: a pure function of the times it is told. */
export class RepairBackoff {
  readonly #settings: RepairBackoffSettings;
  #lastRepairMs: number | undefined;
  #streak = 0;
  #repairs = 0;

  constructor(settings: RepairBackoffSettings = defaultRepairBackoff) {
    this.#settings = settings;
  }

  /** Repairs this process has started so far. */
  get repairs(): number {
    return this.#repairs;
  }

  /**
   * How long to wait before repairing damage found at `nowMs`, and counts the repair: 0 unless the
   * previous repair began less than `quietMs` before; then `delayMinMs`, doubling with each repair
   * in the streak, at most `delayMaxMs`.
   */
  nextDelayMs(nowMs: number): number {
    const last = this.#lastRepairMs;
    this.#streak = last !== undefined && nowMs - last < this.#settings.quietMs ? this.#streak + 1 : 0;
    this.#repairs++;
    if (this.#streak === 0) {
      this.#lastRepairMs = nowMs;
      return 0;
    }
    // Bounded doubling without overflow: the exponent stops growing once the cap is reached.
    let delay = this.#settings.delayMinMs;
    for (let i = 1; i < this.#streak && delay < this.#settings.delayMaxMs; i++) delay *= 2;
    delay = Math.min(delay, this.#settings.delayMaxMs);
    this.#lastRepairMs = nowMs + delay;
    return delay;
  }
}
