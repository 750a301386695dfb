// GET /metrics as Prometheus scrapes it: the runtime's gauges and counters (has_leader, not a leader
// id), proposals by outcome, leader changes, HTTP requests per route with their latency, each
// stream's size and each group's backlog, in-flight messages and dead letters, and the runtime's
// latency histograms; the text parses line by line. Runs the app over a single-replica log with a
// hand-made Raft status, through fastify's inject.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupMetrics } from "../../../../src/node/index.js";
import { groupId, logIndex, nodeId, type RaftStatus, term } from "../../../../src/raft/index.js";
import { buildHttpApp } from "../../../../src/server/http/index.js";
import { KvService } from "../../../../src/service/kv/kv-service.js";
import { StreamService } from "../../../../src/service/streams/stream-service.js";
import { LocalReplication } from "../../../support/local-replication.js";

function status(leaderId: number | null): RaftStatus {
  return {
    id: nodeId(1),
    groupId: groupId(1),
    role: leaderId === 1 ? "leader" : "follower",
    term: term(3),
    votedFor: null,
    leaderId: leaderId === null ? null : nodeId(leaderId),
    commitIndex: logIndex(7),
    appliedIndex: logIndex(7),
    persistedIndex: logIndex(7),
    lastIndex: logIndex(7),
    snapshotIndex: logIndex(0),
    conf: { voters: [nodeId(1)], learners: [] },
    leadTransferee: null,
    ticksSinceLeaderContact: 0,
    ticks: 0,
    peers: [],
  } as unknown as RaftStatus;
}

/** The sample lines of a metric: `name{labels} value`. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    out.set(match[2] ?? "", Number(match[3]));
  }
  return out;
}

describe("GET /metrics", () => {
  it("reports the runtime, requests per route, streams and groups in the Prometheus format", async () => {
    const log = new LocalReplication();
    const kv = new KvService(log);
    const streams = new StreamService(log, log.applied);
    const metrics = new GroupMetrics();
    let leader: number | null = 1;
    metrics.proposals = 5;
    metrics.leaderChanges = 2;
    metrics.countOutcome("applied");
    metrics.countOutcome("applied");
    metrics.countOutcome("ERR_TIMEOUT");
    metrics.persistMs.observe(3);
    const app = buildHttpApp({
      kv,
      streams,
      readiness: () => ({ ready: true }),
      metrics: {
        metrics,
        status: () => status(leader),
        appliedIndex: 7,
        streams: () => streams.localSummary(),
      },
    });
    await streams.create("orders", {});
    for (let i = 0; i < 3; i++)
      await streams.append("orders", { payload: new TextEncoder().encode(`m${i}`) });
    await streams.createGroup("orders", "billing", { maxDeliveries: 1 });
    await streams.fetch("orders", "billing", "c1", { max: 1 });
    await app.inject({ method: "GET", url: "/v1/kv/a" });
    await app.inject({ method: "GET", url: "/v1/kv/b" });
    await app.inject({ method: "GET", url: "/no/such/route" });

    const response = await app.inject({ method: "GET", url: "/metrics" });
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
    const text = response.body;
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
      assert.match(line, /^[a-z_]+(\{[^}]*\})? -?[\d.e+-]+$|^[a-z_]+(\{[^}]*\})? (\+Inf|NaN)$/, line);
    }
    assert.equal(samples(text, "cairn_raft_role").get('{role="leader"}'), 1);
    assert.equal(samples(text, "cairn_raft_has_leader").get(""), 1);
    assert.equal(samples(text, "cairn_raft_leader_id").size, 0, "no leader id as a value");
    assert.equal(samples(text, "cairn_leader_changes_total").get(""), 2);
    assert.equal(samples(text, "cairn_proposals_total").get(""), 5);
    assert.equal(samples(text, "cairn_proposal_outcomes_total").get('{outcome="applied"}'), 2);
    assert.equal(samples(text, "cairn_proposal_outcomes_total").get('{outcome="ERR_TIMEOUT"}'), 1);
    assert.equal(samples(text, "cairn_persist_seconds_count").get(""), 1);
    const requests = samples(text, "cairn_http_requests_total");
    assert.equal(requests.get('{method="GET",route="/v1/kv/*",status="404"}'), 2);
    assert.equal(requests.get('{method="GET",route="unmatched",status="404"}'), 1);
    assert.equal(samples(text, "cairn_http_request_seconds_count").get('{method="GET",route="/v1/kv/*"}'), 2);
    // The request histogram keeps prom-client's shape: cumulative buckets in seconds, le first.
    const buckets = samples(text, "cairn_http_request_seconds_bucket");
    assert.equal(buckets.get('{le="+Inf",method="GET",route="/v1/kv/*"}'), 2);
    assert.equal(buckets.get('{le="10",method="GET",route="/v1/kv/*"}'), 2);
    assert.ok(buckets.has('{le="0.0005",method="GET",route="/v1/kv/*"}'));
    assert.match(text, /^# TYPE cairn_http_request_seconds histogram$/m);
    assert.match(text, /^# TYPE cairn_http_requests_total counter$/m);
    assert.equal(samples(text, "cairn_stream_messages").get('{stream="orders"}'), 3);
    assert.equal(samples(text, "cairn_group_backlog").get('{stream="orders",group="billing"}'), 2);
    assert.equal(samples(text, "cairn_group_pending").get('{stream="orders",group="billing"}'), 1);
    assert.equal(samples(text, "cairn_group_dead_letters").get('{stream="orders",group="billing"}'), 0);

    leader = null;
    const again = (await app.inject({ method: "GET", url: "/metrics" })).body;
    assert.equal(samples(again, "cairn_raft_has_leader").get(""), 0);
    await app.close();
  });

  it("reports rate-limit refusals and failed authentication attempts", async () => {
    const log = new LocalReplication();
    const rateLimits = { refused: 0 };
    const authFailures = { unauthenticated: 0, forbidden: 0 };
    const app = buildHttpApp({
      kv: new KvService(log),
      readiness: () => ({ ready: true }),
      metrics: {
        metrics: new GroupMetrics(),
        status: () => status(1),
        appliedIndex: 7,
        rateLimits,
        authFailures,
      },
    });
    rateLimits.refused = 4;
    authFailures.unauthenticated = 2;
    authFailures.forbidden = 1;
    const text = (await app.inject({ method: "GET", url: "/metrics" })).body;
    assert.equal(samples(text, "cairn_rate_limited_total").get(""), 4);
    const auth = samples(text, "cairn_auth_failures_total");
    assert.equal(auth.get('{reason="unauthenticated"}'), 2);
    assert.equal(auth.get('{reason="forbidden"}'), 1);
    await app.close();
  });
});
