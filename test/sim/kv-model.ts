// The sequential specification of Cairn's key-value operations for the linearizability checker:
// put, get, conditional put (if absent / if at a version), delete and increment, one key at a time.
import { assertNever } from "../../src/util/assert.js";
import type { History, Operation } from "./history.js";
import type { Model } from "./linearizability.js";

/**
 * A key-value request. Versions are per key: every successful write to a key (put, conditional put,
 * increment, delete of a present key) bumps that key's version by one, and the version survives a
 * delete, so a conditional put on a version read before the delete fails.
 */
export type KvInput =
  | { readonly op: "get"; readonly key: string }
  | { readonly op: "put"; readonly key: string; readonly value: string }
  | {
      readonly op: "put-if";
      readonly key: string;
      readonly value: string;
      readonly condition:
        | { readonly kind: "absent" }
        | { readonly kind: "version"; readonly version: number };
    }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "incr"; readonly key: string; readonly by: number };

/**
 * A key-value response. `value`: a get's result (null when absent). `written`: a put, or a
 * conditional put whose condition held, with the key's new version. `rejected`: a conditional put
 * whose condition failed. `deleted`: whether a delete removed a present key. `incremented`: the new
 * integer value and version. `not-integer`: an increment of a value that is not an integer.
 */
export type KvOutput =
  | { readonly kind: "value"; readonly value: string | null; readonly version: number }
  | { readonly kind: "written"; readonly version: number }
  | { readonly kind: "rejected" }
  | { readonly kind: "deleted"; readonly deleted: boolean }
  | { readonly kind: "incremented"; readonly value: number; readonly version: number }
  | { readonly kind: "not-integer" };

/** The state of one key: its value (null when absent) and its version (0 before any write). */
export interface KvKeyState {
  readonly value: string | null;
  readonly version: number;
}

/** A key-value history operation. */
export type KvOperation = Operation<KvInput, KvOutput>;

const integerPattern = /^-?(0|[1-9][0-9]*)$/;

/** The value an increment starts from, or undefined when the key holds something that is not an integer. */
function integerValue(value: string | null): number | undefined {
  if (value === null) return 0;
  if (!integerPattern.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Applies `input` to one key; returns the new state and the output the specification gives. */
export function applyKv(state: KvKeyState, input: KvInput): { newState: KvKeyState; output: KvOutput } {
  switch (input.op) {
    case "get":
      return { newState: state, output: { kind: "value", value: state.value, version: state.version } };
    case "put": {
      const version = state.version + 1;
      return { newState: { value: input.value, version }, output: { kind: "written", version } };
    }
    case "put-if": {
      const holds =
        input.condition.kind === "absent" ? state.value === null : state.version === input.condition.version;
      if (!holds) return { newState: state, output: { kind: "rejected" } };
      const version = state.version + 1;
      return { newState: { value: input.value, version }, output: { kind: "written", version } };
    }
    case "delete":
      if (state.value === null) return { newState: state, output: { kind: "deleted", deleted: false } };
      return {
        newState: { value: null, version: state.version + 1 },
        output: { kind: "deleted", deleted: true },
      };
    case "incr": {
      const current = integerValue(state.value);
      if (current === undefined) return { newState: state, output: { kind: "not-integer" } };
      const value = current + input.by;
      const version = state.version + 1;
      return { newState: { value: String(value), version }, output: { kind: "incremented", value, version } };
    }
    default:
      return assertNever(input, "kv input");
  }
}

/** Whether two outputs are the same response. */
export function sameKvOutput(a: KvOutput, b: KvOutput): boolean {
  switch (a.kind) {
    case "value":
      return b.kind === "value" && a.value === b.value && a.version === b.version;
    case "written":
      return b.kind === "written" && a.version === b.version;
    case "rejected":
      return b.kind === "rejected";
    case "deleted":
      return b.kind === "deleted" && a.deleted === b.deleted;
    case "incremented":
      return b.kind === "incremented" && a.value === b.value && a.version === b.version;
    case "not-integer":
      return b.kind === "not-integer";
    default:
      return assertNever(a, "kv output");
  }
}

function describeInput(input: KvInput): string {
  switch (input.op) {
    case "get":
      return `get(${input.key})`;
    case "put":
      return `put(${input.key}, ${JSON.stringify(input.value)})`;
    case "put-if": {
      const cond = input.condition.kind === "absent" ? "absent" : `version=${input.condition.version}`;
      return `put-if(${input.key}, ${JSON.stringify(input.value)}, ${cond})`;
    }
    case "delete":
      return `delete(${input.key})`;
    case "incr":
      return `incr(${input.key}, ${input.by})`;
    default:
      return assertNever(input, "kv input");
  }
}

/** A readable rendering of a key-value output. */
export function describeKvOutput(output: KvOutput): string {
  switch (output.kind) {
    case "value":
      return output.value === null
        ? `absent@v${output.version}`
        : `${JSON.stringify(output.value)}@v${output.version}`;
    case "written":
      return `ok@v${output.version}`;
    case "rejected":
      return "rejected";
    case "deleted":
      return output.deleted ? "deleted" : "not-found";
    case "incremented":
      return `${output.value}@v${output.version}`;
    case "not-integer":
      return "not-integer";
    default:
      return assertNever(output, "kv output");
  }
}

/** Splits a key-value history by key: operations on different keys never constrain each other. */
export function partitionByKey<I extends { readonly key: string }, O>(
  history: History<I, O>,
): Operation<I, O>[][] {
  const byKey = new Map<string, Operation<I, O>[]>();
  for (const op of history) {
    const list = byKey.get(op.input.key);
    if (list) list.push(op);
    else byKey.set(op.input.key, [op]);
  }
  return [...byKey.values()];
}

/** The operations both key-value dialects share, as far as grouping timed-out ones needs. */
type UnknownKvInput =
  | { readonly op: "get" | "delete" | "expire" }
  | { readonly op: "put" | "put-if"; readonly value: string }
  | { readonly op: "incr"; readonly by: number };

/**
 * Classes of interchangeable timed-out key-value operations (see `Model.unknownClasses`): gets,
 * deletes (of one kind), increments by the same amount, and puts (or conditional puts with the
 * same condition) of non-integer values that no completed operation ever returned, since nothing
 * can tell such values apart. Everything else is its own class. `observed` names the value an
 * answer shows, `isInteger` which texts an increment reads as numbers, `condition` the condition of
 * a conditional put or delete (the same string for interchangeable ones).
 */
export function interchangeableUnknowns<I extends UnknownKvInput, O>(
  part: readonly Operation<I, O>[],
  dialect: {
    readonly observed: (output: O) => string | undefined;
    readonly isInteger: (value: string) => boolean;
    readonly condition: (input: I) => string;
  },
): (string | undefined)[] {
  const observed = new Set<string>();
  for (const op of part) {
    const value = op.outcome.kind === "ok" ? dialect.observed(op.outcome.output) : undefined;
    if (value !== undefined) observed.add(value);
  }
  const unobservedText = (value: string) => !observed.has(value) && !dialect.isInteger(value);
  return part.map((op) => {
    if (op.outcome.kind !== "unknown") return undefined;
    const input: UnknownKvInput = op.input;
    switch (input.op) {
      case "get":
        return "get";
      case "delete":
        return `delete:${dialect.condition(op.input)}`;
      case "put":
        return unobservedText(input.value) ? "put" : undefined;
      case "put-if":
        return unobservedText(input.value) ? `put-if:${dialect.condition(op.input)}` : undefined;
      case "incr":
        return `incr:${input.by}`;
      case "expire":
        return undefined;
      default:
        return assertNever(input, "kv input");
    }
  });
}

/** {@link interchangeableUnknowns} for this model. */
export function kvUnknownClasses(part: readonly Operation<KvInput, KvOutput>[]): (string | undefined)[] {
  return interchangeableUnknowns(part, {
    observed: (out) =>
      out.kind === "value" && out.value !== null
        ? out.value
        : out.kind === "incremented"
          ? String(out.value)
          : undefined,
    isInteger: (value) => integerValue(value) !== undefined,
    condition: (input) =>
      input.op !== "put-if"
        ? ""
        : input.condition.kind === "absent"
          ? "absent"
          : `v${input.condition.version}`,
  });
}

/**
 * Whether some sequence of operations could take `state` to one where `input` may return `output`:
 * false when the output names a version the key has already passed, since versions only grow (and
 * a read at the current version must see the current value).
 */
export function kvMayBecomePossible(state: KvKeyState, _input: KvInput, output: KvOutput): boolean {
  switch (output.kind) {
    case "value":
      return (
        output.version > state.version || (output.version === state.version && output.value === state.value)
      );
    case "written":
    case "incremented":
      // The write moved the key from version - 1.
      return output.version - 1 >= state.version;
    case "rejected":
    case "deleted":
    case "not-integer":
      return true;
    default:
      return assertNever(output, "kv output");
  }
}

/** The key-value model, partitioned by key. */
export const kvModel: Model<KvKeyState, KvInput, KvOutput> = {
  init: () => ({ value: null, version: 0 }),
  step(state, input, output) {
    const expected = applyKv(state, input);
    return { ok: output === undefined || sameKvOutput(expected.output, output), newState: expected.newState };
  },
  partition: partitionByKey,
  describePart: (part) => `key ${JSON.stringify(part[0]?.input.key ?? "")}`,
  readOnly: (input) => input.op === "get",
  unknownClasses: kvUnknownClasses,
  mayBecomePossible: kvMayBecomePossible,
  stateKey: (state) => (state.value === null ? `${state.version}` : `${state.version}:${state.value}`),
  describeOperation: (input, output) =>
    `${describeInput(input)} -> ${output === undefined ? "?" : describeKvOutput(output)}`,
  describeState: (state) =>
    state.value === null ? `absent@v${state.version}` : `${JSON.stringify(state.value)}@v${state.version}`,
};
