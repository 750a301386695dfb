// A Cairn cluster of real node processes (test/support/process-cluster.ts) whose peer traffic runs
// through one fault proxy per ordered pair of nodes: node A dials peer B at the proxy for A->B
// (--peer-dial-override), and since each node sends only on connections it dials, cutting that proxy
// stops exactly the messages from A to B. mTLS runs end to end through the proxies. Each node also
// reads its disk delay from a file (--disk-delay-file), so the nemesis can slow its disk.
import { readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeDurableEnd, durableEndFileName, segmentName } from "../../src/storage/index.js";
import { Prng } from "../../src/util/prng.js";
import { ProcessCluster, type ProcessNode } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";
import type { FaultCluster } from "./fault-cluster.js";
import { field, httpJson } from "./http.js";
import { highestClaim, ProxyMesh } from "./proxy-mesh.js";
import type { CorruptDamage, CorruptTarget, Link } from "./schedule.js";

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
  readonly supportsCorruption = true;
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

  async corrupt(node: number, target: CorruptTarget, damage: CorruptDamage, salt: number): Promise<string> {
    const dataDir = this.#node(node).dataDir;
    const prng = new Prng(salt);
    const inDir = async (dir: string, pattern: RegExp) =>
      (await readdir(join(dataDir, dir)).catch(() => [])).filter((n) => pattern.test(n)).sort();
    const segments = await inDir("wal", /^wal-\d+\.log$/);
    // Snapshot files (captured for a follower or a backup, or received) and the record of a base
    // without a file (the log compacted to the state store).
    const snapshots = await inDir("snapshots", /\.(snap|meta)$/);
    const hardStates = await inDir("hardstate", /\.bin$/);
    // The newest segment's tail is where the kill itself may have torn a write: a cut there is a
    // torn write to the WAL's recovery, unless it reaches below the durable end the WAL recorded
    // (wal-durable-end.ts), which the node then finds at its start. So the newest segment is cut
    // only below that record; bytes written since it are the window no check covers
    // (docs/faults.md).
    const newest = segments.at(-1);
    const recorded = await readFile(join(dataDir, "wal", durableEndFileName)).then(
      (bytes) => decodeDurableEnd(bytes),
      () => undefined,
    );
    const newestCutMax =
      newest !== undefined &&
      recorded !== undefined &&
      recorded !== "corrupt" &&
      newest === segmentName(recorded.seq)
        ? recorded.bytes
        : 0;
    const sealed = segments.slice(0, -1);
    const truncatable = newestCutMax > 0 && newest !== undefined ? [...sealed, newest] : sealed;
    let file: string | undefined;
    if (target === "hard-state")
      file = hardStates.at(-1) === undefined ? undefined : `hardstate/${hardStates.at(-1)}`;
    if (target === "snapshot")
      file = snapshots.length === 0 ? undefined : `snapshots/${prng.pick(snapshots)}`;
    if (target === "state") file = "state/data.mdb";
    if (target === "wal" || file === undefined) {
      const pool = damage === "truncate" && truncatable.length > 0 ? truncatable : segments;
      const segment = pool.length === 0 ? undefined : prng.pick(pool);
      if (segment === undefined) return "nothing to damage";
      file = `wal/${segment}`;
      if (damage === "truncate" && truncatable.length === 0) damage = "flip";
    }
    const path = join(dataDir, file);
    const bytes = await readFile(path);
    if (bytes.length === 0) return `${file} is empty`;
    if (damage === "truncate") {
      const length = prng.below(
        file === `wal/${newest}` ? Math.min(newestCutMax, bytes.length) : bytes.length,
      );
      await writeFile(path, bytes.subarray(0, length));
      return `${file} cut from ${bytes.length} to ${length} bytes`;
    }
    if (target === "state") return flipStoredValues(path, bytes, prng);
    const at = prng.below(bytes.length);
    bytes[at] = (bytes[at] ?? 0) ^ (1 << prng.below(8));
    await writeFile(path, bytes);
    return `${file}: a bit flipped at byte ${at} of ${bytes.length}`;
  }

  async allWhole(): Promise<boolean> {
    const answers = await Promise.all(
      this.#cluster.nodes.map(async (node) => {
        const outcome = await httpJson("GET", `${node.httpUrl}/v1/cluster`, { timeoutMs: 1_000 });
        if (outcome.kind !== "answer" || outcome.status !== 200) return false;
        return field(field(outcome.body, "self"), "recovering") === null;
      }),
    );
    return answers.every((whole) => whole);
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

/**
 * Flips a bit in every copy of one stream message (or, with no streams, of one key-value write) in
 * the lmdb file: values sit in leaf pages as written, older copies in pages lmdb freed, so the live
 * copy is surely hit. A random byte of the file would mostly land in free space or page headers.
 */
async function flipStoredValues(path: string, bytes: Buffer, prng: Prng): Promise<string> {
  const text = bytes.toString("latin1");
  const found = [...text.matchAll(/payload \d+ from producer \d+|c\d+-w\d+/g)].map((m) => m[0]);
  const value = found.length === 0 ? undefined : prng.pick(found);
  if (value === undefined) return "state/data.mdb holds no value the workload wrote";
  let copies = 0;
  for (let at = text.indexOf(value); at >= 0; at = text.indexOf(value, at + 1), copies++)
    bytes[at + value.length - 1] = (bytes[at + value.length - 1] ?? 0) ^ 0x01;
  await writeFile(path, bytes);
  return `state/data.mdb: a bit flipped in ${copies} copies of "${value}"`;
}

function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}
