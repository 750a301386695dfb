// Majority arithmetic checked against brute-force definitions over random voter sets: the commit
// index is the largest index a majority holds, and a vote is won or lost exactly when a majority
// has granted or can no longer grant.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { committedIndex, hasQuorum, majority, voteResult } from "../../../src/raft/quorum.js";
import { type LogIndex, logIndex, type NodeId, nodeId } from "../../../src/raft/types.js";

describe("quorum", () => {
  it("needs a strict majority", () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6].map(majority), [1, 2, 2, 3, 3, 4]);
  });

  it("commits the largest index held by a majority (brute force reference)", () => {
    fc.assert(
      fc.property(fc.array(fc.nat(20), { minLength: 1, maxLength: 7 }), (matches) => {
        const voters = matches.map((_, k) => nodeId(k + 1));
        const matchOf = (id: NodeId): LogIndex => logIndex(matches[id - 1] ?? 0);
        let expected = 0;
        for (let x = 0; x <= 20; x++) {
          if (matches.filter((m) => m >= x).length >= majority(matches.length)) expected = x;
        }
        assert.equal(committedIndex(voters, matchOf), expected);
      }),
    );
  });

  it("commits nothing without voters", () => {
    assert.equal(
      committedIndex([], () => logIndex(5)),
      0,
    );
  });

  it("decides a vote exactly when the outcome is certain (brute force reference)", () => {
    const vote = fc.constantFrom<boolean | undefined>(true, false, undefined);
    fc.assert(
      fc.property(
        fc.array(vote, { minLength: 1, maxLength: 7 }),
        fc.array(vote, { maxLength: 3 }),
        (vs, outsiders) => {
          const voters = vs.map((_, k) => nodeId(k + 1));
          const votes = new Map<NodeId, boolean>();
          vs.forEach((v, k) => {
            if (v !== undefined) votes.set(nodeId(k + 1), v);
          });
          // Votes from non-voters (learners, strangers) never count.
          outsiders.forEach((v, k) => {
            if (v !== undefined) votes.set(nodeId(100 + k), v);
          });
          const granted = vs.filter((v) => v === true).length;
          const open = vs.filter((v) => v === undefined).length;
          const need = majority(vs.length);
          const expected = granted >= need ? "won" : granted + open < need ? "lost" : "pending";
          assert.equal(voteResult(voters, votes), expected);
        },
      ),
    );
  });

  it("counts only voters toward an active quorum", () => {
    const voters = [1, 2, 3].map(nodeId);
    assert.equal(
      hasQuorum(voters, (id) => id === 1 || id === 9),
      false,
    );
    assert.equal(
      hasQuorum(voters, (id) => id !== 3),
      true,
    );
  });
});
