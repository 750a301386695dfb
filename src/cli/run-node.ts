// `cairn node`: wires one node process together (storage, transport, Raft group, services, HTTP)
// and runs it until SIGINT or SIGTERM. The only place that knows every layer.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CairnClient } from "../client/index.js";
import { systemEnv } from "../node/env.js";
import { GroupSnapshots, snapshotChunkBytesMax } from "../node/group-snapshots.js";
import { NodeHost } from "../node/node-host.js";
import { type NodeWireMessage, nodeWireCodec } from "../node/node-wire.js";
import { RaftGroup } from "../node/raft-group.js";
import { WalGroupStorage } from "../node/wal-group-storage.js";
import { groupId, type NodeId, nodeId } from "../raft/index.js";
import { startGrpcServer } from "../server/grpc/index.js";
import { buildHttpApp } from "../server/http/app.js";
import { startRespServer } from "../server/resp/index.js";
import { startTextServer } from "../server/text/index.js";
import { ApplyNotifier } from "../service/apply-notifier.js";
import { AuthGuard, runAs, system } from "../service/auth/index.js";
import { AuthService } from "../service/auth-service.js";
import { type JoinAnswer, Membership } from "../service/cluster/membership.js";
import { ClusterService } from "../service/cluster-service.js";
import type { ApplyOutcome } from "../service/command.js";
import { encodeEnvelope } from "../service/command.js";
import { GroupReplication } from "../service/group-replication.js";
import { nextExpiryMs } from "../service/kv/index.js";
import { KvService } from "../service/kv-service.js";
import { LeaderLink } from "../service/leader-link.js";
import { ServiceStateMachine, StoreBackend } from "../service/state-machine.js";
import { defaultStreamLimits, StreamService } from "../service/stream-service.js";
import { makeDirDurable } from "../storage/atomic-file.js";
import { DelayedFileSystem } from "../storage/delayed-file-system.js";
import type { FileSystem } from "../storage/file-system.js";
import { HardStateStore } from "../storage/hard-state-store.js";
import { LmdbStateStore } from "../storage/lmdb-state-store.js";
import { NodeFileSystem } from "../storage/node-file-system.js";
import { SnapshotStore } from "../storage/snapshot-store.js";
import { Wal } from "../storage/wal.js";
import { TlsTransport } from "../transport/tls-transport.js";
import { watchDiskDelay } from "./disk-delay.js";
import { ConfigError, type NodeConfig } from "./node-config.js";
import { loadOrBootstrap, type NodeIdentity } from "./node-identity.js";

/** A running node. */
export interface RunningNode {
  readonly id: NodeId;
  readonly httpUrl: string;
  /** Resolves when the cluster removed this node from its membership. */
  readonly removed: Promise<void>;
  close(): Promise<void>;
}

const MAIN_GROUP = groupId(1);

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
    { name: config.name, peerAddress: `${config.peerListen.host}:${config.peerListen.port}` },
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

/** Starts a node from its configuration. */
export async function startNode(config: NodeConfig, log: (line: string) => void): Promise<RunningNode> {
  if (config.tlsCa === undefined || config.tlsCert === undefined || config.tlsKey === undefined) {
    throw new ConfigError(
      "tls-ca",
      "node-to-node traffic is mutual TLS: give tls-ca, tls-cert and tls-key (cairn dev makes them)",
    );
  }
  // The slow disk is a testing facility of the fault suite (docs/faults.md).
  const diskDelay =
    config.diskDelayFile === undefined ? undefined : await watchDiskDelay(config.diskDelayFile, log);
  const fs: FileSystem =
    diskDelay === undefined
      ? new NodeFileSystem()
      : new DelayedFileSystem(new NodeFileSystem(), diskDelay.delay);
  const identity = await loadOrBootstrap(fs, config, joinCluster);
  const id = nodeId(identity.id);
  const env = systemEnv();
  const [ca, cert, key] = await Promise.all([
    readFile(config.tlsCa, "utf8"),
    readFile(config.tlsCert, "utf8"),
    readFile(config.tlsKey, "utf8"),
  ]);

  let fatal = false;
  const onFailure = (error: Error) => {
    fatal = true;
    log(`FATAL: storage failed, this node stops accepting writes: ${error.message}`);
  };
  const { wal, recovery } = await Wal.open(fs, join(config.dataDir, "wal"), {
    segmentBytesMax: config.segmentBytesMax,
    onFailure,
  });
  if (recovery.tornTail !== undefined) {
    const torn = recovery.tornTail;
    log(
      `recovered: truncated a torn record at ${torn.file}:${torn.offset}` +
        (torn.mayHaveBeenAcknowledged && torn.entriesMax > 0
          ? "; it was whole, so it may have been acknowledged: no votes until a leader has resent it"
          : ""),
    );
  }
  const hardStates = await HardStateStore.open(fs, join(config.dataDir, "hardstate"), { onFailure });
  // lmdb creates its directory without syncing the parent; create it durably first.
  await makeDirDurable(fs, join(config.dataDir, "state"));
  const store = LmdbStateStore.open(join(config.dataDir, "state"), { keyBytesMax: 1900 });
  const snapshotFiles = await SnapshotStore.open(fs, join(config.dataDir, "snapshots"), {
    chunkBytesMax: snapshotChunkBytesMax,
    onFailure,
  });
  const snapshots = new GroupSnapshots(snapshotFiles, store, MAIN_GROUP);
  const storage = new WalGroupStorage(hardStates, wal, recovery, MAIN_GROUP, snapshots);

  const peers = new Map(
    identity.members
      .filter((m) => m.id !== identity.id)
      .map((m) => {
        const at = m.peerAddress.lastIndexOf(":");
        return [
          nodeId(m.id),
          { host: m.peerAddress.slice(0, at), port: Number(m.peerAddress.slice(at + 1)) },
        ] as const;
      }),
  );
  const transport = new TlsTransport<NodeWireMessage>({
    self: id,
    clusterId: identity.clusterId,
    listen: config.peerListen,
    tls: { ca, cert, key },
    codec: nodeWireCodec,
    peers,
    dialOverrides: config.peerDialOverrides,
  });
  const httpUrl = `http://${config.httpListen.host}:${config.httpListen.port}`;
  const textAt = config.textListen && `${config.textListen.host}:${config.textListen.port}`;
  const redisAt = config.redisListen && `${config.redisListen.host}:${config.redisListen.port}`;
  const grpcAt = config.grpcListen && `${config.grpcListen.host}:${config.grpcListen.port}`;
  const endpoints = {
    ...(textAt ? { text: textAt } : {}),
    ...(redisAt ? { redis: redisAt } : {}),
    ...(grpcAt ? { grpc: grpcAt } : {}),
  };
  const host = new NodeHost({ self: { id, name: identity.name, httpUrl, endpoints }, transport, env });
  // Applied rounds reach lmdb together every 50 ms: the WAL already holds them durably.
  const backend = new StoreBackend(store, MAIN_GROUP, { flushIntervalMs: 50, after: env.after });
  const applied = new ApplyNotifier(undefined, env);
  const group = await RaftGroup.open<ApplyOutcome>({
    raft: {
      id,
      groupId: MAIN_GROUP,
      conf: { voters: identity.initialVoters.map(nodeId), learners: [] },
      electionTimeoutTicks: config.electionTicks,
      heartbeatTicks: config.heartbeatTicks,
      preVote: true,
      checkQuorum: true,
      appendBytesMax: 1024 * 1024,
      inflightAppendsMax: 256,
    },
    env,
    storage,
    sender: host.sender(),
    stateMachine: new ServiceStateMachine(backend, undefined, (touched) => applied.notify(touched)),
    tickIntervalMs: config.tickIntervalMs,
    onFatal: (error) => {
      fatal = true;
      log(`FATAL: ${error instanceof Error ? error.message : String(error)}`);
    },
    onSoftState: (soft) => log(`role ${soft.role}, leader ${soft.leaderId ?? "unknown"}`),
    snapshots: {
      service: snapshots,
      entriesBetween: config.snapshotEntries,
      bytesBetween: config.snapshotBytes,

      send: (message, chunks) => host.sendSnapshot(message, chunks),
    },
  });
  host.attach(MAIN_GROUP, group);
  host.setMembers(peers.keys());
  await transport.start();
  host.startAnnouncing();

  // Every protocol authenticates its clients with the guard, from this node's copy of the
  // replicated tokens and roles; the leader checks forwarded writes again with its own.
  const guard = new AuthGuard({
    state: backend.reader,
    nowMs: () => env.nowMs(),
    barrier: () => group.readBarrier(),
  });
  // A follower hands writes and membership changes to the leader over the peer link.
  const link = new LeaderLink({ group, host, env, backend, applied, guard });
  const replication = new GroupReplication(group, backend, env, link, guard);
  const auth = new AuthService(replication, guard);
  const kv = new KvService(replication, {
    keyBytesMax: config.keyBytesMax,
    valueBytesMax: config.valueBytesMax,
    rangeLimitMax: 1000,
    ttlMsMax: 365 * 24 * 3600 * 1000,
  });
  const streams = new StreamService(replication, applied, {
    ...defaultStreamLimits,
    messageBytesMax: config.valueBytesMax,
  });
  const cluster = new ClusterService(identity.clusterId, group, host, guard);
  const membership = new Membership({
    clusterId: identity.clusterId,
    group,
    host,
    state: backend.reader,
    knownMembers: identity.members,
    initialVoters: identity.initialVoters,
    bootstrapped: identity.bootstrapped,
    setPeers: (p) => transport.setPeers(p),
    nowMs: () => env.nowMs(),
    link,
    guard,
  });
  link.serveMembership(membership);
  const http = buildHttpApp({
    kv,
    streams,
    nodeName: identity.name,
    cluster: { status: () => cluster.status(), membership },
    metrics: {
      metrics: group.metrics,
      status: () => group.status(),
      get appliedIndex() {
        return group.appliedIndex;
      },
      authFailures: guard.failures,
    },
    corsOrigins: config.corsOrigins,
    auth,
    readiness: () =>
      fatal
        ? { ready: false, reason: "storage failed" }
        : group.softState.leaderId === null
          ? { ready: false, reason: "no leader known" }
          : { ready: true },
  });
  await http.listen({ host: config.httpListen.host, port: config.httpListen.port });
  const text =
    config.textListen &&
    (await startTextServer(config.textListen, { kv, guard, flavor: config.textCompat, log }));
  const redis =
    config.redisListen &&
    (await startRespServer({ kv, streams, guard, status: () => cluster.status(), log }, config.redisListen));
  const grpc = config.grpcListen && (await startGrpcServer(config.grpcListen, { streams, guard }));
  let authBootstrap = config.auth === "on" ? bootstrapAuth(config.dataDir, auth, log) : undefined;

  // Once a second: membership upkeep, and the leader sweeps expired keys by its own clock, carried
  // in the entry so replicas agree.
  // A member that learns the cluster removed it stops serving, as etcd's members do. Best effort:
  // a leader may stop replicating to it before the removal entry reaches it.

  let wasMember = false;
  let removedResolve: () => void = () => {};
  const removed = new Promise<void>((resolve) => {
    removedResolve = resolve;
  });
  let cancelSweep = env.after(1_000, function sweep() {
    membership.maintain().catch((error: unknown) => log(`membership upkeep failed: ${String(error)}`));
    const conf = group.status().conf;
    const isMember = conf.voters.includes(id) || conf.learners.includes(id);
    if (wasMember && !isMember) {
      log("this node was removed from the cluster; stopping");
      removedResolve();
    }
    wasMember = isMember;
    const due = nextExpiryMs(backend.reader);
    if (group.softState.role === "leader" && !fatal && due !== undefined && due <= env.nowMs()) {
      const data = encodeEnvelope({
        tsMs: env.nowMs(),
        command: { service: "kv", command: { type: "expire", max: 1000 } },
      });
      group.propose(data).catch(() => undefined);
    }
    if (group.softState.role === "leader" && !fatal)
      runAs(system, () => streams.sweepIfDue()).catch(() => undefined);
    if (authBootstrap !== undefined && group.softState.leaderId !== null && !fatal) {
      const attempt = authBootstrap;
      authBootstrap = undefined;
      attempt().then(
        (done) => {
          if (!done) authBootstrap = attempt;
        },
        (error: unknown) => {
          log(`turning authentication on failed, retrying: ${String(error)}`);
          authBootstrap = attempt;
        },
      );
    }
    cancelSweep = env.after(1_000, sweep);
  });

  log(
    `node ${identity.name} (id ${id}) of cluster ${identity.clusterId}: HTTP ${httpUrl}${redis ? `, Redis ${redis.address}` : ""}${textAt ? `, text ${textAt}` : ""}${grpcAt ? `, gRPC ${grpcAt}` : ""}, peers on ${config.peerListen.host}:${config.peerListen.port}`,
  );
  return {
    id,
    httpUrl,
    removed,
    close: async () => {
      cancelSweep();
      await http.close();
      await text?.close();
      await redis?.close();
      await grpc?.close();
      await group.stop();
      host.close();
      await transport.close();
      await wal.close();
      await store.close();
      diskDelay?.close();
    },
  };
}

/** Where `--auth on` writes the bootstrap admin token, and the mark that it has run. */
export const adminTokenFile = "admin-token";
const authBootstrappedFile = "auth-bootstrapped";

/**
 * `--auth on`: once per data directory, turns authentication on if it is off, and writes the
 * bootstrap admin token to `<data-dir>/admin-token` (mode 0600). Of several nodes started so,
 * one wins; the others find it on (ERR_CONFLICT) and write no token. Returns a step that
 * resolves true when done, false to be tried again later.
 */
function bootstrapAuth(
  dataDir: string,
  auth: AuthService,
  log: (line: string) => void,
): () => Promise<boolean> {
  const mark = join(dataDir, authBootstrappedFile);
  return async () => {
    if (existsSync(mark)) return true;
    try {
      const created = await runAs(system, () => auth.enable());
      await writeFile(join(dataDir, adminTokenFile), `${created.token}\n`, { mode: 0o600, flag: "wx" });
      log(`authentication is on; the admin token (id ${created.id}) is in ${join(dataDir, adminTokenFile)}`);
    } catch (error) {
      if (!(error instanceof Error && "code" in error && error.code === "ERR_CONFLICT")) throw error;
      log("authentication is already on in this cluster");
    }
    await writeFile(mark, "", { mode: 0o600 });
    return true;
  };
}

/** Runs a node until SIGINT or SIGTERM, then stops it cleanly. */
export async function runNode(config: NodeConfig): Promise<void> {
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${config.name} ${line}\n`);
  let node: RunningNode;
  try {
    node = await startNode(config, log);
  } catch (error) {
    // A failure late in the start (a client port taken) leaves the Raft group and the transport
    // running: a node that votes and follows but serves nothing. It must not linger (found by the
    // fault suite): once the CLI has reported the error and set the exit status, the process ends.
    setImmediate(() => process.exit());
    throw error;
  }
  await new Promise<void>((done) => {
    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      log("stopping");
      void node.close().then(done, done);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    void node.removed.then(stop);
  });
}
