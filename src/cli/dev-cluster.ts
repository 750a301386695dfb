// `cairn dev`: a local cluster of real node processes on 127.0.0.1 for development and demos.
// Generates a development CA and node certificates on first run, keeps each node's data under
// ./.cairn/dev/<name> so a restart resumes where it stopped, writes ./.cairn/dev/cluster.json for
// tools (and to resume with the nodes added or removed since), and hands the processes to a
// supervisor (supervisor.ts) that the dashboard's control API drives.
import { spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import type { AuthTokenCreated } from "../api/index.js";
import { CairnClient, CairnClientError } from "../client/index.js";
import { httpClusterCalls } from "./cluster-calls.js";
import { ensureDevCerts } from "./dev-certs.js";
import {
  type LaunchedProcess,
  type NodeAddresses,
  type NodeMembership,
  NodeSupervisor,
  type NodeTls,
  type SupervisedNodeInfo,
} from "./supervisor.js";

/** The browser origins of the local dashboard on `port`, allowed to call the dev cluster's nodes. */
export function devDashboardOrigins(port: number): string {
  return `http://127.0.0.1:${port},http://localhost:${port}`;
}

/** Settings of a local cluster. */
export interface DevClusterOptions {
  /** How many nodes (1 to 7). */
  readonly nodes: number;
  /** Root directory, `.cairn` by default. */
  readonly dir: string;
  /** First HTTP port; node i listens on httpPort + i - 1. */
  readonly httpPort: number;
  /** First peer port; node i listens on peerPort + i - 1. */
  readonly peerPort: number;
  /** First text protocol (HaToKuSe) port; node i listens on textPort + i - 1. Absent: not served. */
  readonly textPort?: number;
  /** First Redis port; node i listens on redisPort + i - 1 (no Redis server when absent). */
  readonly redisPort?: number;
  /** First gRPC port; node i listens on grpcPort + i - 1 (no gRPC server when absent). */
  readonly grpcPort?: number;
  /** The script that runs `cairn` (bin/cairn.js). */
  readonly cairnBin: string;
  /** Where progress lines go. */
  readonly print: (line: string) => void;
  /** Extra Node.js flags for every node process (benchmarks pass `--cpu-prof`). */
  readonly nodeFlags?: readonly string[];
  /** The dashboard's port, whose origins the nodes allow (CORS). Default 8080. */
  readonly dashboardPort?: number;
  /** Where node `index` listens, instead of the base ports plus index - 1 (tests use free ports). */
  readonly addressesOf?: (index: number) => NodeAddresses;
  /**
   * Turn authentication on (docs/security.md) once the cluster is up, printing the admin token and
   * keeping it in `<dir>/admin-token` (mode 0600) for the supervisor and later runs.
   */
  readonly auth?: boolean;
}

/** One node of the local cluster, as written to cluster.json. */
export type DevNodeInfo = SupervisedNodeInfo;

/** Where `cairn dev --auth` keeps the admin token, in the cluster's directory. */
export function devAdminTokenFile(root: string): string {
  return join(root, "admin-token");
}

/** A running local cluster: its supervisor. */
export type DevCluster = NodeSupervisor;

/** Where node `index` (from 1) of the local cluster listens: each base port plus index - 1. */
export function devNodeAddresses(options: DevClusterOptions, index: number): NodeAddresses {
  const i = index - 1;
  return {
    httpUrl: `http://127.0.0.1:${options.httpPort + i}`,
    peerAddress: `127.0.0.1:${options.peerPort + i}`,
    ...(options.textPort !== undefined ? { textAddress: `127.0.0.1:${options.textPort + i}` } : {}),
    redisAddress: options.redisPort === undefined ? null : `127.0.0.1:${options.redisPort + i}`,
    ...(options.grpcPort !== undefined ? { grpcAddress: `127.0.0.1:${options.grpcPort + i}` } : {}),
  };
}

/** Where a node process listens, how it finds its cluster, and its TLS files. */
export interface NodeProcessSpec {
  readonly name: string;
  readonly dataDir: string;
  /** host:port for peers. */
  readonly peerAddress: string;
  readonly httpUrl: string;
  /** host:port of the text protocol, when served. */
  readonly textAddress?: string;
  /** Browser origins allowed to call the HTTP API, comma-separated. */
  readonly corsOrigins?: string;
  /** host:port for Redis clients, if served. */
  readonly redisAddress?: string | null;
  /** host:port for gRPC clients, if served. */
  readonly grpcAddress?: string;
  readonly membership: NodeMembership;
  readonly tls: NodeTls;
}

/** The `cairn node` arguments for a node process (shared by cairn dev, the tests and benchmarks). */
export function nodeArgs(spec: NodeProcessSpec): string[] {
  return [
    "node",
    "--name",
    spec.name,
    "--data-dir",
    spec.dataDir,
    "--peer-listen",
    spec.peerAddress,
    "--http-listen",
    spec.httpUrl.replace(/^https?:\/\//, ""),
    ...(spec.textAddress !== undefined ? ["--text-listen", spec.textAddress] : []),
    ...(spec.corsOrigins !== undefined ? ["--cors-origins", spec.corsOrigins] : []),
    ...(spec.redisAddress !== undefined && spec.redisAddress !== null
      ? ["--redis-listen", spec.redisAddress]
      : []),
    ...(spec.grpcAddress !== undefined ? ["--grpc-listen", spec.grpcAddress] : []),
    ...("join" in spec.membership
      ? ["--join", spec.membership.join]
      : ["--initial-cluster", spec.membership.initialCluster]),
    "--tls-ca",
    spec.tls.caPath,
    "--tls-cert",
    spec.tls.certPath,
    "--tls-key",
    spec.tls.keyPath,
  ];
}

/** What cluster.json holds: the nodes, the initial cluster and the initial members since removed. */
interface SavedCluster {
  readonly nodes: readonly SupervisedNodeInfo[];
  readonly initialCluster: string;
  readonly removed: readonly string[];
}

/** The saved cluster in `path`, or undefined when there is none (or an older format without one). */
async function readSavedCluster(path: string): Promise<SavedCluster | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if (typeof error === "object" && error !== null && "code" in error && error.code === "ENOENT") return;
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${path} is not JSON: delete it to start a new local cluster`);
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const o = parsed as Record<string, unknown>;
  if (typeof o["initialCluster"] !== "string" || !Array.isArray(o["nodes"])) return undefined;
  const nodes = o["nodes"] as unknown[];
  const valid = nodes.every((n) => {
    if (typeof n !== "object" || n === null) return false;
    const r = n as Record<string, unknown>;
    return (
      typeof r["name"] === "string" &&
      typeof r["id"] === "number" &&
      typeof r["index"] === "number" &&
      (r["membership"] === "initial" || r["membership"] === "joined") &&
      typeof r["httpUrl"] === "string" &&
      typeof r["peerAddress"] === "string" &&
      typeof r["dataDir"] === "string" &&
      typeof r["logFile"] === "string"
    );
  });
  if (!valid) throw new Error(`${path} does not describe a local cluster: delete it to start a new one`);
  const removed = Array.isArray(o["removed"]) ? o["removed"].filter((r) => typeof r === "string") : [];
  return { nodes: nodes as SupervisedNodeInfo[], initialCluster: o["initialCluster"], removed };
}

/** Whether every port of `addresses` can be bound on 127.0.0.1 now. */
async function portsFree(addresses: NodeAddresses): Promise<boolean> {
  const ports = [
    addresses.httpUrl.replace(/^http:\/\//, ""),
    addresses.peerAddress,
    addresses.redisAddress,
    addresses.textAddress,
    addresses.grpcAddress,
  ].flatMap((a) => (a ? [Number(a.slice(a.lastIndexOf(":") + 1))] : []));
  for (const port of ports) {
    const free = await new Promise<boolean>((done) => {
      const server = createServer();
      server.once("error", () => done(false));
      server.listen(port, "127.0.0.1", () => server.close(() => done(true)));
    });
    if (!free) return false;
  }
  return true;
}

/**
 * Starts a `cairn node` process with its output appended to its log file. Signals go to its pid,
 * and only while it has not exited (a pid is reused once its process is gone).
 */
function launchNode(
  options: DevClusterOptions,
  spec: NodeProcessSpec & { readonly logFile: string },
): LaunchedProcess {
  const log = createWriteStream(spec.logFile, { flags: "a" });
  // The node's stdin is a pipe the supervisor never writes to or closes while the node should run:
  // its end (the supervisor exited or was killed, however) stops the node.
  const args = [
    ...(options.nodeFlags ?? []),
    options.cairnBin,
    ...nodeArgs(spec),
    "--stop-on",
    "stdin-end",
    "--log-format",
    "pretty",
  ];
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] });
  // Never written to; a write error (the node gone) must not end the supervisor.
  child.stdin.on("error", () => undefined);
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<{ code: number | null; signal: string | null }>((done) => {
    child.once("error", (error) => {
      log.write(`cannot start the node process: ${error.message}\n`);
      // An 'exit' may follow or not; without a pid there is nothing to wait for.
      if (child.pid === undefined) done({ code: null, signal: null });
    });
    child.once("exit", (code, signal) => {
      log.end();
      done({ code, signal });
    });
  });
  return {
    pid: child.pid ?? null,
    signal: (signal) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(child.pid, signal);
      } catch {
        // It exited between the check and the signal.
      }
    },
    exited,
  };
}

/**
 * Starts the local cluster and returns its supervisor once every process is spawned. A directory
 * with a saved cluster resumes it (with the nodes added and without those removed since); a new one
 * gets `options.nodes` nodes n1..nN.
 */
export async function startDevCluster(options: DevClusterOptions): Promise<DevCluster> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 7) {
    throw new Error("--nodes must be from 1 to 7");
  }
  const root = resolve(options.dir, "dev");
  await mkdir(root, { recursive: true });
  const clusterFile = join(root, "cluster.json");
  const addressesOf = options.addressesOf ?? ((index: number) => devNodeAddresses(options, index));
  const pathsOf = (name: string) => ({ dataDir: join(root, name), logFile: join(root, `${name}.log`) });
  let saved = await readSavedCluster(clusterFile);
  if (saved === undefined) {
    const nodes = Array.from(
      { length: options.nodes },
      (_, i): SupervisedNodeInfo => ({
        name: `n${i + 1}`,
        id: i + 1,
        index: i + 1,
        membership: "initial",
        ...addressesOf(i + 1),
        ...pathsOf(`n${i + 1}`),
        pid: null,
      }),
    );
    saved = { nodes, initialCluster: nodes.map((n) => `${n.name}=${n.peerAddress}`).join(","), removed: [] };
  } else if (saved.initialCluster.split(",").length !== options.nodes) {
    options.print(
      `resuming the local cluster in ${root} (${saved.nodes.length} nodes); --nodes applies to a new directory`,
    );
  }
  const certDir = join(root, "certs");
  const initialIds = saved.nodes.map((n) => n.id);
  const certs = await ensureDevCerts({ dir: certDir, nodeNames: initialIds.map((id) => `node-${id}`) });
  if (certs.created.length > 0) options.print(`generated development certificates in ${certDir}`);
  const tlsFor = async (id: number): Promise<NodeTls> => {
    const issued = await ensureDevCerts({ dir: certDir, nodeNames: [`node-${id}`] });
    const paths = issued.nodes.get(`node-${id}`);
    if (paths === undefined) throw new Error(`no certificate for node-${id}`);
    return { caPath: issued.caCertPath, ...paths };
  };
  // The admin token of a run that turned authentication on: the supervisor's calls carry it.
  const tokenFile = devAdminTokenFile(root);
  let adminToken = existsSync(tokenFile) ? (await readFile(tokenFile, "utf8")).trim() : undefined;
  // The dev dashboard (and Axon's, on the same port) calls the nodes from its own origin.
  const corsOrigins = devDashboardOrigins(options.dashboardPort ?? 8080);
  const supervisor = new NodeSupervisor({
    nodes: saved.nodes,
    initialCluster: saved.initialCluster,
    removed: saved.removed,
    launch: (node, membership, tls) => launchNode(options, { ...node, membership, tls, corsOrigins }),
    tlsFor,
    addressesOf,
    pathsOf,
    portsFree,
    calls: httpClusterCalls(() => adminToken),
    persist: async (state) => {
      await writeFile(`${clusterFile}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
      await rename(`${clusterFile}.tmp`, clusterFile);
    },
    print: options.print,
  });
  await supervisor.startAll();
  if (options.auth === true) {
    const endpoints = supervisor.nodes.map((n) => n.httpUrl);
    try {
      // The key makes the call safe to retry while the nodes are still starting.
      const created = (await new CairnClient({ endpoints, retryBudgetMs: 30_000 }).request(
        "POST",
        "/v1/auth/enable",
        undefined,
        `dev-auth-enable-${Date.now()}`,
      )) as AuthTokenCreated;
      adminToken = created.token;
      await writeFile(tokenFile, `${created.token}\n`, { mode: 0o600 });
      options.print(`authentication is on; admin token (shown once, also in ${tokenFile}, mode 0600):`);
      options.print(`  export CAIRN_TOKEN=${created.token}`);
    } catch (error) {
      if (
        !(error instanceof CairnClientError) ||
        (error.code !== "ERR_CONFLICT" && error.code !== "ERR_UNAUTHENTICATED")
      ) {
        // The nodes must not outlive a start that failed.
        await supervisor.close();
        throw error;
      }
      options.print(
        adminToken !== undefined
          ? `authentication is already on; the admin token is in ${tokenFile}`
          : "authentication is already on; use the admin token printed when it was turned on",
      );
    }
  }
  return supervisor;
}
