// Requests from one node to another over the peer transport, with replies: how a follower hands a
// client's write to its leader and waits for the outcome. The transport is best effort, so a call
// tells apart what it can: a call that never left this node (no connection to the peer) is refused
// cleanly (ERR_UNAVAILABLE: nothing was done, retry anywhere), while a call that left and got no
// answer (the connection broke, the reply was lost, the peer did not answer in time) has an unknown
// outcome (ERR_TIMEOUT: retry with the same idempotency key).
import { FifoMap } from "toad-cache";
import type { NodeId } from "../raft/index.js";
import type { Transport } from "../transport/index.js";
import type { Cancel, Env } from "./env.js";
import { NodeError } from "./node-error.js";
import { type CallStatus, callBodyBytesMax, type NodeWireMessage } from "./node-wire.js";

/**
 * Answers a call from a peer. Resolves with the answer's body; a rejection is sent back as a
 * failure with an unknown outcome, since the handler may have done part of its work.
 */
export type CallHandler = (from: NodeId, body: Uint8Array) => Promise<Uint8Array>;

interface PendingCall {
  readonly to: NodeId;
  readonly resolve: (body: Uint8Array) => void;
  readonly reject: (error: NodeError) => void;
  readonly cancelTimer: Cancel;
}

/**
 * Calls this node remembers (from all its peers, by sender, run and sequence) to drop a copy that
 * arrives again. TCP never delivers a frame twice, but
 * a transport that may (the simulator's network duplicates messages) would run a call twice, and
 * the second run's answer can differ from the first's (an ack riding a fetch, which carries no
 * idempotency key, answers "not pending" the second time although it took effect).
 */
const callsRememberedMax = 4096;

const textDecoder = new TextDecoder();
const textEncoder = new TextEncoder();

/** Calls to peers and the answers to theirs, over one node's transport. */
export class PeerCalls {
  readonly #transport: Transport<NodeWireMessage>;
  readonly #env: Env;
  /**
   * A nonce drawn at start, carried by every call and its reply: a reply to a call of an earlier
   * run of this node (same sequence numbers, new process) can never settle a call of this one.
   */
  readonly #run: number;
  #seq = 0;
  readonly #pending = new Map<number, PendingCall>();
  #handler: CallHandler | undefined;
  /** The calls that arrived lately, by sender, run and sequence: a copy of one is dropped. */
  readonly #received = new FifoMap<true>(callsRememberedMax);
  #closed = false;
  /** The peer `send` is running for, so a drop reported during it is known to be this call's. */
  #sendingTo: NodeId | undefined;
  #droppedDuringSend = false;

  /** Creates the endpoint; the host routes calls, replies and unreachable reports to it. */
  constructor(transport: Transport<NodeWireMessage>, env: Env) {
    this.#transport = transport;
    this.#env = env;
    this.#run = env.random.below(2 ** 31) + 1;
  }

  /** Sets the handler of arriving calls. Without one, calls are refused (nothing was done). */
  onCall(handler: CallHandler): void {
    this.#handler = handler;
  }

  /** How many calls wait for a reply (for tests and metrics). */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Sends `body` to `to` and resolves with its handler's answer. Rejects with a NodeError:
   * ERR_UNAVAILABLE when the call never left (no connection to `to`) or `to` refused it without
   * acting; ERR_TIMEOUT when it left and no answer came within `timeoutMs`, the connection broke
   * meanwhile, or the handler failed part-way (the outcome is unknown); ERR_SHUTTING_DOWN.
   */
  call(to: NodeId, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (body.length > callBodyBytesMax)
      throw new RangeError(`call body of ${body.length} bytes exceeds ${callBodyBytesMax}`);
    if (this.#closed) return Promise.reject(new NodeError("ERR_SHUTTING_DOWN", "the node is stopping"));
    if (!this.#transport.isConnected(to)) {
      return Promise.reject(
        new NodeError("ERR_UNAVAILABLE", `node ${to} cannot be reached right now; nothing was sent`, to),
      );
    }
    const seq = ++this.#seq;
    this.#sendingTo = to;
    this.#droppedDuringSend = false;
    try {
      this.#transport.send(to, { kind: "call", run: this.#run, seq, body });
    } finally {
      this.#sendingTo = undefined;
    }
    if (this.#droppedDuringSend) {
      return Promise.reject(
        new NodeError("ERR_UNAVAILABLE", `the queue to node ${to} is full; nothing was sent`, to),
      );
    }
    this.#transport.flush();
    return new Promise<Uint8Array>((resolve, reject) => {
      const cancelTimer = this.#env.after(timeoutMs, () => {
        if (!this.#pending.delete(seq)) return;
        reject(new NodeError("ERR_TIMEOUT", `node ${to} did not answer in time; the outcome is unknown`));
      });
      this.#pending.set(seq, { to, resolve, reject, cancelTimer });
    });
  }

  /**
   * The transport could not reach `peer` or dropped a message to it: every call waiting on it has
   * lost its way back or may have lost its way there, so its outcome is unknown.
   */
  peerUnreachable(peer: NodeId): void {
    if (this.#sendingTo === peer) {
      this.#droppedDuringSend = true;
      return;
    }
    for (const [seq, pending] of this.#pending) {
      if (pending.to !== peer) continue;
      this.#settle(seq, pending);
      pending.reject(
        new NodeError("ERR_TIMEOUT", `the connection to node ${peer} broke; the outcome is unknown`),
      );
    }
  }

  /** A call arrived from `from`: runs the handler and sends its answer back. */
  receiveCall(from: NodeId, run: number, seq: number, body: Uint8Array): void {
    const key = `${from}:${run}:${seq}`;
    // A copy of a call that arrived before: the first one's answer is (or will be) on its way.
    if (this.#received.get(key) !== undefined) return;
    this.#received.set(key, true);
    const handler = this.#handler;
    if (this.#closed || handler === undefined) {
      this.#reply(from, run, seq, "refused", textEncoder.encode("this node takes no calls"));
      return;
    }
    handler(from, body).then(
      (answer) => {
        if (answer.length > callBodyBytesMax) {
          this.#reply(from, run, seq, "failed", textEncoder.encode(`an answer of ${answer.length} bytes`));
        } else {
          this.#reply(from, run, seq, "answered", answer);
        }
      },
      (error: unknown) => {
        const reason = error instanceof Error ? error.message : String(error);
        this.#reply(from, run, seq, "failed", textEncoder.encode(reason));
      },
    );
  }

  /** A reply arrived from `from`; one that matches no waiting call of this run is ignored. */
  receiveReply(from: NodeId, run: number, seq: number, status: CallStatus, body: Uint8Array): void {
    if (run !== this.#run) return;
    const pending = this.#pending.get(seq);
    if (pending === undefined || pending.to !== from) return;
    this.#settle(seq, pending);
    switch (status) {
      case "answered":
        pending.resolve(body);
        return;
      case "refused":
        pending.reject(new NodeError("ERR_UNAVAILABLE", `node ${from} refused: ${textDecoder.decode(body)}`));
        return;
      case "failed":
        pending.reject(
          new NodeError(
            "ERR_TIMEOUT",
            `node ${from} failed part-way (${textDecoder.decode(body)}); the outcome is unknown`,
          ),
        );
        return;
    }
  }

  /** Refuses new calls and fails the waiting ones: their outcome is unknown. */
  close(): void {
    this.#closed = true;
    for (const [seq, pending] of this.#pending) {
      this.#settle(seq, pending);
      pending.reject(new NodeError("ERR_SHUTTING_DOWN", "the node is stopping; the outcome is unknown"));
    }
  }

  #settle(seq: number, pending: PendingCall): void {
    this.#pending.delete(seq);
    pending.cancelTimer();
  }

  #reply(to: NodeId, run: number, seq: number, status: CallStatus, body: Uint8Array): void {
    // A reply that cannot be sent is lost like any message: the caller's timer reports it.
    this.#transport.send(to, { kind: "reply", run, seq, status, body });
    this.#transport.flush();
  }
}
