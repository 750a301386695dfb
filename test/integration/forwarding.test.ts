// A write sent to a follower reaches the leader over the peer link, and a client can tell what
// happened when it does not: a write whose leader died after it was handed over has an unknown
// outcome (ERR_TIMEOUT; a retry with the same Idempotency-Key applies it once), and a write that
// never reached a leader is refused (ERR_UNAVAILABLE) and not applied. Real processes on 127.0.0.1.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ProcessCluster, type ProcessNode } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

interface Answer {
  readonly status: number;
  readonly body: { readonly error?: { readonly code: string }; readonly revision?: number };
}

async function put(node: ProcessNode, key: string, value: string, idempotencyKey?: string): Promise<Answer> {
  const response = await fetch(`${node.httpUrl}/v1/kv/${key}`, {
    method: "PUT",
    headers: {
      "content-type": "application/json",
      ...(idempotencyKey !== undefined ? { "idempotency-key": idempotencyKey } : {}),
    },
    body: JSON.stringify({ value }),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, body: (await response.json()) as Answer["body"] };
}

async function leaderSeenBy(node: ProcessNode): Promise<number | null> {
  const response = await fetch(`${node.httpUrl}/v1/cluster`, { signal: AbortSignal.timeout(2_000) });
  const status = (await response.json()) as { leader: { id: number } | null };
  return status.leader?.id ?? null;
}

describe("writes handed from a follower to the leader", { timeout: 240_000 }, () => {
  let cluster: ProcessCluster;

  before(async () => {
    cluster = await ProcessCluster.create(3);
    await cluster.startAll();
  });
  after(async () => {
    await cluster?.close();
  });

  it("applies a write sent to a follower, and the follower reads it at once", async () => {
    const leader = await cluster.leader();
    const follower = cluster.nodes.find((n) => n !== leader);
    assert.ok(follower !== undefined);
    // Until the follower has heard from the leader it answers 503 ERR_UNAVAILABLE (no leader known).
    await waitFor(
      "the follower to know the leader",
      async () => (await leaderSeenBy(follower).catch(() => null)) === leader.id,
    );
    const written = await put(follower, "via-follower", "1");
    assert.equal(written.status, 200);
    const read = await fetch(`${follower.httpUrl}/v1/kv/via-follower?consistency=stale`);
    assert.equal(((await read.json()) as { value: string }).value, "1");
  });

  it("reports an unknown outcome when the leader dies holding the write, and a retry applies it once", async () => {
    const leader = await cluster.leader();
    const follower = cluster.nodes.find((n) => n !== leader);
    assert.ok(follower !== undefined);
    cluster.pause(leader);
    const pending = put(follower, "mid-forward", "1", "retry-me");
    // The others elect a new leader while the old one holds the write; then it dies.
    await waitFor(
      "a new leader",
      async () => {
        const seen = await leaderSeenBy(follower).catch(() => null);
        return seen !== null && seen !== leader.id;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );
    await cluster.kill(leader);
    const answer = await pending;
    assert.equal(answer.status, 504);
    assert.equal(answer.body.error?.code, "ERR_TIMEOUT");
    const retried = await put(follower, "mid-forward", "1", "retry-me");
    assert.equal(retried.status, 200);
    const again = await put(follower, "mid-forward", "1", "retry-me");
    assert.equal(again.body.revision, retried.body.revision, "the retry is answered, not applied twice");
    await cluster.start(leader);
  });

  it("refuses a write that cannot reach any leader, and does not apply it", async () => {
    const leader = await cluster.leader();
    const [survivor, ...others] = [...cluster.nodes.filter((n) => n !== leader), leader];
    assert.ok(survivor !== undefined);
    await Promise.all(others.map((n) => cluster.kill(n)));
    // Once it has given up on the dead leader it knows of none (pre-vote finds no majority).
    await waitFor("the survivor to know no leader", async () => (await leaderSeenBy(survivor)) === null, {
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    const answer = await put(survivor, "never-applied", "1");
    assert.equal(answer.status, 503);
    assert.equal(answer.body.error?.code, "ERR_UNAVAILABLE");
    await Promise.all(others.map((n) => cluster.start(n)));
    await cluster.leader();
    const read = await fetch(`${survivor.httpUrl}/v1/kv/never-applied`);
    assert.equal(read.status, 404);
  });
});
