// A linearizability checker for client histories: Wing & Gong's backtracking search over the
// operations that may go next, with Lowe's memoisation of (linearized set, model state) pairs, run
// separately on each independent part of the history (P-compositionality: for a key-value store,
// one key at a time). The same algorithm Porcupine uses, written for our history shape.
import { assert } from "../../src/util/assert.js";
import { Prng } from "../../src/util/prng.js";
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
  /**
   * Whether `input` never changes the state (a read). A timed-out read constrains nothing, so the
   * checker drops it before searching. Optional: without it every operation is searched.
   */
  readOnly?(input: I): boolean;
  /**
   * Classes of interchangeable timed-out operations, one entry per operation of `part` (undefined for
   * an operation like no other). Two timed-out operations share a class when placing either has the
   * same effect on every state and no completed operation can tell them apart (for the KV model: two
   * deletes, or two puts of values nobody read). The search then only tries the earliest-called one
   * of a class at each point, which finds a linearization whenever one exists: the earlier call can
   * go anywhere the later one can. Optional; without it every timed-out operation is its own class.
   */
  unknownClasses?(part: readonly Operation<I, O>[]): readonly (string | undefined)[];
  /**
   * False only when no sequence of operations from `state` can lead to a state in which `input` may
   * return `output` (for the KV model: the output names a version the key has already passed, and
   * versions only grow). A search point where a completed operation still to be placed is in that
   * position is a dead end, abandoned at once instead of trying timed-out operations there.
   * Optional; it must never answer false wrongly.
   */
  mayBecomePossible?(state: S, input: I, output: O): boolean;
  /** A string equal for equal states and different for different ones: the memoisation key. */
  stateKey(state: S): string;
  /** A readable rendering of one operation, for reports. */
  describeOperation(input: I, output: O | undefined): string;
  /** A readable rendering of a state, for reports. */
  describeState(state: S): string;
  /** A readable name for a part, for reports (for the KV model: its key). Default "part N". */
  describePart?(part: readonly Operation<I, O>[]): string;
}

/** Limits on one check, so a pathological history yields "unknown" instead of hanging. */
export interface CheckOptions {
  /**
   * Search steps across all parts before giving up (deterministic). Default 200 million: at 20
   * million about one fresh level-2 seed in 300 gave up on a history that a longer search proves
   * linearizable (seeds 823 and 597070114 at 141 and 18 million steps, 2026-12-06).
   */
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
  /** Index of the part (as `partition` returned them), its name, and the operations searched. */
  readonly partIndex: number;
  readonly partName: string;
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

const stepsMaxDefault = 200_000_000;
const cacheEntriesMaxDefault = 4_000_000;

/** One call or return event in the doubly linked event list the search walks. */
interface EventNode {
  readonly kind: "call" | "return";
  /** Index of the operation within its part. */
  readonly op: number;
  /** Event time in milliseconds. */
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
  for (const [partIndex, wholePart] of parts.entries()) {
    const part = wholePart.filter((op) => op.outcome.kind === "ok" || model.readOnly?.(op.input) !== true);
    const globalIndexes = part.map((op) => {
      const i = indexOf.get(op);
      assert(i !== undefined, "partition returned an operation that is not in the history");
      return i;
    });
    // First a quick search that places at most two timed-out operations in a row. It is incomplete
    // but sound when it succeeds (it found a linearization), and it avoids the search exploring every
    // subset of timed-out writes at each dead end. Only when it fails does the complete search run;
    // the quick one may spend at most half the remaining budget.
    const hasUnknown = part.some((op) => op.outcome.kind === "unknown");
    let result = searchPart(model, part, globalIndexes, partIndex, {
      stepsLeft: hasUnknown ? Math.floor((stepsMax - steps) / 2) : stepsMax - steps,
      cacheEntriesMax,
      outOfTime,
      unknownRunMax: hasUnknown ? quickUnknownRunMax : Number.POSITIVE_INFINITY,
    });
    steps += result.steps;
    if (hasUnknown && result.kind !== "linearizable") {
      result = searchPart(model, part, globalIndexes, partIndex, {
        stepsLeft: stepsMax - steps,
        cacheEntriesMax,
        outOfTime,
        unknownRunMax: Number.POSITIVE_INFINITY,
      });
      steps += result.steps;
    }
    if (result.kind === "not-linearizable") return { ...result, steps };
    if (result.kind === "unknown") {
      unknownReason ??= `${model.describePart?.(part) ?? `part ${partIndex}`}: ${result.reason}`;
    }
  }
  if (unknownReason !== undefined) return { kind: "unknown", steps, reason: unknownReason };
  return { kind: "linearizable", steps };
}

/**
 * Builds the event list of one part's completed operations: calls and returns by time, a call before
 * a return at equal times. Timed-out operations have no return and live outside the list.
 */
function buildEventList<I, O>(part: readonly Operation<I, O>[]): EventNode {
  const events: EventNode[] = [];
  part.forEach((op, i) => {
    if (op.outcome.kind !== "ok") return;
    const ret: EventNode = {
      kind: "return",
      op: i,
      timeMs: op.outcome.returnMs,
      prev: null,
      next: null,
      match: null,
    };
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

/**
 * A set of small integers as bits, with an incrementally maintained Zobrist hash (two 32-bit XOR
 * sums of fixed random words per member), so a memo lookup costs O(1) instead of O(size) to key.
 * The hash only picks the bucket; equality is always checked on the bits themselves.
 */
class BitSet {
  readonly #words: Uint16Array;
  readonly #zobrist: Uint32Array;
  #h1 = 0;
  #h2 = 0;
  constructor(size: number) {
    this.#words = new Uint16Array(Math.ceil(size / 16) + 1);
    // Fixed seed: the hash must not depend on anything but the members.
    const prng = new Prng(0x5eed);
    this.#zobrist = new Uint32Array(2 * size);
    for (let i = 0; i < this.#zobrist.length; i++) this.#zobrist[i] = prng.nextU32();
  }
  #flip(i: number): void {
    this.#words[i >> 4] = (this.#words[i >> 4] ?? 0) ^ (1 << (i & 15));
    this.#h1 = (this.#h1 ^ (this.#zobrist[2 * i] ?? 0)) >>> 0;
    this.#h2 = (this.#h2 ^ (this.#zobrist[2 * i + 1] ?? 0)) >>> 0;
  }
  set(i: number): void {
    if (!this.has(i)) this.#flip(i);
  }
  clear(i: number): void {
    if (this.has(i)) this.#flip(i);
  }
  has(i: number): boolean {
    return ((this.#words[i >> 4] ?? 0) & (1 << (i & 15))) !== 0;
  }
  /** A 53-bit hash of the members. */
  hash(): number {
    return this.#h1 * 0x20_0000 + (this.#h2 >>> 11);
  }
  /** A copy of the bits, for the memo to compare against later. */
  snapshot(): Uint16Array {
    return this.#words.slice();
  }
  /** Whether the bits equal a snapshot. */
  equals(other: Uint16Array): boolean {
    const words = this.#words;
    if (other.length !== words.length) return false;
    for (let i = 0; i < words.length; i++) if (words[i] !== other[i]) return false;
    return true;
  }
}

/**
 * Lowe's memo: the (linearized set, state) pairs already explored, bucketed by the set's hash and
 * the state key, with the exact set kept to rule out hash collisions.
 */
class Memo {
  readonly #buckets = new Map<number, Map<string, Uint16Array[]>>();
  #size = 0;
  get size(): number {
    return this.#size;
  }
  /** Adds the pair and returns true, or returns false if it was already there. */
  add(bits: BitSet, stateKey: string): boolean {
    const hash = bits.hash();
    let byState = this.#buckets.get(hash);
    if (byState === undefined) {
      byState = new Map();
      this.#buckets.set(hash, byState);
    }
    const bucket = byState.get(stateKey);
    if (bucket === undefined) {
      byState.set(stateKey, [bits.snapshot()]);
    } else {
      for (const b of bucket) if (bits.equals(b)) return false;
      bucket.push(bits.snapshot());
    }
    this.#size++;
    return true;
  }
}

interface PartLimits {
  readonly stepsLeft: number;
  readonly cacheEntriesMax: number;
  readonly outOfTime: () => boolean;
  /** Timed-out operations placed back to back before a completed one must follow (Infinity: complete). */
  readonly unknownRunMax: number;
}

const quickUnknownRunMax = 2;

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
  const cache = new Memo();
  let state = model.init();
  let steps = 0;

  // The deepest point reached, kept for the report.
  let best: { prefix: { op: number; stateAfter: S }[]; state: S } = { prefix: [], state };
  let bestStuck: { op: number; candidates: { op: number; verdict: string }[] } | undefined;

  // Timed-out operations by call time (ties by index, as in the event list). The candidates at a
  // point are those called no later than the first return still in the list.
  const unknownOps = part
    .map((op, i) => ({ op, i }))
    .filter(({ op }) => op.outcome.kind === "unknown")
    .sort((a, b) => a.op.callMs - b.op.callMs || a.i - b.i)
    .map(({ i }) => i);
  const callMsOf = (i: number): number => part[i]?.callMs ?? 0;
  /** How many timed-out operations were called at or before `timeMs`. */
  const unknownCalledBy = (timeMs: number): number => {
    let lo = 0;
    let hi = unknownOps.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (callMsOf(unknownOps[mid] ?? 0) <= timeMs) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  // Classes of interchangeable timed-out operations: only the earliest-called unplaced member of a
  // class (its representative) is ever tried, so the placed members of a class are always a prefix
  // of its members in call order, and a count per class says which member is next.
  const classOf = new Array<number>(part.length).fill(-1);
  const members: number[][] = [];
  {
    const classes = model.unknownClasses?.(part) ?? [];
    assert(
      classes.length === 0 || classes.length === part.length,
      "unknownClasses must give one entry per operation",
    );
    const ids = new Map<string, number>();
    for (const i of unknownOps) {
      const name = classes[i];
      if (name === undefined) continue;
      let id = ids.get(name);
      if (id === undefined) {
        id = members.length;
        ids.set(name, id);
        members.push([]);
      }
      members[id]?.push(i);
      classOf[i] = id;
    }
  }
  const placedOfClass = new Array<number>(members.length).fill(0);
  const isRepresentative = (op: number): boolean => {
    const c = classOf[op] ?? -1;
    return c === -1 || members[c]?.[placedOfClass[c] ?? 0] === op;
  };
  const placeClassMember = (op: number, delta: 1 | -1) => {
    const c = classOf[op] ?? -1;
    if (c !== -1) placedOfClass[c] = (placedOfClass[c] ?? 0) + delta;
  };

  /** Whether some completed operation up to the first return `stop` can never be placed from here. */
  const deadEnd = (stop: EventNode): boolean => {
    const hint = model.mayBecomePossible;
    if (hint === undefined) return false;
    for (let e = head.next; e !== null; e = e.next) {
      if (e.kind === "call" || e === stop) {
        const output = outputOf(e.op);
        if (output !== undefined && !hint.call(model, state, inputOf(e.op), output)) return true;
      }
      if (e === stop) return false;
    }
    return false;
  };

  /** The operations that could go next before `stop` returns, and what the model says of each. */
  const candidatesAt = (stop: EventNode): { op: number; verdict: string }[] => {
    const ops: number[] = [];
    for (let e = head.next; e !== null && e !== stop; e = e.next) if (e.kind === "call") ops.push(e.op);
    if (!ops.includes(stop.op)) ops.push(stop.op);
    for (const i of unknownOps.slice(0, unknownCalledBy(stop.timeMs))) if (!linearized.has(i)) ops.push(i);
    return ops.map((op) => {
      const result = model.step(state, inputOf(op), outputOf(op));
      return {
        op,
        verdict: result.ok
          ? `allowed here (-> ${model.describeState(result.newState)}), but every continuation failed`
          : `impossible in state ${model.describeState(state)}`,
      };
    });
  };

  // The search stack: each placed operation with the state before it, where its point's scan was
  // (the call event for pass 1, the order and position for pass 2), how many timed-out operations
  // end the prefix, and the return event that blocked its point (pass 2).
  const stack: {
    op: number;
    call: EventNode | null;
    order: readonly number[];
    orderAt: number;
    stateBefore: S;
    stateAfter: S;
    unknownRun: number;
    blockedBy: EventNode | null;
  }[] = [];

  // Each search point tries the operations that may go next in two passes. Pass 1 walks the event
  // list forward over completed operations, up to the first return. Only when that return's
  // operation cannot go (the point is stuck) does pass 2 try timed-out operations: first those after
  // which a waiting completed operation could go at once, then the rest, each group most recently
  // called first. A timed-out write is thus placed only when a later operation needs its effect, and
  // the likely explanation comes first. Plain Wing & Gong order would place each at its call and
  // search every subset of the timed-out writes that in fact never took effect.
  let pass: 1 | 2 = 1;
  let blockedBy: EventNode | null = null;
  let entry: EventNode | null = head.next;
  let order: readonly number[] = [];
  let orderAt = 0;

  /** Pass 2's candidates at a point blocked by `stop`, in the order described above. */
  const pass2Order = (stop: EventNode): number[] => {
    const waiting: number[] = [];
    for (let e = head.next; e !== null && e !== stop; e = e.next) if (e.kind === "call") waiting.push(e.op);
    waiting.push(stop.op);
    const enabling: number[] = [];
    const others: number[] = [];
    for (let u = unknownCalledBy(stop.timeMs) - 1; u >= 0; u--) {
      const op = unknownOps[u];
      assert(op !== undefined, "unknown index out of range");
      if (linearized.has(op) || !isRepresentative(op)) continue;
      const result = model.step(state, inputOf(op), outputOf(op));
      // Model steps here count against the budget like the search's own, so it bounds time.
      steps++;
      // A timed-out operation that would leave the state as it is (a conditional put whose
      // condition fails) is no different from one that never happened, which is always an option.
      if (!result.ok || model.stateKey(result.newState) === model.stateKey(state)) continue;
      const enables = waiting.some((w) => {
        steps++;
        return model.step(result.newState, inputOf(w), outputOf(w)).ok;
      });
      (enables ? enabling : others).push(op);
    }
    return enabling.concat(others);
  };

  /** Places `op` if the model allows it and the point is new; returns whether it did. */
  const tryPlace = (op: number, call: EventNode | null): boolean => {
    const unknownOutcome = call === null;
    const result = model.step(state, inputOf(op), outputOf(op));
    if (!result.ok) return false;
    const unknownRun = unknownOutcome ? (stack.at(-1)?.unknownRun ?? 0) + 1 : 0;
    linearized.set(op);
    // A bounded search must not let a visit with a long run of timed-out operations (fewer options
    // left) hide a later visit with a shorter one, so the run is part of its key.
    const runKey = Number.isFinite(limits.unknownRunMax) ? `|${unknownRun}` : "";
    if (!cache.add(linearized, `${model.stateKey(result.newState)}${runKey}`)) {
      linearized.clear(op);
      return false;
    }
    stack.push({
      op,
      call,
      order,
      orderAt,
      stateBefore: state,
      stateAfter: result.newState,
      unknownRun,
      blockedBy,
    });
    if (call !== null) lift(call);
    else placeClassMember(op, 1);
    state = result.newState;
    if (stack.length > best.prefix.length) {
      best = { prefix: stack.map((e) => ({ op: e.op, stateAfter: e.stateAfter })), state };
      bestStuck = undefined;
    }
    pass = 1;
    blockedBy = null;
    entry = head.next;
    return true;
  };

  for (;;) {
    steps++;
    if (steps > limits.stepsLeft) {
      return {
        kind: "unknown",
        steps,
        reason: `step budget exhausted after ${steps} steps (deepest prefix ${best.prefix.length} of ${part.length} operations)`,
      };
    }
    if ((steps & 0xffff) === 0 && limits.outOfTime()) {
      return { kind: "unknown", steps, reason: `time budget exhausted after ${steps} steps` };
    }
    if (cache.size >= limits.cacheEntriesMax) {
      return { kind: "unknown", steps, reason: `memo limit of ${limits.cacheEntriesMax} entries reached` };
    }
    if (pass === 1) {
      // Every completed operation placed: the timed-out ones left can go last, or never happen.
      if (entry === null) return { kind: "linearizable", steps };
      if (entry.kind === "call") {
        const call: EventNode = entry;
        if (!tryPlace(call.op, call)) entry = call.next;
        continue;
      }
      // Stuck at the first return: on to pass 2, unless no timed-out operation can help.
      pass = 2;
      blockedBy = entry;
      const run = stack.at(-1)?.unknownRun ?? 0;
      order = run >= limits.unknownRunMax || deadEnd(entry) ? [] : pass2Order(entry);
      orderAt = 0;
      continue;
    }
    if (orderAt < order.length) {
      const op = order[orderAt];
      assert(op !== undefined, "pass 2 position out of range");
      if (!tryPlace(op, null)) orderAt++;
      continue;
    }
    // Nothing can go next here: record the deepest such point, then backtrack.
    assert(blockedBy !== null, "stuck without a blocking return");
    if (bestStuck === undefined && stack.length === best.prefix.length) {
      bestStuck = { op: blockedBy.op, candidates: candidatesAt(blockedBy) };
    }
    const top = stack.pop();
    if (top === undefined) break;
    linearized.clear(top.op);
    state = top.stateBefore;
    blockedBy = top.blockedBy;
    if (top.call !== null) {
      unlift(top.call);
      pass = 1;
      entry = top.call.next;
    } else {
      placeClassMember(top.op, -1);
      pass = 2;
      order = top.order;
      orderAt = top.orderAt + 1;
    }
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
    partName: model.describePart?.(part) ?? `part ${partIndex}`,
    partSize: part.length,
    longestPrefix,
    stateAfterPrefix: model.describeState(best.state),
    stuckOpIndex,
    candidates,
    explanation: "",
  };
  return { kind: "not-linearizable", steps, ...report, explanation: explain(report, describe(bestStuck.op)) };
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
const candidatesShownMax = 30;

function explain(report: NotLinearizableReport, stuck: string): string {
  const lines: string[] = [];
  lines.push(`not linearizable: ${report.partName} (${report.partSize} operations)`);
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
  for (const c of report.candidates.slice(0, candidatesShownMax))
    lines.push(`  ${c.description}: ${c.verdict}`);
  if (report.candidates.length > candidatesShownMax) {
    lines.push(
      `  ... and ${report.candidates.length - candidatesShownMax} more (see the report's candidates)`,
    );
  }
  return lines.join("\n");
}
