// The slow disk of the fault suite: writes and syncs wait their delay in memory, in order per file,
// before they reach the disk below (so a crash while they wait loses them, as a power cut loses
// unsynced data); reads and a zero delay pass straight through. The sleeps are controlled by hand.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DelayedFileSystem } from "../../../src/storage/delayed-file-system.js";
import { SimFileSystem } from "../../../src/storage/index.js";
import { Prng } from "../../../src/util/prng.js";

/** A delay whose sleeps end only when the test says so. */
function manualDelay(initialMs: number) {
  const sleeping: { ms: number; wake: () => void }[] = [];
  const delay = {
    ms: initialMs,
    delayMs: () => delay.ms,
    sleep: (ms: number) => new Promise<void>((wake) => sleeping.push({ ms, wake })),
  };
  return { delay, sleeping };
}

/** Lets queued promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

async function setUp(initialMs: number) {
  const disk = new SimFileSystem(new Prng(1));
  await disk.mkdir("/d");
  const { delay, sleeping } = manualDelay(initialMs);
  const fs = new DelayedFileSystem(disk, delay);
  const handle = await fs.open("/d/wal", "create-or-truncate");
  return { disk, delay, sleeping, handle };
}

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes ?? new Uint8Array());

describe("DelayedFileSystem", () => {
  it("passes writes straight through without a delay", async () => {
    const { disk, sleeping, handle } = await setUp(0);
    await handle.write(new TextEncoder().encode("abc"), 0);
    await handle.datasync();
    assert.equal(text(disk.contents("/d/wal")), "abc");
    assert.equal(sleeping.length, 0);
  });

  it("holds a write in memory for its delay: until then the disk has none of it", async () => {
    const { disk, sleeping, handle } = await setUp(250);
    let written = false;
    const write = handle.write(new TextEncoder().encode("entry"), 0).then(() => {
      written = true;
    });
    await settle();
    assert.deepEqual(
      sleeping.map((s) => s.ms),
      [250],
    );
    assert.equal(written, false);
    assert.equal(text(disk.contents("/d/wal")), "", "a crash now would lose the write");
    sleeping[0]?.wake();
    await write;
    assert.equal(text(disk.contents("/d/wal")), "entry");
  });

  it("keeps a file's writes and syncs in order when the delay shrinks in between", async () => {
    const { disk, delay, sleeping, handle } = await setUp(500);
    const order: string[] = [];
    const first = handle.write(new TextEncoder().encode("first"), 0).then(() => order.push("first"));
    await settle();
    delay.ms = 0;
    const second = handle.write(new TextEncoder().encode("2nd"), 5).then(() => order.push("second"));
    const sync = handle.datasync().then(() => order.push("sync"));
    await settle();
    assert.deepEqual(order, [], "nothing overtakes the write still waiting");
    assert.equal(text(disk.contents("/d/wal")), "");
    sleeping[0]?.wake();
    await Promise.all([first, second, sync]);
    assert.deepEqual(order, ["first", "second", "sync"]);
    assert.equal(text(disk.contents("/d/wal")), "first2nd");
  });

  it("reads without waiting, and a failed write fails only its caller", async () => {
    const { delay, handle } = await setUp(0);
    await handle.write(new TextEncoder().encode("xyz"), 0);
    delay.ms = 1_000;
    const out = new Uint8Array(3);
    assert.equal(await handle.read(out, 0, 3, 0), 3);
    assert.equal(text(out), "xyz");
    delay.ms = 0;
    await handle.close();
    await assert.rejects(handle.write(new Uint8Array(1), 0));
  });
});
