// What every fuzz target shares: the outcome of one input, and a runner that sends a batch of
// generated inputs with a little concurrency and tallies the outcomes.
import fc from "fast-check";
import type { FuzzEndpoints } from "./live-node.js";

/**
 * What one input got: served (the node did what was asked), refused with a stable code, or a
 * finding (an internal error, a 5xx, an answer without a code, no answer in time).
 */
export type Outcome =
  | { readonly kind: "served" }
  | { readonly kind: "refused"; readonly code: string }
  | { readonly kind: "finding"; readonly what: string };

/** A source of inputs for one parser family of the live node. */
export interface FuzzTarget {
  readonly name: string;
  /** Sends the `count` inputs of batch seed `seed` to the node; answers one outcome per input. */
  batch(endpoints: FuzzEndpoints, seed: number, count: number): Promise<Outcome[]>;
  /** Releases what the target keeps between batches (a client channel). */
  close?(): void;
}

/** Per target: inputs tried, served, refused by code, and the findings (input and what happened). */
export interface TargetTally {
  tried: number;
  served: number;
  readonly refused: Map<string, number>;
  readonly findings: string[];
}

/** A new empty tally. */
export function emptyTally(): TargetTally {
  return { tried: 0, served: 0, refused: new Map(), findings: [] };
}

/** Adds `outcomes` to `tally`. */
export function addOutcomes(tally: TargetTally, outcomes: readonly Outcome[]): void {
  for (const o of outcomes) {
    tally.tried++;
    if (o.kind === "served") tally.served++;
    else if (o.kind === "refused") tally.refused.set(o.code, (tally.refused.get(o.code) ?? 0) + 1);
    else tally.findings.push(o.what);
  }
}

/**
 * A target from an arbitrary and a sender: batch `seed` is fast-check's sample of `count` inputs
 * under that seed (so a batch replays from its seed alone), sent `concurrency` at a time.
 */
export function target<T>(
  name: string,
  inputs: fc.Arbitrary<T>,
  send: (endpoints: FuzzEndpoints, input: T) => Promise<Outcome>,
  concurrency = 4,
): FuzzTarget {
  return {
    name,
    async batch(endpoints, seed, count) {
      const sample = fc.sample(inputs, { seed, numRuns: count });
      const outcomes: Outcome[] = new Array<Outcome>(sample.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        for (let i = next++; i < sample.length; i = next++) {
          const input = sample[i] as T;
          try {
            outcomes[i] = await send(endpoints, input);
          } catch (error) {
            outcomes[i] = {
              kind: "finding",
              what: `the fuzzer's send failed: ${error instanceof Error ? error.message : String(error)}`,
            };
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, () => worker()));
      return outcomes;
    },
  };
}
