// `cairn dev`: a local cluster of real node processes on 127.0.0.1 for development and demos.
// Generates a development CA and node certificates on first run, keeps each node's data under
// ./.cairn/dev/<name> so a restart resumes where it stopped, writes ./.cairn/dev/cluster.json for
// tools, prints the endpoints and a command to try, and stops every node on Ctrl-C.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ensureDevCerts } from "./dev-certs.js";

/** The origin of the local dashboard, allowed to call the dev cluster's nodes from a browser. */
export const devDashboardOrigin = "http://127.0.0.1:8080";

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
}

/** One node of the local cluster, as written to cluster.json. */
export interface DevNodeInfo {
  readonly name: string;
  readonly id: number;
  pid: number | null;
  readonly httpUrl: string;
  readonly peerAddress: string;
  /** host:port of the HaToKuSe text protocol, when served. */
  readonly textAddress?: string;
  /** host:port of its Redis protocol server, or null when not served. */
  readonly redisAddress: string | null;
  /** host:port of its gRPC server, when served. */
  readonly grpcAddress?: string;
  readonly dataDir: string;
  readonly logFile: string;
}

/** A running local cluster. */
export interface DevCluster {
  readonly nodes: readonly DevNodeInfo[];
  /** Starts a stopped node again. */
  start(name: string): Promise<void>;
  /** Stops a node with a signal (SIGTERM by default). */
  stop(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Stops every node. */
  close(): Promise<void>;
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
  readonly membership: { readonly initialCluster: string } | { readonly join: string };
  readonly tls: { readonly caPath: string; readonly certPath: string; readonly keyPath: string };
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
    spec.httpUrl.replace("http://", ""),
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

/** Starts the local cluster and returns once every process is spawned. */
export async function startDevCluster(options: DevClusterOptions): Promise<DevCluster> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 7) {
    throw new Error("--nodes must be from 1 to 7");
  }
  const root = resolve(options.dir, "dev");
  await mkdir(root, { recursive: true });
  const names = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
  const certs = await ensureDevCerts({
    dir: join(root, "certs"),
    nodeNames: names.map((_, i) => `node-${i + 1}`),
  });
  if (certs.created.length > 0) options.print(`generated development certificates in ${join(root, "certs")}`);
  const nodes: DevNodeInfo[] = names.map((name, i) => ({
    name,
    id: i + 1,
    pid: null,
    httpUrl: `http://127.0.0.1:${options.httpPort + i}`,
    peerAddress: `127.0.0.1:${options.peerPort + i}`,
    ...(options.textPort !== undefined ? { textAddress: `127.0.0.1:${options.textPort + i}` } : {}),
    redisAddress: options.redisPort === undefined ? null : `127.0.0.1:${options.redisPort + i}`,
    ...(options.grpcPort !== undefined ? { grpcAddress: `127.0.0.1:${options.grpcPort + i}` } : {}),
    dataDir: join(root, name),
    logFile: join(root, `${name}.log`),
  }));
  const initialCluster = nodes.map((n) => `${n.name}=${n.peerAddress}`).join(",");
  const children = new Map<string, ChildProcess>();

  // Writes go one at a time (they share a temp name) and stop once the cluster is closed.
  let closed = false;
  let writing: Promise<void> = Promise.resolve();
  const writeClusterFile = (): Promise<void> => {
    const path = join(root, "cluster.json");
    writing = writing.then(async () => {
      if (closed) return;
      await writeFile(`${path}.tmp`, `${JSON.stringify({ nodes }, null, 2)}\n`);
      await rename(`${path}.tmp`, path);
    });
    return writing;
  };

  const start = async (name: string) => {
    const node = nodes.find((n) => n.name === name);
    if (node === undefined) throw new Error(`no node ${name}`);
    if (children.has(name)) return;
    await mkdir(node.dataDir, { recursive: true });
    const paths = certs.nodes.get(`node-${node.id}`);
    if (paths === undefined) throw new Error(`no certificate for ${name}`);
    const log = createWriteStream(node.logFile, { flags: "a" });
    const child = spawn(
      process.execPath,
      [
        ...(options.nodeFlags ?? []),
        options.cairnBin,
        ...nodeArgs({
          ...node,
          membership: { initialCluster },
          // The dev dashboard (and Axon's, on the same port) calls the nodes from its own origin.
          corsOrigins: devDashboardOrigin,
          tls: { caPath: certs.caCertPath, ...paths },
        }),
      ],

      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    node.pid = child.pid ?? null;
    children.set(name, child);
    child.on("exit", (code, signal) => {
      children.delete(name);
      node.pid = null;
      log.end();
      options.print(`${name} exited (${signal ?? `code ${code}`}); its log: ${node.logFile}`);
      writeClusterFile().catch((error: unknown) =>
        options.print(`cannot write cluster.json: ${String(error)}`),
      );
    });
    await writeClusterFile();
  };

  const stop = async (name: string, signal: NodeJS.Signals = "SIGTERM") => {
    const child = children.get(name);
    if (child === undefined) return;
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };

  for (const node of nodes) await start(node.name);
  return {
    nodes,
    start,
    stop,
    close: async () => {
      await Promise.all(nodes.map((n) => stop(n.name)));
      closed = true;
      await writing.catch(() => undefined);
    },
  };
}
