// One node, assembled once: storage (WAL, hard state, snapshots, the state store), the Raft group,
// the host that routes peer traffic (with the calls a follower makes to its leader), the services
// and their housekeeping. The CLI, the simulator and the in-process test cluster all start nodes
// here, so what the tests run is what ships; each passes only what differs between them: the file
// system, the clock, the transport, the state store and the settings.
import {
  type Cancel,
  type Env,
  GroupSnapshots,
  type GroupStorage,
  type MessageSender,
  NodeHost,
  type NodeWireMessage,
  type PeerInfo,
  RaftGroup,
  type StateMachine,
  snapshotChunkBytesMax,
  WalGroupStorage,
} from "../node/index.js";
import { type GroupId, groupId, type NodeId, nodeId, type SoftState } from "../raft/index.js";
import {
  ApplyNotifier,
  AuthGuard,
  AuthService,
  ClusterService,
  CommandBatcher,
  defaultCommandBatcherSettings,
  defaultKvLimits,
  defaultStreamLimits,
  type EntryOutcome,
  GroupReplication,
  type JoinAnswer,
  KvService,
  LeaderLink,
  type MemberRecord,
  Membership,
  peerAddressOf,
  type RateLimit,
  RateLimiter,
  runAs,
  ServiceStateMachine,
  StateCheck,
  type StateCheckReport,
  StoreBackend,
  StreamService,
  system,
} from "../service/index.js";
import {
  type FileSystem,
  HardStateStore,
  joinPath,
  SnapshotStore,
  type StateStore,
  type StorageError,
  type StorageErrorCode,
  Wal,
  type WalRecovery,
} from "../storage/index.js";
import type { PeerAddress, Transport } from "../transport/index.js";
import { type Logger, silentLogger } from "../util/index.js";

/** The one Raft group of the first release. */
export const mainGroup: GroupId = groupId(1);

/**
 * Who a node is and whom it knows at start (its identity file, or the simulator's roster): what a
 * join answers (id, cluster, bootstrap voters, members), with the node's name and whether it
 * bootstrapped the cluster (then, as leader, it registers the bootstrap members).
 */
export interface NodeMembership extends JoinAnswer {
  readonly name: string;
  readonly bootstrapped: boolean;
}

/** Whether a node can serve clients, and if not, why. */
export type Readiness = { readonly ready: true } | { readonly ready: false; readonly reason: string };

/** The settings of a node, with the defaults the CLI ships. */
export interface CairnNodeSettings {
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly tickIntervalMs: number;
  /** Appends in flight per follower before the leader waits for acknowledgements. */
  readonly inflightAppendsMax: number;
  readonly appendBytesMax: number;
  /**
   * The compaction interval: the log is compacted to the state store once this many entries (or
   * `snapshotBytes` of entry data) were applied since its base (snapshot-due.ts).
   */
  readonly snapshotEntries: number;
  readonly snapshotBytes: number;
  /**
   * A leader keeps the entries a follower still lacks (rather than compacting past them) until the
   * log since the base holds this many bytes of data ...
   */
  readonly snapshotLogBytesMax: number;
  /** ... or this many entries. */
  readonly snapshotLogEntriesMax: number;
  readonly segmentBytesMax: number;
  /**
   * The WAL records how far it is durable every this many bytes (wal-durable-end.ts), so a cut of
   * its newest segment below that point is found at the next start; undefined: never.
   */
  readonly walDurableEndEveryBytes: number | undefined;
  readonly keyBytesMax: number;
  readonly valueBytesMax: number;
  /**
   * How long applied rounds gather before one state store write: the WAL already holds them
   * durably, so the store may lag; 0 writes every round at once.
   */
  readonly storeFlushIntervalMs: number;
  /** How often housekeeping runs: membership upkeep, TTL expiry and stream sweeps. */
  readonly housekeepingIntervalMs: number;
  readonly proposalTimeoutMs: number;
  readonly readTimeoutMs: number;
  /** Every replica hashes its state at each applied index that is a multiple of this (the state check). */
  readonly stateCheckEntries: number;
  /**
   * Requests per second (and burst) each remote address may make without a token, on every
   * protocol together; 0 requests per second: no limit. Tokens follow their role's rate.
   */
  readonly addressRate: RateLimit;
  /** The most client commands one Raft entry carries (those proposed in one turn of the event loop). */
  readonly entryCommandsMax: number;
  /** The most bytes of encoded commands one Raft entry carries (a single larger command goes alone). */
  readonly entryBytesMax: number;
  /** Ready (for readiness probes) while this node's applied index is at most this far behind the leader's commit. */
  readonly readyLagEntriesMax: number;
  /** How long a readiness check waits for this node to catch up before comparing the indexes. */
  readonly readyWaitMs: number;
}

/** The settings `cairn node` runs with unless told otherwise. */
export const defaultNodeSettings: CairnNodeSettings = {
  electionTicks: 10,
  heartbeatTicks: 1,
  tickIntervalMs: 100,
  inflightAppendsMax: 256,
  appendBytesMax: 1024 * 1024,
  snapshotEntries: 100_000,
  snapshotBytes: 64 * 1024 * 1024,
  snapshotLogBytesMax: 256 * 1024 * 1024,
  snapshotLogEntriesMax: 1_000_000,
  segmentBytesMax: 64 * 1024 * 1024,
  walDurableEndEveryBytes: 64 * 1024,
  // The services' own limits: a node changes them only when told to.
  keyBytesMax: defaultKvLimits.keyBytesMax,
  valueBytesMax: defaultKvLimits.valueBytesMax,
  storeFlushIntervalMs: 50,
  housekeepingIntervalMs: 1_000,
  proposalTimeoutMs: 5_000,
  readTimeoutMs: 5_000,
  stateCheckEntries: 10_000,
  addressRate: { requestsPerSecond: 0, burst: 0 },
  entryCommandsMax: defaultCommandBatcherSettings.entryCommandsMax,
  entryBytesMax: defaultCommandBatcherSettings.entryBytesMax,
  readyLagEntriesMax: 1_000,
  readyWaitMs: 1_000,
};

/**
 * Seams for a harness that observes a node (the simulator checks the durable log, each applied
 * entry and each snapshot install). Production passes none; each wraps what the node built and
 * must behave as the thing it wraps.
 */
export interface CairnNodeHooks {
  readonly wrapStorage?: (storage: GroupStorage) => GroupStorage;
  /** Sees every batch of Raft messages the group sends, with its urgency (before the transport). */
  readonly wrapSender?: (sender: MessageSender) => MessageSender;
  readonly wrapStateMachine?: (
    machine: StateMachine<EntryOutcome>,
    backend: StoreBackend,
  ) => StateMachine<EntryOutcome>;
  /** Called as a stored snapshot from the leader starts to be installed. */
  readonly onSnapshotInstall?: () => void;
  readonly onSoftState?: (soft: SoftState) => void;
  /** Observes a broken invariant instead of crashing the process (the runtime's default). */
  readonly crash?: (error: unknown) => void;
}

/** What a node is built from. */
export interface CairnNodeOptions {
  readonly fs: FileSystem;
  /** Where the WAL, hard state and snapshots live on `fs`. */
  readonly dataDir: string;
  readonly env: Env;
  /** The peer transport; the node starts it and closes it. */
  readonly transport: Transport<NodeWireMessage>;
  /** The state machine's store, opened by the caller (lmdb, or the simulator's memory store); closed with the node. */
  readonly stateStore: StateStore;
  readonly membership: NodeMembership;
  readonly settings?: Partial<CairnNodeSettings>;
  /** Where this node serves clients, as announced to peers (for errors naming the leader). */
  readonly clientAddresses: {
    readonly httpUrl: string;
    readonly endpoints?: NonNullable<PeerInfo["endpoints"]>;
  };
  /** `host:port` where peers reach this node, announced to them with its client addresses. */
  readonly peerAddress: string;
  /**
   * Set when the node's durable state was found missing or damaged and discarded: the node starts
   * empty, withholds its vote and serves no local reads until a leader made it whole
   * (PersistedState.stateLost), then calls `whole` once that log is durable (docs/faults.md,
   * "Corruption").
   */
  readonly recovery?: { readonly reason: string; readonly whole: () => Promise<void> };
  /**
   * Repairs damage found while the node runs (a stored value failing its checksum, this node named
   * by the state check, a corrupt file met by the runtime): once the node has stopped its group
   * (no votes, no reads, no writes), it hands `reason` here, once, and its owner closes it and opens
   * it again through the start-time repair (docs/faults.md, "Repair while running"). Without it,
   * such damage is refused and logged, and repaired at the next start.
   */
  readonly onDamage?: (reason: string) => void;
  /** Repairs the owning process ran in place before this open (for /metrics). */
  readonly repairsInPlace?: number;
  /**
   * Where the state check counts its alarms, per node named (for /metrics): the owning process
   * keeps one across repairs in place. A fresh count when absent.
   */
  readonly stateCheckAlarms?: Map<string, number>;
  /** Operator-facing entries (recovery notes, fatal errors, role changes); none when absent. */
  readonly logger?: Logger;
  readonly hooks?: CairnNodeHooks;
}

/** A running node: its group, services and the handles the protocol adapters need. */
export class CairnNode {
  readonly id: NodeId;
  readonly name: string;
  readonly clusterId: string;
  readonly group: RaftGroup<EntryOutcome>;
  readonly backend: StoreBackend;
  readonly host: NodeHost;
  readonly kv: KvService;
  readonly streams: StreamService;
  readonly cluster: ClusterService;
  readonly membership: Membership;
  /** Checks every protocol's principals against this node's copy of tokens and roles. */
  readonly guard: AuthGuard;
  /** The rate limits every protocol asks before serving a request (docs/security.md). */
  readonly limiter: RateLimiter;
  /** Tokens and roles (docs/security.md). */
  readonly auth: AuthService;
  /** Resolves when the cluster removed this node from its configuration. */
  readonly removed: Promise<void>;
  readonly #env: Env;
  readonly #transport: Transport<NodeWireMessage>;
  readonly #wal: Wal;
  readonly #store: StateStore;
  readonly #settings: CairnNodeSettings;
  readonly #log: Logger;
  readonly #fatal: FatalState;
  readonly #resolveRemoved: () => void;
  #cancelHousekeeping: Cancel = () => {};
  #wasMember = false;
  #closed = false;
  /** Why the node recovers discarded state, until it is whole again. */
  #recovering: { readonly reason: string; readonly whole: () => Promise<void> } | undefined;
  /** The commit index at which the core stopped withholding its vote (recovery's end, once durable). */
  #wholeAtIndex: number | undefined;
  #clearing = false;
  readonly #stateCheck: StateCheck;
  #stateReport: StateCheckReport = { index: null, agreeing: 0, differing: [] };
  #draining = false;
  /** Why this node stopped to repair itself, once it found damage while running. */
  #damage: string | undefined;
  readonly #onDamage: ((reason: string) => void) | undefined;

  private constructor(parts: {
    membership: NodeMembership;
    env: Env;
    transport: Transport<NodeWireMessage>;
    wal: Wal;
    store: StateStore;
    settings: CairnNodeSettings;
    log: Logger;
    fatal: FatalState;
    group: RaftGroup<EntryOutcome>;
    backend: StoreBackend;
    host: NodeHost;
    applied: ApplyNotifier;
    stateCheck: StateCheck;
    recovery: CairnNodeOptions["recovery"];
    onDamage: CairnNodeOptions["onDamage"];
  }) {
    const { membership: who, env, group, backend, host, applied, settings } = parts;
    this.id = nodeId(who.id);
    this.name = who.name;
    this.clusterId = who.clusterId;
    this.#env = env;
    this.#transport = parts.transport;
    this.#wal = parts.wal;
    this.#store = parts.store;
    this.#settings = settings;
    this.#log = parts.log;
    this.#fatal = parts.fatal;
    this.#stateCheck = parts.stateCheck;
    this.#recovering = parts.recovery;
    this.#onDamage = parts.onDamage;
    this.group = group;
    this.backend = backend;
    this.host = host;
    // Every protocol authenticates its clients with the guard, from this node's copy of the
    // replicated tokens and roles; the leader checks forwarded writes again with its own.
    const guard = new AuthGuard({
      state: backend.reader,
      nowMs: () => env.nowMs(),
      barrier: () => group.readBarrier(),
    });
    this.guard = guard;
    this.limiter = new RateLimiter({
      state: backend.reader,
      nowMs: () => env.monotonicMs(),
      perAddress: settings.addressRate,
    });
    // A follower hands writes and membership changes to the leader over the peer link.
    // Every write proposed on this node, and every write a follower hands over, shares the entries
    // of its turn of the event loop.
    const batcher = new CommandBatcher(group, (run) => env.defer(run), {
      ...defaultCommandBatcherSettings,
      entryCommandsMax: settings.entryCommandsMax,
      entryBytesMax: settings.entryBytesMax,
    });
    const link = new LeaderLink({ group, batcher, host, env, backend, applied, guard });
    const replication = new GroupReplication(group, batcher, backend, env, link, { guard });
    this.auth = new AuthService(replication, guard);
    this.kv = new KvService(replication, {
      keyBytesMax: settings.keyBytesMax,
      valueBytesMax: settings.valueBytesMax,
    });
    this.streams = new StreamService(replication, applied, {
      ...defaultStreamLimits,
      messageBytesMax: settings.valueBytesMax,
    });
    this.cluster = new ClusterService(who.clusterId, group, host, {
      guard,
      recovering: () => this.#damage ?? this.#recovering?.reason,
      stateCheck: () => this.#stateReport,
    });
    this.membership = new Membership({
      clusterId: who.clusterId,
      group,
      host,
      state: backend.reader,
      knownMembers: who.members,
      initialVoters: who.initialVoters,
      bootstrapped: who.bootstrapped,
      setPeers: (p) => parts.transport.setPeers(p),
      nowMs: () => env.nowMs(),
      link,
      guard,
    });
    link.serveMembership(this.membership);
    let resolveRemoved: () => void = () => {};
    this.removed = new Promise<void>((resolve) => {
      resolveRemoved = resolve;
    });
    this.#resolveRemoved = resolveRemoved;
  }

  /** Opens (recovering) a node's storage, starts its group, transport and housekeeping. */
  static async open(options: CairnNodeOptions): Promise<CairnNode> {
    const settings: CairnNodeSettings = { ...defaultNodeSettings, ...options.settings };
    const log = (options.logger ?? silentLogger).child({ component: "storage" });
    const { fs, transport, stateStore: store } = options;
    const fatal: FatalState = { failed: false, node: undefined };
    const onFailure = (error: StorageError) => {
      fatal.failed = true;
      log.fatal("storage failed, this node stops accepting writes", { err: error });
      fatal.node?.maybeRepair(error);
    };
    let wal: Wal | undefined;
    try {
      const opened = await Wal.open(fs, joinPath(options.dataDir, "wal"), {
        segmentBytesMax: settings.segmentBytesMax,
        ...(settings.walDurableEndEveryBytes === undefined
          ? {}
          : { durableEndEveryBytes: settings.walDurableEndEveryBytes }),
        onFailure,
      });
      wal = opened.wal;
      const torn = opened.recovery.tornTail;
      if (torn !== undefined) log.warn(`recovered: truncated a torn record at ${torn.file}:${torn.offset}`);
      // What a cut (at this open or an earlier one: the start-time check opens the WAL first) may
      // have taken that was acknowledged: one line, whichever open cut it.
      const lost = opened.recovery.tailLost.get(mainGroup);
      if (lost !== undefined)
        log.warn(
          `a WAL tail that may have held acknowledged entries through index ${lost} was cut: no votes until a leader has resent them`,
        );
      return await CairnNode.#start(options, settings, wal, opened.recovery, fatal, onFailure);
    } catch (error) {
      // A node that refuses to start (damaged storage, a port taken) leaves no handle open.
      await transport.close().catch(() => undefined);
      await wal?.close().catch(() => undefined);
      await store.close().catch(() => undefined);
      throw error;
    }
  }

  static async #start(
    options: CairnNodeOptions,
    settings: CairnNodeSettings,
    wal: Wal,
    recovery: WalRecovery,
    fatal: FatalState,
    onFailure: (error: StorageError) => void,
  ): Promise<CairnNode> {
    const log = options.logger ?? silentLogger;
    const raftLog = log.child({ component: "raft" });
    const hooks = options.hooks ?? {};
    const { fs, env, transport, stateStore: store, membership: who } = options;
    const id = nodeId(who.id);
    const hardStates = await HardStateStore.open(fs, joinPath(options.dataDir, "hardstate"), { onFailure });
    const snapshotFiles = await SnapshotStore.open(fs, joinPath(options.dataDir, "snapshots"), {
      chunkBytesMax: snapshotChunkBytesMax,
      onFailure,
    });
    const snapshots = new ObservedSnapshots(snapshotFiles, store, mainGroup, hooks);
    const built = new WalGroupStorage(
      hardStates,
      wal,
      recovery,
      mainGroup,
      snapshots,
      options.recovery !== undefined,
    );
    const storage = hooks.wrapStorage?.(built) ?? built;

    transport.setPeers(peerAddresses(who.members, id));
    // The cross-replica state check: this node's hashes go out with its peer info.
    const stateCheck = new StateCheck();
    const host = new NodeHost({
      self: { id, name: who.name, ...options.clientAddresses, peerAddress: options.peerAddress },
      transport,
      env,
      stateHashes: () => stateCheck.recent(),
    });
    const backend = new StoreBackend(store, mainGroup, {
      flushIntervalMs: settings.storeFlushIntervalMs,
      after: env.after,
    });
    const applied = new ApplyNotifier(undefined, env);
    const service = new ServiceStateMachine(backend, undefined, (touched) => applied.notify(touched), {
      entriesBetween: settings.stateCheckEntries,
      onHash: (hash) => stateCheck.record(hash),
      // The hash of a large state runs page by page in the background, paced to a share of the
      // main thread: its CPU grows with the state (about 34 s for 1M keys and 5M messages), and
      // unpaced it took most of the leader while a full cluster served (docs/benchmarks.md, "Scale").
      pacer: () => pacedPause(env, stateHashSharePercent, stateHashUnpacedPages),
    });
    const stateMachine = hooks.wrapStateMachine?.(service, backend) ?? service;
    const group = await RaftGroup.open<EntryOutcome>({
      raft: {
        id,
        groupId: mainGroup,
        conf: { voters: who.initialVoters.map(nodeId), learners: [] },
        electionTimeoutTicks: settings.electionTicks,
        heartbeatTicks: settings.heartbeatTicks,
        preVote: true,
        checkQuorum: true,
        appendBytesMax: settings.appendBytesMax,
        inflightAppendsMax: settings.inflightAppendsMax,
      },
      env,
      storage,
      sender: hooks.wrapSender?.(host.sender()) ?? host.sender(),
      stateMachine,
      tickIntervalMs: settings.tickIntervalMs,
      proposalTimeoutMs: settings.proposalTimeoutMs,
      readTimeoutMs: settings.readTimeoutMs,
      peerConnected: (peer) => host.isConnected(peer),
      onFatal: (error) => {
        fatal.failed = true;
        raftLog.fatal("the runtime failed, this node stops accepting writes", { err: error });
        fatal.node?.maybeRepair(error);
      },
      onSoftState: (soft) => {
        raftLog.info(`role ${soft.role}, leader ${soft.leaderId ?? "unknown"}`, {
          role: soft.role,
          leaderId: soft.leaderId,
        });
        hooks.onSoftState?.(soft);
      },
      ...(hooks.crash === undefined ? {} : { crash: hooks.crash }),
      snapshots: {
        service: snapshots,
        interval: {
          entriesBetween: settings.snapshotEntries,
          bytesBetween: settings.snapshotBytes,
          logBytesMax: settings.snapshotLogBytesMax,
          logEntriesMax: settings.snapshotLogEntriesMax,
        },
        send: (message, chunks) => host.sendSnapshot(message, chunks),
      },
    });
    group.metrics.recovering = options.recovery !== undefined;
    group.metrics.repairsInPlace = options.repairsInPlace ?? 0;
    if (options.stateCheckAlarms !== undefined) group.metrics.stateCheckAlarms = options.stateCheckAlarms;
    host.attach(mainGroup, group);
    host.setMembers(peerAddresses(who.members, id).keys());
    const node = new CairnNode({
      membership: who,
      env,
      transport,
      wal,
      store,
      settings,
      log,
      fatal,
      group,
      backend,
      host,
      applied,
      stateCheck,
      recovery: options.recovery,
      onDamage: options.onDamage,
    });
    fatal.node = node;
    try {
      await transport.start();
    } catch (error) {
      await group.stop();
      host.close();
      throw error;
    }
    host.startAnnouncing();
    node.#scheduleHousekeeping();
    return node;
  }

  /** Whether a storage or runtime failure stopped this node from accepting writes. */
  get failed(): boolean {
    return this.#fatal.failed;
  }

  /**
   * Whether the node can serve clients, and if not, why (for readiness probes): it is not stopping
   * or failed, knows a leader, and is caught up. Caught up means a ReadIndex round (the leader's
   * commit index, confirmed by a quorum) is applied here within `readyWaitMs`, or else this node's
   * applied index is at most `readyLagEntriesMax` behind the index that round learned.
   */
  async readiness(): Promise<Readiness> {
    const now = this.#readinessNow();
    if (!now.ready) return now;
    const answeredBefore = this.group.readRoundsAnswered;
    let cancelWait: Cancel = () => {};
    const waited = new Promise<"waited">((resolve) => {
      cancelWait = this.#env.after(this.#settings.readyWaitMs, () => resolve("waited"));
    });
    const outcome = await Promise.race([
      this.group.readBarrier().then(
        () => "caught-up" as const,
        (error: unknown) => error,
      ),
      waited,
    ]);
    cancelWait();
    if (outcome === "caught-up") return this.#readinessNow();
    if (outcome !== "waited") {
      return { ready: false, reason: `the leader's commit index is unknown: ${String(outcome)}` };
    }
    // Without a round answered, this node cannot tell how far behind it is (its loop may be stuck
    // on a slow disk): not ready.
    const leaderIndex = this.group.lastReadIndex;
    if (this.group.readRoundsAnswered === answeredBefore || leaderIndex === undefined) {
      return { ready: false, reason: "catching up: the leader's commit index did not arrive in time" };
    }
    const applied = this.group.appliedIndex;
    if (leaderIndex - applied > this.#settings.readyLagEntriesMax) {
      return { ready: false, reason: `catching up: applied ${applied} of the leader's ${leaderIndex}` };
    }
    return this.#readinessNow();
  }

  #readinessNow(): Readiness {
    if (this.#damage !== undefined)
      return { ready: false, reason: `repairing damaged data: ${this.#damage}` };
    if (this.#draining) return { ready: false, reason: "stopping" };
    if (this.#fatal.failed) return { ready: false, reason: "storage failed" };
    if (this.group.softState.leaderId === null) return { ready: false, reason: "no leader known" };
    return { ready: true };
  }

  /**
   * The first step of a graceful stop: readiness turns false at once, and a leader hands its
   * leadership to the voter furthest along, waiting up to `timeoutMs` for another node to lead.
   * Answers whether this node still leads (the transfer did not happen in time) or was not leading.
   */
  async drain(timeoutMs: number): Promise<"not-leader" | "transferred" | "still-leader"> {
    this.#draining = true;
    const status = this.group.status();
    if (status.role !== "leader") return "not-leader";
    const target = status.peers
      // The leader's own progress is among its peers': it must not pick itself.
      .filter((p) => p.id !== this.id && p.voter && p.recentActive)
      .sort((a, b) => b.matchIndex - a.matchIndex)[0];
    if (target === undefined) {
      this.#log.warn("draining: no voter is in touch to take over the leadership");
      return "still-leader";
    }
    try {
      this.group.transferLeadership(target.id);
    } catch (error) {
      this.#log.warn("draining: the leadership transfer was refused", { err: error, target: target.id });
      return "still-leader";
    }
    const deadline = this.#env.monotonicMs() + timeoutMs;
    while (this.#env.monotonicMs() < deadline) {
      if (this.group.softState.role !== "leader") return "transferred";
      await new Promise<void>((resolve) => this.#env.after(this.#settings.tickIntervalMs, resolve));
    }
    return this.group.softState.role === "leader" ? "still-leader" : "transferred";
  }

  /**
   * One round of housekeeping, on the injected clock so the simulator runs it too: membership
   * upkeep on every node; on the leader, TTL expiry and stream retention sweeps, proposed with the
   * leader's timestamp so replicas agree; and noticing this node's own removal.
   */
  async housekeeping(): Promise<void> {
    this.#maybeFinishRecovery();
    this.#compareStates();
    const work: Promise<unknown>[] = [this.membership.maintain()];
    // A member that learns the cluster removed it stops serving, as etcd's members do. Best effort:
    // a leader may stop replicating to it before the removal entry reaches it.
    const conf = this.group.status().conf;
    const isMember = conf.voters.includes(this.id) || conf.learners.includes(this.id);
    if (this.#wasMember && !isMember) {
      this.#log.child({ component: "membership" }).warn("this node was removed from the cluster; stopping");
      this.#resolveRemoved();
    }
    this.#wasMember = isMember;
    if (this.group.softState.role === "leader" && !this.#fatal.failed) {
      // The node's own sweeps: no client asked for them, so they run as the node itself.
      work.push(
        runAs(system, () => this.kv.sweepExpiredIfDue()),
        runAs(system, () => this.streams.sweepIfDue()),
      );
    }
    const outcomes = await Promise.allSettled(work);
    for (const outcome of outcomes) {
      // Sweeps retry next round; a leadership change or a timeout on the way is expected here.
      if (outcome.status === "rejected" && !this.#closed)
        this.#log.child({ component: "housekeeping" }).warn("housekeeping failed", { err: outcome.reason });
    }
  }

  /**
   * A recovering node is whole once a leader gave it the committed log (the core stops withholding
   * its vote) and that log is durable here; only then does it forget, durably, that it recovers.
   */
  #maybeFinishRecovery(): void {
    const recovering = this.#recovering;
    if (recovering === undefined || this.#clearing) return;
    const raft = this.group.status();
    if (raft.votesWithheld) return;
    this.#wholeAtIndex ??= raft.commitIndex;
    if (raft.persistedIndex < this.#wholeAtIndex) return;
    this.#clearing = true;
    recovering.whole().then(
      () => {
        this.#log
          .child({ component: "recovery" })
          .info(
            `recovered: the log is whole again through ${this.#wholeAtIndex}; voting and serving local reads`,
          );
        this.#recovering = undefined;
        this.group.metrics.recovering = false;
      },
      (error: unknown) => {
        this.#clearing = false;
        this.#log
          .child({ component: "recovery" })
          .error("could not clear the recovering record", { err: error });
      },
    );
  }

  /** Compares the state hashes of this node and its peers; names (and logs) a node that differs. */
  #compareStates(): void {
    const reported = [{ name: this.name, hashes: this.#stateCheck.recent() }];
    for (const peer of this.host.peers().values())
      reported.push({ name: peer.name, hashes: peer.stateHashes ?? [] });
    const previous = new Set(this.#stateReport.differing.map((d) => d.name));
    this.#stateReport = this.#stateCheck.compare(reported, this.group.status().conf.voters.length);
    this.group.metrics.stateCheckIndex = this.#stateReport.index ?? 0;
    this.group.metrics.stateCheckDiffering = this.#stateReport.differing.map((d) => d.name);
    for (const d of this.#stateReport.differing) {
      if (previous.has(d.name)) continue;
      const alarms = this.group.metrics.stateCheckAlarms;
      alarms.set(d.name, (alarms.get(d.name) ?? 0) + 1);
      const who = d.name === this.name ? "this node" : `node ${d.name}`;
      this.#log
        .child({ component: "state-check" })
        .error(
          `ALARM: state check: ${who} holds a state at index ${d.index} whose hash differs from the majority's: its data is damaged or diverged`,
        );
      if (d.name === this.name)
        this.reportDamage(`the state check: its state at index ${d.index} differs from the majority's`);
    }
  }

  /**
   * Damage found while running (a value failing its checksum on a read, this node named by the
   * state check, a corrupt file met by the runtime). With an owner that repairs (`onDamage`), the
   * node stops its group at once, so it neither votes nor answers from the damaged data, and hands
   * the reason over, once; the owner reopens it through the start-time repair. Without one, or as
   * its cluster's only member (no peer could refill it), the damage is refused and logged, and the
   * next start repairs what it can.
   */
  reportDamage(reason: string): void {
    if (this.#damage !== undefined || this.#closed) return;
    const log = this.#log.child({ component: "recovery" });
    const conf = this.group.status().conf;
    if (this.#onDamage === undefined || conf.voters.length + conf.learners.length <= 1) {
      log.error(`damaged data found while running: ${reason}; refused, repaired at the next start`);
      return;
    }
    this.#damage = reason;
    this.group.metrics.recovering = true;
    log.error(
      `DAMAGED while running: ${reason}; stopping this node's group (no votes, no reads) to repair it in place from the leader`,
    );
    void this.group.stop();
    this.#onDamage(reason);
  }

  /** Reports a fatal storage or runtime error as damage when it is a corrupt file or value. */
  maybeRepair(error: unknown): void {
    const corrupt = corruptionIn(error);
    if (corrupt !== undefined) this.reportDamage(corrupt.message);
  }

  #scheduleHousekeeping(): void {
    this.#cancelHousekeeping = this.#env.after(this.#settings.housekeepingIntervalMs, () => {
      if (this.#closed) return;
      void this.housekeeping();
      this.#scheduleHousekeeping();
    });
  }

  /** Stops housekeeping, the group, the host and the transport, then closes the storage. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelHousekeeping();
    await this.group.stop();
    this.host.close();
    await this.#transport.close();
    await this.#wal.close();
    await this.#store.close();
  }

  /**
   * Stops timers and peer traffic at once, as a process dying would, without touching storage (a
   * harness that simulates a crash drops the disk's unsynced writes itself).
   */
  abandon(): void {
    this.#closed = true;
    this.#cancelHousekeeping();
    this.host.close();
    void this.#transport.close();
  }
}

/** The failure state the storage's and the runtime's callbacks share with the node they serve. */
interface FatalState {
  failed: boolean;
  node: CairnNode | undefined;
}

/** The codes of damaged data (as opposed to a failing disk or a full one). */
const corruptionCodes: ReadonlySet<string> = new Set<StorageErrorCode>([
  "ERR_WAL_CORRUPT",
  "ERR_STATE_CORRUPT",
  "ERR_GROUP_CORRUPT",
  "ERR_HARD_STATE_CORRUPT",
  "ERR_SNAPSHOT_CORRUPT",
]);

/** The first error along `error`'s chain of causes that reports damaged data, if any. */
/** The corrupt-data error in `error` or its causes (a storage code that means damage), if any. */
export function corruptionIn(error: unknown): Error | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++)
    if ("code" in e && typeof e.code === "string" && corruptionCodes.has(e.code)) return e;
  return undefined;
}

/** The transport addresses of every member but `self`, from `host:port` strings. */
function peerAddresses(members: readonly MemberRecord[], self: NodeId): Map<NodeId, PeerAddress> {
  const peers = new Map<NodeId, PeerAddress>();
  for (const m of members) {
    if (m.id === self) continue;
    peers.set(nodeId(m.id), peerAddressOf(m.peerAddress));
  }
  return peers;
}

/**
 * The node's snapshots, telling a harness when a snapshot from the leader is installed (a moment
 * to cut the power at). Without the hook it is GroupSnapshots itself.
 */
class ObservedSnapshots extends GroupSnapshots {
  readonly #hooks: CairnNodeHooks;

  constructor(files: SnapshotStore, state: StateStore, group: GroupId, hooks: CairnNodeHooks) {
    super(files, state, group);
    this.#hooks = hooks;
  }

  override async install(...args: Parameters<GroupSnapshots["install"]>): Promise<void> {
    this.#hooks.onSnapshotInstall?.();
    await super.install(...args);
  }
}

/** The share of the main thread the cross-replica state hash may take (see {@link pacedPause}). */
export const stateHashSharePercent = 10;

/**
 * Pages of the state hash that run unpaced (one turn of the event loop each): 100,000 pairs, well
 * under a second of CPU. A small state is hashed at once, so every replica hashes every checked
 * index and they agree soon after a repair; only a large state's hash is paced.
 */
export const stateHashUnpacedPages = 100;

/**
 * The pause between the pages of one run of background work (make one per run: the first page is
 * timed from the call). The first `unpacedPages` pauses are one turn of the event loop each; after
 * that it keeps the work to `sharePercent` of the main thread's time: after a page that took d ms
 * it waits d * (100 / sharePercent - 1) ms, and at least one turn. On a simulated clock (no time
 * passes while code runs) it is one turn.
 */
export function pacedPause(env: Env, sharePercent: number, unpacedPages = 0): () => Promise<void> {
  let pageStartMs = env.monotonicMs();
  let pages = 0;
  return async () => {
    const paced = ++pages > unpacedPages;
    const waitMs = paced ? (env.monotonicMs() - pageStartMs) * (100 / sharePercent - 1) : 0;
    await new Promise<void>((resolve) => {
      if (waitMs >= 1) env.after(waitMs, resolve);
      else env.defer(resolve);
    });
    pageStartMs = env.monotonicMs();
  };
}
