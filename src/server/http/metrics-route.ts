// GET /metrics in the Prometheus text format, through prom-client: the process and event-loop
// defaults (when asked), the node's role, term, indexes, whether it knows a leader, leader
// changes, proposals by outcome, reads, each stream's size and each consumer group's backlog,
// messages in flight and dead letters, and (on the leader) each peer's lag. What is recorded on
// every request or every Ready is kept in fixed buckets instead (src/node's Histogram: HTTP
// requests per route with their latency, and the runtime's persist, apply, proposal and read
// barrier latencies) and rendered here in the same format after prom-client's. GET /v1/metrics
// answers the runtime's counters and histograms as JSON, for charts (the dashboard) that would
// otherwise parse the text format.
import type { FastifyInstance, FastifyReply, FastifyRequest, onResponseHookHandler } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { HistogramSnapshot, MetricsSnapshot } from "../../api/index.js";
import type { GroupMetrics } from "../../node/index.js";
import { Histogram, latencyBucketsMs } from "../../node/index.js";
import type { RaftStatus } from "../../raft/index.js";
import type { AuthFailures, RateLimitCounts, StreamSummary } from "../../service/index.js";
import { type ConnectionRefusals, refusalReasons } from "../connection-gate.js";

/** What the metrics endpoint reads. */
export interface MetricsSource {
  readonly metrics: GroupMetrics;
  status(): RaftStatus;
  readonly appliedIndex: number;
  /** Failed authentication and authorization attempts, when authentication is wired. */
  readonly authFailures?: AuthFailures;
  /** Requests the rate limiter refused (every protocol), when one is wired. */
  readonly rateLimits?: RateLimitCounts;
  /** Connections the client ports refused, by protocol and reason. */
  readonly connectionRefusals?: ConnectionRefusals;
  /** Each stream's size and its groups' progress (this node's view); without it, no stream metrics. */
  streams?(): readonly StreamSummary[];
  /** Also report prom-client's process and event-loop defaults (one per process: the CLI's node). */
  readonly processMetrics?: boolean;
}

const roles = ["follower", "pre-candidate", "candidate", "leader"] as const;

/** Upper bounds (seconds) of the HTTP request latency buckets. */
const httpBucketsS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One method, route pattern and status code's count of answered requests. */
interface RequestSeries {
  readonly labels: string;
  count: number;
}

/** One method and route pattern's request latency, in seconds. */
interface LatencySeries {
  readonly labels: string;
  readonly seconds: Histogram;
}

/**
 * A node's metrics: the prom-client registry, and what the HTTP server records per request. The
 * per-request series are plain numbers rendered in prom-client's format: a prom-client child's
 * `inc` and `observe` hash their labels again on every call, a cost each request paid twice.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly #source: MetricsSource;
  /**
   * The series of each method, status and route pattern seen, and the latency of each method and
   * route pattern. Bounded: Node's parser knows a fixed set of methods, and routes are the app's
   * patterns.
   */
  readonly #requests = new Map<string, RequestSeries>();
  readonly #latencies = new Map<string, LatencySeries>();

  constructor(source: MetricsSource) {
    this.#source = source;
    const registers = [this.registry];
    if (source.processMetrics === true) collectDefaultMetrics({ register: this.registry });
    this.#registerRaft(registers);
    this.#registerStreams(registers);
  }

  /**
   * The recorder of the answered requests of one route pattern (`route`, so labels stay few; made
   * once per route, so a request builds no key): its series by method and status, and its latency
   * by method.
   */
  routeRecorder(route: string): (method: string, status: number, seconds: number) => void {
    const byMethod = new Map<string, { latency: LatencySeries; byStatus: Map<number, RequestSeries> }>();
    return (method, status, seconds) => {
      let series = byMethod.get(method);
      if (series === undefined) {
        series = { latency: this.#latencySeries(method, route), byStatus: new Map() };
        byMethod.set(method, series);
      }
      let requests = series.byStatus.get(status);
      if (requests === undefined) {
        requests = this.#requestSeries(method, route, status);
        series.byStatus.set(status, requests);
      }
      requests.count++;
      series.latency.seconds.observe(seconds);
    };
  }

  #requestSeries(method: string, route: string, status: number): RequestSeries {
    const key = `${method} ${route} ${status}`;
    let requests = this.#requests.get(key);
    if (requests === undefined) {
      requests = { labels: labelsText({ method, route, status: String(status) }), count: 0 };
      this.#requests.set(key, requests);
    }
    return requests;
  }

  #latencySeries(method: string, route: string): LatencySeries {
    const key = `${method} ${route}`;
    let latency = this.#latencies.get(key);
    if (latency === undefined) {
      latency = { labels: labelsText({ method, route }), seconds: new Histogram(httpBucketsS) };
      this.#latencies.set(key, latency);
    }
    return latency;
  }

  /** The HTTP request counter and latency histogram in the Prometheus text format. */
  #renderRequests(): string {
    const lines = [
      "# HELP cairn_http_requests_total HTTP requests answered, by method, route pattern and status code.",
      "# TYPE cairn_http_requests_total counter",
    ];
    for (const series of this.#requests.values()) {
      lines.push(`cairn_http_requests_total{${series.labels}} ${series.count}`);
    }
    histogramHead(
      lines,
      "cairn_http_request_seconds",
      "Time to answer an HTTP request, by method and route pattern.",
    );
    for (const series of this.#latencies.values()) {
      histogramSamples(lines, "cairn_http_request_seconds", series.seconds, 1, series.labels);
    }
    return `${lines.join("\n")}\n`;
  }

  /** Everything, in the Prometheus text format. */
  async render(): Promise<string> {
    return `${await this.registry.metrics()}${this.#renderRequests()}${renderHistograms(this.#source.metrics)}`;
  }

  #registerRaft(registers: Registry[]): void {
    const source = this.#source;
    const gauge = (name: string, help: string, value: (s: RaftStatus) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(value(source.status()));
        },
      });
    new Gauge({
      name: "cairn_raft_role",
      help: "1 for the role this node has now.",
      labelNames: ["role"],
      registers,
      collect() {
        const role = source.status().role;
        for (const r of roles) this.set({ role: r }, role === r ? 1 : 0);
      },
    });
    gauge("cairn_raft_term", "Current Raft term.", (s) => s.term);
    gauge("cairn_raft_commit_index", "Highest log index known committed.", (s) => s.commitIndex);
    gauge(
      "cairn_raft_applied_index",
      "Highest log index applied to the state machine.",
      () => source.appliedIndex,
    );
    gauge("cairn_raft_last_index", "Last index in the local log.", (s) => s.lastIndex);
    gauge("cairn_raft_has_leader", "1 when this node knows a leader, else 0.", (s) =>
      s.leaderId === null ? 0 : 1,
    );
    const counter = (name: string, help: string, value: (m: GroupMetrics) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(value(source.metrics));
        },
      });
    counter(
      "cairn_leader_changes_total",
      "Times the leader this node knows changed.",
      (m) => m.leaderChanges,
    );
    counter("cairn_proposals_total", "Proposals made on this node.", (m) => m.proposals);
    counter("cairn_proposals_failed_total", "Proposals that failed or timed out.", (m) => m.proposalsFailed);
    counter("cairn_reads_total", "Linearizable read barriers requested.", (m) => m.reads);
    counter("cairn_reads_failed_total", "Read barriers that failed.", (m) => m.readsFailed);
    counter("cairn_entries_applied_total", "Entries applied to the state machine.", (m) => m.entriesApplied);
    counter(
      "cairn_snapshots_taken_total",
      "Snapshots this node captured from its own state (each writes the whole state to a file).",
      (m) => m.snapshotsTaken,
    );
    counter(
      "cairn_snapshot_bytes_written_total",
      "State bytes this node's own snapshot captures wrote.",
      (m) => m.snapshotBytesWritten,
    );
    counter(
      "cairn_log_compactions_total",
      "Log compactions to the state store's durable applied index (only the base's meta is written).",
      (m) => m.logCompactions,
    );
    new Counter({
      name: "cairn_proposal_outcomes_total",
      help: 'Proposals made on this node by how they ended: "applied" or the error code.',
      labelNames: ["outcome"],
      registers,
      collect() {
        this.reset();
        for (const [outcome, count] of source.metrics.proposalOutcomes) this.inc({ outcome }, count);
      },
    });
    const auth = source.authFailures;
    if (auth !== undefined) {
      new Counter({
        name: "cairn_auth_failures_total",
        help: "Requests refused by authentication (no or bad token) or authorization (a permission missing).",
        labelNames: ["reason"],
        registers,
        collect() {
          this.reset();
          this.inc({ reason: "unauthenticated" }, auth.unauthenticated);
          this.inc({ reason: "forbidden" }, auth.forbidden);
        },
      });
    }
    const rateLimits = source.rateLimits;
    if (rateLimits !== undefined) {
      new Counter({
        name: "cairn_rate_limited_total",
        help: "Requests refused by a rate limit (HTTP 429, Redis -BUSY, text ERROR: busy, gRPC RESOURCE_EXHAUSTED), every protocol together.",
        registers,
        collect() {
          this.reset();
          this.inc(rateLimits.refused);
        },
      });
    }
    const refusals = source.connectionRefusals;
    if (refusals !== undefined) {
      new Counter({
        name: "cairn_connections_refused_total",
        help: "Client connections ended before being served, by protocol and reason (listener-full, address-full: a connection limit; tls-handshake: a failed TLS handshake).",
        labelNames: ["protocol", "reason"],
        registers,
        collect() {
          this.reset();
          for (const [protocol, counts] of refusals.entries()) {
            for (const reason of refusalReasons) this.inc({ protocol, reason }, counts[reason]);
          }
        },
      });
    }
    new Gauge({
      name: "cairn_peer_lag_entries",
      help: "Entries a peer is behind the leader's log (leader only).",
      labelNames: ["peer"],
      registers,
      collect() {
        this.reset();
        const s = source.status();
        for (const p of s.peers) this.set({ peer: String(p.id) }, Math.max(0, s.lastIndex - p.matchIndex));
      },
    });
    new Gauge({
      name: "cairn_state_check_index",
      help: "Latest applied index at which replicas' state hashes were compared (0: none yet).",
      registers,
      collect() {
        this.set(source.metrics.stateCheckIndex);
      },
    });
    new Gauge({
      name: "cairn_state_check_mismatches",
      help: "Nodes whose state hash differs from the majority's at that index (an alarm when above 0).",
      registers,
      collect() {
        this.set(source.metrics.stateCheckDiffering.length);
      },
    });
    new Gauge({
      name: "cairn_recovering",
      help: "1 while this node recovers discarded or damaged data from the leader (no votes, no local reads).",
      registers,
      collect() {
        this.set(source.metrics.recovering ? 1 : 0);
      },
    });
    new Counter({
      name: "cairn_repairs_in_place_total",
      help: "Repairs of damage found while running that this process ran without a restart.",
      registers,
      collect() {
        this.reset();
        this.inc(source.metrics.repairsInPlace);
      },
    });
    new Counter({
      name: "cairn_state_check_alarms_total",
      help: "Times the state check named each node as holding a state that differs from the majority's.",
      labelNames: ["node"],
      registers,
      collect() {
        this.reset();
        for (const [name, count] of source.metrics.stateCheckAlarms) this.inc({ node: name }, count);
      },
    });
    new Gauge({
      name: "cairn_state_check_differs",
      help: "1 for each node whose state differs from the majority's.",
      labelNames: ["node"],
      registers,
      collect() {
        this.reset();
        for (const name of source.metrics.stateCheckDiffering) this.set({ node: name }, 1);
      },
    });
  }

  #registerStreams(registers: Registry[]): void {
    const read = this.#source.streams?.bind(this.#source);
    if (read === undefined) return;
    // One read per scrape, shared by the gauges below (prom-client collects them one by one).
    let summary: readonly StreamSummary[] = [];
    const perStream = (name: string, help: string, value: (s: StreamSummary) => number, first = false) =>
      new Gauge({
        name,
        help,
        labelNames: ["stream"],
        registers,
        collect() {
          if (first) summary = read();
          this.reset();
          for (const s of summary) this.set({ stream: s.name }, value(s));
        },
      });
    type GroupSummary = StreamSummary["groups"][number];
    const perGroup = (name: string, help: string, value: (g: GroupSummary) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["stream", "group"],
        registers,
        collect() {
          this.reset();
          for (const s of summary)
            for (const g of s.groups) this.set({ stream: s.name, group: g.name }, value(g));
        },
      });
    perStream("cairn_stream_messages", "Messages a stream holds.", (s) => s.messages, true);
    perStream("cairn_stream_bytes", "Bytes of the messages a stream holds.", (s) => s.bytes);
    perGroup("cairn_group_backlog", "Messages a consumer group has not been handed yet.", (g) => g.backlog);
    perGroup(
      "cairn_group_pending",
      "Messages a consumer group's consumers hold unacknowledged.",
      (g) => g.pending,
    );
    perGroup(
      "cairn_group_dead_letters",
      "Messages a consumer group moved to its dead-letter stream.",
      (g) => g.deadLettered,
    );
  }
}

/** Label pairs as Prometheus writes them, values escaped as the text format asks. */
function labelsText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(
      ([name, value]) =>
        `${name}="${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`,
    )
    .join(",");
}

function histogramHead(lines: string[], name: string, help: string): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
}

/** One series of a histogram; `unitsPerSecond` turns its values into seconds; `labels` as text. */
function histogramSamples(
  lines: string[],
  name: string,
  h: Histogram,
  unitsPerSecond: number,
  labels = "",
): void {
  const extra = labels === "" ? "" : `,${labels}`;
  const own = labels === "" ? "" : `{${labels}}`;
  let cumulative = 0;
  h.bounds.forEach((bound, i) => {
    cumulative += h.counts[i] ?? 0;
    lines.push(`${name}_bucket{le="${bound / unitsPerSecond}"${extra}} ${cumulative}`);
  });
  lines.push(
    `${name}_bucket{le="+Inf"${extra}} ${h.count}`,
    `${name}_sum${own} ${h.sum / unitsPerSecond}`,
    `${name}_count${own} ${h.count}`,
  );
}

function histogram(lines: string[], name: string, help: string, h: Histogram): void {
  histogramHead(lines, name, help);
  histogramSamples(lines, name, h, 1000);
}

/** The runtime's latency histograms in the Prometheus text format. */
function renderHistograms(m: GroupMetrics): string {
  const lines: string[] = [];
  histogram(
    lines,
    "cairn_persist_seconds",
    "Time to make one Ready durable (WAL fsync included).",
    m.persistMs,
  );
  histogram(lines, "cairn_apply_seconds", "Time to apply one batch of committed entries.", m.applyMs);
  histogram(
    lines,
    "cairn_proposal_seconds",
    "Time from proposal to applied, for successful proposals.",
    m.proposalMs,
  );
  histogram(lines, "cairn_read_barrier_seconds", "A linearizable read's wait for its barrier.", m.readMs);
  return `${lines.join("\n")}\n`;
}

function snapshotOf(h: Histogram): HistogramSnapshot {
  return { counts: [...h.counts], sumMs: h.sum, count: h.count };
}

/** The metrics of one group as JSON (GET /v1/metrics). */
export function metricsSnapshot(source: MetricsSource): MetricsSnapshot {
  const s = source.status();
  const m = source.metrics;
  return {
    role: s.role,
    term: s.term,
    commitIndex: s.commitIndex,
    appliedIndex: source.appliedIndex,
    lastIndex: s.lastIndex,
    leaderId: s.leaderId ?? 0,
    latencyBucketsMs,
    counters: {
      proposals: m.proposals,
      proposalsFailed: m.proposalsFailed,
      reads: m.reads,
      readsFailed: m.readsFailed,
      entriesApplied: m.entriesApplied,
      ...(source.authFailures !== undefined
        ? {
            authUnauthenticated: source.authFailures.unauthenticated,
            authForbidden: source.authFailures.forbidden,
          }
        : {}),
    },
    histograms: {
      proposalMs: snapshotOf(m.proposalMs),
      readMs: snapshotOf(m.readMs),
      persistMs: snapshotOf(m.persistMs),
      applyMs: snapshotOf(m.applyMs),
    },
  };
}

/**
 * Registers GET /metrics (Prometheus text) and GET /v1/metrics (JSON), and counts every request the
 * app answers, by route pattern: routes registered after this call count through their own
 * onResponse hook (the route is known when the hook is made, so a request does not build
 * fastify's `routeOptions` to learn it); the answer records a request no route matched
 * ("unmatched") from the not-found handler.
 */
export function registerMetricsRoute(
  app: FastifyInstance,
  source: MetricsSource,
): (request: FastifyRequest, reply: FastifyReply) => void {
  const metrics = new NodeMetrics(source);
  app.addHook("onRoute", (route) => {
    const record = metrics.routeRecorder(route.url);
    const hook: onResponseHookHandler = (request, reply, done) => {
      record(request.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    };
    const own = route.onResponse;
    route.onResponse = own === undefined ? [hook] : [...(Array.isArray(own) ? own : [own]), hook];
  });
  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) =>
    reply.header("content-type", metrics.registry.contentType).send(await metrics.render()),
  );
  app.get(
    "/v1/metrics",
    { schema: { summary: "Counters and latency histograms as JSON (the same as /metrics)" } },
    async () => metricsSnapshot(source),
  );
  const unmatched = metrics.routeRecorder("unmatched");
  return (request, reply) => unmatched(request.method, reply.statusCode, reply.elapsedTime / 1000);
}
