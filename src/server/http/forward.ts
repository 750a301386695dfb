// Forwarding a client's write from a follower to the leader, so a client may talk to any node.
// One hop only: a forwarded request that reaches a node that does not lead either is answered
// ERR_NOT_LEADER rather than forwarded again, so a stale view of the leader cannot loop.
import type { FastifyReply, FastifyRequest } from "fastify";
import { Pool } from "undici";
import { CairnError } from "../../service/errors.js";

/** Where writes must go. */
export interface LeaderView {
  isLeader(): boolean;
  /** The leader's HTTP base URL, when known. */
  leaderHttpUrl(): string | undefined;
}

/** The header marking a request as forwarded once. */
export const forwardedHeader = "x-cairn-forwarded";

const hopHeaders = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "host",
  "content-length",
  "upgrade",
]);

/** Forwards requests to the leader over pooled keep-alive connections. */
export class Forwarder {
  readonly #view: LeaderView;
  readonly #pools = new Map<string, Pool>();
  readonly #timeoutMs: number;

  /** Creates a forwarder; `timeoutMs` bounds one forwarded request. */
  constructor(view: LeaderView, timeoutMs = 10_000) {
    this.#view = view;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * A preHandler: does nothing on the leader; on a follower, sends the request to the leader and
   * answers with the leader's response. Callback-style rather than async: on the leader, which
   * serves every write, it then costs no promise and no extra turn of the microtask queue.
   */
  readonly preHandler = (
    request: FastifyRequest,
    reply: FastifyReply,
    done: (error?: Error) => void,
  ): void => {
    if (this.#view.isLeader()) {
      done();
      return;
    }
    // On success the leader's answer has been sent: fastify must not run the handler, so no done().
    this.#forward(request, reply).catch((error: unknown) =>
      done(error instanceof Error ? error : new Error(String(error))),
    );
  };

  async #forward(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (request.headers[forwardedHeader] !== undefined) {
      throw new CairnError(
        "ERR_NOT_LEADER",
        "this node is not the leader (the request was already forwarded once)",
      );
    }
    const url = this.#view.leaderHttpUrl();
    if (url === undefined)
      throw new CairnError("ERR_UNAVAILABLE", "no leader is known right now; retry shortly");
    const headers: Record<string, string> = { [forwardedHeader]: "1" };
    for (const [name, value] of Object.entries(request.headers)) {
      if (typeof value === "string" && !hopHeaders.has(name)) headers[name] = value;
    }
    let pool = this.#pools.get(url);
    if (pool === undefined) {
      pool = new Pool(url, { connections: 32, pipelining: 1 });
      this.#pools.set(url, pool);
    }
    let response: Awaited<ReturnType<Pool["request"]>>;
    try {
      response = await pool.request({
        method: request.method as "PUT",
        path: request.url,
        headers,
        ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
    } catch (cause) {
      // The leader may or may not have received it: for a write that is an unknown outcome.
      throw new CairnError(
        "ERR_TIMEOUT",
        `forwarding to the leader failed; the outcome is unknown`,
        {},
        { cause },
      );
    }
    const body = await response.body.text();
    reply.status(response.statusCode).header("content-type", "application/json; charset=utf-8");
    await reply.send(body);
  }

  /** Closes every pooled connection. */
  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
    this.#pools.clear();
  }
}
