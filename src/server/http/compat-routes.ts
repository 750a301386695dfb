// The aiohttp messaging node's routes (the seed-era and main shapes), so its Postman collection,
// its failover client and its dashboard work unchanged: POST /send, GET /messages, GET /status,
// GET /heartbeat, POST /sync and POST /replicate. Messages live in one Cairn stream; `seq` is the
// stream sequence (the same on every node, unlike the seed's per-node numbering) and `msg_id` is
// the stream's deduplication id, so a retried /send or a /replicate of a stored message answers
// the original. Only committed messages are ever shown. Errors keep the seed's bodies.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyReply } from "fastify";
import { Type } from "typebox";
import {
  type ClusterStatus,
  type ErrorCode,
  isCairnError,
  type StreamMessage,
  type StreamService,
} from "../../service/index.js";
import { errorBody, httpStatusOf } from "./error-status.js";

/** The stream behind POST /send and GET /messages. */
export const compatStreamName = "messages";

/** What the compatibility routes serve. */
export interface CompatRoutesOptions {
  readonly streams?: StreamService;
  /** The cluster status, for GET /status; without it /status reports only this node. */
  readonly status?: () => ClusterStatus;
  /** This node's name, reported as node_id. */
  readonly nodeName?: string;
  /** This node's HTTP port, reported as port. */
  readonly port?: number;
}

/** One message as the seed stored it. */
interface SeedMessage {
  readonly msg_id: string;
  readonly sender: string;
  readonly recipient: string;
  readonly payload: string;
  readonly ts: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Codes after which the write was certainly not made: the seed's 503 "quorum not achieved" is the
 * honest answer. Other codes keep Cairn's error body.
 */
const refusedCodes: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "ERR_UNAVAILABLE",
  "ERR_NOT_LEADER",
  "ERR_SHUTTING_DOWN",
  "ERR_STORAGE_FAILED",
  "ERR_STATE_CORRUPT",
  "ERR_TIMEOUT",
]);

function sendFailure(reply: FastifyReply, error: unknown): FastifyReply {
  if (!isCairnError(error)) throw error;
  if (refusedCodes.has(error.code)) {
    return reply.status(503).send({ status: "error", reason: "replication quorum not achieved" });
  }
  return reply.status(httpStatusOf[error.code]).send(errorBody(error.code, error.message, error.details));
}

function text(value: unknown, fallback: string): string {
  return typeof value === "string"
    ? value
    : value === undefined || value === null
      ? fallback
      : JSON.stringify(value);
}

/** A message in the seed's shape, from a request body (defaults as the seed's). */
function seedMessageOf(body: Record<string, unknown>, nowMs: number): SeedMessage {
  const ts = body["ts"];
  return {
    msg_id:
      typeof body["msg_id"] === "string" && body["msg_id"] !== "" ? body["msg_id"] : crypto.randomUUID(),
    sender: text(body["sender"], "unknown"),
    recipient: text(body["recipient"], "all"),
    payload: text(body["payload"], ""),
    ts: typeof ts === "number" && Number.isFinite(ts) ? ts : nowMs / 1000,
  };
}

function decodeStored(message: StreamMessage): (SeedMessage & { seq: number }) | undefined {
  try {
    const value = JSON.parse(decoder.decode(message.payload)) as Partial<SeedMessage>;
    if (typeof value.msg_id !== "string") return undefined;
    return {
      seq: message.seq,
      msg_id: value.msg_id,
      sender: value.sender ?? "unknown",
      recipient: value.recipient ?? "all",
      payload: value.payload ?? "",
      ts: value.ts ?? message.tsMs / 1000,
    };
  } catch {
    // Written to the stream by another protocol in another shape: not a seed message.
    return undefined;
  }
}

function asObject(body: unknown): Record<string, unknown> | undefined {
  return typeof body === "object" && body !== null && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : undefined;
}

/** Registers the messaging node's routes. */
export function registerCompatRoutes(fastify: FastifyInstance, options: CompatRoutesOptions): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const nodeId = options.nodeName ?? "cairn";

  app.get("/heartbeat", { schema: { summary: "Liveness (messaging node)" } }, async () => ({
    status: "ok",
    node_id: nodeId,
    time: Date.now() / 1000,
  }));

  app.get("/status", { schema: { summary: "Node status (messaging node)" } }, async (request) => {
    const status = options.status?.();
    const peers = (status?.members ?? []).filter((m) => m.id !== status?.self.id);
    const leader = status?.leader ?? null;
    return {
      node_id: nodeId,
      port: options.port ?? request.socket.localPort ?? null,
      peers: peers.map((m) => m.httpUrl ?? `node-${m.id}`),
      peer_status: Object.fromEntries(
        peers.map((m) => [
          m.httpUrl ?? `node-${m.id}`,
          // Cairn knows liveness only on the leader (its replication progress); elsewhere, unknown.
          { last_ok: null, alive: m.progress?.recentActive ?? m.isLeader },
        ]),
      ),
      // Every write is committed on a majority before it is acknowledged.
      replication_mode: "sync_quorum",
      quorum: Math.floor((status?.members.filter((m) => m.voter).length ?? 1) / 2) + 1,
      committed_seq: status?.commitIndex ?? 0,
      commit_index: status?.commitIndex ?? 0,
      consensus: {
        role: status?.self.role ?? "unknown",
        current_term: status?.term ?? 0,
        voted_for: null,
        leader_id: leader?.name ?? (leader !== null ? String(leader.id) : null),
        leader_url: leader?.httpUrl ?? null,
      },
    };
  });

  const streams = options.streams;
  if (streams === undefined) return;

  const append = async (reply: FastifyReply, message: SeedMessage) => {
    // Refuse before proposing when this node knows no leader: such a write is never made, so it
    // can never reappear (the seed kept a refused write and spread it later).
    if (options.status !== undefined && options.status().leader === null) {
      return reply.status(503).send({ status: "error", reason: "replication quorum not achieved" });
    }
    try {
      const ack = await streams.append(compatStreamName, {
        payload: encoder.encode(JSON.stringify(message)),
        msgId: message.msg_id,
        // msg_id deduplicates for a day (the most a stream allows): the seed's INSERT OR IGNORE
        // had no window, so a retry later than that is stored again (docs/compat.md).
        createIfMissing: { dedupeWindowMs: 24 * 3600 * 1000 },
      });
      return { status: "ok", seq: ack.seq, msg_id: message.msg_id };
    } catch (error) {
      return sendFailure(reply, error);
    }
  };

  app.post(
    "/send",
    { schema: { summary: "Send a message (messaging node)", body: Type.Unknown() } },
    async (request, reply) => {
      const body = asObject(request.body);
      if (body === undefined) return reply.status(400).send({ status: "bad_request" });
      return append(reply, seedMessageOf(body, Date.now()));
    },
  );

  app.post(
    "/replicate",
    { schema: { summary: "Append a message by id, idempotently (messaging node)", body: Type.Unknown() } },
    async (request, reply) => {
      const msg = asObject(asObject(request.body)?.["msg"]);
      if (msg === undefined || typeof msg["msg_id"] !== "string") {
        return reply.status(400).send({ status: "bad_request" });
      }
      return append(reply, seedMessageOf(msg, Date.now()));
    },
  );

  /** Committed messages after `after`, filtered, at most `limit`, scanning a bounded number of pages. */
  const readAfter = async (
    after: number,
    limit: number,
    filter: (m: SeedMessage) => boolean,
  ): Promise<{ messages: (SeedMessage & { seq: number })[]; next: number }> => {
    const out: (SeedMessage & { seq: number })[] = [];
    let from = after + 1;
    let scanned = after;
    for (let pages = 0; pages < 10 && out.length < limit; pages++) {
      let page: Awaited<ReturnType<StreamService["read"]>>;
      try {
        page = await streams.read(compatStreamName, { from, limit: streams.limits.readLimitMax });
      } catch (error) {
        if (isCairnError(error) && error.code === "ERR_NOT_FOUND") break;
        throw error;
      }
      for (const m of page.messages) {
        scanned = m.seq;
        const seed = decodeStored(m);
        if (seed !== undefined && filter(seed)) out.push(seed);
        if (out.length === limit) break;
      }
      if (page.messages.length === 0) break;
      from = scanned + 1;
    }
    return {
      messages: out,
      next: out.length === limit ? (out.at(-1)?.seq ?? after) : Math.max(after, scanned),
    };
  };

  app.get(
    "/messages",
    {
      schema: {
        summary: "Read committed messages (messaging node)",
        querystring: Type.Object({
          limit: Type.Optional(Type.String()),
          after: Type.Optional(Type.String()),
          sender: Type.Optional(Type.String()),
          recipient: Type.Optional(Type.String()),
        }),
      },
    },
    async (request, reply) => {
      const q = request.query;
      const limit = q.limit === undefined ? 50 : Number(q.limit);
      if (!Number.isSafeInteger(limit) || limit <= 0 || !/^\d+$/.test(q.limit ?? "50")) {
        return reply.status(400).send({ status: "bad_request", reason: "limit must be positive integer" });
      }
      const after = q.after === undefined ? 0 : Number(q.after);
      if (!/^-?\d+$/.test(q.after ?? "0") || !Number.isSafeInteger(after)) {
        return reply.status(400).send({ status: "bad_request", reason: "after must be integer" });
      }
      const bounded = Math.min(limit, streams.limits.readLimitMax);
      try {
        const page = await readAfter(
          Math.max(0, after),
          bounded,
          (m) =>
            (q.sender === undefined || m.sender === q.sender) &&
            (q.recipient === undefined || m.recipient === q.recipient),
        );
        return { messages: page.messages, next_after: page.messages.at(-1)?.seq ?? after };
      } catch (error) {
        return sendFailure(reply, error);
      }
    },
  );

  app.post(
    "/sync",
    { schema: { summary: "Committed messages after a sequence (messaging node)", body: Type.Unknown() } },
    async (request, reply) => {
      const since = asObject(request.body)?.["since"] ?? 0;
      if (typeof since !== "number" || !Number.isSafeInteger(since)) {
        return reply.status(400).send({ status: "bad_request", reason: "since must be integer" });
      }
      try {
        const page = await readAfter(Math.max(0, since), streams.limits.readLimitMax, () => true);
        return { messages: page.messages };
      } catch (error) {
        return sendFailure(reply, error);
      }
    },
  );
}
