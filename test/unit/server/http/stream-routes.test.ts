// The HTTP streams and consumer-group API as a client sees it, over a single-replica log: status
// codes and the one error body, payload encodings, dedupe by message id, conditional appends,
// long-polls and fetch waits woken by appends, server-sent events resumed with Last-Event-ID,
// every consumer transition, limits, and the compatibility routes of the seed systems.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildHttpApp } from "../../../../src/server/http/index.js";
import { ApplyNotifier } from "../../../../src/service/apply-notifier.js";
import { KvService } from "../../../../src/service/kv-service.js";
import { defaultStreamLimits, StreamService } from "../../../../src/service/stream-service.js";
import { LocalReplication } from "../../../support/local-replication.js";

function setup(limits: Partial<StreamService["limits"]> = {}) {
  const log = new LocalReplication();
  const kv = new KvService(log);
  const streams = new StreamService(log, log.applied, { ...defaultStreamLimits, ...limits });
  const app = buildHttpApp({ kv, streams, readiness: () => ({ ready: true }), version: "test" });
  return { log, app, streams };
}

type Json = Record<string, unknown>;
type App = ReturnType<typeof setup>["app"];
async function call(
  app: App,
  method: "GET" | "PUT" | "DELETE" | "POST",
  url: string,
  body?: unknown,
  headers = {},
) {
  const response = await app.inject({
    method,
    url,
    headers,
    ...(body !== undefined ? { payload: body as Json } : {}),
  });
  return { status: response.statusCode, body: response.json() as Json };
}

async function send(app: App, stream: string, payload: string, extra: Json = {}) {
  return call(app, "POST", `/v1/streams/${stream}/messages`, { payload, ...extra });
}

describe("HTTP /v1/streams", () => {
  it("creates, lists, describes and deletes streams", async () => {
    const { app } = setup();
    const created = await call(app, "POST", "/v1/streams", { name: "orders", maxMessages: 100 });
    assert.equal(created.status, 200);
    assert.equal(created.body["created"], true);
    assert.equal(
      (await call(app, "POST", "/v1/streams", { name: "orders", maxMessages: 100 })).body["created"],
      false,
    );
    const conflict = await call(app, "POST", "/v1/streams", { name: "orders", maxMessages: 5 });
    assert.equal(conflict.status, 409);
    assert.equal((conflict.body["error"] as Json)["code"], "ERR_CONFLICT");
    await send(app, "orders", "one");
    const info = await call(app, "GET", "/v1/streams/orders");
    assert.deepEqual(
      {
        first: info.body["firstSeq"],
        last: info.body["lastSeq"],
        n: info.body["messages"],
        bytes: info.body["bytes"],
      },
      { first: 1, last: 1, n: 1, bytes: 3 },
    );
    const list = await call(app, "GET", "/v1/streams");
    assert.deepEqual(
      (list.body["streams"] as Json[]).map((s) => s["name"]),
      ["orders"],
    );
    assert.deepEqual((await call(app, "DELETE", "/v1/streams/orders")).body, { deleted: true });
    const gone = await call(app, "GET", "/v1/streams/orders");
    assert.equal(gone.status, 404);
    assert.equal((gone.body["error"] as Json)["code"], "ERR_NOT_FOUND");
  });

  it("refuses bad names, unknown fields and oversize messages with stable codes", async () => {
    const { app } = setup({ messageBytesMax: 8 });
    assert.equal((await call(app, "POST", "/v1/streams", { name: "bad name" })).status, 400);
    assert.equal((await call(app, "POST", "/v1/streams", { name: "s", colour: "red" })).status, 400);
    assert.equal((await call(app, "POST", "/v1/streams", { name: "s", messageBytesMax: 9 })).status, 400);
    await call(app, "POST", "/v1/streams", { name: "s" });
    const big = await send(app, "s", "123456789");
    assert.equal(big.status, 413);
    assert.equal((big.body["error"] as Json)["code"], "ERR_TOO_LARGE");
    assert.equal((await send(app, "nope", "x")).status, 404);
    assert.equal((await send(app, "s", "x", { id: "é".repeat(128) })).status, 200);
    assert.equal((await send(app, "s", "x", { id: `${"é".repeat(128)}x` })).status, 400);
  });

  it("appends text and bytes, deduplicates by message id, and checks the expected last sequence", async () => {
    const { app } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    assert.deepEqual((await send(app, "s", "hello", { id: "m1", headers: { a: "b" }, key: "k" })).body, {
      seq: 1,
      id: "1700000000000-0",
      duplicate: false,
    });
    assert.deepEqual((await send(app, "s", "hello", { id: "m1" })).body, {
      seq: 1,
      id: "1700000000000-0",
      duplicate: true,
    });
    assert.equal((await send(app, "s", "AP8=", { encoding: "base64" })).body["seq"], 2);
    const stale = await send(app, "s", "x", { expectedLastSeq: 1 });
    assert.equal(stale.status, 409);
    assert.equal((stale.body["error"] as Json)["currentLastSeq"], 2);
    const page = await call(app, "GET", "/v1/streams/s/messages?from=1&limit=10");
    const messages = page.body["messages"] as Json[];
    assert.deepEqual(
      messages.map((m) => [m["seq"], m["payload"], m["encoding"]]),
      [
        [1, "hello", "utf8"],
        [2, "AP8=", "base64"],
      ],
    );
    assert.deepEqual(messages[0]?.["headers"], { a: "b" });
    assert.equal(messages[0]?.["key"], "k");
    assert.equal(page.body["next"], 3);
  });

  it("pages with limit and next, and reads from a time", async () => {
    const { app, log } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    for (let i = 1; i <= 5; i++) {
      log.clockMs += 10;
      await send(app, "s", `m${i}`);
    }
    const first = await call(app, "GET", "/v1/streams/s/messages?limit=2");
    assert.equal(first.body["next"], 3);
    const second = await call(app, "GET", `/v1/streams/s/messages?limit=2&from=${first.body["next"]}`);
    assert.deepEqual(
      (second.body["messages"] as Json[]).map((m) => m["payload"]),
      ["m3", "m4"],
    );
    const byTime = await call(app, "GET", "/v1/streams/s/messages?fromTimeMs=1700000000040");
    assert.deepEqual(
      (byTime.body["messages"] as Json[]).map((m) => m["payload"]),
      ["m4", "m5"],
    );
  });

  it("a long-poll answers as soon as a message arrives", async () => {
    const { app } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    const polled = call(app, "GET", "/v1/streams/s/messages?from=1&waitMs=20000");
    await new Promise((r) => setTimeout(r, 20));
    await send(app, "s", "late");
    const page = await polled;
    assert.deepEqual(
      (page.body["messages"] as Json[]).map((m) => m["payload"]),
      ["late"],
    );
  });

  it("a long-poll with nothing to read answers empty when its wait ends", async () => {
    const { app } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    const page = await call(app, "GET", "/v1/streams/s/messages?from=1&waitMs=30");
    assert.deepEqual(page.body["messages"], []);
    assert.equal(page.body["next"], 1);
    assert.equal((await call(app, "GET", "/v1/streams/s/messages?waitMs=999999")).status, 400);
  });

  it("refuses waiters beyond the limit with ERR_BUSY", async () => {
    const log = new LocalReplication();
    const notifier = new ApplyNotifier(1);
    const streams = new StreamService(log, notifier);
    const app = buildHttpApp({ kv: new KvService(log), streams, readiness: () => ({ ready: true }) });
    await call(app, "POST", "/v1/streams", { name: "s" });
    const first = call(app, "GET", "/v1/streams/s/messages?waitMs=50");
    await new Promise((r) => setTimeout(r, 5));
    const second = await call(app, "GET", "/v1/streams/s/messages?waitMs=50");
    assert.equal(second.status, 429);
    assert.equal((second.body["error"] as Json)["code"], "ERR_BUSY");
    assert.equal((await first).status, 200);
  });

  it("streams server-sent events from a sequence and resumes after Last-Event-ID", async () => {
    const { app } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    for (const p of ["a", "b", "c"]) await send(app, "s", p);
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      const readEvents = async (headers: Record<string, string>, query: string, count: number) => {
        const controller = new AbortController();
        const response = await fetch(`${url}/v1/streams/s/events${query}`, {
          headers,
          signal: controller.signal,
        });
        assert.equal(response.headers.get("content-type"), "text/event-stream; charset=utf-8");
        const reader = response.body?.getReader();
        assert.ok(reader !== undefined);
        let text = "";
        const events: { id: string; payload: unknown }[] = [];
        while (events.length < count) {
          const { value, done } = await reader.read();
          if (done) break;
          text += new TextDecoder().decode(value);
          let end = text.indexOf("\n\n");
          while (end >= 0) {
            const block = text.slice(0, end);
            text = text.slice(end + 2);
            const id = /^id: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (id !== undefined && data !== undefined)
              events.push({ id, payload: (JSON.parse(data) as Json)["payload"] });
            end = text.indexOf("\n\n");
          }
        }
        controller.abort();
        return events;
      };
      assert.deepEqual(await readEvents({}, "?from=2", 2), [
        { id: "2", payload: "b" },
        { id: "3", payload: "c" },
      ]);
      const live = readEvents({ "last-event-id": "3" }, "", 1);
      await new Promise((r) => setTimeout(r, 30));
      await send(app, "s", "d");
      assert.deepEqual(await live, [{ id: "4", payload: "d" }]);
      const missing = await fetch(`${url}/v1/streams/nope/events`);
      assert.equal(missing.status, 404);
    } finally {
      await app.close();
    }
  });
});

describe("housekeeping", () => {
  it("the leader's sweep removes expired messages of an idle stream and then stops proposing", async () => {
    const { app, log, streams } = setup();
    await call(app, "POST", "/v1/streams", { name: "s", maxAgeMs: 100 });
    await send(app, "s", "old");
    assert.equal(await streams.sweepIfDue(), false);
    log.clockMs += 100;
    assert.equal(await streams.sweepIfDue(), true);
    const info = await call(app, "GET", "/v1/streams/s");
    assert.deepEqual([info.body["firstSeq"], info.body["messages"]], [2, 0]);
    assert.equal(await streams.sweepIfDue(), false);
  });
});

describe("HTTP stream limits", () => {
  it("refuses more headers than headersMax, and pages stop near readBytesMax", async () => {
    const { app } = setup({ headersMax: 2, readBytesMax: 10 });
    await call(app, "POST", "/v1/streams", { name: "s" });
    assert.equal((await send(app, "s", "x", { headers: { a: "1", b: "2" } })).status, 200);
    const tooMany = await send(app, "s", "x", { headers: { a: "1", b: "2", c: "3" } });
    assert.equal(tooMany.status, 400);
    for (let i = 0; i < 4; i++) await send(app, "s", "12345");
    const page = await call(app, "GET", "/v1/streams/s/messages?from=2&limit=100");
    assert.deepEqual(
      (page.body["messages"] as Json[]).map((m) => m["seq"]),
      [2, 3],
    );
    assert.equal(page.body["next"], 4);
  });

  it("refuses event streams beyond sseConnectionsMax with 429 ERR_BUSY", async () => {
    const { app } = setup({ sseConnectionsMax: 1 });
    await call(app, "POST", "/v1/streams", { name: "s" });
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    const controller = new AbortController();
    try {
      const first = await fetch(`${url}/v1/streams/s/events`, { signal: controller.signal });
      assert.equal(first.status, 200);
      const second = await fetch(`${url}/v1/streams/s/events`);
      assert.equal(second.status, 429);
      assert.equal(((await second.json()) as { error: Json }).error["code"], "ERR_BUSY");
      controller.abort();
      // Once the first goes away its slot is free again.
      let third = await fetch(`${url}/v1/streams/s/events?from=1`);
      for (let i = 0; i < 50 && third.status === 429; i++) {
        await new Promise((r) => setTimeout(r, 20));
        third = await fetch(`${url}/v1/streams/s/events?from=1`);
      }
      assert.equal(third.status, 200);
      await third.body?.cancel();
    } finally {
      await app.close();
    }
  });
});

describe("HTTP consumer groups", () => {
  async function withGroup(extra: Json = {}) {
    const ctx = setup();
    await call(ctx.app, "POST", "/v1/streams", { name: "s" });
    for (const p of ["a", "b", "c"]) await send(ctx.app, "s", p);
    const created = await call(ctx.app, "POST", "/v1/streams/s/groups", {
      group: "g",
      ackWaitMs: 1000,
      maxDeliveries: 2,
      ...extra,
    });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    return ctx;
  }
  const fetchSeqs = async (app: App, consumer: string, max = 10, waitMs = 0) => {
    const r = await call(app, "POST", "/v1/streams/s/groups/g/fetch", { consumer, max, waitMs });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return (r.body["messages"] as Json[]).map((m) => [m["seq"], m["payload"], m["deliveries"]]);
  };

  it("fetches, acks, and reports pending, ack floor, consumers and backlog", async () => {
    const { app } = await withGroup();
    assert.deepEqual(await fetchSeqs(app, "c1", 2), [
      [1, "a", 1],
      [2, "b", 1],
    ]);
    assert.deepEqual((await call(app, "POST", "/v1/streams/s/groups/g/ack", { seqs: [1] })).body, {
      settled: [1],
      notPending: [],
    });
    const info = (await call(app, "GET", "/v1/streams/s/groups/g")).body;
    assert.equal(info["pending"], 1);
    assert.equal(info["ackFloor"], 1);
    assert.equal(info["backlog"], 1);
    assert.deepEqual(info["consumers"], { c1: { pending: 1, overdue: 0 } });
    assert.deepEqual((await call(app, "GET", "/v1/streams/s")).body["groups"], ["g"]);
  });

  it("redelivers after the ack wait, by the leader's clock", async () => {
    const { app, log } = await withGroup();
    await fetchSeqs(app, "c1", 3);
    assert.deepEqual(await fetchSeqs(app, "c2"), []);
    log.clockMs += 1000;
    assert.deepEqual(await fetchSeqs(app, "c2", 1), [[1, "a", 2]]);
  });

  it("dead-letters a poison message into <stream>.<group>.dlq with reason and count", async () => {
    const { app, log } = await withGroup();
    await fetchSeqs(app, "c", 1);
    log.clockMs += 1000;
    await fetchSeqs(app, "c", 1);
    log.clockMs += 1000;
    assert.deepEqual(await fetchSeqs(app, "c", 1), [[2, "b", 1]]);
    const dlq = await call(app, "GET", "/v1/streams/s.g.dlq/messages");
    const [dead] = dlq.body["messages"] as Json[];
    assert.equal(dead?.["payload"], "a");
    assert.deepEqual(dead?.["headers"], {
      "cairn-dlq-reason": "max-deliveries",
      "cairn-dlq-deliveries": "2",
      "cairn-dlq-stream": "s",
      "cairn-dlq-group": "g",
      "cairn-dlq-seq": "1",
    });
    assert.equal((await call(app, "GET", "/v1/streams/s/groups/g")).body["deadLettered"], 1);
  });

  it("nack with a delay, extend and term", async () => {
    const { app, log } = await withGroup();
    await fetchSeqs(app, "c1", 3);
    await call(app, "POST", "/v1/streams/s/groups/g/nack", { seqs: [1], delayMs: 500 });
    await call(app, "POST", "/v1/streams/s/groups/g/extend", { seqs: [2] });
    assert.deepEqual((await call(app, "POST", "/v1/streams/s/groups/g/term", { seqs: [3] })).body, {
      settled: [3],
      notPending: [],
    });
    assert.deepEqual(await fetchSeqs(app, "c2"), []);
    log.clockMs += 500;
    assert.deepEqual(await fetchSeqs(app, "c2"), [[1, "a", 2]]);
    const dlq = await call(app, "GET", "/v1/streams/s.g.dlq/messages");
    assert.equal(
      ((dlq.body["messages"] as Json[])[0]?.["headers"] as Json | undefined)?.["cairn-dlq-reason"],
      "terminated",
    );
  });

  it("a fetch with waitMs answers when a message arrives", async () => {
    const { app } = await withGroup({ startAt: "new" });
    const waiting = fetchSeqs(app, "c", 5, 20_000);
    await new Promise((r) => setTimeout(r, 20));
    await send(app, "s", "fresh");
    assert.deepEqual(await waiting, [[4, "fresh", 1]]);
  });

  it("starts at a sequence or a time, and validates start, names and counts", async () => {
    const { app } = await withGroup();
    await call(app, "POST", "/v1/streams/s/groups", { group: "from2", startAt: { seq: 2 } });
    assert.equal((await call(app, "GET", "/v1/streams/s/groups/from2")).body["nextSeq"], 2);
    await call(app, "POST", "/v1/streams/s/groups", {
      group: "late",
      startAt: { timeMs: 1_800_000_000_000 },
    });
    assert.equal((await call(app, "GET", "/v1/streams/s/groups/late")).body["nextSeq"], 4);
    assert.equal(
      (await call(app, "POST", "/v1/streams/s/groups", { group: "x", startAt: "middle" })).status,
      400,
    );
    assert.equal(
      (await call(app, "POST", "/v1/streams/s/groups/g/fetch", { consumer: "c", max: 100_000 })).status,
      400,
    );
    assert.equal((await call(app, "POST", "/v1/streams/s/groups/g/ack", { seqs: [] })).status, 400);
    assert.equal((await call(app, "POST", "/v1/streams/s/groups/nope/fetch", { consumer: "c" })).status, 404);
    assert.equal((await call(app, "POST", "/v1/streams/s/groups/g/explode", { seqs: [1] })).status, 400);
  });
});

describe("compatibility routes", () => {
  it("POST /send and GET /messages on the default stream", async () => {
    const { app } = setup();
    assert.deepEqual((await call(app, "GET", "/messages")).body, { messages: [], count: 0, next: 1 });
    const sent = await call(app, "POST", "/send", { message: "hi", from: "alice" });
    assert.equal(sent.status, 200);
    assert.equal(sent.body["seq"], 1);
    await call(app, "POST", "/send", { message: "there" });
    const got = await call(app, "GET", "/messages");
    assert.deepEqual(
      (got.body["messages"] as Json[]).map((m) => [m["seq"], m["message"]]),
      [
        [1, { message: "hi", from: "alice" }],
        [2, { message: "there" }],
      ],
    );
  });

  it("/kv/{key} with {value}, GET /kv, /status and /heartbeat", async () => {
    const { app } = setup();
    assert.equal((await call(app, "PUT", "/kv/a", { value: "x" })).status, 200);
    await call(app, "PUT", "/kv/b", { value: { n: 1 } });
    assert.deepEqual((await call(app, "GET", "/kv/a")).body, { key: "a", value: "x" });
    assert.deepEqual((await call(app, "GET", "/kv")).body, { a: "x", b: { n: 1 } });
    assert.deepEqual((await call(app, "DELETE", "/kv/a")).body, { key: "a", deleted: true });
    assert.equal((await call(app, "GET", "/kv/a")).status, 404);
    assert.equal((await call(app, "GET", "/heartbeat")).body["status"], "alive");
    assert.equal((await call(app, "GET", "/status")).body["status"], "ok");
  });
});
