// Generates key-value histories that are linearizable by construction: concurrent clients whose
// operations take effect, one at a time, on a sequential reference store at a point inside their
// call/return interval. Used to test the checker (it must accept them all) and to benchmark it.
import { assert, assertNever } from "../../src/util/assert.js";
import { Prng } from "../../src/util/prng.js";
import { completed, timedOut } from "./history.js";
import { applyKv, type KvInput, type KvKeyState, type KvOperation, type KvOutput } from "./kv-model.js";

/** Settings for {@link generateKvHistory}. Probabilities are numerator/denominator pairs. */
export interface KvHistoryGenOptions {
  readonly operations: number;
  readonly clients: number;
  readonly keys: number;
  /** Chance that an operation times out before it takes effect (it may still take effect later). */
  readonly timeoutChance?: readonly [number, number];
  /** Chance per step that a timed-out operation still pending takes effect now. */
  readonly lateApplyChance?: readonly [number, number];
}

/** A generated history and the order in which its operations took effect on the reference store. */
export interface GeneratedKvHistory {
  readonly history: KvOperation[];
  /** Indexes into `history` in the order they took effect; timed-out ops that never did are absent. */
  readonly appliedOrder: readonly number[];
}

type ClientState =
  | { readonly phase: "idle" }
  | { readonly phase: "called"; readonly input: KvInput; readonly callMs: number; readonly timesOut: boolean }
  | {
      readonly phase: "applied";
      readonly input: KvInput;
      readonly callMs: number;
      readonly output: KvOutput;
      readonly index: number;
    };

/** Picks a random key-value request over `keys` keys, using the reference state for plausible versions. */
function randomInput(prng: Prng, keys: number, store: Map<string, KvKeyState>, writeId: string): KvInput {
  const key = `k${prng.below(keys)}`;
  const current = store.get(key) ?? { value: null, version: 0 };
  const roll = prng.below(100);
  if (roll < 35) return { op: "get", key };
  if (roll < 60) return { op: "put", key, value: writeId };
  if (roll < 75) {
    const kind = prng.below(3);
    if (kind === 0) return { op: "put-if", key, value: writeId, condition: { kind: "absent" } };
    // Sometimes the current version (likely to succeed), sometimes a stale one (likely rejected).
    const version = kind === 1 ? current.version : Math.max(0, current.version - 1);
    return { op: "put-if", key, value: writeId, condition: { kind: "version", version } };
  }
  if (roll < 87) return { op: "delete", key };
  return { op: "incr", key, by: 1 + prng.below(3) };
}

/**
 * Generates a linearizable key-value history from `seed`. A pure function of its arguments. Time
 * advances by 0 to 2 ms per step, so calls and returns often share a millisecond.
 */
export function generateKvHistory(seed: number, options: KvHistoryGenOptions): GeneratedKvHistory {
  assert(options.clients >= 1 && options.keys >= 1, "need at least one client and one key");
  const prng = new Prng(seed);
  const [timeoutNum, timeoutDen] = options.timeoutChance ?? [0, 1];
  const [lateNum, lateDen] = options.lateApplyChance ?? [1, 20];
  const store = new Map<string, KvKeyState>();
  const history: KvOperation[] = [];
  const appliedOrder: number[] = [];
  const clients: ClientState[] = Array.from({ length: options.clients }, () => ({ phase: "idle" }));
  // Timed-out operations that have not taken effect yet: they may, any time later, or never.
  const strays: { input: KvInput; index: number }[] = [];
  let started = 0;
  let nowMs = 0;

  const apply = (input: KvInput, index: number): KvOutput => {
    const before = store.get(input.key) ?? { value: null, version: 0 };
    const { newState, output } = applyKv(before, input);
    store.set(input.key, newState);
    appliedOrder.push(index);
    return output;
  };

  while (started < options.operations || clients.some((c) => c.phase !== "idle")) {
    nowMs += prng.below(3);
    if (strays.length > 0 && prng.chance(lateNum, lateDen)) {
      const stray = strays.splice(prng.below(strays.length), 1)[0];
      if (stray) apply(stray.input, stray.index);
    }
    const id = prng.below(options.clients);
    const client = clients[id];
    assert(client !== undefined, "client index out of range");
    switch (client.phase) {
      case "idle":
        if (started < options.operations) {
          const input = randomInput(prng, options.keys, store, `c${id}-${started}`);
          clients[id] = {
            phase: "called",
            input,
            callMs: nowMs,
            timesOut: prng.chance(timeoutNum, timeoutDen),
          };
          started++;
        }
        break;
      case "called":
        if (client.timesOut) {
          // The client gives up; the request may still be in flight somewhere.
          const index = history.length;
          history.push(timedOut(id, client.input, client.callMs));
          strays.push({ input: client.input, index });
          clients[id] = { phase: "idle" };
        } else {
          const index = history.length;
          // Reserve the slot now so appliedOrder can name it; filled in on return.
          history.push(timedOut(id, client.input, client.callMs));
          const output = apply(client.input, index);
          clients[id] = { phase: "applied", input: client.input, callMs: client.callMs, output, index };
        }
        break;
      case "applied":
        history[client.index] = completed(id, client.input, client.output, client.callMs, nowMs);
        clients[id] = { phase: "idle" };
        break;
      default:
        assertNever(client, "client state");
    }
  }
  return { history, appliedOrder };
}
