// Tolerex's users point their unchanged client at any Cairn node: three real node processes, each
// serving the text protocol in Tolerex compatibility mode, driven by a client that syncs on the
// `tolerex> ` prompt exactly as Tolerex's measuring client does. A message written through a
// follower is read back through every node and over HTTP under its documented key; with no
// majority left, the survivor answers `ERROR: unavailable`, never NOT_FOUND.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ProcessCluster, type ProcessNode, startTolerexCluster } from "../support/process-cluster.js";
import { PromptClient } from "../support/prompt-client.js";
import { waitFor } from "../support/wait-for.js";

describe("the text protocol on a 3-node cluster", { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;
  let textPorts = new Map<string, number>();

  const connect = async (node: ProcessNode) => {
    const port = textPorts.get(node.name);
    assert.ok(port !== undefined);
    return (await PromptClient.connect("127.0.0.1", port, "tolerex> ")).client;
  };

  before(async () => {
    ({ cluster, textPorts } = await startTolerexCluster(3));
  });
  after(async () => {
    await cluster?.close();
  });

  it("stores through a follower and reads on every node and over HTTP", async () => {
    const leader = await cluster.leader();
    const follower = cluster.nodes.find((n) => n !== leader);
    assert.ok(follower !== undefined);
    const client = await connect(follower);
    assert.equal(await client.command("SET 9000000000 hello   from  a follower"), "OK");
    assert.equal(await client.command("GET 9000000000"), "hello   from  a follower");
    client.close();
    for (const node of cluster.nodes) {
      const other = await connect(node);
      assert.equal(await other.command("get 9000000000"), "hello   from  a follower");
      assert.equal(await other.command("GET 404"), "NOT_FOUND");
      assert.equal(await other.command("EXIT"), "Bye");
    }
    const http = await fetch(`${leader.httpUrl}/v1/kv/hatokuse:9000000000`);
    assert.equal(((await http.json()) as { value: string }).value, "hello   from  a follower");
  });

  it("answers ERROR: unavailable, not NOT_FOUND, when no majority is left", async () => {
    const leader = await cluster.leader();
    const [survivor, ...others] = [...cluster.nodes.filter((n) => n !== leader), leader];
    assert.ok(survivor !== undefined);
    const client = await connect(survivor);
    assert.equal(await client.command("SET 77 before"), "OK");
    for (const node of others) await cluster.kill(node);
    await waitFor(
      "the survivor to know no leader",
      async () => {
        const response = await fetch(`${survivor.httpUrl}/v1/cluster`, {
          signal: AbortSignal.timeout(2_000),
        });
        const status = (await response.json()) as { leader: unknown };
        return status.leader === null;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    assert.equal(await client.command("GET 77"), "ERROR: unavailable");
    assert.equal(await client.command("SET 78 during"), "ERROR: unavailable");
    client.close();
    for (const node of others) await cluster.start(node);
    const again = await connect(survivor);
    await waitFor("a leader again", async () => (await again.command("GET 77")) === "before", {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    assert.equal(await again.command("GET 78"), "NOT_FOUND", "a refused SET never appears");
    again.close();
  });
});
