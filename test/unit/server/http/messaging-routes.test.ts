// The aiohttp messaging node's routes, requested as its Postman collection and failover client
// send them, over a single-replica log through fastify's inject: the collection's assertions
// (status with node_id and peer_status, heartbeats, /send answering ok with a msg_id that
// /messages then lists, the direct /replicate), msg_id deduplication, paging with `after` and
// filters, the seed's 400 bodies, CORS reflecting any Origin, and the 503 body of an outage.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildHttpApp } from "../../../../src/server/http/index.js";
import { CairnError, KvService, StreamService } from "../../../../src/service/index.js";
import { LocalReplication } from "../../../support/local-replication.js";

type Json = Record<string, unknown>;

function setup() {
  const log = new LocalReplication();
  const app = buildHttpApp({
    kv: new KvService(log),
    streams: new StreamService(log, log.applied),
    nodeName: "n1",
    readiness: () => ({ ready: true }),
  });
  const call = async (method: "GET" | "POST" | "OPTIONS", url: string, body?: Json, headers: Json = {}) => {
    const response = await app.inject({
      method,
      url,
      headers: headers as Record<string, string>,
      ...(body !== undefined ? { payload: body } : {}),
    });
    return {
      status: response.statusCode,
      body: (response.body === "" ? {} : response.json()) as Json,
      headers: response.headers,
    };
  };
  return { log, call };
}

describe("the messaging node's routes", () => {
  it("passes the Postman collection's status, health, send and direct replication checks", async () => {
    const { call } = setup();
    const status = await call("GET", "/status");
    assert.equal(status.status, 200);
    assert.ok("node_id" in status.body && "peer_status" in status.body);
    const beat = await call("GET", "/heartbeat");
    assert.equal(beat.body["status"], "ok");
    assert.equal(beat.body["node_id"], "n1");
    const sent = await call("POST", "/send", {
      sender: "user1",
      recipient: "user2",
      payload: "Hello from Postman test!",
    });
    assert.equal(sent.status, 200);
    assert.equal(sent.body["status"], "ok");
    const msgId = sent.body["msg_id"];
    assert.equal(typeof msgId, "string");
    const listed = (await call("GET", "/messages")).body["messages"] as Json[];
    assert.ok(listed.some((m) => m["msg_id"] === msgId));
    const direct = await call("POST", "/replicate", {
      msg: {
        msg_id: "direct-test-123",
        sender: "system",
        recipient: "all",
        payload: "Direct replication test",
        ts: 1,
      },
    });
    assert.deepEqual([direct.status, direct.body["status"]], [200, "ok"]);
    assert.deepEqual((await call("POST", "/replicate", {})).body, { status: "bad_request" });
  });

  it("answers a retried msg_id with the original, storing it once", async () => {
    const { call } = setup();
    const first = await call("POST", "/send", { msg_id: "m-1", payload: "a" });
    const again = await call("POST", "/send", { msg_id: "m-1", payload: "a" });
    assert.deepEqual(again.body, first.body);
    await call("POST", "/replicate", { msg: { msg_id: "m-1", payload: "a" } });
    assert.equal(((await call("GET", "/messages")).body["messages"] as Json[]).length, 1);
  });

  it("pages with limit and exclusive after, filters by sender and recipient, and refuses bad input", async () => {
    const { call } = setup();
    for (let i = 1; i <= 5; i++) {
      await call("POST", "/send", {
        sender: i % 2 === 0 ? "bob" : "ann",
        recipient: "all",
        payload: `p${i}`,
      });
    }
    const page = await call("GET", "/messages?limit=2&after=1");
    assert.deepEqual(
      (page.body["messages"] as Json[]).map((m) => m["seq"]),
      [2, 3],
    );
    assert.equal(page.body["next_after"], 3);
    const bobs = await call("GET", "/messages?sender=bob");
    assert.deepEqual(
      (bobs.body["messages"] as Json[]).map((m) => m["payload"]),
      ["p2", "p4"],
    );
    assert.deepEqual((await call("GET", "/messages?limit=0")).body, {
      status: "bad_request",
      reason: "limit must be positive integer",
    });
    assert.deepEqual((await call("GET", "/messages?after=x")).body, {
      status: "bad_request",
      reason: "after must be integer",
    });
    const synced = await call("POST", "/sync", { since: 3 });
    assert.deepEqual(
      (synced.body["messages"] as Json[]).map((m) => m["seq"]),
      [4, 5],
    );
  });

  it("answers an outage with the seed's 503 body", async () => {
    const { call, log } = setup();
    log.failWith = new CairnError("ERR_UNAVAILABLE", "no leader");
    const answer = await call("POST", "/send", { payload: "x" });
    assert.deepEqual(
      [answer.status, answer.body],
      [503, { status: "error", reason: "replication quorum not achieved" }],
    );
  });

  it("reflects any Origin and answers a preflight with 204", async () => {
    const { call } = setup();
    const preflight = await call("OPTIONS", "/send", undefined, {
      origin: "http://localhost:5173",
      "access-control-request-method": "POST",
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers["access-control-allow-origin"], "http://localhost:5173");
  });
});
