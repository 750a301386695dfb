// The key-value workload against etcd, the reference of the availability comparison: the same
// requests through etcd v3's JSON gateway (/v3/kv/range, put, deleterange, txn), answered in the
// same model's terms. etcd's key metadata is what Cairn's KV copies (modify revision, version,
// group-wide revisions), so the same linearizability checker applies. etcd has no increment: it
// is a read and a compare-and-swap transaction, retried on a lost race within the timeout.
import { assertNever } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import type { ServiceKvInput, ServiceKvOutput } from "../sim/kv-service-model.js";
import type { KvTarget, SubmitResult } from "../sim/kv-workload.js";
import type { AvailabilityLog } from "./availability.js";
import { field, httpJson } from "./http.js";

/** Settings of an {@link EtcdKvTarget}. */
export interface EtcdKvTargetOptions {
  readonly urls: readonly string[];
  readonly prng: Prng;
  readonly timeoutMs: number;
  readonly log: AvailabilityLog;
}

const b64 = (text: string): string => Buffer.from(text).toString("base64");
const unb64 = (text: unknown): string => Buffer.from(String(text), "base64").toString();
/** etcd's JSON gateway writes 64-bit integers as strings and leaves out zeros. */
const int = (v: unknown): number => (v === undefined ? 0 : Number(v));

/** A key as etcd holds it. */
interface EtcdKv {
  readonly value: string;
  readonly modRevision: number;
  readonly version: number;
}

/** An answer, or why there is none: `refused` had no effect, `lost` may have. */
type Reply = { kind: "ok"; body: unknown } | { kind: "refused" | "lost" | "error"; code: string };

/** Thrown inside one operation to end it with a failure. */
class Stop extends Error {
  readonly reply: Exclude<Reply, { kind: "ok" }>;
  constructor(reply: Exclude<Reply, { kind: "ok" }>) {
    super(reply.code);
    this.reply = reply;
  }
}

/** The KV workload's target over etcd's v3 JSON gateway. */
export class EtcdKvTarget implements KvTarget<ServiceKvInput, ServiceKvOutput> {
  readonly #o: EtcdKvTargetOptions;

  /** Creates a target. */
  constructor(options: EtcdKvTargetOptions) {
    this.#o = options;
  }

  submit(
    _clientId: number,
    input: ServiceKvInput,
    done: (result: SubmitResult<ServiceKvOutput>) => void,
    _requestId: string,
  ): void {
    const node = this.#o.prng.below(this.#o.urls.length);
    const base = this.#o.urls[node] ?? "";
    const attempt = this.#o.log.begin(node);
    const deadlineMs = performance.now() + this.#o.timeoutMs;
    const call = async (path: string, body: unknown): Promise<unknown> => {
      const timeoutMs = Math.max(1, Math.floor(deadlineMs - performance.now()));
      const outcome = await httpJson("POST", `${base}/v3/${path}`, { body, timeoutMs });
      if (outcome.kind === "refused")
        throw new Stop({ kind: "refused", code: `refused (${outcome.reason})` });
      if (outcome.kind === "lost") throw new Stop({ kind: "lost", code: `lost (${outcome.reason})` });
      if (outcome.status !== 200) {
        const message =
          field(outcome.body, "message") ?? field(outcome.body, "error") ?? `HTTP ${outcome.status}`;
        throw new Stop({ kind: "error", code: String(message) });
      }
      return outcome.body;
    };
    void run(input, call).then(
      (output) => {
        this.#o.log.end(attempt, "ok");
        done({ kind: "ok", output });
      },
      (error: unknown) => {
        if (!(error instanceof Stop)) throw error;
        const { reply } = error;
        this.#o.log.end(attempt, reply.kind === "lost" ? "timeout" : "error", reply.code);
        // etcd does not say whether a failed write may still commit ("request timed out", "leader
        // changed"): only a refused connection proves it had no effect.
        done(
          reply.kind === "refused"
            ? { kind: "failed", reason: reply.code }
            : { kind: "unknown", reason: reply.code },
        );
      },
    );
  }
}

/** The key's state from a range answer, or undefined when absent. */
function kvOf(rangeAnswer: unknown): EtcdKv | undefined {
  const kvs = field(rangeAnswer, "kvs");
  const first: unknown = Array.isArray(kvs) ? kvs[0] : undefined;
  if (first === undefined) return undefined;
  return {
    value: unb64(field(first, "value") ?? ""),
    modRevision: int(field(first, "mod_revision")),
    version: int(field(first, "version")),
  };
}

const revisionOf = (answer: unknown): number => int(field(field(answer, "header"), "revision"));

/** The first response of a transaction's chosen branch (`response_put`, `response_range`...). */
function branchResponse(answer: unknown, kind: string): unknown {
  const responses = field(answer, "responses");
  return Array.isArray(responses) ? field(responses[0], kind) : undefined;
}

/** Runs one operation as etcd requests. */
async function run(
  input: ServiceKvInput,
  call: (path: string, body: unknown) => Promise<unknown>,
): Promise<ServiceKvOutput> {
  const key = b64(input.key);
  const range = () => call("kv/range", { key });
  /** A put (or delete) that happens only if the key's modify revision is `revision` (0: absent). */
  const guarded = (revision: number, request: Record<string, unknown>) =>
    call("kv/txn", {
      compare: [{ key, target: "MOD", result: "EQUAL", mod_revision: revision }],
      success: [request],
      failure: [{ request_range: { key } }],
    });
  const conflictOf = (answer: unknown): ServiceKvOutput => ({
    kind: "conflict",
    currentRevision: kvOf(branchResponse(answer, "response_range"))?.modRevision ?? null,
  });
  switch (input.op) {
    case "get": {
      const kv = kvOf(await range());
      return kv === undefined
        ? { kind: "value", value: null, version: 0, revision: 0 }
        : { kind: "value", value: kv.value, version: kv.version, revision: kv.modRevision };
    }
    case "put": {
      const answer = await call("kv/put", { key, value: b64(input.value), prev_kv: true });
      return {
        kind: "written",
        revision: revisionOf(answer),
        created: field(answer, "prev_kv") === undefined,
      };
    }
    case "put-if": {
      const required = input.condition.kind === "absent" ? 0 : input.condition.revision;
      const answer = await guarded(required, {
        request_put: { key, value: b64(input.value), prev_kv: true },
      });
      if (field(answer, "succeeded") !== true) return conflictOf(answer);
      const put = branchResponse(answer, "response_put");
      return { kind: "written", revision: revisionOf(answer), created: field(put, "prev_kv") === undefined };
    }
    case "delete": {
      if (input.ifRevision === undefined) {
        const answer = await call("kv/deleterange", { key });
        return { kind: "deleted", deleted: int(field(answer, "deleted")) > 0, revision: revisionOf(answer) };
      }
      const answer = await guarded(input.ifRevision, { request_delete_range: { key } });
      if (field(answer, "succeeded") !== true) return conflictOf(answer);
      const deleted = int(field(branchResponse(answer, "response_delete_range"), "deleted"));
      return { kind: "deleted", deleted: deleted > 0, revision: revisionOf(answer) };
    }
    case "incr": {
      // Read, then swap if nobody wrote in between; a lost race reads again.
      for (;;) {
        const kv = kvOf(await range());
        const base =
          kv === undefined ? 0 : /^-?(0|[1-9][0-9]{0,17})$/.test(kv.value) ? Number(kv.value) : undefined;
        if (base === undefined) return { kind: "not-integer" };
        const value = String(base + input.by);
        const answer = await guarded(kv?.modRevision ?? 0, { request_put: { key, value: b64(value) } });
        if (field(answer, "succeeded") === true)
          return { kind: "incremented", value, revision: revisionOf(answer) };
      }
    }
    default:
      return assertNever(input, "kv input");
  }
}
