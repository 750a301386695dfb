// A Cairn cluster of real node processes (test/support/process-cluster.ts) whose peer traffic runs
// through one fault proxy per ordered pair of nodes: node A dials peer B at the proxy for A->B
// (--peer-dial-override), and since each node sends only on connections it dials, cutting that proxy
// stops exactly the messages from A to B. mTLS runs end to end through the proxies. Each node also
// reads its disk delay from a file (--disk-delay-file), so the nemesis can slow its disk.
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ProcessCluster, type ProcessNode } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";
import type { FaultCluster } from "./fault-cluster.js";
import { field, httpJson } from "./http.js";
import { highestClaim, ProxyMesh } from "./proxy-mesh.js";
import type { Link } from "./schedule.js";

/** Settings of a {@link CairnCluster}. */
export interface CairnClusterOptions {
  readonly size: number;
  /** The disk delay every node starts with (0: none). */
  readonly diskDelayMs: number;
  /** Extra `cairn node` flags for every node. */
  readonly extraArgs?: readonly string[];
  /** Run the compiled build (`npm run build` first) instead of the sources through tsx. */
  readonly build?: boolean;
}

/** A Cairn cluster under the nemesis. */
export class CairnCluster implements FaultCluster {
  readonly system = "cairn";
  readonly supportsSlowDisk = true;
  readonly #cluster: ProcessCluster;
  readonly #proxies: ProxyMesh;
  readonly #baseDiskDelayMs: number;

  private constructor(cluster: ProcessCluster, proxies: ProxyMesh, baseDiskDelayMs: number) {
    this.#cluster = cluster;
    this.#proxies = proxies;
    this.#baseDiskDelayMs = baseDiskDelayMs;
  }

  /** Prepares the nodes, certificates and proxies; nothing runs until {@link start}. */
  static async create(options: CairnClusterOptions): Promise<CairnCluster> {
    const cluster = await ProcessCluster.create(options.size);
    if (options.build === true) cluster.code = "build";
    const size = options.size;
    const proxies = await ProxyMesh.start(size, "dialed", (_from, to) => ({
      listen: { host: "127.0.0.1", port: 0 },
      target: hostPort(cluster.nodes[to]?.peerAddress ?? ""),
    }));
    // Default Raft timing (100 ms ticks, election after 10), as etcd's defaults are (100 ms, 1 s).
    cluster.extraArgs = ["--tick-interval-ms", "100", ...(options.extraArgs ?? [])];
    for (const [from, node] of cluster.nodes.entries()) {
      const overrides = cluster.nodes.flatMap((peer, to) => {
        const via = proxies.address(from, to);
        return via === undefined ? [] : [`${peer.peerAddress}=${via.host}:${via.port}`];
      });
      const delayFile = join(cluster.dir, `${node.name}.disk-delay`);
      await writeFile(delayFile, String(options.diskDelayMs));
      cluster.nodeExtraArgs.set(node.name, [
        "--peer-dial-override",
        overrides.join(","),
        "--disk-delay-file",
        delayFile,
      ]);
    }
    return new CairnCluster(cluster, proxies, options.diskDelayMs);
  }

  get size(): number {
    return this.#cluster.nodes.length;
  }

  get urls(): readonly string[] {
    return this.#cluster.nodes.map((n) => n.httpUrl);
  }

  #node(index: number): ProcessNode {
    const node = this.#cluster.nodes[index];
    if (node === undefined) throw new RangeError(`no node ${index}`);
    return node;
  }

  async start(): Promise<void> {
    await this.#cluster.startAll();
    await waitFor("a leader", async () => (await this.leader()) !== undefined, { timeoutMs: 60_000 });
  }

  kill(node: number): Promise<void> {
    return this.#cluster.kill(this.#node(node));
  }

  restart(node: number): Promise<void> {
    return this.#cluster.start(this.#node(node));
  }

  pause(node: number): void {
    this.#cluster.pause(this.#node(node));
  }

  resume(node: number): void {
    this.#cluster.resume(this.#node(node));
  }

  isRunning(node: number): boolean {
    return this.#node(node).process !== undefined;
  }

  cut(links: readonly Link[], blackhole: boolean): void {
    this.#proxies.cut(links, blackhole);
  }

  healLinks(): void {
    this.#proxies.heal();
  }

  slowDisk(node: number, delayMs: number): Promise<void> {
    return this.#writeDiskDelay(node, delayMs);
  }

  healDisk(node: number): Promise<void> {
    return this.#writeDiskDelay(node, this.#baseDiskDelayMs);
  }

  async #writeDiskDelay(node: number, delayMs: number): Promise<void> {
    const file = join(this.#cluster.dir, `${this.#node(node).name}.disk-delay`);
    // Whole or not at all: the node may read the file at any moment.
    await writeFile(`${file}.tmp`, String(delayMs));
    await rename(`${file}.tmp`, file);
  }

  async leader(): Promise<number | undefined> {
    const claims = await Promise.all(
      this.#cluster.nodes.map(async (node, index) => {
        if (node.process === undefined) return undefined;
        const outcome = await httpJson("GET", `${node.httpUrl}/v1/cluster`, { timeoutMs: 1_000 });
        if (outcome.kind !== "answer" || outcome.status !== 200) return undefined;
        const role = field(field(outcome.body, "self"), "role");
        const term = field(outcome.body, "term");
        return role === "leader" && typeof term === "number" ? { index, term } : undefined;
      }),
    );
    return highestClaim(claims);
  }

  logs(): string {
    return this.#cluster.nodes.map((n) => `--- ${n.name}\n${n.output.slice(-6_000)}`).join("\n");
  }

  async close(): Promise<void> {
    await this.#proxies.close();
    await this.#cluster.close();
  }
}

function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}
