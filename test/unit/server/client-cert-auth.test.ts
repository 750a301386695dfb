// Client-certificate authentication on every client port, with real TLS and real clients (undici,
// ioredis, a node:tls socket, grpc-js): with authentication on and a client CA (certificates
// optional), a client whose verified certificate's CN is bound to a role is served within that
// role with no token, is refused outside it, an unbound name is refused as unauthenticated (the
// refusal names the certificate), and a client without a certificate falls back to its token. A
// token presented next to a certificate takes precedence; the name is a single subject CN. One
// node (a single-replica log whose services check the node's guard); certificates from
// `cairn dev-certs`' own issuer.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as connectTls, type PeerCertificate, type TLSSocket } from "node:tls";
import { credentials } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { Agent, request } from "undici";
import { createDevCa, issueCertificate, type PemPair } from "../../../src/cli/dev-certs.js";
import { certificateName } from "../../../src/server/client-tls.js";
import { type GrpcServer, grpcStreamName, startGrpcServer } from "../../../src/server/grpc/index.js";
import { buildHttpApp, ClientTls } from "../../../src/server/http/index.js";
import { startRespServer } from "../../../src/server/resp/index.js";
import { startTextServer } from "../../../src/server/text/index.js";
import { AuthService } from "../../../src/service/auth/auth-service.js";
import { AuthGuard, applyAuth, type Need, parseGrant } from "../../../src/service/auth/index.js";
import { KvService, runAs, StreamService, system } from "../../../src/service/index.js";
import { utf8 } from "../../../src/util/index.js";
import { enableAuth } from "../../support/auth-state.js";
import { MessageServiceClient } from "../../support/grpc-client.js";
import { LocalReplication } from "../../support/local-replication.js";
import { singleNodeStatus } from "../../support/resp-fixture.js";

/** A single-replica log whose services check permissions through `guard`, as a node's do. */
class GuardedReplication extends LocalReplication {
  guard: AuthGuard | undefined;
  authorize(needs: readonly Need[]): void {
    this.guard?.check(needs);
  }
}

/** A TLS client identity: the certificate and key it presents. */
interface Identity {
  readonly cert: string;
  readonly key: string;
}

/** Sends lines over TLS to the text port; resolves with everything received once `until` matched. */
function textSession(
  port: number,
  ca: string,
  identity: Identity | undefined,
  lines: readonly string[],
  until: RegExp,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connectTls({ host: "127.0.0.1", port, ca, ...(identity ?? {}) });
    let received = "";
    let sent = false;
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (!sent && received.endsWith("cairn> ")) {
        sent = true;
        socket.write(lines.map((line) => `${line}\r\n`).join(""));
      }
      if (until.test(received)) {
        socket.destroy();
        resolve(received);
      }
    });
    socket.once("error", reject);
    socket.once("close", () => reject(new Error(`closed after ${JSON.stringify(received)}`)));
  });
}

describe("client-certificate authentication on every client port", () => {
  let dir = "";
  let ca: PemPair;
  /** Bound to `app` (keys under app/ and the gRPC stream), to `keys` (keys under app/ only), unbound. */
  let appCert: Identity;
  let keysCert: Identity;
  let strangerCert: Identity;
  let adminToken = "";
  const log = new GuardedReplication();
  const guard = new AuthGuard({ state: log.state, nowMs: () => 1_000 });
  const kv = new KvService(log);
  const streams = new StreamService(log, log.applied);
  let tls: ClientTls;

  before(async () => {
    log.guard = guard;
    dir = await mkdtemp(join(tmpdir(), "cairn-cert-auth-"));
    ca = await createDevCa("cert auth test CA");
    const server = await issueCertificate(ca, {
      commonName: "node",
      role: "node",
      ipAddresses: ["127.0.0.1"],
    });
    await writeFile(join(dir, "ca.pem"), ca.cert);
    await writeFile(join(dir, "cert.pem"), server.cert);
    await writeFile(join(dir, "key.pem"), server.key);
    const client = (commonName: string) =>
      issueCertificate(ca, { commonName, role: "client", privateKey: server.key });
    appCert = await client("app-1");
    keysCert = await client("keys-1");
    strangerCert = await client("stranger");
    tls = new ClientTls({
      cert: join(dir, "cert.pem"),
      key: join(dir, "key.pem"),
      ca: join(dir, "ca.pem"),
      clientCerts: "optional",
    });
    adminToken = await enableAuth(log.state);
    applyAuth(
      log.state,
      {
        type: "role-put",
        name: "app",
        grants: [parseGrant("admin:key:app/"), parseGrant(`admin:stream:${grpcStreamName}`)],
      },
      0,
    );
    applyAuth(log.state, { type: "role-put", name: "keys", grants: [parseGrant("admin:key:app/")] }, 0);
    applyAuth(log.state, { type: "cert-bind", name: "app-1", role: "app" }, 0);
    applyAuth(log.state, { type: "cert-bind", name: "keys-1", role: "keys" }, 0);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("HTTP: a bound certificate is served within its role, refused outside it; unbound and no certificate are 401; a token wins", async () => {
    const app = buildHttpApp({
      kv,
      readiness: () => ({ ready: true }),
      tls,
      auth: new AuthService(log, guard),
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    assert.ok(typeof address === "object" && address !== null);
    const agents = [appCert, strangerCert, undefined].map(
      (identity) => new Agent({ connect: { ca: ca.cert, ...(identity ?? {}) } }),
    );
    const [asApp, asStranger, asNobody] = agents;
    assert.ok(asApp !== undefined && asStranger !== undefined && asNobody !== undefined);
    const call = async (dispatcher: Agent, method: "GET" | "PUT", path: string, token?: string) => {
      const answer = await request(`https://127.0.0.1:${address.port}${path}`, {
        dispatcher,
        method,
        headers: {
          "content-type": "application/json",
          ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(method === "PUT" ? { body: JSON.stringify({ value: "v" }) } : {}),
      });
      return { status: answer.statusCode, body: (await answer.body.json()) as Record<string, unknown> };
    };
    try {
      assert.equal((await call(asApp, "PUT", "/v1/kv/app/http")).status, 200);
      assert.deepEqual(await call(asApp, "GET", "/v1/auth/whoami"), {
        status: 200,
        body: {
          enabled: true,
          certificate: "app-1",
          role: "app",
          grants: ["admin:key:app/*", `admin:stream:${grpcStreamName}`],
        },
      });
      const outside = await call(asApp, "PUT", "/v1/kv/other");
      assert.equal(outside.status, 403);
      assert.deepEqual(outside.body["error"], {
        code: "ERR_FORBIDDEN",
        message: "certificate app-1 (role app) lacks write:key:other",
        missing: "write:key:other",
        principal: "cert:app-1",
        name: "other",
      });
      const unbound = await call(asStranger, "PUT", "/v1/kv/app/http");
      assert.equal(unbound.status, 401);
      const error = unbound.body["error"] as { code: string; message: string; certificate: string };
      assert.equal(error.code, "ERR_UNAUTHENTICATED");
      assert.match(error.message, /certificate name stranger is not bound to a role/);
      assert.equal(error.certificate, "stranger");
      assert.equal((await call(asNobody, "PUT", "/v1/kv/app/http")).status, 401);
      // No certificate: the token decides; next to a certificate, the token takes precedence.
      assert.equal((await call(asNobody, "PUT", "/v1/kv/other", adminToken)).status, 200);
      assert.equal((await call(asStranger, "PUT", "/v1/kv/other", adminToken)).status, 200);
      assert.equal((await call(asApp, "GET", "/v1/auth/whoami", adminToken)).body["certificate"], undefined);
      // A refused request changed nothing.
      assert.equal((await runAs(system, () => kv.get(utf8("other")))).record?.value.length, 1);
    } finally {
      for (const agent of agents) await agent.close();
      await app.close();
    }
  });

  it("Redis: a bound certificate needs no AUTH, NOPERM outside its role, NOAUTH naming an unbound one, AUTH without one", async () => {
    const server = await startRespServer(
      { kv, streams, guard, status: () => singleNodeStatus(log), tls },
      { host: "127.0.0.1", port: 0 },
    );
    const port = Number(server.address.split(":")[1]);
    const connect = (identity: Identity | undefined) =>
      new Redis({
        host: "127.0.0.1",
        port,
        tls: { ca: ca.cert, ...(identity ?? {}) },
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        // ioredis opens with HELLO 3 and checks readiness with INFO, which Redis refuses before
        // authentication (and ioredis then closes): this test wants the connection to hear each refusal.
        protocol: 2,
        enableReadyCheck: false,
      });
    const clients = [connect(appCert), connect(strangerCert), connect(undefined)];
    const [asApp, asStranger, asNobody] = clients;
    assert.ok(asApp !== undefined && asStranger !== undefined && asNobody !== undefined);
    try {
      assert.equal(await asApp.set("app/redis", "v"), "OK");
      assert.equal(await asApp.get("app/redis"), "v");
      await assert.rejects(
        asApp.set("other-redis", "v"),
        /^ReplyError: NOPERM User cert:app-1 has no permissions to access the 'other-redis' key/,
      );
      await assert.rejects(
        asStranger.set("app/redis", "x"),
        /^ReplyError: NOAUTH Authentication required\. Certificate name 'stranger' is not bound to a role\./,
      );
      await assert.rejects(asNobody.get("app/redis"), /^ReplyError: NOAUTH Authentication required\.$/);
      assert.equal(await asNobody.auth(adminToken), "OK");
      assert.equal(await asNobody.get("app/redis"), "v");
      // A token over a certificate: AUTH takes precedence for the rest of the connection.
      assert.equal(await asStranger.auth(adminToken), "OK");
      assert.equal(await asStranger.set("other-redis", "y"), "OK");
      // RESET: back to a fresh connection, which for a certificate's holder is its certificate.
      assert.equal(await asStranger.call("RESET"), "RESET");
      await assert.rejects(asStranger.get("app/redis"), /NOAUTH .*Certificate name 'stranger'/);
      assert.equal(await asApp.call("RESET"), "RESET");
      assert.equal(await asApp.get("app/redis"), "v");
      assert.equal(
        await asApp.get("other-redis").catch((e: unknown) => String(e)),
        "ReplyError: NOPERM User cert:app-1 has no permissions to access the 'other-redis' key",
      );
    } finally {
      for (const client of clients) client.disconnect();
      await server.close();
    }
  });

  it("text: a bound certificate needs no AUTH line, is refused outside its role; unbound and no certificate are refused; AUTH works", async () => {
    const server = await startTextServer({ host: "127.0.0.1", port: 0 }, { kv, guard, flavor: "cairn", tls });
    const port = server.address.port;
    try {
      // The text protocol's keys live under hatokuse:; `app` may not write them, `admin` may.
      applyAuth(
        log.state,
        { type: "role-put", name: "text", grants: [parseGrant("admin:key:hatokuse:1")] },
        0,
      );
      applyAuth(log.state, { type: "cert-bind", name: "keys-1", role: "text" }, 0);
      const served = await textSession(port, ca.cert, keysCert, ["SET 1 hello", "GET 1"], /hello\r\n/);
      assert.match(served, /OK\r\n/);
      const outside = await textSession(port, ca.cert, keysCert, ["SET 2 no"], /ERROR: /);
      assert.match(outside, /ERROR: permission denied/);
      const unbound = await textSession(port, ca.cert, strangerCert, ["GET 1"], /ERROR: /);
      assert.match(
        unbound,
        /ERROR: unauthenticated \(certificate name stranger is not bound to a role; send AUTH <token>\)/,
      );
      const none = await textSession(port, ca.cert, undefined, ["GET 1"], /ERROR: /);
      assert.match(none, /ERROR: unauthenticated \(send AUTH <token>\)/);
      const token = await textSession(port, ca.cert, undefined, [`AUTH ${adminToken}`, "GET 1"], /hello\r\n/);
      assert.match(token, /OK\r\n/);
      assert.equal(
        (await runAs(system, () => kv.get(utf8("hatokuse:2")))).record,
        undefined,
        "the refused SET changed nothing",
      );
    } finally {
      applyAuth(log.state, { type: "cert-bind", name: "keys-1", role: "keys" }, 0);
      await server.close();
    }
  });

  it("gRPC: a bound certificate posts with no token, is refused outside its role; unbound and no certificate are refused; metadata works", async () => {
    const server: GrpcServer = await startGrpcServer({ host: "127.0.0.1", port: 0 }, { streams, guard, tls });
    const client = (identity: Identity | undefined) =>
      new MessageServiceClient(
        `127.0.0.1:${server.address.port}`,
        identity === undefined
          ? credentials.createSsl(Buffer.from(ca.cert))
          : credentials.createSsl(
              Buffer.from(ca.cert),
              Buffer.from(identity.key),
              Buffer.from(identity.cert),
            ),
      );
    const clients = [client(appCert), client(keysCert), client(strangerCert), client(undefined)];
    const [asApp, asKeys, asStranger, asNobody] = clients;
    assert.ok(
      asApp !== undefined && asKeys !== undefined && asStranger !== undefined && asNobody !== undefined,
    );
    try {
      const posted = await asApp.postMessage({ content: "by certificate" });
      assert.equal(posted.response.status, "success");
      const outside = await asKeys.postMessage({ content: "no" });
      assert.equal(outside.response.status, "error");
      assert.equal(outside.trailers["cairn-code"], "ERR_FORBIDDEN");
      const unbound = await asStranger.postMessage({ content: "no" });
      assert.equal(unbound.trailers["cairn-code"], "ERR_UNAUTHENTICATED");
      assert.match(unbound.response.message, /certificate name stranger is not bound/);
      const none = await asNobody.postMessage({ content: "no" });
      assert.equal(none.trailers["cairn-code"], "ERR_UNAUTHENTICATED");
      const token = await asNobody.postMessage({ content: "by token" }, { token: adminToken });
      assert.equal(token.response.status, "success");
      const messages = (await asApp.catchUp(0, adminToken)).response.messages.map((m) => m.content);
      assert.deepEqual(messages, ["by certificate", "by token"], "refused posts changed nothing");
    } finally {
      for (const c of clients) c.close();
      await server.close();
    }
  });
});

describe("the name a client certificate gives", () => {
  it("is its single subject CN; no certificate, no CN or several CNs name no one", () => {
    const named = (subject: unknown) => certificateName({ subject } as unknown as PeerCertificate);
    assert.equal(named({ CN: "app-1", O: "Cairn development" }), "app-1");
    // Node reports a missing certificate as {}, several CNs as an array.
    assert.equal(certificateName({} as PeerCertificate), undefined);
    assert.equal(certificateName(undefined), undefined);
    assert.equal(named({ O: "no CN" }), undefined);
    assert.equal(named({ CN: "" }), undefined);
    assert.equal(named({ CN: ["app-1", "admin"] }), undefined);
  });
});
