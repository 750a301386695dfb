// Mutual TLS between real node processes: a node whose certificate comes from another CA, though
// it claims a member's name and address, is refused by the cluster, never learns a leader and
// cannot serve, while the real members keep working.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ensureDevCerts } from "../../src/cli/dev-certs.js";
import { ProcessCluster } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

describe("mutual TLS between node processes", { timeout: 120_000 }, () => {
  let cluster: ProcessCluster;

  before(async () => {
    cluster = await ProcessCluster.create(3);
    const foreign = await ensureDevCerts({ dir: join(cluster.dir, "foreign-ca"), nodeNames: ["node-3"] });
    const paths = foreign.nodes.get("node-3");
    assert.ok(paths !== undefined);
    cluster.tlsOverride.set("n3", { caPath: foreign.caCertPath, ...paths });
    await cluster.startAll();
  });
  after(async () => {
    await cluster?.close();
  });

  it("refuses a member presenting a certificate from another CA", async () => {
    const [n1, n2, impostor] = cluster.nodes;
    assert.ok(n1 !== undefined && n2 !== undefined && impostor !== undefined);
    await cluster.client([n1, n2]).put("trusted", "yes");
    // The impostor has tried and failed once it campaigns while the leader is up: a whole election
    // timeout passed in which none of the leader's heartbeats reached it.
    const statusOf = async () =>
      (await (await fetch(`${impostor.httpUrl}/v1/cluster`)).json()) as {
        leader: unknown;
        self: { role: string };
      };
    await waitFor(
      "the impostor to campaign",
      async () => ["pre-candidate", "candidate"].includes((await statusOf()).self.role),
      { timeoutMs: 30_000, intervalMs: 20 },
    );
    const status = await statusOf();
    assert.equal(status.leader, null, "the impostor never heard from the leader");
    assert.notEqual(status.self.role, "leader");
    const stale = await fetch(`${impostor.httpUrl}/v1/kv/trusted?consistency=stale`);
    assert.equal(stale.status, 404, "nothing was replicated to it");
    const read = await fetch(`${impostor.httpUrl}/v1/kv/trusted`);
    assert.equal(read.status, 503);
    assert.equal(((await read.json()) as { error: { code: string } }).error.code, "ERR_UNAVAILABLE");

    assert.equal((await cluster.client([n1, n2]).get("trusted"))?.value, "yes");
  });
});
