// `cairn dev`'s nodes die with it: the real `cairn dev` command runs as its own process (from
// source, so its nodes run this checkout too), its three node processes come up, the supervisor is
// killed with SIGKILL (no handler runs), and every node process ends by itself within a bounded
// wait, because each one stops when the stdin pipe its supervisor held closes. Whatever happens,
// every pid this test saw is killed at the end.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { stablePort, stablePortRange } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

const root = new URL("../../", import.meta.url).pathname;

/** Whether `pid` is a running process (a zombie, dead but not yet reaped, is not). */
function alive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (existsSync("/proc/self/stat")) {
    if (!existsSync(stat)) return false;
    try {
      // The state is the field after the command name, which is in parentheses.
      const text = readFileSync(stat, "utf8");
      return text.slice(text.lastIndexOf(")") + 2, text.lastIndexOf(")") + 3) !== "Z";
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

describe("cairn dev killed with SIGKILL", { timeout: 180_000 }, () => {
  const pids = new Set<number>();
  let dir: string | undefined;

  after(async () => {
    for (const pid of pids) killQuietly(pid);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("leaves no node process running", async () => {
    dir = await mkdtemp(join(tmpdir(), "cairn-dev-kill-"));
    const ports = {
      http: await stablePortRange(3),
      peer: await stablePortRange(3),
      text: await stablePortRange(3),
      redis: await stablePortRange(3),
      grpc: await stablePortRange(3),
      dashboard: await stablePort(),
    };
    const supervisor = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(root, "src/cli/run.ts"),
        "dev",
        "--dir",
        dir,
        "--http-port",
        String(ports.http),
        "--peer-port",
        String(ports.peer),
        "--text-port",
        String(ports.text),
        "--redis-port",
        String(ports.redis),
        "--grpc-port",
        String(ports.grpc),
        "--dashboard-port",
        String(ports.dashboard),
      ],
      { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CAIRN_TICK_INTERVAL_MS: "50" } },
    );
    assert.ok(supervisor.pid !== undefined);
    pids.add(supervisor.pid);
    let output = "";
    supervisor.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    supervisor.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<void>((resolve) => supervisor.once("exit", () => resolve()));

    // `cairn dev` prints one line per node with its pid once every process is spawned.
    const nodePids: number[] = [];
    await waitFor(
      "cairn dev to list its three nodes with their pids",
      () => {
        if (supervisor.exitCode !== null) throw new Error(`cairn dev exited:\n${output}`);
        const found = [...output.matchAll(/^\s+n\d+\s+HTTP .* pid (\d+)\s/gm)].map((m) => Number(m[1]));
        if (found.length < 3) return false;
        nodePids.push(...found);
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    for (const pid of nodePids) pids.add(pid);
    // Up and serving: the nodes answer on their HTTP ports (a node that never started proves nothing).
    for (let i = 0; i < 3; i++) {
      await waitFor(
        `node ${i + 1} to answer /health/live`,
        async () => {
          try {
            return (await fetch(`http://127.0.0.1:${ports.http + i}/health/live`)).ok;
          } catch {
            return false;
          }
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
    }
    for (const pid of nodePids) assert.ok(alive(pid), `node pid ${pid} runs`);

    supervisor.kill("SIGKILL");
    await exited;
    await waitFor(
      "every node process to end after its supervisor died",
      () => nodePids.every((pid) => !alive(pid)),
      {
        timeoutMs: 30_000,
        intervalMs: 100,
      },
    );
  });
});
