// A linearizability checker for client histories: Wing & Gong's backtracking search over the
// operations that may go next, with Lowe's memoisation of (linearized set, model state) pairs, run
// separately on each independent part of the history (P-compositionality: for a key-value store,
// one key at a time). The same algorithm Porcupine uses, written for our history shape.
import { assert } from "../../src/util/assert.js";
import { assertWellFormed, type History, type Operation } from "./history.js";

/**
 * A sequential specification of the object under test. States are immutable values: `step` returns
 * a new state and never changes the one it was given.
 */
export interface Model<S, I, O> {
  /** The state before any operation. */
  init(): S;
  /**
   * Applies `input` to `state`. With `output` given, `ok` says whether the specification could
   * return exactly that output in that state. With `output` undefined (a timed-out operation), the
   * output is unconstrained and `ok` must be true: the checker relies on being able to place such an
   * operation anywhere, including after every other operation (which models "never took effect").
   */
  step(state: S, input: I, output: O | undefined): { readonly ok: boolean; readonly newState: S };
  /**
   * Splits a history into parts that can be checked independently (for a key-value store: by key).
   * Every operation must appear in exactly one part. Without it the history is checked whole.
   */
  partition?(history: History<I, O>): Operation<I, O>[][];
  /** A string equal for equal states and different for different ones: the memoisation key. */
  stateKey(state: S): string;
  /** A readable rendering of one operation, for reports. */
  describeOperation(input: I, output: O | undefined): string;
  /** A readable rendering of a state, for reports. */
  describeState(state: S): string;
}

/** Limits on one check, so a pathological history yields "unknown" instead of hanging. */
export interface CheckOptions {
  /** Search steps across all parts before giving up (deterministic). Default 20 million. */
  readonly stepsMax?: number;
  /** Memoised (linearized set, state) pairs held at once per part, bounding memory. Default 4 million. */
  readonly cacheEntriesMax?: number;
  /**
   * Wall-clock budget in milliseconds. Not deterministic, so the simulator leaves it unset and relies
   * on `stepsMax`; interactive tools may set it.
   */
  readonly timeBudgetMs?: number;
}

/** One operation placed in a linearization, with the state it left behind. */
export interface LinearizedStep {
  /** Index of the operation in the history given to the checker. */
  readonly opIndex: number;
  readonly description: string;
  readonly stateAfter: string;
}

/** Why a part of the history cannot be linearized. */
export interface NotLinearizableReport {
  /** Index of the part (as `partition` returned them) and the operations it holds. */
  readonly partIndex: number;
  readonly partSize: number;
  /** The longest sequence of operations the search could place, in order. */
  readonly longestPrefix: readonly LinearizedStep[];
  /** The state after that prefix. */
  readonly stateAfterPrefix: string;
  /**
   * The operation that returned before it could be placed after that prefix (index into the
   * history): every ordering the search tried put it after a point it had already returned.
   */
  readonly stuckOpIndex: number;
  /** Every operation that was a candidate to go next after the prefix, and why it could not. */
  readonly candidates: readonly {
    readonly opIndex: number;
    readonly description: string;
    readonly verdict: string;
  }[];
  /** All of the above as text for a failure message. */
  readonly explanation: string;
}

/** The checker's verdict. `unknown` means a budget ran out before the search finished. */
export type CheckResult =
  | { readonly kind: "linearizable"; readonly steps: number }
  | ({ readonly kind: "not-linearizable"; readonly steps: number } & NotLinearizableReport)
  | { readonly kind: "unknown"; readonly steps: number; readonly reason: string };

const stepsMaxDefault = 20_000_000;
const cacheEntriesMaxDefault = 4_000_000;

/** One call or return event in the doubly linked event list the search walks. */
interface EventNode {
  readonly kind: "call" | "return";
  /** Index of the operation within its part. */
  readonly op: number;
  /** Event time; +Infinity for the return of an operation whose outcome is unknown. */
  readonly timeMs: number;
  prev: EventNode | null;
  next: EventNode | null;
  /** For a call: its return event. */
  match: EventNode | null;
}

/**
 * Checks whether `history` is linearizable with respect to `model`. Returns the first part that is
 * not linearizable with an explanation, "unknown" if a budget ran out (and no part failed), else
 * "linearizable".
 */
export function checkLinearizable<S, I, O>(
  model: Model<S, I, O>,
  history: History<I, O>,
  options: CheckOptions = {},
): CheckResult {
  assertWellFormed(history);
  const stepsMax = options.stepsMax ?? stepsMaxDefault;
  const cacheEntriesMax = options.cacheEntriesMax ?? cacheEntriesMaxDefault;
  const startedMs = performance.now();
  const outOfTime =
    options.timeBudgetMs === undefined
      ? () => false
      : (
          (budgetMs: number) => () =>
            performance.now() - startedMs > budgetMs
        )(options.timeBudgetMs);

  // Parts hold the operations themselves; map them back to history indexes for reports.
  const indexOf = new Map<Operation<I, O>, number>();
  for (const [i, op] of history.entries()) {
    assert(!indexOf.has(op), `operation ${i} is the same object as operation ${indexOf.get(op)}`);
    indexOf.set(op, i);
  }
  const parts = model.partition ? model.partition(history) : [history.slice()];
  assert(
    parts.reduce((n, p) => n + p.length, 0) === history.length,
    "partition must place every operation in exactly one part",
  );

  let steps = 0;
  let unknownReason: string | undefined;
  for (const [partIndex, part] of parts.entries()) {
    const globalIndexes = part.map((op) => {
      const i = indexOf.get(op);
      assert(i !== undefined, "partition returned an operation that is not in the history");
      return i;
    });
    const result = searchPart(model, part, globalIndexes, partIndex, {
      stepsLeft: stepsMax - steps,
      cacheEntriesMax,
      outOfTime,
    });
    steps += result.steps;
    if (result.kind === "not-linearizable") return { ...result, steps };
    if (result.kind === "unknown") unknownReason ??= `part ${partIndex}: ${result.reason}`;
  }
  if (unknownReason !== undefined) return { kind: "unknown", steps, reason: unknownReason };
  return { kind: "linearizable", steps };
}

/** Builds the event list of one part: calls and returns by time, a call before a return at equal times. */
function buildEventList<I, O>(part: readonly Operation<I, O>[]): EventNode {
  const events: EventNode[] = [];
  part.forEach((op, i) => {
    const returnMs = op.outcome.kind === "ok" ? op.outcome.returnMs : Number.POSITIVE_INFINITY;
    const ret: EventNode = { kind: "return", op: i, timeMs: returnMs, prev: null, next: null, match: null };
    const call: EventNode = { kind: "call", op: i, timeMs: op.callMs, prev: null, next: null, match: ret };
    events.push(call, ret);
  });
  // Ties: a call sorts before a return at the same millisecond, so the two operations count as
  // concurrent. With millisecond clocks that is the safe reading: it never reports a violation that
  // a finer clock could have explained.
  events.sort((a, b) => {
    if (a.timeMs !== b.timeMs) return a.timeMs < b.timeMs ? -1 : 1;
    if (a.kind !== b.kind) return a.kind === "call" ? -1 : 1;
    return a.op - b.op;
  });
  const head: EventNode = {
    kind: "call",
    op: -1,
    timeMs: Number.NEGATIVE_INFINITY,
    prev: null,
    next: null,
    match: null,
  };
  let last = head;
  for (const event of events) {
    last.next = event;
    event.prev = last;
    last = event;
  }
  return head;
}

/** Removes a call and its return from the list (they stay linked to their old neighbours). */
function lift(call: EventNode): void {
  const ret = call.match;
  assert(ret !== null && call.prev !== null, "lift of a call without a return or predecessor");
  call.prev.next = call.next;
  if (call.next) call.next.prev = call.prev;
  assert(ret.prev !== null, "return without predecessor");
  ret.prev.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

/** Puts back what `lift` removed; valid because lifts are undone in reverse order. */
function unlift(call: EventNode): void {
  const ret = call.match;
  assert(ret !== null && call.prev !== null && ret.prev !== null, "unlift of a malformed call");
  ret.prev.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev.next = call;
  if (call.next) call.next.prev = call;
}

/** A set of small integers as bits, with a compact string form for the memo key. */
class BitSet {
  readonly #words: Uint16Array;
  constructor(size: number) {
    this.#words = new Uint16Array(Math.ceil(size / 16) + 1);
  }
  set(i: number): void {
    this.#words[i >> 4] = (this.#words[i >> 4] ?? 0) | (1 << (i & 15));
  }
  clear(i: number): void {
    this.#words[i >> 4] = (this.#words[i >> 4] ?? 0) & ~(1 << (i & 15));
  }
  key(): string {
    return String.fromCharCode(...this.#words);
  }
}

interface PartLimits {
  readonly stepsLeft: number;
  readonly cacheEntriesMax: number;
  readonly outOfTime: () => boolean;
}

type PartResult =
  | { readonly kind: "linearizable"; readonly steps: number }
  | ({ readonly kind: "not-linearizable"; readonly steps: number } & NotLinearizableReport)
  | { readonly kind: "unknown"; readonly steps: number; readonly reason: string };

/** Wing & Gong's search with Lowe's memo over one part. */
function searchPart<S, I, O>(
  model: Model<S, I, O>,
  part: readonly Operation<I, O>[],
  globalIndexes: readonly number[],
  partIndex: number,
  limits: PartLimits,
): PartResult {
  const head = buildEventList(part);
  const outputOf = (i: number): O | undefined => {
    const op = part[i];
    assert(op !== undefined, "operation index out of range");
    return op.outcome.kind === "ok" ? op.outcome.output : undefined;
  };
  const inputOf = (i: number): I => {
    const op = part[i];
    assert(op !== undefined, "operation index out of range");
    return op.input;
  };
  const describe = (i: number): string => describeOp(model, part, globalIndexes, i);

  const linearized = new BitSet(part.length);
  const cache = new Set<string>();
  // The search stack: each placed call with the state before it.
  const stack: { call: EventNode; stateBefore: S; stateAfter: S }[] = [];
  let state = model.init();
  let steps = 0;

  // The deepest point reached, kept for the report.
  let best: { prefix: { op: number; stateAfter: S }[]; state: S } = { prefix: [], state };
  let bestStuck: { op: number; candidates: { op: number; verdict: string }[] } | undefined;

  let entry = head.next;
  for (;;) {
    if (entry === null) return { kind: "linearizable", steps };
    steps++;
    if (steps > limits.stepsLeft) {
      return { kind: "unknown", steps, reason: `step budget exhausted after ${steps} steps` };
    }
    if ((steps & 0xffff) === 0 && limits.outOfTime()) {
      return { kind: "unknown", steps, reason: `time budget exhausted after ${steps} steps` };
    }
    if (entry.kind === "call") {
      const result = model.step(state, inputOf(entry.op), outputOf(entry.op));
      if (result.ok) {
        linearized.set(entry.op);
        const key = `${linearized.key()}|${model.stateKey(result.newState)}`;
        if (!cache.has(key)) {
          if (cache.size >= limits.cacheEntriesMax) {
            return {
              kind: "unknown",
              steps,
              reason: `memo limit of ${limits.cacheEntriesMax} entries reached`,
            };
          }
          cache.add(key);
          stack.push({ call: entry, stateBefore: state, stateAfter: result.newState });
          state = result.newState;
          lift(entry);
          if (stack.length > best.prefix.length) {
            best = { prefix: stack.map((s) => ({ op: s.call.op, stateAfter: s.stateAfter })), state };
            bestStuck = undefined;
          }
          entry = head.next;
          continue;
        }
        linearized.clear(entry.op);
      }
      entry = entry.next;
      continue;
    }
    // A return event: its operation is not linearized yet, and everything before it in the list has
    // been tried. Operations with unknown outcome return at +infinity, so reaching one means every
    // completed operation is placed; the unknown ones left can go last (or "never happened").
    if (entry.timeMs === Number.POSITIVE_INFINITY) return { kind: "linearizable", steps };
    if (bestStuck === undefined && stack.length === best.prefix.length) {
      bestStuck = {
        op: entry.op,
        candidates: candidatesBefore(model, head, entry, state, inputOf, outputOf),
      };
    }
    const top = stack.pop();
    if (top === undefined) break;
    linearized.clear(top.call.op);
    state = top.stateBefore;
    unlift(top.call);
    entry = top.call.next;
  }

  assert(bestStuck !== undefined, "search failed without recording where it got stuck");
  const longestPrefix = best.prefix.map((p) => ({
    opIndex: globalIndexes[p.op] ?? -1,
    description: describe(p.op),
    stateAfter: model.describeState(p.stateAfter),
  }));
  const candidates = bestStuck.candidates.map((c) => ({
    opIndex: globalIndexes[c.op] ?? -1,
    description: describe(c.op),
    verdict: c.verdict,
  }));
  const stuckOpIndex = globalIndexes[bestStuck.op] ?? -1;
  const report: NotLinearizableReport = {
    partIndex,
    partSize: part.length,
    longestPrefix,
    stateAfterPrefix: model.describeState(best.state),
    stuckOpIndex,
    candidates,
    explanation: "",
  };
  return { kind: "not-linearizable", steps, ...report, explanation: explain(report, describe(bestStuck.op)) };
}

/** The calls before `stop` in the list and what the model says about placing each one next. */
function candidatesBefore<S, I, O>(
  model: Model<S, I, O>,
  head: EventNode,
  stop: EventNode,
  state: S,
  inputOf: (i: number) => I,
  outputOf: (i: number) => O | undefined,
): { op: number; verdict: string }[] {
  const out: { op: number; verdict: string }[] = [];
  for (let e = head.next; e !== null && e !== stop; e = e.next) {
    if (e.kind !== "call") continue;
    const result = model.step(state, inputOf(e.op), outputOf(e.op));
    out.push({
      op: e.op,
      verdict: result.ok
        ? `allowed here (-> ${model.describeState(result.newState)}), but every continuation failed`
        : `impossible in state ${model.describeState(state)}`,
    });
  }
  // The stuck operation itself is always a candidate too: its call precedes its return.
  const own = stop.op;
  if (!out.some((c) => c.op === own)) {
    const result = model.step(state, inputOf(own), outputOf(own));
    out.push({
      op: own,
      verdict: result.ok
        ? "allowed here, but every continuation failed"
        : `impossible in state ${model.describeState(state)}`,
    });
  }
  return out;
}

function describeOp<S, I, O>(
  model: Model<S, I, O>,
  part: readonly Operation<I, O>[],
  globalIndexes: readonly number[],
  i: number,
): string {
  const op = part[i];
  assert(op !== undefined, "operation index out of range");
  const window =
    op.outcome.kind === "ok" ? `[${op.callMs}, ${op.outcome.returnMs}]` : `[${op.callMs}, timed out]`;
  const output = op.outcome.kind === "ok" ? op.outcome.output : undefined;
  return `#${globalIndexes[i] ?? -1} client ${op.clientId} ${window} ${model.describeOperation(op.input, output)}`;
}

const prefixShownMax = 20;

function explain(report: NotLinearizableReport, stuck: string): string {
  const lines: string[] = [];
  lines.push(`not linearizable: part ${report.partIndex} (${report.partSize} operations)`);
  const n = report.longestPrefix.length;
  lines.push(
    `longest linearizable prefix: ${n} operation(s)${n > prefixShownMax ? `, last ${prefixShownMax} shown` : ""}`,
  );
  for (const step of report.longestPrefix.slice(-prefixShownMax)) {
    lines.push(`  ${step.description}  => ${step.stateAfter}`);
  }
  lines.push(`state after the prefix: ${report.stateAfterPrefix}`);
  lines.push(`could not place before it returned: ${stuck}`);
  lines.push("candidates to go next:");
  for (const c of report.candidates) lines.push(`  ${c.description}: ${c.verdict}`);
  return lines.join("\n");
}
