// Cross-origin access for browser dashboards. Two policies: the aiohttp messaging node's routes
// reflect any Origin, as that seed did (its React dashboard ran on any port); every other route
// allows only the configured origins ("*" allows any), so a node does not hand its whole API to
// every web page unless its operator says so. Preflights answer 204.
//
// One step of the first hook rather than @fastify/cors: the plugin serves two policies only through its
// per-request delegator, which builds and merges its options objects on every request, with or
// without an Origin header, and cost about 12 µs of CPU per request in a fastify microbenchmark
// (10-15% of a linearizable GET on the leader). A request without Origin (every client but a
// browser) costs this step one header.
import type { FastifyInstance } from "fastify";
import type { RequestScreen } from "./connection-bounds.js";

/** Paths of the aiohttp messaging node, whose CORS reflects any Origin. */
export const messagingPaths: readonly string[] = [
  "/send",
  "/messages",
  "/status",
  "/heartbeat",
  "/sync",
  "/replicate",
];

/** What a preflight allows (a browser asks before a PUT, a DELETE or a JSON body). */
const preflightHeaders = {
  "access-control-allow-methods": "GET, HEAD, PUT, POST, DELETE, OPTIONS",
  // Browsers send content-type on JSON bodies; Idempotency-Key lets a dashboard retry safely;
  // Cairn-Write-Concern asks for every voter; Authorization carries a token (docs/security.md).
  "access-control-allow-headers": "content-type, idempotency-key, cairn-write-concern, authorization",
  "access-control-max-age": "600",
} as const;

/**
 * Registers CORS; `origins` are the exact origins allowed on routes other than the messaging ones.
 * The screen returned sets the headers of every answer and answers preflights (the app's first
 * hook runs it).
 */
export function registerCors(app: FastifyInstance, origins: readonly string[]): RequestScreen {
  const anyOrigin = origins.includes("*");
  const allowed = new Set(origins);
  const allows = (origin: string, url: string): boolean => {
    if (anyOrigin || allowed.has(origin)) return true;
    const query = url.indexOf("?");
    return messagingPaths.includes(query < 0 ? url : url.slice(0, query));
  };
  // An OPTIONS request the screen did not answer (no Origin, or one not allowed) is not a preflight.
  app.options("*", { schema: { hide: true } }, (_request, reply) => reply.callNotFound());
  return (request, reply) => {
    // Whether the answer carries CORS headers depends on Origin, so a cache must key on it
    // (Fetch standard, "CORS protocol and HTTP caches"), on answers to requests without one too.
    reply.header("vary", "Origin");
    const origin = request.headers.origin;
    if (typeof origin !== "string" || !allows(origin, request.url)) return false;
    reply.header("access-control-allow-origin", origin);
    if (request.method !== "OPTIONS") return false;
    if (request.headers["access-control-request-method"] === undefined) {
      void reply.status(400).type("text/plain").send("Invalid Preflight Request");
      return true;
    }
    // Answered here, before any route: content-length 0, or some browsers wait for a body.
    void reply.headers(preflightHeaders).header("content-length", "0").status(204).send();
    return true;
  };
}
