// WAL benchmark (`npm run bench:wal`): durable appends per second for batches of 1, 16, 64 and 256
// entries of 128 bytes, each batch one WAL write (one fdatasync), next to the raw floor measured in
// the same run: plain writeSync + fdatasync of the same number of bytes. Floor and WAL runs alternate
// in short runs (A B A B ...) and medians are reported, the ratio as the median of the ratios of
// adjacent pairs, because the machine (and its disk) is shared and noisy. Then it writes a
// 1 GiB log once under the temp directory, times its recovery (Wal.open), and deletes it.
// Flags: --run-ms=<n> per run (default 150), --rounds=<n> (default 15), --recovery-mib=<n> (default 1024).
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { type Entry, groupId, logIndex, term } from "../src/raft/types.js";
import { NodeFileSystem, Wal } from "../src/storage/index.js";

const flag = (name: string, fallback: number): number => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : Number(arg.slice(name.length + 3));
};
const runMs = flag("run-ms", 150);
const rounds = flag("rounds", 15);
const recoveryMiB = flag("recovery-mib", 1024);
const batchSizes = [1, 16, 64, 256];
const entryBytes = 128;
const group = groupId(1);
const root = mkdtempSync(join(tmpdir(), "cairn-bench-wal-"));

/** Bytes one entries record of `count` entries takes on disk (record header, batch header, entries). */
const recordBytes = (count: number, size = entryBytes): number => 24 + 12 + count * (13 + size);

function batch(first: number, count: number, size = entryBytes): Entry[] {
  const data = new Uint8Array(size).fill(0x5a);
  return Array.from({ length: count }, (_, i) => ({
    term: term(1),
    index: logIndex(first + i),
    kind: "normal",
    data,
  }));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

let runId = 0;

/** Records per second of plain writeSync + fdatasync, one call pair per batch. */
function floor(count: number): number {
  const path = join(root, `floor-${runId++}`);
  const fd = openSync(path, "w");
  const bytes = new Uint8Array(recordBytes(count)).fill(0x5a);
  let position = 0;
  let batches = 0;
  const started = performance.now();
  while (performance.now() - started < runMs) {
    writeSync(fd, bytes, 0, bytes.length, position);
    fdatasyncSync(fd);
    position += bytes.length;
    batches++;
  }
  const seconds = (performance.now() - started) / 1000;
  closeSync(fd);
  rmSync(path);
  return (batches * count) / seconds;
}

/** Records per second of durable WAL writes, one write (one fdatasync) per batch. */
async function wal(count: number): Promise<number> {
  const dir = join(root, `wal-${runId++}`);
  const { wal } = await Wal.open(new NodeFileSystem(), dir);
  let next = 1;
  let batches = 0;
  const started = performance.now();
  while (performance.now() - started < runMs) {
    await wal.write([{ type: "entries", group, entries: batch(next, count) }]);
    next += count;
    batches++;
  }
  const seconds = (performance.now() - started) / 1000;
  await wal.close();
  rmSync(dir, { recursive: true, force: true });
  return (batches * count) / seconds;
}

async function recovery(): Promise<{ seconds: number; bytes: number; entries: number }> {
  const dir = join(root, "recovery");
  const size = 1024;
  const perWrite = 1024;
  const { wal: writer } = await Wal.open(new NodeFileSystem(), dir);
  const target = recoveryMiB * 1024 * 1024;
  let bytes = 0;
  let next = 1;
  while (bytes < target) {
    await writer.write([{ type: "entries", group, entries: batch(next, perWrite, size) }]);
    next += perWrite;
    bytes += recordBytes(perWrite, size);
  }
  await writer.close();
  const started = performance.now();
  const { wal: reader, recovery: found } = await Wal.open(new NodeFileSystem(), dir);
  const seconds = (performance.now() - started) / 1000;
  const entries = found.groups.get(group)?.entries.length ?? 0;
  if (entries !== next - 1) throw new Error(`recovered ${entries} entries, wrote ${next - 1}`);
  await reader.close();
  rmSync(dir, { recursive: true, force: true });
  return { seconds, bytes, entries };
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${cpus().length} cpus, temp dir ${tmpdir()}`);
  console.log(`${rounds} alternating floor/WAL rounds of ${runMs} ms per batch size; medians\n`);
  console.log("| batch (entries of 128 B) | floor records/s | WAL records/s | WAL / floor |");
  console.log("|---:|---:|---:|---:|");
  let minRatio = Number.POSITIVE_INFINITY;
  for (const count of batchSizes) {
    const floors: number[] = [];
    const wals: number[] = [];
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const f = floor(count);
      const w = await wal(count);
      floors.push(f);
      wals.push(w);
      ratios.push(w / f);
    }
    const ratio = median(ratios);
    minRatio = Math.min(minRatio, ratio);
    console.log(
      `| ${count} | ${Math.round(median(floors))} | ${Math.round(median(wals))} | ${ratio.toFixed(2)} |`,
    );
  }
  if (recoveryMiB > 0) {
    const r = await recovery();
    const mib = r.bytes / 1024 / 1024;
    console.log(
      `\nrecovery: ${mib.toFixed(0)} MiB, ${r.entries} entries of 1 KiB in ${r.seconds.toFixed(2)} s`,
    );
  }
  console.log(`min ratio to floor: ${minRatio.toFixed(2)}`);
}

try {
  await main();
} finally {
  rmSync(root, { recursive: true, force: true });
}
