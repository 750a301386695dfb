// The sequential specification of Cairn's key-value service as users see it (src/service/kv): a put
// answers with the group revision and whether it created the key, a read gives the key's value,
// version (writes since creation, 1 again after a delete) and modify revision, conditional puts and
// deletes compare the modify revision, increments answer with the new decimal value. A put may give
// the key a TTL: the key expires once the applied clock (the leader timestamps of applied entries)
// passes its deadline, which the history shows as an expiry operation of its own (see
// withExpiries). Partitioned by key for the linearizability checker. Revisions are group-wide, so
// one key alone cannot predict them: the model checks that they grow along each key's history and
// learns each one from answers.
import { assertNever } from "../../src/util/assert.js";
import type { History, Operation } from "./history.js";
import { interchangeableUnknowns, partitionByKey } from "./kv-model.js";
import type { KvDialect } from "./kv-workload.js";
import { checkLinearizable, type Model } from "./linearizability.js";

/**
 * A key-value request to the service. A put with `ttlMs` gives the key a deadline (the applied clock
 * when it is applied, plus `ttlMs`); every other write but an increment clears it.
 */
export type ServiceKvInput =
  | { readonly op: "get"; readonly key: string }
  | { readonly op: "put"; readonly key: string; readonly value: string; readonly ttlMs?: number }
  | {
      readonly op: "put-if";
      readonly key: string;
      readonly value: string;
      readonly condition:
        | { readonly kind: "absent" }
        | { readonly kind: "revision"; readonly revision: number };
    }
  | { readonly op: "delete"; readonly key: string; readonly ifRevision?: number }
  | { readonly op: "incr"; readonly key: string; readonly by: number };

/**
 * No request: the moment the applied clock passed the deadline the put of `value` gave `key` (the
 * key then reads as absent, and a sweep removes it), added to a history by {@link withExpiries}.
 */
export interface ServiceKvExpiry {
  readonly op: "expire";
  readonly key: string;
  readonly value: string;
}

/** What the model steps through: the requests, and the expiries they imply. */
export type ServiceKvStep = ServiceKvInput | ServiceKvExpiry;

/**
 * A service answer. `value`: a read (null, version 0 and revision 0 when absent; `revision` is the
 * key's modify revision). `written`: a put whose condition held. `conflict`: a conditional write
 * whose condition failed, with the key's modify revision (null when absent). `deleted`: whether a
 * delete removed the key, and the group revision after it. `incremented`: the new value. `error`:
 * any other failure the service reported as final (never a correct answer to these requests).
 */
export type ServiceKvOutput =
  | {
      readonly kind: "value";
      readonly value: string | null;
      readonly version: number;
      readonly revision: number;
    }
  | { readonly kind: "written"; readonly revision: number; readonly created: boolean }
  | { readonly kind: "conflict"; readonly currentRevision: number | null }
  | { readonly kind: "deleted"; readonly deleted: boolean; readonly revision: number }
  | { readonly kind: "incremented"; readonly value: string; readonly revision: number }
  | { readonly kind: "not-integer" }
  | { readonly kind: "error"; readonly code: string };

/**
 * What the model knows about one key. `version` counts writes since the key was created (0 when
 * absent). While present, the key's modify revision is `revision` when `exact`, or some number above
 * it (a write whose answer was lost took a revision no answer named yet). While absent, `revision` is
 * a bound every later write's revision exceeds. `expiring` names the put (by its value) whose
 * deadline the present key carries, or is null when it has none.
 */
export interface ServiceKvKeyState {
  readonly value: string | null;
  readonly version: number;
  readonly revision: number;
  readonly exact: boolean;
  readonly expiring: string | null;
}

/** A service key-value history operation (a request, or an expiry). */
export type ServiceKvOperation = Operation<ServiceKvStep, ServiceKvOutput>;

const integerPattern = /^-?(0|[1-9][0-9]{0,18})$/;

/** The integer an increment starts from, or undefined when the key holds a non-integer. */
function integerBase(value: string | null): number | undefined {
  if (value === null) return 0;
  if (!integerPattern.test(value)) return undefined;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Whether the present key's modify revision may be `r`. */
function mayBeAt(state: ServiceKvKeyState, r: number): boolean {
  if (state.value === null) return false;
  return state.exact ? state.revision === r : r > state.revision;
}

/** The key pinned to modify revision `r` (learned from an answer). */
function pinned(state: ServiceKvKeyState, r: number): ServiceKvKeyState {
  return { ...state, revision: r, exact: true };
}

/**
 * The key after a write of `value` at revision `r` (undefined: the answer was lost), carrying the
 * deadline of the put named `expiring` (null: none).
 */
function written(
  state: ServiceKvKeyState,
  value: string,
  r: number | undefined,
  expiring: string | null,
): ServiceKvKeyState {
  const version = state.value === null ? 1 : state.version + 1;
  return r === undefined
    ? { value, version, revision: state.revision, exact: false, expiring }
    : { value, version, revision: r, exact: true, expiring };
}

/** The key after a delete at revision `r` (undefined: the answer was lost, or an expiry). */
function removed(state: ServiceKvKeyState, r: number | undefined): ServiceKvKeyState {
  return { value: null, version: 0, revision: r ?? state.revision, exact: r !== undefined, expiring: null };
}

type Step = { ok: boolean; newState: ServiceKvKeyState };
const refuse = (state: ServiceKvKeyState): Step => ({ ok: false, newState: state });

/**
 * Whether a conditional write's condition on modify revision `required` may hold (0: the key must
 * be absent), and the state pinned so that it does.
 */
function revisionHolds(state: ServiceKvKeyState, required: number): ServiceKvKeyState | undefined {
  if (state.value === null) return required === 0 ? state : undefined;
  return mayBeAt(state, required) ? pinned(state, required) : undefined;
}

/** A conflict answer is right when the condition fails and it names the key's modify revision. */
function conflictStep(state: ServiceKvKeyState, required: number, current: number | null): Step {
  if (state.value === null) return { ok: required !== 0 && current === null, newState: state };
  if (current === null || current === required || !mayBeAt(state, current)) return refuse(state);
  return { ok: true, newState: pinned(state, current) };
}

/**
 * One step of the specification. With an answer, whether the service may give it and the state after;
 * without one (a lost answer), the state if the request took effect. A conditional request whose
 * condition may or may not hold is taken to succeed: failing has no effect, which is the same as the
 * request never happening, and the checker always considers that.
 */
export function stepServiceKv(
  state: ServiceKvKeyState,
  input: ServiceKvStep,
  output: ServiceKvOutput | undefined,
): Step {
  switch (input.op) {
    case "get": {
      if (output === undefined) return { ok: true, newState: state };
      if (output.kind !== "value") return refuse(state);
      if (output.value === null) {
        return { ok: state.value === null && output.version === 0 && output.revision === 0, newState: state };
      }
      const ok =
        state.value === output.value && state.version === output.version && mayBeAt(state, output.revision);
      return ok ? { ok, newState: pinned(state, output.revision) } : refuse(state);
    }
    case "put": {
      const expiring = input.ttlMs === undefined ? null : input.value;
      if (output === undefined)
        return { ok: true, newState: written(state, input.value, undefined, expiring) };
      if (output.kind !== "written" || output.created !== (state.value === null)) return refuse(state);
      if (output.revision <= state.revision) return refuse(state);
      return { ok: true, newState: written(state, input.value, output.revision, expiring) };
    }
    case "expire":
      // The deadline of a put the key no longer carries (overwritten, deleted, or never applied)
      // changes nothing; the sweep that removes the key later is the same absence.
      if (state.value === null || state.expiring !== input.value) return { ok: true, newState: state };
      return { ok: true, newState: removed(state, undefined) };
    case "put-if": {
      const required = input.condition.kind === "absent" ? undefined : input.condition.revision;
      const holding =
        required === undefined ? (state.value === null ? state : undefined) : revisionHolds(state, required);
      if (output === undefined) {
        return {
          ok: true,
          newState: holding === undefined ? state : written(holding, input.value, undefined, null),
        };
      }
      switch (output.kind) {
        case "written":
          if (holding === undefined || output.created !== (state.value === null)) return refuse(state);
          if (output.revision <= holding.revision) return refuse(state);
          return { ok: true, newState: written(holding, input.value, output.revision, null) };
        case "conflict":
          if (required === undefined) {
            // If absent: fails exactly when the key exists, naming its modify revision.
            if (state.value === null || output.currentRevision === null) return refuse(state);
            return mayBeAt(state, output.currentRevision)
              ? { ok: true, newState: pinned(state, output.currentRevision) }
              : refuse(state);
          }
          return conflictStep(state, required, output.currentRevision);
        default:
          return refuse(state);
      }
    }
    case "delete": {
      const holding = input.ifRevision === undefined ? state : revisionHolds(state, input.ifRevision);
      if (output === undefined) {
        return {
          ok: true,
          newState: holding === undefined || holding.value === null ? state : removed(holding, undefined),
        };
      }
      switch (output.kind) {
        case "deleted":
          if (holding === undefined) return refuse(state);
          if (output.deleted) {
            if (state.value === null || output.revision <= holding.revision) return refuse(state);
            return { ok: true, newState: removed(holding, output.revision) };
          }
          // Nothing to delete: the answer carries the group revision, which no key's exceeds.
          return { ok: state.value === null && output.revision >= state.revision, newState: state };
        case "conflict":
          return input.ifRevision === undefined
            ? refuse(state)
            : conflictStep(state, input.ifRevision, output.currentRevision);
        default:
          return refuse(state);
      }
    }
    case "incr": {
      const base = integerBase(state.value);
      if (output === undefined) {
        return {
          ok: true,
          // An increment keeps the key's deadline.
          newState:
            base === undefined ? state : written(state, String(base + input.by), undefined, state.expiring),
        };
      }
      if (output.kind === "not-integer") return { ok: base === undefined, newState: state };
      if (output.kind !== "incremented" || base === undefined) return refuse(state);
      const value = String(base + input.by);
      if (output.value !== value || output.revision <= state.revision) return refuse(state);
      return { ok: true, newState: written(state, value, output.revision, state.expiring) };
    }
    default:
      return assertNever(input, "service kv input");
  }
}

/** Whether two answers are the same (a retry with an idempotency key must repeat the first). */
export function sameServiceKvOutput(a: ServiceKvOutput, b: ServiceKvOutput): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function describeInput(input: ServiceKvStep): string {
  switch (input.op) {
    case "get":
      return `get(${input.key})`;
    case "put":
      return input.ttlMs === undefined
        ? `put(${input.key}, ${JSON.stringify(input.value)})`
        : `put(${input.key}, ${JSON.stringify(input.value)}, ttl ${input.ttlMs} ms)`;
    case "expire":
      return `expiry(${input.key}) of ${JSON.stringify(input.value)}`;
    case "put-if": {
      const cond = input.condition.kind === "absent" ? "absent" : `rev=${input.condition.revision}`;
      return `put-if(${input.key}, ${JSON.stringify(input.value)}, ${cond})`;
    }
    case "delete":
      return input.ifRevision === undefined
        ? `delete(${input.key})`
        : `delete-if(${input.key}, rev=${input.ifRevision})`;
    case "incr":
      return `incr(${input.key}, ${input.by})`;
    default:
      return assertNever(input, "service kv input");
  }
}

/** A readable rendering of an answer. */
export function describeServiceKvOutput(output: ServiceKvOutput): string {
  switch (output.kind) {
    case "value":
      return output.value === null
        ? "absent"
        : `${JSON.stringify(output.value)} v${output.version} @r${output.revision}`;
    case "written":
      return `${output.created ? "created" : "ok"} @r${output.revision}`;
    case "conflict":
      return `conflict (key at ${output.currentRevision === null ? "absent" : `r${output.currentRevision}`})`;
    case "deleted":
      return `${output.deleted ? "deleted" : "not-found"} @r${output.revision}`;
    case "incremented":
      return `${output.value} @r${output.revision}`;
    case "not-integer":
      return "not-integer";
    case "error":
      return `error ${output.code}`;
    default:
      return assertNever(output, "service kv output");
  }
}

function describeState(state: ServiceKvKeyState): string {
  const at = state.exact ? `@r${state.revision}` : `@>r${state.revision}`;
  const ttl = state.expiring === null ? "" : ` expiring (${JSON.stringify(state.expiring)})`;
  return state.value === null
    ? `absent (writes after r${state.revision})`
    : `${JSON.stringify(state.value)} v${state.version} ${at}${ttl}`;
}

/**
 * {@link interchangeableUnknowns} for the service's answers: deletes group by their condition; a put
 * with a TTL is like no other (its expiry names it), and so is each expiry.
 */
function unknownClasses(part: readonly ServiceKvOperation[]): (string | undefined)[] {
  const classes = interchangeableUnknowns(part, {
    observed: (out) =>
      out.kind === "value" || out.kind === "incremented" ? (out.value ?? undefined) : undefined,
    isInteger: (value) => integerBase(value) !== undefined,
    condition: (input) => {
      if (input.op === "delete") return `${input.ifRevision ?? "any"}`;
      if (input.op !== "put-if") return "";
      return input.condition.kind === "absent" ? "absent" : `r${input.condition.revision}`;
    },
  });
  return classes.map((c, i) => {
    const input = part[i]?.input;
    return input?.op === "put" && input.ttlMs !== undefined ? undefined : c;
  });
}

/**
 * The history with one expiry operation per put that set a TTL: called at the earliest moment the
 * deadline can be (the put's call plus its TTL: the leader stamps the entry after the call, and the
 * applied clock never runs ahead of the simulated time), and of unknown outcome, since the applied
 * clock passes the deadline only once a later entry (another write, the leader's sweep) carries a
 * later timestamp, and before the history ends or not. The checker places it where the answers
 * need it: a key read as absent before its earliest deadline, or read again after it was gone,
 * has no place.
 */
export function withExpiries(history: History<ServiceKvStep, ServiceKvOutput>): ServiceKvOperation[] {
  const out: ServiceKvOperation[] = [...history];
  for (const op of history) {
    if (op.input.op !== "put" || op.input.ttlMs === undefined) continue;
    out.push({
      clientId: -1,
      input: { op: "expire", key: op.input.key, value: op.input.value },
      callMs: op.callMs + op.input.ttlMs,
      outcome: { kind: "unknown" },
    });
  }
  return out;
}

/**
 * Whether some sequence of operations could bring the key to a state where `output` is right:
 * revisions only grow, so an answer naming a revision the key has passed never becomes possible.
 */
function mayBecomePossible(
  state: ServiceKvKeyState,
  _input: ServiceKvStep,
  output: ServiceKvOutput,
): boolean {
  const notPassed = (r: number) =>
    r > state.revision || (r === state.revision && state.exact && state.value !== null);
  switch (output.kind) {
    case "value":
      return output.value === null || notPassed(output.revision);
    case "conflict":
      return output.currentRevision === null || notPassed(output.currentRevision);
    case "written":
    case "incremented":
      return output.revision > state.revision;
    case "deleted":
      return output.deleted ? output.revision > state.revision : output.revision >= state.revision;
    case "not-integer":
      return true;
    case "error":
      return false;
    default:
      return assertNever(output, "service kv output");
  }
}

/** The service key-value model, partitioned by key. */
export const serviceKvModel: Model<ServiceKvKeyState, ServiceKvStep, ServiceKvOutput> = {
  init: () => ({ value: null, version: 0, revision: 0, exact: true, expiring: null }),
  step: stepServiceKv,
  partition: partitionByKey,
  describePart: (part) => `key ${JSON.stringify(part[0]?.input.key ?? "")}`,
  readOnly: (input) => input.op === "get",
  unknownClasses,
  mayBecomePossible,
  stateKey: (s) =>
    `${s.value === null ? "-" : `=${s.value}`}|${s.version}|${s.revision}|${s.exact ? 1 : 0}|${s.expiring ?? ""}`,
  describeOperation: (input, output) =>
    `${describeInput(input)} -> ${output === undefined ? "?" : describeServiceKvOutput(output)}`,
  describeState,
};

/**
 * The workload's dialect for the service: conditional puts name the modify revision a client last
 * learned (or ask for absence), a third of the deletes with a known revision are conditional.
 */
export const serviceKvDialect: KvDialect<ServiceKvInput, ServiceKvOutput> = {
  check: (history) => checkLinearizable(serviceKvModel, withExpiries(history)),
  input(prng, op, key, value, known) {
    switch (op) {
      case "get":
        return { op, key };
      case "put":
        // One put in three gives the key a TTL, short enough to pass within a run.
        return prng.chance(1, 2) ? { op, key, value, ttlMs: prng.range(50, 1_000) } : { op, key, value };
      case "put-if":
        if (known === undefined || prng.chance(1, 4))
          return { op, key, value, condition: { kind: "absent" } };
        return { op, key, value, condition: { kind: "revision", revision: known } };
      case "delete":
        return known !== undefined && prng.chance(1, 3) ? { op, key, ifRevision: known } : { op, key };
      case "incr":
        return { op, key, by: 1 + prng.below(5) };
      default:
        return assertNever(op, "kv op");
    }
  },
  learned(output) {
    switch (output.kind) {
      case "value":
      case "written":
      case "incremented":
        return output.revision;
      case "conflict":
        return output.currentRevision ?? 0;
      case "deleted":
        // Revision 0 asks for the key to be absent, which it now is.
        return output.deleted ? 0 : undefined;
      case "not-integer":
      case "error":
        return undefined;
      default:
        return assertNever(output, "service kv output");
    }
  },
  sameOutput: sameServiceKvOutput,
};
