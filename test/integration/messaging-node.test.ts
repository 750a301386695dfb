// The aiohttp messaging node's users point its Postman collection ("Distributed Messaging System -
// Fault Tolerance Tests") at a real 3-node Cairn cluster of processes: each of the collection's
// requests is sent as the collection sends it and its assertions are checked, with the operator's
// manual steps ("Stop Node 2", "Wait 10 seconds", "Restart Node 2") done by killing and restarting
// a process and waiting on conditions. Writes go to a follower as well as the leader (the seed's
// followers answered 307). The quorum test's 503 comes when a majority is gone (the seed's node
// ran an absolute quorum of 3 of 4; Cairn's is a majority), and the refused write never appears.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ProcessCluster, type ProcessNode } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

type Json = Record<string, unknown>;

async function call(node: ProcessNode, method: "GET" | "POST", path: string, body?: Json) {
  const response = await fetch(`${node.httpUrl}${path}`, {
    method,
    ...(body !== undefined
      ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } }
      : {}),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, body: (await response.json()) as Json };
}

async function msgIdsOn(node: ProcessNode): Promise<string[]> {
  const listed = await call(node, "GET", "/messages?limit=1000");
  assert.equal(listed.status, 200);
  return (listed.body["messages"] as Json[]).map((m) => String(m["msg_id"]));
}

/** Whether `node` lists `msgId`; false while it cannot answer yet (a restarted node finding its leader). */
async function lists(node: ProcessNode, msgId: unknown): Promise<boolean> {
  const listed = await call(node, "GET", "/messages?limit=1000");
  if (listed.status === 503) return false;
  assert.equal(listed.status, 200);
  return (listed.body["messages"] as Json[]).some((m) => m["msg_id"] === msgId);
}

describe("the messaging node's Postman collection on a 3-node cluster", { timeout: 300_000 }, () => {
  let cluster: ProcessCluster;
  let leader: ProcessNode;
  let followers: ProcessNode[];

  const send = (node: ProcessNode, payload: string) =>
    call(node, "POST", "/send", { sender: "user1", recipient: "user2", payload });

  before(async () => {
    cluster = await ProcessCluster.create(3);
    await cluster.startAll();
    leader = await cluster.leader(60_000);
    followers = cluster.nodes.filter((n) => n !== leader);
  });
  after(async () => {
    await cluster?.close();
  });

  it("0 Status and 1 Health: /status has node_id and peer_status, /heartbeat answers on every node", async () => {
    for (const node of cluster.nodes) {
      const status = await call(node, "GET", "/status");
      assert.equal(status.status, 200);
      assert.equal(status.body["node_id"], node.name);
      assert.equal(typeof status.body["peer_status"], "object");
      await waitFor(`${node.name} to name the leader`, async () => {
        const consensus = (await call(node, "GET", "/status")).body["consensus"] as Json;
        return consensus["leader_url"] === leader.httpUrl;
      });
      const beat = await call(node, "GET", "/heartbeat");
      assert.equal(beat.status, 200);
      assert.equal(beat.body["status"], "ok");
      assert.equal(beat.body["node_id"], node.name);
    }
  });

  it("2 Basic: a message sent to a follower is listed by the other nodes", async () => {
    const [via] = followers;
    assert.ok(via !== undefined);
    const sent = await send(via, "Hello from Postman test!");
    assert.equal(sent.status, 200);
    assert.equal(sent.body["status"], "ok");
    const msgId = sent.body["msg_id"];
    assert.equal(typeof msgId, "string");
    for (const node of cluster.nodes.filter((n) => n !== via)) {
      assert.ok((await msgIdsOn(node)).includes(String(msgId)), node.name);
    }
  });

  it("3 Failure: with a node stopped /send succeeds, and the restarted node lists the message", async () => {
    const [stopped, via] = followers;
    assert.ok(stopped !== undefined && via !== undefined);
    await cluster.kill(stopped);
    const sent = await send(via, "Sent while a node is down");
    assert.equal(sent.status, 200);
    assert.equal(sent.body["status"], "ok");
    await cluster.start(stopped);
    await waitFor("the restarted node to list the message", () => lists(stopped, sent.body["msg_id"]), {
      timeoutMs: 60_000,
      intervalMs: 200,
    });
  });

  it("4 Quorum: ok with a majority, the seed's 503 body without one, and the refused write never appears", async () => {
    leader = await cluster.leader(60_000);
    followers = cluster.nodes.filter((n) => n !== leader);
    const [survivor, other] = followers;
    assert.ok(survivor !== undefined && other !== undefined);
    const first = await send(survivor, "Quorum test 1");
    assert.deepEqual([first.status, first.body["status"]], [200, "ok"]);
    await cluster.kill(other);
    const second = await send(survivor, "Quorum test 2, one node down");
    assert.deepEqual([second.status, second.body["status"]], [200, "ok"], "a majority is left");
    await cluster.kill(leader);
    await waitFor(
      "the survivor to know no leader",
      async () => {
        const status = await call(survivor, "GET", "/status");
        return (status.body["consensus"] as Json)["leader_url"] === null;
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    const refused = await call(survivor, "POST", "/send", {
      sender: "user1",
      recipient: "user2",
      payload: "Quorum test 3, no majority",
      msg_id: "refused-without-majority",
    });
    assert.deepEqual(
      [refused.status, refused.body],
      [503, { status: "error", reason: "replication quorum not achieved" }],
    );
    await cluster.start(other);
    await cluster.start(leader);
    leader = await cluster.leader(60_000);
    followers = cluster.nodes.filter((n) => n !== leader);
    const after = await send(survivor, "Quorum test 4, majority back");
    assert.equal(after.status, 200);
    for (const node of cluster.nodes) {
      await waitFor(`${node.name} to list the write made after recovery`, () =>
        lists(node, after.body["msg_id"]),
      );
      assert.ok(!(await msgIdsOn(node)).includes("refused-without-majority"), node.name);
    }
  });

  it("5 Direct: /replicate through a follower stores the message once, idempotently", async () => {
    const [via, other] = followers;
    assert.ok(via !== undefined && other !== undefined);
    const body = {
      msg: {
        msg_id: "direct-test-123",
        sender: "system",
        recipient: "all",
        payload: "Direct replication test",
        ts: Math.floor(Date.now() / 1000),
      },
    };
    const direct = await call(via, "POST", "/replicate", body);
    assert.deepEqual([direct.status, direct.body["status"]], [200, "ok"]);
    const again = await call(other, "POST", "/replicate", body);
    assert.deepEqual(again.body, direct.body, "a repeat on another node answers the original");
    const resent = await call(leader, "POST", "/send", { ...body.msg });
    assert.equal(resent.body["seq"], direct.body["seq"], "a /send of the same msg_id too");
    for (const node of cluster.nodes) {
      const ids = await msgIdsOn(node);
      assert.equal(ids.filter((id) => id === "direct-test-123").length, 1, node.name);
    }
  });

  // Not in the collection: its users keep sending while the leader dies. A survivor answers each
  // /send (503 "quorum not achieved" until a new leader is elected, then ok); a client retrying the
  // same msg_id stores it once, and the killed leader, restarted, lists it too.
  it("6 Leader kill: /send through a survivor succeeds once a new leader leads, stored once everywhere", async () => {
    leader = await cluster.leader(60_000);
    const [survivor] = cluster.nodes.filter((n) => n !== leader);
    assert.ok(survivor !== undefined);
    await cluster.kill(leader);
    const message = { sender: "user1", recipient: "user2", payload: "Sent across a leader kill" };
    let sent = await call(survivor, "POST", "/send", { ...message, msg_id: "across-leader-kill" });
    await waitFor(
      "a retried /send through the survivor to be taken",
      async () => {
        if (sent.status === 200) return true;
        assert.deepEqual(sent.body, { status: "error", reason: "replication quorum not achieved" });
        sent = await call(survivor, "POST", "/send", { ...message, msg_id: "across-leader-kill" });
        return sent.status === 200;
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    assert.equal(sent.body["status"], "ok");
    await cluster.start(leader);
    for (const node of cluster.nodes) {
      await waitFor(`${node.name} to list the message sent across the kill`, () =>
        lists(node, "across-leader-kill"),
      );
      const ids = await msgIdsOn(node);
      assert.equal(ids.filter((id) => id === "across-leader-kill").length, 1, node.name);
    }
  });
});
