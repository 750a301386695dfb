// `cairn node`: wires one node process together (storage, transport, Raft group, services, HTTP)
// and runs it until SIGINT or SIGTERM. The only place that knows every layer.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CairnClient } from "../client/index.js";
import { systemEnv } from "../node/env.js";
import { NodeHost } from "../node/node-host.js";
import { type NodeWireMessage, nodeWireCodec } from "../node/node-wire.js";
import { RaftGroup } from "../node/raft-group.js";
import { groupId, type NodeId, nodeId } from "../raft/index.js";
import { startGrpcServer } from "../server/grpc/index.js";
import { buildHttpApp } from "../server/http/app.js";
import { startRespServer } from "../server/resp/index.js";
import { startTextServer } from "../server/text/index.js";
import { ApplyNotifier } from "../service/apply-notifier.js";
import { type JoinAnswer, Membership } from "../service/cluster/membership.js";
import { ClusterService } from "../service/cluster-service.js";
import type { ApplyOutcome } from "../service/command.js";
import { encodeEnvelope } from "../service/command.js";
import { GroupReplication } from "../service/group-replication.js";
import { nextExpiryMs } from "../service/kv/index.js";
import { KvService } from "../service/kv-service.js";
import { LeaderLink } from "../service/leader-link.js";
import { StateCheck, type StateCheckReport } from "../service/state-check.js";
import { ServiceStateMachine, StoreBackend } from "../service/state-machine.js";
import { defaultStreamLimits, StreamService } from "../service/stream-service.js";
import { DelayedFileSystem } from "../storage/delayed-file-system.js";
import type { FileSystem } from "../storage/file-system.js";
import { NodeFileSystem } from "../storage/node-file-system.js";
import { StorageError } from "../storage/storage-error.js";
import { TlsTransport } from "../transport/tls-transport.js";
import {
  clearRecovering,
  damagedDirName,
  discardReplicatedState,
  hasWalSegments,
  readRecovering,
} from "./data-repair.js";
import { watchDiskDelay } from "./disk-delay.js";
import { findDamage, openLocalState } from "./local-state.js";
import { ConfigError, type NodeConfig } from "./node-config.js";
import { identityFileName, loadOrBootstrap, type NodeIdentity } from "./node-identity.js";
import { verifyStateStore } from "./verify-state.js";

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
  const client = new CairnClient({ endpoints: [url], retryBudgetMs: 30_000 });
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

/**
 * Starts a node from its configuration. A start that fails closes everything it had opened (files,
 * the lmdb environment, listening sockets, timers) before it rethrows, so a node that refuses to
 * start leaks nothing, and a caller may try again in the same process.
 */
export async function startNode(config: NodeConfig, log: (line: string) => void): Promise<RunningNode> {
  // What this start has opened, newest last: closed in reverse order on a failure or at close().
  const opened: (() => Promise<void> | void)[] = [];
  const closeOpened = async () => {
    for (const close of opened.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        log(`while closing after a failed start: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  };
  try {
    return await startNodeOwning(config, log, opened, closeOpened);
  } catch (error) {
    await closeOpened();
    throw error;
  }
}

async function startNodeOwning(
  config: NodeConfig,
  log: (line: string) => void,
  opened: (() => Promise<void> | void)[],
  closeOpened: () => Promise<void>,
): Promise<RunningNode> {
  if (config.tlsCa === undefined || config.tlsCert === undefined || config.tlsKey === undefined) {
    throw new ConfigError(
      "tls-ca",
      "node-to-node traffic is mutual TLS: give tls-ca, tls-cert and tls-key (cairn dev makes them)",
    );
  }
  // The slow disk is a testing facility of the fault suite (docs/faults.md).
  const diskDelay =
    config.diskDelayFile === undefined ? undefined : await watchDiskDelay(config.diskDelayFile, log);
  if (diskDelay !== undefined) opened.push(() => diskDelay.close());
  const fs: FileSystem =
    diskDelay === undefined
      ? new NodeFileSystem()
      : new DelayedFileSystem(new NodeFileSystem(), diskDelay.delay);
  let fatal = false;
  const onFailure = (error: Error) => {
    fatal = true;
    log(`FATAL: storage failed, this node stops accepting writes: ${error.message}`);
  };
  // What was there before this start: a node whose identity exists but whose log does not lost its
  // state (its data directory was emptied). The WAL opens before a first start writes the identity,
  // so a crash in between never looks like a loss.
  const identityExisted = (await fs.stat(join(config.dataDir, identityFileName))) !== undefined;
  const walExisted = await hasWalSegments(fs, join(config.dataDir, "wal"));
  let recovering = await readRecovering(fs, config.dataDir);
  const localOptions = {
    dataDir: config.dataDir,
    group: MAIN_GROUP,
    segmentBytesMax: config.segmentBytesMax,
    onFailure,
  };
  // Safety: with no peer to recover from, starting empty would lose everything acknowledged.
  const refuseIfAlone = (damage: StorageError, identity: NodeIdentity) => {
    if (identity.initialVoters.length <= 1 && identity.members.length <= 1) {
      throw new StorageError(
        damage.code,
        `${damage.message}; this node is its cluster's only member, so no peer can repair it: restore its data directory from a backup`,
        { cause: damage },
      );
    }
  };
  /** Moves the damaged state aside and records, durably, that the node recovers and why. */
  const discard = async (damage: StorageError) => {
    log(
      `DAMAGED: ${damage.message}; moving the Raft log, hard state, state and snapshots to ${join(config.dataDir, damagedDirName)} and recovering from the leader (no votes and no local reads until whole)`,
    );
    await discardReplicatedState(fs, config.dataDir, damage.message);
    recovering = damage.message;
  };
  // Damage found before anything is opened: a missing log, or a state store that fails its check
  // (run in a child process, since lmdb's native code may crash on a damaged page).
  const early =
    identityExisted && !walExisted && recovering === undefined
      ? new StorageError("ERR_GROUP_CORRUPT", "the Raft log is missing (was the data directory emptied?)")
      : await verifyStateStore(join(config.dataDir, "state"));
  if (early !== undefined) {
    if (!identityExisted) throw early;
    refuseIfAlone(early, await loadOrBootstrap(fs, config, joinCluster));
    await discard(early);
  }
  let local = await openLocalState(fs, { ...localOptions, stateLost: recovering !== undefined });
  opened.push(() => local.close());
  const identity = await loadOrBootstrap(fs, config, joinCluster);
  const id = nodeId(identity.id);
  const env = systemEnv();
  const [ca, cert, key] = await Promise.all([
    readFile(config.tlsCa, "utf8"),
    readFile(config.tlsCert, "utf8"),
    readFile(config.tlsKey, "utf8"),
  ]);
  // Damage the opened files show: a corrupt log record, hard state or snapshot.
  const damage = await findDamage(local, MAIN_GROUP);
  if (damage !== undefined) {
    refuseIfAlone(damage, identity);
    await local.close();
    await discard(damage);
    local = await openLocalState(fs, { ...localOptions, stateLost: true });
  } else if (recovering !== undefined && early === undefined) {
    log(`recovering since an earlier start: ${recovering}`);
  }
  const { recovery, store, snapshots, storage } = local;
  if (recovery.tornTail !== undefined) {
    const torn = recovery.tornTail;
    log(
      `recovered: truncated a torn record at ${torn.file}:${torn.offset}` +
        (torn.mayHaveBeenAcknowledged && torn.entriesMax > 0
          ? "; it was whole, so it may have been acknowledged: no votes until a leader has resent it"
          : ""),
    );
  }

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
  // The cross-replica state check: this node's hashes go out with its peer info.
  const stateCheck = new StateCheck();
  let stateReport: StateCheckReport = { index: null, agreeing: 0, differing: [] };
  const host = new NodeHost({
    self: { id, name: identity.name, httpUrl, endpoints },
    transport,
    env,
    stateHashes: () => stateCheck.recent(),
  });
  opened.push(() => transport.close());
  opened.push(() => host.close());
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
    stateMachine: new ServiceStateMachine(backend, undefined, (touched) => applied.notify(touched), {
      entriesBetween: config.stateCheckEntries,
      onHash: (hash) => stateCheck.record(hash),
    }),
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
  opened.push(() => group.stop());
  host.attach(MAIN_GROUP, group);
  host.setMembers(peers.keys());
  await transport.start();
  host.startAnnouncing();

  // A follower hands writes and membership changes to the leader over the peer link.
  const link = new LeaderLink({ group, host, env, backend, applied });
  const kv = new KvService(new GroupReplication(group, backend, env, link), {
    keyBytesMax: config.keyBytesMax,
    valueBytesMax: config.valueBytesMax,
    rangeLimitMax: 1000,
    ttlMsMax: 365 * 24 * 3600 * 1000,
  });
  const streams = new StreamService(new GroupReplication(group, backend, env, link), applied, {
    ...defaultStreamLimits,
    messageBytesMax: config.valueBytesMax,
  });
  const cluster = new ClusterService(
    identity.clusterId,
    group,
    host,
    () => recovering,
    () => stateReport,
  );
  /** Compares the state hashes of this node and its peers; names (and logs) a node that differs. */
  const compareStates = () => {
    const reported = [{ name: identity.name, hashes: stateCheck.recent() }];
    for (const peer of host.peers().values())
      reported.push({ name: peer.name, hashes: peer.stateHashes ?? [] });
    const previous = new Set(stateReport.differing.map((d) => d.name));
    stateReport = stateCheck.compare(reported, group.status().conf.voters.length);
    group.metrics.stateCheckIndex = stateReport.index ?? 0;
    group.metrics.stateCheckDiffering = stateReport.differing.map((d) => d.name);
    for (const d of stateReport.differing) {
      if (previous.has(d.name)) continue;
      const who = d.name === identity.name ? "this node" : `node ${d.name}`;
      log(
        `ALARM: state check: ${who} holds a state at index ${d.index} whose hash differs from the majority's: its data is damaged or diverged`,
      );
    }
  };
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
  });
  link.serveMembership(membership);
  const http = buildHttpApp({
    kv,
    streams,
    nodeName: identity.name,
    cluster: { status: () => cluster.status(), membership },
    metrics: group,
    corsOrigins: config.corsOrigins,
    readiness: () =>
      fatal
        ? { ready: false, reason: "storage failed" }
        : group.softState.leaderId === null
          ? { ready: false, reason: "no leader known" }
          : { ready: true },
  });
  opened.push(() => http.close());
  await http.listen({ host: config.httpListen.host, port: config.httpListen.port });
  const text =
    config.textListen && (await startTextServer(config.textListen, { kv, flavor: config.textCompat, log }));
  if (text) opened.push(() => text.close());
  const redis =
    config.redisListen &&
    (await startRespServer({ kv, streams, status: () => cluster.status(), log }, config.redisListen));
  if (redis) opened.push(() => redis.close());
  const grpc = config.grpcListen && (await startGrpcServer(config.grpcListen, { streams }));
  if (grpc) opened.push(() => grpc.close());

  // Once a second: membership upkeep, and the leader sweeps expired keys by its own clock, carried
  // in the entry so replicas agree.
  // A member that learns the cluster removed it stops serving, as etcd's members do. Best effort:
  // a leader may stop replicating to it before the removal entry reaches it.

  let wasMember = false;
  let removedResolve: () => void = () => {};
  const removed = new Promise<void>((resolve) => {
    removedResolve = resolve;
  });
  // A recovering node is whole once a leader gave it the committed log (the core stops withholding
  // its vote) and that log is durable here; only then does it forget, durably, that it recovers.
  let wholeAtIndex: number | undefined;
  let clearing = false;
  const maybeFinishRecovery = () => {
    if (recovering === undefined || clearing) return;
    const raft = group.status();
    if (raft.votesWithheld) return;
    wholeAtIndex ??= raft.commitIndex;
    if (raft.persistedIndex < wholeAtIndex) return;
    clearing = true;
    clearRecovering(fs, config.dataDir).then(
      () => {
        log(`recovered: the log is whole again through ${wholeAtIndex}; voting and serving local reads`);
        recovering = undefined;
      },
      (error: unknown) => {
        clearing = false;
        log(`could not clear the recovering record: ${String(error)}`);
      },
    );
  };
  let cancelSweep = env.after(1_000, function sweep() {
    membership.maintain().catch((error: unknown) => log(`membership upkeep failed: ${String(error)}`));
    const conf = group.status().conf;
    const isMember = conf.voters.includes(id) || conf.learners.includes(id);
    if (wasMember && !isMember) {
      log("this node was removed from the cluster; stopping");
      removedResolve();
    }
    wasMember = isMember;
    maybeFinishRecovery();
    compareStates();
    const due = nextExpiryMs(backend.reader);
    if (group.softState.role === "leader" && !fatal && due !== undefined && due <= env.nowMs()) {
      const data = encodeEnvelope({
        tsMs: env.nowMs(),
        command: { service: "kv", command: { type: "expire", max: 1000 } },
      });
      group.propose(data).catch(() => undefined);
    }
    if (group.softState.role === "leader" && !fatal) streams.sweepIfDue().catch(() => undefined);
    cancelSweep = env.after(1_000, sweep);
  });
  opened.push(() => cancelSweep());

  log(
    `node ${identity.name} (id ${id}) of cluster ${identity.clusterId}: HTTP ${httpUrl}${redis ? `, Redis ${redis.address}` : ""}${textAt ? `, text ${textAt}` : ""}${grpcAt ? `, gRPC ${grpcAt}` : ""}, peers on ${config.peerListen.host}:${config.peerListen.port}`,
  );
  return {
    id,
    httpUrl,
    removed,
    close: closeOpened,
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
