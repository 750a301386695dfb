// Known product issues excuse only what they describe: a run failing on liveness alone with the
// issue's signature is known, the same run with any safety, linearizability or stream failure added
// is not, and a passing run never is.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type KnownIssue, knownIssueOf } from "./known-issues.js";
import { simulateSeed } from "./simulate.js";

describe("known product issues", () => {
  it("explain a liveness-only failure with their signature, and nothing more", async () => {
    const passing = await simulateSeed(1, 1);
    assert.ok(passing.ok);
    assert.equal(knownIssueOf(passing), undefined);
    // A planted issue and a run that failed on liveness alone, with the issue's mark in its report.
    const issue: KnownIssue = {
      id: "planted",
      diagnosis: "a test double",
      shows: (text) => text.includes("PLANTED-MARK"),
      seeds: [],
    };
    const stuck = {
      ...passing,
      ok: false,
      convergenceProblems: ["no leader at the end of the liveness phase"],
      text: `${passing.text}\nPLANTED-MARK`,
    };
    assert.equal(knownIssueOf(stuck, [issue])?.id, "planted");
    const unsafe = {
      ...stuck,
      raftViolations: [{ kind: "election-safety" as const, message: "two leaders", evidence: [1, 2] }],
    };
    assert.equal(knownIssueOf(unsafe, [issue]), undefined);
    assert.equal(knownIssueOf({ ...stuck, streamProblems: ["stream s0 lost: m1"] }, [issue]), undefined);
    assert.equal(knownIssueOf({ ...stuck, text: passing.text }, [issue]), undefined, "no mark, not known");
  });
});
