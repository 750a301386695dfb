// `npm run faults -- [--seconds 60] [--seed N] [--nodes 3|5] [--system cairn|etcd|both] [--faults
// kill,pause,partition,slow-disk,crash-all,corrupt] [--clients 10] [--keys 5] [--timeout-ms 1500]
// [--disk-delay-ms 0] [--snapshot-entries N] [--no-streams] [--build | --built]`: one fault run against real processes (run.ts). It prints its
// seed first; the same seed replays the same fault schedule. With `--system both` the same workload
// (key-value only) and schedule run against Cairn and then etcd, and both availability figures are
// printed. `--build` compiles first and runs the nodes on the build (faster restarts); `--built` runs
// them on the build already compiled (as `npm run faults:soak` does for its runs). Exits 1 when a
// checker found a violation.
import { spawnSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { parseArgs } from "node:util";
import { integerOption, runScript } from "../support/script-main.js";
import { describeAvailability, describeBreakdown, describeOperations } from "./availability.js";
import { type FaultRunOptions, type FaultRunReport, runFaults, type SystemName } from "./run.js";
import { type FaultKind, faultKinds } from "./schedule.js";

const root = new URL("../..", import.meta.url).pathname;

function report(r: FaultRunReport, say: (line: string) => void): void {
  say(
    `${r.system}: ${r.applied.length} faults applied; KV: ${r.kv.operations} operations checked (${r.kv.ok} ok, ${r.kv.failed} failed, ${r.kv.timedOut + r.kv.lost} unknown), checker ${r.kv.checkerSteps} steps`,
  );
  if (r.streams !== undefined) {
    const s = r.streams;
    say(
      `${r.system}: streams: ${s["appended"]} appends acked (${s["ackedOnRetry"]} on a retry), ${s["reads"]} reads, ${s["delivered"]} deliveries, ${s["acked"]} acked, ${s["nacked"]} nacked, ${s["terminated"]} terminated`,
    );
  }
  say(describeAvailability(r.system, r.availability));
  say(describeOperations(r.system, r.operations));
  if (r.problems.length === 0) say(`${r.system}: PASS seed ${r.seed}`);
  else {
    say(
      `${r.system}: FAIL seed ${r.seed}: ${r.problems.length} problem(s); logs in ${r.logFile ?? "(none)"}`,
    );
    for (const p of r.problems.slice(0, 10)) say(`  ${p.slice(0, 2_000)}`);
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string" },
      seed: { type: "string" },
      nodes: { type: "string" },
      system: { type: "string" },
      faults: { type: "string" },
      clients: { type: "string" },
      keys: { type: "string" },
      "timeout-ms": { type: "string" },
      "disk-delay-ms": { type: "string" },
      "snapshot-entries": { type: "string" },
      "no-streams": { type: "boolean" },
      build: { type: "boolean" },
      built: { type: "boolean" },
    },
  });
  const system = values.system ?? "cairn";
  if (system !== "cairn" && system !== "etcd" && system !== "both")
    throw new Error("--system must be cairn, etcd or both");
  const systems: SystemName[] = system === "both" ? ["cairn", "etcd"] : [system];
  // Only what both systems can suffer when they are compared; etcd's disk cannot be slowed.
  const defaultKinds = systems.includes("etcd") ? faultKinds.filter((k) => k !== "slow-disk") : faultKinds;
  const kinds = values.faults === undefined ? defaultKinds : (values.faults.split(",") as FaultKind[]);
  for (const k of kinds)
    if (!faultKinds.includes(k)) throw new Error(`unknown fault ${k}; known: ${faultKinds.join(",")}`);
  const nodes = integerOption("nodes", values.nodes, 3, 3, 5);
  if (nodes !== 3 && nodes !== 5) throw new Error("--nodes must be 3 or 5");
  const seed = integerOption("seed", values.seed, randomInt(1, 2 ** 31), 0, 2 ** 31);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(
    `seed ${seed} (replay: npm run faults -- --seed ${seed} ${process.argv
      .slice(2)
      .filter((a, i, all) => a !== "--seed" && all[i - 1] !== "--seed")
      .join(" ")})`,
  );
  const base: Omit<FaultRunOptions, "system"> = {
    seed,
    seconds: integerOption("seconds", values.seconds, 60, 5, 3600),
    nodes,
    kinds,
    clients: integerOption("clients", values.clients, 10, 1, 100),
    keys: integerOption("keys", values.keys, 5, 1, 100),
    timeoutMs: integerOption("timeout-ms", values["timeout-ms"], 1_500, 100, 60_000),
    // A comparison runs the same workload on both: key-value only (etcd has no streams).
    streams: values["no-streams"] !== true && system !== "both",
    diskDelayMs: integerOption("disk-delay-ms", values["disk-delay-ms"], 0, 0, 10_000),
    snapshotEntries:
      values["snapshot-entries"] === undefined
        ? undefined
        : integerOption("snapshot-entries", values["snapshot-entries"], 500, 100, 100_000_000),
    build: values.build === true || values.built === true,
    say,
  };
  if (values.build === true) {
    say("building (npm run build) so the nodes run the compiled code");
    const built = spawnSync("npm", ["run", "build"], { cwd: root, stdio: "inherit" });
    if (built.status !== 0) throw new Error("npm run build failed");
  }
  const reports: FaultRunReport[] = [];
  for (const s of systems) {
    const r = await runFaults({ ...base, system: s });
    reports.push(r);
    report(r, say);
  }
  say("\navailability by situation (attempts begun while a fault held, or between faults):");
  for (const r of reports) for (const line of describeBreakdown(r.system, r.availabilityBreakdown)) say(line);
  if (reports.length > 1) {
    say("\navailability under the same workload and fault schedule:");
    for (const r of reports) say(describeAvailability(r.system, r.availability));
    say("per operation (retries included):");
    for (const r of reports) say(describeOperations(r.system, r.operations));
  }
  return reports.every((r) => r.problems.length === 0) ? 0 : 1;
}

runScript(main);
