// A client of the gRPC replicator's MessageService built as the seed's users build theirs: grpc-js
// with a stub generated at run time from the repository's .proto (proto/messages.proto). Each
// call resolves with the response and the trailing metadata, or rejects with grpc-js's
// ServiceError (code, details, metadata) exactly as an application would see it.
import {
  type ChannelCredentials,
  type Client,
  credentials,
  loadPackageDefinition,
  Metadata,
  type ServiceClientConstructor,
  type ServiceError,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { grpcProtoLoaderOptions, grpcProtoPath } from "../../src/server/grpc/index.js";

/** A Message as the client decodes it. */
export interface ClientMessage {
  readonly message_id: string;
  readonly content: string;
  readonly sequence_number: number;
  readonly parent_id: string;
  readonly timestamp: number;
  readonly signature?: string;
}

/** A response and the trailing metadata that came with it, as plain strings. */
export interface Answered<T> {
  readonly response: T;
  readonly trailers: Readonly<Record<string, string>>;
}

type Callback = (error: ServiceError | null, response: unknown) => void;
type UnaryMethod = (
  request: object,
  metadata: Metadata,
  options: { deadline: Date },
  callback: Callback,
) => { on(event: "status", listener: (status: { metadata: Metadata }) => void): void };

/** Whether `value` is a grpc-js ServiceError (what a failed call rejects with). */
export function isServiceError(value: unknown): value is ServiceError {
  return value instanceof Error && "code" in value && "details" in value && "metadata" in value;
}

function plain(metadata: Metadata): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata.getMap()).map(([key, value]) => [key, value.toString()]));
}

/** A MessageService stub for one node's gRPC address. */
export class MessageServiceClient {
  readonly #client: Client;

  /**
   * Connects (lazily, as grpc-js does) to `address` (host:port), without TLS as the seed did
   * unless `channelCredentials` say otherwise.
   */
  constructor(address: string, channelCredentials: ChannelCredentials = credentials.createInsecure()) {
    const loaded = loadPackageDefinition(loadSync(grpcProtoPath, grpcProtoLoaderOptions));
    const namespace = loaded["messages"];
    const Service =
      namespace !== undefined && "MessageService" in namespace ? namespace["MessageService"] : undefined;
    if (typeof Service !== "function") throw new Error("the .proto has no messages.MessageService");
    this.#client = new (Service as ServiceClientConstructor)(address, channelCredentials);
  }

  /** PostMessage; `idempotencyKey` goes out as the idempotency-key metadata. */
  postMessage(
    request: { content?: string; write_concern?: number; client_id?: string },
    options: { idempotencyKey?: string; token?: string } = {},
  ): Promise<Answered<{ status: string; message: string; total_messages: number }>> {
    const metadata = new Metadata();
    if (options.token !== undefined) metadata.set("authorization", `Bearer ${options.token}`);
    if (options.idempotencyKey !== undefined) metadata.set("idempotency-key", options.idempotencyKey);
    return this.#unary("PostMessage", request, metadata) as Promise<
      Answered<{ status: string; message: string; total_messages: number }>
    >;
  }

  /** GetMessages. */
  getMessages(): Promise<Answered<{ messages: ClientMessage[] }>> {
    return this.#unary("GetMessages", {}, new Metadata()) as Promise<Answered<{ messages: ClientMessage[] }>>;
  }

  /** CatchUp from a sequence number, with the seed worker's auth token. */
  catchUp(
    lastSequenceNumber: number,
    authToken = "auth-token",
  ): Promise<Answered<{ status: string; messages: ClientMessage[] }>> {
    return this.#unary(
      "CatchUp",
      { last_sequence_number: lastSequenceNumber, auth_token: authToken },
      new Metadata(),
    ) as Promise<Answered<{ status: string; messages: ClientMessage[] }>>;
  }

  /** Closes the channel. */
  close(): void {
    this.#client.close();
  }

  #unary(name: string, request: object, metadata: Metadata): Promise<Answered<unknown>> {
    const method = (this.#client as unknown as Record<string, UnaryMethod>)[name];
    if (method === undefined) throw new Error(`no method ${name}`);
    return new Promise((resolve, reject) => {
      let response: unknown;
      let failed: ServiceError | null = null;
      let trailers: Record<string, string> | undefined;
      let answered = false;
      const settle = () => {
        if (!answered || trailers === undefined) return;
        if (failed !== null) reject(failed);
        else resolve({ response, trailers });
      };
      const call = method.call(
        this.#client,
        request,
        metadata,
        { deadline: new Date(Date.now() + 20_000) },
        (error, value) => {
          failed = error;
          response = value;
          answered = true;
          if (error !== null) trailers ??= plain(error.metadata);
          settle();
        },
      );
      call.on("status", (status) => {
        trailers = plain(status.metadata);
        settle();
      });
    });
  }
}
