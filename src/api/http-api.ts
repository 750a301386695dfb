// The public HTTP API's shapes, as typebox schemas with their static types: what the nodes answer
// and accept on /v1, one definition that the routes, the TypeScript client and the dashboard share.
// The routes validate with the schemas; the client and the dashboard import the types only, so the
// browser bundle carries no validator.
import { type Static, Type } from "typebox";

/** How a value or payload travels: UTF-8 text, or base64 for bytes that are not text. */
export const Encoding = Type.Union([Type.Literal("utf8"), Type.Literal("base64")]);
/** How a read is served: through the leader's ReadIndex (linearizable) or from local state (stale). */
export const Consistency = Type.Union([Type.Literal("linearizable"), Type.Literal("stale")]);
/** How a value or payload travels. */
export type Encoding = Static<typeof Encoding>;
/** How a read is served. */
export type Consistency = Static<typeof Consistency>;

/** The one error body of the HTTP API: a stable code, a message, and the code's details. */
export const ErrorBody = Type.Object({
  error: Type.Object(
    { code: Type.String(), message: Type.String() },
    { additionalProperties: true, description: "plus the details the code carries" },
  ),
});
/** The one error body of the HTTP API. */
export type ErrorBody = Static<typeof ErrorBody>;

/** How far behind a stale read may be. */
export const Staleness = Type.Object({
  appliedIndex: Type.Integer({ description: "Raft index of the last entry applied to the state read" }),
  // A number, not an integer: it is measured on a monotonic clock with a fraction, and a response
  // schema of integer made the serializer fail a stale list with ERR_INTERNAL.
  leaderContactAgeMs: Type.Union([Type.Number(), Type.Null()], {
    description: "milliseconds since this node last had contact with a leader (a quorum, on a leader)",
  }),
});
/** How far behind a stale read may be. */
export type Staleness = Static<typeof Staleness>;

// ---- Query strings ----
// Every route's query parameters. A route refuses a parameter it does not know, as it refuses an
// unknown body field; the client builds its query strings from the same types.

/** A route that takes no query parameters. */
export const NoQuery = Type.Object({}, { additionalProperties: false });
/** A route whose only query parameter is how the read is served. */
export const ConsistencyQuery = Type.Object(
  { consistency: Type.Optional(Consistency) },
  { additionalProperties: false },
);
/** A route whose only query parameter is how the read is served. */
export type ConsistencyQuery = Static<typeof ConsistencyQuery>;
/** A route whose only query parameter is how payloads travel in its answer. */
export const EncodingQuery = Type.Object(
  { encoding: Type.Optional(Encoding) },
  { additionalProperties: false },
);
/** A read of one item: how it is served and how its bytes travel. */
export const ReadOneQuery = Type.Object(
  { consistency: Type.Optional(Consistency), encoding: Type.Optional(Encoding) },
  { additionalProperties: false },
);
/** A read of one item. */
export type ReadOneQuery = Static<typeof ReadOneQuery>;
/** GET /v1/kv: a prefix or a start/end range, one page at a time. */
export const KvListQuery = Type.Object(
  {
    prefix: Type.Optional(Type.String()),
    start: Type.Optional(Type.String()),
    end: Type.Optional(Type.String()),
    limit: Type.Optional(Type.Integer({ minimum: 1 })),
    after: Type.Optional(Type.String({ description: "the `next` token of the previous page" })),
    consistency: Type.Optional(Consistency),
    encoding: Type.Optional(Encoding),
  },
  { additionalProperties: false },
);
/** GET /v1/kv. */
export type KvListQuery = Static<typeof KvListQuery>;
/** DELETE /v1/kv/{key}: an optional revision condition. */
export const KvDeleteQuery = Type.Object(
  { ifRevision: Type.Optional(Type.Integer({ minimum: 0 })) },
  { additionalProperties: false },
);
/** DELETE /v1/kv/{key}. */
export type KvDeleteQuery = Static<typeof KvDeleteQuery>;
/** GET /v1/streams/{name}/messages: a sequence range or a start time; waitMs long-polls. */
export const StreamReadQuery = Type.Object(
  {
    from: Type.Optional(Type.Integer({ minimum: 0 })),
    fromTimeMs: Type.Optional(Type.Integer({ minimum: 0 })),
    to: Type.Optional(Type.Integer({ minimum: 0, description: "last sequence to read (inclusive)" })),
    limit: Type.Optional(Type.Integer({ minimum: 1 })),
    waitMs: Type.Optional(Type.Integer({ minimum: 0 })),
    consistency: Type.Optional(Consistency),
    encoding: Type.Optional(Encoding),
  },
  { additionalProperties: false },
);
/** GET /v1/streams/{name}/messages. */
export type StreamReadQuery = Static<typeof StreamReadQuery>;
/** GET /v1/streams/{name}/events: where to start following. */
export const StreamEventsQuery = Type.Object(
  { from: Type.Optional(Type.Integer({ minimum: 0 })), encoding: Type.Optional(Encoding) },
  { additionalProperties: false },
);
/** GET /v1/streams/{name}/events. */
export type StreamEventsQuery = Static<typeof StreamEventsQuery>;

// ---- Key-value ----

/** A key as listed: its value and revisions. */
export const KvItem = Type.Object({
  key: Type.String(),
  value: Type.String(),
  encoding: Encoding,
  revision: Type.Integer({ description: "modify revision of the key" }),
  createRevision: Type.Integer(),
  version: Type.Integer(),
  expireAtMs: Type.Optional(Type.Integer({ description: "leader time at which the key expires" })),
});
/** A key as listed. */
export type KvItem = Static<typeof KvItem>;

/** GET /v1/kv/{key}: the key, the group revision it was read at, and staleness for stale reads. */
export type KvGetAnswer = KvItem & { readonly groupRevision: number; readonly staleness?: Staleness };

/** PUT /v1/kv/{key}. */
export const KvPutBody = Type.Object(
  {
    value: Type.String(),
    encoding: Type.Optional(Encoding),
    ifRevision: Type.Optional(Type.Integer({ minimum: 0 })),
    ifAbsent: Type.Optional(Type.Boolean()),
    ttlMs: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
/** PUT /v1/kv/{key}. */
export type KvPutBody = Static<typeof KvPutBody>;

/** The answer to a key write. */
export interface KvWriteAck {
  readonly revision: number;
  readonly duplicate: boolean;
}

/** The answer to a key delete. */
export interface KvDeleteAck {
  readonly deleted: boolean;
  readonly revision: number;
  readonly duplicate: boolean;
}

/** GET /v1/kv: one page of keys. */
export const KvPage = Type.Object({
  items: Type.Array(KvItem),
  next: Type.Union([Type.String(), Type.Null()]),
  staleness: Type.Optional(Staleness),
});
/** GET /v1/kv: one page of keys. */
export type KvPage = Static<typeof KvPage>;

// ---- Streams ----

/** A stream's settings. */
export interface StreamConfig {
  readonly maxMessages: number;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
  readonly discard: "old" | "new";
  readonly messageBytesMax: number;
  readonly dedupeWindowMs: number;
}

/** GET /v1/streams/{name}, and each item of GET /v1/streams. */
export interface StreamInfo {
  readonly name: string;
  readonly config: StreamConfig;
  readonly createdMs: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly messages: number;
  readonly bytes: number;
  readonly groups: readonly string[];
}

/** POST /v1/streams/{name}/messages. */
export const AppendBody = Type.Object(
  {
    payload: Type.String(),
    encoding: Type.Optional(Encoding),
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    key: Type.Optional(Type.String()),
    id: Type.Optional(Type.String({ description: "message id, deduplicated within the stream's window" })),
    expectedLastSeq: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
/** POST /v1/streams/{name}/messages. */
export type AppendBody = Static<typeof AppendBody>;

/** POST /v1/streams/{name}/messages with an array: a batch, appended by one replicated write. */
export const AppendBatchBody = Type.Array(AppendBody, { minItems: 1 });
/** POST /v1/streams/{name}/messages with an array. */
export type AppendBatchBody = Static<typeof AppendBatchBody>;

/** POST /v1/streams/{name}/messages: `atomic=true` (a batch only) appends all of it or none. */
export const AppendQuery = Type.Object(
  { atomic: Type.Optional(Type.Boolean({ description: "a batch only: all messages or none" })) },
  { additionalProperties: false },
);

/** The stream settings a create or an update may give. */
const streamSettings = {
  maxMessages: Type.Optional(Type.Integer({ minimum: 0, description: "0: no limit" })),
  maxBytes: Type.Optional(Type.Integer({ minimum: 0, description: "0: no limit" })),
  maxAgeMs: Type.Optional(Type.Integer({ minimum: 0, description: "0: no limit" })),
  discard: Type.Optional(Type.Union([Type.Literal("old"), Type.Literal("new")])),
  messageBytesMax: Type.Optional(Type.Integer({ minimum: 1 })),
  dedupeWindowMs: Type.Optional(Type.Integer({ minimum: 0 })),
};

/** POST /v1/streams. */
export const StreamCreateBody = Type.Object(
  { name: Type.String(), ...streamSettings },
  { additionalProperties: false },
);
/** POST /v1/streams. */
export type StreamCreateBody = Static<typeof StreamCreateBody>;

/** PATCH /v1/streams/{name}: the settings to change. */
export const StreamUpdateBody = Type.Object(streamSettings, { additionalProperties: false });
/** PATCH /v1/streams/{name}: the settings to change. */
export type StreamUpdateBody = Static<typeof StreamUpdateBody>;

/** Where a new consumer group starts: "first", "last", "new", a sequence or a time. */
export const StartAt = Type.Union([
  Type.Literal("first"),
  Type.Literal("last"),
  Type.Literal("new"),
  Type.Object({ seq: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
  Type.Object({ timeMs: Type.Integer({ minimum: 0 }) }, { additionalProperties: false }),
]);

/** The group settings that may change after creation. */
const groupSettings = {
  ackWaitMs: Type.Optional(Type.Integer({ minimum: 1 })),
  maxDeliveries: Type.Optional(Type.Integer({ minimum: 0 })),
  maxAckPending: Type.Optional(Type.Integer({ minimum: 1 })),
};

/** POST /v1/streams/{name}/groups. */
export const GroupBody = Type.Object(
  {
    group: Type.String(),
    startAt: Type.Optional(StartAt),
    deadLetterStream: Type.Optional(Type.String()),
    ...groupSettings,
  },
  { additionalProperties: false },
);

/** POST /v1/streams/{name}/groups. */
export type GroupBody = Static<typeof GroupBody>;

/** PATCH /v1/streams/{name}/groups/{group}: the settings to change. */
export const GroupUpdateBody = Type.Object(groupSettings, { additionalProperties: false });
/** PATCH /v1/streams/{name}/groups/{group}: the settings to change. */
export type GroupUpdateBody = Static<typeof GroupUpdateBody>;

/** POST /v1/streams/{name}/groups/{group}/fetch. */
export const FetchBody = Type.Object(
  {
    consumer: Type.String(),
    max: Type.Optional(Type.Integer({ minimum: 1 })),
    waitMs: Type.Optional(Type.Integer({ minimum: 0 })),
    ack: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1 }), {
        description: "sequences to acknowledge first, in the same replicated entry as the fetch",
      }),
    ),
  },
  { additionalProperties: false },
);

/** POST /v1/streams/{name}/groups/{group}/fetch. */
export type FetchBody = Static<typeof FetchBody>;

/** The answer to POST /v1/streams/{name}/groups/{group}/fetch. */
export interface FetchAnswer {
  readonly messages: StreamMessage[];
  /** True when the request's Idempotency-Key was seen before: the messages are the original's. */
  readonly duplicate: boolean;
  /** With `ack` in the request: what it acknowledged, as POST .../ack answers. */
  readonly acked?: SettleAnswer;
}

/** The answer to POST /v1/streams/{name}/groups/{group}/{ack|nack|extend|term}. */
export interface SettleAnswer {
  /** The sequences settled. */
  readonly settled: readonly number[];
  /** The sequences that were not in flight for the group (acknowledged before, or never fetched). */
  readonly notPending: readonly number[];
}

/** POST /v1/streams/{name}/groups/{group}/{ack|nack|extend|term}. */
export const SettleBody = Type.Object(
  {
    seqs: Type.Array(Type.Integer({ minimum: 1 })),
    delayMs: Type.Optional(Type.Integer({ minimum: 0, description: "nack only" })),
  },
  { additionalProperties: false },
);
/** POST /v1/streams/{name}/groups/{group}/{ack|nack|extend|term}. */
export type SettleBody = Static<typeof SettleBody>;

/** The answer to an append. */
export interface AppendAck {
  readonly seq: number;
  readonly id: string;
  readonly duplicate: boolean;
}

/** What one message of a batch append answers, tagged `ok`: its ack, or the error that refused it. */
export type AppendBatchItem =
  | (AppendAck & { readonly ok: true })
  | {
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string } & Readonly<Record<string, unknown>>;
    };

/** The answer to a batch append: one item per message, in order. */
export interface AppendBatchAck {
  readonly results: readonly AppendBatchItem[];
  /** True when the request's Idempotency-Key was seen before: the results are the original's. */
  readonly duplicate: boolean;
}

/** A message as read or fetched. */
export interface StreamMessage {
  readonly seq: number;
  readonly id: string;
  readonly tsMs: number;
  readonly payload: string;
  readonly encoding: Encoding;
  readonly headers: Readonly<Record<string, string>>;
  readonly key?: string;
  /** For fetched messages: deliveries to the group so far, this one included. */
  readonly deliveries?: number;
}

/** GET /v1/streams/{name}/messages: a page of messages. */
export interface MessagePage {
  readonly messages: StreamMessage[];
  /** The sequence to read from next. */
  readonly next: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly staleness?: Staleness;
}

/** GET /v1/streams. */
export interface StreamList {
  readonly streams: readonly StreamInfo[];
}

/** A consumer group's settings. */
export interface GroupConfig {
  readonly ackWaitMs: number;
  readonly maxDeliveries: number;
  readonly deadLetterStream: string;
  readonly maxAckPending: number;
}

/** One consumer in a group's description. */
export interface GroupConsumer {
  /** Messages it holds in flight. */
  readonly pending: number;
  /** Of those, how many are past their ack deadline. */
  readonly overdue: number;
  /** Deliveries it was handed, redeliveries included. */
  readonly delivered: number;
  /** Of those, deliveries of a message the group had delivered before. */
  readonly redelivered: number;
}

/** GET /v1/streams/{name}/groups/{group}, and each item of GET /v1/streams/{name}/groups. */
export interface GroupInfo {
  readonly name: string;
  readonly stream: string;
  readonly config: GroupConfig;
  readonly createdMs: number;
  /** The next sequence never delivered to the group. */
  readonly nextSeq: number;
  /** Every sequence at or below this is settled. */
  readonly ackFloor: number;
  /** Messages in flight. */
  readonly pending: number;
  /** Messages the group has not seen yet. */
  readonly backlog: number;
  /** Deliveries, redeliveries included (first deliveries: `delivered - redelivered`). */
  readonly delivered: number;
  /** Deliveries of a message the group had delivered before (deadline passed, nacked, claimed). */
  readonly redelivered: number;
  readonly acked: number;
  readonly deadLettered: number;
  /** Dead letters the dead-letter stream refused (it was configured with limits), now gone. */
  readonly deadLettersLost: number;
  /** Every consumer the group knows or that holds messages, by name. */
  readonly consumers: Readonly<Record<string, GroupConsumer>>;
}

/** GET /v1/streams/{name}/groups. */
export interface GroupList {
  readonly groups: readonly GroupInfo[];
}

// ---- Cluster ----

/** One member in the cluster status. */
export interface MemberStatus {
  readonly id: number;
  readonly name: string | null;
  readonly voter: boolean;
  readonly httpUrl: string | null;
  readonly isLeader: boolean;
  /** The leader's view of the member's log, when the answering node leads. */
  readonly progress?: {
    readonly matchIndex: number;
    readonly nextIndex: number;
    readonly state: string;
    readonly inflight: number;
    /** Entries the member is behind the leader's log. */
    readonly lag: number;
    readonly recentActive: boolean;
  };
}

/** GET /v1/cluster: the answering node's view of the cluster. */
export interface ClusterStatus {
  readonly clusterId: string;
  readonly self: {
    readonly id: number;
    readonly name: string;
    readonly role: string;
    /**
     * Why this node neither votes nor serves local reads, while it recovers lost or damaged data
     * from the leader (docs/faults.md, "Corruption"); null when it is whole.
     */
    readonly recovering: string | null;
  };
  readonly leader: {
    readonly id: number;
    readonly name: string | null;
    readonly httpUrl: string | null;
  } | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /** The log is compacted up to here: a snapshot replaces the entries before. */
  readonly snapshotIndex: number;
  /**
   * The cross-replica state check: the latest applied index at which a majority of the voters had
   * the same state hash (null: none compared yet), and the nodes whose hash differed from the
   * majority's (an alarm: their state is damaged or diverged).
   */
  readonly stateCheck: {
    readonly index: number | null;
    /** How many nodes reported the majority's hash at `index`. */
    readonly agreeing: number;
    readonly differing: readonly { readonly name: string; readonly index: number }[];
  };
  readonly members: readonly MemberStatus[];
}

/** POST /v1/cluster/members: register a node, which then joins as a learner. */
export const JoinBody = Type.Object(
  { name: Type.String(), peerAddress: Type.String() },
  { additionalProperties: false },
);
/** POST /v1/cluster/members. */
export type JoinBody = Static<typeof JoinBody>;

/** The answer to a join: the new member's id and what it needs to start. */
export interface JoinAnswer {
  readonly id: number;
  readonly clusterId: string;
  readonly initialVoters: readonly number[];
  readonly members: readonly { readonly id: number; readonly name: string; readonly peerAddress: string }[];
}

/** POST /v1/cluster/leader. */
export const TransferBody = Type.Object(
  { transferTo: Type.Integer({ minimum: 1 }) },
  { additionalProperties: false },
);
/** POST /v1/cluster/leader. */
export type TransferBody = Static<typeof TransferBody>;

// ---- Metrics ----

/** A latency histogram: counts per bucket (the last counts values above every bound), sum and count. */
export interface HistogramSnapshot {
  readonly counts: readonly number[];
  readonly sumMs: number;
  readonly count: number;
}

/** GET /v1/metrics: the node's counters and latency histograms as JSON, for charts. */
export interface MetricsSnapshot {
  readonly role: string;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  /** 0 when no leader is known. */
  readonly leaderId: number;
  /** Upper bounds (ms) of the histogram buckets, shared by every histogram. */
  readonly latencyBucketsMs: readonly number[];
  readonly counters: {
    /** Writes proposed on this node (a follower's writes are proposed by the leader). */
    readonly proposals: number;
    readonly proposalsFailed: number;
    /** Linearizable read barriers (ReadIndex rounds asked for by reads). */
    readonly reads: number;
    readonly readsFailed: number;
    readonly entriesApplied: number;
    /** Requests refused for want of a valid token (none, unknown, revoked, expired, wrong secret). */
    readonly authUnauthenticated?: number;
    /** Requests refused because the token's role lacks a permission. */
    readonly authForbidden?: number;
  };
  readonly histograms: {
    /** Proposal to applied, for successful proposals: the write latency. */
    readonly proposalMs: HistogramSnapshot;
    /** A linearizable read's wait for its barrier. */
    readonly readMs: HistogramSnapshot;
    readonly persistMs: HistogramSnapshot;
    readonly applyMs: HistogramSnapshot;
  };
}

// ---- Authentication (docs/security.md) ----

/** POST /v1/auth/tokens. */
export const TokenCreateBody = Type.Object(
  {
    role: Type.String({ minLength: 1, maxLength: 64 }),
    ttlMs: Type.Optional(Type.Integer({ minimum: 1, description: "lifetime; absent: until revoked" })),
  },
  { additionalProperties: false },
);
/** POST /v1/auth/tokens. */
export type TokenCreateBody = Static<typeof TokenCreateBody>;

/** A new token: `token` is its secret, shown this once and never again. */
export interface AuthTokenCreated {
  readonly id: string;
  readonly token: string;
  readonly role: string;
  /** Leader time after which it stops working; 0: never. */
  readonly expiresAtMs: number;
}

/** A token as listed: never its secret. */
export interface AuthTokenInfo {
  readonly id: string;
  readonly role: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly expired: boolean;
}

/** PUT /v1/auth/roles/{name}. */
export const RolePutBody = Type.Object(
  {
    grants: Type.Array(Type.String({ maxLength: 300 }), {
      minItems: 1,
      maxItems: 64,
      description: "grants as <read|write|admin>:<key|stream|cluster>[:<pattern>]",
    }),
  },
  { additionalProperties: false },
);
/** PUT /v1/auth/roles/{name}. */
export type RolePutBody = Static<typeof RolePutBody>;

/** The body of PUT /v1/auth/roles/{name}/rate: a token bucket per token of the role. */
export const RoleRateBody = Type.Object(
  {
    requestsPerSecond: Type.Integer({
      minimum: 0,
      maximum: 1_000_000,
      description: "requests per second each token of the role may make, over every protocol (0: no limit)",
    }),
    burst: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 10_000_000,
        description: "requests an idle token may make at once (default: one second's worth)",
      }),
    ),
  },
  { additionalProperties: false },
);
/** The body of PUT /v1/auth/roles/{name}/rate. */
export type RoleRateBody = Static<typeof RoleRateBody>;

/** A role as listed. */
export interface RoleInfo {
  readonly name: string;
  readonly grants: readonly string[];
  readonly builtIn: boolean;
  /** Its rate limit per token, if it has one. */
  readonly rate?: { readonly requestsPerSecond: number; readonly burst: number };
}

/** PUT /v1/auth/certs/{name}: bind a client certificate's name (its subject CN) to a role. */
export const CertBindBody = Type.Object(
  { role: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);
/** PUT /v1/auth/certs/{name}. */
export type CertBindBody = Static<typeof CertBindBody>;

/** A client certificate name and the role it is bound to. */
export interface CertBindingInfo {
  readonly name: string;
  readonly role: string;
}

/**
 * GET /v1/auth/whoami: whether authentication is on, and the caller's token or certificate name
 * and its role.
 */
export interface WhoAmI {
  readonly enabled: boolean;
  readonly tokenId?: string;
  /** The name (subject CN) of the verified client certificate the caller is authenticated by. */
  readonly certificate?: string;
  readonly role?: string;
  readonly grants?: readonly string[];
}
