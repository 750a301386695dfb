// The control API of `cairn dev`'s supervisor (127.0.0.1 only): the local node processes, what can
// be done to them, and the timeline of cluster events. Shared by the supervisor's routes and the
// dashboard. Axon's launcher routes (/api/control/*) keep Axon's own shapes, also typed here.

/** Whether a node's process runs, is paused (SIGSTOP) or is not running. */
export type ProcessState = "running" | "paused" | "stopped";

/** Whether a running node answers its HTTP API. */
export type NodeHealth = "ok" | "not-answering" | "down";

/** A node as the supervisor reports it. */
export interface ControlNode {
  readonly name: string;
  /** The member id in the cluster (its certificate is `node-<id>`). */
  readonly id: number;
  readonly httpUrl: string;
  readonly peerAddress: string;
  readonly redisAddress: string | null;
  readonly textAddress: string | null;
  readonly grpcAddress: string | null;
  readonly dataDir: string;
  readonly logFile: string;
  readonly state: ProcessState;
  readonly pid: number | null;
  /** When the running process started (wall clock), or null when stopped. */
  readonly startedAtMs: number | null;
  /** How the last process ended, if one did. */
  readonly lastExit: { readonly code: number | null; readonly signal: string | null } | null;
  readonly health: NodeHealth;
  /** The node's own status (GET /v1/cluster), from its last answer; null before the first. */
  readonly status: {
    readonly role: string;
    readonly term: number;
    readonly commitIndex: number;
    readonly appliedIndex: number;
    readonly lastIndex: number;
    readonly leaderId: number | null;
  } | null;
  /** Whether the cluster counts it as a voter, a learner, or not a member (yet or any more). */
  readonly membership: "voter" | "learner" | "none" | "unknown";
  /** Entries behind the leader's log, from the leader's progress; null when unknown. */
  readonly lag: number | null;
  /** An operation the supervisor is carrying out on it, if any. */
  readonly busy: string | null;
}

/** GET /v1/control/nodes. */
export interface ControlNodeList {
  readonly nodes: readonly ControlNode[];
  /** The leader's name, as the newest term reports it; null when none is known. */
  readonly leader: string | null;
  readonly term: number;
  readonly clusterId: string | null;
}

/** POST /v1/control/nodes: add a node (joins as a learner, promoted once caught up). */
export interface AddNodeBody {
  /** Lowercase letters, digits and dashes; the next free `n<k>` when absent. */
  readonly name?: string;
}

/** The actions of POST /v1/control/nodes/{name}/{action}. */
export const nodeActions = [
  "start",
  "stop",
  "kill",
  "pause",
  "resume",
  "restart",
  "transfer-leadership",
] as const;
/** One action on a node. */
export type NodeAction = (typeof nodeActions)[number];

/** Kinds of events on the timeline. */
export type ControlEventKind =
  | "leader"
  | "no-leader"
  | "process"
  | "health"
  | "member-added"
  | "member-promoted"
  | "member-removed"
  | "operation";

/** One event on the timeline. */
export interface ControlEvent {
  /** Increasing from 1; ask for events after the last one seen. */
  readonly id: number;
  readonly atMs: number;
  readonly kind: ControlEventKind;
  /** The node it is about, if one. */
  readonly node: string | null;
  readonly message: string;
}

/** GET /v1/control/events?after=N. */
export interface ControlEventList {
  readonly events: readonly ControlEvent[];
}

/** The codes of the control API's errors (body: `{"error":{"code","message"}}`). */
export const controlErrorCodes = [
  "ERR_BAD_REQUEST",
  "ERR_UNAUTHENTICATED",
  "ERR_FORBIDDEN",
  "ERR_NOT_FOUND",
  "ERR_CONFLICT",
  "ERR_BREAKS_MAJORITY",
  "ERR_UNAVAILABLE",
  "ERR_INTERNAL",
] as const;
/** A control API error code. */
export type ControlErrorCode = (typeof controlErrorCodes)[number];

/** Axon's GET /api/control/nodes: one entry per node, keyed by id. */
export type AxonNodeMap = Record<
  string,
  {
    readonly id: string;
    readonly api_port: number;
    readonly status: "online" | "offline";
    readonly is_leader: boolean;
  }
>;
