// The page's view of the local cluster: it polls the supervisor's control API every second (nodes,
// their process state, health, roles and lag, and the event timeline), polls every running node's
// /v1/metrics for the charts, and hands out clients that talk to any live node. A poll never
// overlaps the previous one and every request has a deadline, so a dead or paused node cannot
// freeze the page: it shows as such on the next poll.
import type {
  ControlEvent,
  ControlEventList,
  ControlNode,
  ControlNodeList,
  MetricsSnapshot,
} from "../api/index.js";
import { CairnClient } from "../client/index.js";
import { type MetricsPoint, pointBetween } from "./metrics.js";

/** How often the page asks the supervisor and the nodes. */
export const pollIntervalMs = 1000;
const requestTimeoutMs = 900;
const pointsMax = 180;
const eventsMax = 300;

/** A control API failure: its code and message. */
export class ControlApiError extends Error {
  /** Creates an error from the control API's body. */
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const tokenKey = "cairn-token";

/**
 * The token the page presents (docs/security.md), kept for this browser tab only (sessionStorage);
 * empty while the cluster asks for none.
 */
export const session = $state({ token: globalThis.sessionStorage?.getItem(tokenKey) ?? "" });

/** Uses `token` for every later request of this tab. */
export function useToken(token: string): void {
  session.token = token.trim();
  globalThis.sessionStorage?.setItem(tokenKey, session.token);
}

/** The Authorization header of the page's token, if it has one. */
function authHeader(): Record<string, string> {
  return session.token === "" ? {} : { authorization: `Bearer ${session.token}` };
}

/** Calls the control API (same origin) and answers its JSON, or throws a ControlApiError. */
export async function control<T>(method: string, path: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: { ...authHeader(), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(method === "GET" ? 3_000 : 60_000),
    });
  } catch {
    throw new ControlApiError(
      "ERR_UNAVAILABLE",
      "the supervisor (cairn dev) does not answer: is `npm start` still running?",
    );
  }
  const parsed: unknown = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error =
      typeof parsed === "object" && parsed !== null && "error" in parsed
        ? (parsed.error as unknown)
        : undefined;
    if (typeof error === "object" && error !== null && "code" in error && "message" in error) {
      throw new ControlApiError(String(error.code), String(error.message));
    }
    throw new ControlApiError("ERR_INTERNAL", `the control API answered ${response.status}`);
  }
  return parsed as T;
}

/** What the page knows about the cluster; components read it, the poller writes it. */
export const cluster = $state({
  list: null as ControlNodeList | null,
  /** Why the last poll failed, if it did. */
  error: null as string | null,
  events: [] as ControlEvent[],
  points: [] as MetricsPoint[],
  /** Milliseconds of wall clock, refreshed every poll (uptimes count from it). */
  nowMs: Date.now(),
});

/** The running nodes that answer, or the running ones when none is known to answer yet. */
export function liveNodes(): ControlNode[] {
  const running = (cluster.list?.nodes ?? []).filter((n) => n.state === "running");
  const answering = running.filter((n) => n.health === "ok");
  return answering.length > 0 ? answering : running;
}

/**
 * A client over the live nodes (or just `nodeName`'s), with short deadlines so the page stays
 * responsive; followers hand writes to the leader, so any node will do.
 */
export function clientFor(nodeName?: string): CairnClient {
  const chosen = nodeName ? (cluster.list?.nodes ?? []).filter((n) => n.name === nodeName) : liveNodes();
  const endpoints = chosen.map((n) => n.httpUrl);
  if (endpoints.length === 0) {
    throw new ControlApiError(
      "ERR_UNAVAILABLE",
      nodeName ? `no node ${nodeName}` : "no node is running: start one on the Cluster tab",
    );
  }
  return new CairnClient({
    endpoints,
    requestTimeoutMs: 2_000,
    retryBudgetMs: 5_000,
    ...(session.token !== "" ? { token: session.token } : {}),
  });
}

let lastEventId = 0;
let lastMetrics = new Map<string, MetricsSnapshot>();
let lastMetricsAtMs = 0;

async function metricsOf(node: ControlNode): Promise<MetricsSnapshot | undefined> {
  try {
    const response = await fetch(`${node.httpUrl}/v1/metrics`, {
      headers: authHeader(),
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    return response.ok ? ((await response.json()) as MetricsSnapshot) : undefined;
  } catch {
    return undefined;
  }
}

async function pollMetrics(nodes: readonly ControlNode[]): Promise<void> {
  const running = nodes.filter((n) => n.state === "running");
  const answers = await Promise.all(running.map(async (n) => [n.name, await metricsOf(n)] as const));
  const now = new Map<string, MetricsSnapshot>();
  for (const [name, m] of answers) if (m !== undefined) now.set(name, m);
  const atMs = Date.now();
  if (lastMetricsAtMs > 0) {
    const point = pointBetween(lastMetrics, now, (atMs - lastMetricsAtMs) / 1000, atMs / 1000);
    cluster.points = [...cluster.points, point].slice(-pointsMax);
  }
  lastMetrics = now;
  lastMetricsAtMs = atMs;
}

async function pollOnce(): Promise<void> {
  try {
    const [list, events] = await Promise.all([
      control<ControlNodeList>("GET", "/v1/control/nodes"),
      control<ControlEventList>("GET", `/v1/control/events?after=${lastEventId}`),
    ]);
    cluster.list = list;
    const fresh = events.events.filter((e) => e.id > lastEventId);
    if (fresh.length > 0) {
      lastEventId = fresh[fresh.length - 1]?.id ?? lastEventId;
      cluster.events = [...cluster.events, ...fresh].slice(-eventsMax);
    }
    cluster.error = null;
  } catch (error) {
    cluster.error = error instanceof Error ? error.message : String(error);
  } finally {
    cluster.nowMs = Date.now();
  }
}

let polls: Promise<void> = Promise.resolve();

/** One poll of the control API after the ones already under way (they never overlap). */
function serialPoll(): Promise<void> {
  polls = polls.then(pollOnce);
  return polls;
}

/**
 * Polls until the page closes: the control API and the nodes' metrics in two loops, so a node
 * slow to answer its metrics never delays the news that a node died. Each loop starts its next
 * round a second after the previous one ended.
 */
export function startPolling(): void {
  const controlLoop = () => {
    void serialPoll().finally(() => setTimeout(controlLoop, pollIntervalMs));
  };
  const metricsLoop = () => {
    void pollMetrics(cluster.list?.nodes ?? []).finally(() => setTimeout(metricsLoop, pollIntervalMs));
  };
  controlLoop();
  metricsLoop();
}

/** Polls at once (after an action), without waiting for the next tick. */
export function refreshNow(): Promise<void> {
  return serialPoll();
}
