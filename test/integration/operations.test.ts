// The operator's view of real `cairn node` processes on 127.0.0.1: JSON log lines with level, time,
// node and component; readiness on every node once caught up; a node that binds every interface
// (0.0.0.0) for HTTP and peers announces the addresses it was told to advertise, joins through
// them and serves; and SIGTERM on the leader flips its readiness, hands leadership to another
// voter, closes and exits 0, with the cluster serving on.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ClusterStatus } from "../../src/api/index.js";
import { ProcessCluster, type ProcessNode, stablePort } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

async function status(node: ProcessNode): Promise<ClusterStatus> {
  return (await (await fetch(`${node.httpUrl}/v1/cluster`)).json()) as ClusterStatus;
}

async function ready(node: ProcessNode): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${node.httpUrl}/health/ready`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The node's log entries: its JSON lines (stderr, in the same output, may hold a runtime warning). */
function entries(node: ProcessNode): Record<string, unknown>[] {
  return node.output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("operations on real node processes", { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;

  before(async () => {
    cluster = await ProcessCluster.create(3, 1);
    const [spare] = cluster.spares;
    assert.ok(spare !== undefined);
    // The joiner binds every interface and is told what to announce: its ProcessNode addresses.
    const httpPort = new URL(spare.httpUrl).port;
    const peerPort = spare.peerAddress.split(":")[1];
    cluster.nodeExtraArgs.set(spare.name, [
      "--http-listen",
      `0.0.0.0:${httpPort}`,
      "--peer-listen",
      `0.0.0.0:${peerPort}`,
      "--advertise-http",
      spare.httpUrl,
      "--advertise-peer",
      spare.peerAddress,
      "--redis-listen",
      `0.0.0.0:${await stablePort()}`,
      "--advertise-redis",
      "redis.example.test:6379",
    ]);
    await cluster.startAll();
  });
  after(async () => {
    await cluster?.close();
  });

  it("writes JSON log lines with level, time, node and component", async () => {
    await cluster.leader();
    // A leader exists before every follower has heard from it (and logged its new role).
    for (const node of cluster.nodes) {
      await waitFor(`${node.name} to log a role change`, () =>
        entries(node).some((e) => e["component"] === "raft" && /^role /.test(String(e["msg"]))),
      );
    }
    for (const node of cluster.nodes) {
      const logged = entries(node);
      assert.ok(logged.length > 0, `${node.name} logged`);
      for (const entry of logged) {
        assert.equal(typeof entry["level"], "string");
        assert.ok(!Number.isNaN(Date.parse(String(entry["time"]))));
        assert.equal(entry["node"], node.name);
      }
      assert.ok(
        logged.some((e) => e["component"] === "raft" && /^role /.test(String(e["msg"]))),
        `${node.name} logs its role changes`,
      );
    }
  });

  it("is ready on every node once caught up", async () => {
    await cluster.client().put("ops-ready", "1");
    for (const node of cluster.nodes) {
      await waitFor(`${node.name} ready`, async () => (await ready(node)).status === 200);
    }
    assert.deepEqual((await fetch(`${cluster.nodes[0]?.httpUrl}/health/live`)).status, 200);
  });

  it("announces advertised addresses, not the 0.0.0.0 it binds, and joins and serves through them", async () => {
    const [spare] = cluster.spares;
    assert.ok(spare !== undefined);
    await cluster.start(spare);
    const leader = await cluster.leader();
    await waitFor("the joiner announced and caught up", async () => {
      const member = (await status(leader)).members.find((m) => m.name === spare.name);
      return member?.httpUrl === spare.httpUrl && (await ready(spare)).status === 200;
    });
    const members = (await status(leader)).members;
    assert.ok(
      members.every((m) => !(m.httpUrl ?? "").includes("0.0.0.0")),
      JSON.stringify(members),
    );
    // A write through the joiner travels to the leader over the peer link and is read back.
    await cluster.client([spare]).put("via-joiner", "j");
    assert.equal((await cluster.client([leader]).get("via-joiner"))?.value, "j");
    const started = entries(spare).find((e) => typeof e["advertised"] === "object");
    assert.deepEqual(
      (started?.["advertised"] as Record<string, unknown> | undefined)?.["redis"],
      "redis.example.test:6379",
    );
    assert.equal(
      (started?.["listen"] as Record<string, unknown> | undefined)?.["peer"],
      `0.0.0.0:${spare.peerAddress.split(":")[1]}`,
    );
  });

  it("drains the leader on SIGTERM: leadership moves to another voter, then the process exits 0", async () => {
    const leader = await cluster.leader();
    const child = leader.process;
    assert.ok(child !== undefined);
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    await cluster.kill(leader, "SIGTERM");
    assert.equal(await exited, 0);
    const drained = entries(leader).find((e) => typeof e["leadership"] === "string");
    assert.equal(drained?.["leadership"], "transferred", JSON.stringify(entries(leader).slice(-8)));
    const next = await cluster.leader();
    assert.notEqual(next, leader);
    await cluster.client([next]).put("after-drain", "1");
    assert.equal((await cluster.client([next]).get("after-drain"))?.value, "1");
  });
});
