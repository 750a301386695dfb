// A real three-node cluster of `cairn node` processes on 127.0.0.1 with mutual TLS, killed with
// SIGKILL and restarted by pid, checked as a user would: writes through any node are readable
// through every node, and no acknowledged write is lost across a leader's death, a restart, or the
// death of every node at once.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import type { MetricsSnapshot } from "../../src/api/index.js";
import { ProcessCluster } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

describe("a real cluster of node processes", { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;
  const acknowledged = new Map<string, string>();
  let restartedName: string | undefined;

  before(async () => {
    cluster = await ProcessCluster.create(3);
    await cluster.startAll();
  });
  after(async () => {
    await cluster?.close();
  });

  async function readEverywhere(key: string): Promise<(string | undefined)[]> {
    return Promise.all(
      cluster.nodes.filter((n) => n.process).map(async (n) => (await cluster.client([n]).get(key))?.value),
    );
  }

  it("accepts writes through every node and serves them from every node", async () => {
    for (const node of cluster.nodes) {
      const key = `via-${node.name}`;
      await cluster.client([node]).put(key, node.name);
      acknowledged.set(key, node.name);
    }
    for (const [key, value] of acknowledged)
      assert.deepEqual(await readEverywhere(key), [value, value, value]);
  });

  it("exposes Prometheus metrics: role, term, indexes, counters, latency histograms, peer lag", async () => {
    const leader = await cluster.leader();
    const text = await (await fetch(`${leader.httpUrl}/metrics`)).text();
    assert.match(text, /^cairn_raft_role\{role="leader"\} 1$/m);
    assert.match(text, /^cairn_raft_term [1-9]\d*$/m);
    assert.match(text, /^cairn_raft_has_leader 1$/m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    assert.match(text, /^cairn_proposals_total [1-9]\d*$/m);
    assert.match(text, /^cairn_persist_seconds_count [1-9]\d*$/m);
    assert.match(text, /^cairn_peer_lag_entries\{peer="\d+"\} \d+$/m);
  });

  it("answers the same metrics as JSON on /v1/metrics, for charts", async () => {
    const leader = await cluster.leader();
    await cluster.client([leader]).get("metrics-probe");
    const metrics = (await (await fetch(`${leader.httpUrl}/v1/metrics`)).json()) as MetricsSnapshot;
    assert.equal(metrics.role, "leader");
    assert.ok(metrics.counters.proposals > 0);
    assert.ok(metrics.counters.reads > 0, "the read above asked for a barrier");
    assert.equal(metrics.histograms.readMs.counts.length, metrics.latencyBucketsMs.length + 1);
    assert.ok(metrics.histograms.proposalMs.count > 0);
    assert.ok(metrics.histograms.readMs.count > 0);
  });

  it("replaces a SIGKILLed leader and keeps every acknowledged write", async () => {
    const leader = await cluster.leader();
    const client = cluster.client();
    for (let i = 0; i < 30; i++) {
      await client.put(`before-kill-${i}`, String(i));
      acknowledged.set(`before-kill-${i}`, String(i));
    }
    await cluster.kill(leader, "SIGKILL");
    const next = await cluster.leader();
    assert.notEqual(next.name, leader.name);
    const survivors = cluster.client(cluster.nodes.filter((n) => n !== leader));
    for (const [key, value] of acknowledged) assert.equal((await survivors.get(key))?.value, value, key);
    await survivors.put("after-kill", "yes");
    acknowledged.set("after-kill", "yes");
    await cluster.start(leader);
    restartedName = leader.name;
  });

  it("lets a restarted node catch up", async () => {
    const restarted = cluster.nodes.find((n) => n.name === restartedName);
    assert.ok(restarted !== undefined, "the previous test restarted the killed leader");
    // Its own state (a stale read, no leader round trip) receives the writes it missed.
    await waitFor(
      "the restarted node to apply the write made while it was down",
      async () =>
        (await cluster.client([restarted]).get("after-kill", { consistency: "stale" }))?.value === "yes",
      { intervalMs: 100 },
    );
    // And a linearizable read through every node sees it.
    for (const node of cluster.nodes)
      assert.equal((await cluster.client([node]).get("after-kill"))?.value, "yes", node.name);
  });

  it("keeps every acknowledged write when every node is killed at once and restarted", async () => {
    await Promise.all(cluster.nodes.map((n) => cluster.kill(n, "SIGKILL")));
    await cluster.startAll();
    const client = cluster.client();
    for (const [key, value] of acknowledged) assert.equal((await client.get(key))?.value, value, key);
  });

  it("refuses to start with an invalid setting, naming it, with a non-zero status", () => {
    const [node] = cluster.nodes;
    assert.ok(node !== undefined);
    const args = cluster.args(node, ["--election-ticks", "zero"]);
    const result = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 30_000 });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /invalid setting election-ticks: expected an integer/);
  });
});

describe("a node whose HTTP port is taken", { timeout: 120_000 }, () => {
  it("exits with a non-zero status instead of lingering half-started", async () => {
    const cluster = await ProcessCluster.create(1);
    const { createServer } = await import("node:net");
    const squatter = createServer();
    try {
      const [node] = cluster.nodes;
      assert.ok(node !== undefined);
      const port = Number(new URL(node.httpUrl).port);
      await new Promise<void>((resolve) => squatter.listen(port, "127.0.0.1", resolve));
      const result = spawnSync(process.execPath, cluster.args(node), { encoding: "utf8", timeout: 90_000 });
      assert.equal(result.status, 1, `the node kept running: ${result.stdout}`);
      assert.match(result.stderr, /EADDRINUSE/);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
      await cluster.close();
    }
  });
});

describe("a node whose identity file is damaged", { timeout: 60_000 }, () => {
  it("refuses to start with a message naming the file", async () => {
    const cluster = await ProcessCluster.create(1);
    try {
      const [node] = cluster.nodes;
      assert.ok(node !== undefined);
      const { mkdir, writeFile } = await import("node:fs/promises");
      await mkdir(node.dataDir, { recursive: true });
      await writeFile(`${node.dataDir}/node.json`, '{"clusterId": 7}');
      const result = spawnSync(process.execPath, cluster.args(node), { encoding: "utf8", timeout: 30_000 });
      assert.equal(result.status, 2);
      assert.match(result.stderr, /node\.json is not a valid node identity: clusterId/);
    } finally {
      await cluster.close();
    }
  });
});
