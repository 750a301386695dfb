// What clients experienced, attempt by attempt: how many requests, what share got a definite answer
// (a value, a write, a failed condition: anything but an error or silence), and how long answers
// took. The same figures for Cairn and for etcd under the same schedule make the comparison.

/** How one attempt ended for its client. */
export type AttemptResult = "ok" | "error" | "timeout";

/** A summary of the attempts of a run. */
export interface AvailabilitySummary {
  readonly operations: number;
  readonly ok: number;
  /** Answered with an error (unavailable, not leader, refused connection...). */
  readonly errors: number;
  /** No answer before the client's timeout, or the connection broke. */
  readonly timeouts: number;
  /** ok / operations. */
  readonly okShare: number;
  /** Latency of the successful attempts, in milliseconds. */
  readonly okP50Ms: number;
  readonly okP99Ms: number;
  /** Latency of every attempt (timeouts count as the time the client waited). */
  readonly allP99Ms: number;
  /** Error codes and their counts, most frequent first. */
  readonly errorCodes: readonly (readonly [code: string, count: number])[];
}

/** Collects attempts. */
export class AvailabilityLog {
  readonly #latencies: Record<AttemptResult, number[]> = { ok: [], error: [], timeout: [] };
  readonly #codes = new Map<string, number>();

  /** Records one attempt that took `latencyMs`; `code` names an error or a lost answer. */
  record(result: AttemptResult, latencyMs: number, code?: string): void {
    this.#latencies[result].push(latencyMs);
    if (code !== undefined) this.#codes.set(code, (this.#codes.get(code) ?? 0) + 1);
  }

  /** The figures so far. */
  summary(): AvailabilitySummary {
    const { ok, error, timeout } = this.#latencies;
    const operations = ok.length + error.length + timeout.length;
    return {
      operations,
      ok: ok.length,
      errors: error.length,
      timeouts: timeout.length,
      okShare: operations === 0 ? 0 : ok.length / operations,
      okP50Ms: percentile(ok, 50),
      okP99Ms: percentile(ok, 99),
      allP99Ms: percentile([...ok, ...error, ...timeout], 99),
      errorCodes: [...this.#codes].sort((a, b) => b[1] - a[1]),
    };
  }
}

/** The `p`th percentile (nearest rank) of `values`, 0 when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? 0;
}

/** One line of figures, e.g. for a report table. */
export function describeAvailability(name: string, s: AvailabilitySummary): string {
  const codes = s.errorCodes
    .slice(0, 4)
    .map(([code, n]) => `${code} ${n}`)
    .join(", ");
  return (
    `${name.padEnd(6)} ${String(s.operations).padStart(7)} ops, ${(100 * s.okShare).toFixed(1).padStart(5)}% ok, ` +
    `p50 ${Math.round(s.okP50Ms)} ms, p99 ${Math.round(s.okP99Ms)} ms (answered); p99 of all ${Math.round(s.allP99Ms)} ms; ` +
    `${s.errors} errors, ${s.timeouts} timeouts${codes === "" ? "" : ` (${codes})`}`
  );
}
