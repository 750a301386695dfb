// Counters and latency histograms the runtime keeps about itself, for /metrics. Plain numbers in
// fixed buckets: recording costs a few comparisons, and rendering is the server's business.

/** Upper bounds (milliseconds) of the latency buckets, Prometheus-style (cumulative when rendered). */
export const latencyBucketsMs: readonly number[] = [
  0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500,
];

/**
 * A latency histogram in fixed buckets: in milliseconds over {@link latencyBucketsMs} unless other
 * upper bounds are given (the HTTP server's request histogram keeps seconds in its own).
 */
export class Histogram {
  /** Upper bounds of the buckets, ascending. */
  readonly bounds: readonly number[];
  /** Count per bucket (not cumulative); the last slot counts values above every bound. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  /** Creates an empty histogram over `bounds` (ascending upper bounds). */
  constructor(bounds: readonly number[] = latencyBucketsMs) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  /** Records one observation. */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] ?? 0)) i++;
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.sum += value;
    this.count++;
  }
}

/** What a group's runtime counts. */
export class GroupMetrics {
  proposals = 0;
  proposalsFailed = 0;
  reads = 0;
  readsFailed = 0;
  entriesApplied = 0;
  /** Snapshots this node captured from its own state (received ones not counted). */
  snapshotsTaken = 0;
  /** State bytes those captures wrote to snapshot files. */
  snapshotBytesWritten = 0;
  /** Log compactions to the state store's durable applied index (no file written). */
  logCompactions = 0;
  /** Times the known leader changed (one known after none, none after one, or another one). */
  leaderChanges = 0;
  /**
   * Tracked proposals by how they ended: "applied", or the error code they failed with (a few
   * codes, so the map stays small).
   */
  readonly proposalOutcomes = new Map<string, number>();
  readonly persistMs = new Histogram();
  readonly applyMs = new Histogram();
  readonly proposalMs = new Histogram();
  /** A linearizable read's wait for its ReadIndex barrier, for reads that got one. */
  readonly readMs = new Histogram();
  /** The latest applied index at which this node compared its state hash with its peers' (0: none). */
  stateCheckIndex = 0;
  /** Names of the nodes whose state hash differs from the majority's at the latest comparison. */
  stateCheckDiffering: readonly string[] = [];
  /**
   * How many times the state check named each node (this one included) as differing: the alarm
   * stays on record after the node repaired itself and agrees again.
   */
  stateCheckAlarms = new Map<string, number>();
  /** Whether this node is recovering discarded or damaged data (no votes, no local reads). */
  recovering = false;
  /** Repairs of damage found while running that this process ran in place (without a restart). */
  repairsInPlace = 0;

  /** Counts one proposal's outcome. */
  countOutcome(outcome: string): void {
    this.proposalOutcomes.set(outcome, (this.proposalOutcomes.get(outcome) ?? 0) + 1);
  }
}
