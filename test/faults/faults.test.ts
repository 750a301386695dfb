// One short fault run against real Cairn processes (npm run faults runs long ones): three nodes,
// the key-value and stream workloads, and a fixed seed whose schedule kills a follower, pauses the
// leader, slows a disk, and cuts the cluster around a bridge node with blackholed links. The run
// passes when every checker finds nothing: the KV history is linearizable, every acknowledged append
// is in every node's copy once and in one order, the consumer group lost nothing, the nodes
// converged. It also asserts the run did something, so it cannot pass without having looked.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runFaults } from "./run.js";
import { faultKinds } from "./schedule.js";

describe("fault suite (short run)", () => {
  it("finds no violation under seed 7's schedule", async () => {
    const lines: string[] = [];
    const report = await runFaults({
      system: "cairn",
      seed: 7,
      seconds: 40,
      nodes: 3,
      kinds: faultKinds,
      clients: 6,
      keys: 4,
      timeoutMs: 1_500,
      streams: true,
      diskDelayMs: 0,
      say: (line) => lines.push(line),
    });
    assert.deepEqual(report.problems, [], `seed 7 failed; logs in ${report.logFile}\n${lines.join("\n")}`);
    assert.ok(report.applied.length >= 1, "the nemesis struck");
    assert.ok(report.kv.ok > 0, "key-value operations were answered");
    assert.ok((report.streams?.["appended"] ?? 0) > 0, "appends were acknowledged");
    assert.ok((report.streams?.["delivered"] ?? 0) > 0, "the consumer group delivered");
  });
});
