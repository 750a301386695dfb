// The simulated disk keeps exactly the promises a real one does: synced bytes and synced directory
// entries survive a crash, unsynced ones vanish or survive as a torn prefix; reads can be damaged;
// syncs can fail; a full disk refuses writes until space is freed. Checked over many seeds.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { immediateScheduler, makeDirDurable, SimFileSystem } from "../../../src/storage/index.js";
import { Prng } from "../../../src/util/prng.js";
import { ManualScheduler } from "./helpers.js";

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

async function fresh(seed: number): Promise<SimFileSystem> {
  const fs = new SimFileSystem(new Prng(seed));
  await fs.mkdir("/d");
  await fs.syncDir("/");
  return fs;
}

describe("SimFileSystem", () => {
  it("reads back what was written, at any position", async () => {
    const fs = await fresh(1);
    const h = await fs.open("/d/a", "create-or-truncate");
    await h.write(bytes(1, 2, 3), 0);
    await h.write(bytes(9), 1);
    await h.write(bytes(7), 5);
    assert.equal(await h.size(), 6);
    const out = new Uint8Array(6);
    assert.equal(await h.read(out, 0, 6, 0), 6);
    assert.deepEqual([...out], [1, 9, 3, 0, 0, 7]);
    assert.deepEqual(await fs.readdir("/d"), ["a"]);
    assert.deepEqual(await fs.stat("/d/a"), { size: 6, isDirectory: false });
    assert.equal(await fs.stat("/d/none"), undefined);
    await assert.rejects(fs.open("/d/none", "read"), { code: "ENOENT" });
  });

  it("after a crash keeps synced bytes and at most a prefix of the unsynced ones, sometimes torn", async () => {
    const outcomes = new Set<string>();
    for (let seed = 0; seed < 200; seed++) {
      const fs = await fresh(seed);
      const h = await fs.open("/d/a", "create-or-truncate");
      await h.write(bytes(1, 2), 0);
      await h.datasync();
      await fs.syncDir("/d");
      await h.write(bytes(3, 4, 5), 2);
      await h.write(bytes(6, 7), 5);
      fs.crash();
      const after = [...(fs.contents("/d/a") ?? [])];
      const full = [1, 2, 3, 4, 5, 6, 7];
      assert.deepEqual(after, full.slice(0, after.length), `seed ${seed}: not a prefix`);
      assert.ok(after.length >= 2, `seed ${seed}: lost synced bytes`);
      outcomes.add(
        after.length === 2
          ? "vanished"
          : after.length === 7
            ? "all"
            : [2, 5, 7].includes(after.length)
              ? "whole"
              : "torn",
      );
    }
    assert.deepEqual([...outcomes].sort(), ["all", "torn", "vanished", "whole"]);
  });

  it("loses a created file whose directory was not synced, sometimes; never after syncDir", async () => {
    let vanished = 0;
    for (let seed = 0; seed < 50; seed++) {
      const fs = await fresh(seed);
      const h = await fs.open("/d/a", "create-or-truncate");
      await h.write(bytes(1), 0);
      await h.datasync();
      fs.crash();
      if ((await fs.stat("/d/a")) === undefined) vanished++;
      const synced = await fresh(seed);
      const s = await synced.open("/d/a", "create-or-truncate");
      await s.write(bytes(1), 0);
      await s.datasync();
      await synced.syncDir("/d");
      synced.crash();
      assert.deepEqual([...(synced.contents("/d/a") ?? [])], [1]);
    }
    assert.ok(vanished > 0 && vanished < 50, `vanished ${vanished} of 50`);
  });

  it("loses a new directory, with its synced files, sometimes, unless its parent was synced", async () => {
    let vanished = 0;
    for (let seed = 0; seed < 50; seed++) {
      for (const syncParent of [false, true]) {
        const fs = await fresh(seed);
        await (syncParent ? makeDirDurable(fs, "/d/e/f") : fs.mkdir("/d/e/f"));
        const h = await fs.open("/d/e/f/a", "create-or-truncate");
        await h.write(bytes(1), 0);
        await h.datasync();
        await fs.syncDir("/d/e/f");
        fs.crash();
        const kept = (await fs.stat("/d/e/f/a")) !== undefined;
        assert.equal(kept, (await fs.stat("/d/e/f")) !== undefined, "a file outlived its directory");
        if (syncParent) assert.ok(kept, `seed ${seed}: lost after makeDirDurable`);
        else if (!kept) vanished++;
      }
    }
    assert.ok(vanished > 0 && vanished < 50, `vanished ${vanished} of 50`);
  });

  it("makes rename atomic: after a crash the name holds the old or the new file, whole", async () => {
    const seen = new Set<string>();
    for (let seed = 0; seed < 50; seed++) {
      const fs = await fresh(seed);
      const old = await fs.open("/d/f", "create-or-truncate");
      await old.write(bytes(1, 1), 0);
      await old.datasync();
      await fs.syncDir("/d");
      const tmp = await fs.open("/d/f.tmp", "create-or-truncate");
      await tmp.write(bytes(2, 2), 0);
      await tmp.datasync();
      await fs.rename("/d/f.tmp", "/d/f");
      fs.crash();
      const got = [...(fs.contents("/d/f") ?? [])].join(",");
      assert.ok(got === "1,1" || got === "2,2", `seed ${seed}: ${got}`);
      seen.add(got);
    }
    assert.equal(seen.size, 2);
  });

  it("makes operations begun before a crash never complete, and old handles useless", async () => {
    const scheduler = new ManualScheduler();
    const fs = new SimFileSystem(new Prng(3), scheduler, { latencyMsMin: 1, latencyMsMax: 5 });
    const mk = fs.mkdir("/d");
    await scheduler.runUntilIdle();
    await mk;
    const opening = fs.open("/d/a", "create-or-truncate");
    await scheduler.runUntilIdle();
    const h = await opening;
    let settled = false;
    h.write(bytes(1), 0).then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    fs.crash();
    await scheduler.runUntilIdle();
    assert.equal(settled, false);
    void h.size().finally(() => {
      settled = true;
    });
    await scheduler.runUntilIdle();
    assert.equal(settled, false);
  });

  it("completes operations in simulated time order through the scheduler", async () => {
    const scheduler = new ManualScheduler();
    const fs = new SimFileSystem(new Prng(5), scheduler, { latencyMsMin: 1, latencyMsMax: 100 });
    const order: number[] = [];
    const done = [0, 1, 2, 3, 4, 5].map((i) => fs.mkdir(`/d${i}`).then(() => order.push(i)));
    assert.equal(scheduler.size, 6);
    await scheduler.runUntilIdle();
    await Promise.all(done);
    assert.equal(order.length, 6);
    assert.notDeepEqual(order, [0, 1, 2, 3, 4, 5], "random latencies reorder independent operations");
  });

  it("fails datasync with EIO when told to, and the data stays unsynced", async () => {
    const fs = new SimFileSystem(new Prng(9), immediateScheduler, {
      syncEio: { numerator: 1, denominator: 1 },
    });
    await fs.mkdir("/d");
    await fs.syncDir("/");
    const h = await fs.open("/d/a", "create-or-truncate");
    await h.write(bytes(1, 2, 3), 0);
    await assert.rejects(h.datasync(), { code: "EIO" });
    assert.equal(fs.syncCount, 0);
  });

  it("refuses writes past the quota with ENOSPC, writing what fits, and accepts them once space is freed", async () => {
    const fs = new SimFileSystem(new Prng(2), immediateScheduler, { bytesMax: 10 });
    await fs.mkdir("/d");
    await fs.syncDir("/");
    const a = await fs.open("/d/a", "create-or-truncate");
    await a.write(new Uint8Array(6), 0);
    const b = await fs.open("/d/b", "create-or-truncate");
    await assert.rejects(b.write(new Uint8Array(6).fill(7), 0), { code: "ENOSPC" });
    assert.equal(await b.size(), 4);
    assert.equal(fs.usedBytes(), 10);
    await fs.unlink("/d/a");
    await b.write(new Uint8Array(6).fill(7), 0);
    assert.equal(await b.size(), 6);
    fs.setFaults({ bytesMax: 100 });
    await b.write(new Uint8Array(50), 6);
    assert.equal(await b.size(), 56);
  });

  it("damages reads on demand (bit flips and short reads) without touching the stored bytes", async () => {
    const fs = new SimFileSystem(new Prng(4), immediateScheduler, {
      readBitFlip: { numerator: 1, denominator: 1 },
    });
    await fs.mkdir("/d");
    await fs.syncDir("/");
    const h = await fs.open("/d/a", "create-or-truncate");
    const data = new Uint8Array(32).fill(0x55);
    await h.write(data, 0);
    const out = new Uint8Array(32);
    await h.read(out, 0, 32, 0);
    const flipped = out.reduce((n, b, i) => n + (b !== data[i] ? 1 : 0), 0);
    assert.equal(flipped, 1);
    assert.deepEqual(fs.contents("/d/a"), data);
    fs.setFaults({
      readBitFlip: { numerator: 0, denominator: 1 },
      readTruncate: { numerator: 1, denominator: 1 },
    });
    assert.ok((await h.read(out, 0, 32, 0)) < 32);
  });

  it("makes a durable-mode (O_DSYNC) write survive once it resolved, and tears one cut short by a crash", async () => {
    const outcomes = new Set<number>();
    for (let seed = 0; seed < 60; seed++) {
      const scheduler = new ManualScheduler();
      const fs = new SimFileSystem(new Prng(seed), scheduler);
      const setup = (async () => {
        await fs.mkdir("/d");
        await fs.syncDir("/");
        await (await fs.open("/d/a", "create-or-truncate")).close();
        await fs.syncDir("/d");
        const h = await fs.open("/d/a", "read-write-durable");
        await h.write(bytes(1, 2), 0);
        return h;
      })();
      await scheduler.runUntilIdle();
      const h = await setup;
      void h.write(bytes(3, 4, 5, 6), 2);
      fs.crash();
      const after = [...(fs.contents("/d/a") ?? [])];
      assert.deepEqual(after, [1, 2, 3, 4, 5, 6].slice(0, after.length), `seed ${seed}`);
      assert.ok(after.length >= 2, `seed ${seed}: lost a resolved durable write`);
      outcomes.add(after.length);
    }
    assert.ok(outcomes.has(2) && outcomes.has(6) && [...outcomes].some((n) => n > 2 && n < 6));
  });

  it("gives each process a view whose operations, even ones started after a crash, never complete", async () => {
    const fs = await fresh(1);
    const dead = fs.process();
    await (await dead.open("/d/a", "create-or-truncate")).close();
    fs.crash();
    let settled = false;
    // Code of the crashed process that was still running tries to act on the disk.
    void dead.unlink("/d/a").finally(() => {
      settled = true;
    });
    const alive = fs.process();
    await (await alive.open("/d/b", "create-or-truncate")).close();
    assert.equal(settled, false);
    assert.ok((await alive.readdir("/d")).includes("b"));
  });

  it("removes unlinked files and lists only direct children", async () => {
    const fs = await fresh(1);
    await fs.mkdir("/d/sub");
    await (await fs.open("/d/x", "create-or-truncate")).close();
    await (await fs.open("/d/sub/y", "create-or-truncate")).close();
    assert.deepEqual(await fs.readdir("/d"), ["sub", "x"]);
    await fs.unlink("/d/x");
    assert.deepEqual(await fs.readdir("/d"), ["sub"]);
    await assert.rejects(fs.unlink("/d/x"), { code: "ENOENT" });
  });
});
