// `cairn node`: the process around one node. It reads the configuration and certificates, opens the
// production file system, lmdb and the TLS transport, has CairnNode assemble the node (as the
// simulator and the in-process test cluster do), serves the client protocols, and runs until
// SIGINT, SIGTERM or removal.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FastifyBaseLogger } from "fastify";
import { CairnClient } from "../client/index.js";
import { type NodeWireMessage, nodeWireCodec, systemEnv } from "../node/index.js";
import { CairnNode, corruptionIn, mainGroup } from "../node-assembly/index.js";
import { type NodeId, nodeId } from "../raft/index.js";
import { startGrpcServer } from "../server/grpc/index.js";
import { buildHttpApp, ClientTls, ConnectionRefusals } from "../server/http/index.js";
import { startRespServer } from "../server/resp/index.js";
import { startTextServer } from "../server/text/index.js";
import { type AuthService, type JoinAnswer, type Membership, runAs, system } from "../service/index.js";
import {
  DelayedFileSystem,
  type FileSystem,
  LmdbStateStore,
  makeDirDurable,
  NodeFileSystem,
  StorageError,
  Wal,
} from "../storage/index.js";
import { TlsTransport } from "../transport/index.js";
import type { Logger } from "../util/index.js";
import {
  clearRecovering,
  damagedDirName,
  discardReplicatedState,
  hasWalSegments,
  readDiscardRequest,
  readRecovering,
  requestDiscard,
} from "./data-repair.js";
import { watchDiskDelay } from "./disk-delay.js";
import { findDamage } from "./local-state.js";
import { createNodeLogger } from "./logging.js";
import { advertisedAddresses, ConfigError, type NodeConfig } from "./node-config.js";
import { identityFileName, loadOrBootstrap, type NodeIdentity } from "./node-identity.js";
import { RepairBackoff } from "./repair-backoff.js";
import { verifyStateStore } from "./verify-state.js";

/** A running node. */
export interface RunningNode {
  readonly id: NodeId;
  readonly httpUrl: string;
  /**
   * Re-reads the client TLS certificate, key and CA: new connections get them. Throws, keeping the
   * old ones, when they cannot be read.
   */
  reloadClientTls(): void;
  /** Resolves when the cluster removed this node from its membership. */
  readonly removed: Promise<void>;
  /**
   * A graceful stop: readiness turns false, a leader hands its leadership to the voter furthest
   * along (waiting up to two election timeouts), then listeners and storage close.
   */
  stop(): Promise<void>;
  close(): Promise<void>;
}

/** Asks a running cluster (through any member's HTTP API) to add this node. */
async function joinCluster(config: NodeConfig, url: string): Promise<NodeIdentity> {
  // With authentication on, joining takes an admin token (docs/security.md).
  const token = process.env["CAIRN_TOKEN"];
  const client = new CairnClient({
    endpoints: [url],
    retryBudgetMs: 30_000,
    ...(token !== undefined && token !== "" ? { token } : {}),
  });
  const answer = (await client.request(
    "POST",
    "/v1/cluster/members",
    { name: config.name, peerAddress: advertisedAddresses(config).peer },
    `join-${config.name}`,
  )) as JoinAnswer;
  return {
    clusterId: answer.clusterId,
    id: answer.id,
    name: config.name,
    bootstrapped: false,
    initialVoters: answer.initialVoters,
    members: answer.members,
  };
}

/** How a node started by {@link runNode} repairs damage it finds while running. */
export interface InPlaceRepair {
  /** Hears of damage found while running, once per start (see CairnNodeOptions.onDamage). */
  readonly onDamage: (reason: string) => void;
  /** Repairs this process has run in place so far (for /metrics). */
  readonly repairsInPlace: number;
  /** The state check's alarms so far, kept across repairs (for /metrics; CairnNodeOptions). */
  readonly stateCheckAlarms: Map<string, number>;
}

/** Starts a node from its configuration. */
export async function startNode(
  config: NodeConfig,
  log: Logger,
  pinoLogger?: FastifyBaseLogger,
  repair?: InPlaceRepair,
): Promise<RunningNode> {
  if (config.tlsCa === undefined || config.tlsCert === undefined || config.tlsKey === undefined) {
    throw new ConfigError(
      "tls-ca",
      "node-to-node traffic is mutual TLS: give tls-ca, tls-cert and tls-key (cairn dev makes them)",
    );
  }
  // The slow disk is a testing facility of the fault suite (docs/faults.md).
  const diskDelay =
    config.diskDelayFile === undefined
      ? undefined
      : await watchDiskDelay(config.diskDelayFile, log.child({ component: "storage" }));
  const fs: FileSystem =
    diskDelay === undefined
      ? new NodeFileSystem()
      : new DelayedFileSystem(new NodeFileSystem(), diskDelay.delay);
  const recovering = await checkLocalData(fs, config, log);
  const identity = await loadOrBootstrap(fs, config, joinCluster);
  const id = nodeId(identity.id);
  const [ca, cert, key] = await Promise.all([
    readFile(config.tlsCa, "utf8"),
    readFile(config.tlsCert, "utf8"),
    readFile(config.tlsKey, "utf8"),
  ]);

  // lmdb creates its directory without syncing the parent; create it durably first.
  await makeDirDurable(fs, join(config.dataDir, "state"));
  // Set once the node is assembled: a value failing its checksum on a read is damage to repair.
  let assembled: CairnNode | undefined;
  const stateStore = LmdbStateStore.open(join(config.dataDir, "state"), {
    keyBytesMax: 1900,
    onCorrupt: (error) => assembled?.reportDamage(error.message),
  });
  // Set once the node is assembled; until then only the members it starts with may connect.
  let membership: Membership | undefined;
  const startMembers = new Set(identity.members.map((m) => m.id));
  const transport = new TlsTransport<NodeWireMessage>({
    self: id,
    clusterId: identity.clusterId,
    listen: config.peerListen,
    tls: { ca, cert, key },
    codec: nodeWireCodec,
    // The assembly sets the peers from the membership it starts with.
    peers: new Map(),
    dialOverrides: config.peerDialOverrides,
    // A node with the cluster's certificate may connect unless this node knows it was removed: one
    // that joined while this node was down must reach it to bring it up to date (see Membership).
    isMember: (peer) => (membership === undefined ? startMembers.has(peer) : !membership.isRetired(peer)),
  });
  // What peers and clients are told: the advertised addresses, not what this process binds.
  const advertised = advertisedAddresses(config);
  const httpUrl = advertised.httpUrl;
  const endpoints = {
    ...(advertised.text !== undefined ? { text: advertised.text } : {}),
    ...(advertised.redis !== undefined ? { redis: advertised.redis } : {}),
    ...(advertised.grpc !== undefined ? { grpc: advertised.grpc } : {}),
  };
  const node = await CairnNode.open({
    fs,
    dataDir: config.dataDir,
    env: systemEnv(),
    transport,
    stateStore,
    membership: identity,
    ...(recovering === undefined
      ? {}
      : { recovery: { reason: recovering, whole: () => clearRecovering(fs, config.dataDir) } }),
    ...(repair === undefined
      ? {}
      : {
          onDamage: repair.onDamage,
          repairsInPlace: repair.repairsInPlace,
          stateCheckAlarms: repair.stateCheckAlarms,
        }),
    clientAddresses: { httpUrl, endpoints },
    peerAddress: advertised.peer,
    settings: {
      electionTicks: config.electionTicks,
      heartbeatTicks: config.heartbeatTicks,
      tickIntervalMs: config.tickIntervalMs,
      snapshotEntries: config.snapshotEntries,
      snapshotBytes: config.snapshotBytes,
      snapshotLogBytesMax: config.snapshotLogBytesMax,
      snapshotLogEntriesMax: config.snapshotLogEntriesMax,
      addressRate: { requestsPerSecond: config.addressRequestsPerSecond, burst: config.addressBurst },
      entryCommandsMax: config.entryCommandsMax,
      entryBytesMax: config.entryBytesMax,
      segmentBytesMax: config.segmentBytesMax,
      keyBytesMax: config.keyBytesMax,
      valueBytesMax: config.valueBytesMax,
      stateCheckEntries: config.stateCheckEntries,
    },
    logger: log,
  });
  membership = node.membership;
  assembled = node;
  // Every listener this start opened, closed again (newest first) if a later one fails.
  const listeners: { close(): Promise<void> }[] = [];
  const listening = async <T extends { close(): Promise<void> }>(server: Promise<T>): Promise<T> => {
    const opened = await server;
    listeners.unshift(opened);
    return opened;
  };
  const { redis, tls } = await startClientServers(
    config,
    identity.name,
    node,
    log,
    pinoLogger,
    listening,
  ).catch(async (error: unknown) => {
    for (const listener of listeners) await listener.close().catch(() => undefined);
    await node.close();
    diskDelay?.close();
    throw error;
  });

  const close = async () => {
    stopAuthBootstrap();
    for (const listener of listeners) await listener.close();
    await node.close();
    diskDelay?.close();
  };
  const stopAuthBootstrap =
    config.auth === "on" ? bootstrapAuth(config.dataDir, node, log.child({ component: "auth" })) : () => {};
  const listen = (at: { host: string; port: number } | undefined) => at && `${at.host}:${at.port}`;
  log.info(`node ${identity.name} (id ${id}) of cluster ${identity.clusterId}: HTTP ${httpUrl}`, {
    clusterId: identity.clusterId,
    id,
    advertised,
    listen: {
      http: listen(config.httpListen),
      peer: listen(config.peerListen),
      ...(redis ? { redis: redis.address } : {}),
      ...(config.textListen ? { text: listen(config.textListen) } : {}),
      ...(config.grpcListen ? { grpc: listen(config.grpcListen) } : {}),
    },
  });
  return {
    id,
    httpUrl,
    removed: node.removed,
    reloadClientTls: () => tls?.reload(),
    close,
    stop: async () => {
      const drained = await node.drain(2 * config.electionTicks * config.tickIntervalMs);
      log.info(`draining: ${drained}`, { leadership: drained });
      await close();
    },
  };
}

/**
 * Checks the node's data before anything opens it (docs/faults.md, "Corruption"), and returns why
 * the node is recovering, if it is: its Raft log missing while its identity is there (an emptied
 * data directory), a state store that fails its check (run in a child process, since lmdb's native
 * code may crash on a damaged page), a corrupt WAL record, hard state or snapshot. Damaged state is
 * moved aside and the node recovers from the leader; a node that is its cluster's only member
 * refuses to start instead (no peer can repair it).
 */
async function checkLocalData(fs: FileSystem, config: NodeConfig, log: Logger): Promise<string | undefined> {
  const walDir = join(config.dataDir, "wal");
  const identityExisted = (await fs.stat(join(config.dataDir, identityFileName))) !== undefined;
  const walExisted = await hasWalSegments(fs, walDir);
  const recovering = await readRecovering(fs, config.dataDir);
  const discardRequest = await readDiscardRequest(fs, config.dataDir);
  if (!identityExisted) {
    // A first start creates the WAL before its identity, so a crash in between never looks like
    // an emptied data directory at the next start.
    if (!walExisted)
      await (await Wal.open(fs, walDir, { segmentBytesMax: config.segmentBytesMax })).wal.close();
    return recovering;
  }
  const damage =
    discardRequest !== undefined
      ? new StorageError("ERR_STATE_CORRUPT", `found while running: ${discardRequest}`)
      : !walExisted && recovering === undefined
        ? new StorageError("ERR_GROUP_CORRUPT", "the Raft log is missing (was the data directory emptied?)")
        : ((await verifyStateStore(join(config.dataDir, "state"))) ??
          (await findDamage(fs, config.dataDir, mainGroup, config.segmentBytesMax)));
  if (damage === undefined) {
    if (recovering !== undefined)
      log.child({ component: "recovery" }).warn(`recovering since an earlier start: ${recovering}`);
    return recovering;
  }
  const identity = await loadOrBootstrap(fs, config, joinCluster);
  // Safety: with no peer to recover from, starting empty would lose everything acknowledged.
  if (identity.initialVoters.length <= 1 && identity.members.length <= 1) {
    throw new StorageError(
      damage.code,
      `${damage.message}; this node is its cluster's only member, so no peer can repair it: restore its data directory from a backup`,
      { cause: damage },
    );
  }
  log
    .child({ component: "recovery" })
    .warn(
      `DAMAGED: ${damage.message}; moving the Raft log, hard state, state and snapshots to ${join(config.dataDir, damagedDirName)} and recovering from the leader (no votes and no local reads until whole)`,
    );
  await discardReplicatedState(fs, config.dataDir, damage.message);
  return damage.message;
}

/**
 * Runs a node until SIGINT or SIGTERM (or, with `stopOn` "stdin-end", until its standard input
 * ends), then stops it cleanly. Damage the node finds while running is repaired in place: the
 * node records that its state must be discarded, closes, and opens again through the start-time
 * repair, in this process (docs/faults.md, "Repair while running"); damage found again soon after
 * a repair waits first ({@link RepairBackoff}).
 */
export async function runNode(config: NodeConfig): Promise<void> {
  const { logger: log, pino } = createNodeLogger({
    node: config.name,
    level: config.logLevel,
    format: config.logFormat,
  });
  const recoveryLog = log.child({ component: "recovery" });
  const backoff = new RepairBackoff();
  // A node the state check names repairs itself within a second or two, so its peers may not see
  // the alarm: its own count must outlive the repair.
  const stateCheckAlarms = new Map<string, number>();
  const fs = new NodeFileSystem();
  let damaged: (reason: string) => void = () => {};
  const start = async (repairing = false): Promise<RunningNode & { readonly damaged: Promise<string> }> => {
    const found = new Promise<string>((resolve) => {
      damaged = resolve;
    });
    try {
      const started = await startNode(config, log, pino.child({ component: "http" }), {
        onDamage: (reason) => damaged(reason),
        repairsInPlace: backoff.repairs,
        stateCheckAlarms,
      });
      return Object.assign(started, { damaged: found });
    } catch (error) {
      // Damage the start-time checks cannot see, found while opening (a state store past the
      // log's end: the log lost entries the state holds) is repaired like damage found while
      // running: recorded for discard, and the start-time repair runs on one more open.
      const corrupt = corruptionIn(error);
      if (corrupt !== undefined && !repairing) {
        await requestDiscard(fs, config.dataDir, corrupt.message);
        recoveryLog.warn(
          `damage found while opening: ${corrupt.message}; opening again to repair it from the leader`,
        );
        return await start(true);
      }
      // A failure late in the start (a client port taken) leaves the Raft group and the transport
      // running: a node that votes and follows but serves nothing. It must not linger (found by the
      // fault suite): once the CLI has reported the error and set the exit status, the process ends.
      setImmediate(() => process.exit());
      throw error;
    }
  };
  let node = await start();
  let stopRequested: () => void = () => {};
  const stopping = new Promise<"stop">((resolve) => {
    stopRequested = () => resolve("stop");
  });
  const stop = () => {
    log.info("stopping");
    stopRequested();
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  // SIGHUP: a renewed client certificate serves new connections, without a restart.
  process.on("SIGHUP", () => {
    try {
      node.reloadClientTls();
      log.info("client TLS files reloaded");
    } catch (error) {
      log.error("client TLS reload failed, the previous certificate stays in use", { err: error });
    }
  });
  if (config.stopOn === "stdin-end") {
    // The supervisor writes nothing; the pipe ends when it closes it or dies.
    process.stdin.on("data", () => undefined);
    process.stdin.once("end", () => {
      log.info("standard input ended: the supervisor is gone");
      stop();
    });
    process.stdin.once("error", stop);
  }
  for (;;) {
    const event = await Promise.race([stopping, node.removed.then(() => "stop" as const), node.damaged]);
    if (event === "stop") {
      await node.stop().catch((error: unknown) => log.error("stopping failed", { err: error }));
      break;
    }
    // Recorded before anything closes: a crash from here on still discards at the next start.
    await requestDiscard(fs, config.dataDir, event);
    await node.close();
    const delayMs = backoff.nextDelayMs(Date.now());
    recoveryLog.warn(
      delayMs === 0
        ? `repairing in place (repair ${backoff.repairs} of this process): reopening the node to discard its state and refill it from the leader`
        : `damage found again soon after a repair (repair ${backoff.repairs} of this process): waiting ${delayMs} ms before repairing again; meanwhile this node is closed`,
      { reason: event, delayMs, repairs: backoff.repairs },
    );
    if (delayMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([
        stopping,
        new Promise<"waited">((resolve) => {
          timer = setTimeout(resolve, delayMs, "waited");
        }),
      ]);
      clearTimeout(timer);
      if (waited === "stop") break;
    }
    node = await start();
  }
  // An open stdin would keep the process alive after a stop by signal.
  if (config.stopOn === "stdin-end") process.stdin.destroy();
}

/** Serves HTTP and each configured client protocol over the node's services. */
async function startClientServers(
  config: NodeConfig,
  nodeName: string,
  node: CairnNode,
  log: Logger,
  pinoLogger: FastifyBaseLogger | undefined,
  listening: <T extends { close(): Promise<void> }>(server: Promise<T>) => Promise<T>,
) {
  const tls =
    config.clientTlsCert !== undefined && config.clientTlsKey !== undefined
      ? new ClientTls({
          cert: config.clientTlsCert,
          key: config.clientTlsKey,
          ...(config.clientTlsCa !== undefined
            ? { ca: config.clientTlsCa, clientCerts: config.clientTlsVerify }
            : {}),
        })
      : undefined;
  const secure = tls !== undefined ? { tls } : {};
  // Every client port counts the connections it refused here, for /metrics.
  const refusals = new ConnectionRefusals();
  const connections = {
    connectionsMax: config.connectionsMax,
    connectionsPerAddressMax: config.connectionsPerAddressMax,
  };
  const http = buildHttpApp({
    kv: node.kv,
    streams: node.streams,
    nodeName,
    cluster: {
      status: () => node.cluster.status(),
      membership: node.membership,
      backup: () => node.cluster.backup(),
    },
    metrics: {
      metrics: node.group.metrics,
      status: () => node.group.status(),
      get appliedIndex() {
        return node.group.appliedIndex;
      },
      authFailures: node.guard.failures,
      rateLimits: node.limiter.counts,
      connectionRefusals: refusals,
      streams: () => node.streams.localSummary(),
      processMetrics: true,
    },
    corsOrigins: config.corsOrigins,
    auth: node.auth,
    readiness: () => node.readiness(),
    connections,
    refusals,
    limiter: node.limiter,
    ...secure,
    ...(pinoLogger !== undefined ? { logger: pinoLogger } : {}),
  });
  await listening(
    http.listen({ host: config.httpListen.host, port: config.httpListen.port }).then(() => http),
  );
  // What every TCP protocol server takes alike: authentication, the node's logger, the connection
  // bounds, the rate limiter and the client TLS.
  const shared = { guard: node.guard, logger: log, connections, refusals, limiter: node.limiter, ...secure };
  const text =
    config.textListen &&
    (await listening(
      startTextServer(config.textListen, { ...shared, kv: node.kv, flavor: config.textCompat }),
    ));
  const redis =
    config.redisListen &&
    (await listening(
      startRespServer(
        { ...shared, kv: node.kv, streams: node.streams, status: () => node.cluster.status() },
        config.redisListen,
      ),
    ));
  const grpc =
    config.grpcListen &&
    (await listening(startGrpcServer(config.grpcListen, { ...shared, streams: node.streams })));
  return { http, text, redis, grpc, tls };
}

/** Where `--auth on` writes the bootstrap admin token, and the mark that it has run. */
export const adminTokenFile = "admin-token";
const authBootstrappedFile = "auth-bootstrapped";

/**
 * `--auth on`: once per data directory, turns authentication on if it is off, and writes the
 * bootstrap admin token to `<data-dir>/admin-token` (mode 0600). Of several nodes started so, one
 * wins; the others find it on (ERR_CONFLICT) and write no token. Tries once a second until done;
 * returns what stops it.
 */
function bootstrapAuth(
  dataDir: string,
  node: {
    readonly auth: AuthService;
    readonly group: { readonly softState: { readonly leaderId: unknown } };
  },
  log: Logger,
): () => void {
  const mark = join(dataDir, authBootstrappedFile);
  let stopped = existsSync(mark);
  const attempt = async (): Promise<void> => {
    try {
      const created = await runAs(system, () => node.auth.enable());
      await writeFile(join(dataDir, adminTokenFile), `${created.token}\n`, { mode: 0o600, flag: "wx" });
      log.info(
        `authentication is on; the admin token (id ${created.id}) is in ${join(dataDir, adminTokenFile)}`,
      );
    } catch (error) {
      if (!(error instanceof Error && "code" in error && error.code === "ERR_CONFLICT")) throw error;
      log.info("authentication is already on in this cluster");
    }
    await writeFile(mark, "", { mode: 0o600 });
    stopped = true;
  };
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    if (stopped) return;
    const next = () => {
      if (!stopped) timer = setTimeout(tick, 1_000);
    };
    if (node.group.softState.leaderId === null) return next();
    attempt().then(next, (error: unknown) => {
      log.warn("turning authentication on failed, retrying", { err: error });
      next();
    });
  };
  timer = setTimeout(tick, 0);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
