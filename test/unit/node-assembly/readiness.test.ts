// Readiness as a load balancer or Kubernetes sees it: a node is ready when it knows a leader and
// has applied what the leader committed (a ReadIndex round answered and applied here), not merely
// when a leader is known; a follower whose disk stopped answering is not ready until it catches up;
// and a draining leader says "stopping" at once and hands its leadership to another voter. Three
// nodes assembled as `cairn node` assembles them, on the simulator's clock.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CairnNode } from "../../../src/node-assembly/index.js";
import { utf8 } from "../../../src/util/bytes.js";
import { InProcessCluster, runClockDuringTests } from "../../support/in-process-cluster.js";

/** Asks `node` until its readiness satisfies `holds` (at most 50 checks, each bounded by readyWaitMs). */
async function readinessUntil(
  node: CairnNode,
  holds: (r: Awaited<ReturnType<CairnNode["readiness"]>>) => boolean,
): Promise<Awaited<ReturnType<CairnNode["readiness"]>>> {
  let last: Awaited<ReturnType<CairnNode["readiness"]>> | undefined;
  for (let i = 0; i < 50; i++) {
    last = await node.readiness();
    if (holds(last)) return last;
  }
  throw new Error(`readiness never held; last: ${JSON.stringify(last)}`);
}

describe("CairnNode readiness and draining", () => {
  const cluster = new InProcessCluster(3, 11);
  runClockDuringTests(cluster);

  it("is ready when caught up, and not while a follower cannot apply what the leader committed", async () => {
    await cluster.startAll();
    const leader = await cluster.leader();
    await leader.kv.put(utf8("a"), utf8("1"));
    for (const node of [leader, ...cluster.others(leader.id)]) {
      assert.deepEqual(await readinessUntil(node, (r) => r.ready), { ready: true });
    }
    const [follower] = cluster.others(leader.id);
    assert.ok(follower !== undefined);
    const storage = cluster.member(follower.id).storage;
    assert.ok(storage !== undefined);
    storage.hold();
    try {
      for (let i = 0; i < 3; i++) await leader.kv.put(utf8(`k${i}`), utf8("v"));
      // A leader is known all along: the old check would have said ready.
      assert.notEqual(follower.group.softState.leaderId, null);
      const behind = await follower.readiness();
      assert.equal(behind.ready, false);
      assert.match(behind.ready ? "" : behind.reason, /^catching up/);
    } finally {
      storage.release();
    }
    assert.deepEqual(await readinessUntil(follower, (r) => r.ready), { ready: true });
  });

  it("drains: readiness says stopping at once, and a leader hands its leadership to another voter", async () => {
    const leader = await cluster.leader();
    const outcome = await leader.drain(5_000);
    assert.equal(outcome, "transferred");
    assert.deepEqual(await leader.readiness(), { ready: false, reason: "stopping" });
    const next = await cluster.leader();
    assert.notEqual(next.id, leader.id);
    // A follower drains without a transfer.
    const follower = cluster.others(next.id).find((n) => n.id !== leader.id);
    assert.ok(follower !== undefined);
    assert.equal(await follower.drain(1_000), "not-leader");
    assert.deepEqual(await follower.readiness(), { ready: false, reason: "stopping" });
  });
});
