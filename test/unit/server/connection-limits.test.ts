// The bound on connections per listener and per address, on every client port (HTTP, Redis, text,
// gRPC): real sockets to 127.0.0.1 against servers with tiny limits. Served connections get their
// protocol's usual answer; one over a limit gets that protocol's stable refusal and is closed; once
// a connection closes, its place is free again.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ConnectionLimits } from "../../../src/server/connection-gate.js";
import { startGrpcServer } from "../../../src/server/grpc/index.js";
import { buildHttpApp } from "../../../src/server/http/index.js";
import { startRespServer } from "../../../src/server/resp/index.js";
import { startTextServer } from "../../../src/server/text/index.js";
import { KvService, StreamService } from "../../../src/service/index.js";
import { LocalReplication } from "../../support/local-replication.js";
import { RawConnection, singleNodeStatus } from "../../support/resp-fixture.js";

/** Sends `text` (if any); true once what `raw` received includes `expected`, false if it closed first. */
async function until(raw: RawConnection, expected: string, text?: string): Promise<boolean> {
  if (text !== undefined) raw.write(text);
  return (await raw.until((r) => r.includes(expected))).includes(expected);
}

interface Port {
  readonly port: number;
  close(): Promise<void>;
}

/** How each protocol proves a connection is served, and what a refused one receives. */
interface Case {
  readonly name: string;
  start(limits: Partial<ConnectionLimits>): Promise<Port>;
  served(raw: RawConnection): Promise<boolean>;
  /** Part of the refusal each limit gets ("" where the protocol cannot speak first). */
  readonly refusal: { readonly address: string; readonly listener: string };
}

function services() {
  const log = new LocalReplication();
  return { log, kv: new KvService(log), streams: new StreamService(log, log.applied) };
}

const cases: readonly Case[] = [
  {
    name: "HTTP",
    async start(connections) {
      const { kv } = services();
      const app = buildHttpApp({ kv, readiness: () => ({ ready: true }), connections });
      await app.listen({ host: "127.0.0.1", port: 0 });
      const address = app.server.address();
      assert.ok(typeof address === "object" && address !== null);
      return { port: address.port, close: () => app.close() };
    },
    served: (raw) => until(raw, '{"status":"ok"}', "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"),
    refusal: {
      address: "429 Too Many Requests",
      listener: "429 Too Many Requests",
    },
  },
  {
    name: "Redis",
    async start(connections) {
      const { kv, streams, log } = services();
      const server = await startRespServer(
        { kv, streams, status: () => singleNodeStatus(log), connections },
        { host: "127.0.0.1", port: 0 },
      );
      return { port: Number(server.address.split(":")[1]), close: () => server.close() };
    },
    served: (raw) => until(raw, "+PONG\r\n", "PING\r\n"),
    refusal: {
      address: "-ERR max number of clients reached from your address\r\n",
      listener: "-ERR max number of clients reached\r\n",
    },
  },
  {
    name: "text",
    async start(connections) {
      const { kv } = services();
      const server = await startTextServer(
        { host: "127.0.0.1", port: 0 },
        { kv, flavor: "cairn", connections },
      );
      return { port: server.address.port, close: () => server.close() };
    },
    served: (raw) => until(raw, "cairn> "),
    refusal: {
      address: "ERROR: busy, too many connections from your address (2)",
      listener: "ERROR: busy, too many connections to this port (2)",
    },
  },
  {
    name: "gRPC",
    async start(connections) {
      const { streams } = services();
      const server = await startGrpcServer({ host: "127.0.0.1", port: 0 }, { streams, connections });
      return { port: server.address.port, close: () => server.close() };
    },
    // The server's HTTP/2 SETTINGS frame answers the client's preface.
    served: (raw) =>
      until(
        raw,
        "\u0000\u0004",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u0000\u0000\u0000\u0004\u0000\u0000\u0000\u0000\u0000",
      ),
    refusal: { address: "", listener: "" },
  },
];

describe("connections per listener and per address", () => {
  for (const c of cases) {
    it(`${c.name}: a third connection from one address is refused with a stable answer, and admitted once one closes`, async () => {
      const server = await c.start({ connectionsPerAddressMax: 2, connectionsMax: 10 });
      try {
        const first = await RawConnection.open(server.port);
        const second = await RawConnection.open(server.port);
        assert.ok(await c.served(first));
        assert.ok(await c.served(second));
        const answer = await (await RawConnection.open(server.port)).closed();
        assert.ok(answer.includes(c.refusal.address), `${c.name} answered ${JSON.stringify(answer)}`);
        if (c.refusal.address === "") assert.equal(answer, "");
        // The first connection is still served after the refusal.
        assert.ok(await c.served(first));
        second.close();
        // The server counts the close when it sees it: try again until admitted (bounded).
        let admitted = false;
        for (let attempt = 0; attempt < 200 && !admitted; attempt++) {
          const again = await RawConnection.open(server.port);
          admitted = await c.served(again);
          again.close();
        }
        assert.ok(admitted);
        first.close();
      } finally {
        await server.close();
      }
    });

    it(`${c.name}: a connection over the listener's limit is refused`, async () => {
      const server = await c.start({ connectionsPerAddressMax: 10, connectionsMax: 2 });
      try {
        const open = [await RawConnection.open(server.port), await RawConnection.open(server.port)];
        for (const raw of open) assert.ok(await c.served(raw));
        const answer = await (await RawConnection.open(server.port)).closed();
        assert.ok(answer.includes(c.refusal.listener), `${c.name} answered ${JSON.stringify(answer)}`);
        for (const raw of open) raw.close();
      } finally {
        await server.close();
      }
    });
  }
});

describe("HTTP headers", () => {
  it("answers headers over the limit 431 ERR_TOO_LARGE in the API's error body, and keeps serving", async () => {
    const { kv } = services();
    const app = buildHttpApp({ kv, readiness: () => ({ ready: true }), headerBytesMax: 4096 });
    await app.listen({ host: "127.0.0.1", port: 0 });
    try {
      const address = app.server.address();
      assert.ok(typeof address === "object" && address !== null);
      const big = await RawConnection.open(address.port);
      big.write(`GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(8192)}\r\n\r\n`);
      const answer = await big.closed();
      assert.match(answer, /^HTTP\/1\.1 431 /);
      assert.ok(answer.includes('"code":"ERR_TOO_LARGE"'), answer);
      const fine = await RawConnection.open(address.port);
      assert.ok(await until(fine, '{"status":"ok"}', "GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"));
      fine.close();
    } finally {
      await app.close();
    }
  });
});
