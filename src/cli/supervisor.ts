// The supervisor of `cairn dev`: owns the local node processes and carries out what the control API
// asks: start, stop (SIGTERM), kill (SIGKILL), pause (SIGSTOP) and resume (SIGCONT), restart with
// the node's data (a restart never wipes a node), add (registered with the cluster, started with
// --join, promoted by the leader once caught up), remove (Raft removal first, then stop and delete
// the data; refused when it would leave the cluster without a live majority) and leadership
// transfer. It watches the nodes' status to report health, roles and lag, and keeps a timeline of
// events. Every process it starts is stopped by pid on close().
import { rm } from "node:fs/promises";
import type {
  ClusterStatus,
  ControlErrorCode,
  ControlEvent,
  ControlEventKind,
  ControlNode,
  ControlNodeList,
  NodeHealth,
  ProcessState,
} from "../api/index.js";
import { removalVerdict } from "./majority.js";

/** Where a node listens (everything but its identity). */
export interface NodeAddresses {
  readonly httpUrl: string;
  readonly peerAddress: string;
  /** host:port of its Redis protocol server, or null when not served. */
  readonly redisAddress: string | null;
  /** host:port of the HaToKuSe text protocol, when served. */
  readonly textAddress?: string;
  /** host:port of its gRPC server (the replicator's MessageService), when served. */
  readonly grpcAddress?: string;
}

/** One node the supervisor owns, as written to cluster.json. */
export interface SupervisedNodeInfo extends NodeAddresses {
  readonly name: string;
  /** Member id; its certificate is `node-<id>`. */
  readonly id: number;
  /** Its port slot: ports are the base ports plus index - 1. */
  readonly index: number;
  /** Bootstrapped with the initial cluster, or joined later through a member. */
  readonly membership: "initial" | "joined";
  readonly dataDir: string;
  readonly logFile: string;
  pid: number | null;
}

/** How a process ended. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: string | null;
}

/** A node process the supervisor started. */
export interface LaunchedProcess {
  readonly pid: number | null;
  /** Sends a signal to the process (by pid). */
  signal(signal: NodeJS.Signals): void;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ProcessExit>;
}

/** The membership flags of a node's command line. */
export type NodeMembership = { readonly initialCluster: string } | { readonly join: string };

/** TLS files of a node. */
export interface NodeTls {
  readonly caPath: string;
  readonly certPath: string;
  readonly keyPath: string;
}

/** What the supervisor asks of the cluster, over the nodes' public HTTP API. */
export interface ClusterCalls {
  /** GET /v1/cluster on one node, within `timeoutMs`. */
  status(httpUrl: string, timeoutMs: number): Promise<ClusterStatus>;
  /** Whether a node answers GET /health/live within `timeoutMs`. */
  live(httpUrl: string, timeoutMs: number): Promise<boolean>;
  /** Registers a node through any of `endpoints`; answers its member id. */
  join(endpoints: readonly string[], name: string, peerAddress: string): Promise<{ id: number }>;
  /** Removes a member through any of `endpoints` (the leader carries it out). */
  remove(endpoints: readonly string[], id: number): Promise<void>;
  /** Hands leadership to a voter through any of `endpoints`. */
  transfer(endpoints: readonly string[], id: number): Promise<void>;
}

/** What the supervisor is built from. */
export interface SupervisorOptions {
  /** The nodes to own (initial members first, as the initial cluster lists them). */
  readonly nodes: readonly SupervisedNodeInfo[];
  /** `name=host:port,...`: the initial cluster of the initial members. */
  readonly initialCluster: string;
  /** Names of initial members removed from the cluster (never started again). */
  readonly removed?: readonly string[];
  /** Starts a node process; `spec` has everything for its command line. */
  readonly launch: (node: SupervisedNodeInfo, membership: NodeMembership, tls: NodeTls) => LaunchedProcess;
  /** TLS files for member `id`, issued on first use. */
  readonly tlsFor: (id: number) => Promise<NodeTls>;
  /** The addresses of port slot `index`. */
  readonly addressesOf: (index: number) => NodeAddresses;
  /** Where node `name` keeps its data and log. */
  readonly pathsOf: (name: string) => { readonly dataDir: string; readonly logFile: string };
  /** Whether every port of these addresses is free now. */
  readonly portsFree: (addresses: NodeAddresses) => Promise<boolean>;
  readonly calls: ClusterCalls;
  /** Saves the node list (cluster.json); called after every change, one call at a time. */
  readonly persist: (state: {
    nodes: readonly SupervisedNodeInfo[];
    initialCluster: string;
    removed: readonly string[];
  }) => Promise<void>;
  /** Progress lines (process exits and the like). */
  readonly print: (line: string) => void;
  readonly nowMs?: () => number;
  /** How long a stopped (SIGTERM) process may take before SIGKILL. Default 10 s. */
  readonly stopGraceMs?: number;
  /** How long a status probe may take. Default 1000 ms. */
  readonly probeTimeoutMs?: number;
  /** The most nodes the supervisor owns at once. Default 7. */
  readonly nodesMax?: number;
}

/** A control API failure with a stable code. */
export class ControlError extends Error {
  override readonly name = "ControlError";
  /** Creates an error with a code from the control API's list. */
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const eventsMax = 500;

interface NodeRecord {
  readonly info: SupervisedNodeInfo;
  process: LaunchedProcess | undefined;
  state: ProcessState;
  startedAtMs: number | null;
  lastExit: ProcessExit | null;
  health: NodeHealth;
  status: ClusterStatus | null;
  busy: string | null;
  /** Operations on this node, one at a time. */
  queue: Promise<unknown>;
  probing: boolean;
  /** Probes failed in a row; one slow answer on a loaded machine is not yet "not answering". */
  failures: number;
}

/** A node's record before its first start. */
function recordOf(info: SupervisedNodeInfo): NodeRecord {
  return {
    info: { ...info, pid: null },
    process: undefined,
    state: "stopped",
    startedAtMs: null,
    lastExit: null,
    health: "down",
    status: null,
    busy: null,
    queue: Promise.resolve(),
    probing: false,
    failures: 0,
  };
}

/** Owns the local node processes; see the file comment. */
export class NodeSupervisor {
  readonly #o: SupervisorOptions;
  readonly #nodes: NodeRecord[];
  readonly #removed: string[];
  readonly #events: ControlEvent[] = [];
  #nextEventId = 1;
  #adding: Promise<unknown> = Promise.resolve();
  #persisting: Promise<void> = Promise.resolve();
  #closed = false;
  #watchTimer: NodeJS.Timeout | undefined;
  /** The newest leader seen: its id and term. */
  #leader: { id: number; term: number } | null = null;
  #leaderStatus: ClusterStatus | null = null;
  /** Members by id (voter or not), as the leader last reported them; null before the first report. */
  #members: Map<number, boolean> | null = null;
  /** Names of every member id this supervisor owned, removed ones included, for the timeline. */
  readonly #names = new Map<number, string>();

  /** Creates a supervisor; nothing runs until start() or startAll(). */
  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#removed = [...(options.removed ?? [])];
    this.#nodes = options.nodes.map((info) => recordOf(info));
    for (const n of this.#nodes) this.#names.set(n.info.id, n.info.name);
  }

  /** The nodes as written to cluster.json (live: added nodes appear, removed ones go). */
  get nodes(): readonly SupervisedNodeInfo[] {
    return this.#nodes.map((n) => n.info);
  }

  /** Every node with its process state, health, status and lag. */
  list(): ControlNodeList {
    const leader = this.#leader;
    return {
      nodes: this.#nodes.map((n) => this.#view(n)),
      leader: leader === null ? null : (this.#nodes.find((n) => n.info.id === leader.id)?.info.name ?? null),
      term: leader?.term ?? Math.max(0, ...this.#nodes.map((n) => n.status?.term ?? 0)),
      clusterId:
        this.#leaderStatus?.clusterId ?? this.#nodes.find((n) => n.status)?.status?.clusterId ?? null,
    };
  }

  /** One node's view; ERR_NOT_FOUND for an unknown name. */
  node(name: string): ControlNode {
    return this.#view(this.#find(name));
  }

  /** Events after `afterId` (all kept ones for 0), oldest first. */
  events(afterId = 0): ControlEvent[] {
    return this.#events.filter((e) => e.id > afterId);
  }

  /** Starts every node that is not running. */
  async startAll(): Promise<void> {
    for (const node of this.#nodes) await this.start(node.info.name);
  }

  /** Starts a stopped node with its data (a running or paused one is left as it is). */
  async start(name: string): Promise<ControlNode> {
    const node = this.#find(name);
    await this.#serial(node, "starting", () => this.#launch(node));
    return this.#view(node);
  }

  /** Stops a node: SIGTERM, then SIGKILL if it has not exited within the grace period. */
  async stop(name: string, signal: NodeJS.Signals = "SIGTERM"): Promise<ControlNode> {
    const node = this.#find(name);
    await this.#serial(node, signal === "SIGKILL" ? "killing" : "stopping", () =>
      this.#terminate(node, signal),
    );
    return this.#view(node);
  }

  /** Kills a node with SIGKILL: no clean shutdown, as a crash. */
  kill(name: string): Promise<ControlNode> {
    return this.stop(name, "SIGKILL");
  }

  /** Pauses a running node with SIGSTOP: its sockets stay open but it answers nothing. */
  pause(name: string): ControlNode {
    const node = this.#find(name);
    if (node.state !== "running" || node.process === undefined) {
      throw new ControlError("ERR_CONFLICT", `${name} is ${node.state}; only a running node can be paused`);
    }
    node.process.signal("SIGSTOP");
    node.state = "paused";
    this.#event("process", name, `${name} paused (SIGSTOP)`);
    return this.#view(node);
  }

  /** Resumes a paused node with SIGCONT. */
  resume(name: string): ControlNode {
    const node = this.#find(name);
    if (node.state !== "paused" || node.process === undefined) {
      throw new ControlError("ERR_CONFLICT", `${name} is ${node.state}; only a paused node can be resumed`);
    }
    node.process.signal("SIGCONT");
    node.state = "running";
    this.#event("process", name, `${name} resumed (SIGCONT)`);
    return this.#view(node);
  }

  /** Stops a node (SIGTERM) and starts it again with its data. */
  async restart(name: string): Promise<ControlNode> {
    const node = this.#find(name);
    await this.#serial(node, "restarting", async () => {
      await this.#terminate(node, "SIGTERM");
      await this.#launch(node);
    });
    return this.#view(node);
  }

  /** Hands leadership to this node (a voter), through any running node. */
  async transferLeadership(name: string): Promise<ControlNode> {
    const node = this.#find(name);
    if (node.state !== "running") {
      throw new ControlError("ERR_CONFLICT", `${name} is ${node.state}; only a running voter can lead`);
    }
    await this.#callCluster(() => this.#o.calls.transfer(this.#endpoints(), node.info.id));
    this.#event("operation", name, `asked the leader to hand leadership to ${name}`);
    return this.#view(node);
  }

  /**
   * Adds a node: registers it with the cluster (which adds it as a learner), issues its
   * certificate and starts it with --join; the leader promotes it once it has caught up.
   */
  add(requestedName?: string): Promise<ControlNode> {
    const run = this.#adding.then(() => this.#add(requestedName));
    this.#adding = run.catch(() => undefined);
    return run;
  }

  async #add(requestedName: string | undefined): Promise<ControlNode> {
    if (requestedName !== undefined && !NAME.test(requestedName)) {
      throw new ControlError(
        "ERR_BAD_REQUEST",
        "a node name is 1 to 63 lowercase letters, digits and dashes, starting with a letter or digit",
      );
    }
    if (requestedName !== undefined && this.#nodes.some((n) => n.info.name === requestedName)) {
      throw new ControlError("ERR_CONFLICT", `node with ID ${requestedName} already exists`);
    }
    if (this.#nodes.length >= (this.#o.nodesMax ?? 7)) {
      throw new ControlError(
        "ERR_CONFLICT",
        `the local cluster has ${this.#nodes.length} nodes, the most it runs`,
      );
    }
    const endpoints = this.#endpoints();
    if (endpoints.length === 0) {
      throw new ControlError("ERR_UNAVAILABLE", "no node is running to join through: start one first");
    }
    const slot = await this.#freeSlot(requestedName);
    const name = requestedName ?? `n${slot.index}`;
    const { id } = await this.#callCluster(() =>
      this.#o.calls.join(endpoints, name, slot.addresses.peerAddress),
    );
    const node = recordOf({
      ...slot.addresses,
      name,
      id,
      index: slot.index,
      membership: "joined",
      ...this.#o.pathsOf(name),
      pid: null,
    });
    this.#nodes.push(node);
    this.#names.set(id, name);
    this.#event("operation", name, `${name} registered as member ${id}; starting it to join as a learner`);
    await this.#persist();
    await this.#serial(node, "joining", () => this.#launch(node));
    return this.#view(node);
  }

  /** The first port slot past every owned node's whose ports are free (and whose default name is). */
  async #freeSlot(requestedName: string | undefined): Promise<{ index: number; addresses: NodeAddresses }> {
    let index = Math.max(0, ...this.#nodes.map((n) => n.info.index)) + 1;
    for (let tries = 0; tries < 20; tries++, index++) {
      if (requestedName === undefined && this.#nodes.some((n) => n.info.name === `n${index}`)) continue;
      const addresses = this.#o.addressesOf(index);
      if (await this.#o.portsFree(addresses)) return { index, addresses };
    }
    throw new ControlError("ERR_CONFLICT", "failed to allocate ports: 20 port slots in a row are in use");
  }

  /**
   * Removes a node: refused (ERR_BREAKS_MAJORITY) when the cluster would be left without a live
   * majority; otherwise the cluster removes the member first, then its process is stopped and its
   * data deleted. A node that is not a member (any more) is only stopped and deleted.
   */
  remove(name: string): Promise<{ removed: string }> {
    const node = this.#find(name);
    return this.#serial(node, "removing", async () => {
      const status = await this.#freshStatus();
      if (status === undefined) {
        throw new ControlError(
          "ERR_UNAVAILABLE",
          "no running node answers, so the cluster cannot remove a member: start a node first",
        );
      }
      const voters = status.members.filter((m) => m.voter).map((m) => m.id);
      const learners = status.members.filter((m) => !m.voter).map((m) => m.id);
      const probeMs = this.#o.probeTimeoutMs ?? 1_000;
      const liveVoters: number[] = [];
      await Promise.all(
        voters.map(async (id) => {
          const url =
            this.#nodes.find((n) => n.info.id === id)?.info.httpUrl ??
            status.members.find((m) => m.id === id)?.httpUrl;
          if (url && (await this.#o.calls.live(url, probeMs).catch(() => false))) liveVoters.push(id);
        }),
      );
      const verdict = removalVerdict({ voters, learners, liveVoters }, node.info.id, name);
      if (!verdict.ok) {
        throw new ControlError(
          verdict.reason === "breaks-majority" ? "ERR_BREAKS_MAJORITY" : "ERR_UNAVAILABLE",
          verdict.message,
        );
      }
      if (verdict.member) {
        const others = this.#endpoints().filter((url) => url !== node.info.httpUrl);
        const endpoints = others.length > 0 ? others : this.#endpoints();
        await this.#callCluster(() => this.#o.calls.remove(endpoints, node.info.id));
        this.#event("operation", name, `the cluster removed ${name} (member ${node.info.id})`);
      }
      await this.#terminate(node, "SIGTERM");
      await rm(node.info.dataDir, { recursive: true, force: true });
      this.#nodes.splice(this.#nodes.indexOf(node), 1);
      if (node.info.membership === "initial") this.#removed.push(name);
      this.#event("operation", name, `${name} stopped and its data deleted`);
      await this.#persist();
      return { removed: name };
    });
  }

  /** Probes every running node once: health, status, leader and membership changes. */
  async probe(): Promise<void> {
    const timeoutMs = this.#o.probeTimeoutMs ?? 1_000;
    await Promise.all(
      this.#nodes.map(async (node) => {
        if (node.probing) return;
        if (node.state !== "running") {
          node.health = node.state === "paused" ? "not-answering" : "down";
          return;
        }
        node.probing = true;
        const process = node.process;
        try {
          node.status = await this.#o.calls.status(node.info.httpUrl, timeoutMs);
          node.failures = 0;
          this.#setHealth(node, "ok");
        } catch {
          // A process that exited meanwhile is "down", reported by its exit; a paused one is
          // reported at once by its state. A running one must miss two probes in a row.
          node.failures++;
          const starting = node.health !== "ok";
          if (node.process === process && node.state === "running" && (starting || node.failures >= 2)) {
            this.#setHealth(node, "not-answering");
          }
        } finally {
          node.probing = false;
        }
      }),
    );
    this.#observeCluster();
  }

  /** Probes every `intervalMs` until close(). */
  watch(intervalMs: number): void {
    const tick = () => {
      if (this.#closed) return;
      this.probe()
        .catch((error: unknown) => this.#o.print(`status probe failed: ${String(error)}`))
        .finally(() => {
          if (!this.#closed) this.#watchTimer = setTimeout(tick, intervalMs);
        });
    };
    tick();
  }

  /** Stops watching and stops every node (SIGTERM, then SIGKILL after the grace period). */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#watchTimer);
    await Promise.all(this.#nodes.map((n) => this.#terminate(n, "SIGTERM")));
    await this.#persisting.catch(() => undefined);
  }

  #find(name: string): NodeRecord {
    const node = this.#nodes.find((n) => n.info.name === name);
    if (node === undefined) throw new ControlError("ERR_NOT_FOUND", `node not found: ${name}`);
    return node;
  }

  /** URLs of the nodes that run (not paused): where cluster calls go. */
  #endpoints(): string[] {
    return this.#nodes.filter((n) => n.state === "running").map((n) => n.info.httpUrl);
  }

  /** Runs `op` after the node's earlier operations, marking the node busy meanwhile. */
  #serial<T>(node: NodeRecord, label: string, op: () => Promise<T>): Promise<T> {
    const run = node.queue.then(async () => {
      node.busy = label;
      try {
        return await op();
      } finally {
        node.busy = null;
      }
    });
    node.queue = run.catch(() => undefined);
    return run;
  }

  async #launch(node: NodeRecord): Promise<void> {
    if (this.#closed) throw new ControlError("ERR_UNAVAILABLE", "the supervisor is shutting down");
    if (node.process !== undefined) return;
    const tls = await this.#o.tlsFor(node.info.id);
    let membership: NodeMembership;
    if (node.info.membership === "initial") {
      membership = { initialCluster: this.#o.initialCluster };
    } else {
      // Only the first start joins; later starts find the identity in the data directory.
      const through = this.#endpoints()[0] ?? this.#nodes.find((n) => n !== node)?.info.httpUrl;
      if (through === undefined) throw new ControlError("ERR_UNAVAILABLE", "no member to join through");
      membership = { join: through };
    }
    const launched = this.#o.launch(node.info, membership, tls);
    node.process = launched;
    node.state = "running";
    node.startedAtMs = this.#now();
    node.health = "not-answering";
    node.status = null;
    node.info.pid = launched.pid;
    this.#event("process", node.info.name, `${node.info.name} started (pid ${launched.pid ?? "?"})`);
    void launched.exited.then((exit) => {
      if (node.process !== launched) return;
      node.process = undefined;
      node.state = "stopped";
      node.startedAtMs = null;
      node.lastExit = exit;
      node.health = "down";
      node.info.pid = null;
      const how = exit.signal ?? `code ${exit.code}`;
      this.#event("process", node.info.name, `${node.info.name} exited (${how})`);
      this.#o.print(`${node.info.name} exited (${how}); its log: ${node.info.logFile}`);
      this.#persist().catch((error: unknown) => this.#o.print(`cannot save cluster.json: ${String(error)}`));
    });
    await this.#persist();
  }

  async #terminate(node: NodeRecord, signal: NodeJS.Signals): Promise<void> {
    const launched = node.process;
    if (launched === undefined) return;
    launched.signal(signal);
    // A paused process handles SIGTERM only once it runs again.
    if (node.state === "paused" && signal !== "SIGKILL") launched.signal("SIGCONT");
    const timer =
      signal === "SIGKILL"
        ? undefined
        : setTimeout(() => launched.signal("SIGKILL"), this.#o.stopGraceMs ?? 10_000);
    try {
      await launched.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The status of the leader if a running node knows it, else any running node's; fresh. */
  async #freshStatus(): Promise<ClusterStatus | undefined> {
    const timeoutMs = (this.#o.probeTimeoutMs ?? 1_000) * 2;
    let any: ClusterStatus | undefined;
    for (const url of this.#endpoints()) {
      const status = await this.#o.calls.status(url, timeoutMs).catch(() => undefined);
      if (status === undefined) continue;
      if (status.self.role === "leader") return status;
      any ??= status;
      const leaderUrl = status.leader?.httpUrl;
      if (leaderUrl) {
        const fromLeader = await this.#o.calls.status(leaderUrl, timeoutMs).catch(() => undefined);
        if (fromLeader?.self.role === "leader") return fromLeader;
      }
    }
    return any;
  }

  async #callCluster<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof ControlError) throw error;
      const code =
        typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
      const message = error instanceof Error ? error.message : String(error);
      if (code === "ERR_BAD_REQUEST" || code === "ERR_CONFLICT" || code === "ERR_NOT_FOUND")
        throw new ControlError(code, `the cluster refused: ${message}`);
      throw new ControlError("ERR_UNAVAILABLE", `the cluster did not carry it out: ${message}`);
    }
  }

  #setHealth(node: NodeRecord, health: NodeHealth): void {
    if (node.health === health) return;
    const was = node.health;
    node.health = health;
    const name = node.info.name;
    if (health === "not-answering" && was === "ok") this.#event("health", name, `${name} is not answering`);
    if (health === "ok" && was === "not-answering" && node.startedAtMs !== null) {
      this.#event("health", name, `${name} answers`);
    }
  }

  /** Leader and membership changes, from the statuses just probed. */
  #observeCluster(): void {
    const statuses = this.#nodes.flatMap((n) => (n.health === "ok" && n.status ? [n.status] : []));
    const leading = statuses.filter((s) => s.self.role === "leader").sort((a, b) => b.term - a.term)[0];
    const nameOf = (id: number) => this.#names.get(id) ?? `member ${id}`;
    if (leading !== undefined) {
      this.#leaderStatus = leading;
      const id = leading.self.id;
      if (this.#leader?.id !== id || this.#leader.term !== leading.term) {
        if (this.#leader?.id !== id) {
          this.#event("leader", nameOf(id), `${nameOf(id)} leads (term ${leading.term})`);
        }
        this.#leader = { id, term: leading.term };
      }
      const members = new Map(leading.members.map((m) => [m.id, m.voter]));
      const before = this.#members;
      if (before !== null) {
        for (const [id, voter] of members) {
          if (!before.has(id))
            this.#event(
              "member-added",
              nameOf(id),
              `${nameOf(id)} joined as a ${voter ? "voter" : "learner"}`,
            );
          else if (voter && before.get(id) === false)
            this.#event("member-promoted", nameOf(id), `${nameOf(id)} promoted to voter`);
        }
        for (const id of before.keys()) {
          if (!members.has(id))
            this.#event("member-removed", nameOf(id), `${nameOf(id)} removed from the cluster`);
        }
      }
      this.#members = members;
    } else if (this.#leader !== null && statuses.length > 0 && statuses.every((s) => s.leader === null)) {
      this.#leader = null;
      this.#event("no-leader", null, "no leader: the running nodes are electing one");
    } else if (
      this.#leader !== null &&
      !this.#nodes.some((n) => n.info.id === this.#leader?.id && n.health === "ok")
    ) {
      // The leader's node went away; followers may still name it until they time out.
      const gone = this.#leader;
      this.#leader = null;
      this.#event("no-leader", nameOf(gone.id), `leader ${nameOf(gone.id)} is gone; waiting for an election`);
    }
  }

  #view(node: NodeRecord): ControlNode {
    const s = node.status;
    const fromLeader = this.#leaderStatus?.members.find((m) => m.id === node.info.id);
    const membership =
      this.#leaderStatus === null
        ? "unknown"
        : fromLeader === undefined
          ? "none"
          : fromLeader.voter
            ? "voter"
            : "learner";
    const isLeader = this.#leaderStatus?.self.id === node.info.id;
    return {
      name: node.info.name,
      id: node.info.id,
      httpUrl: node.info.httpUrl,
      peerAddress: node.info.peerAddress,
      redisAddress: node.info.redisAddress,
      textAddress: node.info.textAddress ?? null,
      grpcAddress: node.info.grpcAddress ?? null,
      dataDir: node.info.dataDir,
      logFile: node.info.logFile,
      state: node.state,
      pid: node.info.pid,
      startedAtMs: node.startedAtMs,
      lastExit: node.lastExit,
      health: node.health,
      status:
        s === null
          ? null
          : {
              role: s.self.role,
              term: s.term,
              commitIndex: s.commitIndex,
              appliedIndex: s.appliedIndex,
              lastIndex: s.lastIndex,
              leaderId: s.leader?.id ?? null,
            },
      membership,
      lag: isLeader ? 0 : (fromLeader?.progress?.lag ?? null),
      busy: node.busy,
    };
  }

  #event(kind: ControlEventKind, node: string | null, message: string): void {
    this.#events.push({ id: this.#nextEventId++, atMs: this.#now(), kind, node, message });
    if (this.#events.length > eventsMax) this.#events.splice(0, this.#events.length - eventsMax);
  }

  #now(): number {
    return (this.#o.nowMs ?? Date.now)();
  }

  #persist(): Promise<void> {
    const state = { nodes: this.nodes, initialCluster: this.#o.initialCluster, removed: [...this.#removed] };
    this.#persisting = this.#persisting.catch(() => undefined).then(() => this.#o.persist(state));
    return this.#persisting;
  }
}
