// An etcd cluster (Debian's etcd-server) under the same nemesis, as the availability reference.
// Partitions need one proxy per ordered pair, but every etcd member must see the same peer URL for
// each member. So the URLs use host names (peer-1, peer-2...), and each member runs in its own mount
// namespace (`unshare -m`) with its own /etc/hosts, in which peer-2 is the address of that member's
// proxy to member 2 (127.0.<10+from>.<10+to>, on member 2's port). Needs root (or CAP_SYS_ADMIN).
// An etcd member carries messages both ways on the connections it dials (it reads its peer's
// messages from streams it opened), so a one-way cut swallows one direction on both proxies of the
// pair (ProxyMesh's "both-ways" flow).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stablePort } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";
import type { FaultCluster } from "./fault-cluster.js";
import { field, httpJson } from "./http.js";
import { highestClaim, ProxyMesh } from "./proxy-mesh.js";
import type { Link } from "./schedule.js";

/** One etcd member. */
interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly hostsFile: string;
  process: ChildProcess | undefined;
  output: string;
}

/** The loopback address of the proxy that carries member `from`'s connections to member `to`. */
const proxyHost = (from: number, to: number): string => `127.0.${10 + from}.${10 + to}`;

/** An etcd cluster under the nemesis. */
export class EtcdCluster implements FaultCluster {
  readonly system = "etcd";
  readonly supportsSlowDisk = false;
  readonly supportsCorruption = false;
  readonly #dir: string;
  readonly #members: EtcdMember[];
  readonly #proxies: ProxyMesh;

  private constructor(dir: string, members: EtcdMember[], proxies: ProxyMesh) {
    this.#dir = dir;
    this.#members = members;
    this.#proxies = proxies;
  }

  /** Prepares ports, hosts files and proxies; nothing runs until {@link start}. */
  static async create(options: { readonly size: number }): Promise<EtcdCluster> {
    const size = options.size;
    const dir = await mkdtemp(join(tmpdir(), "cairn-faults-etcd-"));
    const systemHosts = await readFile("/etc/hosts", "utf8");
    const members: EtcdMember[] = [];
    for (let i = 0; i < size; i++) {
      members.push({
        name: `peer-${i + 1}`,
        clientPort: await stablePort(),
        peerPort: await stablePort(),
        hostsFile: join(dir, `hosts-${i + 1}`),
        process: undefined,
        output: "",
      });
    }
    const proxies = await ProxyMesh.start(size, "both-ways", (from, to) => {
      const port = members[to]?.peerPort ?? 0;
      return { listen: { host: proxyHost(from, to), port }, target: { host: "127.0.0.1", port } };
    });
    for (const [from, member] of members.entries()) {
      const names = members.map(
        (peer, to) => `${from === to ? "127.0.0.1" : proxyHost(from, to)} ${peer.name}`,
      );
      await writeFile(member.hostsFile, `${systemHosts.trimEnd()}\n${names.join("\n")}\n`);
    }
    return new EtcdCluster(dir, members, proxies);
  }

  get size(): number {
    return this.#members.length;
  }

  get urls(): readonly string[] {
    return this.#members.map((m) => `http://127.0.0.1:${m.clientPort}`);
  }

  #member(index: number): EtcdMember {
    const member = this.#members[index];
    if (member === undefined) throw new RangeError(`no member ${index}`);
    return member;
  }

  #args(member: EtcdMember): string[] {
    const cluster = this.#members.map((m) => `${m.name}=http://${m.name}:${m.peerPort}`).join(",");
    return [
      `--name=${member.name}`,
      `--data-dir=${join(this.#dir, member.name)}`,
      `--listen-peer-urls=http://127.0.0.1:${member.peerPort}`,
      `--initial-advertise-peer-urls=http://${member.name}:${member.peerPort}`,
      `--listen-client-urls=http://127.0.0.1:${member.clientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${member.clientPort}`,
      `--initial-cluster=${cluster}`,
      "--initial-cluster-state=new",
      "--initial-cluster-token=cairn-faults",
      // etcd's default timing, with pre-vote as Cairn runs it.
      "--heartbeat-interval=100",
      "--election-timeout=1000",
      "--pre-vote=true",
      "--logger=zap",
      "--log-level=warn",
    ];
  }

  async #spawn(index: number): Promise<void> {
    const member = this.#member(index);
    // unshare execs sh, which execs etcd: the child's pid is etcd's, so signals reach it directly.
    const script = `mount --bind "$0" /etc/hosts && exec etcd "$@"`;
    const child = spawn("unshare", ["-m", "sh", "-c", script, member.hostsFile, ...this.#args(member)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    member.process = child;
    const keep = (chunk: Buffer) => {
      member.output = (member.output + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.once("exit", () => {
      if (member.process === child) member.process = undefined;
    });
    const url = this.urls[index] ?? "";
    await waitFor(
      `${member.name} to answer`,
      async () => {
        if (member.process === undefined) throw new Error(`${member.name} exited:\n${member.output}`);
        const outcome = await httpJson("GET", `${url}/version`, { timeoutMs: 1_000 });
        return outcome.kind === "answer" && outcome.status === 200;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
  }

  async start(): Promise<void> {
    await Promise.all(this.#members.map((_, i) => this.#spawn(i)));
    await waitFor("a leader", async () => (await this.leader()) !== undefined, { timeoutMs: 60_000 });
  }

  async kill(node: number): Promise<void> {
    const child = this.#member(node).process;
    if (child?.pid === undefined) return;
    const exited = new Promise<void>((done) => child.once("exit", () => done()));
    process.kill(child.pid, "SIGKILL");
    await exited;
  }

  restart(node: number): Promise<void> {
    return this.#spawn(node);
  }

  pause(node: number): void {
    const pid = this.#member(node).process?.pid;
    if (pid !== undefined) process.kill(pid, "SIGSTOP");
  }

  resume(node: number): void {
    const pid = this.#member(node).process?.pid;
    if (pid !== undefined) process.kill(pid, "SIGCONT");
  }

  isRunning(node: number): boolean {
    return this.#member(node).process !== undefined;
  }

  cut(links: readonly Link[], blackhole: boolean): void {
    this.#proxies.cut(links, blackhole);
  }

  healLinks(): void {
    this.#proxies.heal();
  }

  slowDisk(): Promise<void> {
    return Promise.reject(new Error("etcd's disk cannot be slowed from outside"));
  }

  healDisk(): Promise<void> {
    return Promise.resolve();
  }

  corrupt(): Promise<string> {
    return Promise.reject(new Error("etcd is the availability reference: its files are not damaged"));
  }

  allWhole(): Promise<boolean> {
    return Promise.resolve(true);
  }

  async leader(): Promise<number | undefined> {
    const claims = await Promise.all(
      this.urls.map(async (url, index) => {
        if (!this.isRunning(index)) return undefined;
        const outcome = await httpJson("POST", `${url}/v3/maintenance/status`, {
          body: {},
          timeoutMs: 1_000,
        });
        if (outcome.kind !== "answer" || outcome.status !== 200) return undefined;
        const self = field(field(outcome.body, "header"), "member_id");
        const leader = field(outcome.body, "leader");
        const term = Number(field(outcome.body, "raftTerm") ?? 0);
        return self !== undefined && self === leader ? { index, term } : undefined;
      }),
    );
    return highestClaim(claims);
  }

  logs(): string {
    return this.#members.map((m) => `--- ${m.name}\n${m.output.slice(-6_000)}`).join("\n");
  }

  async close(): Promise<void> {
    for (let i = 0; i < this.size; i++) {
      this.resume(i);
      await this.kill(i);
    }
    await this.#proxies.close();
    await rm(this.#dir, { recursive: true, force: true });
  }
}
