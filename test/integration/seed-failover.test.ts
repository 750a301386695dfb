// Tolerex's and Axon's users keep working through a leader kill: three real node processes serving
// the text protocol (Tolerex's banner and prompt) and Axon's /kv routes. What was written through a
// follower before the kill is read in the seeds' shapes on the survivors; writes through a
// survivor succeed once a new leader is elected (a client retries on `ERROR: unavailable` or a 5xx,
// as the seeds' users would); the killed node, started again, answers everything too.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ProcessCluster, type ProcessNode, startTolerexCluster } from "../support/process-cluster.js";
import { PromptClient } from "../support/prompt-client.js";
import { waitFor } from "../support/wait-for.js";

describe("Tolerex's text protocol and Axon's /kv routes across a leader kill", { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;
  let textPorts = new Map<string, number>();

  /** A command on a fresh connection to `node`, as Tolerex's client sends one. */
  const text = async (node: ProcessNode, line: string): Promise<string> => {
    const port = textPorts.get(node.name);
    assert.ok(port !== undefined);
    const { client } = await PromptClient.connect("127.0.0.1", port, "tolerex> ");
    try {
      return await client.command(line);
    } finally {
      client.close();
    }
  };
  /** An Axon request to `node`: the status and the JSON body. */
  const axon = async (node: ProcessNode, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${node.httpUrl}${path}`, {
      method,
      signal: AbortSignal.timeout(10_000),
      ...(body !== undefined
        ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }
        : {}),
    });
    return { status: response.status, body: (await response.json()) as unknown };
  };

  before(async () => {
    ({ cluster, textPorts } = await startTolerexCluster(3));
  });
  after(async () => {
    await cluster?.close();
  });

  it("reads what was written before, takes new writes on a survivor, and the restarted node has both", async () => {
    const leader = await cluster.leader(60_000);
    const followers = cluster.nodes.filter((n) => n !== leader);
    const [first, second] = followers;
    assert.ok(first !== undefined && second !== undefined);
    assert.equal(await text(first, "SET 1 before the kill"), "OK");
    assert.deepEqual(await axon(first, "PUT", "/kv/answer", { value: "42" }), {
      status: 200,
      body: { status: "success" },
    });

    await cluster.kill(leader);
    await waitFor(
      "a Tolerex SET through a survivor to be stored",
      async () => {
        const reply = await text(second, "SET 2 after the kill");
        if (reply === "OK") return true;
        assert.match(reply, /^ERROR: unavailable/, "only an outage may refuse it");
        return false;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    await waitFor(
      "an Axon PUT through a survivor to be stored",
      async () => {
        const put = await axon(second, "PUT", "/kv/after", { value: "true" });
        if (put.status === 200) return true;
        assert.ok(put.status >= 500, JSON.stringify(put));
        return false;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );

    for (const node of followers) {
      assert.equal(await text(node, "GET 1"), "before the kill", node.name);
      assert.equal(await text(node, "get 2"), "after the kill", node.name);
      // The value comes back exactly as stored: the text "42", not the number 42.
      assert.deepEqual(await axon(node, "GET", "/kv/answer"), {
        status: 200,
        body: { key: "answer", value: "42" },
      });
      const all = (await axon(node, "GET", "/kv")).body as Record<string, unknown>;
      assert.equal(all["answer"], "42");
      assert.equal(all["after"], "true");
    }
    assert.deepEqual(await axon(first, "DELETE", "/kv/answer"), { status: 200, body: { status: "success" } });
    const gone = await axon(second, "GET", "/kv/answer");
    assert.equal(gone.status, 404);
    assert.equal((gone.body as { error: string }).error, "key not found");

    await cluster.start(leader);
    await waitFor(
      "the restarted node to answer both protocols with everything",
      async () => {
        try {
          const after = await axon(leader, "GET", "/kv/after");
          return after.status === 200 && (await text(leader, "GET 2")) === "after the kill";
        } catch {
          return false;
        }
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    assert.equal(await text(leader, "GET 1"), "before the kill");
    assert.equal((await axon(leader, "GET", "/kv/answer")).status, 404);
  });
});
