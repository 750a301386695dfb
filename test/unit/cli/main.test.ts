// The CLI entry as a user runs it: the installed `bin/cairn.js` prints the package version and its
// help, and rejects an unknown option with a non-zero status.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";

const root = new URL("../../../", import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { version: string };

function cairn(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", `${root}src/cli/run.ts`, ...args], {
    cwd: root,
    encoding: "utf8",
    timeout: 30_000,
  });
}

describe("cairn CLI", () => {
  it("--version prints the package version", () => {
    const result = cairn("--version");
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), pkg.version);
  });

  it("--help describes Cairn", () => {
    const result = cairn("--help");
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Usage: cairn/);
    assert.match(result.stdout, /fault-tolerant, strongly consistent/);
  });

  it("an unknown option fails with a message and a non-zero status", () => {
    const result = cairn("--no-such-flag");
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /unknown option/);
  });
});
