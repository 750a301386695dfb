// Randomized cluster runs, one seed each: messages are delivered out of order, duplicated and lost,
// nodes crash (also in the middle of a Ready: after its immediate messages left, with none or only
// part of its writes on disk) and restart, partitions come and go, and membership changes,
// compactions, transfers and reads run concurrently. After every step the cluster checks election safety, one vote per term, monotonic
// terms and commits, state machine safety, leader completeness and ReadIndex linearizability;
// after healing, every member must converge. A failure names its seed.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type ConfChange, logIndex, type NodeId, nodeId } from "../../../src/raft/index.js";
import { Prng } from "../../../src/util/prng.js";
import { bytes, Cluster, type Envelope } from "../../raft-harness/cluster.js";

/** Knobs for longer runs: RAFT_SEEDS, RAFT_SEED_FIRST, RAFT_STEPS; RAFT_DEBUG=1 prints a stuck cluster. */
const { RAFT_SEEDS, RAFT_SEED_FIRST, RAFT_STEPS, RAFT_DEBUG } = process.env;

interface PendingRead {
  readonly minIndex: number;
}

function runSeed(seed: number, steps: number): void {
  const prng = new Prng(seed);
  const voters = prng.chance(1, 2) ? [1, 2, 3] : [1, 2, 3, 4, 5];
  let inFlight: Envelope[] = [];
  const partitionOf = new Map<NodeId, number>();
  const reads = new Map<string, PendingRead>();
  let readSeq = 0;
  let proposals = 0;

  const cluster: Cluster = new Cluster({
    seed,
    voters,
    preVote: prng.chance(1, 2),
    checkQuorum: prng.chance(1, 2),
    electionTimeoutTicks: 5,
    heartbeatTicks: 1,
    appendBytesMax: 1 + prng.below(200),
    inflightAppendsMax: 1 + prng.below(4),
    ...(prng.chance(1, 2) ? { snapshotEvery: 5 + prng.below(10) } : {}),
    onSend: (env) => inFlight.push(env),
    onReady: (id, rd) => {
      if (rd.softState?.role === "leader") {
        // Raft §5.4 Leader Completeness: a new leader holds every entry anyone applied.
        const raw = cluster.raw(id);
        const s = raw.status();
        for (const [index, e] of cluster.appliedAt) {
          if (index <= s.snapshotIndex) continue;
          assert.ok(index <= s.lastIndex, `seed ${seed}: leader ${id} lacks committed index ${index}`);
          assert.equal(
            raw.termAt(index),
            e.term,
            `seed ${seed}: leader ${id} differs at committed ${index}: ${JSON.stringify(s)}`,
          );
        }
      }
      for (const r of rd.readStates) {
        const want = reads.get(r.context);
        assert.ok(want !== undefined, `seed ${seed}: unknown read ${r.context}`);
        // Linearizable: the read index covers everything committed before the read was issued.
        assert.ok(
          r.index >= want.minIndex,
          `seed ${seed}: read ${r.context} at ${r.index} < ${want.minIndex}`,
        );
      }
    },
  });

  const allIds = () => [...cluster.nodes.keys()];
  const upIds = () => cluster.upIds();
  const pick = <T>(xs: readonly T[]): T | undefined => (xs.length === 0 ? undefined : prng.pick(xs));
  const connected = (a: NodeId, b: NodeId) => (partitionOf.get(a) ?? 0) === (partitionOf.get(b) ?? 0);
  const maxCommit = () => Math.max(0, ...upIds().map((id) => cluster.raw(id).status().commitIndex));
  const leaderId = (): NodeId | undefined => {
    let best: { id: NodeId; term: number } | undefined;
    for (const id of upIds()) {
      const s = cluster.raw(id).status();
      if (s.role === "leader" && (best === undefined || s.term > best.term)) best = { id, term: s.term };
    }
    return best?.id;
  };

  const deliverAt = (k: number, duplicate: boolean) => {
    const env = inFlight[k];
    if (env === undefined) return;
    if (!duplicate) inFlight.splice(k, 1);
    const m = env.msg;
    const to = cluster.nodes.get(m.to);
    if (!connected(m.from, m.to) || to?.raw === undefined) {
      if (m.type === "snapshot")
        cluster.nodes.get(m.from)?.raw?.reportSnapshot(m.to, false, m.snapshot.index);
      return;
    }
    cluster.deliver(env);
    if (m.type === "snapshot") cluster.nodes.get(m.from)?.raw?.reportSnapshot(m.to, true, m.snapshot.index);
  };

  const changeMembership = () => {
    const leader = leaderId();
    if (leader === undefined) return;
    const conf = cluster.raw(leader).status().conf;
    const candidates = [1, 2, 3, 4, 5, 6].map(nodeId);
    const node = prng.pick(candidates);
    let change: ConfChange;
    if (conf.learners.includes(node)) change = { type: prng.chance(1, 2) ? "promote" : "remove", node };
    else if (conf.voters.includes(node)) {
      if (conf.voters.length <= 3) return;
      change = { type: "remove", node };
    } else change = { type: prng.chance(2, 3) ? "add-learner" : "add-voter", node };
    // A node added again after removal would need a fresh disk; keep ids unique per run.
    if (change.type.startsWith("add") && cluster.nodes.has(node)) return;
    if (!cluster.nodes.has(node)) cluster.addNode(node, { voters: [], learners: [] });
    cluster.raw(leader).proposeConfChange(change);
  };

  for (let step = 0; step < steps; step++) {
    const roll = prng.below(1000);
    const ups = upIds();
    if (roll < 250) {
      const id = pick(ups);
      if (id !== undefined) cluster.raw(id).tick();
    } else if (roll < 600) {
      if (inFlight.length > 0) deliverAt(prng.below(inFlight.length), prng.chance(1, 20));
    } else if (roll < 630) {
      const [lost] = inFlight.length === 0 ? [] : inFlight.splice(prng.below(inFlight.length), 1);
      // The runtime learns that a snapshot stream failed and says so.
      if (lost?.msg.type === "snapshot")
        cluster.nodes.get(lost.msg.from)?.raw?.reportSnapshot(lost.msg.to, false, lost.msg.snapshot.index);
    } else if (roll < 850) {
      const id = pick(ups);
      if (id !== undefined) {
        const r = prng.below(100);
        if (r < 1) cluster.crashDuringReady(id, prng.chance(1, 2));
        else if (r < 30) {
          // The Ready's writes stay in flight while messages keep arriving (steps between ready()
          // and advance()); a later pick of this node completes them.
          if (!cluster.beginReady(id)) cluster.finishReady(id);
        } else {
          cluster.finishReady(id);
          cluster.processReady(id);
        }
      }
    } else if (roll < 920) {
      const id = pick(ups);
      if (id !== undefined) {
        const r = cluster.raw(id).propose(bytes(`p${proposals++}`));
        if (r.ok) cluster.raw(id).checkInvariants();
      }
    } else if (roll < 935) {
      const id = pick(ups);
      if (id !== undefined) {
        const ctx = `r${readSeq++}`;
        reads.set(ctx, { minIndex: maxCommit() });
        cluster.raw(id).readIndex(ctx);
      }
    } else if (roll < 945) {
      const id = pick(ups);
      if (id !== undefined && ups.length > 1) cluster.crash(id);
    } else if (roll < 965) {
      const down = allIds().filter((id) => cluster.nodes.get(id)?.raw === undefined);
      const id = pick(down);
      if (id !== undefined) cluster.restart(id);
    } else if (roll < 975) {
      partitionOf.clear();
      if (prng.chance(1, 2)) for (const id of allIds()) partitionOf.set(id, prng.below(2));
    } else if (roll < 982) {
      changeMembership();
    } else if (roll < 990) {
      const id = pick(ups);
      if (id !== undefined) cluster.compact(id, logIndex(cluster.node(id).app.appliedIndex));
    } else {
      const leader = leaderId();
      const to = pick(allIds());
      if (leader !== undefined && to !== undefined) cluster.raw(leader).transferLeadership(to);
    }
    if (step % 200 === 0) cluster.checkLogMatching();
  }

  // Heal everything and let the cluster converge: every member applies the same last index.
  partitionOf.clear();
  for (const id of allIds()) if (cluster.nodes.get(id)?.raw === undefined) cluster.restart(id);
  let converged = false;
  for (let round = 0; round < 400 && !converged; round++) {
    for (const id of upIds()) cluster.raw(id).tick();
    for (let k = 0; k < 50; k++) {
      for (const id of upIds()) cluster.finishReady(id);
      cluster.processAll();
      const batch = inFlight;
      inFlight = [];
      for (let i = 0; i < batch.length; i++) {
        inFlight.unshift(batch[i] as Envelope);
        deliverAt(0, false);
      }
      if (inFlight.length === 0 && !upIds().some((id) => cluster.raw(id).hasReady())) break;
    }
    const leader = leaderId();
    if (leader === undefined) continue;
    const s = cluster.raw(leader).status();
    const members = [...s.conf.voters, ...s.conf.learners];
    converged =
      s.commitIndex === s.lastIndex &&
      members.every((id) => cluster.raw(id).status().appliedIndex === s.commitIndex);
  }
  cluster.checkLogMatching();
  if (!converged && RAFT_DEBUG === "1") {
    for (const id of allIds()) console.log(JSON.stringify(cluster.nodes.get(id)?.raw?.status()));
  }
  assert.ok(converged, `seed ${seed}: the cluster did not converge after healing`);
}

describe("randomized clusters", () => {
  const seeds = Number(RAFT_SEEDS ?? "40");
  const first = Number(RAFT_SEED_FIRST ?? "1");
  for (let seed = first; seed < first + seeds; seed++) {
    it(`seed ${seed}`, () => runSeed(seed, Number(RAFT_STEPS ?? "3000")));
  }
});
