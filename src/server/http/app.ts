// The HTTP/JSON server: fastify with typebox schemas, one error body shape for every failure
// (ours, validation, oversize bodies, unknown routes), health endpoints and an OpenAPI document
// generated from the registered route schemas.

import { Server as TlsServer } from "node:tls";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  type HookHandlerDoneFunction,
  LogController,
} from "fastify";
import {
  type AuthService,
  isCairnError,
  isErrorCode,
  type KvService,
  type RateLimiter,
  type StreamService,
} from "../../service/index.js";
import type { ClientTls } from "../client-tls.js";
import type { ConnectionLimits, ConnectionRefusals } from "../connection-gate.js";
import { registerAuthentication, registerAuthRoutes, requestPrincipal } from "./auth-routes.js";
import { registerAxonRoutes } from "./axon-routes.js";
import { type ClusterRoutesOptions, registerClusterRoutes } from "./cluster-routes.js";
import { registerCompatRoutes } from "./compat-routes.js";
import { clientErrorHandler, registerConnectionBounds } from "./connection-bounds.js";
import { registerCors } from "./cors.js";
import { errorBody, httpStatusOf } from "./error-status.js";
import { registerKvRoutes } from "./kv-routes.js";
import { type MetricsSource, registerMetricsRoute } from "./metrics-route.js";
import { OpenApiCollector } from "./openapi.js";
import { LazyChildLogger } from "./request-logger.js";
import { registerStreamRoutes } from "./stream-routes.js";
import { typeboxValidatorCompiler } from "./validator.js";

/** Whether this node can serve requests, for /health/ready. */
export interface Readiness {
  readonly ready: boolean;
  readonly reason?: string;
}

/** What the HTTP server serves. */
export interface HttpAppOptions {
  readonly kv: KvService;
  /** Streams and consumer groups; without it there are no /v1/streams routes. */
  readonly streams?: StreamService;
  /** This node's name, reported by the compatibility /heartbeat. */
  readonly nodeName?: string;
  /** Answers /health/ready; ready when the node knows a leader and has caught up with it. */
  readonly readiness: () => Readiness | Promise<Readiness>;
  /** The largest request body accepted, in bytes (a value of the maximum size, base64, fits). */
  readonly requestBytesMax?: number;
  /** The version reported in the OpenAPI document. */
  readonly version?: string;
  /** Cluster status and membership; without it there are no /v1/cluster routes. */
  readonly cluster?: ClusterRoutesOptions;
  /** What /metrics reports; without it there is no /metrics. */
  readonly metrics?: MetricsSource;
  /**
   * Browser origins allowed to call this node ("*": any); none by default. The messaging node's
   * compatibility routes reflect any origin regardless, as that seed did.
   */
  readonly corsOrigins?: readonly string[];
  /** Tokens and roles; without it there is no authentication and no /v1/auth routes. */
  readonly auth?: AuthService;
  /** The node's rate limits; without it none. */
  readonly limiter?: RateLimiter;
  /** Connections open at once, in all and from one address (docs/security.md). */
  readonly connections?: Partial<ConnectionLimits>;
  /** The node's counts of refused connections, this port's among them (for /metrics). */
  readonly refusals?: ConnectionRefusals;
  /** Serve HTTPS with the node's client certificate (docs/security.md); plain HTTP without it. */
  readonly tls?: ClientTls;
  /** The largest request line and headers together, in bytes; more is 431 ERR_TOO_LARGE. Default 16 KiB. */
  readonly headerBytesMax?: number;
  /**
   * Where requests log (pino, with each request's id): internal errors with their stacks. Without
   * it nothing is logged.
   */
  readonly logger?: FastifyBaseLogger;
}

/** Paths no rate limit applies to: health probes, metrics scrapes, the OpenAPI document. */
const unlimitedPaths = /^\/(health\/|metrics(\?|$)|v1\/metrics(\?|$)|v1\/openapi\.json)/;

/** How long in-flight requests may take to finish once the server is closing. */
const closeGraceMs = 1_000;

/** Builds the fastify application (not listening yet). */
export function buildHttpApp(options: HttpAppOptions): FastifyInstance {
  const app = Fastify({
    ...(options.logger !== undefined ? { loggerInstance: options.logger } : { logger: false }),
    // Each request's pino child is made only if the request logs (request-logger.ts).
    childLoggerFactory: (logger, bindings, childOptions) =>
      new LazyChildLogger(logger, bindings, childOptions),
    // Every request is not an event worth a line; internal errors are (the error handler below).
    logController: new LogController({ disableRequestLogging: true }),
    // A caller's request id (a proxy's, a client's) names the request in the node's log lines.
    requestIdHeader: "x-request-id",
    bodyLimit: options.requestBytesMax ?? Math.ceil((options.kv.limits.valueBytesMax * 4) / 3) + 64 * 1024,
    // Keys may contain "/" and percent-escapes; take the path verbatim after /v1/kv/.
    routerOptions: { ignoreDuplicateSlashes: false, maxParamLength: options.kv.limits.keyBytesMax * 3 },
    http: { maxHeaderSize: options.headerBytesMax ?? 16 * 1024 },
    ...(options.tls !== undefined
      ? { https: { ...options.tls.serverOptions(), maxHeaderSize: options.headerBytesMax ?? 16 * 1024 } }
      : {}),
    clientErrorHandler,
  });
  if (options.tls !== undefined && app.server instanceof TlsServer) options.tls.serve(app.server);
  const refused = registerConnectionBounds(app, options.connections ?? {}, options.refusals);
  app.setValidatorCompiler(typeboxValidatorCompiler);
  // Both before any route: each route registered after them is documented and counts its answers.
  const openApi = new OpenApiCollector("Cairn HTTP API", options.version ?? "0.0.0");
  app.addHook("onRoute", (route) => openApi.add(route));
  const countUnmatched =
    options.metrics !== undefined ? registerMetricsRoute(app, options.metrics) : undefined;
  const cors = registerCors(app, options.corsOrigins ?? []);

  app.setErrorHandler((error: unknown, request, reply) => {
    if (isCairnError(error)) {
      if (error.is("ERR_RATE_LIMITED")) {
        // Whole seconds, as RFC 9110 writes it; the body's retryAfterMs is exact.
        reply.header(
          "retry-after",
          String(Math.max(1, Math.ceil((error.details.retryAfterMs ?? 1000) / 1000))),
        );
      }
      if (error.code === "ERR_INTERNAL") request.log.error({ err: error }, "internal error");
      return reply.status(httpStatusOf[error.code]).send(errorBody(error.code, error.message, error.details));
    }
    const message = error instanceof Error ? error.message : String(error);
    const fields = typeof error === "object" && error !== null ? (error as Record<string, unknown>) : {};
    if (fields["validation"] !== undefined) {
      return reply.status(400).send(errorBody("ERR_BAD_REQUEST", message));
    }
    if (fields["code"] === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.status(413).send(errorBody("ERR_TOO_LARGE", "request body is too large"));
    }
    const status = fields["statusCode"];
    if (typeof status === "number" && status >= 400 && status < 500) {
      // Malformed JSON, a wrong content type and the like: the client's fault, nothing changed.
      return reply.status(status === 415 ? 415 : 400).send(errorBody("ERR_BAD_REQUEST", message));
    }
    const code = isErrorCode(fields["code"]) ? fields["code"] : "ERR_INTERNAL";
    // Not a failure with a code of ours nor the client's fault: a bug, logged with its stack.
    if (code === "ERR_INTERNAL") request.log.error({ err: error }, "internal error; the client got 500");
    return reply.status(httpStatusOf[code]).send(errorBody(code, message));
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .send(errorBody("ERR_NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`));
    countUnmatched?.(request, reply);
  });

  let authenticate: ((request: FastifyRequest) => Promise<void> | undefined) | undefined;
  if (options.auth !== undefined) {
    authenticate = registerAuthentication(app, options.auth);
    registerAuthRoutes(app, options.auth);
  }
  const limiter = options.limiter;
  // After authentication, which names the bucket; probes and scrapes are never limited.
  const admit = (request: FastifyRequest, done: HookHandlerDoneFunction): void => {
    try {
      if (limiter !== undefined && !unlimitedPaths.test(request.url)) {
        limiter.admit(requestPrincipal(request), request.ip);
      }
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  };
  // The one onRequest hook, its steps in order: a refused connection is answered before anything
  // else runs; the id the node's log lines carry for this request, so a client's report can be
  // matched to them; CORS (which answers preflights); the principal; the rate limit. One callback
  // hook rather than one per step: each hook fastify runs costs a call through its hook runner,
  // and an async one a promise and a turn of the microtask queue, on every request.
  app.addHook("onRequest", (request, reply, done) => {
    if (refused?.(request, reply) === true) return;
    reply.header("x-request-id", request.id);
    if (cors(request, reply)) return;
    const principal = authenticate?.(request);
    if (principal === undefined) {
      admit(request, done);
      return;
    }
    principal.then(
      () => admit(request, done),
      (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
    );
  });
  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  typed.get("/health/live", { schema: { summary: "The process is up" } }, async () => ({ status: "ok" }));
  typed.get(
    "/health/ready",
    { schema: { summary: "The node can serve requests" } },
    async (_request, reply) => {
      const readiness = await options.readiness();
      return reply.status(readiness.ready ? 200 : 503).send({
        status: readiness.ready ? "ready" : "not-ready",
        ...(readiness.reason ? { reason: readiness.reason } : {}),
      });
    },
  );
  registerKvRoutes(app, options.kv);
  if (options.cluster !== undefined) registerClusterRoutes(app, options.cluster);
  if (options.streams !== undefined) registerStreamRoutes(app, options.streams);
  registerAxonRoutes(app, options.kv);
  const cluster = options.cluster;
  registerCompatRoutes(app, {
    ...(options.streams !== undefined ? { streams: options.streams } : {}),
    ...(cluster !== undefined ? { status: () => cluster.status() } : {}),
    ...(options.nodeName !== undefined ? { nodeName: options.nodeName } : {}),
  });
  // Closing stops new connections and closes idle ones, but a connection that was busy then stays
  // open after its answer until the keep-alive timeout (72 s): a node stopping with a tail or a
  // long-poll attached took that long. In-flight requests get a grace period, then every
  // connection is closed; clients retry elsewhere.
  app.addHook("preClose", (done) => {
    setTimeout(() => app.server.closeAllConnections(), closeGraceMs).unref();
    done();
  });
  typed.get("/v1/openapi.json", { schema: { hide: true } }, async () => openApi.document());
  return app;
}
