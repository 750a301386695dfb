// The simulator's snapshot-link settings: drawn from a seed, they vary chunk size and window, but
// every run can stream a snapshot fast enough to finish inside the settle period. Method: derive the
// settings for many seeds and check the bounds a run relies on.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { simSnapshotSettings } from "./sim-snapshot-links.js";

const seeds = Array.from({ length: 2000 }, (_, k) => k * 7919 + 1);

describe("simSnapshotSettings", () => {
  it("gives every run a window of at least 4 KiB", () => {
    // A 1 KiB window moved a level-2 snapshot at 5-10 KiB/s: a re-added follower was still
    // receiving its fourth snapshot in a row when seed 30000585 was judged.
    for (const seed of seeds) {
      const s = simSnapshotSettings(seed);
      assert.ok(
        s.snapshotWindowChunksMax * s.snapshotChunkBytesMax >= 4096,
        `seed ${seed}: ${s.snapshotWindowChunksMax} chunks of ${s.snapshotChunkBytesMax} bytes`,
      );
    }
  });

  it("still varies the chunk size and keeps small windows of large chunks", () => {
    const chunkSizes = new Set<number>();
    const windows = new Set<number>();
    for (const seed of seeds) {
      const s = simSnapshotSettings(seed);
      chunkSizes.add(s.snapshotChunkBytesMax);
      windows.add(s.snapshotWindowChunksMax);
    }
    assert.deepEqual(
      [...chunkSizes].sort((a, b) => a - b),
      [512, 2048, 8192],
    );
    assert.ok(windows.has(2), "a window of 2 chunks (2 or 8 KiB ones) still occurs");
    assert.ok(windows.has(8), "a window of 8 chunks still occurs");
  });

  it("is a pure function of its seed", () => {
    assert.deepEqual(simSnapshotSettings(30000585), simSnapshotSettings(30000585));
  });
});
