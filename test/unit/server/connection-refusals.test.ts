// Refused connections in /metrics, per protocol and reason: every client port (HTTP, Redis, text,
// gRPC) of one node counts into one table, and `cairn_connections_refused_total{protocol,reason}`
// reports it. Real sockets to 127.0.0.1: a full listener (limit 1) and a full address (limit 1 per
// address, over TLS) refuse a second connection, and a plain-text client on a TLS port fails its
// handshake; each shows up under its own protocol and reason, and nothing else does.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createDevCa, issueCertificate } from "../../../src/cli/dev-certs.js";
import { GroupMetrics } from "../../../src/node/index.js";
import type { RaftStatus } from "../../../src/raft/index.js";
import type { ClientProtocol, ConnectionLimits } from "../../../src/server/connection-gate.js";
import { startGrpcServer } from "../../../src/server/grpc/index.js";
import { buildHttpApp, ClientTls, ConnectionRefusals } from "../../../src/server/http/index.js";
import { NodeMetrics } from "../../../src/server/http/metrics-route.js";
import { startRespServer } from "../../../src/server/resp/index.js";
import { startTextServer } from "../../../src/server/text/index.js";
import { KvService, StreamService } from "../../../src/service/index.js";
import { LocalReplication } from "../../support/local-replication.js";
import { RawConnection, singleNodeStatus } from "../../support/resp-fixture.js";

/** Starts all four client ports with `connections` limits (and TLS), counting into `refusals`. */
async function startPorts(
  refusals: ConnectionRefusals,
  connections: Partial<ConnectionLimits>,
  tls?: ClientTls,
): Promise<{ ports: [ClientProtocol, number][]; close(): Promise<void> }> {
  const log = new LocalReplication();
  const kv = new KvService(log);
  const streams = new StreamService(log, log.applied);
  const secure = tls !== undefined ? { tls } : {};
  const app = buildHttpApp({ kv, readiness: () => ({ ready: true }), connections, refusals, ...secure });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  assert.ok(typeof address === "object" && address !== null);
  const redis = await startRespServer(
    { kv, streams, status: () => singleNodeStatus(log), connections, refusals, ...secure },
    { host: "127.0.0.1", port: 0 },
  );
  const text = await startTextServer(
    { host: "127.0.0.1", port: 0 },
    { kv, flavor: "cairn", connections, refusals, ...secure },
  );
  const grpc = await startGrpcServer(
    { host: "127.0.0.1", port: 0 },
    { streams, connections, refusals, ...secure },
  );
  return {
    ports: [
      ["http", address.port],
      ["redis", Number(redis.address.split(":")[1])],
      ["text", text.address.port],
      ["grpc", grpc.address.port],
    ],
    close: async () => {
      await app.close();
      await redis.close();
      await text.close();
      await grpc.close();
    },
  };
}

/** The samples of cairn_connections_refused_total, as `protocol reason` -> count. */
async function refusedSamples(refusals: ConnectionRefusals): Promise<Map<string, number>> {
  const metrics = new NodeMetrics({
    metrics: new GroupMetrics(),
    status: () =>
      ({
        role: "leader",
        leaderId: 1,
        term: 1,
        commitIndex: 0,
        lastIndex: 0,
        peers: [],
      }) as unknown as RaftStatus,
    appliedIndex: 0,
    connectionRefusals: refusals,
  });
  const out = new Map<string, number>();
  for (const line of (await metrics.render()).split("\n")) {
    const match = /^cairn_connections_refused_total\{protocol="([a-z]+)",reason="([a-z-]+)"\} (\d+)$/.exec(
      line,
    );
    if (match !== null) out.set(`${match[1]} ${match[2]}`, Number(match[3]));
  }
  return out;
}

/** Waits (bounded) until `refusals` counted `count` for `protocol` and `reason`. */
async function counted(
  refusals: ConnectionRefusals,
  protocol: ClientProtocol,
  reason: "listener-full" | "address-full" | "tls-handshake",
  count: number,
): Promise<void> {
  for (let turn = 0; turn < 1_000 && refusals.of(protocol)[reason] < count; turn++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("cairn_connections_refused_total", () => {
  it("counts a full listener, a full address and a failed TLS handshake under each protocol", async () => {
    const refusals = new ConnectionRefusals();
    const plain = await startPorts(refusals, { connectionsMax: 1, connectionsPerAddressMax: 1 });
    const dir = await mkdtemp(join(tmpdir(), "cairn-refusals-"));
    const ca = await createDevCa("refusals test CA");
    const server = await issueCertificate(ca, {
      commonName: "node",
      role: "node",
      ipAddresses: ["127.0.0.1"],
    });
    await writeFile(join(dir, "cert.pem"), server.cert);
    await writeFile(join(dir, "key.pem"), server.key);
    // Another node's worth of TLS ports, counting into the same table (one protocol label each).
    const tlsRefusals = new ConnectionRefusals();
    const secure = await startPorts(
      tlsRefusals,
      { connectionsMax: 10, connectionsPerAddressMax: 1 },
      new ClientTls({ cert: join(dir, "cert.pem"), key: join(dir, "key.pem") }),
    );
    const held: RawConnection[] = [];
    try {
      // Before anything is refused, every protocol reports 0 for every reason.
      const zero = await refusedSamples(refusals);
      assert.equal(zero.size, 12);
      assert.ok([...zero.values()].every((count) => count === 0));

      for (const [protocol, port] of plain.ports) {
        held.push(await RawConnection.open(port));
        // The second connection finds the listener full and is closed.
        await (await RawConnection.open(port)).closed();
        await counted(refusals, protocol, "listener-full", 1);
      }
      for (const [protocol, port] of secure.ports) {
        // Plain text on a TLS port: the handshake fails.
        const plainText = await RawConnection.open(port);
        plainText.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        await plainText.closed();
        await counted(tlsRefusals, protocol, "tls-handshake", 1);
        // One connection per address: a second one is closed before its handshake.
        held.push(await RawConnection.open(port));
        await (await RawConnection.open(port)).closed();
        await counted(tlsRefusals, protocol, "address-full", 1);
      }
      const plainSamples = await refusedSamples(refusals);
      const tlsSamples = await refusedSamples(tlsRefusals);
      for (const protocol of ["http", "redis", "text", "grpc"] as const) {
        assert.equal(plainSamples.get(`${protocol} listener-full`), 1, protocol);
        assert.equal(plainSamples.get(`${protocol} address-full`), 0, protocol);
        assert.equal(plainSamples.get(`${protocol} tls-handshake`), 0, protocol);
        assert.equal(tlsSamples.get(`${protocol} listener-full`), 0, protocol);
        assert.equal(tlsSamples.get(`${protocol} address-full`), 1, protocol);
        assert.equal(tlsSamples.get(`${protocol} tls-handshake`), 1, protocol);
      }
    } finally {
      for (const connection of held) connection.close();
      await plain.close();
      await secure.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
