// Scripted interaction tests: each test/interaction/*.txt file is a sequence of commands with the
// trace they print (Ready batches, messages, status). The test re-runs the commands and compares the
// whole trace; `REWRITE=1 node scripts/test.mjs interaction` regenerates the files, and the diff is
// reviewed like code.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runScript } from "./runner.js";

const dir = new URL(".", import.meta.url).pathname;
const { REWRITE } = process.env;
const rewrite = REWRITE === "1";

describe("interaction traces", () => {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".txt"))
    .sort();

  it("has scripts to run", () => {
    assert.ok(files.length > 0);
  });

  for (const file of files) {
    it(file, () => {
      const path = join(dir, file);
      const expected = readFileSync(path, "utf8");
      const actual = runScript(expected);
      if (rewrite) writeFileSync(path, actual);
      else assert.equal(actual, expected, `${file} differs; rerun with REWRITE=1 and review the diff`);
      assert.ok(!actual.includes("\nerror: "), `${file} has a failing command`);
    });
  }
});
