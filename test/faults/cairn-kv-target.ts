// The key-value workload's requests as HTTP calls to a random Cairn node (docs/api.md), and the
// answers in the service model's terms (test/sim/kv-service-model.ts). What the service promises had
// no effect is a definite failure; a lost answer or ERR_TIMEOUT is unknown; any other error is a
// wrong answer, which the linearizability checker refuses.
import { assertNever } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import type { ServiceKvInput, ServiceKvOutput } from "../sim/kv-service-model.js";
import type { KvTarget, SubmitResult } from "../sim/kv-workload.js";
import type { AvailabilityLog } from "./availability.js";
import { errorCode, field, type HttpOutcome, httpJson } from "./http.js";

/** Error codes after which the request certainly had no effect (docs/errors.md). */
const noEffectCodes = new Set(["ERR_UNAVAILABLE", "ERR_NOT_LEADER", "ERR_BUSY"]);
/** Error codes after which the outcome is unknown (a node stopping may have proposed the write). */
const unknownCodes = new Set(["ERR_TIMEOUT", "ERR_SHUTTING_DOWN", "ERR_STORAGE_FAILED", "ERR_NO_SPACE"]);

/** How an error answer (or a refused or lost request) counts for the workload. */
export function classifyFailure(outcome: HttpOutcome): {
  kind: "failed" | "unknown" | "wrong";
  code: string;
} {
  switch (outcome.kind) {
    case "refused":
      return { kind: "failed", code: `refused (${outcome.reason})` };
    case "lost":
      return { kind: "unknown", code: `lost (${outcome.reason})` };
    case "answer": {
      const code = errorCode(outcome.body) ?? `HTTP ${outcome.status}`;
      if (noEffectCodes.has(code)) return { kind: "failed", code };
      if (unknownCodes.has(code)) return { kind: "unknown", code };
      return { kind: "wrong", code };
    }
    default:
      return assertNever(outcome, "http outcome");
  }
}

/** Settings of a {@link CairnKvTarget}. */
export interface CairnKvTargetOptions {
  /** The nodes' HTTP base URLs; each attempt goes to one at random. */
  readonly urls: readonly string[];
  readonly prng: Prng;
  /** The client's timeout per attempt. */
  readonly timeoutMs: number;
  readonly log: AvailabilityLog;
}

const num = (v: unknown): number => (typeof v === "number" ? v : Number.NaN);

/** The KV workload's target over Cairn's HTTP API. */
export class CairnKvTarget implements KvTarget<ServiceKvInput, ServiceKvOutput> {
  readonly #o: CairnKvTargetOptions;

  /** Creates a target; it holds no connections of its own. */
  constructor(options: CairnKvTargetOptions) {
    this.#o = options;
  }

  submit(
    _clientId: number,
    input: ServiceKvInput,
    done: (result: SubmitResult<ServiceKvOutput>) => void,
    requestId: string,
  ): void {
    const node = this.#o.prng.below(this.#o.urls.length);
    const base = this.#o.urls[node] ?? "";
    const attempt = this.#o.log.begin(node);
    void this.#call(base, input, requestId).then((outcome) => {
      const output = outcome.kind === "answer" ? outputOf(input, outcome.status, outcome.body) : undefined;
      if (output !== undefined) {
        this.#o.log.end(attempt, "ok");
        done({ kind: "ok", output });
        return;
      }
      const failure = classifyFailure(outcome);
      this.#o.log.end(attempt, failure.kind === "unknown" ? "timeout" : "error", failure.code);
      if (failure.kind === "wrong") done({ kind: "ok", output: { kind: "error", code: failure.code } });
      else done({ kind: failure.kind, reason: failure.code });
    });
  }

  #call(base: string, input: ServiceKvInput, requestId: string): Promise<HttpOutcome> {
    const url = `${base}/v1/kv/${encodeURIComponent(input.key)}`;
    const timeoutMs = this.#o.timeoutMs;
    const headers = { "idempotency-key": requestId };
    switch (input.op) {
      case "get":
        return httpJson("GET", url, { timeoutMs });
      case "put":
        return httpJson("PUT", url, { body: { value: input.value }, headers, timeoutMs });
      case "put-if":
        return httpJson("PUT", url, {
          body:
            input.condition.kind === "absent"
              ? { value: input.value, ifAbsent: true }
              : { value: input.value, ifRevision: input.condition.revision },
          headers,
          timeoutMs,
        });
      case "delete":
        return httpJson(
          "DELETE",
          input.ifRevision === undefined ? url : `${url}?ifRevision=${input.ifRevision}`,
          { headers, timeoutMs },
        );
      case "incr":
        return httpJson("PATCH", url, { body: { increment: input.by }, headers, timeoutMs });
      default:
        return assertNever(input, "kv input");
    }
  }
}

/** The model's answer for a successful HTTP answer (or a refused condition), else undefined. */
function outputOf(input: ServiceKvInput, status: number, body: unknown): ServiceKvOutput | undefined {
  const code = errorCode(body);
  if (code === "ERR_CONFLICT") {
    const current = field(field(body, "error"), "currentRevision");
    return { kind: "conflict", currentRevision: typeof current === "number" ? current : null };
  }
  if (code === "ERR_NOT_INTEGER") return { kind: "not-integer" };
  switch (input.op) {
    case "get":
      if (code === "ERR_NOT_FOUND") return { kind: "value", value: null, version: 0, revision: 0 };
      if (status !== 200) return undefined;
      return {
        kind: "value",
        value: String(field(body, "value")),
        version: num(field(body, "version")),
        revision: num(field(body, "revision")),
      };
    case "put":
    case "put-if":
      if (status !== 200) return undefined;
      return {
        kind: "written",
        revision: num(field(body, "revision")),
        created: field(body, "created") === true,
      };
    case "delete":
      if (status !== 200) return undefined;
      return {
        kind: "deleted",
        deleted: field(body, "deleted") === true,
        revision: num(field(body, "revision")),
      };
    case "incr":
      if (status !== 200) return undefined;
      return {
        kind: "incremented",
        value: String(field(body, "value")),
        revision: num(field(body, "revision")),
      };
    default:
      return assertNever(input, "kv input");
  }
}
