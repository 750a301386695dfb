// Turns successive /v1/metrics answers of every node into chart points: cluster-wide writes and
// reads per second, and write and read latency percentiles over the last interval. Pure functions,
// so the arithmetic is tested without a browser.
import type { HistogramSnapshot, MetricsSnapshot } from "../api/index.js";

/** One point of the charts. */
export interface MetricsPoint {
  /** Seconds since the epoch (uPlot's x axis). */
  readonly atS: number;
  readonly writesPerS: number;
  readonly readsPerS: number;
  /** Latency percentiles in ms over the interval; null when nothing was measured. */
  readonly writeP50Ms: number | null;
  readonly writeP99Ms: number | null;
  readonly readP50Ms: number | null;
  readonly readP99Ms: number | null;
}

/** The counts in `now` since `before` (a node that restarted counts from zero again). */
export function histogramDelta(now: HistogramSnapshot, before: HistogramSnapshot | undefined): number[] {
  if (before === undefined || now.count < before.count) return [...now.counts];
  return now.counts.map((c, i) => Math.max(0, c - (before.counts[i] ?? 0)));
}

/**
 * The `q` quantile (0 < q < 1) of bucket counts whose upper bounds are `boundsMs` (the last count
 * is above every bound), interpolated linearly inside its bucket; null for no observations.
 */
export function quantileMs(counts: readonly number[], boundsMs: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const count = counts[i] ?? 0;
    if (count > 0 && seen + count >= rank) {
      const lower = i === 0 ? 0 : (boundsMs[i - 1] ?? 0);
      const upper = boundsMs[i] ?? boundsMs[boundsMs.length - 1] ?? lower;
      if (i >= boundsMs.length) return upper;
      return lower + ((upper - lower) * (rank - seen)) / count;
    }
    seen += count;
  }
  return boundsMs[boundsMs.length - 1] ?? null;
}

function counterDelta(now: number, before: number | undefined): number {
  if (before === undefined) return 0;
  return now >= before ? now - before : now;
}

/**
 * The chart point between two rounds of answers (by node name); nodes missing from either round
 * count nothing for it. `seconds` is the time between the rounds.
 */
export function pointBetween(
  before: ReadonlyMap<string, MetricsSnapshot>,
  now: ReadonlyMap<string, MetricsSnapshot>,
  seconds: number,
  atS: number,
): MetricsPoint {
  let writes = 0;
  let reads = 0;
  const bounds = [...now.values()][0]?.latencyBucketsMs ?? [];
  const writeCounts: number[] = new Array<number>(bounds.length + 1).fill(0);
  const readCounts: number[] = new Array<number>(bounds.length + 1).fill(0);
  for (const [name, m] of now) {
    const b = before.get(name);
    if (b === undefined) continue;
    writes += counterDelta(m.counters.proposals, b.counters.proposals);
    reads += counterDelta(m.counters.reads, b.counters.reads);
    histogramDelta(m.histograms.proposalMs, b.histograms.proposalMs).forEach((c, i) => {
      writeCounts[i] = (writeCounts[i] ?? 0) + c;
    });
    histogramDelta(m.histograms.readMs, b.histograms.readMs).forEach((c, i) => {
      readCounts[i] = (readCounts[i] ?? 0) + c;
    });
  }
  const per = seconds > 0 ? 1 / seconds : 0;
  return {
    atS,
    writesPerS: writes * per,
    readsPerS: reads * per,
    writeP50Ms: quantileMs(writeCounts, bounds, 0.5),
    writeP99Ms: quantileMs(writeCounts, bounds, 0.99),
    readP50Ms: quantileMs(readCounts, bounds, 0.5),
    readP99Ms: quantileMs(readCounts, bounds, 0.99),
  };
}
