// The state-hash microbenchmark (`npm run bench:state-hash`): how long one cross-replica state hash
// (src/service/state-hash.ts) takes as the state grows. The state machine (ServiceStateMachine over
// a StoreBackend on lmdb, as a node runs it) is filled in one process with --keys keys (MSET-like
// entries of 1,000 pairs) and --messages stream messages (batch appends of 1,000), both of
// --value-bytes bytes, in --steps equal steps; after each step the state is hashed once and the
// wall time of the hash is printed. Every replica computes that hash on its apply path every
// `stateCheckEntries` entries: it used to run on the apply path, so its time was how long the
// node's event loop stood still. The node now hashes a pinned view one page per turn of the event
// loop (hashStateInPages); the last columns show that: the whole time, and the longest turn.
// After the hashes, the whole state is exported as a snapshot capture exports it
// (`exportGroup`: one read transaction, every pair's checksum checked, packed into 128 KiB chunks),
// and its CPU per key or message printed: a capture's cost, which every node pays per snapshot.
// Options: --keys N (default 1,000,000), --messages N (default 5,000,000), --value-bytes N (default
// 100), --steps N (default 4), --only export (skip the hashes).
import { type Entry, groupId, logIndex, term } from "../src/raft/index.js";
import { type Command, encodeEnvelope } from "../src/service/command.js";
import { hashState } from "../src/service/index.js";
import { hashStateInPages } from "../src/service/state-hash.js";
import { openLmdbMachine } from "./lmdb-machine.js";
import { option } from "./load.js";

const args = process.argv.slice(2);
const keys = Number(option(args, "keys", "1000000"));
const messages = Number(option(args, "messages", "5000000"));
const valueBytes = Number(option(args, "value-bytes", "100"));
const steps = Number(option(args, "steps", "4"));
const hashes = option(args, "only", "") !== "export";
const perEntry = 1000;
const encoder = new TextEncoder();
const value = new Uint8Array(valueBytes).fill(109);

const { store, backend, machine, close } = openLmdbMachine("state-hash-bench");
let index = 0;
const t0 = Date.now();
const apply = (commands: readonly Command[]) =>
  machine.apply(
    commands.map(
      (command): Entry => ({
        index: logIndex(++index),
        term: term(1),
        kind: "normal",
        data: encodeEnvelope({ tsMs: t0 + index, command }),
      }),
    ),
  );

try {
  await apply([
    {
      service: "streams",
      command: {
        type: "create",
        name: "scale",
        config: {
          maxMessages: 0,
          maxBytes: 0,
          maxAgeMs: 0,
          discard: "old",
          messageBytesMax: 1 << 20,
          dedupeWindowMs: 120_000,
        },
      },
    },
  ]);
  console.log(`state hash of an lmdb state store, ${valueBytes}-byte values, filled in ${steps} steps\n`);
  console.log(
    "| keys | messages | one-piece hash wall s | CPU s | CPU µs per key or message | paged hash wall s | longest turn ms | export CPU s | export CPU µs per key or message |",
  );
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  let keysDone = 0;
  let messagesDone = 0;
  for (let step = 1; step <= steps; step++) {
    const keysTo = Math.round((keys * step) / steps);
    const messagesTo = Math.round((messages * step) / steps);
    while (keysDone < keysTo) {
      const pairs: [Uint8Array, Uint8Array][] = [];
      for (; keysDone < keysTo && pairs.length < perEntry; keysDone++) {
        pairs.push([encoder.encode(`key-${keysDone}`), value]);
      }
      await apply([{ service: "kv", command: { type: "put-many", pairs } }]);
    }
    while (messagesDone < messagesTo) {
      const count = Math.min(perEntry, messagesTo - messagesDone);
      const batch = Array.from({ length: count }, () => ({ payload: value, headers: [] }));
      await apply([
        { service: "streams", command: { type: "append-batch", name: "scale", messages: batch } },
      ]);
      messagesDone += count;
    }
    await backend.settle();
    const items = keysDone + messagesDone;
    const hashed = hashes ? await measureHashes(items) : "| | | | |";
    const exportBefore = process.cpuUsage();
    const exported = store.exportGroup(groupId(1), 128 * 1024);
    let exportedBytes = 0;
    for await (const chunk of exported.chunks()) exportedBytes += chunk.length;
    const exportUsed = process.cpuUsage(exportBefore);
    const exportSeconds = (exportUsed.user + exportUsed.system) / 1e6;
    if (exportedBytes === 0) throw new Error("the export was empty");
    console.log(
      `| ${keysDone} | ${messagesDone} ${hashed} ${exportSeconds.toFixed(2)} | ${((exportSeconds * 1e6) / items).toFixed(2)} |`,
    );
  }
} finally {
  await close();
}

/** The one-piece hash and the paged one, as the table's middle columns. */
async function measureHashes(items: number): Promise<string> {
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  hashState(backend.reader);
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = (performance.now() - started) / 1000;
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  // The same hash one page per turn, as a node runs it: the longest stretch between two turns.
  let longestMs = 0;
  let resumed = performance.now();
  const pagedStarted = resumed;
  const pause = async () => {
    longestMs = Math.max(longestMs, performance.now() - resumed);
    await new Promise((resolve) => setImmediate(resolve));
    resumed = performance.now();
  };
  await hashStateInPages(backend.reader, pause);
  longestMs = Math.max(longestMs, performance.now() - resumed);
  const pagedSeconds = (performance.now() - pagedStarted) / 1000;
  return `| ${seconds.toFixed(2)} | ${cpuSeconds.toFixed(2)} | ${((cpuSeconds * 1e6) / items).toFixed(2)} | ${pagedSeconds.toFixed(2)} | ${longestMs.toFixed(1)} |`;
}
