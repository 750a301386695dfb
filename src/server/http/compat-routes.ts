// Routes for users of the systems Cairn replaces, so their scripts keep working unchanged:
// POST /send and GET /messages on a default stream, GET /status, GET /heartbeat, and
// PUT/GET/DELETE /kv/{key} with {"value": ...} plus GET /kv. They map onto the same services as
// /v1 (same replication, same guarantees, Idempotency-Key on every write); errors keep the one
// Cairn error body.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { CairnError, isCairnError, type KvService, type StreamService } from "../../service/index.js";
import { idempotencyKeyOf } from "./idempotency.js";

/** The stream behind POST /send and GET /messages. */
export const compatStreamName = "messages";

/** What the compatibility routes serve. */
export interface CompatRoutesOptions {
  readonly kv: KvService;
  readonly streams?: StreamService;
  /** The cluster status, for GET /status; without it /status reports only liveness. */
  readonly status?: () => unknown;
  /** This node's name, for /heartbeat. */
  readonly nodeName?: string;
}

const textDecoder = new TextDecoder();

/** A stored value back as JSON: the value itself if it parses, else the text. */
function jsonOf(bytes: Uint8Array): unknown {
  const text = textDecoder.decode(bytes);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Registers the compatibility routes. */
export function registerCompatRoutes(fastify: FastifyInstance, options: CompatRoutesOptions): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { streams } = options;

  app.get("/heartbeat", { schema: { summary: "Liveness (compatibility)" } }, async () => ({
    status: "alive",
    ...(options.nodeName !== undefined ? { node: options.nodeName } : {}),
    timestampMs: Date.now(),
  }));

  app.get("/status", { schema: { summary: "Node and cluster status (compatibility)" } }, async () => ({
    status: "ok",
    ...(options.status !== undefined ? { cluster: options.status() } : {}),
  }));

  if (streams !== undefined) {
    app.post(
      "/send",
      {
        schema: {
          summary: "Append a JSON message to the default stream (compatibility)",
          body: Type.Unknown(),
        },
      },
      async (request) => {
        if (request.body === undefined) throw new CairnError("ERR_BAD_REQUEST", "send a JSON message");
        const payload = new TextEncoder().encode(JSON.stringify(request.body));
        const idempotencyKey = idempotencyKeyOf(request.headers);
        // The default stream appears on first use, created by the append's own write.
        const ack = await streams.append(compatStreamName, { payload, createIfMissing: {} }, idempotencyKey);
        return { status: "ok", seq: ack.seq, id: ack.id, duplicate: ack.duplicate };
      },
    );

    app.get(
      "/messages",
      {
        schema: {
          summary: "Read the default stream (compatibility)",
          querystring: Type.Object({
            from: Type.Optional(Type.Integer({ minimum: 0 })),
            limit: Type.Optional(Type.Integer({ minimum: 1 })),
          }),
        },
      },
      async (request) => {
        const q = request.query;
        try {
          const page = await streams.read(compatStreamName, {
            ...(q.from !== undefined ? { from: q.from } : {}),
            // The seed answered every message: a full page, unless the caller asks for fewer.
            limit: q.limit ?? streams.limits.readLimitMax,
          });
          return {
            messages: page.messages.map((m) => ({
              seq: m.seq,
              message: jsonOf(m.payload),
              timestampMs: m.tsMs,
            })),
            count: page.messages.length,
            next: page.next,
          };
        } catch (error) {
          if (isCairnError(error) && error.code === "ERR_NOT_FOUND")
            return { messages: [], count: 0, next: 1 };
          throw error;
        }
      },
    );
  }
}
