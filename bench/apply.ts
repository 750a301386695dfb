// The apply microbenchmark: committed entries applied by the real state machine
// (ServiceStateMachine over a StoreBackend on lmdb, as a node runs it) in one process, no Raft, no
// network. Measures CPU per applied entry for key-value puts and stream appends of 100-byte values
// in batches like a busy leader's (40 entries per apply round). Run with `npm run bench:apply`.
// Options: --entries N per kind (default 40,000), --rounds N (default 3; medians are printed),
// --keys N (the puts' key space, default 1,000: every key cached; past the store backend's cache
// of 10,000 keys nearly every put reads its key from lmdb and replaces a cached one).
import { type Entry, logIndex, term } from "../src/raft/index.js";
import { type Command, encodeEnvelope } from "../src/service/command.js";
import { openLmdbMachine } from "./lmdb-machine.js";
import { median, option } from "./load.js";

const args = process.argv.slice(2);
const batch = 40;
const keySpace = Number(option(args, "keys", "1000"));
const payload = new Uint8Array(100).fill(109);
const encoder = new TextEncoder();

function commandOf(kind: "put" | "append", n: number): Command {
  return kind === "append"
    ? { service: "streams", command: { type: "append", name: "bench", payload, headers: [] } }
    : { service: "kv", command: { type: "put", key: encoder.encode(`key-${n % keySpace}`), value: payload } };
}

/** Applies `entries` entries of `kind` after a warm-up; returns CPU microseconds per entry. */
async function measure(kind: "put" | "append", entries: number): Promise<number> {
  const { machine, close } = openLmdbMachine("apply-bench");
  let index = 0;
  const t0 = Date.now();
  const entry = (command: Command): Entry => ({
    index: logIndex(++index),
    term: term(1),
    kind: "normal",
    data: encodeEnvelope({ tsMs: t0 + index, command }),
  });
  const config = {
    maxMessages: 0,
    maxBytes: 0,
    maxAgeMs: 0,
    discard: "old" as const,
    messageBytesMax: 1 << 20,
    dedupeWindowMs: 120_000,
  };
  await machine.apply([entry({ service: "streams", command: { type: "create", name: "bench", config } })]);
  const rounds = (count: number) =>
    Array.from({ length: Math.ceil(count / batch) }, () =>
      Array.from({ length: batch }, () => entry(commandOf(kind, index))),
    );
  for (const round of rounds(2_000)) await machine.apply(round);
  const measured = rounds(entries); // encoded before the clock starts: only the apply is timed
  const before = process.cpuUsage();
  for (const round of measured) await machine.apply(round);
  const used = process.cpuUsage(before);
  await close();
  return (used.user + used.system) / (measured.length * batch);
}

const entries = Number(option(args, "entries", "40000"));
const roundsMax = Number(option(args, "rounds", "3"));
const samples = { put: [] as number[], append: [] as number[] };
for (let r = 0; r < roundsMax; r++) {
  for (const kind of r % 2 === 0 ? (["put", "append"] as const) : (["append", "put"] as const)) {
    samples[kind].push(await measure(kind, entries));
  }
}
console.log(
  `apply, ${batch} entries per round, ${entries} entries per kind and run, puts over ${keySpace} keys, ${roundsMax} runs:\n`,
);
console.log("| entry | CPU µs per entry (median) | runs |");
console.log("| --- | ---: | --- |");
for (const kind of ["put", "append"] as const) {
  console.log(
    `| ${kind} | ${median(samples[kind]).toFixed(1)} | ${samples[kind].map((v) => v.toFixed(1)).join(", ")} |`,
  );
}
