// Every planted bug of `npm run sim:mutants` still applies to the sources: each patch's anchor text
// occurs exactly once. Running the mutants takes minutes and stays out of `npm test`; this check
// keeps a refactor from silently turning one of them into a no-op.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { anchorProblems, mutants } from "./mutant-list.js";

const root = new URL("../..", import.meta.url).pathname;

describe("planted bugs", () => {
  it("every mutant's patches apply to the current sources exactly once", () => {
    const read = (file: string) => readFileSync(join(root, file), "utf8");
    assert.ok(mutants.length >= 7, "the issue's planted bugs are all listed");
    assert.deepEqual(
      mutants.flatMap((m) => anchorProblems(m, read)),
      [],
    );
  });
});
