// WAL benchmark (`npm run bench:wal`): durable appends per second for batches of 1, 16, 64 and 256
// entries of 128 bytes, each batch one WAL write (one fdatasync), next to the raw floor measured in
// the same run: plain writeSync + fdatasync of the same number of bytes. Floor and WAL batches
// alternate one by one (A B A B ..., in shuffled order) within each round, and medians over rounds are reported (the
// ratio as the median of the rounds' ratios), because the machine and its disk are shared and noisy.
// A third writer, the same bytes through the async FileHandle API with O_DSYNC (how the WAL writes),
// separates the WAL's own cost from the cost of keeping the sync off the event loop. Then it writes a
// 1 GiB log once under the temp directory, times its recovery (Wal.open), and deletes it.
// Flags: --run-ms=<n> per round (default 1000), --rounds=<n> (default 5), --recovery-mib=<n> (default 1024),
// --durable-end-bytes=<n>: a fourth writer, a WAL that records its durable end every n bytes (the
// truncation watermark, wal-durable-end.ts), interleaved with the others: its records/s and its
// ratio to the plain WAL (A/B in the same rounds).
import { closeSync, constants, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { type Entry, groupId, logIndex, term } from "../src/raft/types.js";
import { NodeFileSystem, Wal } from "../src/storage/index.js";
import { Prng } from "../src/util/prng.js";

const flag = (name: string, fallback: number): number => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : Number(arg.slice(name.length + 3));
};
const runMs = flag("run-ms", 1000);
const rounds = flag("rounds", 5);
const recoveryMiB = flag("recovery-mib", 1024);
const durableEndBytes = flag("durable-end-bytes", -1);
const batchSizes = [1, 16, 64, 256];
const entryBytes = 128;
const group = groupId(1);
const root = mkdtempSync(join(tmpdir(), "cairn-bench-wal-"));
const prng = new Prng(1);

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

/**
 * One round for batch size `count`: a raw file and a WAL, written alternately one batch at a time
 * (floor batch, WAL batch, floor batch, ...) for `runMs`, so both see the same disk conditions.
 * Floor: plain writeSync + fdatasync of as many bytes as the WAL record. Returns records/s of each.
 */
async function round(
  count: number,
): Promise<{ floor: number; offLoop: number; wal: number; marked: number }> {
  const path = join(root, `floor-${runId}`);
  const offLoopPath = join(root, `off-loop-${runId}`);
  const dir = join(root, `wal-${runId++}`);
  const fd = openSync(path, "w");
  // The same bytes through the async FileHandle API (O_DSYNC, as the WAL's tail is opened): the
  // cost of keeping the sync off the event loop, without any WAL code.
  const offLoop = await open(offLoopPath, constants.O_RDWR | constants.O_CREAT | constants.O_DSYNC);
  const bytes = new Uint8Array(recordBytes(count)).fill(0x5a);
  const { wal } = await Wal.open(new NodeFileSystem(), dir);
  const markedDir = `${dir}-marked`;
  const { wal: marked } = await Wal.open(new NodeFileSystem(), markedDir, {
    durableEndEveryBytes: Math.max(0, durableEndBytes),
  });
  let markedNext = 1;
  let markedMs = 0;
  let position = 0;
  let next = 1;
  let batches = 0;
  let floorMs = 0;
  let offLoopMs = 0;
  let walMs = 0;
  // The three writers take turns in a shuffled order each time, so none always follows another's sync.
  const writers: (() => Promise<void>)[] = [
    async () => {
      const t = performance.now();
      writeSync(fd, bytes, 0, bytes.length, position);
      fdatasyncSync(fd);
      floorMs += performance.now() - t;
    },
    async () => {
      // Built before the clock starts, as the floor's bytes are: the caller has its entries already.
      const entries = batch(next, count);
      const t = performance.now();
      await wal.write([{ type: "entries", group, entries }]);
      walMs += performance.now() - t;
    },
    async () => {
      const t = performance.now();
      await offLoop.write(bytes, 0, bytes.length, position);
      offLoopMs += performance.now() - t;
    },
  ];
  if (durableEndBytes >= 0) {
    writers.push(async () => {
      const entries = batch(markedNext, count);
      const t = performance.now();
      await marked.write([{ type: "entries", group, entries }]);
      markedMs += performance.now() - t;
      markedNext += count;
    });
  }
  const started = performance.now();
  while (performance.now() - started < runMs) {
    for (const writer of prng.shuffle([...writers])) await writer();
    position += bytes.length;
    next += count;
    batches++;
  }
  closeSync(fd);
  await offLoop.close();
  await wal.close();
  await marked.close();
  rmSync(markedDir, { recursive: true, force: true });
  rmSync(path);
  rmSync(offLoopPath);
  rmSync(dir, { recursive: true, force: true });
  const rate = (ms: number): number => (batches * count * 1000) / ms;
  return { floor: rate(floorMs), offLoop: rate(offLoopMs), wal: rate(walMs), marked: rate(markedMs) };
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
  console.log(
    `${rounds} rounds of ${runMs} ms per batch size, floor, WAL and off-loop batches interleaved; medians\n`,
  );
  const markedHeader =
    durableEndBytes >= 0
      ? ` WAL + durable end every ${durableEndBytes} B records/s | that / WAL (range) |`
      : "";
  console.log(
    `| batch (entries of 128 B) | floor records/s | WAL records/s | WAL / floor | off-loop floor records/s | WAL / off-loop floor |${markedHeader}`,
  );
  console.log(`|---:|---:|---:|---:|---:|---:|${durableEndBytes >= 0 ? "---:|---:|" : ""}`);
  let minRatio = Number.POSITIVE_INFINITY;
  for (const count of batchSizes) {
    const floors: number[] = [];
    const offLoops: number[] = [];
    const wals: number[] = [];
    const ratios: number[] = [];
    const offLoopRatios: number[] = [];
    const markedRates: number[] = [];
    const markedRatios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const { floor, offLoop, wal, marked } = await round(count);
      markedRates.push(marked);
      markedRatios.push(marked / wal);
      floors.push(floor);
      offLoops.push(offLoop);
      wals.push(wal);
      ratios.push(wal / floor);
      offLoopRatios.push(wal / offLoop);
    }
    const ratio = median(ratios);
    minRatio = Math.min(minRatio, ratio);
    const cells = [count, Math.round(median(floors)), Math.round(median(wals)), ratio.toFixed(2)];
    cells.push(Math.round(median(offLoops)), median(offLoopRatios).toFixed(2));
    if (durableEndBytes >= 0) {
      const range = `${Math.min(...markedRatios).toFixed(2)}-${Math.max(...markedRatios).toFixed(2)}`;
      cells.push(Math.round(median(markedRates)), `${median(markedRatios).toFixed(2)} (${range})`);
    }
    console.log(`| ${cells.join(" | ")} |`);
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
