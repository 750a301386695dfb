// The gRPC replicator's MessageService (package `messages`) over Cairn's streams: the messages are
// one stream, `sequence_number` is its sequence and `parent_id` the previous message's id, so the
// total order the seed promised holds on every node. Requests arrive decoded but untrusted: each
// field is checked here, and every check that fails is ERR_BAD_REQUEST (INVALID_ARGUMENT) with
// nothing changed. Content rules are the seed's (1 to 1,000 characters, not only whitespace,
// stored trimmed), with its texts.
import {
  CairnError,
  isCairnError,
  type StreamMessage,
  type StreamService,
  type WriteConcern,
} from "../../service/index.js";

/** The stream that holds the replicator's messages. */
export const grpcStreamName = "grpc-messages";

/** The longest content, in characters (Unicode code points), as the seed counted. */
export const grpcContentCharsMax = 1000;

/**
 * How long a (client_id, idempotency-key) pair is remembered: one day, the longest window a
 * stream allows. A retry later than that is stored again.
 */
export const grpcDedupeWindowMs = 24 * 3600 * 1000;

/** The most bytes client_id and the idempotency key may take together (a stream message id is at most 256). */
export const grpcRequestIdBytesMax = 240;

/** The largest value of the seed's int32 fields. */
const int32Max = 2 ** 31 - 1;

/** PostMessage's answer: "success", the seed's text, and the stored message's sequence number. */
export interface PostMessageResponse {
  readonly status: "success";
  readonly message: string;
  readonly total_messages: number;
}

/** One message as the seed's `Message` carries it. */
export interface WireMessage {
  readonly message_id: string;
  readonly content: string;
  readonly sequence_number: number;
  readonly parent_id: string;
  readonly timestamp: number;
}

/** One message as the seed's `SignedMessage` carries it; `signature` is always empty. */
export interface WireSignedMessage extends WireMessage {
  readonly signature: string;
}

/** A posted message: the answer, and what the adapter reports beside it in metadata. */
export interface PostOutcome {
  readonly response: PostMessageResponse;
  readonly seq: number;
  readonly id: string;
  readonly duplicate: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function fieldsOf(request: unknown): Readonly<Record<string, unknown>> {
  if (typeof request !== "object" || request === null) {
    throw new CairnError("ERR_BAD_REQUEST", "the request is not a message");
  }
  return request as Readonly<Record<string, unknown>>;
}

function stringField(fields: Readonly<Record<string, unknown>>, name: string): string {
  const value = fields[name] ?? "";
  if (typeof value !== "string") throw new CairnError("ERR_BAD_REQUEST", `${name} must be a string`);
  return value;
}

function int32Field(fields: Readonly<Record<string, unknown>>, name: string): number {
  const value = fields[name] ?? 0;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new CairnError("ERR_BAD_REQUEST", `${name} must be an integer`);
  }
  return value;
}

/** The seed's content rule; answers the trimmed content that is stored. */
function checkContent(content: string): string {
  const trimmed = content.trim();
  if (trimmed === "") {
    throw new CairnError("ERR_BAD_REQUEST", "Failed to create message: content is empty or only whitespace");
  }
  if ([...content].length > grpcContentCharsMax) {
    throw new CairnError(
      "ERR_BAD_REQUEST",
      `Failed to create message: content is longer than ${grpcContentCharsMax} characters`,
    );
  }
  return trimmed;
}

/**
 * The write concern a request's `write_concern` asks for: 0, 1 and 2 (the seed's "none", ONE and
 * QUORUM) are a majority, which Cairn never goes below; 3 or more (the seed's ALL) is every voting
 * member.
 */
function writeConcernOf(writeConcern: number): WriteConcern {
  if (writeConcern < 0) throw new CairnError("ERR_BAD_REQUEST", "write_concern must be 0 or more");
  return writeConcern >= 3 ? "all" : "majority";
}

function int32(value: number, what: string): number {
  if (value > int32Max) {
    throw new CairnError(
      "ERR_LIMIT",
      `${what} ${value} does not fit the protocol's int32; read stream ${grpcStreamName} over HTTP instead`,
    );
  }
  return value;
}

function wireMessage(message: StreamMessage, parentId: string): WireSignedMessage {
  return {
    message_id: message.id,
    content: decoder.decode(message.payload),
    sequence_number: int32(message.seq, "sequence number"),
    parent_id: parentId,
    timestamp: message.tsMs / 1000,
    signature: "",
  };
}

/** The MessageService methods, each answering or throwing a CairnError. */
export class MessageServiceHandlers {
  readonly #streams: StreamService;

  /** Serves the messages of `streams`' stream {@link grpcStreamName}. */
  constructor(streams: StreamService) {
    this.#streams = streams;
  }

  /**
   * PostMessage: appends the trimmed content, acknowledged once durable as `write_concern` asks.
   * With a request id (the `idempotency-key` metadata),
   * a retry with the same client_id and request id answers the original message, `duplicate`.
   */
  async postMessage(request: unknown, requestId: string | undefined): Promise<PostOutcome> {
    const fields = fieldsOf(request);
    const content = checkContent(stringField(fields, "content"));
    const writeConcern = writeConcernOf(int32Field(fields, "write_concern"));
    const clientId = stringField(fields, "client_id");
    if (requestId !== undefined) {
      if (requestId === "") throw new CairnError("ERR_BAD_REQUEST", "the idempotency-key metadata is empty");
      const bytes = encoder.encode(clientId).length + encoder.encode(requestId).length;
      if (bytes > grpcRequestIdBytesMax) {
        throw new CairnError(
          "ERR_BAD_REQUEST",
          `client_id and the idempotency-key metadata may take ${grpcRequestIdBytesMax} bytes together, not ${bytes}`,
        );
      }
    }
    const ack = await this.#streams.withWriteConcern(writeConcern).append(grpcStreamName, {
      payload: encoder.encode(content),
      headers: clientId === "" ? [] : [["client-id", clientId]],
      // A JSON pair cannot be read two ways, whatever either part contains.
      ...(requestId !== undefined ? { msgId: JSON.stringify([clientId, requestId]) } : {}),
      createIfMissing: { dedupeWindowMs: grpcDedupeWindowMs },
    });
    return {
      response: {
        status: "success",
        message: ack.duplicate ? "Message already added" : "Message added successfully",
        total_messages: int32(ack.seq, "sequence number"),
      },
      seq: ack.seq,
      id: ack.id,
      duplicate: ack.duplicate,
    };
  }

  /** GetMessages: every message in order; more than one page is ERR_TOO_LARGE, naming CatchUp. */
  async getMessages(): Promise<{ messages: WireMessage[] }> {
    const page = await this.#pageAfter(0);
    if (page.more) {
      throw new CairnError(
        "ERR_TOO_LARGE",
        `more than ${page.messages.length} messages: page with CatchUp (last_sequence_number) or ` +
          `GET /v1/streams/${grpcStreamName}/messages instead`,
      );
    }
    return { messages: page.messages.map(({ signature: _, ...message }) => message) };
  }

  /**
   * CatchUp: one page of the messages after `last_sequence_number`; call again from the last one's
   * sequence number until a page comes back empty. `auth_token` is a token: the server
   * authenticates the call with it when the call has no `authorization` metadata.
   */
  async catchUp(request: unknown): Promise<{ status: "success"; messages: WireSignedMessage[] }> {
    const fields = fieldsOf(request);
    const after = int32Field(fields, "last_sequence_number");
    if (after < 0) throw new CairnError("ERR_BAD_REQUEST", "last_sequence_number must be 0 or more");
    stringField(fields, "auth_token");
    return { status: "success", messages: (await this.#pageAfter(after)).messages };
  }

  /**
   * The messages after sequence `after`, one read page, each with its parent's id. The read starts
   * at `after` itself so the first message's parent comes from the same linearizable read.
   */
  async #pageAfter(after: number): Promise<{ messages: WireSignedMessage[]; more: boolean }> {
    let page: Awaited<ReturnType<StreamService["read"]>>;
    try {
      page = await this.#streams.read(grpcStreamName, {
        from: Math.max(1, after),
        limit: this.#streams.limits.readLimitMax,
      });
    } catch (error) {
      // Nothing was ever posted: the stream does not exist yet.
      if (isCairnError(error) && error.code === "ERR_NOT_FOUND") return { messages: [], more: false };
      throw error;
    }
    const messages: WireSignedMessage[] = [];
    let parentId = "";
    for (const message of page.messages) {
      if (message.seq > after) messages.push(wireMessage(message, parentId));
      parentId = message.id;
    }
    return { messages, more: page.next <= page.lastSeq };
  }
}
