// Cross-origin access for browser dashboards, through @fastify/cors. Two policies: the aiohttp
// messaging node's routes reflect any Origin, as that seed did (its React dashboard ran on any
// port); every other route allows only the configured origins ("*" allows any), so a node does not
// hand its whole API to every web page unless its operator says so. Preflights answer 204.
import cors from "@fastify/cors";
import type { FastifyInstance } from "fastify";

/** Paths of the aiohttp messaging node, whose CORS reflects any Origin. */
export const messagingPaths: readonly string[] = [
  "/send",
  "/messages",
  "/status",
  "/heartbeat",
  "/sync",
  "/replicate",
];

/** Registers CORS; `origins` are the exact origins allowed on routes other than the messaging ones. */
export function registerCors(app: FastifyInstance, origins: readonly string[]): void {
  const anyOrigin = origins.includes("*");
  void app.register(cors, {
    delegator: (request, callback) => {
      const path = (request.url ?? "").split("?")[0] ?? "";
      const origin = request.headers.origin;
      const allowed =
        typeof origin === "string" &&
        (anyOrigin || messagingPaths.includes(path) || origins.includes(origin));
      callback(null, {
        origin: allowed,
        methods: ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"],
        // Browsers send this on JSON bodies; Idempotency-Key lets a dashboard retry safely.
        allowedHeaders: ["content-type", "idempotency-key"],
        maxAge: 600,
      });
    },
  });
}
