// The gRPC replicator's MessageService on one in-process replica, called over 127.0.0.1 by a
// grpc-js client generated from the repository's .proto, as the seed's users call it: posts
// answered "success" in total order with the parent chain, retries with the same client_id and
// idempotency-key stored once, the seed's content rules refused as the seed refused them (status
// OK, `status: "error"`, its text) with nothing stored, every failure of PostMessage answered that
// way and of the other methods mapped through the status table, CatchUp paging, and a request that
// does not decode, garbage bytes and a malformed HTTP/2 frame answered without harming the server.
import assert from "node:assert/strict";
import { connect as connectHttp2, constants as http2 } from "node:http2";
import { connect as connectTcp } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import {
  type GrpcServer,
  grpcContentCharsMax,
  grpcStatusOf,
  grpcStreamName,
  startGrpcServer,
} from "../../../../src/server/grpc/index.js";
import { CairnError, errorCodes, StreamService } from "../../../../src/service/index.js";
import { Prng } from "../../../../src/util/index.js";
import { isServiceError, MessageServiceClient } from "../../../support/grpc-client.js";
import { LocalReplication } from "../../../support/local-replication.js";

/** Runs `call`, expecting it to fail; answers the gRPC status, details and Cairn code. */
async function failure(call: Promise<unknown>): Promise<{ code: status; details: string; cairn: string }> {
  try {
    await call;
  } catch (error) {
    assert.ok(isServiceError(error), String(error));
    return { code: error.code, details: error.details, cairn: String(error.metadata.get("cairn-code")[0]) };
  }
  assert.fail("the call succeeded");
}

/** A PostMessage answered as the seed answered a failure: status OK, `status: "error"`. */
async function refusal(
  call: Promise<{
    response: { status: string; message: string; total_messages: number };
    trailers: Readonly<Record<string, string>>;
  }>,
): Promise<{ message: string; cairn: string; trailers: Readonly<Record<string, string>> }> {
  const { response, trailers } = await call;
  assert.equal(response.status, "error", JSON.stringify(response));
  assert.equal(response.total_messages, 0);
  assert.ok(response.message.length > 0);
  assert.ok((trailers["cairn-message"] ?? "").length > 0, "Cairn's message travels in a trailer");
  return { message: response.message, cairn: trailers["cairn-code"] ?? "", trailers };
}

/** Sends raw bytes to the port; resolves with the HTTP/2 frame types received once the server closes. */
function sendRaw(port: number, bytes: Uint8Array): Promise<number[]> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connectTcp(port, "127.0.0.1", () => socket.end(bytes));
    socket.on("error", () => undefined);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("close", () => {
      const received = Buffer.concat(chunks);
      const types: number[] = [];
      for (let at = 0; at + 9 <= received.length; at += 9 + received.readUIntBE(at, 3)) {
        types.push(received[at + 3] ?? -1);
      }
      resolve(types);
    });
  });
}

const GOAWAY = 0x7;

/** One gRPC frame (uncompressed) around `message`. */
function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

describe("the gRPC MessageService", () => {
  let log: LocalReplication;
  let streams: StreamService;
  let server: GrpcServer;
  let client: MessageServiceClient;

  before(async () => {
    log = new LocalReplication();
    streams = new StreamService(log, log.applied);
    // A short idle time, so a connection left open after a protocol error closes within the test.
    server = await startGrpcServer({ host: "127.0.0.1", port: 0 }, { streams, idleConnectionMs: 200 });
    client = new MessageServiceClient(`127.0.0.1:${server.address.port}`);
  });
  after(async () => {
    client.close();
    await server.close();
  });
  beforeEach(async () => {
    log.failWith = undefined;
    await streams.delete(grpcStreamName);
  });

  it("answers success and lists the messages in total order with the parent chain", async () => {
    assert.deepEqual((await client.getMessages()).response, { messages: [] }, "nothing posted yet");
    const first = await client.postMessage({ content: "  m1  ", write_concern: 2, client_id: "c1" });
    assert.deepEqual(first.response, {
      status: "success",
      message: "Message added successfully",
      total_messages: 1,
    });
    assert.equal(first.trailers["cairn-sequence"], "1");
    assert.equal(first.trailers["cairn-duplicate"], "false");
    await client.postMessage({ content: "m2", client_id: "c2" });
    await client.postMessage({ content: "m3", write_concern: 1 });
    const { messages } = (await client.getMessages()).response;
    assert.deepEqual(
      messages.map((m) => [m.content, m.sequence_number]),
      [
        ["m1", 1],
        ["m2", 2],
        ["m3", 3],
      ],
    );
    assert.equal(messages[0]?.parent_id, "", "the first message has no parent");
    assert.equal(messages[0]?.message_id, first.trailers["cairn-message-id"]);
    assert.equal(messages[1]?.parent_id, messages[0]?.message_id);
    assert.equal(messages[2]?.parent_id, messages[1]?.message_id);
    assert.equal(messages[0]?.timestamp, log.clockMs / 1000);
    const stored = await streams.read(grpcStreamName, {});
    assert.deepEqual(stored.messages[0]?.headers, [["client-id", "c1"]], "client_id travels as a header");
  });

  it("stores a retry with the same client_id and idempotency-key once", async () => {
    const post = (clientId: string, key: string) =>
      client.postMessage({ content: "once", write_concern: 1, client_id: clientId }, { idempotencyKey: key });
    const original = await post("c1", "r1");
    const retry = await post("c1", "r1");
    assert.equal(retry.response.status, "success");
    assert.equal(retry.response.total_messages, original.response.total_messages);
    assert.equal(retry.trailers["cairn-duplicate"], "true");
    assert.equal(retry.trailers["cairn-message-id"], original.trailers["cairn-message-id"]);
    await post("c2", "r1");
    await client.postMessage({ content: "once", client_id: "c1" });
    assert.equal(
      (await client.getMessages()).response.messages.length,
      3,
      "another client, or no key, is another message",
    );
  });

  it("refuses the seed's invalid content and bad fields as the seed did (status error), storing nothing", async () => {
    await client.postMessage({ content: "kept" });
    const longest = "é".repeat(grpcContentCharsMax);
    await client.postMessage({ content: longest });
    // One replica is every voter: write_concern 3 (all) is met at once.
    const all = await client.postMessage({ content: "on every voter", write_concern: 3 });
    assert.equal(all.response.status, "success");
    const refused = [
      { content: "" },
      { content: " \t\n " },
      { content: "x".repeat(grpcContentCharsMax + 1) },
      { content: "ok", write_concern: -1 },
    ];
    for (const request of refused) {
      const { cairn } = await refusal(client.postMessage(request));
      assert.equal(cairn, "ERR_BAD_REQUEST", JSON.stringify(request));
    }
    const empty = await refusal(client.postMessage({ content: "" }));
    assert.match(empty.message, /^Failed to create message/, "the seed's text");
    const tooLong = await refusal(
      client.postMessage({ content: "ok", client_id: "c".repeat(200) }, { idempotencyKey: "k".repeat(41) }),
    );
    assert.equal(tooLong.cairn, "ERR_BAD_REQUEST");
    const { messages } = (await client.getMessages()).response;
    assert.deepEqual(
      messages.map((m) => m.content),
      ["kept", longest, "on every voter"],
    );
  });

  it("answers a failed post with status error and the seed's text, a failed read with the status table", async () => {
    const quorumLost = "Service temporarily unavailable for writes (quorum lost)";
    const cases: [CairnError, status, RegExp][] = [
      [
        new CairnError("ERR_UNAVAILABLE", "no leader"),
        status.UNAVAILABLE,
        /^Service temporarily unavailable for writes \(quorum lost\)$/,
      ],
      [
        new CairnError("ERR_TIMEOUT", "outcome unknown"),
        status.DEADLINE_EXCEEDED,
        /^Outcome unknown.*same idempotency-key/,
      ],
      [new CairnError("ERR_SHUTTING_DOWN", "stopping"), status.UNAVAILABLE, /quorum lost/],
      [new CairnError("ERR_BUSY", "busy"), status.RESOURCE_EXHAUSTED, /^Rate limited/],
      [
        new CairnError("ERR_WRITE_CONCERN", "durable on 2 of 3 voting members", {
          votersWithEntry: 2,
          voters: 3,
        }),
        status.DEADLINE_EXCEEDED,
        /^Failed to replicate message to all workers: durable on 2 of 3/,
      ],
    ];
    for (const [error, expected, text] of cases) {
      log.failWith = error;
      const posted = await refusal(client.postMessage({ content: "x" }));
      assert.match(posted.message, text, error.code);
      assert.equal(posted.cairn, error.code);
      assert.match(posted.trailers["cairn-message"] ?? "", new RegExp(error.message));
      const read = await failure(client.getMessages());
      assert.equal(read.code, expected);
      assert.equal(read.cairn, error.code);
    }
    log.failWith = new CairnError("ERR_WRITE_CONCERN", "2 of 3", { votersWithEntry: 2, voters: 3 });
    const counted = await refusal(client.postMessage({ content: "x", write_concern: 3 }));
    assert.equal(counted.trailers["cairn-voters-with-entry"], "2");
    assert.equal(counted.trailers["cairn-voters"], "3");
    log.failWith = new CairnError("ERR_NOT_LEADER", "stepped down", {
      leaderId: 2,
      leader: { grpc: "127.0.0.1:50053" },
    });
    const moved = await refusal(client.postMessage({ content: "x" }));
    assert.equal(moved.message, quorumLost);
    assert.match(
      moved.trailers["cairn-message"] ?? "",
      /nothing was done; retry.*leader at 127\.0\.0\.1:50053/,
    );
    assert.equal(moved.trailers["cairn-leader"], "127.0.0.1:50053");
    log.failWith = undefined;
    assert.deepEqual((await client.getMessages()).response.messages, []);
    for (const code of errorCodes) assert.ok(grpcStatusOf[code] !== status.OK, code);
  });

  it("pages with CatchUp and refuses GetMessages past one page", async () => {
    for (const content of ["a", "b", "c"]) await client.postMessage({ content });
    const all = (await client.catchUp(0)).response;
    assert.equal(all.status, "success");
    assert.deepEqual(
      all.messages.map((m) => [m.content, m.sequence_number, m.signature]),
      [
        ["a", 1, ""],
        ["b", 2, ""],
        ["c", 3, ""],
      ],
    );
    const rest = (await client.catchUp(2)).response.messages;
    assert.deepEqual(
      rest.map((m) => m.content),
      ["c"],
    );
    assert.equal(rest[0]?.parent_id, all.messages[1]?.message_id, "the parent comes with the page");
    assert.deepEqual((await client.catchUp(99)).response.messages, [], "past the end: empty, no crash");
    assert.equal((await failure(client.catchUp(-1))).code, status.INVALID_ARGUMENT);
    const page = streams.limits.readLimitMax;
    for (let i = 3; i < page; i++)
      await streams.append(grpcStreamName, { payload: new TextEncoder().encode("m") });
    assert.equal((await client.getMessages()).response.messages.length, page);
    await streams.append(grpcStreamName, { payload: new TextEncoder().encode("one too many") });
    const tooMany = await failure(client.getMessages());
    assert.equal(tooMany.code, status.RESOURCE_EXHAUSTED);
    assert.match(tooMany.details, /CatchUp/);
    const next = (await client.catchUp(page)).response.messages;
    assert.deepEqual(
      next.map((m) => m.content),
      ["one too many"],
    );
  });

  it("answers INVALID_ARGUMENT to a request that does not decode or random bytes, RESOURCE_EXHAUSTED to an oversize one", async () => {
    const session = connectHttp2(`http://127.0.0.1:${server.address.port}`);
    session.on("error", () => undefined);
    const call = (message: Uint8Array) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const stream = session.request({
          [http2.HTTP2_HEADER_METHOD]: "POST",
          [http2.HTTP2_HEADER_PATH]: "/messages.MessageService/PostMessage",
          "content-type": "application/grpc",
          te: "trailers",
        });
        // A failure may come as a trailers-only response: the status is then in the headers.
        let answer: Record<string, unknown> | undefined;
        stream.on("response", (headers) => {
          if (headers["grpc-status"] !== undefined) answer = headers;
        });
        stream.on("trailers", (trailers) => {
          answer = trailers;
        });
        // Answered once the stream is closed, not at its status: the next call opens another
        // stream on this session, and under load one the client still counted as open made it
        // go past the server's concurrent-stream limit (NGHTTP2_REFUSED_STREAM in a CI run).
        stream.on("close", () => {
          if (answer !== undefined) resolve(answer);
          else reject(new Error(`the stream closed without a status (code ${stream.rstCode})`));
        });
        stream.on("error", reject);
        stream.resume();
        stream.end(grpcFrame(message));
      });
    // Field 2 (write_concern, a varint) without its value.
    const malformed = await call(Uint8Array.of(0x10));
    assert.equal(malformed["grpc-status"], String(status.INVALID_ARGUMENT));
    assert.equal(malformed["cairn-code"], "ERR_BAD_REQUEST");
    const oversize = await call(new Uint8Array(65 * 1024));
    assert.equal(oversize["grpc-status"], String(status.RESOURCE_EXHAUSTED));
    assert.deepEqual((await client.getMessages()).response.messages, [], "nothing stored");
    // Random request bodies: each is answered (stored if it happens to decode to valid content,
    // refused otherwise), and the server keeps serving.
    const prng = new Prng(15);
    for (let i = 0; i < 300; i++) {
      const body = Uint8Array.from({ length: prng.below(64) }, () => prng.below(256));
      const answer = await call(body);
      // OK: stored, or refused as the seed refused bad content (status "error" in the body).
      assert.ok(
        [String(status.OK), String(status.INVALID_ARGUMENT)].includes(String(answer["grpc-status"])),
        `status ${String(answer["grpc-status"])} for ${Buffer.from(body).toString("hex")}`,
      );
    }
    session.close();
    assert.equal((await client.postMessage({ content: "still serving" })).response.status, "success");
  });

  it("answers garbage bytes and malformed HTTP/2 frames with GOAWAY, closes, and keeps serving", async () => {
    const port = server.address.port;
    const answers = [
      await sendRaw(port, new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
      await sendRaw(
        port,
        Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256),
      ),
    ];
    const preface = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    // A SETTINGS frame whose length is not a multiple of 6 (a FRAME_SIZE_ERROR), then a HEADERS
    // frame on stream 1 whose header block is not valid HPACK.
    const badSettings = Uint8Array.of(0, 0, 5, 0x4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5);
    const badHeaders = Uint8Array.of(0, 0, 4, 0x1, 0x5, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff);
    answers.push(
      await sendRaw(port, Buffer.concat([preface, Uint8Array.of(0, 0, 0, 0x4, 0, 0, 0, 0, 0), badHeaders])),
    );
    answers.push(await sendRaw(port, Buffer.concat([preface, badSettings])));
    for (const types of answers) assert.ok(types.includes(GOAWAY), `frames ${types.join(",")}`);
    const after = await client.postMessage({ content: "still here" });
    assert.equal(after.response.status, "success");
  });
});
