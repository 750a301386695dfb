// First boot on a disk that loses what was not fsynced: after the node wrote its identity and
// created its storage directories, a power loss (the simulated disk's crash, over many seeds) must
// keep node.json and every directory, so the node restarts as itself instead of bootstrapping or
// joining again under a new identity.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { resolveNodeConfig } from "../../../src/cli/node-config.js";
import { identityFileName, loadOrBootstrap } from "../../../src/cli/node-identity.js";
import {
  HardStateStore,
  makeDirDurable,
  SimFileSystem,
  SnapshotStore,
  Wal,
} from "../../../src/storage/index.js";
import { Prng } from "../../../src/util/prng.js";

const dataDir = "/var/cairn/n1";
const config = resolveNodeConfig({
  flags: {
    name: "n1",
    dataDir,
    initialCluster: "n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003",
  },
});
const neverJoin = (): Promise<never> => Promise.reject(new Error("a node with data must not join again"));

describe("first boot", () => {
  it("keeps node.json and the storage directories through a power loss right after it", async () => {
    for (let seed = 1; seed <= 60; seed++) {
      const fs = new SimFileSystem(new Prng(seed));
      const identity = await loadOrBootstrap(fs, config, neverJoin);
      // The same directories `cairn node` creates, through the same openers.
      await Wal.open(fs, `${dataDir}/wal`);
      await HardStateStore.open(fs, `${dataDir}/hardstate`);
      await SnapshotStore.open(fs, `${dataDir}/snapshots`);
      await makeDirDurable(fs, `${dataDir}/state`);
      fs.crash();
      assert.ok(await fs.stat(`${dataDir}/${identityFileName}`), `seed ${seed}: node.json lost`);
      for (const dir of ["wal", "hardstate", "snapshots", "state"]) {
        assert.equal((await fs.stat(`${dataDir}/${dir}`))?.isDirectory, true, `seed ${seed}: ${dir}/ lost`);
      }
      assert.deepEqual(await loadOrBootstrap(fs, config, neverJoin), identity, `seed ${seed}`);
      const { recovery } = await Wal.open(fs, `${dataDir}/wal`);
      assert.deepEqual(recovery.corruption, [], `seed ${seed}: the WAL's first segment lost`);
    }
  });
});
