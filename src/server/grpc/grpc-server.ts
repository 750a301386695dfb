// The gRPC endpoint of a node: serves the seed replicator's MessageService (proto/messages.proto,
// loaded at start so the repository keeps one .proto) over HTTP/2 with @grpc/grpc-js. The
// protocol work (HTTP/2 framing, gRPC framing, protobuf decoding) is the library's; this file
// bounds what a client may send, turns a request that does not decode into INVALID_ARGUMENT
// (grpc-js would answer INTERNAL), and maps each call's outcome through grpcStatusOf.
import { fileURLToPath } from "node:url";
import {
  type handleUnaryCall,
  Metadata,
  type MethodDefinition,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  status,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import {
  type AuthGuard,
  anonymous,
  CairnError,
  isCairnError,
  type Principal,
  type RateLimiter,
  runAs,
  type StreamService,
} from "../../service/index.js";
import type { Logger } from "../../util/index.js";
import { type ClientTls, certificateName } from "../client-tls.js";
import type { ConnectionLimits, ConnectionRefusals } from "../connection-gate.js";
import { listenTcp } from "../tcp-listener.js";
import { stderrLogger, UnexpectedFailures } from "../unexpected-failure.js";
import { codeTrailer, grpcFailureOf, postMessageFailureOf } from "./grpc-status.js";
import { MessageServiceHandlers } from "./message-service.js";

/** The .proto file the endpoint serves; clients may be generated from it (or from the seed's). */
export const grpcProtoPath = fileURLToPath(new URL("../../../proto/messages.proto", import.meta.url));

/** The fully qualified name of the served service. */
export const grpcServiceName = "messages.MessageService";

/** How proto-loader reads the .proto: the seed's snake_case field names, defaults filled in. */
export const grpcProtoLoaderOptions = { keepCase: true, defaults: true, longs: Number, enums: String };

/** What a gRPC server serves and its limits. */
export interface GrpcServerOptions {
  readonly streams: StreamService;
  /** Authenticates calls (docs/security.md); without it there is no authentication. */
  readonly guard?: AuthGuard;
  /** The largest request message, in bytes. Default 64 KiB: 1,000 characters of content and ids. */
  readonly receiveBytesMax?: number;
  /** Calls in flight per connection at most (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). Default 128. */
  readonly concurrentCallsMax?: number;
  /**
   * Connections served at once, in all and from one address; a further one is closed at once
   * (HTTP/2 has the server speak first only after the client's preface, so it cannot be told why).
   */
  readonly connections?: Partial<ConnectionLimits>;
  /** The node's counts of refused connections, this port's among them (for /metrics). */
  readonly refusals?: ConnectionRefusals;
  /** Serve over TLS with the node's client certificate (docs/security.md); plain TCP without it. */
  readonly tls?: ClientTls;
  /** The node's rate limits, asked once per call; without it none. */
  readonly limiter?: RateLimiter;
  /** How long a connection without calls stays open. Default 5 minutes. */
  readonly idleConnectionMs?: number;
  /** Where the node's entries go (an unexpected failure, with its stack); defaults to stderr lines. */
  readonly logger?: Logger;
}

/** A listening gRPC server. */
export interface GrpcServer {
  /** The address it listens on (the port resolved when 0 was asked). */
  readonly address: { readonly host: string; readonly port: number };
  /** Stops listening and ends every call and connection at once. */
  close(): Promise<void>;
}

/** A request as the wrapped deserializer hands it over: decoded, or why it did not decode. */
type Decoded =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: string };

/** What a handler answers: the response, and trailing metadata to send with it. */
interface Answer {
  readonly response: object;
  readonly trailers?: Readonly<Record<string, string>>;
}

/** The service's method definitions, each request decoder wrapped so that it never throws. */
function loadService(): ServiceDefinition {
  const loaded = loadSync(grpcProtoPath, grpcProtoLoaderOptions)[grpcServiceName];
  if (loaded === undefined || !("PostMessage" in loaded)) {
    throw new Error(`${grpcProtoPath} does not define ${grpcServiceName}`);
  }
  const methods: Record<string, MethodDefinition<Decoded, unknown>> = {};
  for (const [name, method] of Object.entries(loaded as ServiceDefinition)) {
    methods[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): Decoded => {
        try {
          return { ok: true, value: method.requestDeserialize(bytes) };
        } catch (error) {
          return { ok: false, error: error instanceof Error ? error.message : String(error) };
        }
      },
    };
  }
  return methods;
}

/** The idempotency-key metadata of a call; more than one is ERR_BAD_REQUEST. */
function requestIdOf(metadata: Metadata): string | undefined {
  const values = metadata.get("idempotency-key");
  if (values.length > 1) throw new CairnError("ERR_BAD_REQUEST", "send one idempotency-key metadata entry");
  return values[0]?.toString();
}

/**
 * The principal of a call: the token in its `authorization` metadata (`Bearer <token>` or the
 * token alone), or else in the request's `auth_token` field (the seed's CatchUp carries one), or
 * else the name of its connection's verified client certificate (`certificate`).
 */
async function principalOf(
  guard: AuthGuard | undefined,
  metadata: Metadata,
  request: unknown,
  certificate: string | undefined,
): Promise<Principal> {
  if (guard === undefined) return anonymous;
  const values = metadata.get("authorization");
  if (values.length > 1) throw new CairnError("ERR_BAD_REQUEST", "send one authorization metadata entry");
  const header = values[0]
    ?.toString()
    .replace(/^Bearer\s+/i, "")
    .trim();
  const field =
    typeof request === "object" && request !== null && "auth_token" in request
      ? request.auth_token
      : undefined;
  const token = header !== undefined && header !== "" ? header : typeof field === "string" ? field : "";
  // The seed's workers send auth_token "auth-token" whatever the server wants: only a token counts.
  return guard.principalFor(
    token === "" || (token === field && !guard.enabled()) ? undefined : token,
    guard.certificatePrincipal(certificate),
  );
}

/** One unary method: decodes, authenticates, runs the handler, and ends the call with its answer or status. */
function unary(
  { guard, limiter }: { readonly guard?: AuthGuard | undefined; readonly limiter?: RateLimiter | undefined },
  failures: UnexpectedFailures,
  run: (request: unknown, metadata: Metadata) => Promise<Answer>,
): handleUnaryCall<Decoded, object> {
  return (call, callback) => {
    const decoded = call.request;
    if (!decoded.ok) {
      const metadata = new Metadata();
      metadata.set(codeTrailer, "ERR_BAD_REQUEST");
      callback({ code: status.INVALID_ARGUMENT, details: `malformed request: ${decoded.error}`, metadata });
      return;
    }
    // grpc-js serves the TLS socket we hand it: its auth context holds the peer certificate, only
    // when the handshake verified it against the client CA.
    principalOf(
      guard,
      call.metadata,
      decoded.value,
      certificateName(call.getAuthContext().sslPeerCertificate),
    )
      .then((principal) => {
        // The peer is `host:port` (`[v6]:port`): the bucket is the host's.
        limiter?.admit(principal, call.getPeer().replace(/:\d+$/, ""));
        return runAs(principal, () => run(decoded.value, call.metadata));
      })
      .then(
        (answer) => {
          const trailers = new Metadata();
          for (const [key, value] of Object.entries(answer.trailers ?? {})) trailers.set(key, value);
          callback(null, answer.response, trailers);
        },
        (error: unknown) => {
          if (isCairnError(error)) {
            callback(grpcFailureOf(error));
            return;
          }
          // Not an expected failure (those have codes): a bug, logged with its stack, or a broken
          // invariant, which stops the node.
          callback({ code: status.INTERNAL, details: "internal error" });
          failures.report(error, "a gRPC call");
        },
      );
  };
}

/** Starts a gRPC server on `listen`; resolves once it accepts connections. */
export async function startGrpcServer(
  listen: { readonly host: string; readonly port: number },
  options: GrpcServerOptions,
): Promise<GrpcServer> {
  const handlers = new MessageServiceHandlers(options.streams);
  const failures = new UnexpectedFailures("grpc", options.logger ?? stderrLogger);
  const server = new Server({
    "grpc.max_receive_message_length": options.receiveBytesMax ?? 64 * 1024,
    "grpc.max_concurrent_streams": options.concurrentCallsMax ?? 128,
    // A connection without calls is closed after this long (GOAWAY; clients reconnect on demand).
    // It also ends a connection left open after a protocol error, which the HTTP/2 layer answers
    // with GOAWAY but does not close.
    "grpc.max_connection_idle_ms": options.idleConnectionMs ?? 5 * 60_000,
  });
  server.addService(loadService(), {
    PostMessage: unary(options, failures, async (request, metadata) => {
      let posted: Awaited<ReturnType<MessageServiceHandlers["postMessage"]>>;
      try {
        posted = await handlers.postMessage(request, requestIdOf(metadata));
      } catch (error) {
        // The seed's clients read a failure from the response's status, not the call's.
        if (isCairnError(error)) return postMessageFailureOf(error);
        throw error;
      }
      return {
        response: posted.response,
        trailers: {
          "cairn-sequence": String(posted.seq),
          "cairn-message-id": posted.id,
          "cairn-duplicate": String(posted.duplicate),
        },
      };
    }),
    GetMessages: unary(options, failures, async () => ({ response: await handlers.getMessages() })),
    CatchUp: unary(options, failures, async (request) => ({ response: await handlers.catchUp(request) })),
  });
  // grpc-js serves connections from a TCP server of ours: the listener the Redis and text servers
  // share (bound port, every connection ended on close) and a bound on connections.
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const listener = await listenTcp({
    listen,
    serve: (socket) => injector.injectConnection(socket),
    ...(options.connections !== undefined ? { limits: options.connections } : {}),
    ...(options.refusals !== undefined ? { refusals: { protocol: "grpc", counts: options.refusals } } : {}),
    // grpc-js serves HTTP/2 in the clear on the connection it is handed: over TLS that is the
    // decrypted stream, with h2 agreed by ALPN as gRPC clients require.
    ...(options.tls !== undefined ? { tls: options.tls, alpnProtocols: ["h2"] } : {}),
  });
  return {
    address: { host: listener.host, port: listener.port },
    close: async () => {
      injector.destroy();
      server.forceShutdown();
      await listener.close();
    },
  };
}
