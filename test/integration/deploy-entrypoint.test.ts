// deploy/entrypoint.sh, which the container image runs, as a StatefulSet pod would run it: the pod
// name and a few variables become `cairn node`'s CAIRN_* settings (node name, listen and advertised
// addresses, initial cluster or join, certificates); a setting given explicitly wins; a pod name
// without an ordinal is refused. Then a real node started through it answers the probes the
// StatefulSet uses (/health/live, /health/ready) and drains on SIGTERM with exit status 0.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureDevCerts } from "../../src/cli/dev-certs.js";
import { stablePort } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

const root = new URL("../../", import.meta.url).pathname;
const entrypoint = join(root, "deploy/entrypoint.sh");

describe("deploy/entrypoint.sh", { timeout: 120_000 }, () => {
  let dir = "";
  let fake = "";

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "cairn-entrypoint-"));
    // Stands in for cairn: prints the CAIRN_* variables and the arguments it was given.
    fake = join(dir, "fake-cairn.mjs");
    await writeFile(
      fake,
      "const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('CAIRN_') && k !== 'CAIRN_BIN'));\n" +
        "process.stdout.write(JSON.stringify({ args: process.argv.slice(2), env }));\n",
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function run(env: Record<string, string>): {
    status: number | null;
    out: Record<string, unknown>;
    err: string;
  } {
    const result = spawnSync("sh", [entrypoint, "--log-level", "debug"], {
      env: { PATH: process.env["PATH"] ?? "", CAIRN_BIN: `${process.execPath} ${fake}`, ...env },
      encoding: "utf8",
    });
    return {
      status: result.status,
      out: result.status === 0 ? (JSON.parse(result.stdout) as Record<string, unknown>) : {},
      err: result.stderr,
    };
  }

  it("derives a StatefulSet pod's settings from its name and the peers' domain", () => {
    const { status, out } = run({
      POD_NAME: "cairn-1",
      CAIRN_PEER_DOMAIN: "cairn-peers.prod.svc.cluster.local",
    });
    assert.equal(status, 0);
    assert.deepEqual(out["args"], ["node", "--log-level", "debug"]);
    const domain = "cairn-peers.prod.svc.cluster.local";
    assert.deepEqual(out["env"], {
      CAIRN_NAME: "cairn-1",
      CAIRN_DATA_DIR: "/data",
      CAIRN_HTTP_LISTEN: "0.0.0.0:8081",
      CAIRN_PEER_LISTEN: "0.0.0.0:7001",
      CAIRN_REDIS_LISTEN: "0.0.0.0:6379",
      CAIRN_TEXT_LISTEN: "0.0.0.0:6661",
      CAIRN_TLS_CA: "/certs/ca.crt",
      CAIRN_TLS_CERT: "/certs/node-2.crt",
      CAIRN_TLS_KEY: "/certs/node-2.key",
      CAIRN_LOG_FORMAT: "json",
      CAIRN_PEER_DOMAIN: domain,
      CAIRN_ADVERTISE_HTTP: `http://cairn-1.${domain}:8081`,
      CAIRN_ADVERTISE_PEER: `cairn-1.${domain}:7001`,
      CAIRN_INITIAL_CLUSTER: [0, 1, 2].map((i) => `cairn-${i}=cairn-${i}.${domain}:7001`).join(","),
    });
  });

  it("has a pod added by scaling up join through the first pod, and keeps explicit settings", () => {
    const joiner = run({ POD_NAME: "cairn-3", CAIRN_PEER_DOMAIN: "peers.ns.svc", CAIRN_REPLICAS: "3" });
    assert.equal(
      (joiner.out["env"] as Record<string, string>)["CAIRN_JOIN"],
      "http://cairn-0.peers.ns.svc:8081",
    );
    assert.equal((joiner.out["env"] as Record<string, string>)["CAIRN_INITIAL_CLUSTER"], undefined);
    const told = run({
      POD_NAME: "cairn-0",
      CAIRN_PEER_DOMAIN: "peers.ns.svc",
      CAIRN_ADVERTISE_HTTP: "https://db.example.com",
      CAIRN_GRPC_PORT: "50051",
    });
    const env = told.out["env"] as Record<string, string>;
    assert.equal(env["CAIRN_ADVERTISE_HTTP"], "https://db.example.com");
    assert.equal(env["CAIRN_GRPC_LISTEN"], "0.0.0.0:50051");
  });

  it("refuses a pod name without an ordinal", () => {
    const { status, err } = run({ POD_NAME: "cairn" });
    assert.equal(status, 2);
    assert.match(err, /does not end in -<ordinal>/);
  });

  it("starts a real node that answers the StatefulSet's probes and drains on SIGTERM", async () => {
    const certs = await ensureDevCerts({ dir: join(dir, "certs"), nodeNames: ["node-1"] });
    const [httpPort, peerPort, redisPort, textPort] = [
      await stablePort(),
      await stablePort(),
      await stablePort(),
      await stablePort(),
    ];
    const child = spawn("sh", [entrypoint, "--tick-interval-ms", "50"], {
      cwd: root,
      env: {
        PATH: process.env["PATH"] ?? "",
        CAIRN_BIN: `${process.execPath} --import tsx ${join(root, "src/cli/run.ts")}`,
        POD_NAME: "cairn-0",
        CAIRN_DATA_DIR: join(dir, "data"),
        CAIRN_CERT_DIR: join(dir, "certs"),
        CAIRN_HTTP_PORT: String(httpPort),
        CAIRN_PEER_PORT: String(peerPort),
        CAIRN_REDIS_PORT: String(redisPort),
        CAIRN_TEXT_PORT: String(textPort),
        // No cluster DNS here: the advertised addresses and the one-node cluster are given.
        CAIRN_ADVERTISE_HTTP: `http://127.0.0.1:${httpPort}`,
        CAIRN_ADVERTISE_PEER: `127.0.0.1:${peerPort}`,
        CAIRN_INITIAL_CLUSTER: `cairn-0=127.0.0.1:${peerPort}`,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      output += c.toString();
    });
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    try {
      assert.ok(certs.caCertPath.endsWith("ca.crt"));
      const url = `http://127.0.0.1:${httpPort}`;
      await waitFor(
        "the node to be ready",
        async () => {
          if (child.exitCode !== null) throw new Error(`the node exited:\n${output}`);
          const live = await fetch(`${url}/health/live`).catch(() => undefined);
          const ready = await fetch(`${url}/health/ready`).catch(() => undefined);
          return live?.status === 200 && ready?.status === 200;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      const cluster = (await (await fetch(`${url}/v1/cluster`)).json()) as { leader: { httpUrl: string } };
      assert.equal(cluster.leader.httpUrl, url);
    } finally {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, "SIGTERM");
    }
    assert.equal(await exited, 0, output);
    assert.match(output, /"leadership":"(not-leader|still-leader|transferred)"/);
  });
});
