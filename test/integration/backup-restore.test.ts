// Backup and restore end to end (docs/operations.md): a 3-node process cluster with authentication
// on holds KV keys (one with a TTL), a stream, a consumer group with a settled and an in-flight
// message, and a role with a token; `cairn snapshot save` streams a backup (admin only, progress on
// stderr, checksums in its answer); truncated, damaged and foreign files are refused with
// ERR_SNAPSHOT_CORRUPT and leave no data directory; `cairn snapshot restore` makes each member of a
// new 3-node cluster, which then serves every key, message, group position and token, and takes
// writes.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CairnClient, CairnClientError } from "../../src/client/index.js";
import { ProcessCluster } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

const execFileAsync = promisify(execFile);
const cli = resolve(import.meta.dirname, "../../src/cli/run.ts");

/** Runs `cairn ARGS`; answers its exit code and output (a non-zero exit is no exception here). */
async function cairn(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, ["--import", "tsx", cli, ...args], {
      env: { ...process.env, CAIRN_TOKEN: "", ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** Runs `cairn snapshot restore FILE` for `node` of a new cluster of `initial`. */
function restore(
  file: string,
  node: { dataDir: string; name: string },
  initial: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return cairn([
    "snapshot",
    "restore",
    file,
    "--data-dir",
    node.dataDir,
    "--name",
    node.name,
    "--initial-cluster",
    initial,
  ]);
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

describe("cairn snapshot save and restore", { timeout: 420_000 }, () => {
  let old: ProcessCluster;
  let fresh: ProcessCluster;
  let admin = "";
  let appToken = "";
  let file = "";
  let saved: { index: number; bytes: number; crc32: string; sha256: string } = {
    index: 0,
    bytes: 0,
    crc32: "",
    sha256: "",
  };

  before(async () => {
    old = await ProcessCluster.create(3);
    old.extraArgs = ["--auth", "on"];
    fresh = await ProcessCluster.create(3);
    fresh.extraArgs = ["--auth", "on"];
    await old.startAll();
    await waitFor("the admin token file", async () => {
      const found = await Promise.all(
        old.nodes.map((n) => readFile(join(n.dataDir, "admin-token"), "utf8").catch(() => "")),
      );
      admin = found.find((t) => t !== "")?.trim() ?? "";
      return admin !== "";
    });
    const client = new CairnClient({
      endpoints: old.nodes.map((n) => n.httpUrl),
      retryBudgetMs: 15_000,
      token: admin,
    });
    await client.request("PUT", "/v1/auth/roles/app", {
      grants: ["read:key:app/", "write:key:app/", "read:stream:orders"],
    });
    const created = (await client.request("POST", "/v1/auth/tokens", { role: "app" })) as { token: string };
    appToken = created.token;
    for (let i = 0; i < 20; i++) await client.put(`app/k${i}`, `value ${i}`);
    await client.put("app/ttl", "expires later", { ttlMs: 3_600_000 });
    await client.createStream("orders");
    for (let i = 1; i <= 5; i++) await client.append("orders", `order ${i}`);
    await client.createGroup("orders", "billing", { startAt: { seq: 1 } });
    const fetched = await client.fetchMessages("orders", "billing", "worker-1", { max: 2 });
    assert.equal(fetched.length, 2);
    await client.ack("orders", "billing", [1]);
    file = join(fresh.dir, "backup.snap");
  });

  after(async () => {
    await old.close();
    await fresh.close();
  });

  it("refuses a save without an admin token and writes no file", async () => {
    const endpoints = old.nodes.map((n) => n.httpUrl).join(",");
    const anonymous = await cairn(["snapshot", "save", file, "--endpoints", endpoints]);
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /ERR_UNAUTHENTICATED/);
    const app = await cairn(["snapshot", "save", file, "--endpoints", endpoints], { CAIRN_TOKEN: appToken });
    assert.equal(app.code, 1);
    assert.match(app.stderr, /ERR_FORBIDDEN/);
    assert.equal(await exists(file), false);
    assert.equal(await exists(`${file}.tmp`), false);
  });

  it("saves a verified backup with progress and its checksums", async () => {
    const endpoints = old.nodes.map((n) => n.httpUrl).join(",");
    const result = await cairn(["snapshot", "save", file, "--endpoints", endpoints], { CAIRN_TOKEN: admin });
    assert.equal(result.code, 0, result.stderr);
    saved = JSON.parse(result.stdout) as typeof saved;
    assert.ok(saved.index > 0);
    assert.equal(saved.bytes, (await stat(file)).size);
    assert.match(saved.crc32, /^[0-9a-f]{8}$/);
    assert.match(saved.sha256, /^[0-9a-f]{64}$/);
    assert.match(
      result.stderr,
      new RegExp(`snapshot: ${saved.bytes} bytes of ${saved.bytes} \\(100%\\), done`),
    );
  });

  it("refuses truncated, damaged and foreign files and leaves no data directory", async () => {
    const bytes = await readFile(file);
    const truncated = join(fresh.dir, "truncated.snap");
    await writeFile(truncated, bytes.subarray(0, bytes.length - 20));
    const damaged = join(fresh.dir, "damaged.snap");
    const flipped = Buffer.from(bytes);
    const at = Math.floor(flipped.length / 2);
    flipped[at] = (flipped[at] ?? 0) ^ 0xff;
    await writeFile(damaged, flipped);
    const foreign = join(fresh.dir, "foreign.snap");
    await writeFile(foreign, "this is not a snapshot, but it is long enough to have a header\n");
    const [first] = fresh.nodes;
    assert.ok(first !== undefined);
    const initial = fresh.nodes.map((n) => `${n.name}=${n.peerAddress}`).join(",");
    for (const bad of [truncated, damaged, foreign]) {
      const result = await restore(bad, first, initial);
      assert.equal(result.code, 1, `${bad}: ${result.stderr}`);
      assert.match(result.stderr, /ERR_SNAPSHOT_CORRUPT/, bad);
      assert.equal(await exists(first.dataDir), false, bad);
      assert.equal(await exists(`${first.dataDir}.restoring`), false, bad);
    }
  });

  it("restores into a new cluster that serves every key, message, group and token and takes writes", async () => {
    await old.close();
    const initial = fresh.nodes.map((n) => `${n.name}=${n.peerAddress}`).join(",");
    for (const node of fresh.nodes) {
      const result = await restore(file, node, initial);
      assert.equal(result.code, 0, result.stderr);
      const restored = JSON.parse(result.stdout) as { id: number; index: number };
      assert.equal(restored.id, node.id);
      assert.equal(restored.index, saved.index);
    }
    // A data directory that is not empty is never restored into.
    const [first] = fresh.nodes;
    assert.ok(first !== undefined);
    const again = await restore(file, first, initial);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /not empty/);

    await fresh.startAll();
    // With authentication on, the cluster status needs a token: the restored admin token.
    await waitFor(
      "a leader in the restored cluster",
      async () => {
        for (const node of fresh.nodes) {
          const answer = await fetch(`${node.httpUrl}/v1/cluster`, {
            headers: { authorization: `Bearer ${admin}` },
            signal: AbortSignal.timeout(2_000),
          }).catch(() => undefined);
          const body = (await answer?.json().catch(() => undefined)) as
            | { self?: { role?: string } }
            | undefined;
          if (body?.self?.role === "leader") return true;
        }
        return false;
      },
      { timeoutMs: 60_000 },
    ).catch((error: unknown) => {
      throw new Error(
        `${String(error)}\n${fresh.nodes.map((n) => `${n.name}: ${n.output.slice(-3000)}`).join("\n")}`,
      );
    });
    const asAdmin = new CairnClient({
      endpoints: fresh.nodes.map((n) => n.httpUrl),
      retryBudgetMs: 30_000,
      token: admin,
    });
    for (let i = 0; i < 20; i++) assert.equal((await asAdmin.get(`app/k${i}`))?.value, `value ${i}`);
    const ttl = await asAdmin.get("app/ttl");
    assert.equal(ttl?.value, "expires later");
    assert.ok(ttl?.expireAtMs !== undefined, "the key keeps its expiry");
    const page = await asAdmin.read("orders", { from: 1 });
    assert.deepEqual(
      page.messages.map((m) => m.payload),
      ["order 1", "order 2", "order 3", "order 4", "order 5"],
    );
    const group = await asAdmin.groupInfo("orders", "billing");
    assert.equal(group.ackFloor, 1);
    assert.equal(group.nextSeq, 3);
    assert.equal(group.pending, 1);
    // The token made before the backup works with its role's grants, and only those.
    const asApp = new CairnClient({ endpoints: fresh.nodes.map((n) => n.httpUrl), token: appToken });
    assert.equal((await asApp.get("app/k1"))?.value, "value 1");
    await assert.rejects(
      asApp.put("other/x", "y"),
      (e: unknown) => e instanceof CairnClientError && e.code === "ERR_FORBIDDEN",
    );
    const anonymous = new CairnClient({ endpoints: fresh.nodes.map((n) => n.httpUrl) });
    await assert.rejects(
      anonymous.get("app/k1"),
      (e: unknown) => e instanceof CairnClientError && e.code === "ERR_UNAUTHENTICATED",
    );
    // The new cluster takes writes, and every member has them.
    await asApp.put("app/after", "restored");
    for (const node of fresh.nodes) {
      const one = new CairnClient({ endpoints: [node.httpUrl], token: admin });
      await waitFor(`${node.name} has the new write`, async () => {
        const item = await one.get("app/after", { consistency: "stale" }).catch(() => undefined);
        return item?.value === "restored";
      });
    }
    // Each member knows the new cluster's members (the old registry was left behind).
    const status = (await asAdmin.request("GET", "/v1/cluster")) as {
      members: { id: number; httpUrl: string | null }[];
    };
    assert.deepEqual(
      status.members.map((m) => m.id),
      fresh.nodes.map((n) => n.id),
    );
  });
});
