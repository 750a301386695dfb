import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import type { PeerAddress } from "./transport.js";

/** Which way bytes flow through the proxy: `forward` is dialer -> target, `backward` the replies. */
export type ProxyDirection = "forward" | "backward" | "both";

/** Where a {@link FaultProxy} listens and whom it forwards to. */
export interface FaultProxyOptions {
  /** Where to listen; port 0 picks a free port. Only 127.0.0.1 is meant. */
  readonly listen: PeerAddress;
  readonly target: PeerAddress;
  /** Bytes held for delayed delivery per direction of a connection; beyond it the connection is cut. */
  readonly delayBufferBytesMax?: number;
}

/** Counters a test can assert on. */
export interface FaultProxyStats {
  readonly connectionsAccepted: number;
  readonly connectionsOpen: number;
  readonly bytesForwarded: number;
  readonly bytesDiscarded: number;
  /** Bytes held back by a delay right now (received, not yet relayed). */
  readonly bytesHeld: number;
}

interface Pipe {
  readonly client: Socket;
  readonly server: Socket;
  /** Set when bytes of this connection were discarded: it can never carry a valid stream again. */
  damaged: boolean;
}

interface Delayed {
  readonly releaseAtMs: number;
  readonly chunk: Buffer;
}

/**
 * A TCP proxy that sits between two nodes on 127.0.0.1 and misbehaves on command, for the
 * real-process fault suite: it can refuse and cut connections (`drop`), swallow bytes while keeping
 * connections open (`blackhole`, one way or both, like a partition that TCP cannot see), `delay`
 * delivery, and `sever` what is open. It relays bytes unchanged (TLS passes through end to end), so
 * it can never forge or corrupt a frame: faults look like the network's, not like a broken peer.
 */
export class FaultProxy {
  readonly #options: FaultProxyOptions;
  readonly #pipes = new Set<Pipe>();
  #server: Server | undefined;
  #address: PeerAddress | undefined;
  #dropping = false;
  #blackholeForward = false;
  #blackholeBackward = false;
  #delayMs = 0;
  #accepted = 0;
  #forwarded = 0;
  #discarded = 0;
  #held = 0;

  /** Creates a proxy; it listens once {@link start} is called. */
  constructor(options: FaultProxyOptions) {
    this.#options = options;
  }

  /** Starts listening and returns the address dialers should use instead of the target's. */
  async start(): Promise<PeerAddress> {
    const server = createServer((client) => this.#onConnection(client));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#options.listen.port, this.#options.listen.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address !== "object") throw new Error("proxy has no address");
    this.#address = { host: address.address, port: address.port };
    return this.#address;
  }

  /** The address listened on, once started. */
  get address(): PeerAddress | undefined {
    return this.#address;
  }

  /** Counters since start. */
  get stats(): FaultProxyStats {
    return {
      connectionsAccepted: this.#accepted,
      connectionsOpen: this.#pipes.size,
      bytesForwarded: this.#forwarded,
      bytesDiscarded: this.#discarded,
      bytesHeld: this.#held,
    };
  }

  /** Cuts the link: open connections are severed and new ones are closed as soon as they arrive. */
  drop(): void {
    this.#dropping = true;
    this.sever();
  }

  /**
   * Swallows bytes in `direction` while connections stay open, so the ends notice only through
   * their own timeouts. A connection that lost bytes is severed on {@link heal}.
   */
  blackhole(direction: ProxyDirection = "both"): void {
    if (direction !== "backward") this.#blackholeForward = true;
    if (direction !== "forward") this.#blackholeBackward = true;
  }

  /** Delivers every later chunk `delayMs` after it arrived, in order (0 turns delay off). */
  delay(delayMs: number): void {
    if (!Number.isSafeInteger(delayMs) || delayMs < 0) throw new RangeError(`bad delay ${delayMs}`);
    this.#delayMs = delayMs;
  }

  /** Destroys every open connection once; new connections are still accepted. */
  sever(): void {
    for (const pipe of this.#pipes) {
      pipe.client.destroy();
      pipe.server.destroy();
    }
    this.#pipes.clear();
  }

  /** Ends every fault: forwards again without delay, and severs connections whose bytes were lost. */
  heal(): void {
    this.#dropping = false;
    this.#blackholeForward = false;
    this.#blackholeBackward = false;
    this.#delayMs = 0;
    for (const pipe of [...this.#pipes]) {
      if (!pipe.damaged) continue;
      pipe.client.destroy();
      pipe.server.destroy();
      this.#pipes.delete(pipe);
    }
  }

  /** Stops listening and severs everything. */
  async close(): Promise<void> {
    this.sever();
    const server = this.#server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #onConnection(client: Socket): void {
    this.#accepted++;
    if (this.#dropping) {
      client.destroy();
      return;
    }
    const server = tcpConnect({ host: this.#options.target.host, port: this.#options.target.port });
    const pipe: Pipe = { client, server, damaged: false };
    this.#pipes.add(pipe);
    const end = (): void => {
      client.destroy();
      server.destroy();
      this.#pipes.delete(pipe);
    };
    client.on("error", end);
    server.on("error", end);
    client.on("close", end);
    server.on("close", end);
    this.#relay(pipe, client, server, () => this.#blackholeForward);
    this.#relay(pipe, server, client, () => this.#blackholeBackward);
  }

  /** Copies `from` to `to`, applying the faults in force when each chunk arrives. */
  #relay(pipe: Pipe, from: Socket, to: Socket, blackholed: () => boolean): void {
    const queue: Delayed[] = [];
    let queuedBytes = 0;
    let timer: NodeJS.Timeout | undefined;
    const bytesMax = this.#options.delayBufferBytesMax ?? 64 * 1024 * 1024;
    const write = (chunk: Buffer): void => {
      this.#forwarded += chunk.length;
      if (!to.write(chunk)) {
        from.pause();
        to.once("drain", () => from.resume());
      }
    };
    const release = (): void => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && (queue[0]?.releaseAtMs ?? 0) <= now) {
        const item = queue.shift();
        if (item === undefined) break;
        queuedBytes -= item.chunk.length;
        this.#held -= item.chunk.length;
        write(item.chunk);
      }
      const head = queue[0];
      if (head !== undefined) timer = setTimeout(release, Math.max(0, head.releaseAtMs - now));
    };
    from.on("close", () => {
      if (timer !== undefined) clearTimeout(timer);
      // What was still held dies with the connection.
      this.#held -= queuedBytes;
      queuedBytes = 0;
      queue.length = 0;
    });
    from.on("data", (chunk: Buffer) => {
      if (blackholed()) {
        pipe.damaged = true;
        this.#discarded += chunk.length;
        return;
      }
      // Once anything is queued, later chunks queue behind it even if the delay was lifted: order holds.
      if (this.#delayMs === 0 && queue.length === 0) {
        write(chunk);
        return;
      }
      queue.push({ releaseAtMs: performance.now() + this.#delayMs, chunk });
      queuedBytes += chunk.length;
      this.#held += chunk.length;
      if (queuedBytes > bytesMax) {
        from.destroy();
        to.destroy();
        return;
      }
      timer ??= setTimeout(release, this.#delayMs);
    });
  }
}
