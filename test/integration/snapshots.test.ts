// Snapshots on a real cluster of processes, with a small compaction interval in bytes (the entry
// count is left at its far-away default): a leader keeps the log a node that is down lacks, so it
// catches up from entries without a snapshot; with the ceiling on that log as low as the interval,
// the leader compacts past it and the node catches up from a snapshot the leader captures for it,
// streamed over mTLS; and a full restart recovers from the state stores and logs with every
// acknowledged write intact.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ProcessCluster } from "../support/process-cluster.js";

/** A 300-byte value, so 450 writes hold about 135 KiB: two snapshots of 64 KiB. */
const paddedValue = (i: number): string => String(i).padEnd(300, ".");

async function snapshotIndexOf(url: string): Promise<number> {
  const status = (await (await fetch(`${url}/v1/cluster`)).json()) as { snapshotIndex: number };
  return status.snapshotIndex;
}

/** The snapshot files a node captured from its own state (its /metrics). */
async function snapshotsTakenOf(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("cairn_snapshots_taken_total"));
  assert.ok(line !== undefined, "the node reports cairn_snapshots_taken_total");
  return Number(line.split(" ").at(-1));
}

describe("snapshots on a real cluster", { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;
  const written = 450;
  const kept = 200;

  before(async () => {
    cluster = await ProcessCluster.create(3);
    cluster.extraArgs = ["--snapshot-bytes", "65536"];
    await cluster.startAll();
  });
  after(async () => {
    await cluster?.close();
  });

  it("keeps the log a node that is down lacks, and catches it up from entries", async () => {
    const leader = await cluster.leader();
    const lagging = cluster.nodes.find((n) => n !== leader);
    assert.ok(lagging !== undefined);
    await cluster.kill(lagging);
    const client = cluster.client(cluster.nodes.filter((n) => n !== lagging));
    // 200 values of 300 bytes: past the 64 KiB interval, far below the ceiling (256 MiB).
    for (let i = 0; i < kept; i++) await client.put(`kept-${i}`, paddedValue(i));
    await cluster.start(lagging);
    const fromLagging = cluster.client([lagging]);
    for (const i of [0, kept - 1]) assert.equal((await fromLagging.get(`kept-${i}`))?.value, paddedValue(i));
    const current = await cluster.leader();
    // A snapshot is sent only once captured: none was, so the node caught up from entries.
    assert.equal(await snapshotsTakenOf(current.httpUrl), 0, "no snapshot was captured for the node");
  });

  it("compacts past a node that is down at the ceiling, and catches it up from a snapshot", async () => {
    cluster.extraArgs = ["--snapshot-bytes", "65536", "--snapshot-log-bytes-max", "65536"];
    for (const node of cluster.nodes) {
      await cluster.kill(node, "SIGTERM");
      await cluster.start(node);
    }
    const leader = await cluster.leader();
    const lagging = cluster.nodes.find((n) => n !== leader);
    assert.ok(lagging !== undefined);
    await cluster.kill(lagging);
    const client = cluster.client(cluster.nodes.filter((n) => n !== lagging));
    for (let i = 0; i < written; i++) await client.put(`snap-${i}`, paddedValue(i));
    const current = await cluster.leader();
    assert.ok((await snapshotIndexOf(current.httpUrl)) >= 100, "the leader compacted its log");
    await cluster.start(lagging);
    const fromLagging = cluster.client([lagging]);
    for (const i of [0, 99, 250, written - 1])
      assert.equal((await fromLagging.get(`snap-${i}`))?.value, paddedValue(i));
    assert.ok((await snapshotIndexOf(lagging.httpUrl)) >= 100, "the lagging node installed a snapshot");
    assert.ok((await snapshotsTakenOf(current.httpUrl)) >= 1, "the leader captured a snapshot for it");
  });

  it("recovers every write from snapshots and logs after every node is killed", async () => {
    await Promise.all(cluster.nodes.map((n) => cluster.kill(n, "SIGKILL")));
    await cluster.startAll();
    const client = cluster.client();
    const page = await client.list({ prefix: "snap-", limit: 1000 });
    assert.equal(page.items.length, written);
    assert.equal((await client.list({ prefix: "kept-", limit: 1000 })).items.length, kept);
    for (const i of [0, 123, written - 1])
      assert.equal((await client.get(`snap-${i}`))?.value, paddedValue(i));
  });
});
