// Every planted bug of `npm run faults:mutants` still applies to the sources: each patch's anchor
// occurs exactly once. Running the mutants takes minutes and stays out of `npm test`; this keeps a
// refactor from silently turning one of them into a no-op.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { anchorProblems } from "../sim/mutant-list.js";
import { faultMutants } from "./mutant-list.js";

const root = new URL("../..", import.meta.url).pathname;

describe("fault suite's planted bugs", () => {
  it("every mutant's patches apply to the current sources exactly once", () => {
    const read = (file: string) => readFileSync(join(root, file), "utf8");
    assert.equal(faultMutants.length, 4);
    assert.deepEqual(
      faultMutants.flatMap((m) => anchorProblems(m, read)),
      [],
    );
  });
});
