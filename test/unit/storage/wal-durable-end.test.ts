// A WAL cut at the end of its newest segment loses records it had made durable (and acknowledged);
// the durable-end watermark makes such a cut visible at open as corruption, whether it falls on a
// record boundary (a clean end, otherwise) or inside a record (a torn tail, otherwise). Scenarios on
// the simulated disk: each cut with and without the watermark, a genuine torn tail past the recorded
// end, a lost newest segment, a damaged watermark, and the watermark's codec.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeDurableEnd,
  durableEndFileName,
  encodeDurableEnd,
  groupCorruptionError,
  makeDirDurable,
  readDurableEnd,
  SimFileSystem,
  Wal,
  type WalOptions,
} from "../../../src/storage/index.js";
import { Prng } from "../../../src/util/prng.js";
import { entries, g1 } from "./helpers.js";

const dir = "/wal";
const marked: Partial<WalOptions> = { durableEndEveryBytes: 0 };

/** A log with two durable writes (each by its own open, so each is recorded), and the sizes after each. */
async function twoWrites(
  options: Partial<WalOptions>,
): Promise<{ fs: SimFileSystem; path: string; sizes: number[] }> {
  const fs = new SimFileSystem(new Prng(1));
  await makeDirDurable(fs, dir);
  const sizes: number[] = [];
  let path = "";
  for (const first of [1, 4]) {
    const { wal } = await Wal.open(fs, dir, options);
    await wal.write([{ type: "entries", group: g1, entries: entries(first, 3) }]);
    await wal.close();
    path = `${dir}/${wal.segmentNames().at(-1) ?? ""}`;
    sizes.push(fs.contents(path)?.length ?? 0);
  }
  return { fs, path, sizes };
}

async function cut(fs: SimFileSystem, path: string, size: number): Promise<void> {
  const handle = await fs.open(path, "read-write");
  await handle.truncate(size);
  await handle.datasync();
  await handle.close();
}

describe("the WAL's durable-end watermark", () => {
  it("records how far the newest segment was durable", async () => {
    const { fs, path, sizes } = await twoWrites(marked);
    const recorded = await readDurableEnd(fs, dir);
    assert.deepEqual(recorded, { seq: 1, bytes: sizes[1] });
    assert.ok(path.endsWith("wal-0000000000000001.log"));
  });

  it("a cut at a record boundary below it is corruption, not a clean end", async () => {
    const { fs, path, sizes } = await twoWrites(marked);
    await cut(fs, path, sizes[0] ?? 0);
    const { wal, recovery } = await Wal.open(fs, dir, marked);
    assert.equal(recovery.tornTail, undefined, "the cut looks like a clean end");
    const error = groupCorruptionError(recovery, g1);
    assert.equal(error?.code, "ERR_GROUP_CORRUPT");
    assert.match(recovery.corruption.at(-1)?.reason ?? "", /below the \d+ bytes recorded durable/);
    await wal.close();
    // Stable: the next open (the node's own, after the start-time check's) finds it again.
    const again = await Wal.open(fs, dir, marked);
    assert.equal(groupCorruptionError(again.recovery, g1)?.code, "ERR_GROUP_CORRUPT");
    await again.wal.close();
  });

  it("a cut inside a record below it is corruption, not a torn tail", async () => {
    const { fs, path, sizes } = await twoWrites(marked);
    await cut(fs, path, (sizes[1] ?? 0) - 5);
    const { wal, recovery } = await Wal.open(fs, dir, marked);
    assert.notEqual(recovery.tornTail, undefined, "the cut looks like a torn write");
    assert.equal(groupCorruptionError(recovery, g1)?.code, "ERR_GROUP_CORRUPT");
    await wal.close();
  });

  it("without the watermark both cuts go unnoticed (what it adds)", async () => {
    for (const at of [0, -5]) {
      const { fs, path, sizes } = await twoWrites({});
      assert.equal(await readDurableEnd(fs, dir), undefined);
      await cut(fs, path, at === 0 ? (sizes[0] ?? 0) : (sizes[1] ?? 0) + at);
      const { wal, recovery } = await Wal.open(fs, dir, {});
      assert.equal(groupCorruptionError(recovery, g1), undefined);
      assert.equal(recovery.groups.get(g1)?.lastIndex, 3, "entries 4-6 are gone silently");
      await wal.close();
    }
  });

  it("a torn write past the recorded end is still a torn tail", async () => {
    const { fs, path, sizes } = await twoWrites(marked);
    // A crash mid-write: the first 30 bytes of a further record reached the disk, never recorded
    // (the watermark follows only durable writes; this one stands for a write cut short).
    const { wal: unmarked } = await Wal.open(fs, dir, {});
    await unmarked.write([{ type: "entries", group: g1, entries: entries(7, 1) }]);
    await unmarked.close();
    await cut(fs, path, (sizes[1] ?? 0) + 30);
    const { wal, recovery } = await Wal.open(fs, dir, marked);
    assert.equal(recovery.tornTail?.offset, sizes[1]);
    assert.equal(groupCorruptionError(recovery, g1), undefined);
    assert.equal(recovery.groups.get(g1)?.lastIndex, 6);
    await wal.close();
  });

  it("a lost newest segment is corruption", async () => {
    const fs = new SimFileSystem(new Prng(2));
    await makeDirDurable(fs, dir);
    const small = { ...marked, segmentBytesMax: 200, recordBytesMax: 150, pendingBytesMax: 400 };
    const { wal } = await Wal.open(fs, dir, small);
    for (let i = 0; i < 6; i++) await wal.write([{ type: "entries", group: g1, entries: entries(1 + i, 1) }]);
    await wal.close();
    const names = wal.segmentNames();
    assert.ok(names.length >= 2, `segments rolled: ${names.join()}`);
    await fs.unlink(`${dir}/${names.at(-1) ?? ""}`);
    const { wal: reopened, recovery } = await Wal.open(fs, dir, small);
    assert.equal(groupCorruptionError(recovery, g1)?.code, "ERR_GROUP_CORRUPT");
    assert.match(recovery.corruption.at(-1)?.reason ?? "", /durable records were cut/);
    await reopened.close();
  });

  it("a damaged watermark is corruption; its codec round-trips", async () => {
    assert.deepEqual(decodeDurableEnd(encodeDurableEnd({ seq: 7, bytes: 123_456 })), {
      seq: 7,
      bytes: 123_456,
    });
    const bytes = encodeDurableEnd({ seq: 7, bytes: 123_456 });
    bytes[3] = (bytes[3] ?? 0) ^ 1;
    assert.equal(decodeDurableEnd(bytes), "corrupt");
    assert.equal(decodeDurableEnd(bytes.subarray(0, 10)), "corrupt");
    const { fs } = await twoWrites(marked);
    fs.corrupt(`${dir}/${durableEndFileName}`, 2);
    const { wal, recovery } = await Wal.open(fs, dir, marked);
    assert.equal(groupCorruptionError(recovery, g1)?.code, "ERR_GROUP_CORRUPT");
    assert.match(recovery.corruption.at(-1)?.reason ?? "", /fails its checksum/);
    await wal.close();
  });
});
