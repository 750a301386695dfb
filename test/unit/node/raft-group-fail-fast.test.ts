// A member that cannot reach a leader answers at once, ERR_UNAVAILABLE naming the leader it last
// knew, instead of letting a client wait out its timeout (issue 17, "Available under faults"): none
// known yet (a restart), none heard from for an election timeout (a partition, a paused leader),
// its own link to the leader down, or, as leader, no majority heard from for an election timeout.
// A member whose leader is gone but that still hears a majority waits (bounded, an election
// timeout) for the election instead. Each test drives one scripted member
// (test/support/scripted-group.ts): 10 ms ticks, election timeout 10 ticks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NodeError } from "../../../src/node/node-error.js";
import { logIndex, term } from "../../../src/raft/index.js";
import { utf8 } from "../../../src/util/bytes.js";
import {
  electMember1,
  fromPeer,
  heartbeat,
  openScripted,
  type ScriptedGroup,
  sentMessages,
  settled,
} from "../../support/scripted-group.js";

/** Asserts that `promise` rejects with ERR_UNAVAILABLE naming `leaderId` as the last leader known. */
async function rejectsUnavailable(promise: Promise<unknown>, leaderId: number | null): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof NodeError);
    assert.equal(error.code, "ERR_UNAVAILABLE");
    assert.equal(error.leaderId, leaderId);
    return true;
  });
}

/** Member 1 of voters 1-3 whose leader 2 went silent, while member 3 asks for votes (a majority heard). */
async function leaderGoneMajorityHeard(): Promise<ScriptedGroup> {
  const member = await openScripted();
  member.group.receive(heartbeat(2, 1, 1, 0));
  await settled();
  await member.env.advance(105);
  const preVote = {
    type: "vote-request",
    preVote: true,
    lastLogIndex: logIndex(0),
    lastLogTerm: term(0),
    transfer: false,
  } as const;
  member.group.receive(fromPeer(3, 1, 2, preVote));
  await settled();
  return member;
}

describe("RaftGroup: a member without a leader in reach fails fast", () => {
  it("refuses a read at once after a restart, before it has heard from any leader", async () => {
    const member = await openScripted();
    assert.ok(member.group.leaderUnavailable() !== undefined);
    await rejectsUnavailable(member.group.readBarrier(), null);
  });

  it("serves reads through a leader it hears from, and refuses them once that leader is silent for an election timeout", async () => {
    const member = await openScripted();
    member.group.receive(heartbeat(2, 1, 1, 0));
    await settled();
    assert.equal(member.group.leaderUnavailable(), undefined, "leader 2 was just heard from");
    await member.env.advance(110);
    await rejectsUnavailable(member.group.readBarrier(), 2);
  });

  it("refuses a read at once while its own link to the leader is down", async () => {
    let linkUp = true;
    const member = await openScripted({ peerConnected: () => linkUp });
    member.group.receive(heartbeat(2, 1, 1, 0));
    await settled();
    linkUp = false;
    await rejectsUnavailable(member.group.readBarrier(), 2);
    linkUp = true;
    assert.equal(member.group.leaderUnavailable(), undefined);
  });

  it("gives up a read waiting on its leader once that leader goes silent, not at the read timeout", async () => {
    const member = await openScripted();
    member.group.receive(heartbeat(2, 1, 1, 0));
    await settled();
    const read = member.group.readBarrier();
    const failed = rejectsUnavailable(read, 2);
    await settled();
    assert.ok(
      sentMessages(member).some((m) => m.type === "read-index" && m.to === 2),
      "the read went to leader 2",
    );
    // The read timeout is 60 s here; the leader's silence for an election timeout ends the read.
    await member.env.advance(120);
    await failed;
  });

  it("as a leader no majority has heard from for an election timeout, refuses writes without appending them", async () => {
    // Without check-quorum, so the member still leads: the runtime's own check refuses.
    const member = await openScripted({ checkQuorum: false });
    await electMember1(member, 1);
    assert.equal(member.group.softState.role, "leader");
    assert.equal(member.group.leaderUnavailable(), undefined, "just elected by a majority");
    await member.env.advance(110);
    assert.equal(member.group.softState.role, "leader");
    const lastIndex = member.group.status().lastIndex;
    await rejectsUnavailable(member.group.propose(utf8("x")), 1);
    await rejectsUnavailable(member.group.readBarrier(), 1);
    assert.equal(member.group.status().lastIndex, lastIndex, "nothing was appended");
  });

  it("on the side that can elect a leader, waits for the election instead of failing, and reads through the new leader", async () => {
    const member = await leaderGoneMajorityHeard();
    assert.ok(member.group.leaderUnavailable() !== undefined, "no leader in reach");
    let failed: unknown;
    const read = member.group.readBarrier().catch((error: unknown) => {
      failed = error;
    });
    await settled();
    assert.equal(failed, undefined, "the read waits for the election");
    member.group.receive(heartbeat(3, 1, 2, 0));
    await member.env.advance(10);
    assert.equal(failed, undefined);
    assert.ok(
      sentMessages(member).some((m) => m.type === "read-index" && m.to === 3),
      "the read went to the new leader 3",
    );
    void read;
  });

  it("on the side that can elect a leader, fails the read after an election timeout without one", async () => {
    const member = await leaderGoneMajorityHeard();
    const failed = rejectsUnavailable(member.group.readBarrier(), 2);
    await member.env.advance(110);
    await failed;
  });
});
