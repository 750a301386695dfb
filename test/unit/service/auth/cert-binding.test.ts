// Client certificate names bound to roles, on their own: the state machine binds, replaces and
// unbinds names, refuses a name no certificate check could match and a role that does not exist,
// and keeps a role a name holds; the guard turns a verified certificate's name into a principal
// that acts with its bound role, refuses an unbound name (saying so) and follows a binding made or
// removed later; the rate limiter counts a bound name against its role's rate; the commands and
// the principal round-trip through the log and the peer link. In-memory state, a fixed clock.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AuthGuard,
  applyAuth,
  decodeAuthCommand,
  decodePrincipal,
  encodeAuthCommand,
  encodePrincipal,
  getCertBinding,
  hashSecret,
  listCertBindings,
  newToken,
  parseGrant,
  RateLimiter,
} from "../../../../src/service/auth/index.js";
import { CairnError } from "../../../../src/service/errors.js";
import { MemoryState } from "../../../../src/service/state.js";
import { ByteReader } from "../../../../src/util/index.js";
import { enableAuth } from "../../../support/auth-state.js";

const bytes = (text: string) => new TextEncoder().encode(text);
const writeApp = { permission: "write", resource: "key", key: bytes("app/1") } as const;
const writeOther = { permission: "write", resource: "key", key: bytes("other") } as const;

/** The code `run` throws with, or "ok". */
function outcome(run: () => unknown): string {
  try {
    run();
    return "ok";
  } catch (error) {
    return error instanceof CairnError ? error.code : "other";
  }
}

/** State with authentication on and a role `app` that may write keys under app/. */
async function enabledState(): Promise<MemoryState> {
  const state = new MemoryState();
  await enableAuth(state);
  applyAuth(state, { type: "role-put", name: "app", grants: [parseGrant("write:key:app/")] }, 0);
  return state;
}

describe("certificate bindings in the state machine", () => {
  it("bind, replace and unbind a name; refuse a bad name or a missing role; keep a role a name holds", async () => {
    const state = await enabledState();
    assert.deepEqual(applyAuth(state, { type: "cert-bind", name: "app-1", role: "app" }, 0), {
      kind: "auth.cert-bind",
      ok: true,
      created: true,
    });
    assert.deepEqual(applyAuth(state, { type: "cert-bind", name: "ops@example", role: "admin" }, 0), {
      kind: "auth.cert-bind",
      ok: true,
      created: true,
    });
    const missing = applyAuth(state, { type: "cert-bind", name: "app-2", role: "ghost" }, 0);
    assert.equal(missing.ok === false && missing.code, "ERR_NOT_FOUND");
    for (const name of ["", "-lead", "with space", "a/b", "x".repeat(65)]) {
      const bad = applyAuth(state, { type: "cert-bind", name, role: "app" }, 0);
      assert.equal(bad.ok === false && bad.code, "ERR_BAD_REQUEST", JSON.stringify(name));
    }
    assert.equal(getCertBinding(state, "app-2"), undefined, "a refused bind changes nothing");
    const held = applyAuth(state, { type: "role-delete", name: "app" }, 0);
    assert.equal(held.ok === false && held.code, "ERR_CONFLICT", "a role a certificate name holds stays");
    assert.match(held.ok === false ? held.message : "", /certificate name app-1/);
    assert.deepEqual(listCertBindings(state), [
      { name: "app-1", role: "app" },
      { name: "ops@example", role: "admin" },
    ]);
    // Rebinding replaces the role.
    applyAuth(state, { type: "role-put", name: "reader", grants: [parseGrant("read:key:app/")] }, 0);
    assert.deepEqual(applyAuth(state, { type: "cert-bind", name: "app-1", role: "reader" }, 0), {
      kind: "auth.cert-bind",
      ok: true,
      created: false,
    });
    assert.deepEqual(getCertBinding(state, "app-1"), { name: "app-1", role: "reader" });
    assert.deepEqual(applyAuth(state, { type: "cert-unbind", name: "app-1" }, 0), {
      kind: "auth.cert-unbind",
      ok: true,
      unbound: true,
    });
    assert.deepEqual(applyAuth(state, { type: "cert-unbind", name: "app-1" }, 0), {
      kind: "auth.cert-unbind",
      ok: true,
      unbound: false,
    });
    assert.equal(applyAuth(state, { type: "role-delete", name: "reader" }, 0).ok, true);
  });
});

describe("the guard with certificate principals", () => {
  it("serves a bound name within its role, refuses outside it and an unbound name, and follows rebinding", async () => {
    const state = await enabledState();
    const guard = new AuthGuard({ state, nowMs: () => 0 });
    const principal = guard.certificatePrincipal("app-1");
    assert.deepEqual(principal, { kind: "certificate", name: "app-1" });
    // A name no binding could hold, or no name at all, is nobody.
    assert.deepEqual(guard.certificatePrincipal(undefined), { kind: "anonymous" });
    assert.deepEqual(guard.certificatePrincipal("a b"), { kind: "anonymous" });

    // Unbound: refused as unauthenticated, naming the certificate.
    assert.equal(guard.identifies(principal), false);
    assert.throws(
      () => guard.check([writeApp], principal),
      (e: unknown) =>
        e instanceof CairnError &&
        e.is("ERR_UNAUTHENTICATED") &&
        e.details.certificate === "app-1" &&
        /not bound to a role/.test(e.message),
    );
    applyAuth(state, { type: "cert-bind", name: "app-1", role: "app" }, 0);
    assert.equal(guard.identifies(principal), true);
    assert.equal(
      outcome(() => guard.check([writeApp], principal)),
      "ok",
    );
    assert.throws(
      () => guard.check([writeOther], principal),
      (e: unknown) =>
        e instanceof CairnError &&
        e.is("ERR_FORBIDDEN") &&
        e.details.principal === "cert:app-1" &&
        e.details.missing === "write:key:other" &&
        /certificate app-1 \(role app\)/.test(e.message),
    );
    // Unbound again: the same principal is refused from the next check on.
    applyAuth(state, { type: "cert-unbind", name: "app-1" }, 0);
    assert.equal(
      outcome(() => guard.check([writeApp], principal)),
      "ERR_UNAUTHENTICATED",
    );
    // With authentication off, a certificate changes nothing: everyone is served.
    applyAuth(state, { type: "disable" }, 0);
    assert.equal(
      outcome(() => guard.check([writeOther], principal)),
      "ok",
    );
  });

  it("lets a presented token take precedence over the certificate, and falls back to it without one", async () => {
    const state = await enabledState();
    applyAuth(state, { type: "cert-bind", name: "app-1", role: "app" }, 0);
    const token = newToken();
    applyAuth(
      state,
      {
        type: "token-create",
        token: { id: token.id, role: "admin", ...(await hashSecret(token.secret)), ttlMs: 0 },
      },
      0,
    );
    const guard = new AuthGuard({ state, nowMs: () => 0 });
    const certificate = guard.certificatePrincipal("app-1");
    assert.deepEqual(await guard.principalFor(undefined, certificate), certificate);
    assert.deepEqual(await guard.principalFor(token.text, certificate), { kind: "token", tokenId: token.id });
    // A bad token is refused, not quietly replaced by the certificate.
    await assert.rejects(guard.principalFor(`ct_${token.id}_${"0".repeat(64)}`, certificate), {
      code: "ERR_UNAUTHENTICATED",
    });
  });
});

describe("certificate principals elsewhere", () => {
  it("are limited at their role's rate, per name", async () => {
    const state = await enabledState();
    applyAuth(state, { type: "cert-bind", name: "app-1", role: "app" }, 0);
    applyAuth(state, { type: "role-rate", name: "app", rate: { requestsPerSecond: 1, burst: 2 } }, 0);
    const limiter = new RateLimiter({ state, nowMs: () => 0 });
    const principal = { kind: "certificate", name: "app-1" } as const;
    limiter.admit(principal, "127.0.0.1");
    limiter.admit(principal, "127.0.0.1");
    assert.throws(
      () => limiter.admit(principal, "127.0.0.1"),
      (e: unknown) =>
        e instanceof CairnError && e.code === "ERR_RATE_LIMITED" && /this certificate/.test(e.message),
    );
    // Another name has its own bucket (and, unbound, no rate: the guard refuses it instead).
    limiter.admit({ kind: "certificate", name: "app-2" }, "127.0.0.1");
  });

  it("round-trip through the log and the peer link", () => {
    for (const command of [
      { type: "cert-bind", name: "app-1", role: "app" },
      { type: "cert-unbind", name: "app-1" },
    ] as const) {
      const encoded = encodeAuthCommand(command).finish();
      assert.deepEqual(decodeAuthCommand(new ByteReader(encoded)), command);
    }
    const principal = { kind: "certificate", name: "app-1" } as const;
    assert.deepEqual(decodePrincipal(encodePrincipal(principal)), principal);
  });
});
