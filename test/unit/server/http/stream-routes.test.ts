// The HTTP streams and consumer-group API as a client sees it, over a single-replica log: status
// codes and the one error body, payload encodings, dedupe by message id, conditional appends,
// settings updates, single-message deletes, long-polls and fetch waits woken by appends,
// server-sent events resumed with Last-Event-ID, every consumer transition, Idempotency-Key on every
// write (a retry answers the first result and leaves the replicated state byte for byte as it
// was), refusal of bad input and limits. Requests go
// through fastify's inject (or a real socket for event streams); a test that needs a long-poll to be
// waiting waits until the apply notifier counts it, never for a fixed time.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildHttpApp } from "../../../../src/server/http/index.js";
import { ApplyNotifier } from "../../../../src/service/apply-notifier.js";
import { KvService } from "../../../../src/service/kv/kv-service.js";
import { defaultStreamLimits, StreamService } from "../../../../src/service/streams/stream-service.js";
import { LocalReplication } from "../../../support/local-replication.js";
import { waitFor } from "../../../support/wait-for.js";
import { dumpState } from "../../service/streams/helpers.js";

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
  method: "GET" | "PUT" | "DELETE" | "POST" | "PATCH",
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
    assert.deepEqual((await call(app, "DELETE", "/v1/streams/orders")).body, {
      deleted: true,
      duplicate: false,
    });
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

  it("pages with limit and next, reads a sequence range, and reads from a time", async () => {
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
    const range = await call(app, "GET", "/v1/streams/s/messages?from=2&to=3");
    assert.deepEqual(
      [(range.body["messages"] as Json[]).map((m) => m["payload"]), range.body["next"]],
      [["m2", "m3"], 4],
    );
    // A range already read answers at once, even with waitMs.
    const done = await call(app, "GET", "/v1/streams/s/messages?from=4&to=3&waitMs=30000");
    assert.deepEqual([done.body["messages"], done.body["next"]], [[], 4]);
    const byTime = await call(app, "GET", "/v1/streams/s/messages?fromTimeMs=1700000000040");
    assert.deepEqual(
      (byTime.body["messages"] as Json[]).map((m) => m["payload"]),
      ["m4", "m5"],
    );
  });

  it("a long-poll answers as soon as a message arrives", async () => {
    const { app, log } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    const polled = call(app, "GET", "/v1/streams/s/messages?from=1&waitMs=20000");
    await waitFor("the long-poll to wait", () => log.applied.waiting === 1);
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
    const notifier = new ApplyNotifier(1);
    const log = new LocalReplication(notifier);
    const streams = new StreamService(log, notifier);
    const app = buildHttpApp({ kv: new KvService(log), streams, readiness: () => ({ ready: true }) });
    await call(app, "POST", "/v1/streams", { name: "s" });
    const first = call(app, "GET", "/v1/streams/s/messages?waitMs=20000");
    await waitFor("the first long-poll to wait", () => notifier.waiting === 1);
    const second = await call(app, "GET", "/v1/streams/s/messages?waitMs=50");
    assert.equal(second.status, 429);
    assert.equal((second.body["error"] as Json)["code"], "ERR_BUSY");
    // The first waiter still holds its place; a message ends its wait with an answer.
    assert.equal(notifier.waiting, 1);
    await send(app, "s", "wake");
    const answered = await first;
    assert.equal(answered.status, 200);
    assert.deepEqual(
      (answered.body["messages"] as Json[]).map((m) => m["payload"]),
      ["wake"],
    );
  });

  it("streams server-sent events from a sequence and resumes after Last-Event-ID", async () => {
    const { app, log } = setup();
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
      await waitFor("the first event stream to end", () => log.applied.waiting === 0);
      const live = readEvents({ "last-event-id": "3" }, "", 1);
      // Sent once the event stream has caught up and waits for what comes next.
      await waitFor("the event stream to wait for new messages", () => log.applied.waiting === 1);
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
      // The server learns of the abort asynchronously: retry until it has.
      let third: Response | undefined;
      await waitFor("the freed event stream slot", async () => {
        await third?.body?.cancel();
        third = await fetch(`${url}/v1/streams/s/events?from=1`);
        return third.status === 200;
      });
      await third?.body?.cancel();
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

  it("PATCH changes a group's settings, refuses bad ones, and a retry answers the first result", async () => {
    const { app } = await withGroup();
    const url = "/v1/streams/s/groups/g";
    const patch = () =>
      call(app, "PATCH", url, { ackWaitMs: 60_000, maxAckPending: 2 }, { "idempotency-key": "k" });
    const patched = await patch();
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body["updated"], true);
    assert.deepEqual((patched.body["group"] as Json)["config"], {
      ackWaitMs: 60_000,
      maxDeliveries: 2,
      deadLetterStream: "s.g.dlq",
      maxAckPending: 2,
    });
    const retried = await patch();
    assert.deepEqual([retried.body["updated"], retried.body["duplicate"]], [true, true]);
    assert.equal((await call(app, "PATCH", url, { ackWaitMs: 60_000 })).body["updated"], false);
    assert.deepEqual(
      (await fetchSeqs(app, "c", 10)).map(([seq]) => seq),
      [1, 2],
      "at most 2 in flight now",
    );
    const before = (await call(app, "GET", url)).body;
    for (const body of [
      {},
      { ackWaitMs: 0 },
      { maxAckPending: 0 },
      { maxDeliveries: -1 },
      { group: "x" },
      { deadLetterStream: "d" },
    ]) {
      const r = await call(app, "PATCH", url, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal((r.body["error"] as Json)["code"], "ERR_BAD_REQUEST");
    }
    assert.equal((await call(app, "PATCH", "/v1/streams/s/groups/nope", { ackWaitMs: 5 })).status, 404);
    assert.equal((await call(app, "PATCH", "/v1/streams/nope/groups/g", { ackWaitMs: 5 })).status, 404);
    assert.deepEqual((await call(app, "GET", url)).body, before);
  });

  it("fetches, acks, and reports pending, ack floor, consumers and backlog", async () => {
    const { app } = await withGroup();
    assert.deepEqual(await fetchSeqs(app, "c1", 2), [
      [1, "a", 1],
      [2, "b", 1],
    ]);
    assert.deepEqual((await call(app, "POST", "/v1/streams/s/groups/g/ack", { seqs: [1] })).body, {
      settled: [1],
      notPending: [],
      duplicate: false,
    });
    const info = (await call(app, "GET", "/v1/streams/s/groups/g")).body;
    assert.equal(info["pending"], 1);
    assert.equal(info["ackFloor"], 1);
    assert.equal(info["backlog"], 1);
    assert.deepEqual(info["consumers"], { c1: { pending: 1, overdue: 0, delivered: 2, redelivered: 0 } });
    assert.deepEqual((await call(app, "GET", "/v1/streams/s")).body["groups"], ["g"]);
  });

  it("a fetch with ack acknowledges those first and answers what it did beside the messages", async () => {
    const { app } = await withGroup();
    await fetchSeqs(app, "c1", 2);
    const r = await call(app, "POST", "/v1/streams/s/groups/g/fetch", {
      consumer: "c1",
      max: 2,
      ack: [1, 3],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(
      (r.body["messages"] as Json[]).map((m) => m["seq"]),
      [3],
    );
    assert.deepEqual(r.body["acked"], { settled: [1], notPending: [3] });
    const info = (await call(app, "GET", "/v1/streams/s/groups/g")).body;
    assert.equal(info["ackFloor"], 1);
    assert.equal(info["pending"], 2);
    const plain = await call(app, "POST", "/v1/streams/s/groups/g/fetch", { consumer: "c1" });
    assert.equal(plain.body["acked"], undefined, "no ack asked, none answered");
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
      duplicate: false,
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
    const { app, log } = await withGroup({ startAt: "new" });
    const waiting = fetchSeqs(app, "c", 5, 20_000);
    await waitFor("the fetch to wait", () => log.applied.waiting === 1);
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

describe("stream settings and single messages", () => {
  it("PATCH changes only the settings given; a lowered limit drops the oldest at once", async () => {
    const { app } = setup();
    await call(app, "POST", "/v1/streams", { name: "s", discard: "new", maxAgeMs: 60_000 });
    for (const p of ["a", "b", "c", "d", "e"]) await send(app, "s", p);
    const patched = await call(app, "PATCH", "/v1/streams/s", { maxMessages: 3 });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body["updated"], true);
    assert.equal(patched.body["duplicate"], false);
    const stream = patched.body["stream"] as Json;
    assert.deepEqual(
      [stream["firstSeq"], stream["lastSeq"], stream["messages"], stream["bytes"]],
      [3, 5, 3, 3],
    );
    assert.deepEqual(stream["config"], {
      maxMessages: 3,
      maxBytes: 0,
      maxAgeMs: 60_000,
      discard: "new",
      messageBytesMax: 1024 * 1024,
      dedupeWindowMs: 120_000,
    });
    assert.equal((await send(app, "s", "f")).status, 409, "full, and discard is still new");
    const again = await call(app, "PATCH", "/v1/streams/s", { maxMessages: 3 });
    assert.equal(again.body["updated"], false);
    await call(app, "PATCH", "/v1/streams/s", { discard: "old" });
    assert.equal((await send(app, "s", "f")).body["seq"], 6, "sequences are never reused");
  });

  it("PATCH refuses bad settings and a missing stream, changing nothing", async () => {
    const { app } = setup({ messageBytesMax: 100 });
    await call(app, "POST", "/v1/streams", { name: "s", maxMessages: 5 });
    const before = (await call(app, "GET", "/v1/streams/s")).body;
    for (const body of [
      {},
      { colour: "red" },
      { discard: "sideways" },
      { maxMessages: -1 },
      { messageBytesMax: 0 },
      { messageBytesMax: 101 },
      { dedupeWindowMs: 25 * 3600 * 1000 },
      { name: "renamed" },
    ]) {
      const r = await call(app, "PATCH", "/v1/streams/s", body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal((r.body["error"] as Json)["code"], "ERR_BAD_REQUEST");
    }
    const missing = await call(app, "PATCH", "/v1/streams/nope", { maxBytes: 10 });
    assert.equal(missing.status, 404);
    assert.deepEqual((await call(app, "GET", "/v1/streams/s")).body, before);
  });

  it("DELETE a message: counts and bytes follow, reads skip it, groups forget it", async () => {
    const { app } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    for (const p of ["a", "bb", "ccc"]) await send(app, "s", p);
    await call(app, "POST", "/v1/streams/s/groups", { group: "g" });
    await call(app, "POST", "/v1/streams/s/groups/g/fetch", { consumer: "c1", max: 3 });
    assert.deepEqual((await call(app, "DELETE", "/v1/streams/s/messages/2")).body, {
      deleted: true,
      duplicate: false,
    });
    assert.deepEqual((await call(app, "DELETE", "/v1/streams/s/messages/2")).body, {
      deleted: false,
      duplicate: false,
    });
    assert.deepEqual((await call(app, "DELETE", "/v1/streams/s/messages/99")).body["deleted"], false);
    const gone = await call(app, "GET", "/v1/streams/s/messages/2");
    assert.equal(gone.status, 404);
    assert.equal((gone.body["error"] as Json)["code"], "ERR_NOT_FOUND");
    assert.equal((await call(app, "GET", "/v1/streams/s/messages/3")).body["payload"], "ccc");
    const info = (await call(app, "GET", "/v1/streams/s")).body;
    assert.deepEqual([info["firstSeq"], info["lastSeq"], info["messages"], info["bytes"]], [1, 3, 2, 4]);
    const page = await call(app, "GET", "/v1/streams/s/messages?from=1");
    assert.deepEqual(
      (page.body["messages"] as Json[]).map((m) => m["seq"]),
      [1, 3],
    );
    const group = (await call(app, "GET", "/v1/streams/s/groups/g")).body;
    assert.equal(group["pending"], 2);
    assert.deepEqual(group["consumers"], { c1: { pending: 2, overdue: 0, delivered: 3, redelivered: 0 } });
    for (const url of ["/v1/streams/s/messages/0", "/v1/streams/s/messages/abc"]) {
      assert.equal((await call(app, "DELETE", url)).status, 400, url);
    }
    assert.equal((await call(app, "DELETE", "/v1/streams/nope/messages/1")).status, 404);
    assert.equal((await send(app, "s", "d")).body["seq"], 4);
  });

  it("lists a stream's groups with their info", async () => {
    const { app } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    await call(app, "POST", "/v1/streams/s/groups", { group: "b" });
    await call(app, "POST", "/v1/streams/s/groups", { group: "a", startAt: "new" });
    const list = await call(app, "GET", "/v1/streams/s/groups");
    assert.deepEqual(
      (list.body["groups"] as Json[]).map((g) => [g["name"], g["pending"], g["config"] !== undefined]),
      [
        ["a", 0, true],
        ["b", 0, true],
      ],
    );
    assert.equal((await call(app, "GET", "/v1/streams/nope/groups")).status, 404);
  });
});

describe("Idempotency-Key on every stream write", () => {
  async function prepared() {
    const ctx = setup();
    const { app } = ctx;
    await call(app, "POST", "/v1/streams", { name: "s" });
    for (const p of ["a", "b", "c", "d"]) await send(app, "s", p);
    await call(app, "POST", "/v1/streams/s/groups", { group: "g", ackWaitMs: 1000, maxDeliveries: 5 });
    return ctx;
  }
  const keyed = (app: App, method: "POST" | "PATCH" | "DELETE", url: string, key: string, body?: Json) =>
    call(app, method, url, body, { "idempotency-key": key });

  /** Every kind of stream write, in an order in which each applies to the prepared stream. */
  const writes: [method: "POST" | "PATCH" | "DELETE", url: string, body?: Json][] = [
    ["POST", "/v1/streams", { name: "t", maxMessages: 10 }],
    ["PATCH", "/v1/streams/s", { maxAgeMs: 60_000 }],
    ["POST", "/v1/streams/s/messages", { payload: "e", headers: { h: "1" } }],
    ["DELETE", "/v1/streams/s/messages/4"],
    ["POST", "/v1/streams/s/groups", { group: "h", startAt: { seq: 2 } }],
    ["POST", "/v1/streams/s/groups/g/fetch", { consumer: "c2", max: 5 }],
    ["POST", "/v1/streams/s/groups/g/ack", { seqs: [1] }],
    ["POST", "/v1/streams/s/groups/g/nack", { seqs: [2], delayMs: 500 }],
    ["POST", "/v1/streams/s/groups/g/extend", { seqs: [3] }],
    ["POST", "/v1/streams/s/groups/g/term", { seqs: [5] }],
    ["DELETE", "/v1/streams/s/groups/h"],
    ["DELETE", "/v1/streams/t"],
  ];

  it("a retry of each write answers the first result with duplicate: true and changes nothing", async () => {
    const { app, log } = await prepared();
    await call(app, "POST", "/v1/streams/s/groups/g/fetch", { consumer: "c1", max: 2 });
    for (const [i, [method, url, body]] of writes.entries()) {
      const what = `${method} ${url}`;
      const first = await keyed(app, method, url, `key-${i}`, body);
      assert.equal(first.status, 200, `${what}: ${JSON.stringify(first.body)}`);
      assert.equal(first.body["duplicate"], false, what);
      const state = dumpState(log.state);
      // Later, by the leader's clock: a second execution would stamp or deliver differently.
      log.clockMs += 5000;
      const retry = await keyed(app, method, url, `key-${i}`, body);
      assert.deepEqual(retry, { status: 200, body: { ...first.body, duplicate: true } }, what);
      assert.deepEqual(dumpState(log.state), state, `${what}: the retry changed nothing`);
    }
    // c1's 1 and 2, then (past their ack wait) 1, 2, 3 and 5 to c2 once: 4 was deleted, and the
    // retried fetch handed out nothing more.
    const group = (await call(app, "GET", "/v1/streams/s/groups/g")).body;
    assert.equal(group["delivered"], 6);
  });

  it("makes each write under its Cairn-Write-Concern", async () => {
    const { app, log } = await prepared();
    await call(app, "POST", "/v1/streams/s/groups/g/fetch", { consumer: "c1", max: 2 });
    log.writeConcerns.length = 0;
    for (const [method, url, body] of writes) {
      const answer = await call(app, method, url, body, { "cairn-write-concern": "all" });
      assert.equal(answer.status, 200, `${method} ${url}: ${JSON.stringify(answer.body)}`);
    }
    assert.deepEqual(
      log.writeConcerns,
      writes.map(() => "all"),
    );
    const bad = await call(
      app,
      "POST",
      "/v1/streams/s/messages",
      { payload: "x" },
      { "cairn-write-concern": "2" },
    );
    assert.equal(bad.status, 400);
    assert.equal(log.writeConcerns.length, writes.length, "nothing proposed");
  });

  it("a retried fetch answers the first fetch's messages, even once their ack wait has passed", async () => {
    const { app, log } = await prepared();
    const fetchKeyed = async (key: string) => {
      const r = await keyed(app, "POST", "/v1/streams/s/groups/g/fetch", key, { consumer: "c", max: 2 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return [
        (r.body["messages"] as Json[]).map((m) => [m["seq"], m["payload"], m["deliveries"]]),
        r.body["duplicate"],
      ];
    };
    assert.deepEqual(await fetchKeyed("f1"), [
      [
        [1, "a", 1],
        [2, "b", 1],
      ],
      false,
    ]);
    log.clockMs += 1000;
    assert.deepEqual(await fetchKeyed("f1"), [
      [
        [1, "a", 1],
        [2, "b", 1],
      ],
      true,
    ]);
    // A new request is a new fetch: the overdue messages come again, delivered a second time.
    assert.deepEqual(await fetchKeyed("f2"), [
      [
        [1, "a", 2],
        [2, "b", 2],
      ],
      false,
    ]);
    // A message deleted since the first fetch is left out of its retry.
    await call(app, "DELETE", "/v1/streams/s/messages/1");
    assert.deepEqual(await fetchKeyed("f2"), [[[2, "b", 2]], true]);
  });

  it("a long-polling fetch with a key answers what arrives; its retry answers the same at once", async () => {
    const { app, log } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    await call(app, "POST", "/v1/streams/s/groups", { group: "g" });
    const body = { consumer: "c", max: 5, waitMs: 20_000 };
    const waiting = keyed(app, "POST", "/v1/streams/s/groups/g/fetch", "w1", body);
    await waitFor("the fetch to wait", () => log.applied.waiting === 1);
    await send(app, "s", "fresh");
    const first = await waiting;
    assert.deepEqual(
      (first.body["messages"] as Json[]).map((m) => [m["seq"], m["deliveries"]]),
      [[1, 1]],
    );
    await send(app, "s", "more");
    const retry = await keyed(app, "POST", "/v1/streams/s/groups/g/fetch", "w1", body);
    assert.deepEqual(retry.body, { ...first.body, duplicate: true });
  });

  it("a key reused for a different request is refused with 422 and changes nothing", async () => {
    const { app, log } = await prepared();
    await keyed(app, "POST", "/v1/streams/s/messages", "k", { payload: "x" });
    const state = dumpState(log.state);
    const reused = await keyed(app, "POST", "/v1/streams/s/messages", "k", { payload: "y" });
    assert.equal(reused.status, 422);
    assert.equal((reused.body["error"] as Json)["code"], "ERR_IDEMPOTENCY_KEY_REUSED");
    const otherFetch = await keyed(app, "POST", "/v1/streams/s/groups/g/fetch", "k", { consumer: "c" });
    assert.equal(otherFetch.status, 422);
    assert.deepEqual(dumpState(log.state), state);
  });
});

describe("stream requests that are refused", () => {
  it("answer 400 ERR_BAD_REQUEST with a message, and change nothing", async () => {
    const { app, log } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    await send(app, "s", "a");
    await call(app, "POST", "/v1/streams/s/groups", { group: "g" });
    await call(app, "POST", "/v1/streams/s/groups/g/fetch", { consumer: "c" });
    const state = dumpState(log.state);
    const refused: [method: "GET" | "POST", url: string, body?: Json][] = [
      ["GET", "/v1/streams/s/messages?from=1&fromTimeMs=5"],
      ["GET", "/v1/streams/s/messages?form=1"],
      ["GET", "/v1/streams/s/messages?limit=0"],
      ["GET", "/v1/streams/s?consistancy=stale"],
      ["POST", "/v1/streams/s/messages?wait=1", { payload: "x" }],
      ["POST", "/v1/streams/s/groups/g/ack?force=1", { seqs: [1] }],
      ["POST", "/v1/streams/s/groups/g/ack", { seqs: [1], delayMs: 100 }],
      ["POST", "/v1/streams/s/groups/g/extend", { seqs: [1], delayMs: 100 }],
      ["POST", "/v1/streams/s/groups/g/ack", { seqs: [0] }],
      ["POST", "/v1/streams/s/groups/g/fetch", { consumer: "" }],
      ["POST", "/v1/streams/s/groups/g/fetch", { consumer: "c", waitMs: 30_001 }],
      ["POST", "/v1/streams/s/groups/g/fetch", { consumer: "c", ack: [1, 0] }],
      ["POST", "/v1/streams/s/groups/g/fetch", { consumer: "c", ack: ["1"] }],
      ["POST", "/v1/streams/s/groups/g/fetch", { consumer: "", ack: [1] }],
      ["POST", "/v1/streams/s/groups", { group: "h", startAt: { seq: -1 } }],
      ["POST", "/v1/streams/s/groups", { group: "h", ackWaitMs: 0 }],
      ["POST", "/v1/streams/s/groups", { group: "h", deadLetterStream: "s" }],
      ["POST", "/v1/streams/s/groups", { group: "h", maxAckPending: 10_001 }],
    ];
    for (const [method, url, body] of refused) {
      const r = await call(app, method, url, body);
      assert.equal(r.status, 400, `${method} ${url} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      const error = r.body["error"] as Json;
      assert.equal(error["code"], "ERR_BAD_REQUEST");
      assert.ok(typeof error["message"] === "string" && error["message"].length > 0);
    }
    assert.deepEqual(dumpState(log.state), state);
    const typo = await call(app, "GET", "/v1/streams/s/messages?form=1");
    assert.equal(
      (typo.body["error"] as Json)["message"],
      "querystring/form: is not a known field or parameter",
    );
    const empty = await call(app, "PATCH", "/v1/streams/s", {});
    assert.equal((empty.body["error"] as Json)["message"], "give at least one setting to change");
  });

  it("a default dead-letter name that would be too long asks for deadLetterStream", async () => {
    const { app } = setup();
    const long = "s".repeat(250);
    await call(app, "POST", "/v1/streams", { name: long });
    const r = await call(app, "POST", `/v1/streams/${long}/groups`, { group: "workers" });
    assert.equal(r.status, 400);
    assert.match(String((r.body["error"] as Json)["message"]), /give deadLetterStream/);
    const ok = await call(app, "POST", `/v1/streams/${long}/groups`, {
      group: "workers",
      deadLetterStream: "dead",
    });
    assert.equal(ok.status, 200);
  });
});

describe("HTTP stream reads with consistency=stale", () => {
  it("say how far behind every answer may be, a missing message included", async () => {
    const { app, log } = setup();
    await call(app, "POST", "/v1/streams", { name: "s" });
    await send(app, "s", "one");
    await call(app, "POST", "/v1/streams/s/groups", { group: "g", startAt: "first" });
    log.leaderContactAgeMs = 250;
    const staleness = { appliedIndex: 3, leaderContactAgeMs: 250 };
    for (const url of [
      "/v1/streams",
      "/v1/streams/s",
      "/v1/streams/s/messages",
      "/v1/streams/s/messages/1",
      "/v1/streams/s/groups",
      "/v1/streams/s/groups/g",
    ]) {
      const stale = await call(app, "GET", `${url}?consistency=stale`);
      assert.equal(stale.status, 200, url);
      assert.deepEqual(stale.body["staleness"], staleness, url);
      const linearizable = await call(app, "GET", url);
      assert.equal(linearizable.status, 200, url);
      assert.equal(linearizable.body["staleness"], undefined, `${url} read linearizably is not stale`);
    }
    const missing = await call(app, "GET", "/v1/streams/s/messages/9?consistency=stale");
    assert.equal(missing.status, 404);
    assert.deepEqual((missing.body["error"] as Json)["staleness"], staleness);
  });
});

describe("HTTP batch appends", () => {
  const url = "/v1/streams/b/messages";
  /** The state of stream `b` alone (the streams clock moves with every entry, refused or not). */
  const streamState = (log: ReturnType<typeof setup>["log"]) =>
    dumpState(log.state).filter((line) => !line.startsWith("meta "));

  it("appends an array with one proposal, each message its own sequence and deduplication", async () => {
    const { app, log } = setup();
    await call(app, "POST", "/v1/streams", { name: "b" });
    const before = log.appliedIndex;
    const first = await call(app, "POST", url, [
      { payload: "one", id: "a" },
      { payload: "two", id: "b", headers: { h: "v" }, key: "k" },
      { payload: "again", id: "a" },
      { payload: "Zm91cg==", encoding: "base64" },
    ]);
    assert.equal(first.status, 200);
    assert.equal(log.appliedIndex, before + 1, "one replicated write for the batch");
    const results = first.body["results"] as Json[];
    assert.deepEqual(
      results.map((r) => [r["seq"], r["duplicate"]]),
      [
        [1, false],
        [2, false],
        [1, true],
        [3, false],
      ],
    );
    assert.equal(first.body["duplicate"], false);
    const second = await call(app, "POST", url, [{ payload: "x", id: "b" }, { payload: "five" }]);
    assert.deepEqual(
      (second.body["results"] as Json[]).map((r) => [r["seq"], r["duplicate"]]),
      [
        [2, true],
        [4, false],
      ],
      "an id from an earlier batch answers the original",
    );
    const read = await call(app, "GET", "/v1/streams/b/messages");
    assert.deepEqual(
      (read.body["messages"] as Json[]).map((m) => m["payload"]),
      ["one", "two", "four", "five"],
    );
  });

  it("answers each refused message with its error and appends the others", async () => {
    const { app } = setup();
    await call(app, "POST", "/v1/streams", { name: "b", messageBytesMax: 4 });
    const response = await call(app, "POST", url, [
      { payload: "ok" },
      { payload: "too long" },
      { payload: "ok2", expectedLastSeq: 7 },
      { payload: "ok3" },
    ]);
    assert.equal(response.status, 200);
    const results = response.body["results"] as Json[];
    assert.equal(results[0]?.["seq"], 1);
    assert.equal(((results[1]?.["error"] ?? {}) as Json)["code"], "ERR_TOO_LARGE");
    assert.deepEqual(results[2]?.["error"] ?? {}, {
      code: "ERR_CONFLICT",
      message: "stream b is at sequence 1, not 7",
      currentLastSeq: 1,
    });
    assert.equal(results[3]?.["seq"], 2);
  });

  it("an atomic batch with a refused message is refused whole and changes nothing", async () => {
    const { app, log } = setup();
    await call(app, "POST", "/v1/streams", { name: "b", messageBytesMax: 4 });
    await call(app, "POST", url, [{ payload: "m1", id: "x" }]);
    const state = streamState(log);
    const refused = await call(app, "POST", `${url}?atomic=true`, [
      { payload: "m2", id: "y" },
      { payload: "m3" },
      { payload: "too long" },
    ]);
    assert.equal(refused.status, 413);
    assert.equal((refused.body["error"] as Json)["code"], "ERR_TOO_LARGE");
    assert.match(String((refused.body["error"] as Json)["message"]), /message 2 of the atomic batch/);
    assert.deepEqual(streamState(log), state, "no message, id or counter changed");
    const conflict = await call(app, "POST", `${url}?atomic=true`, [
      { payload: "m2", expectedLastSeq: 1 },
      { payload: "m3", expectedLastSeq: 1 },
    ]);
    assert.equal(conflict.status, 409);
    assert.equal((conflict.body["error"] as Json)["currentLastSeq"], 2);
    assert.deepEqual(streamState(log), state);
    const ok = await call(app, "POST", `${url}?atomic=true`, [{ payload: "m2", id: "y" }, { payload: "m3" }]);
    assert.deepEqual(
      (ok.body["results"] as Json[]).map((r) => r["seq"]),
      [2, 3],
    );
  });

  it("refuses batches over their bounds, empty ones and atomic singles with stable codes", async () => {
    const { app, log } = setup({ batchMessagesMax: 3, batchBytesMax: 10 });
    await call(app, "POST", "/v1/streams", { name: "b" });
    const state = dumpState(log.state);
    const many = await call(app, "POST", url, [
      { payload: "1" },
      { payload: "2" },
      { payload: "3" },
      { payload: "4" },
    ]);
    assert.equal(many.status, 413);
    assert.deepEqual(many.body["error"], {
      code: "ERR_TOO_LARGE",
      message: "a batch holds at most 3 messages",
      limit: 3,
    });
    const big = await call(app, "POST", url, [{ payload: "123456" }, { payload: "789012" }]);
    assert.equal(big.status, 413);
    assert.equal((big.body["error"] as Json)["limit"], 10);
    assert.equal((await call(app, "POST", url, [])).status, 400);
    const single = await call(app, "POST", `${url}?atomic=true`, { payload: "x" });
    assert.equal(single.status, 400);
    assert.equal((single.body["error"] as Json)["code"], "ERR_BAD_REQUEST");
    assert.equal((await call(app, "POST", url, [{ payload: "x", bogus: 1 }])).status, 400);
    assert.deepEqual(dumpState(log.state), state, "no refused batch was proposed");
  });

  it("a retried batch with its Idempotency-Key answers the original results", async () => {
    const { app, log } = setup();
    await call(app, "POST", "/v1/streams", { name: "b" });
    const headers = { "idempotency-key": "batch-1" };
    const first = await call(app, "POST", url, [{ payload: "a" }, { payload: "b" }], headers);
    const state = streamState(log);
    const retry = await call(app, "POST", url, [{ payload: "a" }, { payload: "b" }], headers);
    assert.equal(retry.body["duplicate"], true);
    assert.deepEqual(
      (retry.body["results"] as Json[]).map((r) => r["seq"]),
      (first.body["results"] as Json[]).map((r) => r["seq"]),
    );
    assert.deepEqual(streamState(log), state);
  });
});
