// A member that restarted after the runtime cut a damaged log tail which may have held entries it
// had acknowledged (PersistedState.tailLostIndexMax) must not help elect a leader that lacks them:
// it refuses votes and pre-votes and does not campaign until a leader of its term or later has
// given it a log past the lost index, then behaves as any member. Direct RawNode steps, so every
// message it answers is visible.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  logIndex,
  type Message,
  nodeId,
  type RawNode,
  term,
  type VoteResponseMessage,
} from "../../../src/raft/index.js";
import {
  deliverTo1,
  entriesWithTerms,
  restartMember1,
  threeVoterBootstrap,
  threeVoters,
} from "../../raft-harness/fixtures.js";

const voters = threeVoters;
const bootstrap = threeVoterBootstrap;
const deliver = deliverTo1;

/** Member 1 restarted at term 2 with entries 1..3; the cut tail may have held entries up to 6. */
function restarted(tailLostIndexMax?: number, only = voters): RawNode {
  return restartMember1(
    {
      hardState: { term: term(2), votedFor: null, commitIndex: logIndex(only.length === 1 ? 0 : 1) },
      entries: only.length === 1 ? [] : [bootstrap, ...entriesWithTerms([1, 2], 2)],
      ...(tailLostIndexMax !== undefined ? { tailLostIndexMax: logIndex(tailLostIndexMax) } : {}),
    },
    only,
  );
}

const voteAnswer = (out: Message[]): VoteResponseMessage | undefined =>
  out.find((m): m is VoteResponseMessage => m.type === "vote-response");

/** A candidate with a log as long as ours (so §5.4.1 alone would grant it). */
const askVote = (raw: RawNode, from: number, t: number, preVote: boolean) =>
  voteAnswer(
    deliver(raw, from, t, {
      type: "vote-request",
      preVote,
      lastLogIndex: logIndex(3),
      lastLogTerm: term(2),
      transfer: false,
    }),
  );

describe("a member that may have lost acknowledged entries to a torn tail", () => {
  it("grants the same vote without the marker (control)", () => {
    assert.equal(askVote(restarted(), 2, 3, true)?.reject, false);
    assert.equal(askVote(restarted(), 2, 3, false)?.reject, false);
  });

  it("refuses votes and pre-votes, and does not campaign, until a leader gave it a log past the loss", () => {
    const raw = restarted(6);
    assert.equal(askVote(raw, 2, 3, true)?.reject, true, "pre-vote granted");
    assert.equal(askVote(raw, 2, 3, false)?.reject, true, "vote granted");
    for (let k = 0; k < 50; k++) raw.tick();
    assert.equal(raw.status().role, "follower", "it campaigned");

    // Leader 3 of term 3 (our term now) sends entries 4..5: not yet past the loss.
    const append = (t: number, prev: number, terms: number[]) =>
      deliver(raw, 3, t, {
        type: "append",
        prevLogIndex: logIndex(prev),
        prevLogTerm: term(prev === 3 ? 2 : 3),
        entries: entriesWithTerms(terms, prev + 1),
        commitIndex: logIndex(1),
      });
    append(3, 3, [3, 3]);
    assert.equal(raw.status().lastIndex, 5);
    assert.equal(askVote(raw, 2, 4, false)?.reject, true, "voted before catching up past index 6");

    // Our term is 4 now (the refused candidate's); the leader of term 4 sends entry 6.
    append(4, 5, [4]);
    assert.equal(raw.status().lastIndex, 6);
    const granted = voteAnswer(
      deliver(raw, 2, 5, {
        type: "vote-request",
        preVote: false,
        lastLogIndex: logIndex(6),
        lastLogTerm: term(4),
        transfer: false,
      }),
    );
    assert.equal(granted?.reject, false, "still refuses once caught up");
  });

  it("a sole voter has nobody to recover from and still leads", () => {
    const raw = restarted(6, [nodeId(1)]);
    raw.campaign();
    while (raw.hasReady()) raw.advance(raw.ready());
    assert.equal(raw.status().role, "leader");
  });
});
