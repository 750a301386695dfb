// The simulation runner end to end against a toy cluster (one authoritative store on node 1, requests
// forwarded over the simulated network, deduplicated by request id): a correct toy passes at every
// level, and toys with planted bugs fail with a report that starts with the replay line.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { applyKv, type KvInput, type KvKeyState, type KvOutput } from "./kv-model.js";
import { kvVersionDialect, type SubmitResult } from "./kv-workload.js";
import type { RaftObservation } from "./raft-safety.js";
import { type SimOptions, simOptionsFromSeed } from "./sim-options.js";
import { runSimulation, type SimCluster, type SimEnvironment } from "./sim-runner.js";

type ToyMessage =
  | { readonly type: "request"; readonly id: number; readonly input: KvInput }
  | { readonly type: "reply"; readonly id: number; readonly output: KvOutput };

type ToyBug = "none" | "no-dedupe" | "crash-loses-last-write" | "diverge";

function toyCluster(bug: ToyBug) {
  return (env: SimEnvironment<ToyMessage>): SimCluster<ToyMessage> => {
    const { scheduler, network, prng, options } = env;
    const crashed = new Set<number>();
    const store = new Map<string, KvKeyState>();
    const applied = new Map<number, KvOutput>(); // request id -> output (deduplication)
    let lastWrite: { key: string; before: KvKeyState } | undefined;
    const waiting = new Map<number, { via: number; done: (r: SubmitResult) => void }>();
    const observations: RaftObservation[] = [];
    let nextId = 0;
    const idOf = new Map<string, number>();

    const handleRequest = (from: number, id: number, input: KvInput) => {
      let output = bug === "no-dedupe" ? undefined : applied.get(id);
      if (output === undefined) {
        const before = store.get(input.key) ?? { value: null, version: 0 };
        const result = applyKv(before, input);
        store.set(input.key, result.newState);
        if (input.op !== "get") lastWrite = { key: input.key, before };
        output = result.output;
        applied.set(id, output);
      }
      const reply: ToyMessage = { type: "reply", id, output };
      if (from === 1) receiveReply(1, reply);
      else network.send(1, from, reply);
    };
    const receiveReply = (at: number, reply: Extract<ToyMessage, { type: "reply" }>) => {
      const w = waiting.get(reply.id);
      if (w === undefined || w.via !== at || crashed.has(at)) return;
      waiting.delete(reply.id); // a duplicated reply finds nobody waiting
      w.done({ kind: "ok", output: reply.output });
    };
    return {
      deliver(from, to, message) {
        if (crashed.has(to)) return;
        if (message.type === "request" && to === 1) handleRequest(from, message.id, message.input);
        if (message.type === "reply") receiveReply(to, message);
      },
      kv: {
        submit(_clientId, input, done, requestId) {
          const via = 1 + prng.below(options.clusterSize);
          if (crashed.has(via)) return;
          // Attempts sharing a request id (idempotent retries) share the deduplication id.
          const id = idOf.get(requestId) ?? nextId++;
          idOf.set(requestId, id);
          waiting.set(id, { via, done });
          scheduler.after(1, () => {
            if (crashed.has(via)) return;
            if (via === 1) handleRequest(1, id, input);
            else network.send(via, 1, { type: "request", id, input });
          });
        },
      },
      // The toy has no Raft leader: aimed faults fire at their deadline on their scheduled nodes.
      leaderView: () => undefined,
      crash(node) {
        crashed.add(node);
        if (node === 1 && bug === "crash-loses-last-write" && lastWrite)
          store.set(lastWrite.key, lastWrite.before);
        if (node === 1 && bug === "diverge") {
          observations.push({ type: "applied", node: 1, index: 1, term: 1, dataHash: "a" });
          observations.push({ type: "applied", node: 2, index: 1, term: 1, dataHash: "b" });
        }
      },
      restart(node) {
        crashed.delete(node);
      },
      setDiskExtraLatency() {},
      requestRemoveMember() {},
      requestAddMember() {},
      requestLeadershipTransfer() {},
      observations: () => observations,
      convergenceProblems: () => (crashed.size > 0 ? [`nodes ${[...crashed]} still down`] : []),
    };
  };
}

const withDuplication = (o: SimOptions): SimOptions => ({
  ...o,
  network: { ...o.network, duplicate: [1, 5] },
});

describe("runSimulation", () => {
  it("passes a correct toy cluster at every level", () => {
    for (const [seed, level] of [
      [1, 0],
      [2, 1],
      [3, 1],
    ] as const) {
      const report = runSimulation(simOptionsFromSeed(seed, level), toyCluster("none"), kvVersionDialect);
      assert.ok(report.ok, report.text);
      assert.ok(report.history.length > 100);
      assert.ok(report.workloadCounters.ok > 0);
      assert.match(report.text, new RegExp(`^PASS npm run sim -- --seed ${seed} --level ${level}\n`));
    }
  });

  it("passes a correct toy cluster for ten more level-1 seeds", () => {
    // A regression guard for the checker's cost on realistic histories with many timeouts: each
    // run must be decided (no "unknown") within the default step budget.
    for (let seed = 100; seed < 110; seed++) {
      const report = runSimulation(simOptionsFromSeed(seed, 1), toyCluster("none"), kvVersionDialect);
      assert.ok(report.ok, report.text);
    }
  });

  it("exposes a cluster that applies a duplicated request twice", () => {
    const options = withDuplication(simOptionsFromSeed(2, 1));
    assert.ok(
      runSimulation(options, toyCluster("none"), kvVersionDialect).ok,
      "the same run passes without the bug",
    );
    const report = runSimulation(options, toyCluster("no-dedupe"), kvVersionDialect);
    assert.equal(report.ok, false);
    assert.equal(report.linearizability.kind, "not-linearizable");
    assert.match(report.text, /^FAIL npm run sim -- --seed 2 --level 1\n/);
    assert.match(report.text, /longest linearizable prefix/);
    assert.match(report.text, /fault schedule:/);
  });

  it("exposes a cluster that loses an acknowledged write when it crashes", () => {
    // Level-1 runs are short, so not every seed crashes node 1 right after a write: some of the first
    // twenty must.
    const caught = [];
    for (let seed = 1; seed <= 20; seed++) {
      const report = runSimulation(
        simOptionsFromSeed(seed, 1),
        toyCluster("crash-loses-last-write"),
        kvVersionDialect,
      );
      if (report.linearizability.kind === "not-linearizable") caught.push(seed);
    }
    assert.ok(caught.length > 0, "no seed caught the lost write");
  });

  it("reports Raft violations the cluster observed", () => {
    const report = runSimulation(simOptionsFromSeed(2, 1), toyCluster("diverge"), kvVersionDialect);
    assert.equal(report.ok, false);
    assert.ok(report.raftViolations.some((v) => v.kind === "state-machine-safety"));
    assert.match(report.text, /raft state-machine-safety: node 1 applied \(1, t1, a\)/);
  });

  it("replays the same run from the same options", () => {
    const a = runSimulation(simOptionsFromSeed(5, 1), toyCluster("none"), kvVersionDialect);
    const b = runSimulation(simOptionsFromSeed(5, 1), toyCluster("none"), kvVersionDialect);
    assert.deepEqual(a.history, b.history);
    assert.equal(a.text, b.text);
    const c = runSimulation(simOptionsFromSeed(6, 1), toyCluster("none"), kvVersionDialect);
    assert.notDeepEqual(a.history, c.history);
  });
});
