// The stream and consumer-group endpoints of the HTTP API (/v1/streams): JSON in and out, payloads
// as UTF-8 text or base64, long-polls with waitMs, server-sent events resumable with Last-Event-ID,
// Idempotency-Key on every write (fetch included), each answering `duplicate`. Writes (fetch
// included: it changes delivery state) go to the leader. Unknown body fields and query parameters
// are refused, so a misspelt option fails loudly instead of being ignored.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type } from "typebox";
import {
  AppendBatchBody,
  type AppendBatchItem,
  AppendBody,
  AppendQuery,
  ConsistencyQuery,
  StreamCreateBody as CreateBody,
  EncodingQuery,
  type FetchAnswer,
  FetchBody,
  GroupBody,
  GroupUpdateBody,
  NoQuery,
  ReadOneQuery,
  SettleBody,
  StreamEventsQuery,
  StreamReadQuery,
  StreamUpdateBody as UpdateBody,
} from "../../api/index.js";
import {
  type BatchAppendInput,
  CairnError,
  type DeliveredMessage,
  type Header,
  isCairnError,
  isErrorCode,
  type StartAt,
  type StreamMessage,
  type StreamService,
} from "../../service/index.js";
import { errorBody } from "./error-status.js";
import { idempotencyKeyOf, writeConcernOf } from "./idempotency.js";
import { decodeValue, encodeValue } from "./kv-routes.js";

const NameParams = Type.Object({ name: Type.String() });
const MessageParams = Type.Object({ name: Type.String(), seq: Type.Integer({ minimum: 1 }) });
const GroupParams = Type.Object({ name: Type.String(), group: Type.String() });

const SettleParams = Type.Object({
  name: Type.String(),
  group: Type.String(),
  action: Type.Union([
    Type.Literal("ack"),
    Type.Literal("nack"),
    Type.Literal("extend"),
    Type.Literal("term"),
  ]),
});

type Wanted = "utf8" | "base64" | undefined;

function headersOf(headers: readonly Header[]): Record<string, string> {
  return Object.fromEntries(headers);
}

/** A stored message as the API presents it. */
export function presentMessage(m: StreamMessage, wanted: Wanted) {
  const { value, encoding } = encodeValue(m.payload, wanted);
  return {
    seq: m.seq,
    id: m.id,
    tsMs: m.tsMs,
    payload: value,
    encoding,
    headers: headersOf(m.headers),
    ...(m.key !== undefined ? { key: m.key } : {}),
  };
}

function presentDelivered(m: DeliveredMessage, wanted: Wanted) {
  return { ...presentMessage(m, wanted), deliveries: m.deliveries };
}

function startAtOf(
  value: "first" | "last" | "new" | { seq: number } | { timeMs: number } | undefined,
): StartAt {
  if (value === undefined) return { kind: "first" };
  if (typeof value === "string") return { kind: value };
  return "seq" in value ? { kind: "seq", seq: value.seq } : { kind: "time", timeMs: value.timeMs };
}

/** A message of an append's body as the service takes it. */
function appendInputOf(body: AppendBody): BatchAppendInput {
  return {
    payload: decodeValue(body.payload, body.encoding),
    headers: Object.entries(body.headers ?? {}),
    ...(body.key !== undefined ? { key: body.key } : {}),
    ...(body.id !== undefined ? { msgId: body.id } : {}),
    ...(body.expectedLastSeq !== undefined ? { expectedLastSeq: body.expectedLastSeq } : {}),
  };
}

/** An AbortSignal that fires when the client goes away before the response is sent. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => controller.abort());
  return controller.signal;
}

/** Registers the /v1/streams routes on `app`. */
export function registerStreamRoutes(fastify: FastifyInstance, streams: StreamService): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  /** The service that makes a request's writes, under its Cairn-Write-Concern. */
  const writer = (request: FastifyRequest) => streams.withWriteConcern(writeConcernOf(request.headers));

  app.post(
    "/v1/streams",
    { schema: { summary: "Create a stream", body: CreateBody, querystring: NoQuery } },
    async (request) => {
      const { name, ...options } = request.body;
      return writer(request).create(name, options, idempotencyKeyOf(request.headers));
    },
  );

  app.get(
    "/v1/streams",
    { schema: { summary: "List streams", querystring: ConsistencyQuery } },
    async (request) => streams.list(request.query.consistency),
  );

  app.get(
    "/v1/streams/:name",
    {
      schema: {
        summary: "Describe a stream: first and last sequence, count, bytes, groups",
        params: NameParams,
        querystring: ConsistencyQuery,
      },
    },
    async (request) => streams.info(request.params.name, request.query.consistency),
  );

  app.patch(
    "/v1/streams/:name",
    {
      schema: {
        summary: "Change a stream's settings; a lowered limit drops the oldest messages over it",
        params: NameParams,
        querystring: NoQuery,
        body: UpdateBody,
      },
    },
    async (request) =>
      writer(request).update(request.params.name, request.body, idempotencyKeyOf(request.headers)),
  );

  app.delete(
    "/v1/streams/:name",
    {
      schema: { summary: "Delete a stream and its groups", params: NameParams, querystring: NoQuery },
    },
    async (request) => writer(request).delete(request.params.name, idempotencyKeyOf(request.headers)),
  );

  app.post(
    "/v1/streams/:name/messages",
    {
      schema: {
        summary:
          "Append a message, or an array of messages in one replicated write (atomic=true: all or none)",
        params: NameParams,
        body: Type.Union([AppendBody, AppendBatchBody]),
        querystring: AppendQuery,
      },
    },
    async (request) => {
      const body = request.body;
      const { atomic } = request.query;
      const idempotencyKey = idempotencyKeyOf(request.headers);
      if (!Array.isArray(body)) {
        if (atomic !== undefined)
          throw new CairnError("ERR_BAD_REQUEST", "atomic applies to a batch (an array)");
        return writer(request).append(request.params.name, appendInputOf(body), idempotencyKey);
      }
      const { results, duplicate } = await writer(request).appendBatch(
        request.params.name,
        body.map(appendInputOf),
        atomic === true ? { atomic } : {},
        idempotencyKey,
      );
      return {
        results: results.map(
          (r): AppendBatchItem =>
            r.ok
              ? { ok: true, seq: r.seq, id: r.id, duplicate: r.duplicate }
              : { ok: false, ...errorBody(r.error.code, r.error.message, r.error.details) },
        ),
        duplicate,
      };
    },
  );

  app.get(
    "/v1/streams/:name/messages",
    {
      schema: {
        summary: "Read messages by sequence range or from a time; waitMs long-polls for new ones",
        params: NameParams,
        querystring: StreamReadQuery,
      },
    },
    async (request, reply) => {
      const q = request.query;
      const page = await streams.read(request.params.name, {
        ...(q.from !== undefined ? { from: q.from } : {}),
        ...(q.fromTimeMs !== undefined ? { fromTimeMs: q.fromTimeMs } : {}),
        ...(q.to !== undefined ? { to: q.to } : {}),
        ...(q.limit !== undefined ? { limit: q.limit } : {}),
        ...(q.waitMs !== undefined ? { waitMs: q.waitMs } : {}),
        ...(q.consistency !== undefined ? { consistency: q.consistency } : {}),
        signal: clientGone(reply),
      });
      return {
        messages: page.messages.map((m) => presentMessage(m, q.encoding)),
        next: page.next,
        firstSeq: page.firstSeq,
        lastSeq: page.lastSeq,
        ...(page.staleness !== undefined ? { staleness: page.staleness } : {}),
      };
    },
  );

  app.get(
    "/v1/streams/:name/messages/:seq",
    {
      schema: {
        summary: "Read one message by sequence",
        params: MessageParams,
        querystring: ReadOneQuery,
      },
    },
    async (request) => {
      const { name, seq } = request.params;
      const message = await streams.message(name, seq, request.query.consistency);
      return {
        ...presentMessage(message, request.query.encoding),
        ...(message.staleness !== undefined ? { staleness: message.staleness } : {}),
      };
    },
  );

  app.delete(
    "/v1/streams/:name/messages/:seq",
    {
      schema: {
        summary: "Delete one message (its sequence is never reused; groups forget it)",
        params: MessageParams,
        querystring: NoQuery,
      },
    },
    async (request) => {
      const { name, seq } = request.params;
      const result = await writer(request).deleteMessages(name, [seq], idempotencyKeyOf(request.headers));
      return { deleted: result.deleted.length > 0, duplicate: result.duplicate };
    },
  );

  app.get(
    "/v1/streams/:name/events",
    {
      schema: {
        summary: "Follow a stream as server-sent events (id = sequence; resumable with Last-Event-ID)",
        params: NameParams,
        querystring: StreamEventsQuery,
      },
    },
    async (request, reply) => {
      const name = request.params.name;
      const lastEventId = request.headers["last-event-id"];
      let from = request.query.from;
      if (typeof lastEventId === "string" && lastEventId !== "") {
        if (!/^\d{1,15}$/.test(lastEventId))
          throw new CairnError("ERR_BAD_REQUEST", "Last-Event-ID must be a sequence");
        from = Number(lastEventId) + 1;
      }
      const release = streams.openEventStream();
      try {
        // Answer a missing stream as a normal error, before the event stream starts.
        const info = await streams.info(name);
        from ??= info.firstSeq;
      } catch (error) {
        release();
        throw error;
      }
      reply.hijack();
      const res = reply.raw;
      // What the hooks set on the reply (CORS's Access-Control-Allow-Origin and Vary) goes out too:
      // a hijacked reply writes its head itself, and a dashboard on another origin tails here.
      for (const [name, value] of Object.entries(reply.getHeaders())) {
        if (value !== undefined) res.setHeader(name, value);
      }
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      res.write(": connected\n\n");
      const signal = clientGone(reply);
      try {
        for await (const page of streams.follow(name, from, signal)) {
          if (page.messages.length === 0) res.write(": keepalive\n\n");
          for (const m of page.messages) {
            res.write(
              `id: ${m.seq}\nevent: message\ndata: ${JSON.stringify(presentMessage(m, request.query.encoding))}\n\n`,
            );
          }
          // Back-pressure: a slow reader holds this loop, not an unbounded buffer.
          if (res.writableNeedDrain)
            await new Promise((resolve) => res.once("drain", resolve).once("close", resolve));
        }
      } catch (error) {
        if (!signal.aborted) {
          const code = isCairnError(error) && isErrorCode(error.code) ? error.code : "ERR_INTERNAL";
          const message = error instanceof Error ? error.message : String(error);
          res.write(`event: error\ndata: ${JSON.stringify({ code, message })}\n\n`);
        }
      } finally {
        release();
        res.end();
      }
    },
  );

  app.post(
    "/v1/streams/:name/groups",
    {
      schema: {
        summary: "Create a consumer group",
        params: NameParams,
        body: GroupBody,
        querystring: NoQuery,
      },
    },
    async (request) => {
      const { group, startAt, ...rest } = request.body;
      return writer(request).createGroup(
        request.params.name,
        group,
        { ...rest, startAt: startAtOf(startAt) },
        idempotencyKeyOf(request.headers),
      );
    },
  );

  app.get(
    "/v1/streams/:name/groups",
    {
      schema: {
        summary: "Describe every consumer group of a stream",
        params: NameParams,
        querystring: ConsistencyQuery,
      },
    },
    async (request) => streams.listGroups(request.params.name, request.query.consistency),
  );

  app.get(
    "/v1/streams/:name/groups/:group",
    {
      schema: {
        summary: "Describe a consumer group: pending, ack floor, consumers, dead letters",
        params: GroupParams,
        querystring: ConsistencyQuery,
      },
    },
    async (request) =>
      streams.groupInfo(request.params.name, request.params.group, request.query.consistency),
  );

  app.patch(
    "/v1/streams/:name/groups/:group",
    {
      schema: {
        summary: "Change a group's ack wait, delivery limit or in-flight limit",
        params: GroupParams,
        querystring: NoQuery,
        body: GroupUpdateBody,
      },
    },
    async (request) =>
      writer(request).updateGroup(
        request.params.name,
        request.params.group,
        request.body,
        idempotencyKeyOf(request.headers),
      ),
  );

  app.delete(
    "/v1/streams/:name/groups/:group",
    {
      schema: { summary: "Delete a consumer group", params: GroupParams, querystring: NoQuery },
    },
    async (request) =>
      writer(request).deleteGroup(
        request.params.name,
        request.params.group,
        idempotencyKeyOf(request.headers),
      ),
  );

  app.post(
    "/v1/streams/:name/groups/:group/fetch",
    {
      schema: {
        summary:
          "Fetch messages for a consumer (a replicated write); waitMs waits for some; ack acknowledges a previous batch in the same entry; a retry with the same Idempotency-Key answers the same messages",
        params: GroupParams,
        body: FetchBody,
        querystring: EncodingQuery,
      },
    },
    async (request, reply) => {
      const body = request.body;
      const idempotencyKey = idempotencyKeyOf(request.headers);
      const { messages, duplicate, acked } = await writer(request).fetch(
        request.params.name,
        request.params.group,
        body.consumer,
        {
          ...(body.max !== undefined ? { max: body.max } : {}),
          ...(body.waitMs !== undefined ? { waitMs: body.waitMs } : {}),
          ...(body.ack !== undefined ? { ack: body.ack } : {}),
          signal: clientGone(reply),
          ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
        },
      );
      const answer: FetchAnswer = {
        messages: messages.map((m) => presentDelivered(m, request.query.encoding)),
        duplicate,
        ...(acked !== undefined ? { acked } : {}),
      };
      return answer;
    },
  );

  app.post(
    "/v1/streams/:name/groups/:group/:action",
    {
      schema: {
        summary: "Acknowledge, nack (with delayMs), extend or terminate messages",
        params: SettleParams,
        querystring: NoQuery,
        body: SettleBody,
      },
    },
    async (request) => {
      const { seqs, delayMs } = request.body;
      const idempotencyKey = idempotencyKeyOf(request.headers);
      return writer(request).settle(request.params.name, request.params.group, request.params.action, seqs, {
        ...(delayMs !== undefined ? { delayMs } : {}),
        ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      });
    },
  );
}
