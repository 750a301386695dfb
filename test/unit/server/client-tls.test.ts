// TLS on every client port, with real clients: ioredis and redis-cli --tls to the Redis port,
// undici to HTTPS, grpc-js with TLS credentials to the gRPC port, a node:tls socket to the text
// port; a certificate renewed on disk and reloaded serves new connections while an open one goes
// on; with a client CA, a client without a certificate is refused and one with a certificate it
// signed is served. Certificates from `cairn dev-certs`' own issuer, files in a temporary directory.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect as connectTcp, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { credentials } from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { Agent, request } from "undici";
import { createDevCa, issueCertificate, type PemPair } from "../../../src/cli/dev-certs.js";
import { startGrpcServer } from "../../../src/server/grpc/index.js";
import { buildHttpApp, ClientTls } from "../../../src/server/http/index.js";
import { startRespServer } from "../../../src/server/resp/index.js";
import { startTextServer } from "../../../src/server/text/index.js";
import { KvService, StreamService } from "../../../src/service/index.js";
import { MessageServiceClient } from "../../support/grpc-client.js";
import { LocalReplication } from "../../support/local-replication.js";
import { singleNodeStatus } from "../../support/resp-fixture.js";

/** Opens a TLS connection to the text port; resolves with the socket once the prompt arrived. */
function textOverTls(port: number, options: { ca: string; cert?: string; key?: string }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: "127.0.0.1", port, ...options });
    let received = "";
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (received.endsWith("cairn> ")) resolve(socket);
    });
    socket.once("error", reject);
    socket.once("close", () => reject(new Error(`closed after ${JSON.stringify(received)}`)));
  });
}

describe("TLS on every client port", () => {
  let dir = "";
  let ca: PemPair;
  let server: PemPair;
  const log = new LocalReplication();
  const kv = new KvService(log);
  const streams = new StreamService(log, log.applied);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "cairn-client-tls-"));
    ca = await createDevCa("client TLS test CA");
    server = await issueCertificate(ca, { commonName: "first", role: "node", ipAddresses: ["127.0.0.1"] });
    await writeFile(join(dir, "ca.pem"), ca.cert);
    await writeFile(join(dir, "cert.pem"), server.cert);
    await writeFile(join(dir, "key.pem"), server.key);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("serves HTTP, Redis, text and gRPC over TLS to real clients, and a reloaded certificate to new connections", async () => {
    const tls = new ClientTls({ cert: join(dir, "cert.pem"), key: join(dir, "key.pem") });
    const app = buildHttpApp({ kv, readiness: () => ({ ready: true }), tls });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const redis = await startRespServer(
      { kv, streams, status: () => singleNodeStatus(log), tls },
      { host: "127.0.0.1", port: 0 },
    );
    const text = await startTextServer({ host: "127.0.0.1", port: 0 }, { kv, flavor: "cairn", tls });
    const grpc = await startGrpcServer({ host: "127.0.0.1", port: 0 }, { streams, tls });
    const redisPort = Number(redis.address.split(":")[1]);
    const dispatcher = new Agent({ connect: { ca: ca.cert } });
    const ioredis = new Redis({
      host: "127.0.0.1",
      port: redisPort,
      tls: { ca: ca.cert },
      lazyConnect: true,
    });
    const grpcClient = new MessageServiceClient(
      `127.0.0.1:${grpc.address.port}`,
      credentials.createSsl(Buffer.from(ca.cert)),
    );
    try {
      const address = app.server.address();
      assert.ok(typeof address === "object" && address !== null);
      const health = await request(`https://127.0.0.1:${address.port}/health/live`, { dispatcher });
      assert.equal(health.statusCode, 200);
      assert.deepEqual(await health.body.json(), { status: "ok" });

      await ioredis.connect();
      assert.equal(await ioredis.set("k", "over tls"), "OK");
      assert.equal(await ioredis.get("k"), "over tls");
      const cli = await promisify(execFile)("redis-cli", [
        "--tls",
        "--cacert",
        join(dir, "ca.pem"),
        "-h",
        "127.0.0.1",
        "-p",
        String(redisPort),
        "GET",
        "k",
      ]);
      assert.equal(cli.stdout.trim(), "over tls");

      const textSocket = await textOverTls(text.address.port, { ca: ca.cert });
      assert.equal(textSocket.getPeerCertificate().subject.CN, "first");

      const posted = await grpcClient.postMessage({ content: "hello over tls" });
      assert.equal(posted.response.status, "success");

      // Renew: a new certificate on disk, reloaded; a new connection gets it, the open one goes on.
      const renewed = await issueCertificate(ca, {
        commonName: "renewed",
        role: "node",
        ipAddresses: ["127.0.0.1"],
        privateKey: server.key,
      });
      await writeFile(join(dir, "cert.pem"), renewed.cert);
      tls.reload();
      const again = await textOverTls(text.address.port, { ca: ca.cert });
      assert.equal(again.getPeerCertificate().subject.CN, "renewed");
      again.destroy();
      const https = await request(`https://127.0.0.1:${address.port}/health/live`, {
        dispatcher: new Agent({
          connect: {
            ca: ca.cert,
            checkServerIdentity: (_host, cert) =>
              cert.subject.CN === "renewed" ? undefined : new Error(`served ${cert.subject.CN}`),
          },
        }),
      });
      assert.equal(https.statusCode, 200);
      await https.body.text();
      textSocket.write("SET 1 still here\r\n");
      await new Promise<void>((resolve) => {
        let seen = "";
        textSocket.on("data", (chunk: Buffer) => {
          seen += chunk.toString("latin1");
          if (seen.includes("OK")) resolve();
        });
      });
      textSocket.destroy();
    } finally {
      grpcClient.close();
      ioredis.disconnect();
      await dispatcher.close();
      await grpc.close();
      await text.close();
      await redis.close();
      await app.close();
      await writeFile(join(dir, "cert.pem"), server.cert);
    }
  });

  it("with a client CA, refuses a client without a certificate and serves one the CA signed", async () => {
    const tls = new ClientTls({
      cert: join(dir, "cert.pem"),
      key: join(dir, "key.pem"),
      ca: join(dir, "ca.pem"),
    });
    const text = await startTextServer({ host: "127.0.0.1", port: 0 }, { kv, flavor: "cairn", tls });
    try {
      await assert.rejects(textOverTls(text.address.port, { ca: ca.cert }));
      const client = await issueCertificate(ca, {
        commonName: "app-1",
        role: "client",
        privateKey: server.key,
      });
      const socket = await textOverTls(text.address.port, {
        ca: ca.cert,
        cert: client.cert,
        key: client.key,
      });
      socket.destroy();
    } finally {
      await text.close();
    }
  });

  it("counts a TLS connection at accept, before its handshake, on HTTP, Redis, text and gRPC", async () => {
    const tls = new ClientTls({ cert: join(dir, "cert.pem"), key: join(dir, "key.pem") });
    const connections = { connectionsMax: 1, connectionsPerAddressMax: 1 };
    const app = buildHttpApp({ kv, readiness: () => ({ ready: true }), tls, connections });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address();
    assert.ok(typeof address === "object" && address !== null);
    const redis = await startRespServer(
      { kv, streams, status: () => singleNodeStatus(log), tls, connections },
      { host: "127.0.0.1", port: 0 },
    );
    const text = await startTextServer(
      { host: "127.0.0.1", port: 0 },
      { kv, flavor: "cairn", tls, connections },
    );
    const grpc = await startGrpcServer({ host: "127.0.0.1", port: 0 }, { streams, tls, connections });
    const ports: [string, number][] = [
      ["HTTP", address.port],
      ["Redis", Number(redis.address.split(":")[1])],
      ["text", text.address.port],
      ["gRPC", grpc.address.port],
    ];
    try {
      for (const [name, port] of ports) {
        // A connection that never starts its handshake holds the port's only place...
        const idle = await new Promise<Socket>((resolve, reject) => {
          const socket = connectTcp({ host: "127.0.0.1", port }, () => resolve(socket));
          socket.once("error", reject);
        });
        // ...so a TLS client is closed before its handshake is done (before, it was served).
        assert.equal(
          await handshakes(port),
          false,
          `${name}: refused while the idle connection holds the place`,
        );
        const closed = new Promise((resolve) => idle.once("close", resolve));
        idle.destroy();
        await closed;
        // Bounded: the server learns of the close asynchronously.
        let served = false;
        for (let attempt = 0; attempt < 50 && !served; attempt++) served = await handshakes(port);
        assert.ok(served, `${name}: a TLS client is served once the place is free`);
      }
    } finally {
      await app.close();
      await redis.close();
      await text.close();
      await grpc.close();
    }
  });
});

/** Whether a TLS handshake with the server at `port` completes (the client then closes). */
function handshakes(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTls({
      host: "127.0.0.1",
      port,
      rejectUnauthorized: false,
      ALPNProtocols: ["h2", "http/1.1"],
    });
    socket.once("secureConnect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.once("close", () => resolve(false));
  });
}
