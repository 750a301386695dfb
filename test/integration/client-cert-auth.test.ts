// Client-certificate authentication on a real 3-node cluster over real TLS: nodes started with
// `--auth on`, TLS on their client ports and a client CA with `--client-tls-verify optional`. The
// admin binds a certificate name to a role with the CLI (`cairn auth cert bind`); curl and
// redis-cli presenting that certificate are then served within the role on every node (a
// follower hands the write to the leader with the certificate's principal), refused outside it,
// an unbound certificate is refused naming itself, and a client without a certificate falls back
// to its token; after `cairn auth cert unbind` the certificate is refused again. The refused TLS
// handshake of a plain-text client shows up in /metrics.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ProcessCluster, type ProcessNode } from "../support/process-cluster.js";
import { RawConnection } from "../support/resp-fixture.js";
import { waitFor } from "../support/wait-for.js";

const run = promisify(execFile);
const cliPath = resolve(import.meta.dirname, "../../src/cli/run.ts");

describe("client-certificate authentication on a cluster", { timeout: 300_000 }, () => {
  let cluster: ProcessCluster;
  let admin = "";

  /** Runs `cairn ...` against `node` as the admin, trusting the cluster's CA; returns its JSON output. */
  const cairn = async (node: ProcessNode, ...args: string[]): Promise<unknown> => {
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", cliPath, ...args, "--endpoints", node.httpUrl, "--token", admin],
      { env: { ...process.env, NODE_EXTRA_CA_CERTS: cluster.caPath } },
    );
    return JSON.parse(stdout) as unknown;
  };

  /** curl over TLS with the cluster's CA, as `identity`'s certificate (or none); status and body. */
  const curl = async (
    node: ProcessNode,
    method: string,
    path: string,
    options: { identity?: string; token?: string; body?: unknown } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const identity = options.identity === undefined ? undefined : cluster.certificate(options.identity);
    const { stdout } = await run("curl", [
      "--silent",
      "--cacert",
      cluster.caPath,
      ...(identity !== undefined ? ["--cert", identity.certPath, "--key", identity.keyPath] : []),
      ...(options.token !== undefined ? ["-H", `Authorization: Bearer ${options.token}`] : []),
      ...(options.body !== undefined
        ? ["-H", "Content-Type: application/json", "--data", JSON.stringify(options.body)]
        : []),
      "-X",
      method,
      "--write-out",
      "\n%{http_code}",
      `${node.httpUrl}${path}`,
    ]);
    const cut = stdout.lastIndexOf("\n");
    return {
      status: Number(stdout.slice(cut + 1)),
      body: JSON.parse(stdout.slice(0, cut)) as Record<string, unknown>,
    };
  };

  /** redis-cli over TLS as `identity`'s certificate (or none); its output, trimmed. */
  const redisCli = async (node: ProcessNode, identity: string | undefined, ...command: string[]) => {
    const [host, port] = node.redisAddress.split(":");
    const paths = identity === undefined ? undefined : cluster.certificate(identity);
    const { stdout } = await run("redis-cli", [
      "--tls",
      "--cacert",
      cluster.caPath,
      ...(paths !== undefined ? ["--cert", paths.certPath, "--key", paths.keyPath] : []),
      "-h",
      host ?? "",
      "-p",
      port ?? "",
      ...command,
    ]);
    return stdout.trim();
  };

  before(async () => {
    cluster = await ProcessCluster.create(3, 0, { https: true, clientNames: ["app-1", "stranger"] });
    cluster.extraArgs = [
      "--auth",
      "on",
      "--client-tls-ca",
      cluster.caPath,
      "--client-tls-verify",
      "optional",
    ];
    for (const node of cluster.nodes) {
      const own = cluster.certificate(`node-${node.id}`);
      cluster.nodeExtraArgs.set(node.name, [
        "--client-tls-cert",
        own.certPath,
        "--client-tls-key",
        own.keyPath,
        "--redis-listen",
        node.redisAddress,
      ]);
    }
    await cluster.startAll();
    await waitFor(
      "the admin token file",
      async () => {
        const found = await Promise.all(
          cluster.nodes.map((n) => readFile(join(n.dataDir, "admin-token"), "utf8").catch(() => "")),
        );
        admin = found.find((t) => t !== "")?.trim() ?? "";
        return admin !== "";
      },
      { timeoutMs: 120_000, intervalMs: 100 },
    );
  });
  after(() => cluster.close());

  it("serves a bound certificate within its role on every node, refuses the rest, and follows unbind", async () => {
    const [n1, n2, n3] = cluster.nodes;
    assert.ok(n1 !== undefined && n2 !== undefined && n3 !== undefined);
    assert.deepEqual(await cairn(n1, "auth", "role", "put", "app", "--grant", "admin:key:app/"), {
      created: true,
    });
    assert.deepEqual(await cairn(n1, "auth", "cert", "bind", "app-1", "--role", "app"), { created: true });
    assert.deepEqual(await cairn(n2, "auth", "cert", "list"), { certs: [{ name: "app-1", role: "app" }] });

    // HTTP (curl): served within the role on each node, with no token.
    for (const [i, node] of cluster.nodes.entries()) {
      const put = await curl(node, "PUT", `/v1/kv/app/${i}`, { identity: "app-1", body: { value: `v${i}` } });
      assert.equal(put.status, 200, JSON.stringify(put.body));
    }
    const read = await curl(n3, "GET", "/v1/kv/app/0", { identity: "app-1" });
    assert.equal(read.status, 200);
    const outside = await curl(n2, "PUT", "/v1/kv/other", { identity: "app-1", body: { value: "x" } });
    assert.equal(outside.status, 403);
    assert.equal((outside.body["error"] as { principal: string }).principal, "cert:app-1");
    const unbound = await curl(n2, "PUT", "/v1/kv/app/s", { identity: "stranger", body: { value: "x" } });
    assert.equal(unbound.status, 401);
    assert.match(
      (unbound.body["error"] as { message: string }).message,
      /certificate name stranger is not bound/,
    );
    assert.equal((await curl(n2, "GET", "/v1/kv/app/0")).status, 401);
    assert.equal((await curl(n2, "GET", "/v1/kv/app/0", { token: admin })).status, 200);
    assert.equal(
      (await curl(n1, "GET", "/v1/kv/other", { token: admin })).status,
      404,
      "the refusal wrote nothing",
    );

    // Redis (redis-cli --tls --cert): no AUTH needed; NOPERM outside; NOAUTH naming an unbound certificate.
    assert.equal(await redisCli(n2, "app-1", "SET", "app/redis", "r"), "OK");
    assert.equal(await redisCli(n3, "app-1", "GET", "app/redis"), "r");
    assert.match(await redisCli(n2, "app-1", "SET", "other", "r"), /NOPERM User cert:app-1/);
    assert.match(
      await redisCli(n2, "stranger", "GET", "app/redis"),
      /NOAUTH Authentication required\. Certificate name 'stranger' is not bound to a role\./,
    );
    assert.equal(
      await redisCli(n2, undefined, "--user", "default", "--pass", admin, "GET", "app/redis"),
      "r",
    );

    // Unbound: the same certificate is refused on every node from then on.
    assert.deepEqual(await cairn(n1, "auth", "cert", "unbind", "app-1"), { unbound: true });
    for (const node of cluster.nodes) {
      await waitFor(`${node.name} applies the unbind`, async () => {
        return (await curl(node, "GET", "/v1/kv/app/0", { identity: "app-1" })).status === 401;
      });
    }
  });

  it("counts a plain-text client's failed TLS handshake in /metrics", async () => {
    const [n1] = cluster.nodes;
    assert.ok(n1 !== undefined);
    const [, port] = n1.redisAddress.split(":");
    const plain = await RawConnection.open(Number(port));
    plain.write("PING\r\n");
    await plain.closed();
    await waitFor("the refusal in /metrics", async () => {
      const { stdout } = await run("curl", ["--silent", "--cacert", cluster.caPath, `${n1.httpUrl}/metrics`]);
      return /^cairn_connections_refused_total\{protocol="redis",reason="tls-handshake"\} [1-9]/m.test(
        stdout,
      );
    });
  });
});
