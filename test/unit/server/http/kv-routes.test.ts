// The HTTP key-value API as a client sees it, through fastify's inject over a single-replica log:
// status codes, the one error body shape, value encodings, conditions, paging, idempotency keys,
// and that bad input gets a stable code and changes nothing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildHttpApp } from "../../../../src/server/http/index.js";
import { CairnError } from "../../../../src/service/errors.js";
import { KvService } from "../../../../src/service/kv/kv-service.js";
import { LocalReplication } from "../../../support/local-replication.js";

function setup(limits?: Partial<KvService["limits"]>) {
  const log = new LocalReplication();
  const kv = new KvService(log, {
    keyBytesMax: 64,
    valueBytesMax: 1024,
    rangeLimitMax: 50,
    ttlMsMax: 10_000,
    ...limits,
  });
  const app = buildHttpApp({ kv, readiness: () => ({ ready: true }), version: "test" });
  return { log, app };
}

type Json = Record<string, unknown>;
async function call(
  app: ReturnType<typeof setup>["app"],
  method: "GET" | "PUT" | "PATCH" | "DELETE" | "POST",
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const response = await app.inject({
    method,
    url,
    headers,
    ...(body !== undefined ? { payload: body as Json } : {}),
  });
  return { status: response.statusCode, body: response.json() as Json };
}

describe("HTTP /v1/kv", () => {
  it("puts and gets a value, with revisions", async () => {
    const { app } = setup();
    assert.deepEqual(await call(app, "PUT", "/v1/kv/greeting", { value: "hello" }), {
      status: 200,
      body: { revision: 1, created: true, duplicate: false },
    });
    const got = await call(app, "GET", "/v1/kv/greeting");
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, {
      key: "greeting",
      value: "hello",
      encoding: "utf8",
      revision: 1,
      createRevision: 1,
      version: 1,
      groupRevision: 1,
    });
  });

  it("takes keys with slashes and escaped characters verbatim", async () => {
    const { app } = setup();
    await call(app, "PUT", "/v1/kv/app/config/%C3%A9t%C3%A9", { value: "x" });
    const got = await call(app, "GET", "/v1/kv/app/config/%C3%A9t%C3%A9");
    assert.equal(got.body["key"], "app/config/été");
  });

  it("answers a missing key with 404 and the error body shape", async () => {
    const { app } = setup();
    const got = await call(app, "GET", "/v1/kv/nope");
    assert.equal(got.status, 404);
    assert.deepEqual(got.body, { error: { code: "ERR_NOT_FOUND", message: "key not found", revision: 0 } });
  });

  it("round-trips binary values through base64 and returns non-UTF-8 as base64", async () => {
    const { app } = setup();
    const bytes = Buffer.from([0xff, 0x00, 0xfe]).toString("base64");
    await call(app, "PUT", "/v1/kv/bin", { value: bytes, encoding: "base64" });
    const got = await call(app, "GET", "/v1/kv/bin");
    assert.equal(got.body["encoding"], "base64");
    assert.equal(got.body["value"], bytes);
    const asked = await call(app, "GET", "/v1/kv/bin?encoding=base64");
    assert.equal(asked.body["value"], bytes);
  });

  it("refuses a failed condition with 409 ERR_CONFLICT and the current revision", async () => {
    const { app } = setup();
    await call(app, "PUT", "/v1/kv/a", { value: "1" });
    const absent = await call(app, "PUT", "/v1/kv/a", { value: "2", ifAbsent: true });
    assert.equal(absent.status, 409);
    assert.deepEqual(absent.body, {
      error: { code: "ERR_CONFLICT", message: "key exists", currentRevision: 1 },
    });
    assert.equal((await call(app, "PUT", "/v1/kv/a", { value: "3", ifRevision: 1 })).status, 200);
    assert.equal((await call(app, "GET", "/v1/kv/a")).body["value"], "3");
  });

  it("deletes, conditionally too", async () => {
    const { app } = setup();
    await call(app, "PUT", "/v1/kv/a", { value: "1" });
    assert.equal((await call(app, "DELETE", "/v1/kv/a?ifRevision=5")).status, 409);
    assert.deepEqual((await call(app, "DELETE", "/v1/kv/a?ifRevision=1")).body, {
      revision: 2,
      deleted: true,
      duplicate: false,
    });
    assert.equal((await call(app, "GET", "/v1/kv/a")).status, 404);
    assert.equal((await call(app, "DELETE", "/v1/kv/a")).body["deleted"], false);
  });

  it("increments integers with PATCH and refuses non-integers with ERR_NOT_INTEGER", async () => {
    const { app } = setup();
    assert.equal((await call(app, "PATCH", "/v1/kv/n", { increment: 5 })).body["value"], "5");
    assert.equal((await call(app, "PATCH", "/v1/kv/n", { increment: "-9" })).body["value"], "-4");
    await call(app, "PUT", "/v1/kv/s", { value: "abc" });
    const bad = await call(app, "PATCH", "/v1/kv/s", { increment: 1 });
    assert.equal(bad.status, 409);
    assert.equal((bad.body["error"] as Json)["code"], "ERR_NOT_INTEGER");
  });

  it("lists by prefix one page at a time", async () => {
    const { app } = setup();
    for (const k of ["a/1", "a/2", "a/3", "b/1"]) await call(app, "PUT", `/v1/kv/${k}`, { value: k });
    const first = await call(app, "GET", "/v1/kv?prefix=a/&limit=2");
    assert.deepEqual(
      (first.body["items"] as Json[]).map((i) => i["key"]),
      ["a/1", "a/2"],
    );
    assert.equal(typeof first.body["next"], "string");
    const second = await call(app, "GET", `/v1/kv?prefix=a/&limit=2&after=${String(first.body["next"])}`);
    assert.deepEqual(
      (second.body["items"] as Json[]).map((i) => i["key"]),
      ["a/3"],
    );
    assert.equal(second.body["next"], null);
  });

  it("bounds a range page by bytes as well as by count, and pages on past the bound", async () => {
    const { app } = setup({ rangeBytesMax: 700 });
    const value = "v".repeat(300);
    for (const k of ["a/1", "a/2", "a/3", "a/4", "a/5"]) await call(app, "PUT", `/v1/kv/${k}`, { value });
    const keys: unknown[] = [];
    let after = "";
    for (let page = 0; page < 5; page++) {
      const got = await call(app, "GET", `/v1/kv?prefix=a/&limit=50${after}`);
      const items = got.body["items"] as Json[];
      // Two keys of 303 bytes fit in 700; a third would not.
      assert.ok(items.length <= 2);
      keys.push(...items.map((i) => i["key"]));
      if (got.body["next"] === null) break;
      after = `&after=${String(got.body["next"])}`;
    }
    assert.deepEqual(keys, ["a/1", "a/2", "a/3", "a/4", "a/5"]);
    // A key larger than the bound on its own still makes a page of one.
    const big = setup({ rangeBytesMax: 10 });
    await call(big.app, "PUT", "/v1/kv/k", { value });
    const one = await call(big.app, "GET", "/v1/kv?prefix=");
    assert.deepEqual(
      (one.body["items"] as Json[]).map((i) => i["key"]),
      ["k"],
    );
  });

  it("answers a retried write with the same Idempotency-Key from the first try", async () => {
    const { app } = setup();
    const headers = { "idempotency-key": "req-1" };
    const first = await call(app, "PUT", "/v1/kv/a", { value: "1" }, headers);
    const retry = await call(app, "PUT", "/v1/kv/a", { value: "1" }, headers);
    assert.deepEqual(retry.body, { ...first.body, duplicate: true });
    const reused = await call(app, "PUT", "/v1/kv/a", { value: "other" }, headers);
    assert.equal(reused.status, 422);
    assert.equal((reused.body["error"] as Json)["code"], "ERR_IDEMPOTENCY_KEY_REUSED");
    assert.equal((await call(app, "GET", "/v1/kv/a")).body["version"], 1);
  });

  it("waits for every voter on Cairn-Write-Concern: all, and refuses another value changing nothing", async () => {
    const { app, log } = setup();
    await call(app, "PUT", "/v1/kv/a", { value: "1" }, { "cairn-write-concern": "all" });
    await call(app, "PATCH", "/v1/kv/n", { increment: 1 }, { "cairn-write-concern": "all" });
    await call(app, "DELETE", "/v1/kv/n", undefined, { "cairn-write-concern": "all" });
    await call(app, "PUT", "/v1/kv/b", { value: "2" }, { "cairn-write-concern": "majority" });
    await call(app, "PUT", "/v1/kv/c", { value: "3" });
    assert.deepEqual(log.writeConcerns, ["all", "all", "all", "majority", "majority"]);
    const bad = await call(app, "PUT", "/v1/kv/d", { value: "4" }, { "cairn-write-concern": "ALL!" });
    assert.equal(bad.status, 400);
    assert.match(
      String((bad.body["error"] as Json)["message"]),
      /Cairn-Write-Concern must be one of majority, all/,
    );
    assert.equal((await call(app, "GET", "/v1/kv/d")).status, 404);
    log.failWith = new CairnError("ERR_WRITE_CONCERN", "the write is durable on 2 of 3 voting members", {
      votersWithEntry: 2,
      voters: 3,
    });
    const partial = await call(app, "PUT", "/v1/kv/e", { value: "5" }, { "cairn-write-concern": "all" });
    assert.deepEqual(partial, {
      status: 504,
      body: {
        error: {
          code: "ERR_WRITE_CONCERN",
          message: "the write is durable on 2 of 3 voting members",
          votersWithEntry: 2,
          voters: 3,
        },
      },
    });
  });

  it("serves stale reads with how far behind they may be", async () => {
    const { app } = setup();
    await call(app, "PUT", "/v1/kv/a", { value: "1" });
    const got = await call(app, "GET", "/v1/kv/a?consistency=stale");
    assert.deepEqual(got.body["staleness"], { appliedIndex: 1, leaderContactAgeMs: 0 });
  });

  it("says how far behind a stale page of keys may be, and only for a stale read", async () => {
    const { app, log } = setup();
    await call(app, "PUT", "/v1/kv/a", { value: "1" });
    await call(app, "PUT", "/v1/kv/b", { value: "2" });
    log.leaderContactAgeMs = 1234;
    const page = await call(app, "GET", "/v1/kv?prefix=&consistency=stale");
    assert.equal(page.status, 200);
    assert.equal((page.body["items"] as Json[]).length, 2);
    assert.deepEqual(page.body["staleness"], { appliedIndex: 2, leaderContactAgeMs: 1234 });
    log.leaderContactAgeMs = null;
    const never = await call(app, "GET", "/v1/kv?prefix=&consistency=stale");
    assert.deepEqual(
      never.body["staleness"],
      { appliedIndex: 2, leaderContactAgeMs: null },
      "never in contact",
    );
    assert.equal((await call(app, "GET", "/v1/kv?prefix=")).body["staleness"], undefined);
  });
});

describe("HTTP /v1/kv: bad input gets a stable code and changes nothing", () => {
  const cases: [string, "PUT" | "GET" | "PATCH", string, unknown, number, string][] = [
    ["malformed JSON", "PUT", "/v1/kv/a", "{not json", 400, "ERR_BAD_REQUEST"],
    ["a missing value", "PUT", "/v1/kv/a", {}, 400, "ERR_BAD_REQUEST"],
    ["an unknown field", "PUT", "/v1/kv/a", { value: "x", colour: "red" }, 400, "ERR_BAD_REQUEST"],
    ["a wrong type", "PUT", "/v1/kv/a", { value: 5 }, 400, "ERR_BAD_REQUEST"],
    ["bad base64", "PUT", "/v1/kv/a", { value: "***", encoding: "base64" }, 400, "ERR_BAD_REQUEST"],
    ["a value over the limit", "PUT", "/v1/kv/a", { value: "x".repeat(1025) }, 413, "ERR_TOO_LARGE"],
    ["a key over the limit", "PUT", `/v1/kv/${"k".repeat(65)}`, { value: "x" }, 413, "ERR_TOO_LARGE"],
    ["a zero ttl", "PUT", "/v1/kv/a", { value: "x", ttlMs: 0 }, 400, "ERR_BAD_REQUEST"],
    ["a ttl over the limit", "PUT", "/v1/kv/a", { value: "x", ttlMs: 10_001 }, 400, "ERR_BAD_REQUEST"],
    ["a negative ifRevision", "PUT", "/v1/kv/a", { value: "x", ifRevision: -1 }, 400, "ERR_BAD_REQUEST"],
    ["a non-numeric increment", "PATCH", "/v1/kv/a", { increment: "1e5" }, 400, "ERR_BAD_REQUEST"],
    ["a bad consistency", "GET", "/v1/kv/a?consistency=eventual", undefined, 400, "ERR_BAD_REQUEST"],
    ["a bad page token", "GET", "/v1/kv?after=%%%", undefined, 400, "ERR_BAD_REQUEST"],
    ["prefix with start", "GET", "/v1/kv?prefix=a&start=b", undefined, 400, "ERR_BAD_REQUEST"],
    ["an unknown route", "GET", "/v2/nothing", undefined, 404, "ERR_NOT_FOUND"],
  ];
  for (const [what, method, url, body, status, code] of cases) {
    it(`${what} -> ${status} ${code}`, async () => {
      const { app, log } = setup();
      const response = await app.inject({
        method,
        url,
        ...(typeof body === "string"
          ? { payload: body, headers: { "content-type": "application/json" } }
          : body !== undefined
            ? { payload: body as Json }
            : {}),
      });
      assert.equal(response.statusCode, status, response.body);
      const parsed = response.json() as { error: { code: string; message: string } };
      assert.equal(parsed.error.code, code);
      assert.equal(typeof parsed.error.message, "string");
      assert.equal(log.appliedIndex, 0, "nothing was proposed");
    });
  }

  it("maps a replication failure to its code (ERR_NOT_LEADER -> 421, ERR_UNAVAILABLE -> 503)", async () => {
    const { app, log } = setup();
    log.failWith = new CairnError("ERR_NOT_LEADER", "not the leader", { leaderId: 2 });
    const response = await call(app, "PUT", "/v1/kv/a", { value: "x" });
    assert.deepEqual(response, {
      status: 421,
      body: { error: { code: "ERR_NOT_LEADER", message: "not the leader", leaderId: 2 } },
    });
    log.failWith = new CairnError("ERR_UNAVAILABLE", "no quorum");
    assert.equal((await call(app, "GET", "/v1/kv/a")).status, 503);
  });
});

describe("HTTP health and OpenAPI", () => {
  it("reports live and ready", async () => {
    const log = new LocalReplication();
    let ready = false;
    const app = buildHttpApp({ kv: new KvService(log), readiness: () => ({ ready, reason: "no leader" }) });
    assert.equal((await call(app, "GET", "/health/live")).status, 200);
    assert.deepEqual(await call(app, "GET", "/health/ready"), {
      status: 503,
      body: { status: "not-ready", reason: "no leader" },
    });
    ready = true;
    assert.equal((await call(app, "GET", "/health/ready")).status, 200);
  });

  it("serves an OpenAPI 3.1 document describing the key-value routes", async () => {
    const { app } = setup();
    const doc = (await call(app, "GET", "/v1/openapi.json")).body as {
      openapi: string;
      paths: Record<string, Json>;
    };
    assert.equal(doc.openapi, "3.1.0");
    assert.deepEqual(Object.keys(doc.paths["/v1/kv/{key}"] ?? {}).sort(), ["delete", "get", "patch", "put"]);
    assert.ok(doc.paths["/v1/kv"]?.["get"] !== undefined);
  });
});
