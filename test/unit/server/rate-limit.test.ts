// The rate limit as clients see it on every protocol, under load: one node (a single-replica log)
// with authentication on, a role limited to 5 requests per second, two tokens of it, and a clock
// the test holds still. A burst of 40 concurrent HTTP requests with one token gets exactly its 5
// through and 429 + Retry-After for the rest, while the other token is served in full; the same
// token then hears the limit over Redis (-BUSY ... retry in N ms), the text protocol (ERROR: busy,
// retry in N ms) and gRPC (RESOURCE_EXHAUSTED): one bucket for every protocol. A second later it is
// served again.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import { retryAfterTrailer, startGrpcServer } from "../../../src/server/grpc/index.js";
import { buildHttpApp } from "../../../src/server/http/index.js";
import { startRespServer } from "../../../src/server/resp/index.js";
import { startTextServer } from "../../../src/server/text/index.js";
import { AuthService } from "../../../src/service/auth/auth-service.js";
import {
  AuthGuard,
  applyAuth,
  hashSecret,
  newToken,
  parseGrant,
  RateLimiter,
} from "../../../src/service/auth/index.js";
import { KvService, StreamService } from "../../../src/service/index.js";
import { enableAuth } from "../../support/auth-state.js";
import { isServiceError, MessageServiceClient } from "../../support/grpc-client.js";
import { LocalReplication } from "../../support/local-replication.js";
import { PromptClient } from "../../support/prompt-client.js";
import { RawConnection, singleNodeStatus } from "../../support/resp-fixture.js";

describe("rate limits on every protocol", () => {
  const log = new LocalReplication();
  let now = 0;
  const limiter = new RateLimiter({ state: log.state, nowMs: () => now });
  const guard = new AuthGuard({ state: log.state, nowMs: () => 1_000 });
  const kv = new KvService(log);
  const streams = new StreamService(log, log.applied);
  const app = buildHttpApp({
    kv,
    readiness: () => ({ ready: true }),
    auth: new AuthService(log, guard),
    limiter,
  });
  const tokens: string[] = [];

  before(async () => {
    await enableAuth(log.state);
    applyAuth(
      log.state,
      { type: "role-put", name: "app", grants: [parseGrant("admin:key:*"), parseGrant("admin:stream:*")] },
      0,
    );
    applyAuth(log.state, { type: "role-rate", name: "app", rate: { requestsPerSecond: 5, burst: 5 } }, 0);
    for (let i = 0; i < 2; i++) {
      const token = newToken();
      const hashed = await hashSecret(token.secret);
      applyAuth(
        log.state,
        { type: "token-create", token: { id: token.id, role: "app", ...hashed, ttlMs: 0 } },
        0,
      );
      tokens.push(token.text);
    }
  });
  after(() => app.close());

  const get = (token: string | undefined, url = "/v1/kv/app/x") =>
    app.inject({
      method: "GET",
      url,
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });

  it("answers a burst over the rate 429 with Retry-After, and leaves another token and the probes alone", async () => {
    const [a, b] = tokens;
    assert.ok(a !== undefined && b !== undefined);
    const burst = await Promise.all(Array.from({ length: 40 }, () => get(a)));
    const limited = burst.filter((r) => r.statusCode === 429);
    assert.equal(burst.length - limited.length, 5, "the bucket's 5 are served (404: no such key)");
    for (const r of burst) if (r.statusCode !== 429) assert.equal(r.statusCode, 404);
    for (const r of limited) {
      assert.equal(r.headers["retry-after"], "1");
      const error = (r.json() as { error: { code: string; retryAfterMs: number } }).error;
      assert.equal(error.code, "ERR_RATE_LIMITED");
      assert.equal(error.retryAfterMs, 200);
    }
    const other = await Promise.all(Array.from({ length: 5 }, () => get(b)));
    assert.deepEqual(
      other.map((r) => r.statusCode),
      [404, 404, 404, 404, 404],
    );
    assert.equal((await get(a, "/health/live")).statusCode, 200);
    assert.equal(limiter.counts.refused, 35);
  });

  it("refuses the same token over Redis, text and gRPC: one bucket for every protocol", async () => {
    const [a] = tokens;
    assert.ok(a !== undefined);
    const redis = await startRespServer(
      { kv, streams, guard, limiter, status: () => singleNodeStatus(log) },
      { host: "127.0.0.1", port: 0 },
    );
    const text = await startTextServer(
      { host: "127.0.0.1", port: 0 },
      { kv, guard, limiter, flavor: "cairn" },
    );
    const grpc = await startGrpcServer({ host: "127.0.0.1", port: 0 }, { streams, guard, limiter });
    const client = new MessageServiceClient(`127.0.0.1:${grpc.address.port}`);
    try {
      const raw = await RawConnection.open(Number(redis.address.split(":")[1]));
      raw.write(`AUTH ${a}\r\nGET app/x\r\n`);
      const replies = await raw.until((r) => r.split("\r\n").length >= 3);
      assert.equal(
        replies,
        "+OK\r\n-BUSY rate limit of 5 requests/s (burst 5) reached for this token; retry in 200 ms\r\n",
      );
      raw.close();

      const { client: prompt } = await PromptClient.connect("127.0.0.1", text.address.port, "cairn> ");
      assert.equal(await prompt.command(`AUTH ${a}`), "OK");
      assert.equal(await prompt.command("GET 1"), "ERROR: busy, retry in 200 ms");
      prompt.close();

      try {
        await client.catchUp(0, a);
        assert.fail("the call succeeded");
      } catch (error) {
        assert.ok(isServiceError(error), String(error));
        assert.equal(error.code, status.RESOURCE_EXHAUSTED);
        assert.equal(String(error.metadata.get("cairn-code")[0]), "ERR_RATE_LIMITED");
        assert.equal(String(error.metadata.get(retryAfterTrailer)[0]), "200");
      }

      // A second later the bucket holds 5 again.
      now += 1_000;
      assert.equal((await get(a)).statusCode, 404);
    } finally {
      client.close();
      await grpc.close();
      await text.close();
      await redis.close();
    }
  });
});
