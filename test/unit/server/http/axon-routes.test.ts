// Axon's KV routes, requested exactly as its README's curl commands and its dashboard's axios calls
// send them (JSON {"value": "<string>"} bodies, unencoded keys, an Origin header from the dashboard
// page), over a single-replica log through fastify's inject: Axon's status codes and bodies, values
// returned as the stored text, the bounded GET /kv, and CORS for configured origins only.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildHttpApp } from "../../../../src/server/http/index.js";
import { CairnError, KvService } from "../../../../src/service/index.js";
import { LocalReplication } from "../../../support/local-replication.js";

const dashboard = "http://127.0.0.1:8080";

function setup() {
  const log = new LocalReplication();
  const kv = new KvService(log, { rangeLimitMax: 5 });
  const app = buildHttpApp({ kv, readiness: () => ({ ready: true }), corsOrigins: [dashboard] });
  return { log, app };
}

async function call(
  app: ReturnType<typeof setup>["app"],
  method: "GET" | "PUT" | "DELETE" | "OPTIONS",
  url: string,
  body?: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  const response = await app.inject({
    method,
    url,
    headers,
    ...(body !== undefined ? { payload: body } : {}),
  });
  return {
    status: response.statusCode,
    body: response.body === "" ? undefined : (response.json() as unknown),
    headers: response.headers,
  };
}

describe("Axon's /kv routes", () => {
  it("puts, gets and deletes with Axon's bodies, the value exactly as stored", async () => {
    const { app } = setup();
    assert.deepEqual((await call(app, "PUT", "/kv/answer", { value: "42" })).body, { status: "success" });
    assert.deepEqual(await call(app, "GET", "/kv/answer").then((r) => [r.status, r.body]), [
      200,
      { key: "answer", value: "42" },
    ]);
    await call(app, "PUT", "/kv/obj", { value: '{"a": 1}' });
    assert.deepEqual((await call(app, "GET", "/kv/obj")).body, { key: "obj", value: '{"a": 1}' });
    await call(app, "PUT", "/kv/empty", { value: "" });
    assert.deepEqual((await call(app, "GET", "/kv/empty")).body, { key: "empty", value: "" });
    assert.deepEqual((await call(app, "DELETE", "/kv/answer")).body, { status: "success" });
    const gone = await call(app, "GET", "/kv/answer");
    assert.equal(gone.status, 404);
    assert.deepEqual(gone.body, { error: "key not found", code: "ERR_NOT_FOUND" });
  });

  it("refuses a value that is not a string with 400 and an error message", async () => {
    const { app } = setup();
    const answer = await call(app, "PUT", "/kv/n", { value: 42 });
    assert.equal(answer.status, 400);
    assert.equal(typeof (answer.body as { error: unknown }).error, "string");
    assert.equal((await call(app, "GET", "/kv/n")).status, 404);
  });

  it("lists every key as one object of strings, and refuses past one page naming /v1/kv", async () => {
    const { app } = setup();
    await call(app, "PUT", "/kv/a", { value: "1" });
    await call(app, "PUT", "/kv/__proto__", { value: "p" });
    assert.deepEqual((await call(app, "GET", "/kv")).body, { a: "1", ["__proto__"]: "p" });
    for (const key of ["b", "c", "d", "e"]) await call(app, "PUT", `/kv/${key}`, { value: key });
    const full = await call(app, "GET", "/kv");
    assert.equal(full.status, 413);
    assert.match((full.body as { error: string }).error, /\/v1\/kv/);
  });

  it("answers an outage with 503 in Axon's error shape", async () => {
    const { app, log } = setup();
    log.failWith = new CairnError("ERR_UNAVAILABLE", "no leader is known");
    const answer = await call(app, "PUT", "/kv/x", { value: "1" });
    assert.deepEqual(
      [answer.status, answer.body],
      [503, { error: "no leader is known", code: "ERR_UNAVAILABLE" }],
    );
  });

  it("allows the configured dashboard origin, preflight included, and no other", async () => {
    const { app } = setup();
    const preflight = await call(app, "OPTIONS", "/kv/x", undefined, {
      origin: dashboard,
      "access-control-request-method": "PUT",
      "access-control-request-headers": "content-type",
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers["access-control-allow-origin"], dashboard);
    const read = await call(app, "GET", "/kv", undefined, { origin: dashboard });
    assert.equal(read.headers["access-control-allow-origin"], dashboard);
    const stranger = await call(app, "GET", "/kv", undefined, { origin: "http://evil.example" });
    assert.equal(stranger.headers["access-control-allow-origin"], undefined);
  });
});
