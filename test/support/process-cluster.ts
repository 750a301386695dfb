// Real Cairn node processes on 127.0.0.1 for integration tests: development certificates in a temp
// directory, free ports, start / SIGKILL / restart by pid, and a client. Every process it starts is
// stopped by close().
import { type ChildProcess, spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { ensureDevCerts } from "../../src/cli/dev-certs.js";
import { nodeArgs } from "../../src/cli/dev-cluster.js";

import { CairnClient } from "../../src/client/index.js";

const root = new URL("../../", import.meta.url).pathname;

/** A port the OS says is free right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A port that is free now and outside the range the OS hands out for outgoing connections (Linux:
 * 32768-60999), so it stays free while its node is down: a node restarted on a port from
 * {@link freePort} can find it taken by some connection's local end.
 */
export async function stablePort(): Promise<number> {
  return stablePortRange(1);
}

/**
 * The first of `count` consecutive ports that are all free now, outside the OS's range for outgoing
 * connections (as {@link stablePort}): for `cairn dev`, whose node i listens on base + i - 1.
 */
export async function stablePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = randomInt(20_000, 32_000 - count);
    let free = true;
    for (let port = base; free && port < base + count; port++) {
      free = await new Promise<boolean>((resolve) => {
        const server = createServer();
        server.once("error", () => resolve(false));
        server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
      });
    }
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports in 20000-31999`);
}

/** One node's fixed settings and its process, when running. */
export interface ProcessNode {
  readonly name: string;
  readonly id: number;
  readonly httpUrl: string;
  readonly peerAddress: string;
  /** host:port of the node's Redis protocol server. */
  readonly redisAddress: string;
  readonly dataDir: string;
  process: ChildProcess | undefined;
  output: string;
}

/** A cluster of node processes. */
export class ProcessCluster {
  readonly nodes: ProcessNode[] = [];
  #dir = "";
  #caPath = "";
  /** How the start reaches a node's HTTPS API (the cluster's CA); undefined: plain HTTP. */
  #health: Agent | undefined;
  readonly #certs = new Map<string, { certPath: string; keyPath: string }>();

  /** Nodes prepared to join later (certificates and ports ready, not in the initial cluster). */
  readonly spares: ProcessNode[] = [];
  /** Extra `cairn node` flags for every node. */
  extraArgs: readonly string[] = [];
  /**
   * Which code the nodes run: the TypeScript sources through tsx (the default, so tests see every
   * edit), or the compiled build (`npm run build`), which starts faster.
   */
  code: "source" | "build" = "source";
  /** Extra `cairn node` flags for one node (by name), after `extraArgs`: its own client ports. */
  readonly nodeExtraArgs = new Map<string, readonly string[]>();
  /** TLS material to use instead of the cluster's for some nodes (by name): an impostor's. */
  readonly tlsOverride = new Map<string, { caPath: string; certPath: string; keyPath: string }>();

  /** The temp directory this cluster lives in. */
  get dir(): string {
    return this.#dir;
  }

  /** The development CA every certificate of this cluster (nodes' and clients') is signed by. */
  get caPath(): string {
    return this.#caPath;
  }

  /** The certificate and key of `name`: a node's (`node-1`...) or a client's from `create`. */
  certificate(name: string): { readonly certPath: string; readonly keyPath: string } {
    const paths = this.#certs.get(name);
    if (paths === undefined) throw new Error(`no certificate ${name}`);
    return paths;
  }

  /**
   * Prepares `size` nodes plus `spares` joiners (certificates, ports, data dirs) without starting
   * them. `https`: the nodes serve their HTTP API over TLS (the test passes the --client-tls-*
   * flags; every node certificate serves 127.0.0.1), so their URLs are https:// and the start
   * waits on them through the cluster's CA; `clientNames`: client certificates to issue too.
   */
  static async create(
    size: number,
    spares = 0,
    options: { readonly https?: boolean; readonly clientNames?: readonly string[] } = {},
  ): Promise<ProcessCluster> {
    const cluster = new ProcessCluster();
    cluster.#dir = await mkdtemp(join(tmpdir(), "cairn-it-"));
    const certs = await ensureDevCerts({
      dir: join(cluster.#dir, "certs"),
      nodeNames: Array.from({ length: size + spares }, (_, i) => `node-${i + 1}`),
      ...(options.clientNames !== undefined ? { clientNames: options.clientNames } : {}),
    });
    cluster.#caPath = certs.caCertPath;
    for (const [name, paths] of [...certs.nodes, ...certs.clients]) cluster.#certs.set(name, paths);
    if (options.https === true) {
      cluster.#health = new Agent({ connect: { ca: await readFile(certs.caCertPath) } });
    }
    const scheme = options.https === true ? "https" : "http";
    for (let i = 1; i <= size + spares; i++) {
      (i <= size ? cluster.nodes : cluster.spares).push({
        name: `n${i}`,
        id: i,
        httpUrl: `${scheme}://127.0.0.1:${await stablePort()}`,
        peerAddress: `127.0.0.1:${await stablePort()}`,
        redisAddress: `127.0.0.1:${await stablePort()}`,
        dataDir: join(cluster.#dir, `n${i}`),
        process: undefined,
        output: "",
      });
    }
    return cluster;
  }

  /** The command line that runs `cairn node` for a node (a spare joins through the first node). */
  args(node: ProcessNode, extra: readonly string[] = []): string[] {
    const override = this.tlsOverride.get(node.name);
    const paths = override ?? this.#certs.get(`node-${node.id}`);
    const membership = this.spares.includes(node)
      ? { join: this.nodes.find((n) => n.process !== undefined)?.httpUrl ?? "" }
      : { initialCluster: this.nodes.map((n) => `${n.name}=${n.peerAddress}`).join(",") };
    return [
      ...(this.code === "build"
        ? [join(root, "bin/cairn.js")]
        : ["--import", "tsx", join(root, "src/cli/run.ts")]),
      ...nodeArgs({
        ...node,
        membership,
        tls: {
          caPath: override?.caPath ?? this.#caPath,
          certPath: paths?.certPath ?? "",
          keyPath: paths?.keyPath ?? "",
        },
      }),
      "--tick-interval-ms",
      "50",
      ...this.extraArgs,
      ...(this.nodeExtraArgs.get(node.name) ?? []),
      ...extra,
    ];
  }

  /**
   * Starts a node's process and waits until its HTTP API answers (up to a minute: on a loaded
   * 2-core machine, several suites start tsx-compiled nodes at once).
   */
  async start(node: ProcessNode): Promise<void> {
    const child = spawn(process.execPath, this.args(node), { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    node.process = child;
    child.stdout.on("data", (chunk: Buffer) => {
      node.output += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      node.output += chunk.toString();
    });
    child.once("exit", (code, signal) => {
      // A silent exit (a native crash prints nothing) still says how it ended.
      node.output += `[process ${child.pid} exited: ${signal === null ? `code ${code}` : `signal ${signal}`}]\n`;
      if (node.process === child) node.process = undefined;
    });
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (node.process === undefined) throw new Error(`${node.name} exited during start:\n${node.output}`);
      try {
        if (this.#health !== undefined) {
          const response = await request(`${node.httpUrl}/health/live`, { dispatcher: this.#health });
          await response.body.dump();
          if (response.statusCode === 200) return;
        } else {
          const response = await fetch(`${node.httpUrl}/health/live`);
          if (response.ok) return;
        }
      } catch {
        // Not listening yet.
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${node.name} did not start in time:\n${node.output}`);
  }

  /** Starts every node. */
  async startAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.start(n)));
  }

  /** Sends `signal` to a node's process (by pid) and waits for it to exit. */
  async kill(node: ProcessNode, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = node.process;
    if (child === undefined || child.pid === undefined) return;
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    process.kill(child.pid, signal);
    await exited;
  }

  /** Stops a node's process with SIGSTOP (it keeps its sockets open, answering nothing). */
  pause(node: ProcessNode): void {
    const pid = node.process?.pid;
    if (pid !== undefined) process.kill(pid, "SIGSTOP");
  }

  /** Continues a paused node's process with SIGCONT. */
  resume(node: ProcessNode): void {
    const pid = node.process?.pid;
    if (pid !== undefined) process.kill(pid, "SIGCONT");
  }

  /** A client for some nodes (all by default). */
  client(nodes: readonly ProcessNode[] = this.nodes): CairnClient {
    return new CairnClient({ endpoints: nodes.map((n) => n.httpUrl), retryBudgetMs: 15_000 });
  }

  /** The node that says it leads, waiting up to `timeoutMs`. */
  async leader(timeoutMs = 15_000): Promise<ProcessNode> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const node of this.nodes) {
        if (node.process === undefined) continue;
        try {
          // Bounded: a paused or overloaded node must not stall the search past its deadline.
          const answer = await fetch(`${node.httpUrl}/v1/cluster`, { signal: AbortSignal.timeout(2_000) });
          const status = (await answer.json()) as {
            self: { role: string };
          };
          if (status.self.role === "leader") return node;
        } catch {
          // Down or starting.
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("no leader in time");
  }

  /** Kills every process and removes the temp directory. */
  async close(): Promise<void> {
    await Promise.all([...this.nodes, ...this.spares].map((n) => this.kill(n)));
    await this.#health?.close();
    await rm(this.#dir, { recursive: true, force: true });
  }
}

/**
 * Starts `size` node processes that also serve the text protocol with Tolerex's banner and prompt;
 * answers the cluster and each node's text port by name.
 */
export async function startTolerexCluster(
  size: number,
): Promise<{ cluster: ProcessCluster; textPorts: Map<string, number> }> {
  const cluster = await ProcessCluster.create(size);
  const textPorts = new Map<string, number>();
  for (const node of cluster.nodes) {
    const port = await freePort();
    textPorts.set(node.name, port);
    cluster.nodeExtraArgs.set(node.name, ["--text-listen", `127.0.0.1:${port}`, "--text-compat", "tolerex"]);
  }
  await cluster.startAll();
  return { cluster, textPorts };
}
