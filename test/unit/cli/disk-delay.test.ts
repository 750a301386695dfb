// The slow-disk file of `--disk-delay-file`: its text is parsed strictly (bad text changes nothing),
// and a running node picks up a new delay when the file changes.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseDiskDelay, watchDiskDelay } from "../../../src/cli/disk-delay.js";
import { lineLogger } from "../../../src/util/index.js";
import { waitFor } from "../../support/wait-for.js";

describe("disk delay file", () => {
  it("parses whole milliseconds and refuses anything else", () => {
    assert.deepEqual(parseDiskDelay(""), { ok: true, delayMs: 0 });
    assert.deepEqual(parseDiskDelay("250\n"), { ok: true, delayMs: 250 });
    for (const bad of ["-1", "1.5", "abc", "60001", "9999999"])
      assert.equal(parseDiskDelay(bad).ok, false, bad);
  });

  it("follows the file as it changes, and keeps the last delay when the text is bad", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cairn-disk-delay-"));
    const path = join(dir, "delay");
    const lines: string[] = [];
    const watched = await watchDiskDelay(
      path,
      lineLogger((line) => lines.push(line)),
    );
    try {
      assert.equal(watched.delay.delayMs(), 0, "no file, no delay");
      await writeFile(path, "300");
      await waitFor("the new delay", () => watched.delay.delayMs() === 300);
      await writeFile(path, "slow please");
      await waitFor("the refusal logged", () => lines.some((l) => l.includes("expected milliseconds")));
      assert.equal(watched.delay.delayMs(), 300);
      await writeFile(path, "0");
      await waitFor("healed", () => watched.delay.delayMs() === 0);
    } finally {
      watched.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
