// Snapshots on a real cluster of processes: with a small snapshot size in bytes (the entry count is
// left at its far-away default) the leader compacts its log, a node that was down while the log
// moved on catches up from a snapshot streamed over mTLS, and a full restart recovers from snapshot plus log with every acknowledged write intact.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ProcessCluster } from "../support/process-cluster.js";

/** A 300-byte value, so 450 writes hold about 135 KiB: two snapshots of 64 KiB. */
const paddedValue = (i: number): string => String(i).padEnd(300, ".");

async function snapshotIndexOf(url: string): Promise<number> {
  const status = (await (await fetch(`${url}/v1/cluster`)).json()) as { snapshotIndex: number };
  return status.snapshotIndex;
}

describe("snapshots on a real cluster", { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;
  const written = 450;

  before(async () => {
    cluster = await ProcessCluster.create(3);
    cluster.extraArgs = ["--snapshot-bytes", "65536"];
    await cluster.startAll();
  });
  after(async () => {
    await cluster?.close();
  });

  it("compacts the log and catches a lagging node up from a snapshot", async () => {
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
  });

  it("recovers every write from snapshots and logs after every node is killed", async () => {
    await Promise.all(cluster.nodes.map((n) => cluster.kill(n, "SIGKILL")));
    await cluster.startAll();
    const client = cluster.client();
    const page = await client.list({ prefix: "snap-", limit: 1000 });
    assert.equal(page.items.length, written);
    for (const i of [0, 123, written - 1])
      assert.equal((await client.get(`snap-${i}`))?.value, paddedValue(i));
  });
});
