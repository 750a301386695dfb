// A follower's LeaderLink after the leader answered: it waits (bounded) to apply what the leader
// had applied, and a node whose waiter slots are all taken answers at once instead of retrying the
// wait in a loop until the deadline; and a follower that cannot reach a leader fails a write at once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NodeError } from "../../../src/node/node-error.js";
import type { NodeHost } from "../../../src/node/node-host.js";
import type { RaftGroup } from "../../../src/node/raft-group.js";
import { ApplyNotifier } from "../../../src/service/apply-notifier.js";
import type { EntryOutcome } from "../../../src/service/command.js";
import { CommandBatcher } from "../../../src/service/command-batcher.js";
import { CairnError } from "../../../src/service/errors.js";
import { encodeLeaderAnswer } from "../../../src/service/leader-calls.js";
import { LeaderLink } from "../../../src/service/leader-link.js";
import { ManualEnv } from "../../support/scripted-group.js";

/** An ApplyNotifier that counts the waits it was asked for. */
class CountingNotifier extends ApplyNotifier {
  waits = 0;

  override wait(...args: Parameters<ApplyNotifier["wait"]>): ReturnType<ApplyNotifier["wait"]> {
    this.waits++;
    return super.wait(...args);
  }
}

/**
 * Member 1, a follower of leader 2, whose leader answers every call at `leaderApplied`; with
 * `unreachable`, its group says no leader is within reach. `calls` counts the calls sent.
 */
function followerLink(
  applied: ApplyNotifier,
  leaderApplied: number,
  localApplied: () => number,
  unreachable?: NodeError,
  calls = { sent: 0 },
): LeaderLink {
  const group = {
    id: 1,
    softState: { role: "follower", leaderId: 2 },
    awaitLeader: async () => unreachable,
  } as unknown as RaftGroup<EntryOutcome>;
  const host = {
    self: { id: 1 },
    peers: () => new Map([[2, { id: 2, name: "n2", httpUrl: "http://127.0.0.1:9" }]]),
    onCall: () => undefined,
    call: async () => {
      calls.sent++;
      return encodeLeaderAnswer({ ok: true, appliedIndex: leaderApplied, value: null });
    },
  } as unknown as NodeHost;
  return new LeaderLink({
    group,
    batcher: new CommandBatcher(group, setImmediate),
    host,
    env: new ManualEnv(1),
    backend: { appliedIndex: localApplied },
    applied,
    callTimeoutMs: 60_000,
  });
}

describe("LeaderLink on a follower", () => {
  it("answers at once when the node holds as many waiters as it allows (ERR_BUSY)", async () => {
    const applied = new CountingNotifier(0);
    await followerLink(applied, 10, () => 5).transfer(3);
    assert.equal(applied.waits, 1, "one refused wait, no retry loop");
  });

  it("answers once the follower has applied as far as the leader had", async () => {
    const applied = new CountingNotifier();
    let local = 5;
    const answered = followerLink(applied, 10, () => local).transfer(3);
    await new Promise((resolve) => setImmediate(resolve));
    local = 10;
    applied.notify();
    await answered;
    assert.equal(applied.waits, 1);
  });

  it("fails a handed-over write at once, naming the last leader, when no leader is within reach", async () => {
    const calls = { sent: 0 };
    const cutOff = new NodeError("ERR_UNAVAILABLE", "the link to the leader (node 2) is down", 2);
    const link = followerLink(new ApplyNotifier(), 10, () => 10, cutOff, calls);
    await assert.rejects(link.propose(new Uint8Array([1])), (error: unknown) => {
      assert.ok(error instanceof CairnError);
      assert.equal(error.code, "ERR_UNAVAILABLE");
      assert.equal(error.details.leaderId, 2);
      assert.deepEqual(error.details.leader, { http: "http://127.0.0.1:9" });
      return true;
    });
    assert.equal(calls.sent, 0, "nothing was handed over");
  });
});
