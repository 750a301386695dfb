// The key-value endpoints of the HTTP API (/v1/kv): JSON in and out, values as UTF-8 text or base64,
// Idempotency-Key on writes, keys taken verbatim from the rest of the path (so they may contain "/").
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { Consistency, Encoding, KvPage, KvPutBody } from "../../api/index.js";
import { CairnError, type KvRecord, type KvService } from "../../service/index.js";
import { idempotencyKeyOf, writeConcernOf } from "./idempotency.js";

const textDecoder = new TextDecoder("utf-8", { fatal: true });
const textEncoder = new TextEncoder();
const lenientDecoder = new TextDecoder();

const PatchBody = Type.Object(
  { increment: Type.Union([Type.Integer(), Type.String({ pattern: "^-?[0-9]{1,19}$" })]) },
  { additionalProperties: false },
);

/** Decodes a client value by its encoding; bad base64 is ERR_BAD_REQUEST. */
export function decodeValue(value: string, encoding: "utf8" | "base64" | undefined): Uint8Array {
  if (encoding !== "base64") return textEncoder.encode(value);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 === 1) {
    throw new CairnError("ERR_BAD_REQUEST", "value is not valid base64");
  }
  return Buffer.from(value, "base64");
}

/** Presents bytes as UTF-8 text when they are valid UTF-8 and text was asked for, else base64. */
export function encodeValue(
  bytes: Uint8Array,
  wanted: "utf8" | "base64" | undefined,
): { value: string; encoding: "utf8" | "base64" } {
  if (wanted !== "base64") {
    try {
      return { value: textDecoder.decode(bytes), encoding: "utf8" };
    } catch {
      // Not text: fall through to base64 so no byte is lost.
    }
  }
  return { value: Buffer.from(bytes).toString("base64"), encoding: "base64" };
}

/** The key: the rest of the path after /v1/kv/ (fastify's wildcard parameter, already unescaped). */
function keyOf(params: unknown): Uint8Array {
  const key = typeof params === "object" && params !== null && "*" in params ? params["*"] : undefined;
  if (typeof key !== "string") throw new CairnError("ERR_BAD_REQUEST", "missing key");
  return textEncoder.encode(key);
}

function itemOf(key: Uint8Array, record: KvRecord, wanted: "utf8" | "base64" | undefined) {
  return {
    key: lenientDecoder.decode(key),
    ...encodeValue(record.value, wanted),
    revision: record.modRevision,
    createRevision: record.createRevision,
    version: record.version,
    ...(record.expireAtMs !== 0 ? { expireAtMs: record.expireAtMs } : {}),
  };
}

/** Registers the /v1/kv routes on `app`. */
export function registerKvRoutes(fastify: FastifyInstance, kv: KvService): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    "/v1/kv/*",
    {
      schema: {
        summary: "Read a key",
        querystring: Type.Object({
          consistency: Type.Optional(Consistency),
          encoding: Type.Optional(Encoding),
        }),
      },
    },
    async (request) => {
      const query = request.query;
      const key = keyOf(request.params);
      const result = await kv.get(key, query.consistency);
      if (result.record === undefined) {
        throw new CairnError("ERR_NOT_FOUND", "key not found", {
          revision: result.revision,
          ...(result.staleness !== undefined ? { staleness: result.staleness } : {}),
        });
      }
      return {
        ...itemOf(key, result.record, query.encoding),
        groupRevision: result.revision,
        ...(result.staleness !== undefined ? { staleness: result.staleness } : {}),
      };
    },
  );

  app.put(
    "/v1/kv/*",
    {
      schema: { summary: "Write a key", body: KvPutBody },
    },
    async (request) => {
      const body = request.body;
      const idempotencyKey = idempotencyKeyOf(request.headers);
      const ack = await kv
        .withWriteConcern(writeConcernOf(request.headers))
        .put(keyOf(request.params), decodeValue(body.value, body.encoding), {
          ...(body.ifRevision !== undefined ? { ifRevision: body.ifRevision } : {}),
          ...(body.ifAbsent !== undefined ? { ifAbsent: body.ifAbsent } : {}),
          ...(body.ttlMs !== undefined ? { ttlMs: body.ttlMs } : {}),
          ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
        });
      return ack;
    },
  );

  app.patch(
    "/v1/kv/*",
    {
      schema: { summary: "Atomically increment an integer value", body: PatchBody },
    },
    async (request) => {
      const body = request.body;
      if (typeof body.increment === "number" && !Number.isSafeInteger(body.increment)) {
        throw new CairnError("ERR_BAD_REQUEST", "increment beyond 2^53 must be sent as a decimal string");
      }
      const idempotencyKey = idempotencyKeyOf(request.headers);
      return kv
        .withWriteConcern(writeConcernOf(request.headers))
        .increment(
          keyOf(request.params),
          BigInt(body.increment),
          idempotencyKey !== undefined ? { idempotencyKey } : {},
        );
    },
  );

  app.delete(
    "/v1/kv/*",
    {
      schema: {
        summary: "Delete a key",
        querystring: Type.Object({ ifRevision: Type.Optional(Type.Integer({ minimum: 0 })) }),
      },
    },
    async (request) => {
      const query = request.query;
      const idempotencyKey = idempotencyKeyOf(request.headers);
      return kv.withWriteConcern(writeConcernOf(request.headers)).delete(keyOf(request.params), {
        ...(query.ifRevision !== undefined ? { ifRevision: query.ifRevision } : {}),
        ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      });
    },
  );

  app.get(
    "/v1/kv",
    {
      schema: {
        summary: "List keys by prefix or range, one page at a time",
        querystring: Type.Object({
          prefix: Type.Optional(Type.String()),
          start: Type.Optional(Type.String()),
          end: Type.Optional(Type.String()),
          limit: Type.Optional(Type.Integer({ minimum: 1 })),
          after: Type.Optional(Type.String({ description: "the `next` token of the previous page" })),
          consistency: Type.Optional(Consistency),
          encoding: Type.Optional(Encoding),
        }),
        response: { 200: KvPage },
      },
    },
    async (request) => {
      const q = request.query;
      if (q.prefix !== undefined && (q.start !== undefined || q.end !== undefined)) {
        throw new CairnError("ERR_BAD_REQUEST", "give either prefix or start/end, not both");
      }
      const encoder = new TextEncoder();
      const limit = q.limit !== undefined ? { limit: q.limit } : {};
      const after = q.after !== undefined ? decodeToken(q.after) : undefined;
      const page = await kv.range(
        q.start !== undefined || q.end !== undefined
          ? {
              start: encoder.encode(q.start ?? ""),
              ...(q.end !== undefined ? { end: encoder.encode(q.end) } : {}),
              ...limit,
              ...(after !== undefined ? { after } : {}),
            }
          : { prefix: encoder.encode(q.prefix ?? ""), ...limit, ...(after !== undefined ? { after } : {}) },
        q.consistency,
      );
      return {
        items: page.items.map((item) => itemOf(item.key, item, q.encoding)),
        next: page.next === undefined ? null : Buffer.from(page.next).toString("base64url"),
        ...(page.staleness !== undefined ? { staleness: page.staleness } : {}),
      };
    },
  );
}

function decodeToken(token: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(token))
    throw new CairnError("ERR_BAD_REQUEST", "after is not a token from `next`");
  return Buffer.from(token, "base64url");
}
