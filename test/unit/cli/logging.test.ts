// The node's log as an operator reads it: JSON lines with level, time, node, component and message;
// an error's stack in the entry; the level setting; lines for people in pretty format; and an HTTP
// request that fails with a bug logged once with its stack and the request id the client was given.
// The logger writes to a capturing destination; the HTTP app runs through fastify's inject.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createNodeLogger, type LogFormat } from "../../../src/cli/logging.js";
import { buildHttpApp } from "../../../src/server/http/index.js";
import { KvService } from "../../../src/service/kv/kv-service.js";
import type { LogLevel } from "../../../src/util/index.js";
import { LocalReplication } from "../../support/local-replication.js";

function capture(level: LogLevel = "info", format: LogFormat = "json") {
  const lines: string[] = [];
  const made = createNodeLogger({
    node: "n1",
    level,
    format,
    destination: { write: (text) => lines.push(...text.split("\n").filter((l) => l !== "")), isTTY: false },
  });
  return { ...made, lines, entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("node logging", () => {
  it("writes JSON lines with level, time, node, component and message", () => {
    const { logger, entries } = capture();
    logger.child({ component: "raft" }).info("role leader, leader 1", { role: "leader" });
    const [entry] = entries();
    assert.equal(entry?.["level"], "info");
    assert.equal(entry?.["node"], "n1");
    assert.equal(entry?.["component"], "raft");
    assert.equal(entry?.["msg"], "role leader, leader 1");
    assert.equal(entry?.["role"], "leader");
    assert.ok(!Number.isNaN(Date.parse(String(entry?.["time"]))), "an ISO time");
  });

  it("logs an error field with its stack", () => {
    const { logger, entries } = capture();
    logger.error("internal error", { err: new TypeError("planted") });
    const err = entries()[0]?.["err"] as Record<string, unknown> | undefined;
    assert.equal(err?.["type"], "TypeError");
    assert.match(String(err?.["stack"]), /TypeError: planted\n\s+at /);
  });

  it("drops entries below the level", () => {
    const { logger, entries } = capture("warn");
    logger.info("not written");
    logger.debug("not written either");
    logger.warn("written");
    assert.deepEqual(
      entries().map((e) => e["msg"]),
      ["written"],
    );
  });

  it("writes lines for people in pretty format, the stack under the line", () => {
    const { logger, lines } = capture("info", "pretty");
    logger.child({ component: "redis" }).error("internal error in GET", { err: new Error("planted") });
    assert.match(lines[0] ?? "", /^\d{4}-\d\d-\d\dT\S+ ERROR \[n1 redis\] internal error in GET$/);
    assert.match(lines[1] ?? "", /^Error: planted$/);
    assert.match(lines[2] ?? "", /^\s+at /);
  });

  it("logs an HTTP 500 with its stack and the request id the client got", async () => {
    const { pino, entries } = capture();
    const log = new LocalReplication();
    const kv = new KvService(log);
    const app = buildHttpApp({
      kv,
      readiness: () => ({ ready: true }),
      logger: pino.child({ component: "http" }),
    });
    log.failWith = new TypeError("planted: not a CairnError");
    const response = await app.inject({ method: "PUT", url: "/v1/kv/a", payload: { value: "x" } });
    log.failWith = undefined;
    assert.equal(response.statusCode, 500);
    const requestId = response.headers["x-request-id"];
    assert.equal(typeof requestId, "string");
    const errors = entries().filter((e) => e["level"] === "error");
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.["component"], "http");
    assert.equal(errors[0]?.["reqId"], requestId);
    assert.match(JSON.stringify(errors[0]?.["err"]), /TypeError: planted/);
    // A caller's own request id is kept.
    const named = await app.inject({ method: "GET", url: "/v1/kv/a", headers: { "x-request-id": "abc-1" } });
    assert.equal(named.headers["x-request-id"], "abc-1");
    await app.close();
  });
});
