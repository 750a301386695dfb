// Level 2's snapshot streams: the transport's own snapshot sender and receiver
// (src/transport/snapshot.ts, as the TLS transport runs them) over simulated connections
// (src/transport/memory-connection.ts) that ride the SimNetwork's links. Every frame (begin,
// chunk, ack, end) takes a latency drawn from its link's range and keeps order, as on TCP, which
// hides loss and duplication; a partition or a crash breaks the connection, so a transfer stalls
// against the window, resumes from the receiver's offset, or aborts, as in production.
import { type GroupId, type NodeId, nodeId } from "../../src/raft/index.js";
import type { TimerHandle, TransportEnv } from "../../src/transport/env.js";
import { TransportError } from "../../src/transport/errors.js";
import type { FrameConnectionHandlers, FrameLink } from "../../src/transport/frame-connection.js";
import { SnapshotReceiver, sendSnapshotStream } from "../../src/transport/index.js";
import { type ConnectionWire, MemoryConnection } from "../../src/transport/memory-connection.js";
import { resolveTransportSettings, type TransportSettings } from "../../src/transport/settings.js";
import { Sleepers } from "../../src/transport/sleepers.js";
import type { IncomingSnapshot } from "../../src/transport/transport.js";
import { Prng } from "../../src/util/prng.js";
import type { Scheduler } from "./scheduler.js";
import type { SimNetwork } from "./sim-network.js";

/** What the links need of the network: whether a link is cut, and its latency. */
export type LinkState = Pick<SimNetwork<unknown>, "isBlocked" | "linkLatencyRange">;

/**
 * The fewest bytes a run's snapshot window holds. A transfer moves at most one window per round trip
 * (up to about 200 ms on the simulated links), so this bounds how slowly a snapshot can stream: 4 KiB
 * streams a level-2 snapshot of tens of KiB in a second or two, well inside the settle period. With
 * 512-byte chunks and a window of 2 (1 KiB, 5-10 KiB/s) a re-added follower chasing the leader's
 * compactions needed four snapshots one after another and was still receiving the last one when the
 * run was judged (seed 30000585).
 */
const simSnapshotWindowBytesMin = 4096;

/**
 * The snapshot protocol's settings for a run: chunks small enough that a level-2 snapshot (a few to
 * a few hundred KiB) is many frames, a window of a few chunks (at least 4 KiB,
 * see simSnapshotWindowBytesMin), and timeouts and resume attempts in proportion to the simulated
 * links (tens of milliseconds, partitions of a second or two).
 */
export function simSnapshotSettings(seed: number): TransportSettings {
  const prng = new Prng(seed);
  const chunkBytes = prng.pick([512, 2048, 8192]);
  // Drawn before it is raised to the floor, so every later draw stays what it was.
  const windowChunks = Math.max(prng.range(2, 8), Math.ceil(simSnapshotWindowBytesMin / chunkBytes));
  return resolveTransportSettings({
    frameBytesMax: 64 * 1024,
    snapshotChunkBytesMax: chunkBytes,
    snapshotWindowChunksMax: windowChunks,
    snapshotResumeAttemptsMax: prng.range(2, 5),
    reconnectBackoffBaseMs: 25,
    reconnectBackoffMaxMs: 400,
    snapshotResumeTimeoutMs: 2_000,
    snapshotStallTimeoutMs: 2_000,
    snapshotTransfersMax: 4,
  });
}

/** What the links count, for the run's report. */
export type SnapshotLinkCounters = {
  /** Snapshot connections opened or tried (a transfer's first, and each resume's). */
  snapshotDials: number;
  /** Frames lost to a cut link or a dead node, each breaking its connection. */
  snapshotFramesLost: number;
};

/** One node incarnation's end of the snapshot links: send, receive, and die with the process. */
export interface SimSnapshotEndpoint {
  /** Streams a snapshot to `to` (see Transport.sendSnapshot). */
  sendSnapshot(
    to: NodeId,
    group: GroupId,
    meta: Uint8Array,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<void>;
  /** The process died: its connections break, its transfers fail, its senders give up. */
  close(): void;
}

/** The snapshot connections of one run, between the nodes of a {@link SimNetwork}. */
export class SimSnapshotLinks {
  readonly #scheduler: Scheduler;
  readonly #network: LinkState;
  /** The links' own randomness (frame latencies, transfer ids, backoff), apart from the network's. */
  readonly #prng: Prng;
  readonly #settings: TransportSettings;
  readonly #endpoints = new Map<number, Endpoint>();
  readonly #counters: SnapshotLinkCounters;

  /** Links over `network`; `seed` decides their randomness and settings; `counters` are kept up to date. */
  constructor(scheduler: Scheduler, network: LinkState, seed: number, counters: SnapshotLinkCounters) {
    this.#scheduler = scheduler;
    this.#network = network;
    this.#counters = counters;
    this.#prng = new Prng(seed);
    this.#settings = simSnapshotSettings(this.#prng.nextU32());
  }

  /** The chunk size of this run (for reports). */
  get chunkBytesMax(): number {
    return this.#settings.snapshotChunkBytesMax;
  }

  /**
   * Opens the endpoint of a new incarnation of `node` (closing the previous one), handing every
   * snapshot stream that arrives to `handler`.
   */
  endpoint(node: number, handler: (incoming: IncomingSnapshot) => void): SimSnapshotEndpoint {
    this.#endpoints.get(node)?.close();
    const endpoint = new Endpoint(node, this.#env(), this.#settings, handler, (from, to, handlers) =>
      this.#dial(from, to, handlers),
    );
    this.#endpoints.set(node, endpoint);
    return endpoint;
  }

  #env(): TransportEnv {
    const scheduler = this.#scheduler;
    return {
      nowMs: () => scheduler.nowMs,
      setTimer: (delayMs, callback): TimerHandle => {
        const id = scheduler.after(delayMs, callback, "snapshot timer");
        return { cancel: () => void scheduler.cancel(id) };
      },
      below: (bound) => this.#prng.below(bound),
    };
  }

  #alive(node: number): Endpoint | undefined {
    const endpoint = this.#endpoints.get(node);
    return endpoint === undefined || endpoint.closed ? undefined : endpoint;
  }

  /** A dial: one round trip over the link (the handshake), then `to`'s receiver takes the connection. */
  #dial(from: number, to: number, handlers: FrameConnectionHandlers): Promise<FrameLink> {
    this.#counters.snapshotDials++;
    return new Promise((resolve, reject) => {
      const lost = (): void =>
        reject(new TransportError("ERR_CONNECTION_LOST", `node ${to} is unreachable for a snapshot`));
      const there = this.#wire(from, to);
      const back = this.#wire(to, from);
      there(
        () =>
          back(() => {
            const source = this.#alive(from);
            const target = this.#alive(to);
            if (source === undefined || target === undefined) {
              lost();
              return;
            }
            const { dialler, acceptor } = MemoryConnection.pair(
              handlers,
              there,
              back,
              this.#settings.frameBytesMax,
            );
            source.own(dialler);
            target.accept(from, acceptor);
            resolve(dialler);
          }, lost),
        lost,
      );
    });
  }

  /** One direction of a connection: in order, the link's latency per send, lost when cut or dead. */
  #wire(from: number, to: number): ConnectionWire {
    let lastMs = 0;
    return (deliver, lost) => {
      const [minMs, maxMs] = this.#network.linkLatencyRange(from, to);
      const atMs = Math.max(this.#scheduler.nowMs + this.#prng.range(minMs, maxMs), lastMs);
      lastMs = atMs;
      this.#scheduler.at(
        atMs,
        () => {
          const up = !this.#network.isBlocked(from, to) && this.#alive(from) && this.#alive(to);
          if (up) {
            deliver();
            return;
          }
          this.#counters.snapshotFramesLost++;
          lost();
        },
        `snapshot frame ${from}->${to}`,
      );
    };
  }
}

type Dial = (from: number, to: number, handlers: FrameConnectionHandlers) => Promise<FrameLink>;

class Endpoint implements SimSnapshotEndpoint {
  readonly #node: number;
  readonly #env: TransportEnv;
  readonly #settings: TransportSettings;
  readonly #dial: Dial;
  readonly #receiver: SnapshotReceiver;
  readonly #connections = new Set<FrameLink>();
  readonly #sleepers: Sleepers;
  #closed = false;

  constructor(
    node: number,
    env: TransportEnv,
    settings: TransportSettings,
    handler: (incoming: IncomingSnapshot) => void,
    dial: Dial,
  ) {
    this.#node = node;
    this.#env = env;
    this.#settings = settings;
    this.#dial = dial;
    this.#sleepers = new Sleepers(env, () => this.#closed);
    this.#receiver = new SnapshotReceiver({
      env,
      settings,
      handler: () => (this.#closed ? undefined : handler),
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Keeps a connection end of this process, to break it when the process dies. */
  own(conn: FrameLink): void {
    for (const c of this.#connections) if (c.closed) this.#connections.delete(c);
    this.#connections.add(conn);
  }

  accept(from: number, conn: FrameLink): void {
    this.own(conn);
    this.#receiver.accept(nodeId(from), conn);
  }

  sendSnapshot(
    to: NodeId,
    group: GroupId,
    meta: Uint8Array,
    chunks: AsyncIterable<Uint8Array>,
  ): Promise<void> {
    if (this.#closed) return Promise.reject(new TransportError("ERR_TRANSPORT_CLOSED", "the sender died"));
    return sendSnapshotStream(
      {
        env: this.#env,
        settings: this.#settings,
        dialSnapshot: (peer, handlers) => this.#dial(this.#node, peer, handlers),
        sleep: (delayMs) => this.#sleepers.sleep(delayMs),
        isClosed: () => this.#closed,
      },
      to,
      group,
      meta,
      chunks,
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Connections first: a dead process says nothing more (no abort frames); peers see the break.
    for (const conn of this.#connections)
      conn.close(new TransportError("ERR_TRANSPORT_CLOSED", "process died"));
    this.#connections.clear();
    this.#receiver.close();
    this.#sleepers.wakeAll();
  }
}
