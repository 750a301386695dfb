// `cairn dev`'s supervisor and control API on real node processes: a fourth node is added (it joins
// as a learner and is promoted) and removed (Raft removal, then its data deleted); a removal that
// would leave no live majority is refused with ERR_BREAKS_MAJORITY; a node stopped and started
// again keeps its data; Axon's launcher routes answer in Axon's shapes; every process is stopped.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { AxonNodeMap, ControlNode, ControlNodeList } from "../../src/api/index.js";
import { type ControlServer, startControlServer } from "../../src/cli/control-server.js";
import { type DevCluster, startDevCluster } from "../../src/cli/dev-cluster.js";
import type { NodeAddresses } from "../../src/cli/supervisor.js";
import { CairnClient } from "../../src/client/index.js";
import { freePort } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

const root = new URL("../../", import.meta.url).pathname;
// Shorter Raft ticks: elections settle in a few hundred milliseconds (the nodes read CAIRN_*).
process.env["CAIRN_TICK_INTERVAL_MS"] = "50";

describe("cairn dev: the supervisor on real processes", { timeout: 240_000 }, () => {
  let dir: string;
  let cluster: DevCluster;
  let control: ControlServer;
  const pids = new Set<number>();

  const api = async <T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> => {
    const response = await fetch(`${control.url}${path}`, {
      method,
      ...(body !== undefined
        ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }
        : {}),
    });
    return { status: response.status, body: (await response.json()) as T };
  };
  const list = async () => (await api<ControlNodeList>("GET", "/v1/control/nodes")).body;
  const nodeOf = async (name: string) => (await list()).nodes.find((n) => n.name === name);
  const client = () =>
    new CairnClient({
      endpoints: cluster.nodes.map((n) => n.httpUrl),
      retryBudgetMs: 20_000,
      requestTimeoutMs: 2_000,
    });
  const remember = () => {
    for (const n of cluster.nodes) if (n.pid !== null) pids.add(n.pid);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "cairn-dev-"));
    const slots = new Map<number, NodeAddresses>();
    for (let i = 1; i <= 5; i++) {
      slots.set(i, {
        httpUrl: `http://127.0.0.1:${await freePort()}`,
        peerAddress: `127.0.0.1:${await freePort()}`,
        redisAddress: null,
      });
    }
    cluster = await startDevCluster({
      nodes: 3,
      dir,
      httpPort: 0,
      peerPort: 0,
      cairnBin: join(root, "src/cli/run.ts"),
      nodeFlags: ["--import", "tsx"],
      print: () => {},
      addressesOf: (index) => {
        const slot = slots.get(index);
        if (slot === undefined) throw new Error(`no free ports prepared for slot ${index}`);
        return slot;
      },
    });
    remember();
    cluster.watch(200);
    control = await startControlServer({
      supervisor: cluster,
      port: 0,
      staticDir: join(dir, "no-dashboard"),
    });
    await waitFor("a leader", async () => (await list()).leader !== null, {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    await client().put("kept", "across restarts");
  });

  after(async () => {
    remember();
    await control?.close();
    await cluster?.close();
    for (const pid of pids) {
      assert.throws(() => process.kill(pid, 0), /ESRCH/, `process ${pid} was stopped`);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("lists three running voters and the leader, also in Axon's shape", async () => {
    const nodes = await list();
    assert.deepEqual(
      nodes.nodes.map((n) => [n.name, n.state]),
      [
        ["n1", "running"],
        ["n2", "running"],
        ["n3", "running"],
      ],
    );
    const axon = (await api<AxonNodeMap>("GET", "/api/control/nodes")).body;
    assert.deepEqual(Object.keys(axon), ["n1", "n2", "n3"]);
    const leaders = Object.values(axon).filter((n) => n.is_leader);
    assert.equal(leaders.length, 1);
    assert.equal(leaders[0]?.id, nodes.leader);
    assert.equal(leaders[0]?.status, "online");
    const leader = nodes.nodes.find((n) => n.name === nodes.leader);
    assert.equal(leaders[0]?.api_port, Number(new URL(leader?.httpUrl ?? "http://x").port));
  });

  it("lists keys with stale consistency on every node (a fractional staleness once answered 500)", async () => {
    for (const node of cluster.nodes) {
      // A node counts as started once spawned; its HTTP port may open a moment later.
      await waitFor(`${node.name} to answer`, async () => {
        try {
          return (await fetch(`${node.httpUrl}/health/live`)).ok;
        } catch {
          return false;
        }
      });
      const response = await fetch(`${node.httpUrl}/v1/kv?consistency=stale`);
      assert.equal(response.status, 200, await response.text());
    }
  });

  it("adds a node that joins as a learner and is promoted, then removes it and deletes its data", async () => {
    const added = await api<ControlNode>("POST", "/v1/control/nodes", {});
    assert.equal(added.status, 201);
    assert.equal(added.body.name, "n4");
    remember();
    await waitFor("n4 promoted to voter", async () => (await nodeOf("n4"))?.membership === "voter", {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    assert.equal(
      (await new CairnClient({ endpoints: [added.body.httpUrl] }).get("kept"))?.value,
      "across restarts",
    );
    const removed = await api<{ removed: string }>("DELETE", "/v1/control/nodes/n4");
    assert.deepEqual(removed, { status: 200, body: { removed: "n4" } });
    assert.equal(existsSync(added.body.dataDir), false, "its data is deleted");
    const status = (await (await fetch(`${cluster.nodes[0]?.httpUrl}/v1/cluster`)).json()) as {
      members: { id: number }[];
    };
    assert.ok(!status.members.some((m) => m.id === added.body.id), "it is no member any more");
  });

  it("refuses to remove a node when the others would have no live majority", async () => {
    const stopped = await api<ControlNode>("POST", "/v1/control/nodes/n3/stop");
    assert.equal(stopped.body.state, "stopped");
    const refused = await api<{ error: { code: string; message: string } }>("DELETE", "/v1/control/nodes/n1");
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, "ERR_BREAKS_MAJORITY");
    const axonRefused = await api<{ error: string }>("POST", "/api/control/delete/n1");
    assert.equal(axonRefused.status, 409);
    assert.match(axonRefused.body.error, /majority/);
    assert.equal((await nodeOf("n1"))?.state, "running");
    assert.equal(
      (await api<{ status: string }>("POST", "/api/control/start/n3")).body.status,
      "start signal sent",
    );
    remember();
  });

  it("keeps every node's data across a stop and start of the whole cluster", async () => {
    for (const name of ["n1", "n2", "n3"]) await api("POST", `/v1/control/nodes/${name}/stop`);
    assert.ok((await list()).nodes.every((n) => n.state === "stopped"));
    for (const name of ["n1", "n2", "n3"]) await api("POST", `/v1/control/nodes/${name}/start`);
    remember();
    // Started means spawned: wait until every node answers and one leads (slow on a loaded machine).
    await waitFor(
      "the restarted nodes to answer and elect a leader",
      async () => {
        const nodes = await list();
        return nodes.leader !== null && nodes.nodes.every((n) => n.health === "ok");
      },
      { timeoutMs: 120_000, intervalMs: 200 },
    );
    assert.equal((await client().get("kept"))?.value, "across restarts");
  });
});
