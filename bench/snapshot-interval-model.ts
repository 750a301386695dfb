// The snapshot interval's rule (src/node/snapshot-due.ts) stepped over a growing log, for sizes a
// real run does not fit in (docs/benchmarks.md, "Snapshots in proportion to the state"): the log
// grows 1 MiB at a time, each log byte adds `k` bytes of snapshot, a capture is instant and writes
// the whole state. Prints, per size and rule, the snapshots taken, the bytes they wrote, the bytes
// per log byte and the longest log kept. A model of the rule, not a measurement of a cluster.
// Run: node --import tsx bench/snapshot-interval-model.ts
import { type SnapshotInterval, snapshotDue } from "../src/node/snapshot-due.js";

const MiB = 1024 * 1024;
/** Snapshot bytes per log byte: the quick scale run's 72 MiB snapshot for 61 MiB of log. */
const k = 1.2;

function fill(rule: SnapshotInterval, logTotal: number): string {
  let log = 0;
  let last: number | undefined;
  let written = 0;
  let count = 0;
  let longest = 0;
  for (let total = MiB; total <= logTotal; total += MiB) {
    log += MiB;
    longest = Math.max(longest, log);
    if (snapshotDue(rule, { entries: 0, bytes: log, snapshotBytes: last })) {
      last = Math.round(total * k);
      written += last;
      count++;
      log = 0;
    }
  }
  return `${count} snapshots, ${(written / MiB / 1024).toFixed(2)} GiB written, ${(written / logTotal).toFixed(2)} per log byte, longest log ${longest / MiB} MiB`;
}

// Bytes only: the runs' entries are large (batches), so the entry floor and ceiling never act.
const floor: SnapshotInterval = { entriesBetween: Number.MAX_SAFE_INTEGER, bytesBetween: 64 * MiB };
const sizes = [
  ["1M keys + 2M messages", 305],
  ["1M keys + 5M messages (issue 18)", 610],
  ["10M keys + 50M messages", 6100],
] as const;
for (const [name, logMiB] of sizes) {
  console.log(`${name}: about ${logMiB} MiB of log`);
  console.log(`  fixed 64 MiB:          ${fill(floor, logMiB * MiB)}`);
  console.log(
    `  50%, ceiling 256 MiB:  ${fill({ ...floor, stateSharePercent: 50, logBytesMax: 256 * MiB }, logMiB * MiB)}`,
  );
  console.log(`  50%, no ceiling:       ${fill({ ...floor, stateSharePercent: 50 }, logMiB * MiB)}`);
}
