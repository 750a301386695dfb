// A Redis protocol server over a single-replica log, on a free 127.0.0.1 port, and a raw TCP
// client that sends bytes and collects exactly the replies expected, for protocol tests.
import { connect, type Socket } from "node:net";
import { type RespServer, startRespServer } from "../../src/server/resp/index.js";
import type { ClusterStatus } from "../../src/service/index.js";
import { KvService } from "../../src/service/kv/kv-service.js";
import { StreamService } from "../../src/service/streams/stream-service.js";
import { lineLogger } from "../../src/util/index.js";
import { LocalReplication } from "./local-replication.js";

/** A status as a single node that leads reports it. */
export function singleNodeStatus(log: LocalReplication): ClusterStatus {
  return {
    clusterId: "test",
    self: { id: 1, name: "n1", role: "leader", recovering: null },
    leader: { id: 1, name: "n1", httpUrl: null },
    term: 1,
    commitIndex: log.appliedIndex,
    appliedIndex: log.appliedIndex,
    lastIndex: log.appliedIndex,
    snapshotIndex: 0,
    stateCheck: { index: null, agreeing: 0, differing: [] },
    members: [],
  };
}

/**
 * Starts a server; the caller closes it. `nowMs` follows the log's clock; the server's log entries
 * are collected in `logged`, as lines.
 */
export async function startLocalRespServer(limits: Partial<KvService["limits"]> = {}): Promise<{
  server: RespServer;
  port: number;
  log: LocalReplication;
  kv: KvService;
  streams: StreamService;
  logged: string[];
}> {
  const log = new LocalReplication();
  const kv = new KvService(log, limits);
  const streams = new StreamService(log, log.applied);
  const logged: string[] = [];
  const server = await startRespServer(
    {
      kv,
      streams,
      status: () => singleNodeStatus(log),
      nowMs: () => log.clockMs,
      logger: lineLogger((line) => logged.push(line)),
    },
    { host: "127.0.0.1", port: 0 },
  );
  const port = Number(server.address.split(":")[1]);
  return { server, port, log, kv, streams, logged };
}

/** A raw connection: write bytes, read until a predicate on everything received holds. */
export class RawConnection {
  readonly #socket: Socket;
  #received = Buffer.alloc(0);
  #closed = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk]);
      this.#wake();
    });
    socket.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on("error", () => undefined);
  }

  /** Opens a connection to 127.0.0.1:`port`. */
  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1", () => resolve(new RawConnection(socket)));
      socket.once("error", reject);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Sends raw bytes. */
  write(bytes: string | Uint8Array): void {
    this.#socket.write(bytes);
  }

  /** Waits until the bytes received satisfy `done` (or the connection closed); returns them all. */
  async until(done: (received: string) => boolean): Promise<string> {
    while (!done(this.#received.toString("latin1")) && !this.#closed) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.#received.toString("latin1");
  }

  /** Waits for the server to close the connection; returns everything received. */
  async closed(): Promise<string> {
    return this.until(() => false);
  }

  /** Closes the connection. */
  close(): void {
    this.#socket.destroy();
  }
}
