// Authentication on every protocol of a real 3-node cluster started with `--auth on`: the
// bootstrap admin token appears once in a data directory; on HTTP, Redis (ioredis and redis-cli),
// the text protocol and gRPC, a request without a token is refused, one outside its role's grants
// is refused and changes nothing, and one within them is served; a revoked or expired token is
// refused on every node; tokens survive a restart; refusals are counted in /v1/metrics.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { isServiceError, MessageServiceClient } from "../support/grpc-client.js";
import { freePort, ProcessCluster, type ProcessNode } from "../support/process-cluster.js";
import { PromptClient } from "../support/prompt-client.js";
import { waitFor } from "../support/wait-for.js";

const run = promisify(execFile);

async function http(
  node: ProcessNode,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${node.httpUrl}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("authentication on every protocol", { timeout: 300_000 }, () => {
  let cluster: ProcessCluster;
  let admin = "";
  let app = "";
  let appId = "";
  const ports = new Map<string, { text: number; grpc: number }>();

  before(async () => {
    cluster = await ProcessCluster.create(3);
    cluster.extraArgs = ["--auth", "on"];
    for (const node of cluster.nodes) {
      const p = { text: await freePort(), grpc: await freePort() };
      ports.set(node.name, p);
      cluster.nodeExtraArgs.set(node.name, [
        "--redis-listen",
        node.redisAddress,
        "--text-listen",
        `127.0.0.1:${p.text}`,
        "--grpc-listen",
        `127.0.0.1:${p.grpc}`,
      ]);
    }
    await cluster.startAll();
    // Exactly one node turns authentication on and writes the admin token, readable by its owner only.
    let owners: typeof cluster.nodes = [];
    await waitFor("the admin token file", async () => {
      const found = await Promise.all(
        cluster.nodes.map((n) => readFile(join(n.dataDir, "admin-token"), "utf8").catch(() => "")),
      );
      admin = found.find((t) => t !== "")?.trim() ?? "";
      owners = cluster.nodes.filter((_, i) => found[i] !== "");
      return admin !== "";
    });
    // The file is how the operator learns the token; the node's log line about it may come later.
    assert.equal(owners.length, 1, "exactly one node wrote the admin token");
    const [owner] = owners;
    assert.ok(owner !== undefined);
    assert.equal((await stat(join(owner.dataDir, "admin-token"))).mode & 0o777, 0o600);
    const [first] = cluster.nodes;
    assert.ok(first !== undefined);
    const role = await http(first, "PUT", "/v1/auth/roles/app", admin, {
      grants: ["read:key:app/", "write:key:app/", "read:stream:orders", "write:stream:orders"],
    });
    assert.equal(role.status, 200, JSON.stringify(role.body));
    const created = await http(first, "POST", "/v1/auth/tokens", admin, { role: "app" });
    assert.equal(created.status, 201);
    app = String(created.body["token"]);
    appId = String(created.body["id"]);
  });
  after(async () => {
    await cluster?.close();
  });

  it("HTTP: refuses no token (401) and an out-of-scope write (403, nothing changed), serves in scope", async () => {
    const [n1, n2, n3] = cluster.nodes;
    assert.ok(n1 !== undefined && n2 !== undefined && n3 !== undefined);
    const none = await http(n2, "PUT", "/v1/kv/app/a", undefined, { value: "x" });
    assert.equal(none.status, 401);
    assert.equal((none.body["error"] as { code: string }).code, "ERR_UNAUTHENTICATED");
    const wrong = await http(n2, "PUT", "/v1/kv/app/a", "ct_0123456789abcdef_" + "0".repeat(64), {
      value: "x",
    });
    assert.equal(wrong.status, 401);
    const out = await http(n2, "PUT", "/v1/kv/other/a", app, { value: "x" });
    assert.equal(out.status, 403);
    assert.equal((out.body["error"] as { missing: string }).missing, "write:key:other/a");
    assert.equal((await http(n1, "GET", "/v1/kv/other/a", admin)).status, 404);
    assert.equal((await http(n3, "PUT", "/v1/kv/app/a", app, { value: "yes" })).status, 200);
    const read = await http(n1, "GET", "/v1/kv/app/a", app);
    assert.equal(read.body["value"], "yes");
    // Token management is admin-only; listing never shows a secret.
    assert.equal((await http(n1, "GET", "/v1/auth/tokens", app)).status, 403);
    const list = await http(n2, "GET", "/v1/auth/tokens", admin);
    assert.ok(!JSON.stringify(list.body).includes(app.slice(20)));
    const who = await http(n3, "GET", "/v1/auth/whoami", app);
    assert.deepEqual(who.body["role"], "app");
    // Health stays open.
    assert.equal((await fetch(`${n1.httpUrl}/health/live`)).status, 200);
  });

  it("Redis: NOAUTH before AUTH, WRONGPASS for a bad token, NOPERM out of scope, served in scope", async () => {
    const node = cluster.nodes[1];
    assert.ok(node !== undefined);
    const [host, port] = node.redisAddress.split(":");
    const options = { host, port: Number(port), maxRetriesPerRequest: 0, retryStrategy: () => null };
    // ioredis opens with HELLO 3, which Redis refuses before authentication with its own text.
    const anon = new Redis({ ...options, protocol: 2 });
    try {
      await assert.rejects(anon.get("app/a"), { message: "NOAUTH Authentication required." });
    } finally {
      anon.disconnect();
    }
    const client = new Redis({ ...options, password: app });
    assert.equal(await client.set("app/r", "1"), "OK");
    await assert.rejects(
      client.set("other/r", "1"),
      new RegExp(`NOPERM User ${appId} has no permissions to access the 'other/r' key`),
    );
    assert.equal((await client.xadd("orders", "*", "f", "v")) !== null, true);
    // A pipeline runs as one batched entry, yet each command is checked on its own: the allowed
    // writes are served, the forbidden one refused, and nothing of it written.
    const results = await client.pipeline().set("app/p1", "1").set("other/p", "1").set("app/p2", "2").exec();
    assert.deepEqual(
      results?.map(([error, value]) => (error === null ? value : error.message.split(" ")[0])),
      ["OK", "NOPERM", "OK"],
    );
    await assert.rejects(client.xadd("payments", "*", "f", "v"), /NOPERM/);
    client.disconnect();
    const asAdmin = new Redis({ ...options, username: "default", password: admin });
    assert.equal(await asAdmin.get("other/r"), null, "the refused write changed nothing");
    assert.equal(await asAdmin.get("other/p"), null, "the refused pipelined write changed nothing");
    assert.equal(await asAdmin.get("app/p2"), "2");
    asAdmin.disconnect();
    // redis-cli, with HELLO 3 AUTH as -3 sends it.
    const cli = await run("redis-cli", [
      "-h",
      host ?? "",
      "-p",
      port ?? "",
      "--no-auth-warning",
      "-a",
      app,
      "get",
      "app/r",
    ]);
    assert.equal(cli.stdout.trim(), "1");
    const wrongPass = await run("redis-cli", ["-h", host ?? "", "-p", port ?? "", "auth", "nope"]);
    assert.match(wrongPass.stdout, /WRONGPASS invalid username-password pair or user is disabled\./);
    const refused = await run("redis-cli", ["-h", host ?? "", "-p", port ?? "", "get", "app/r"]);
    assert.match(refused.stdout, /NOAUTH Authentication required\./);
    const hello = await run("redis-cli", [
      "-h",
      host ?? "",
      "-p",
      port ?? "",
      "-3",
      "--user",
      appId,
      "--pass",
      app,
      "--no-auth-warning",
      "get",
      "app/r",
    ]);
    assert.equal(hello.stdout.trim(), "1");
  });

  it("text protocol: refuses before AUTH and out of scope, serves after AUTH", async () => {
    const node = cluster.nodes[2];
    assert.ok(node !== undefined);
    const { client } = await PromptClient.connect("127.0.0.1", ports.get(node.name)?.text ?? 0, "cairn> ");
    assert.equal(await client.command("GET 7"), "ERROR: unauthenticated (send AUTH <token>)");
    assert.equal(await client.command("AUTH nope"), "ERROR: unauthenticated (send AUTH <token>)");
    assert.equal(await client.command(`AUTH ${app}`), "OK");
    assert.equal(await client.command("SET 7 hello"), "ERROR: permission denied");
    assert.equal(await client.command(`AUTH ${admin}`), "OK");
    assert.equal(await client.command("GET 7"), "NOT_FOUND", "the refused SET changed nothing");
    assert.equal(await client.command("SET 7 hello"), "OK");
    assert.equal(await client.command("GET 7"), "hello");
    client.close();
  });

  it("gRPC: UNAUTHENTICATED without a token, a refusal out of scope, served with metadata or auth_token", async () => {
    const node = cluster.nodes[0];
    assert.ok(node !== undefined);
    const grpc = new MessageServiceClient(`127.0.0.1:${ports.get(node.name)?.grpc ?? 0}`);
    try {
      const codeOf = async (call: Promise<unknown>) => {
        try {
          await call;
          return status.OK;
        } catch (error) {
          assert.ok(isServiceError(error));
          return error.code;
        }
      };
      // PostMessage answers its failures in the response, as the seed did; the code rides a trailer.
      const anonymous = await grpc.postMessage({ content: "hi" });
      assert.equal(anonymous.response.status, "error");
      assert.equal(anonymous.trailers["cairn-code"], "ERR_UNAUTHENTICATED");
      const refused = await grpc.postMessage({ content: "hi" }, { token: app });
      assert.equal(refused.response.status, "error");
      assert.equal(refused.trailers["cairn-code"], "ERR_FORBIDDEN");
      assert.equal(await codeOf(grpc.getMessages()), status.UNAUTHENTICATED);
      assert.equal(await codeOf(grpc.catchUp(0, admin)), status.OK);
      assert.equal(
        (await grpc.catchUp(0, admin)).response.messages.length,
        0,
        "the refused post changed nothing",
      );
      assert.equal(await codeOf(grpc.postMessage({ content: "hi" }, { token: admin })), status.OK);
      assert.equal((await grpc.catchUp(0, admin)).response.messages.length, 1);
      assert.equal(await codeOf(grpc.catchUp(0, "auth-token")), status.UNAUTHENTICATED);
    } finally {
      grpc.close();
    }
  });

  it("a revoked and an expired token are refused on every node", async () => {
    const [n1, n2] = cluster.nodes;
    assert.ok(n1 !== undefined && n2 !== undefined);
    const doomed = await http(n1, "POST", "/v1/auth/tokens", admin, { role: "app" });
    const doomedToken = String(doomed.body["token"]);
    for (const node of cluster.nodes) {
      assert.equal((await http(node, "PUT", "/v1/kv/app/d", doomedToken, { value: "1" })).status, 200);
    }
    const revoked = await http(n2, "DELETE", `/v1/auth/tokens/${String(doomed.body["id"])}`, admin);
    assert.deepEqual(revoked.body, { revoked: true });
    // Writes: every node refuses at once (the leader checks the token again).
    for (const node of cluster.nodes) {
      assert.equal((await http(node, "PUT", "/v1/kv/app/d", doomedToken, { value: "2" })).status, 401);
    }
    // Reads: each node refuses once it applied the revocation.
    for (const node of cluster.nodes) {
      await waitFor(`${node.name} refuses the revoked token`, async () => {
        return (await http(node, "GET", "/v1/kv/app/d", doomedToken)).status === 401;
      });
    }
    const brief = await http(n1, "POST", "/v1/auth/tokens", admin, { role: "app", ttlMs: 1 });
    assert.equal(brief.status, 201);
    for (const node of cluster.nodes) {
      await waitFor(`${node.name} refuses the expired token`, async () => {
        return (await http(node, "GET", "/v1/kv/app/d", String(brief.body["token"]))).status === 401;
      });
    }
  });

  it("keeps tokens across a restart and counts refusals in /v1/metrics", async () => {
    const node = cluster.nodes[2];
    assert.ok(node !== undefined);
    await cluster.kill(node);
    await cluster.start(node);
    await waitFor("the restarted node serves the app token", async () => {
      return (await http(node, "GET", "/v1/kv/app/a", app)).status === 200;
    });
    assert.equal((await http(node, "GET", "/v1/kv/app/a")).status, 401);
    const metrics = await http(node, "GET", "/v1/metrics");
    const counters = metrics.body["counters"] as { authUnauthenticated: number };
    assert.ok(counters.authUnauthenticated >= 1);
    const text = await (await fetch(`${node.httpUrl}/metrics`)).text();
    assert.match(text, /cairn_auth_failures_total\{reason="unauthenticated"\} [1-9]/);
  });
});
