// GET /metrics in the Prometheus text format: the node's role, term and indexes, its proposal and
// read counters, persist / apply / proposal / read latency histograms, and (on the leader) each
// peer's lag. GET /v1/metrics answers the same counters and histograms as JSON, for charts (the
// dashboard) that would otherwise parse the text format.
import type { FastifyInstance } from "fastify";
import type { HistogramSnapshot, MetricsSnapshot } from "../../api/index.js";
import type { GroupMetrics } from "../../node/index.js";
import { type Histogram, latencyBucketsMs } from "../../node/index.js";
import type { RaftStatus } from "../../raft/index.js";
import type { AuthFailures } from "../../service/index.js";

/** What the metrics endpoint reads. */
export interface MetricsSource {
  readonly metrics: GroupMetrics;
  status(): RaftStatus;
  readonly appliedIndex: number;
  /** Failed authentication and authorization attempts, when authentication is wired. */
  readonly authFailures?: AuthFailures;
}

const roles = ["follower", "pre-candidate", "candidate", "leader"] as const;

function histogram(lines: string[], name: string, help: string, h: Histogram): void {
  lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  let cumulative = 0;
  latencyBucketsMs.forEach((bound, i) => {
    cumulative += h.counts[i] ?? 0;
    lines.push(`${name}_bucket{le="${bound / 1000}"} ${cumulative}`);
  });
  lines.push(
    `${name}_bucket{le="+Inf"} ${h.count}`,
    `${name}_sum ${h.sum / 1000}`,
    `${name}_count ${h.count}`,
  );
}

/** Renders the metrics text for one group. */
export function renderMetrics(source: MetricsSource): string {
  const s = source.status();
  const m = source.metrics;
  const lines: string[] = [];
  const gauge = (name: string, help: string, value: number) =>
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
  const counter = (name: string, help: string, value: number) =>
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
  lines.push("# HELP cairn_raft_role 1 for the role this node has now.", "# TYPE cairn_raft_role gauge");
  for (const role of roles) lines.push(`cairn_raft_role{role="${role}"} ${s.role === role ? 1 : 0}`);
  gauge("cairn_raft_term", "Current Raft term.", s.term);
  gauge("cairn_raft_commit_index", "Highest log index known committed.", s.commitIndex);
  gauge("cairn_raft_applied_index", "Highest log index applied to the state machine.", source.appliedIndex);
  gauge("cairn_raft_last_index", "Last index in the local log.", s.lastIndex);
  gauge("cairn_raft_leader_id", "Node id of the known leader, 0 if none.", s.leaderId ?? 0);
  counter("cairn_proposals_total", "Proposals made on this node.", m.proposals);
  counter("cairn_proposals_failed_total", "Proposals that failed or timed out.", m.proposalsFailed);
  counter("cairn_reads_total", "Linearizable read barriers requested.", m.reads);
  counter("cairn_reads_failed_total", "Read barriers that failed.", m.readsFailed);
  counter("cairn_entries_applied_total", "Entries applied to the state machine.", m.entriesApplied);
  if (source.authFailures !== undefined) {
    lines.push(
      "# HELP cairn_auth_failures_total Requests refused by authentication (no or bad token) or authorization (a permission missing).",
      "# TYPE cairn_auth_failures_total counter",
      `cairn_auth_failures_total{reason="unauthenticated"} ${source.authFailures.unauthenticated}`,
      `cairn_auth_failures_total{reason="forbidden"} ${source.authFailures.forbidden}`,
    );
  }
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
  lines.push(
    "# HELP cairn_peer_lag_entries Entries a peer is behind the leader's log (leader only).",
    "# TYPE cairn_peer_lag_entries gauge",
  );
  for (const p of s.peers)
    lines.push(`cairn_peer_lag_entries{peer="${p.id}"} ${Math.max(0, s.lastIndex - p.matchIndex)}`);
  gauge(
    "cairn_state_check_index",
    "Latest applied index at which replicas' state hashes were compared (0: none yet).",
    m.stateCheckIndex,
  );
  gauge(
    "cairn_state_check_mismatches",
    "Nodes whose state hash differs from the majority's at that index (an alarm when above 0).",
    m.stateCheckDiffering.length,
  );
  lines.push(
    "# HELP cairn_state_check_differs 1 for each node whose state differs from the majority's.",
    "# TYPE cairn_state_check_differs gauge",
  );
  for (const name of m.stateCheckDiffering)
    lines.push(`cairn_state_check_differs{node="${name.replace(/["\\\n]/g, "_")}"} 1`);
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

/** Registers GET /metrics (Prometheus text) and GET /v1/metrics (JSON). */
export function registerMetricsRoute(app: FastifyInstance, source: MetricsSource): void {
  app.get("/metrics", { schema: { hide: true } }, async (_request, reply) =>
    reply.header("content-type", "text/plain; version=0.0.4; charset=utf-8").send(renderMetrics(source)),
  );
  app.get(
    "/v1/metrics",
    { schema: { summary: "Counters and latency histograms as JSON (the same as /metrics)" } },
    async () => metricsSnapshot(source),
  );
}
