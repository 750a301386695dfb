// The control API and the dashboard of `cairn dev`, on 127.0.0.1 only: the supervisor's operations
// under /v1/control, Axon's launcher routes under /api/control with Axon's shapes (so Axon's own UI
// can drive a Cairn cluster), and the built dashboard as static files. A web page from another
// origin cannot drive it: requests whose Origin or Host is not this server's are refused, which
// also stops DNS-rebinding pages.
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import {
  type AxonNodeMap,
  type ControlErrorCode,
  type ControlEventList,
  type ControlNode,
  type ControlNodeList,
  type NodeAction,
  nodeActions,
} from "../api/index.js";
import { ControlError, type NodeSupervisor } from "./supervisor.js";

/** The HTTP status of each control API error code. */
export const controlStatusOf: Record<ControlErrorCode, number> = {
  ERR_BAD_REQUEST: 400,
  ERR_UNAUTHENTICATED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_CONFLICT: 409,
  ERR_BREAKS_MAJORITY: 409,
  ERR_UNAVAILABLE: 503,
  ERR_INTERNAL: 500,
};

/** Settings of the control server. */
export interface ControlServerOptions {
  readonly supervisor: NodeSupervisor;
  /** The port on 127.0.0.1 (0: any free one). */
  readonly port: number;
  /** The built dashboard (index.html and its assets). */
  readonly staticDir: string;
  /**
   * Checks a control call's Authorization header (docs/security.md): throws a ControlError when the
   * cluster asks for tokens and this one is missing or lacks admin:cluster. Absent: no checks.
   */
  readonly authorize?: (authorization: string | undefined) => Promise<void>;
}

/** A running control server. */
export interface ControlServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  close(): Promise<void>;
}

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
};

const notBuilt = `<!doctype html><meta charset="utf-8"><title>Cairn</title>
<h1>The dashboard is not built</h1>
<p>Run <code>npm run build</code> (or <code>npm install</code>) in the Cairn directory, then reload.
The control API works without it: <a href="/v1/control/nodes">/v1/control/nodes</a>.</p>`;

function controlError(reply: FastifyReply, error: unknown) {
  if (error instanceof ControlError) {
    return reply
      .status(controlStatusOf[error.code])
      .send({ error: { code: error.code, message: error.message } });
  }
  const fields = typeof error === "object" && error !== null ? (error as Record<string, unknown>) : {};
  const message = error instanceof Error ? error.message : String(error);
  const status = fields["statusCode"];
  if (fields["validation"] !== undefined || (typeof status === "number" && status >= 400 && status < 500)) {
    return reply.status(400).send({ error: { code: "ERR_BAD_REQUEST", message } });
  }
  return reply.status(500).send({ error: { code: "ERR_INTERNAL", message } });
}

/** An Axon-shaped error: `{"error": "<message>"}`. */
function axonError(reply: FastifyReply, error: unknown) {
  const message = error instanceof Error ? error.message : String(error);
  const status = error instanceof ControlError ? controlStatusOf[error.code] : 500;
  return reply.status(status).send({ error: message });
}

function bodyName(body: unknown, field: string): string | undefined {
  if (body === undefined || body === null || body === "") return undefined;
  if (typeof body !== "object") throw new ControlError("ERR_BAD_REQUEST", "the body must be a JSON object");
  const value = (body as Record<string, unknown>)[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new ControlError("ERR_BAD_REQUEST", `${field} must be a string`);
  return value;
}

/** Builds the control application (not listening); `origins` are the page's own origins. */
export function buildControlApp(
  options: ControlServerOptions,
  origins: () => readonly string[],
): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  const supervisor = options.supervisor;

  app.addHook("onRequest", async (request, reply) => {
    const allowed = origins();
    const host = `http://${request.headers.host ?? ""}`;
    const origin = request.headers.origin;
    if (!allowed.includes(host) || (origin !== undefined && !allowed.includes(origin))) {
      return reply.status(403).send({
        error: {
          code: "ERR_BAD_REQUEST",
          message: "the control API answers its own page and local tools only",
        },
      });
    }
  });
  // The control API (ours and Axon's) changes the cluster: with authentication on, admins only. The
  // page itself and its assets stay open, so a user can enter a token.
  app.addHook("onRequest", async (request) => {
    const path = request.url.split("?")[0] ?? "";
    if (path.startsWith("/v1/control") || path.startsWith("/api/")) {
      await options.authorize?.(request.headers.authorization);
    }
  });
  app.setErrorHandler((error, _request, reply) => controlError(reply, error));

  app.get("/v1/control/nodes", async (): Promise<ControlNodeList> => supervisor.list());
  app.get(
    "/v1/control/nodes/:name",
    async (request): Promise<ControlNode> => supervisor.node((request.params as { name: string }).name),
  );
  app.get("/v1/control/events", async (request): Promise<ControlEventList> => {
    const after = (request.query as { after?: string }).after ?? "0";
    if (!/^\d{1,15}$/.test(after)) throw new ControlError("ERR_BAD_REQUEST", "after must be an event id");
    return { events: supervisor.events(Number(after)) };
  });
  app.post("/v1/control/nodes", async (request, reply) => {
    const node = await supervisor.add(bodyName(request.body, "name"));
    return reply.status(201).send(node);
  });
  app.delete("/v1/control/nodes/:name", async (request) =>
    supervisor.remove((request.params as { name: string }).name),
  );
  app.post("/v1/control/nodes/:name/:action", async (request): Promise<ControlNode> => {
    const { name, action } = request.params as { name: string; action: string };
    if (!(nodeActions as readonly string[]).includes(action)) {
      throw new ControlError("ERR_NOT_FOUND", `no action ${action}: one of ${nodeActions.join(", ")}`);
    }
    return runAction(supervisor, name, action as NodeAction);
  });

  // Axon's launcher routes, with Axon's shapes.
  app.get("/api/control/nodes", async (): Promise<AxonNodeMap> => {
    const list = supervisor.list();
    return Object.fromEntries(
      list.nodes.map((n) => [
        n.name,
        {
          id: n.name,
          api_port: Number(new URL(n.httpUrl).port),
          status: n.state === "running" && n.health === "ok" ? "online" : "offline",
          is_leader: list.leader === n.name,
        },
      ]),
    );
  });
  app.post("/api/control/add", async (request, reply) => {
    let name: string | undefined;
    try {
      name = bodyName(request.body, "node_id");
    } catch {
      return reply.status(400).send({ error: "invalid request" });
    }
    if (name === undefined || name === "") return reply.status(400).send({ error: "node_id is required" });
    try {
      const node = await supervisor.add(name);
      return { id: node.name, api_port: Number(new URL(node.httpUrl).port) };
    } catch (error) {
      return axonError(reply, error);
    }
  });
  app.post("/api/control/stop/:id", async (request) => {
    // Axon answers the same for unknown ids; so does this route.
    await supervisor.stop((request.params as { id: string }).id).catch(() => undefined);
    return { status: "stop signal sent" };
  });
  app.post("/api/control/start/:id", async (request, reply) => {
    try {
      await supervisor.start((request.params as { id: string }).id);
      return { status: "start signal sent" };
    } catch (error) {
      if (error instanceof ControlError && error.code === "ERR_NOT_FOUND") {
        return reply.status(404).send({ error: "node not found" });
      }
      return axonError(reply, error);
    }
  });
  app.post("/api/control/delete/:id", async (request, reply) => {
    try {
      await supervisor.remove((request.params as { id: string }).id);
      return { status: "decommissioned" };
    } catch (error) {
      if (error instanceof ControlError && error.code === "ERR_NOT_FOUND") {
        return reply.status(404).send({ error: "node not found" });
      }
      return axonError(reply, error);
    }
  });

  // The dashboard: its files, and index.html for every other page path (one-page app).
  app.setNotFoundHandler(async (request, reply) => {
    const path = decodeURIComponent((request.url.split("?")[0] ?? "/").replace(/^\/+/, ""));
    if (request.method !== "GET" || path.startsWith("v1/") || path.startsWith("api/")) {
      return reply
        .status(404)
        .send({ error: { code: "ERR_NOT_FOUND", message: `no route ${request.method} /${path}` } });
    }
    const root = normalize(options.staticDir);
    const file = normalize(join(root, path === "" ? "index.html" : path));
    const inside = file.startsWith(root.endsWith(sep) ? root : `${root}${sep}`);
    const target = inside && (await isFile(file)) ? file : join(root, "index.html");
    try {
      const body = await readFile(target);
      return reply
        .header("content-type", contentTypes[extname(target)] ?? "application/octet-stream")
        .header(
          "cache-control",
          target.includes(`${sep}assets${sep}`) ? "max-age=31536000, immutable" : "no-cache",
        )
        .send(body);
    } catch {
      return reply.status(503).header("content-type", "text/html; charset=utf-8").send(notBuilt);
    }
  });
  return app;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function runAction(supervisor: NodeSupervisor, name: string, action: NodeAction): Promise<ControlNode> {
  switch (action) {
    case "start":
      return supervisor.start(name);
    case "stop":
      return supervisor.stop(name);
    case "kill":
      return supervisor.kill(name);
    case "pause":
      return supervisor.pause(name);
    case "resume":
      return supervisor.resume(name);
    case "restart":
      return supervisor.restart(name);
    case "transfer-leadership":
      return supervisor.transferLeadership(name);
  }
}

/** Starts the control server on 127.0.0.1:`port`. */
export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  let port = options.port;
  const origins = () => [`http://127.0.0.1:${port}`, `http://localhost:${port}`];
  const app = buildControlApp(options, origins);
  await app.listen({ host: "127.0.0.1", port: options.port });
  const address = app.server.address();
  port = typeof address === "object" && address !== null ? address.port : options.port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      setTimeout(() => app.server.closeAllConnections(), 1_000).unref();
      await app.close();
    },
  };
}
