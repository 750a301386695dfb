// The rate limiter on its own: a token bucket per token, at its role's replicated rate, and per
// address for clients without a token; the wait it names is exact; one token's bucket never
// drains another's; the role's rate travels in the log and is removed with the role. In-memory
// state and a clock the test moves.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  anonymous,
  applyAuth,
  getRoleRate,
  listRoles,
  newToken,
  parseGrant,
  RateLimiter,
  system,
} from "../../../../src/service/auth/index.js";
import { decodeEnvelope, encodeEnvelope } from "../../../../src/service/command.js";
import { CairnError } from "../../../../src/service/errors.js";
import { MemoryState } from "../../../../src/service/state.js";

/** Admits `n` requests; answers how many passed and the last refusal's wait. */
function take(
  limiter: RateLimiter,
  n: number,
  principal: Parameters<RateLimiter["admit"]>[0],
  address = "10.0.0.1",
) {
  let passed = 0;
  let retryAfterMs: number | undefined;
  for (let i = 0; i < n; i++) {
    try {
      limiter.admit(principal, address);
      passed++;
    } catch (error) {
      assert.ok(error instanceof CairnError && error.is("ERR_RATE_LIMITED"), String(error));
      retryAfterMs = error.details.retryAfterMs;
    }
  }
  return { passed, retryAfterMs };
}

function stateWithTokens(rate: { requestsPerSecond: number; burst: number }) {
  const state = new MemoryState();
  applyAuth(state, { type: "role-put", name: "app", grants: [parseGrant("read:key:app/")] }, 0);
  assert.deepEqual(applyAuth(state, { type: "role-rate", name: "app", rate }, 0), {
    kind: "auth.role-rate",
    ok: true,
  });
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const { id } = newToken();
    const token = { id, role: "app", salt: new Uint8Array(16), hash: new Uint8Array(64), ttlMs: 0 };
    assert.equal(applyAuth(state, { type: "token-create", token }, 0).ok, true);
    ids.push(id);
  }
  return { state, ids };
}

describe("rate limiter", () => {
  it("lets a token's burst through, refuses the rest with the exact wait, and refills at the role's rate", () => {
    const { state, ids } = stateWithTokens({ requestsPerSecond: 10, burst: 5 });
    let now = 0;
    const limiter = new RateLimiter({ state, nowMs: () => now });
    const a = { kind: "token", tokenId: ids[0] ?? "" } as const;
    const b = { kind: "token", tokenId: ids[1] ?? "" } as const;
    assert.deepEqual(take(limiter, 8, a), { passed: 5, retryAfterMs: 100 });
    assert.equal(limiter.counts.refused, 3);
    // Another token of the same role has its own bucket.
    assert.equal(take(limiter, 5, b).passed, 5);
    now += 99;
    assert.equal(take(limiter, 1, a).passed, 0);
    now += 1;
    assert.equal(take(limiter, 1, a).passed, 1);
    // A long idle time refills up to the burst, no more.
    now += 60_000;
    assert.equal(take(limiter, 10, a).passed, 5);
  });

  it("limits clients without a token per address, only when the node says so; the node itself never", () => {
    const state = new MemoryState();
    const now = 0;
    const off = new RateLimiter({ state, nowMs: () => now });
    assert.equal(take(off, 100, anonymous).passed, 100);
    const on = new RateLimiter({ state, nowMs: () => now, perAddress: { requestsPerSecond: 2, burst: 3 } });
    assert.deepEqual(take(on, 5, anonymous, "10.0.0.1"), { passed: 3, retryAfterMs: 500 });
    assert.equal(take(on, 3, anonymous, "10.0.0.2").passed, 3);
    assert.equal(take(on, 100, system).passed, 100);
  });

  it("keeps at most bucketsMax buckets, forgetting the least recently used", () => {
    const state = new MemoryState();
    const limiter = new RateLimiter({
      state,
      nowMs: () => 0,
      perAddress: { requestsPerSecond: 1, burst: 1 },
      bucketsMax: 2,
    });
    assert.equal(take(limiter, 2, anonymous, "a").passed, 1);
    assert.equal(take(limiter, 1, anonymous, "b").passed, 1);
    assert.equal(take(limiter, 1, anonymous, "c").passed, 1);
    // "a" was forgotten: it starts full again.
    assert.equal(take(limiter, 1, anonymous, "a").passed, 1);
  });

  it("keeps the rate with the role in the log: encoded, listed, cleared by 0, refused for admin or a missing role, dropped with the role", () => {
    const { state } = stateWithTokens({ requestsPerSecond: 7, burst: 9 });
    const command = { type: "role-rate", name: "app", rate: { requestsPerSecond: 7, burst: 9 } } as const;
    const envelope = { tsMs: 5, command: { service: "auth", command } } as const;
    assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
    assert.deepEqual(
      listRoles(state).find((r) => r.name === "app"),
      {
        name: "app",
        grants: [parseGrant("read:key:app/")],
        builtIn: false,
        rate: { requestsPerSecond: 7, burst: 9 },
      },
    );
    assert.equal(applyAuth(state, { type: "role-rate", name: "admin", rate: command.rate }, 0).ok, false);
    const missing = applyAuth(state, { type: "role-rate", name: "nope", rate: command.rate }, 0);
    assert.ok(!missing.ok && missing.code === "ERR_NOT_FOUND");
    applyAuth(state, { type: "role-rate", name: "app", rate: { requestsPerSecond: 0, burst: 1 } }, 0);
    assert.equal(getRoleRate(state, "app"), undefined);
    applyAuth(state, { type: "role-put", name: "spare", grants: [parseGrant("read:key:x/")] }, 0);
    applyAuth(state, { type: "role-rate", name: "spare", rate: command.rate }, 0);
    assert.deepEqual(applyAuth(state, { type: "role-delete", name: "spare" }, 0), {
      kind: "auth.role-delete",
      ok: true,
      deleted: true,
    });
    assert.equal(getRoleRate(state, "spare"), undefined);
  });
});
