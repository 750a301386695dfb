// The client library against a real HTTP server on 127.0.0.1 (single-replica log): each call, the
// error codes it surfaces, failover past a dead endpoint, and that a write retried after an unknown
// outcome is applied exactly once thanks to its generated idempotency key.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { CairnClient, CairnClientError } from "../../../src/client/index.js";
import { buildHttpApp } from "../../../src/server/http/index.js";
import type { ApplyOutcome } from "../../../src/service/command.js";
import { CairnError } from "../../../src/service/errors.js";
import { KvService } from "../../../src/service/kv/kv-service.js";
import type { WriteConcern } from "../../../src/service/replication.js";
import { LocalReplication } from "../../support/local-replication.js";

/** Applies the first proposal but answers ERR_TIMEOUT, as a leader that lost contact after proposing. */
class FlakyReplication extends LocalReplication {
  timeoutsLeft = 0;
  override async propose(data: Uint8Array, writeConcern?: WriteConcern): Promise<ApplyOutcome> {
    const outcome = await super.propose(data, writeConcern);
    if (this.timeoutsLeft > 0) {
      this.timeoutsLeft--;
      throw new CairnError("ERR_TIMEOUT", "outcome unknown");
    }
    return outcome;
  }
}

describe("CairnClient", () => {
  const log = new FlakyReplication();
  const app = buildHttpApp({ kv: new KvService(log), readiness: () => ({ ready: true }) });
  let url = "";
  let client: CairnClient;

  before(async () => {
    url = await app.listen({ host: "127.0.0.1", port: 0 });
    client = new CairnClient({ endpoints: [url], retryBudgetMs: 2_000 });
  });
  after(async () => {
    await app.close();
  });

  it("puts, gets, increments, lists and deletes", async () => {
    assert.equal((await client.put("app/x", "1")).created, true);
    assert.equal((await client.get("app/x"))?.value, "1");
    assert.equal((await client.increment("app/x", 41)).value, "42");
    await client.put("app/bin", Uint8Array.of(0xff, 0x01));
    const page = await client.list({ prefix: "app/" });
    assert.deepEqual(
      page.items.map((i) => [i.key, i.encoding]),
      [
        ["app/bin", "base64"],
        ["app/x", "utf8"],
      ],
    );
    assert.equal((await client.delete("app/x")).deleted, true);
    assert.equal(await client.get("app/x"), undefined);
  });

  it("asks for every voter on each write when created with writeConcern all", async () => {
    const all = new CairnClient({ endpoints: [url], writeConcern: "all" });
    log.writeConcerns.length = 0;
    await all.put("wc", "1");
    await all.get("wc");
    await all.delete("wc");
    await client.put("wc", "2");
    assert.deepEqual(log.writeConcerns, ["all", "all", "majority"]);
  });

  it("surfaces the server's stable code", async () => {
    await client.put("c", "1");
    await assert.rejects(client.put("c", "2", { ifAbsent: true }), (error: unknown) => {
      return error instanceof CairnClientError && error.code === "ERR_CONFLICT" && error.status === 409;
    });
  });

  it("fails over past an endpoint that refuses connections", async () => {
    const dead = "http://127.0.0.1:1";
    const failover = new CairnClient({ endpoints: [dead, url], retryBudgetMs: 2_000 });
    await failover.put("f", "v");
    assert.equal((await failover.get("f"))?.value, "v");
  });

  // A node that is closing answers 503 with its HTTP framework's body, not a Cairn error (seen as a
  // tail failing with ERR_INTERNAL when its node closed under it): the request was not served.
  it("fails over past an endpoint that answers 503 without a Cairn error", async () => {
    const closing = createServer((_request, response) => {
      response.writeHead(503, { "content-type": "application/json" });
      response.end(JSON.stringify({ statusCode: 503, error: "Service Unavailable", message: "closing" }));
    });
    await new Promise<void>((listening) => closing.listen(0, "127.0.0.1", listening));
    try {
      const port = (closing.address() as AddressInfo).port;
      const failover = new CairnClient({
        endpoints: [`http://127.0.0.1:${port}`, url],
        retryBudgetMs: 2_000,
      });
      await failover.put("closing", "v");
      assert.equal((await failover.get("closing"))?.value, "v");
    } finally {
      closing.close();
    }
  });

  it("applies a write once when its first attempt timed out after committing", async () => {
    const before = log.appliedIndex;
    log.timeoutsLeft = 1;
    const ack = await client.put("once", "v");
    assert.equal(ack.duplicate, true, "the retry was answered from the idempotency table");
    assert.equal((await client.get("once"))?.version, 1);
    assert.equal(log.appliedIndex - before, 2, "two entries, one applied effect");
  });

  it("gives up with ERR_UNAVAILABLE when no endpoint answers within the budget", async () => {
    const nobody = new CairnClient({ endpoints: ["http://127.0.0.1:1"], retryBudgetMs: 200 });
    await assert.rejects(
      nobody.get("x"),
      (error: unknown) => error instanceof CairnClientError && error.code === "ERR_UNAVAILABLE",
    );
  });
});
