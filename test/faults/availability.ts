// What clients experienced, attempt by attempt: how many requests, what share got a definite answer
// (a value, a write, a failed condition: anything but an error or silence), and how long answers
// took. The same figures for Cairn and for etcd under the same schedule make the comparison; the
// breakdown by fault says where a gap comes from (requests to the node a fault struck, or to the
// others, or between faults).
import type { AppliedFault } from "./nemesis.js";

/** How one attempt ended for its client. */
export type AttemptResult = "ok" | "error" | "timeout";

/** How long after a heal an attempt counts as made while the cluster recovers. */
const recoveryMs = 5_000;

/** One attempt: the node it went to, when (run time), how long it took and how it ended. */
export interface Attempt {
  readonly node: number;
  readonly startMs: number;
  readonly latencyMs: number;
  readonly result: AttemptResult;
  /** The error code, or why the answer was lost. */
  readonly code: string | undefined;
}

/** A summary of a set of attempts. */
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
  /** Seconds clients spent waiting on attempts that failed (errors and timeouts). */
  readonly failedWaitSeconds: number;
  /** Error codes and their counts, most frequent first. */
  readonly errorCodes: readonly (readonly [code: string, count: number])[];
}

/** An attempt in flight: which node, and when it began. */
export interface AttemptStart {
  readonly node: number;
  readonly startMs: number;
  readonly startedAt: number;
}

/** Collects attempts. */
export class AvailabilityLog {
  readonly #now: () => number;
  readonly attempts: Attempt[] = [];

  /** Creates a log; `now` is the run's clock (milliseconds since the run began). */
  constructor(now: () => number) {
    this.#now = now;
  }

  /** Notes that an attempt to `node` begins. */
  begin(node: number): AttemptStart {
    return { node, startMs: this.#now(), startedAt: performance.now() };
  }

  /** Records how the attempt ended; `code` names an error or a lost answer. */
  end(start: AttemptStart, result: AttemptResult, code?: string): void {
    this.attempts.push({
      node: start.node,
      startMs: start.startMs,
      latencyMs: performance.now() - start.startedAt,
      result,
      code,
    });
  }

  /** The figures over every attempt. */
  summary(): AvailabilitySummary {
    return summarize(this.attempts);
  }

  /**
   * The figures per situation: attempts begun while a fault held, to a node it struck or to
   * another, in the first seconds after a heal, and between faults.
   */
  breakdown(applied: readonly AppliedFault[]): Map<string, AvailabilitySummary> {
    const groups = new Map<string, Attempt[]>();
    for (const a of this.attempts) {
      const fault = applied.find(
        (f) => a.startMs >= f.atMs && a.startMs < (f.healedAtMs ?? Number.POSITIVE_INFINITY),
      );
      // The most recent heal, if it was recent.
      const healed = applied
        .filter(
          (f) =>
            f.healedAtMs !== undefined && a.startMs >= f.healedAtMs && a.startMs < f.healedAtMs + recoveryMs,
        )
        .sort((x, y) => (y.healedAtMs ?? 0) - (x.healedAtMs ?? 0))[0];
      const to = (f: AppliedFault) => (f.struck.includes(a.node) ? "to a struck node" : "to the others");
      const key =
        fault !== undefined
          ? `${fault.kind}, ${to(fault)}`
          : healed !== undefined
            ? `${recoveryMs / 1000} s after a ${healed.kind} healed, ${to(healed)}`
            : "between faults";
      const list = groups.get(key) ?? [];
      list.push(a);
      groups.set(key, list);
    }
    return new Map(
      [...groups].sort((x, y) => x[0].localeCompare(y[0])).map(([k, list]) => [k, summarize(list)]),
    );
  }
}

function summarize(attempts: readonly Attempt[]): AvailabilitySummary {
  const ok = attempts.filter((a) => a.result === "ok").map((a) => a.latencyMs);
  const failed = attempts.filter((a) => a.result !== "ok");
  const codes = new Map<string, number>();
  for (const a of failed) if (a.code !== undefined) codes.set(a.code, (codes.get(a.code) ?? 0) + 1);
  return {
    operations: attempts.length,
    ok: ok.length,
    errors: failed.filter((a) => a.result === "error").length,
    timeouts: failed.filter((a) => a.result === "timeout").length,
    okShare: attempts.length === 0 ? 0 : ok.length / attempts.length,
    okP50Ms: percentile(ok, 50),
    okP99Ms: percentile(ok, 99),
    allP99Ms: percentile(
      attempts.map((a) => a.latencyMs),
      99,
    ),
    failedWaitSeconds: failed.reduce((sum, a) => sum + a.latencyMs, 0) / 1000,
    errorCodes: [...codes].sort((a, b) => b[1] - a[1]),
  };
}

/**
 * What clients experienced per logical operation, retries included (the workload retries a failed
 * or silent attempt twice, 50 ms apart, on a random node): how many operations, what share got an
 * answer, and how long from the first call to the first answer. A node that fails fast costs an
 * attempt but lets the retry find another node; per attempt it only shows as more failures.
 */
export interface OperationSummary {
  readonly operations: number;
  readonly ok: number;
  readonly okShare: number;
  readonly okP50Ms: number;
  readonly okP99Ms: number;
}

/** Summarizes `KvWorkload.operationLatencies()`: undefined marks an operation never answered. */
export function summarizeOperations(latencies: readonly (number | undefined)[]): OperationSummary {
  const ok = latencies.filter((l): l is number => l !== undefined);
  return {
    operations: latencies.length,
    ok: ok.length,
    okShare: latencies.length === 0 ? 0 : ok.length / latencies.length,
    okP50Ms: percentile(ok, 50),
    okP99Ms: percentile(ok, 99),
  };
}

/** One line of per-operation figures. */
export function describeOperations(name: string, s: OperationSummary): string {
  return (
    `${name.padEnd(6)} ${String(s.operations).padStart(7)} operations, ${(100 * s.okShare).toFixed(1).padStart(5)}% answered, ` +
    `p50 ${Math.round(s.okP50Ms)} ms, p99 ${Math.round(s.okP99Ms)} ms (first call to first answer, retries included)`
  );
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

/** The breakdown as table rows: situation, attempts, ok share, p99 of answers, time lost to failures. */
export function describeBreakdown(name: string, rows: ReadonlyMap<string, AvailabilitySummary>): string[] {
  return [...rows].map(
    ([situation, s]) =>
      `${name.padEnd(6)} ${situation.padEnd(36)} ${String(s.operations).padStart(6)} ops ${(100 * s.okShare).toFixed(1).padStart(5)}% ok ` +
      `p50 ${String(Math.round(s.okP50Ms)).padStart(4)} ms p99 ${String(Math.round(s.okP99Ms)).padStart(5)} ms; ` +
      `${s.errors} errors, ${s.timeouts} timeouts, ${s.failedWaitSeconds.toFixed(1)} s waited on failures` +
      (s.errorCodes.length === 0
        ? ""
        : ` (${s.errorCodes
            .slice(0, 3)
            .map(([c, n]) => `${c} ${n}`)
            .join(", ")})`),
  );
}
