// The HTTP port's share of the input bounds: connections per listener and per address (the gate
// every client port uses), and headers over their limit answered in the API's one error body
// rather than fastify's own.
import type { Socket } from "node:net";
import { Server as TlsServer } from "node:tls";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  ConnectionGate,
  type ConnectionLimits,
  type ConnectionRefusals,
  gateBeforeHandshake,
  refusalText,
} from "../connection-gate.js";
import { type ErrorBody, errorBody } from "./error-status.js";

/** A whole HTTP/1.1 answer in the API's error body shape, written where fastify has no reply. */
function rawAnswer(status: number, reason: string, body: ErrorBody): string {
  const text = JSON.stringify(body);
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(text)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${text}`;
}

/**
 * Whether a request was answered by a step of the app's first hook (which then stops): a refusal,
 * a preflight.
 */
export type RequestScreen = (request: FastifyRequest, reply: FastifyReply) => boolean;

/**
 * Counts every connection of `app` through a {@link ConnectionGate}. A refused connection is
 * answered at once, 429 ERR_BUSY, and closed; a request that arrives on it meanwhile runs no
 * handler: the screen returned answers it the same way (the app's first hook runs it first; over
 * TLS there is none, see below). Past twice the listener limit Node itself drops new connections.
 */
export function registerConnectionBounds(
  app: FastifyInstance,
  limits: Partial<ConnectionLimits>,
  refusals?: ConnectionRefusals,
): RequestScreen | undefined {
  const gate = new ConnectionGate(limits, refusals?.of("http"));
  const refused = new WeakMap<Socket, string>();
  app.server.maxConnections = 2 * gate.limits.connectionsMax;
  // Over TLS a connection is counted at accept, before its handshake, and one over a limit is
  // closed without an answer (the answer would need the handshake).
  if (app.server instanceof TlsServer) {
    gateBeforeHandshake(app.server, gate);
    return undefined;
  }
  app.server.on("connection", (socket: Socket) => {
    const refusal = gate.admit(socket);
    if (refusal === undefined) return;
    const message = refusalText(refusal, gate.limits);
    refused.set(socket, message);
    socket.end(rawAnswer(429, "Too Many Requests", errorBody("ERR_BUSY", message)));
  });
  return (request, reply) => {
    const message = refused.get(request.raw.socket);
    if (message === undefined) return false;
    void reply.status(429).header("connection", "close").send(errorBody("ERR_BUSY", message));
    return true;
  };
}

/** The answer to a request Node refused before fastify saw it, in the API's error body shape. */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const [status, reason, body] =
    error.code === "HPE_HEADER_OVERFLOW"
      ? [
          431,
          "Request Header Fields Too Large",
          errorBody("ERR_TOO_LARGE", "the request's headers are too large"),
        ]
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "Request Timeout", errorBody("ERR_BAD_REQUEST", "the request did not arrive in time")]
        : [400, "Bad Request", errorBody("ERR_BAD_REQUEST", "the request is not valid HTTP")];
  if (socket.writable) socket.write(rawAnswer(status, reason, body));
  socket.destroy(error);
}
