// Axon's public KV routes, answered in Axon's own shapes so its README commands and its browser
// dashboard work unchanged: PUT /kv/{key} {"value": "<string>"}, GET /kv/{key}, DELETE /kv/{key}
// and GET /kv. Values are strings stored as their UTF-8 bytes and returned exactly as stored (the
// text "42" stays the text "42"). Unlike Axon, DELETE works on every node (the service hands it to
// the leader), an empty value is allowed, and GET /kv is a linearizable read of the whole cluster's
// state, bounded: past one page it refuses and names the paged /v1/kv route instead of cutting.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyReply } from "fastify";
import { Type } from "typebox";
import { type ErrorCode, isCairnError, type KvService } from "../../service/index.js";
import { httpStatusOf } from "./error-status.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Axon's error body: a bare message, with Cairn's stable code beside it for clients that look. */
export interface AxonErrorBody {
  readonly error: string;
  readonly code: ErrorCode;
}

/** Sends an Axon-shaped error for a CairnError; anything else propagates to the app's handler. */
function sendAxonError(reply: FastifyReply, error: unknown): FastifyReply {
  if (!isCairnError(error)) throw error;
  const body: AxonErrorBody = { error: error.message, code: error.code };
  return reply.status(httpStatusOf[error.code]).send(body);
}

/** Registers Axon's /kv routes. */
export function registerAxonRoutes(fastify: FastifyInstance, kv: KvService): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const KeyParams = Type.Object({ key: Type.String() });

  app.put(
    "/kv/:key",
    { schema: { summary: "Write a key (Axon)", params: KeyParams, body: Type.Unknown() } },
    async (request, reply) => {
      const body = request.body;
      const value =
        typeof body === "object" && body !== null && "value" in body
          ? (body as { readonly value: unknown }).value
          : undefined;
      if (typeof value !== "string") {
        return reply.status(400).send({
          error: 'body must be {"value": "<string>"}',
          code: "ERR_BAD_REQUEST",
        } satisfies AxonErrorBody);
      }
      try {
        await kv.put(encoder.encode(request.params.key), encoder.encode(value));
      } catch (error) {
        return sendAxonError(reply, error);
      }
      return { status: "success" };
    },
  );

  app.get(
    "/kv/:key",
    { schema: { summary: "Read a key (Axon)", params: KeyParams } },
    async (request, reply) => {
      let value: Uint8Array | undefined;
      try {
        value = (await kv.get(encoder.encode(request.params.key))).record?.value;
      } catch (error) {
        return sendAxonError(reply, error);
      }
      if (value === undefined) {
        return reply
          .status(404)
          .send({ error: "key not found", code: "ERR_NOT_FOUND" } satisfies AxonErrorBody);
      }
      return { key: request.params.key, value: decoder.decode(value) };
    },
  );

  app.delete(
    "/kv/:key",
    { schema: { summary: "Delete a key (Axon)", params: KeyParams } },
    async (request, reply) => {
      try {
        await kv.delete(encoder.encode(request.params.key));
      } catch (error) {
        return sendAxonError(reply, error);
      }
      return { status: "success" };
    },
  );

  app.get(
    "/kv",
    { schema: { summary: "Every key and value, up to one page (Axon)" } },
    async (_request, reply) => {
      const max = kv.limits.rangeLimitMax;
      let page: Awaited<ReturnType<KvService["range"]>>;
      try {
        page = await kv.range({ prefix: new Uint8Array(0), limit: max });
      } catch (error) {
        return sendAxonError(reply, error);
      }
      if (page.next !== undefined) {
        return reply.status(413).send({
          error: `more than ${max} keys: page through GET /v1/kv?limit=${max} and its next token instead`,
          code: "ERR_TOO_LARGE",
        } satisfies AxonErrorBody);
      }
      // fromEntries defines own properties, so a key named __proto__ is a key like any other.
      return Object.fromEntries(
        page.items.map((item) => [decoder.decode(item.key), decoder.decode(item.value)]),
      );
    },
  );
}
