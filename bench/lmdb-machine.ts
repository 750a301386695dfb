// The state machine as a node runs it, in one process for the microbenchmarks (bench/apply.ts,
// bench/state-hash.ts): ServiceStateMachine over a StoreBackend on an lmdb store in a temp
// directory, the backend writing to the store every 50 ms.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { groupId } from "../src/raft/index.js";
import { ServiceStateMachine, StoreBackend } from "../src/service/index.js";
import { LmdbStateStore } from "../src/storage/lmdb-state-store.js";

/** A state machine on lmdb, and how to close it and delete its directory. */
export function openLmdbMachine(name: string): {
  readonly store: LmdbStateStore;
  readonly backend: StoreBackend;
  readonly machine: ServiceStateMachine;
  close(): Promise<void>;
} {
  const dir = mkdtempSync(join(tmpdir(), `cairn-${name}-`));
  const store = LmdbStateStore.open(join(dir, "state"), { keyBytesMax: 1900 });
  const backend = new StoreBackend(store, groupId(1), {
    flushIntervalMs: 50,
    after: (ms, run) => {
      const timer = setTimeout(run, ms);
      return () => clearTimeout(timer);
    },
  });
  return {
    store,
    backend,
    machine: new ServiceStateMachine(backend),
    close: async () => {
      await backend.settle();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
