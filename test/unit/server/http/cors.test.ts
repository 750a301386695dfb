// CORS as a browser meets it, through fastify's inject: which origins get
// Access-Control-Allow-Origin on which routes, what a preflight answers (and what is not a
// preflight), and the Vary: Origin that keeps a cache from serving one origin's answer to another.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildHttpApp } from "../../../../src/server/http/index.js";
import { ApplyNotifier, KvService, StreamService } from "../../../../src/service/index.js";
import { LocalReplication } from "../../../support/local-replication.js";

const dashboard = "http://127.0.0.1:8080";

function setup(corsOrigins?: readonly string[]) {
  const log = new LocalReplication();
  const app = buildHttpApp({
    kv: new KvService(log),
    streams: new StreamService(log, new ApplyNotifier()),
    readiness: () => ({ ready: true }),
    ...(corsOrigins !== undefined ? { corsOrigins } : {}),
  });
  return async (method: "GET" | "OPTIONS", url: string, headers: Record<string, string> = {}) => {
    const response = await app.inject({ method, url, headers });
    return { status: response.statusCode, headers: response.headers, body: response.body };
  };
}

const preflight = (origin: string, method = "PUT") => ({
  origin,
  "access-control-request-method": method,
  "access-control-request-headers": "content-type",
});

describe("CORS", () => {
  it("allows a configured origin on the API, with the preflight's methods, headers and max age", async () => {
    const call = setup([dashboard]);
    const answer = await call("OPTIONS", "/v1/kv/a", preflight(dashboard));
    assert.equal(answer.status, 204);
    assert.equal(answer.headers["access-control-allow-origin"], dashboard);
    assert.equal(answer.headers["access-control-allow-methods"], "GET, HEAD, PUT, POST, DELETE, OPTIONS");
    assert.equal(
      answer.headers["access-control-allow-headers"],
      "content-type, idempotency-key, cairn-write-concern, authorization",
    );
    assert.equal(answer.headers["access-control-max-age"], "600");
    assert.equal(answer.headers["content-length"], "0");
    const read = await call("GET", "/health/live", { origin: dashboard });
    assert.equal(read.status, 200);
    assert.equal(read.headers["access-control-allow-origin"], dashboard);
  });

  it("gives another origin no CORS headers, and its preflight is not found", async () => {
    const call = setup([dashboard]);
    const read = await call("GET", "/health/live", { origin: "http://evil.example" });
    assert.equal(read.status, 200);
    assert.equal(read.headers["access-control-allow-origin"], undefined);
    const answer = await call("OPTIONS", "/v1/kv/a", preflight("http://evil.example"));
    assert.equal(answer.status, 404);
    assert.equal(answer.headers["access-control-allow-origin"], undefined);
    assert.equal((JSON.parse(answer.body) as { error: { code: string } }).error.code, "ERR_NOT_FOUND");
  });

  it("allows no origin on the API by default, and any with *", async () => {
    const closed = await setup()("GET", "/health/live", { origin: dashboard });
    assert.equal(closed.headers["access-control-allow-origin"], undefined);
    const open = await setup(["*"])("GET", "/health/live", { origin: "http://any.example" });
    assert.equal(open.headers["access-control-allow-origin"], "http://any.example");
  });

  it("reflects any origin on the messaging routes, with a query string too", async () => {
    const call = setup();
    const read = await call("GET", "/heartbeat?x=1", { origin: "http://localhost:5173" });
    assert.equal(read.headers["access-control-allow-origin"], "http://localhost:5173");
    const answer = await call("OPTIONS", "/messages?limit=5", preflight("http://localhost:5173", "GET"));
    assert.equal(answer.status, 204);
    assert.equal(answer.headers["access-control-allow-origin"], "http://localhost:5173");
  });

  it("refuses an allowed origin's OPTIONS without Access-Control-Request-Method as no preflight", async () => {
    const answer = await setup([dashboard])("OPTIONS", "/v1/kv/a", { origin: dashboard });
    assert.equal(answer.status, 400);
    assert.equal(answer.body, "Invalid Preflight Request");
  });

  it("answers OPTIONS without an Origin as an unknown route", async () => {
    const answer = await setup([dashboard])("OPTIONS", "/v1/kv/a");
    assert.equal(answer.status, 404);
  });

  it("gives the server-sent events of a live tail the same CORS headers as every other route", async () => {
    const log = new LocalReplication();
    const streams = new StreamService(log, log.applied);
    await streams.append("tail", { payload: new TextEncoder().encode("m"), createIfMissing: {} });
    const app = buildHttpApp({
      kv: new KvService(log),
      streams,
      readiness: () => ({ ready: true }),
      corsOrigins: [dashboard],
    });
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      const open = async (origin: string) => {
        const controller = new AbortController();
        const response = await fetch(`${url}/v1/streams/tail/events`, {
          headers: { origin },
          signal: controller.signal,
        });
        controller.abort();
        return response.headers;
      };
      const allowed = await open(dashboard);
      assert.equal(allowed.get("content-type"), "text/event-stream; charset=utf-8");
      assert.equal(allowed.get("access-control-allow-origin"), dashboard);
      assert.equal(allowed.get("vary"), "Origin");
      const other = await open("http://evil.example");
      assert.equal(other.get("access-control-allow-origin"), null);
      assert.equal(other.get("vary"), "Origin");
    } finally {
      await app.close();
    }
  });

  it("marks every answer as varying by Origin, with or without one", async () => {
    const call = setup([dashboard]);
    assert.equal((await call("GET", "/health/live")).headers["vary"], "Origin");
    assert.equal((await call("GET", "/health/live", { origin: dashboard })).headers["vary"], "Origin");
    assert.equal((await call("GET", "/v1/kv/missing")).headers["vary"], "Origin");
  });
});
