// The auth part on its own: grants parse and match as docs/security.md says (key prefixes, stream
// patterns, admin covering read and write), the state machine keeps roles and tokens and refuses
// what would lock someone out, and the guard turns tokens into principals and refusals into the
// right codes. In-memory state and a fixed clock: no I/O but scrypt.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  AuthGuard,
  applyAuth,
  authEnabled,
  getToken,
  grantCovers,
  hashSecret,
  listRoles,
  newToken,
  parseGrant,
  streamPatternMatches,
} from "../../../../src/service/auth/index.js";
import { applyEnvelope, decodeEnvelope, encodeEnvelope } from "../../../../src/service/command.js";
import { CairnError } from "../../../../src/service/errors.js";
import { MemoryState } from "../../../../src/service/state.js";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("grants", () => {
  it("parse from text and refuse malformed ones with ERR_BAD_REQUEST", () => {
    assert.deepEqual(parseGrant("read:key:users/"), {
      permission: "read",
      resource: "key",
      pattern: "users/",
    });
    assert.deepEqual(parseGrant("write:key:users/*"), {
      permission: "write",
      resource: "key",
      pattern: "users/",
    });
    assert.deepEqual(parseGrant("admin:key:*"), { permission: "admin", resource: "key", pattern: "" });
    assert.deepEqual(parseGrant("admin:cluster"), { permission: "admin", resource: "cluster", pattern: "" });
    for (const bad of [
      "",
      "read",
      "read:key",
      "root:key:a",
      "read:table:a",
      "read:key:a*b",
      "read:cluster:x",
    ]) {
      assert.throws(
        () => parseGrant(bad),
        (e: unknown) => e instanceof CairnError && e.code === "ERR_BAD_REQUEST",
        bad,
      );
    }
  });

  it("match keys by prefix, ranges only inside the prefix, streams by pattern; admin covers read and write", () => {
    const readUsers = parseGrant("read:key:users/");
    assert.ok(grantCovers(readUsers, { permission: "read", resource: "key", key: bytes("users/1") }));
    assert.ok(!grantCovers(readUsers, { permission: "read", resource: "key", key: bytes("user") }));
    assert.ok(!grantCovers(readUsers, { permission: "write", resource: "key", key: bytes("users/1") }));
    assert.ok(
      grantCovers(readUsers, {
        permission: "read",
        resource: "key-range",
        start: bytes("users/a"),
        end: bytes("users0"),
      }),
    );
    assert.ok(
      !grantCovers(readUsers, {
        permission: "read",
        resource: "key-range",
        start: bytes("users/"),
        end: undefined,
      }),
    );
    assert.ok(
      !grantCovers(readUsers, {
        permission: "read",
        resource: "key-range",
        start: bytes(""),
        end: bytes("z"),
      }),
    );
    const adminAll = parseGrant("admin:key:*");
    assert.ok(
      grantCovers(adminAll, { permission: "write", resource: "key-range", start: bytes(""), end: undefined }),
    );
    assert.ok(streamPatternMatches("orders.*", "orders.eu"));
    assert.ok(streamPatternMatches("*.eu", "orders.eu"));
    assert.ok(streamPatternMatches("a*b*c", "axxbyyc"));
    assert.ok(!streamPatternMatches("a*b*c", "acb"));
    assert.ok(!streamPatternMatches("orders", "orders.eu"));
    const writeOrders = parseGrant("write:stream:orders.*");
    assert.ok(grantCovers(writeOrders, { permission: "write", resource: "stream", name: "orders.1" }));
    assert.ok(!grantCovers(writeOrders, { permission: "read", resource: "stream", name: "orders.1" }));
    assert.ok(!grantCovers(writeOrders, { permission: "write", resource: "key", key: bytes("orders.1") }));
  });
});

describe("the auth state machine and guard", () => {
  it("enables with an admin token, keeps roles and tokens, refuses lock-outs, and checks principals", async () => {
    const state = new MemoryState();
    let now = 1_000;
    const guard = new AuthGuard({ state, nowMs: () => now });
    // Off: everyone may do everything.
    assert.doesNotThrow(() => guard.check([{ permission: "admin", resource: "cluster" }]));
    const admin = newToken();
    const adminHash = await hashSecret(admin.secret);
    const enabled = applyAuth(
      state,
      { type: "enable", token: { id: admin.id, role: "admin", ...adminHash, ttlMs: 0 } },
      now,
    );
    assert.deepEqual(enabled, { kind: "auth.enable", ok: true, expiresAtMs: 0 });
    assert.ok(authEnabled(state));
    assert.equal(
      applyAuth(
        state,
        { type: "enable", token: { id: admin.id, role: "admin", ...adminHash, ttlMs: 0 } },
        now,
      ).ok,
      false,
    );
    assert.equal(
      applyAuth(state, { type: "role-put", name: "admin", grants: [] }, now).ok,
      false,
      "admin is built in",
    );
    assert.deepEqual(
      applyAuth(state, { type: "role-put", name: "app", grants: [parseGrant("write:key:app/")] }, now),
      {
        kind: "auth.role-put",
        ok: true,
        created: true,
      },
    );
    const app = newToken();
    const created = applyAuth(
      state,
      {
        type: "token-create",
        token: { id: app.id, role: "app", ...(await hashSecret(app.secret)), ttlMs: 500 },
      },
      now,
    );
    assert.deepEqual(created, { kind: "auth.token-create", ok: true, expiresAtMs: 1_500 });
    const ghost = applyAuth(
      state,
      { type: "token-create", token: { id: "00000000000000aa", role: "ghost", ...adminHash, ttlMs: 0 } },
      now,
    );
    assert.equal(ghost.ok === false && ghost.code, "ERR_NOT_FOUND");
    const held = applyAuth(state, { type: "role-delete", name: "app" }, now);
    assert.equal(held.ok === false && held.code, "ERR_CONFLICT", "a role a token holds stays");
    assert.deepEqual(
      listRoles(state).map((r) => r.name),
      ["admin", "app"],
    );

    const code = (run: () => unknown) => {
      try {
        run();
        return "ok";
      } catch (error) {
        return error instanceof CairnError ? error.code : "other";
      }
    };
    const appPrincipal = await guard.authenticate(app.text);
    assert.deepEqual(appPrincipal, { kind: "token", tokenId: app.id });
    await assert.rejects(guard.authenticate(`ct_${app.id}_${"0".repeat(64)}`), {
      code: "ERR_UNAUTHENTICATED",
    });
    await assert.rejects(guard.authenticate("not a token"), { code: "ERR_UNAUTHENTICATED" });
    const writeApp = { permission: "write", resource: "key", key: bytes("app/1") } as const;
    const writeOther = { permission: "write", resource: "key", key: bytes("other") } as const;
    assert.equal(
      code(() => guard.check([writeApp], appPrincipal)),
      "ok",
    );
    assert.equal(
      code(() => guard.check([writeOther], appPrincipal)),
      "ERR_FORBIDDEN",
    );
    assert.equal(
      code(() => guard.check([writeApp], { kind: "anonymous" })),
      "ERR_UNAUTHENTICATED",
    );
    assert.equal(
      code(() => guard.check([writeOther], { kind: "token", tokenId: admin.id })),
      "ok",
    );
    assert.equal(guard.failures.forbidden, 1);
    // Expiry by the checking node's clock; revocation removes the token everywhere it is applied.
    now = 1_500;
    assert.equal(
      code(() => guard.check([writeApp], appPrincipal)),
      "ERR_UNAUTHENTICATED",
    );
    assert.deepEqual(applyAuth(state, { type: "token-revoke", id: app.id }, now), {
      kind: "auth.token-revoke",
      ok: true,
      revoked: true,
    });
    assert.equal(getToken(state, app.id), undefined);
    assert.equal(applyAuth(state, { type: "role-delete", name: "app" }, now).ok, true);
    assert.deepEqual(applyAuth(state, { type: "disable" }, now), {
      kind: "auth.disable",
      ok: true,
      disabled: true,
    });
    assert.equal(
      code(() => guard.check([writeOther], { kind: "anonymous" })),
      "ok",
    );
  });
});

describe("auth commands in the log", () => {
  it("round-trip through an envelope, and a retried one answers its first result", () => {
    const token = {
      id: "0123456789abcdef",
      role: "app",
      salt: Uint8Array.of(1, 2),
      hash: Uint8Array.of(3, 4),
      ttlMs: 9,
    };
    const commands = [
      { type: "role-put", name: "app", grants: [parseGrant("read:key:a/"), parseGrant("admin:cluster")] },
      { type: "role-delete", name: "app" },
      { type: "token-create", token },
      { type: "token-revoke", id: token.id },
      { type: "enable", token },
      { type: "disable" },
    ] as const;
    for (const command of commands) {
      const envelope = { tsMs: 5, command: { service: "auth", command } } as const;
      assert.deepEqual(decodeEnvelope(encodeEnvelope(envelope)), envelope);
    }
    const state = new MemoryState();
    const put = { tsMs: 5, idempotencyKey: "k", command: { service: "auth", command: commands[0] } } as const;
    const first = applyEnvelope(state, put);
    const again = applyEnvelope(state, put);
    assert.ok(first.ok && again.ok);
    assert.deepEqual(again.result, first.result);
    assert.equal(again.duplicate, true);
  });
});
