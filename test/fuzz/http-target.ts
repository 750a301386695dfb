// Fuzzes the HTTP API: every route of the KV, stream, consumer-group, cluster and auth families
// (and the seed-compatible ones), with random and mutated path parameters, query strings, headers
// and JSON bodies. Any answer of 5xx, or a 4xx without the one error body `{"error": {"code"}}`,
// is a finding.
import fc from "fast-check";
import type { FuzzEndpoints } from "./live-node.js";
import { fuzzString, interestingNumbers, mutated, preview, utf8 } from "./mutate.js";
import { type Outcome, target } from "./target.js";

/** Route templates, `{name}` standing for a path parameter (docs/api.md, src/server/http). */
const routes: readonly { readonly method: string; readonly path: string }[] = [
  { method: "GET", path: "/v1/kv/{key}" },
  { method: "PUT", path: "/v1/kv/{key}" },
  { method: "DELETE", path: "/v1/kv/{key}" },
  { method: "GET", path: "/v1/kv" },
  { method: "POST", path: "/v1/streams" },
  { method: "GET", path: "/v1/streams" },
  { method: "GET", path: "/v1/streams/{name}" },
  { method: "DELETE", path: "/v1/streams/{name}" },
  { method: "PATCH", path: "/v1/streams/{name}" },
  { method: "PATCH", path: "/v1/streams/{name}/groups/{group}" },
  { method: "POST", path: "/v1/streams/{name}/messages" },
  { method: "GET", path: "/v1/streams/{name}/messages" },
  { method: "GET", path: "/v1/streams/{name}/messages/{seq}" },
  { method: "DELETE", path: "/v1/streams/{name}/messages/{seq}" },
  { method: "GET", path: "/v1/streams/{name}/events" },
  { method: "POST", path: "/v1/streams/{name}/groups" },
  { method: "GET", path: "/v1/streams/{name}/groups" },
  { method: "GET", path: "/v1/streams/{name}/groups/{group}" },
  { method: "DELETE", path: "/v1/streams/{name}/groups/{group}" },
  { method: "POST", path: "/v1/streams/{name}/groups/{group}/fetch" },
  { method: "POST", path: "/v1/streams/{name}/groups/{group}/ack" },
  { method: "POST", path: "/v1/streams/{name}/groups/{group}/nack" },
  { method: "POST", path: "/v1/streams/{name}/groups/{group}/extend" },
  { method: "POST", path: "/v1/streams/{name}/groups/{group}/term" },
  { method: "GET", path: "/v1/cluster" },
  { method: "POST", path: "/v1/cluster/members" },
  { method: "DELETE", path: "/v1/cluster/members/{id}" },
  { method: "POST", path: "/v1/cluster/leader" },
  { method: "GET", path: "/v1/metrics" },
  { method: "PUT", path: "/v1/auth/roles/{name}" },
  { method: "PUT", path: "/v1/auth/roles/{name}/rate" },
  { method: "GET", path: "/v1/auth/roles" },
  { method: "DELETE", path: "/v1/auth/roles/{name}" },
  { method: "POST", path: "/v1/auth/tokens" },
  { method: "GET", path: "/v1/auth/tokens" },
  { method: "DELETE", path: "/v1/auth/tokens/{id}" },
  { method: "POST", path: "/v1/auth/enable" },
  { method: "POST", path: "/v1/auth/disable" },
  { method: "GET", path: "/v1/auth/whoami" },
  { method: "GET", path: "/kv/{key}" },
  { method: "PUT", path: "/kv/{key}" },
  { method: "DELETE", path: "/kv/{key}" },
  { method: "GET", path: "/kv" },
  { method: "POST", path: "/send" },
  { method: "GET", path: "/messages" },
  { method: "GET", path: "/status" },
  { method: "POST", path: "/sync" },
  { method: "POST", path: "/replicate" },
  { method: "GET", path: "/heartbeat" },
  { method: "GET", path: "/health/ready" },
];

/** Field names the API's bodies and query strings use: a body built from them reaches validation. */
const fieldNames = [
  "value",
  "ifRevision",
  "ifAbsent",
  "ttlMs",
  "encoding",
  "name",
  "maxMessages",
  "maxBytes",
  "maxAgeMs",
  "discard",
  "maxMessageBytes",
  "duplicateWindowMs",
  "payload",
  "headers",
  "key",
  "id",
  "expectedLastSeq",
  "messages",
  "group",
  "startAt",
  "startSeq",
  "startTimeMs",
  "ackWaitMs",
  "maxDeliveries",
  "consumer",
  "max",
  "waitMs",
  "seqs",
  "delayMs",
  "minIdleMs",
  "peerAddress",
  "transferTo",
  "grants",
  "role",
  "requestsPerSecond",
  "burst",
  "by",
  "compare",
  "success",
  "failure",
  "writeConcern",
  "content",
  "message",
  "client_id",
  "write_concern",
];
const queryNames = [
  "prefix",
  "limit",
  "after",
  "from",
  "to",
  "waitMs",
  "consistency",
  "ifRevision",
  "start",
  "end",
  "max",
  "consumer",
];

const jsonScalar: fc.Arbitrary<unknown> = fc.oneof(
  fuzzString,
  fc.integer(),
  fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, 0.5, -0.0),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(
    "first",
    "last",
    "new",
    "drop-oldest",
    "reject-new",
    "base64",
    "utf8",
    "stale",
    "linearizable",
    "all",
  ),
);

const jsonValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    jsonScalar,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.constantFrom(...fieldNames), fuzzString), tie("value"), { maxKeys: 4 }),
  ),
})).value;

/** A body object of API field names with fuzzed values. */
const bodyObject = fc.dictionary(fc.constantFrom(...fieldNames), jsonValue, { maxKeys: 6 });

/** A body as bytes: a JSON object, sometimes mutated, sometimes not JSON at all. */
const body: fc.Arbitrary<Uint8Array | undefined> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 5, arbitrary: bodyObject.map((o) => utf8(JSON.stringify(o))) },
  { weight: 3, arbitrary: mutated(bodyObject.map((o) => utf8(JSON.stringify(o)))) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("", "null", "[]", '"x"', "1", "{", '{"value":', "{}".repeat(3)).map(utf8),
  },
);

const pathParam: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("known/k0", "known.s1", "known-g", "grpc-messages", "1", "3", "fuzz", "admin"),
  fuzzString,
  fc.constantFrom(...interestingNumbers),
);

/** One HTTP request. */
interface HttpInput {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly contentType: string | undefined;
  readonly extraHeaders: Readonly<Record<string, string>>;
  readonly body: Uint8Array | undefined;
  readonly token: "fuzz" | "none" | "garbage";
}

const httpInput: fc.Arbitrary<HttpInput> = fc
  .record({
    route: fc.constantFrom(...routes),
    otherMethod: fc.option(fc.constantFrom("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD"), {
      freq: 8,
    }),
    params: fc.array(pathParam, { minLength: 3, maxLength: 3 }),
    query: fc.array(fc.tuple(fc.oneof(fc.constantFrom(...queryNames), fuzzString), jsonScalar), {
      maxLength: 3,
    }),
    contentType: fc.option(
      fc.constantFrom(
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin1",
        "multipart/form-data; boundary=x",
      ),
      { freq: 5 },
    ),
    idempotencyKey: fc.option(fuzzString, { freq: 6 }),
    writeConcern: fc.option(fc.constantFrom("all", "majority", "ALL", "none", ""), { freq: 4 }),
    body,
    token: fc.constantFrom(
      "fuzz" as const,
      "fuzz" as const,
      "fuzz" as const,
      "none" as const,
      "garbage" as const,
    ),
  })
  .map((r) => {
    let i = 0;
    const path = r.route.path.replace(/\{[a-z]+\}/g, () => encodeURIComponent(r.params[i++] ?? ""));
    const query = r.query
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join("&");
    const extraHeaders: Record<string, string> = {};
    if (r.idempotencyKey !== null) extraHeaders["idempotency-key"] = encodeURIComponent(r.idempotencyKey);
    if (r.writeConcern !== null) extraHeaders["cairn-write-concern"] = r.writeConcern;
    return {
      method: r.otherMethod ?? r.route.method,
      path,
      query,
      contentType: r.body === undefined ? undefined : (r.contentType ?? "application/json"),
      extraHeaders,
      body: r.body,
      token: r.token,
    };
  });

function describe(input: HttpInput): string {
  return `${input.method} ${input.path}${input.query === "" ? "" : `?${input.query}`} content-type ${input.contentType ?? "-"} body ${input.body === undefined ? "-" : preview(input.body)}`;
}

async function send(endpoints: FuzzEndpoints, input: HttpInput): Promise<Outcome> {
  const headers: Record<string, string> = { ...input.extraHeaders };
  if (input.token === "fuzz") headers["authorization"] = `Bearer ${endpoints.token}`;
  if (input.token === "garbage") headers["authorization"] = `Bearer ct_${endpoints.token.slice(3, 20)}`;
  if (input.contentType !== undefined) headers["content-type"] = input.contentType;
  const url = `${endpoints.httpUrl}${input.path}${input.query === "" ? "" : `?${input.query}`}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: input.method,
      headers,
      signal: AbortSignal.timeout(15_000),
      ...(input.body !== undefined && input.method !== "GET" && input.method !== "HEAD"
        ? { body: input.body }
        : {}),
    });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
    return {
      kind: "finding",
      what: `no answer (${error instanceof Error ? error.message : String(error)}${cause}) to ${describe(input)}`,
    };
  }
  if (input.path.endsWith("/events") && response.ok) {
    await response.body?.cancel();
    return { kind: "served" };
  }
  const text = await response.text();
  if (response.status < 400) return { kind: "served" };
  let code: unknown;
  try {
    // The one error body; the seed-compatible routes answer in their seed's shapes (docs/compatibility.md):
    // Axon's {"error": "...", "code"}, the messaging node's {"status": "bad_request", "reason"}.
    const parsed = JSON.parse(text) as { error?: { code?: unknown }; code?: unknown; status?: unknown };
    code = typeof parsed.error === "object" ? parsed.error.code : parsed.code;
    if (code === undefined && !input.path.startsWith("/v1/") && typeof parsed.status === "string")
      code = `status ${parsed.status}`;
  } catch {
    code = undefined;
  }
  if (response.status >= 500 || code === "ERR_INTERNAL")
    return { kind: "finding", what: `${response.status} ${text.slice(0, 500)} for ${describe(input)}` };
  if (typeof code !== "string" && input.method !== "HEAD")
    return {
      kind: "finding",
      what: `${response.status} without an error code: ${text.slice(0, 300)} for ${describe(input)}`,
    };
  return { kind: "refused", code: `${response.status} ${typeof code === "string" ? code : "(HEAD)"}` };
}

/** The HTTP target. */
export const httpTarget = target("http", httpInput, send, 4);
