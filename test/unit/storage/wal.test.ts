// The write-ahead log, scenario by scenario on the simulated disk (and once on the real one):
// round trips across reopen, group commit, segment roll, suffix truncation, compaction, torn tails,
// corruption reporting per group, fail-stop on EIO, and ENOSPC rejection with recovery in place.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { WalGroupStorage } from "../../../src/node/wal-group-storage.js";
import { logIndex, term } from "../../../src/raft/types.js";
import {
  HardStateStore,
  isStorageError,
  makeDirDurable,
  NodeFileSystem,
  SimFileSystem,
  type StorageError,
  tailLostFileName,
  Wal,
  type WalOptions,
} from "../../../src/storage/index.js";
import { Prng } from "../../../src/util/prng.js";
import { entries, g1, g2, g3, plain } from "./helpers.js";

const dir = "/wal";
const small: Partial<WalOptions> = { segmentBytesMax: 512, recordBytesMax: 256, pendingBytesMax: 1024 };

async function fresh(seed = 1): Promise<SimFileSystem> {
  const fs = new SimFileSystem(new Prng(seed));
  await makeDirDurable(fs, dir);
  return fs;
}

/** A WAL of g1 entries 1-6 whose last record (entries 4-6) was written whole, then damaged. */
async function damagedLastRecord(): Promise<SimFileSystem> {
  const fs = await fresh();
  const { wal } = await Wal.open(fs, dir);
  await wal.write([{ type: "entries", group: g1, entries: entries(1, 3) }]);
  await wal.write([{ type: "entries", group: g1, entries: entries(4, 3) }]);
  await wal.close();
  const path = `${dir}/${wal.segmentNames()[0] ?? ""}`;
  fs.corrupt(path, (fs.contents(path)?.length ?? 0) - 5);
  return fs;
}

describe("Wal", () => {
  it("recovers every group's entries after reopen", async () => {
    const fs = await fresh();
    const { wal, recovery } = await Wal.open(fs, dir);
    assert.equal(recovery.groups.size, 0);
    await wal.write([
      { type: "entries", group: g1, entries: entries(1, 3) },
      { type: "entries", group: g2, entries: entries(1, 2, 4) },
    ]);
    await wal.write([{ type: "entries", group: g1, entries: entries(4, 2) }]);
    await wal.close();
    fs.crash();
    const again = await Wal.open(fs, dir);
    assert.deepEqual(plain(again.recovery.groups.get(g1)?.entries ?? []), plain(entries(1, 5)));
    assert.deepEqual(plain(again.recovery.groups.get(g2)?.entries ?? []), plain(entries(1, 2, 4)));
    assert.equal(again.recovery.groups.get(g1)?.lastIndex, 5);
    assert.equal(again.recovery.tornTail, undefined);
    assert.deepEqual(again.recovery.corruption, []);
  });

  it("coalesces concurrent writes from several groups into few fdatasyncs (group commit)", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir);
    const before = fs.syncCount;
    const groups = [g1, g2, g3];
    const writes = [];
    for (let i = 0; i < 30; i++) {
      const group = groups[i % 3] ?? g1;
      writes.push(wal.write([{ type: "entries", group, entries: entries(Math.floor(i / 3) + 1, 1) }]));
    }
    await Promise.all(writes);
    const syncs = fs.syncCount - before;
    assert.ok(syncs <= 2, `30 writes cost ${syncs} fdatasyncs`);
    await wal.close();
    const { recovery } = await Wal.open(fs, dir);
    for (const group of groups) assert.equal(recovery.groups.get(group)?.entries.length, 10);
  });

  it("rolls segments at segmentBytesMax and recovers across them", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir, small);
    for (let i = 1; i <= 40; i++)
      await wal.write([{ type: "entries", group: g1, entries: entries(i, 1, 1, 40) }]);
    const names = wal.segmentNames();
    assert.ok(names.length >= 4, `only ${names.length} segments`);
    for (const name of names) assert.ok((fs.contents(`${dir}/${name}`)?.length ?? 0) <= 512);
    await wal.close();
    const { recovery } = await Wal.open(fs, dir, small);
    assert.deepEqual(plain(recovery.groups.get(g1)?.entries ?? []), plain(entries(1, 40, 1, 40)));
  });

  it("splits an entries batch above recordBytesMax and rejects a single entry above it", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir, small);
    await wal.write([{ type: "entries", group: g1, entries: entries(1, 10, 1, 60) }]);
    await assert.rejects(wal.write([{ type: "entries", group: g1, entries: entries(11, 1, 1, 300) }]), {
      code: "ERR_TOO_LARGE",
    });
    await wal.close();
    const { recovery } = await Wal.open(fs, dir, small);
    assert.equal(recovery.groups.get(g1)?.entries.length, 10);
  });

  it("replaces a conflicting suffix, by overlap and by explicit truncation (Raft §5.3)", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir);
    await wal.write([{ type: "entries", group: g1, entries: entries(1, 5, 1) }]);
    await wal.write([{ type: "entries", group: g1, entries: entries(4, 3, 2) }]);
    await wal.truncateSuffix(g1, logIndex(6));
    await wal.close();
    const { recovery } = await Wal.open(fs, dir);
    assert.deepEqual(
      plain(recovery.groups.get(g1)?.entries ?? []),
      plain([...entries(1, 3, 1), ...entries(4, 2, 2)]),
    );
    assert.equal(recovery.groups.get(g1)?.lastIndex, 5);
  });

  it("deletes whole segments once every group in them is compacted, and recovers the compaction point", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir, small);
    for (let i = 1; i <= 30; i++) {
      await wal.write([
        { type: "entries", group: g1, entries: entries(i, 1, 1, 40) },
        { type: "entries", group: g2, entries: entries(i, 1, 1, 8) },
      ]);
    }
    const before = wal.segmentNames();
    await wal.compact(g1, logIndex(25), term(1));
    assert.deepEqual(wal.segmentNames(), before, "g2 still needs every segment");
    await wal.compact(g2, logIndex(25), term(1));
    const after = wal.segmentNames();
    assert.ok(after.length < before.length && after.length >= 1);
    assert.equal(after[after.length - 1], before[before.length - 1]);
    await wal.close();
    const { recovery } = await Wal.open(fs, dir, small);
    for (const group of [g1, g2]) {
      const r = recovery.groups.get(group);
      assert.equal(r?.compactIndex, 25);
      assert.equal(r?.compactTerm, 1);
      assert.deepEqual(
        r?.entries.map((e) => e.index),
        [26, 27, 28, 29, 30],
      );
    }
    assert.deepEqual(recovery.corruption, []);
  });

  it("lets a snapshot reach past the log: the log resumes after it", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir);
    await wal.write([{ type: "entries", group: g1, entries: entries(1, 3) }]);
    await wal.compact(g1, logIndex(100), term(7));
    await wal.write([{ type: "entries", group: g1, entries: entries(101, 2, 7) }]);
    await wal.close();
    const { recovery } = await Wal.open(fs, dir);
    const r = recovery.groups.get(g1);
    assert.deepEqual(
      r?.entries.map((e) => e.index),
      [101, 102],
    );
    assert.equal(r?.compactIndex, 100);
  });

  it("truncates a torn record at the tail and goes on appending after it", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir);
    await wal.write([{ type: "entries", group: g1, entries: entries(1, 3) }]);
    await wal.close();
    const name = wal.segmentNames()[0] ?? "";
    const path = `${dir}/${name}`;
    const size = fs.contents(path)?.length ?? 0;
    // A crash mid-write: the first 30 bytes of a further record reached the disk.
    const { wal: other } = await Wal.open(fs, dir);
    await other.write([{ type: "entries", group: g1, entries: entries(4, 1) }]);
    await other.close();
    const h = await fs.open(path, "read-write");
    await h.truncate(size + 30);
    await h.close();
    const { wal: reopened, recovery } = await Wal.open(fs, dir);
    // Bytes that run past the end of the file were never written whole: nothing was acknowledged.
    assert.deepEqual(recovery.tornTail, {
      file: name,
      offset: size,
      bytesDropped: 30,
      mayHaveBeenAcknowledged: false,
      group: undefined,
      entriesMax: 0,
    });
    const storage = new WalGroupStorage(await HardStateStore.open(fs, "/hs"), reopened, recovery, g1);
    assert.equal((await storage.load())?.tailLostIndexMax, undefined, "votes withheld for a certain tear");
    assert.deepEqual(recovery.corruption, []);
    assert.equal(recovery.groups.get(g1)?.lastIndex, 3);
    await reopened.write([{ type: "entries", group: g1, entries: entries(4, 2, 2) }]);
    await reopened.close();
    const last = await Wal.open(fs, dir);
    assert.equal(last.recovery.tornTail, undefined);
    assert.deepEqual(
      plain(last.recovery.groups.get(g1)?.entries ?? []),
      plain([...entries(1, 3), ...entries(4, 2, 2)]),
    );
  });

  it("reports a damaged whole last record as a loss that may reach acknowledged entries, to the runtime", async () => {
    // The last record was written whole (and its write acknowledged), then damaged: its checksum
    // fails with nothing after it, exactly like a torn write. The WAL cannot tell the two apart, so
    // it truncates it but reports how far the loss may reach; the group's storage hands that to the
    // core, which then withholds its votes (see test/unit/raft/torn-tail.test.ts).
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir);
    await wal.write([
      { type: "entries", group: g1, entries: entries(1, 3) },
      { type: "entries", group: g2, entries: entries(1, 2) },
    ]);
    await wal.write([{ type: "entries", group: g1, entries: entries(4, 3) }]);
    await wal.close();
    const name = wal.segmentNames()[0] ?? "";
    const path = `${dir}/${name}`;
    const size = fs.contents(path)?.length ?? 0;
    const lastRecordBytes = 24 + 12 + 3 * (13 + 8);
    fs.corrupt(path, size - 5);
    const { wal: reopened, recovery } = await Wal.open(fs, dir);
    assert.deepEqual(recovery.corruption, []);
    assert.equal(recovery.groups.get(g1)?.lastIndex, 3);
    const torn = recovery.tornTail;
    assert.equal(torn?.offset, size - lastRecordBytes);
    assert.equal(torn?.mayHaveBeenAcknowledged, true);
    assert.equal(torn?.group, g1);
    assert.ok((torn?.entriesMax ?? 0) >= 3, `entriesMax ${torn?.entriesMax} below the 3 entries lost`);
    const storage = new WalGroupStorage(await HardStateStore.open(fs, "/hs"), reopened, recovery, g1);
    const persisted = await storage.load();
    assert.equal(persisted?.tailLostIndexMax, 3 + (torn?.entriesMax ?? 0));
    assert.ok((persisted?.tailLostIndexMax ?? 0) >= 6, "entry 6 was acknowledged and may be lost");
    const other = new WalGroupStorage(await HardStateStore.open(fs, "/hs"), reopened, recovery, g2);
    const otherPersisted = await other.load();
    assert.equal(otherPersisted?.entries.length, 2);
    assert.equal(otherPersisted?.tailLostIndexMax, undefined, "another group's record");
  });

  it("keeps what a cut tail may have lost across later opens (and a crash) until the log reaches it again", async () => {
    // The start-time damage check opens the WAL before the node does; the first open cuts the tail.
    // Before the side record, the second open found a clean tail and the group voted at once.
    const fs = await damagedLastRecord();
    const first = await Wal.open(fs, dir);
    const bound = first.recovery.tailLost.get(g1);
    assert.ok(bound !== undefined && bound >= 6, `bound ${bound} reaches entry 6`);
    await first.wal.close();
    fs.crash();
    const second = await Wal.open(fs, dir);
    assert.equal(second.recovery.tornTail, undefined, "the tail was cut, durably");
    assert.equal(second.recovery.tailLost.get(g1), bound, "and what it may have lost is still known");
    assert.deepEqual(second.recovery.corruption, []);
    const storage = new WalGroupStorage(
      await HardStateStore.open(fs, "/hs"),
      second.wal,
      second.recovery,
      g1,
    );
    assert.equal((await storage.load())?.tailLostIndexMax, bound, "votes still withheld");
    // A leader resends the lost entries and more: the next open forgets the bound.
    await second.wal.write([{ type: "entries", group: g1, entries: entries(4, bound - 3 + 1) }]);
    await second.wal.close();
    const third = await Wal.open(fs, dir);
    assert.equal(third.recovery.tailLost.size, 0);
    assert.equal(fs.contents(`${dir}/${tailLostFileName}`), undefined, "the side record is gone");
    await third.wal.close();
  });

  it("treats a damaged record of a cut tail's loss as damage to every group", async () => {
    const fs = await damagedLastRecord();
    await (await Wal.open(fs, dir)).wal.close();
    fs.corrupt(`${dir}/${tailLostFileName}`, 6);
    const { wal: reopened, recovery } = await Wal.open(fs, dir);
    assert.equal(recovery.allGroupsSuspect, true);
    assert.match(recovery.corruption.map((c) => c.reason).join(), /tail-lost record fails its checksum/);
    await reopened.close();
  });

  it("reports a bad checksum before the tail as corruption of the groups it touched, naming file and offset", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir, small);
    // g1 writes only into the first segments; g2 keeps writing after them.
    for (let i = 1; i <= 6; i++)
      await wal.write([{ type: "entries", group: g1, entries: entries(i, 1, 1, 40) }]);
    for (let i = 1; i <= 20; i++)
      await wal.write([{ type: "entries", group: g2, entries: entries(i, 1, 1, 40) }]);
    const names = wal.segmentNames();
    await wal.close();
    // Damage the third record of the first segment (the first two are the checkpoint and g1's entry 1).
    const first = names[0] ?? "";
    const bytes = fs.contents(`${dir}/${first}`) ?? new Uint8Array();
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    let offset = 24;
    for (let i = 0; i < 2; i++) offset += 24 + view.getUint32(offset + 4, true);
    fs.corrupt(`${dir}/${first}`, offset + 30);
    const { wal: reopened, recovery } = await Wal.open(fs, dir, small);
    assert.deepEqual(
      recovery.corruption.map((c) => [c.file, c.offset]),
      [[first, offset]],
    );
    assert.equal(recovery.allGroupsSuspect, false);
    assert.equal(recovery.groups.get(g1)?.corruption?.offset, offset);
    assert.equal(recovery.groups.get(g2)?.corruption, undefined, "g2 wrote nothing in the corrupt span");
    assert.equal(recovery.groups.get(g2)?.entries.length, 20);
    const refusal = reopened.groupError(g1);
    assert.equal(refusal?.code, "ERR_GROUP_CORRUPT");
    assert.match(refusal?.message ?? "", new RegExp(`${first}:${offset}`));
    const cause: unknown = refusal?.cause;
    assert.ok(isStorageError(cause, "ERR_WAL_CORRUPT"));
    assert.deepEqual(cause.site, { file: first, offset });
    await assert.rejects(reopened.write([{ type: "entries", group: g1, entries: entries(7, 1) }]), {
      code: "ERR_GROUP_CORRUPT",
    });
    await reopened.write([{ type: "entries", group: g2, entries: entries(21, 1, 1, 40) }]);
    assert.equal(reopened.groupError(g2), undefined);
  });

  it("treats damage followed by valid records in the last segment as corruption of every group", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir);
    await wal.write([{ type: "entries", group: g1, entries: entries(1, 1) }]);
    await wal.write([{ type: "entries", group: g1, entries: entries(2, 1) }]);
    await wal.close();
    const name = wal.segmentNames()[0] ?? "";
    const bytes = fs.contents(`${dir}/${name}`) ?? new Uint8Array();
    const offset = 24 + 24 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(28, true);
    fs.corrupt(`${dir}/${name}`, offset + 24 + 2);
    const { wal: reopened, recovery } = await Wal.open(fs, dir);
    assert.equal(recovery.tornTail, undefined);
    assert.equal(recovery.allGroupsSuspect, true);
    assert.deepEqual(
      recovery.corruption.map((c) => [c.file, c.offset]),
      [[name, offset]],
    );
    assert.equal(reopened.groupError(g1)?.code, "ERR_GROUP_CORRUPT");
    assert.equal(reopened.groupError(g3)?.code, "ERR_GROUP_CORRUPT", "even a group it never saw");
  });

  it("stops for good after a failed fdatasync (fail-stop) and says so once", async () => {
    const fs = await fresh();
    const failures: StorageError[] = [];
    const { wal } = await Wal.open(fs, dir, { onFailure: (e) => failures.push(e) });
    await wal.write([{ type: "entries", group: g1, entries: entries(1, 1) }]);
    fs.setFaults({ syncEio: { numerator: 1, denominator: 1 } });
    const a = wal.write([{ type: "entries", group: g1, entries: entries(2, 1) }]);
    const b = wal.write([{ type: "entries", group: g2, entries: entries(1, 1) }]);
    await assert.rejects(a, { code: "ERR_STORAGE_FAILED" });
    await assert.rejects(b, { code: "ERR_STORAGE_FAILED" });
    fs.setFaults({ syncEio: { numerator: 0, denominator: 1 } });
    await assert.rejects(
      wal.write([{ type: "entries", group: g2, entries: entries(1, 1) }]),
      (e: unknown) => {
        return isStorageError(e, "ERR_STORAGE_FAILED") && errnoCause(e) === "EIO";
      },
    );
    assert.equal(failures.length, 1);
    assert.equal(failures[0]?.code, "ERR_STORAGE_FAILED");
  });

  it("rejects writes with ERR_NO_SPACE when the disk is full and accepts them again once space is freed", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir, small);
    await wal.write([{ type: "entries", group: g1, entries: entries(1, 2, 1, 40) }]);
    fs.setFaults({ bytesMax: fs.usedBytes() + 50 });
    await assert.rejects(wal.write([{ type: "entries", group: g1, entries: entries(3, 2, 1, 40) }]), {
      code: "ERR_NO_SPACE",
    });
    // Nothing of the rejected write counts: the next write continues from index 3.
    for (let i = 0; i < 20; i++) {
      await assert.rejects(wal.write([{ type: "entries", group: g1, entries: entries(3, 2, 1, 40) }]), {
        code: "ERR_NO_SPACE",
      });
    }
    fs.setFaults({ bytesMax: Number.POSITIVE_INFINITY });
    for (let i = 3; i <= 30; i++)
      await wal.write([{ type: "entries", group: g1, entries: entries(i, 1, 1, 40) }]);
    await wal.close();
    fs.crash();
    const { recovery } = await Wal.open(fs, dir, small);
    assert.deepEqual(plain(recovery.groups.get(g1)?.entries ?? []), plain(entries(1, 30, 1, 40)));
    assert.deepEqual(recovery.corruption, []);
  });

  it("bounds the queue at pendingBytesMax: writes beyond it wait, then all land in order", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir, {
      segmentBytesMax: 1 << 20,
      recordBytesMax: 256,
      pendingBytesMax: 256,
    });
    const writes = [];
    for (let i = 1; i <= 50; i++)
      writes.push(wal.write([{ type: "entries", group: g1, entries: entries(i, 1, 1, 100) }]));
    await Promise.all(writes);
    // Each flush carries at most pendingBytesMax, so 50 records of ~150 bytes need many syncs.
    assert.ok(fs.syncCount >= 25, `only ${fs.syncCount} syncs`);
    await wal.close();
    const { recovery } = await Wal.open(fs, dir);
    assert.equal(recovery.groups.get(g1)?.lastIndex, 50);
  });

  it("refuses out-of-order writes as a broken invariant", async () => {
    const fs = await fresh();
    const { wal } = await Wal.open(fs, dir);
    await assert.rejects(wal.write([{ type: "entries", group: g1, entries: entries(3, 1) }]), {
      name: "AssertionError",
    });
  });

  it("works on the real file system", async () => {
    const root = await mkdtemp(join(tmpdir(), "cairn-wal-"));
    try {
      const fs = new NodeFileSystem();
      const { wal } = await Wal.open(fs, root, { segmentBytesMax: 4096 });
      for (let i = 1; i <= 50; i++) {
        await wal.write([
          { type: "entries", group: g1, entries: entries(i, 1, 1, 100) },
          { type: "entries", group: g2, entries: entries(i, 1, 2, 10) },
        ]);
      }
      await wal.compact(g1, logIndex(40), term(1));
      await wal.compact(g2, logIndex(40), term(2));
      assert.ok(wal.segmentNames().length >= 1);
      await wal.close();
      const { wal: again, recovery } = await Wal.open(fs, root, { segmentBytesMax: 4096 });
      assert.deepEqual(plain(recovery.groups.get(g1)?.entries ?? []), plain(entries(41, 10, 1, 100)));
      assert.deepEqual(plain(recovery.groups.get(g2)?.entries ?? []), plain(entries(41, 10, 2, 10)));
      await again.close();
      await assert.rejects(again.write([]), { code: "ERR_CLOSED" });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

function errnoCause(e: StorageError): string | undefined {
  const cause: unknown = e.cause;
  return typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : undefined;
}
