// The gRPC replicator's users point their unchanged client at any Cairn node: three real node
// processes, each serving MessageService on its gRPC port, called by a grpc-js client generated
// from the repository's .proto, through a follower: every method answers in the seed's shapes with
// one total order on every node; a retry with the same client_id and idempotency-key, on the same
// or another node, is stored once, also across a leader kill; write_concern 3 waits for every voter
// and, with one paused, answers the seed's "error" naming how many voters have it; bad input is
// answered as the seed answered it (status "error") and changes nothing; garbage bytes and a
// malformed HTTP/2 frame on the port leave the node serving.
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { isServiceError, MessageServiceClient } from "../support/grpc-client.js";
import { freePort, ProcessCluster, type ProcessNode } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

/** Statuses after which a retry of the same request is safe with an idempotency key. */
const retryable = new Set<status>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

/** Cairn codes of a post answered `status: "error"` after which a retry with the same key is safe. */
const retryableCodes = new Set(["ERR_UNAVAILABLE", "ERR_NOT_LEADER", "ERR_TIMEOUT", "ERR_SHUTTING_DOWN"]);

describe("the gRPC MessageService on a 3-node cluster", { timeout: 300_000 }, () => {
  let cluster: ProcessCluster;
  const grpcPorts = new Map<string, number>();
  const clients = new Map<string, MessageServiceClient>();

  /** One client per node; grpc-js reconnects by itself after the node restarts. */
  const clientOf = (node: ProcessNode) => {
    let client = clients.get(node.name);
    if (client === undefined) {
      client = new MessageServiceClient(`127.0.0.1:${grpcPorts.get(node.name)}`);
      clients.set(node.name, client);
    }
    return client;
  };
  const contents = async (client: MessageServiceClient) =>
    (await client.getMessages()).response.messages.map((m) => m.content);

  before(async () => {
    cluster = await ProcessCluster.create(3);
    for (const node of cluster.nodes) {
      const port = await freePort();
      grpcPorts.set(node.name, port);
      cluster.nodeExtraArgs.set(node.name, ["--grpc-listen", `127.0.0.1:${port}`]);
    }
    await cluster.startAll();
    // A node starts its gRPC server after its HTTP API answers: wait until each one serves gRPC,
    // so a node that could not bind its port shows here, with its output.
    for (const node of cluster.nodes) {
      await waitFor(
        `${node.name} to serve gRPC`,
        async () => {
          if (node.process === undefined) throw new Error(`${node.name} exited:\n${node.output}`);
          try {
            await clientOf(node).getMessages();
            return true;
          } catch (error) {
            // Not listening yet, or no leader elected yet.
            if (isServiceError(error) && retryable.has(error.code)) return false;
            throw error;
          }
        },
        { timeoutMs: 60_000, intervalMs: 50 },
      );
    }
  });
  after(async () => {
    for (const client of clients.values()) client.close();
    await cluster?.close();
  });

  it("posts through a follower and every node lists one total order with its parent chain", async () => {
    const leader = await cluster.leader(60_000);
    const follower = cluster.nodes.find((n) => n !== leader);
    assert.ok(follower !== undefined);
    const client = clientOf(follower);
    for (const [i, content] of ["first", "second", "third"].entries()) {
      const posted = await client.postMessage({ content, write_concern: i, client_id: "seed-client" });
      assert.deepEqual(posted.response, {
        status: "success",
        message: "Message added successfully",
        total_messages: i + 1,
      });
    }
    for (const node of cluster.nodes) {
      const { messages } = (await clientOf(node).getMessages()).response;
      assert.deepEqual(
        messages.map((m) => [m.sequence_number, m.content]),
        [
          [1, "first"],
          [2, "second"],
          [3, "third"],
        ],
        node.name,
      );
      assert.deepEqual(
        messages.map((m) => m.parent_id),
        ["", messages[0]?.message_id, messages[1]?.message_id],
      );
    }
    const caughtUp = (await client.catchUp(1)).response;
    assert.equal(caughtUp.status, "success");
    assert.deepEqual(
      caughtUp.messages.map((m) => m.content),
      ["second", "third"],
    );
    const http = await fetch(`${leader.httpUrl}/v1/streams/grpc-messages/messages`);
    const stored = (await http.json()) as { messages: { payload: string }[] };
    assert.deepEqual(
      stored.messages.map((m) => m.payload),
      ["first", "second", "third"],
      "the same messages over HTTP",
    );
  });

  it("stores a retry once, on the same node or another", async () => {
    const leader = await cluster.leader(60_000);
    const [a, b] = cluster.nodes.filter((n) => n !== leader);
    assert.ok(a !== undefined && b !== undefined);
    const before = (await contents(clientOf(a))).length;
    const request = { content: "retried", write_concern: 1, client_id: "retrying-client" };
    const original = await clientOf(a).postMessage(request, { idempotencyKey: "request-1" });
    const sameNode = await clientOf(a).postMessage(request, { idempotencyKey: "request-1" });
    const otherNode = await clientOf(b).postMessage(request, { idempotencyKey: "request-1" });
    const viaLeader = await clientOf(leader).postMessage(request, { idempotencyKey: "request-1" });
    for (const retry of [sameNode, otherNode, viaLeader]) {
      assert.equal(retry.response.status, "success");
      assert.equal(retry.response.total_messages, original.response.total_messages);
      assert.equal(retry.trailers["cairn-duplicate"], "true");
    }
    const after = await contents(clientOf(b));
    assert.equal(after.length, before + 1);
    assert.equal(after.filter((c) => c === "retried").length, 1);
  });

  it("waits for every voter on write_concern 3 through a follower, and names the count when one is paused", async () => {
    const leader = await cluster.leader(60_000);
    const [a, b] = cluster.nodes.filter((n) => n !== leader);
    assert.ok(a !== undefined && b !== undefined);
    const everywhere = await clientOf(a).postMessage({
      content: "on all three",
      write_concern: 3,
      client_id: "wc",
    });
    assert.equal(everywhere.response.status, "success", everywhere.response.message);
    cluster.pause(b);
    try {
      const request = { content: "on two of three", write_concern: 3, client_id: "wc" };
      const partial = await clientOf(a).postMessage(request, { idempotencyKey: "wc-2" });
      assert.equal(partial.response.status, "error");
      assert.match(
        partial.response.message,
        /^Failed to replicate message to all workers: the write is durable on 2 of 3 voting members/,
      );
      assert.equal(partial.trailers["cairn-code"], "ERR_WRITE_CONCERN");
      assert.equal(partial.trailers["cairn-voters-with-entry"], "2");
      assert.equal(partial.trailers["cairn-voters"], "3");
      // Stored on the majority: the message is there, and majority writes go on meanwhile.
      assert.ok((await contents(clientOf(a))).includes("on two of three"));
      const majority = await clientOf(a).postMessage({ content: "majority meanwhile", write_concern: 2 });
      assert.equal(majority.response.status, "success");
    } finally {
      cluster.resume(b);
    }
    // Once the paused voter is back, the same request (same key) is the original, now on every voter.
    await waitFor(
      "the retried write_concern 3 post to be confirmed on every voter",
      async () => {
        const retried = await clientOf(a).postMessage(
          { content: "on two of three", write_concern: 3, client_id: "wc" },
          { idempotencyKey: "wc-2" },
        );
        if (retried.response.status !== "success") return false;
        assert.equal(retried.trailers["cairn-duplicate"], "true");
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const listed = await contents(clientOf(b));
    assert.equal(listed.filter((c) => c === "on two of three").length, 1, "stored once");
  });

  it("answers bad input through a follower as the seed did (status error) and changes nothing", async () => {
    const leader = await cluster.leader(60_000);
    const follower = cluster.nodes.find((n) => n !== leader);
    assert.ok(follower !== undefined);
    const client = clientOf(follower);
    const before = await contents(client);
    for (const request of [
      { content: "" },
      { content: "   " },
      { content: "x".repeat(1001) },
      { content: "fine", write_concern: -5 },
    ]) {
      const refused = await client.postMessage(request);
      assert.equal(refused.response.status, "error", JSON.stringify(request).slice(0, 60));
      assert.equal(refused.trailers["cairn-code"], "ERR_BAD_REQUEST");
    }
    assert.deepEqual(await contents(clientOf(leader)), before);
  });

  it("keeps serving after garbage bytes and a malformed HTTP/2 frame on a node's gRPC port", async () => {
    const node = cluster.nodes[0];
    assert.ok(node !== undefined);
    const port = grpcPorts.get(node.name) ?? 0;
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const payloads = [
      Buffer.from(Array.from({ length: 8192 }, (_, i) => (i * 131 + 7) % 256)),
      // A SETTINGS frame whose length is not a multiple of 6.
      Buffer.concat([preface, Buffer.from([0, 0, 5, 0x4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5])]),
      // A HEADERS frame whose block is not valid HPACK.
      Buffer.concat([preface, Buffer.from([0, 0, 4, 0x1, 0x5, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])]),
    ];
    for (const bytes of payloads) {
      await new Promise<void>((resolve) => {
        const socket = connect(port, "127.0.0.1", () => socket.write(bytes));
        socket.on("error", () => undefined);
        // The server's answer (a GOAWAY) is enough; the socket is closed here, not awaited.
        socket.once("data", () => {
          socket.destroy();
          resolve();
        });
      });
    }
    assert.ok(node.process !== undefined, "the node is still running");
    const posted = await clientOf(node).postMessage({ content: "after the garbage" });
    assert.equal(posted.response.status, "success");
  });

  it("loses nothing and stores a retried post once across a leader kill", async () => {
    const leader = await cluster.leader(60_000);
    const survivor = cluster.nodes.find((n) => n !== leader);
    assert.ok(survivor !== undefined);
    const client = clientOf(survivor);
    const before = await contents(client);
    await cluster.kill(leader);
    const posted: string[] = [];
    for (let i = 0; i < 5; i++) {
      const content = `during failover ${i}`;
      // The seed's client retries; with the same key a retry can never store a second copy.
      await waitFor(
        `post ${i} to be acknowledged`,
        async () => {
          try {
            const answer = await client.postMessage(
              { content, write_concern: 2, client_id: "failover" },
              { idempotencyKey: `failover-${i}` },
            );
            if (answer.response.status === "success") return true;
            // The seed's way of saying "not stored": retry with the same key.
            const code = answer.trailers["cairn-code"] ?? "";
            if (retryableCodes.has(code)) return false;
            throw new Error(`post ${i} refused: ${code} ${answer.response.message}`);
          } catch (error) {
            if (isServiceError(error) && retryable.has(error.code)) return false;
            throw error;
          }
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      posted.push(content);
    }
    await cluster.start(leader);
    await waitFor(
      "the restarted node to list every message",
      async () => {
        try {
          const listed = await contents(clientOf(leader));
          return listed.length === before.length + posted.length;
        } catch {
          return false;
        }
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    for (const node of cluster.nodes) {
      assert.deepEqual(await contents(clientOf(node)), [...before, ...posted], node.name);
    }
  });
});
