// The supervisor of `cairn dev` against fake processes and a fake cluster: it refuses a removal that
// would leave the cluster without a live majority (and changes nothing then), removes members from
// Raft before it deletes their data, keeps a node's data across restarts, and signals processes as
// the control API promises (SIGTERM, SIGKILL, SIGSTOP, SIGCONT).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import type { ClusterStatus } from "../../../src/api/index.js";
import { majorityOf, removalVerdict } from "../../../src/cli/majority.js";
import {
  type ClusterCalls,
  ControlError,
  type LaunchedProcess,
  type NodeMembership,
  NodeSupervisor,
  type ProcessExit,
  type SupervisedNodeInfo,
} from "../../../src/cli/supervisor.js";

/** A process that exits when sent SIGTERM or SIGKILL, unless paused (then on SIGCONT). */
class FakeProcess implements LaunchedProcess {
  readonly signals: string[] = [];
  readonly exited: Promise<ProcessExit>;
  paused = false;
  running = true;
  #exit: (exit: ProcessExit) => void = () => {};
  #pendingTerm = false;

  constructor(readonly pid: number) {
    this.exited = new Promise((resolve) => {
      this.#exit = resolve;
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.signals.push(signal);
    if (!this.running) return;
    if (signal === "SIGKILL") {
      this.#end({ code: null, signal: "SIGKILL" });
      return;
    }
    if (signal === "SIGSTOP") this.paused = true;
    if (signal === "SIGCONT") this.paused = false;
    if (signal === "SIGTERM") this.#pendingTerm = true;
    if (this.#pendingTerm && !this.paused) this.#end({ code: 0, signal: null });
  }

  #end(exit: ProcessExit): void {
    this.running = false;
    this.#exit(exit);
  }
}

/** A cluster of voters and learners whose nodes answer while their fake process runs unpaused. */
class FakeCluster implements ClusterCalls {
  voters = [1, 2, 3];
  learners: number[] = [];
  leader = 1;
  readonly removed: number[] = [];
  readonly joined: string[] = [];
  answers: (url: string) => boolean = () => true;

  #status(self: number): ClusterStatus {
    const member = (id: number, voter: boolean) => ({
      id,
      name: `n${id}`,
      voter,
      httpUrl: `http://n${id}`,
      isLeader: id === this.leader,
    });
    return {
      clusterId: "c",
      self: {
        id: self,
        name: `n${self}`,
        role: self === this.leader ? "leader" : "follower",
        recovering: null,
      },
      leader: { id: this.leader, name: `n${this.leader}`, httpUrl: `http://n${this.leader}` },
      term: 1,
      commitIndex: 5,
      appliedIndex: 5,
      lastIndex: 5,
      snapshotIndex: 0,
      stateCheck: { index: null, agreeing: 0, differing: [] },
      members: [
        ...this.voters.map((id) => member(id, true)),
        ...this.learners.map((id) => member(id, false)),
      ],
    };
  }

  async status(url: string): Promise<ClusterStatus> {
    if (!this.answers(url)) throw new Error("no answer");
    return this.#status(Number(url.replace("http://n", "")));
  }
  async live(url: string): Promise<boolean> {
    return this.answers(url);
  }
  async join(_endpoints: readonly string[], name: string): Promise<{ id: number }> {
    const id = Math.max(...this.voters, ...this.learners) + 1;
    this.learners.push(id);
    this.joined.push(name);
    return { id };
  }
  async remove(_endpoints: readonly string[], id: number): Promise<void> {
    this.removed.push(id);
    this.voters = this.voters.filter((v) => v !== id);
    this.learners = this.learners.filter((v) => v !== id);
  }
  async transfer(_endpoints: readonly string[], id: number): Promise<void> {
    this.leader = id;
  }
}

describe("NodeSupervisor", () => {
  let dir: string;
  let cluster: FakeCluster;
  let launches: { name: string; pid: number; membership: NodeMembership; dataDir: string }[];
  let processes: Map<number, FakeProcess>;
  let saved: { removed: readonly string[]; nodes: readonly SupervisedNodeInfo[] } | undefined;
  let supervisor: NodeSupervisor;
  const made: string[] = [];

  /** The node's fake process, or undefined when it does not run. */
  const processOf = (name: string) => {
    const pid = supervisor.node(name).pid;
    return pid === null ? undefined : processes.get(pid);
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "cairn-supervisor-"));
    made.push(dir);
    cluster = new FakeCluster();
    launches = [];
    processes = new Map();
    saved = undefined;
    let nextPid = 100;
    const info = (i: number): SupervisedNodeInfo => ({
      name: `n${i}`,
      id: i,
      index: i,
      membership: "initial",
      httpUrl: `http://n${i}`,
      peerAddress: `127.0.0.1:${7000 + i}`,
      redisAddress: null,
      dataDir: join(dir, `n${i}`),
      logFile: join(dir, `n${i}.log`),
      pid: null,
    });
    supervisor = new NodeSupervisor({
      nodes: [info(1), info(2), info(3)],
      initialCluster: "n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003",
      launch: (node, membership) => {
        const p = new FakeProcess(nextPid++);
        processes.set(p.pid, p);
        launches.push({ name: node.name, pid: p.pid, membership, dataDir: node.dataDir });
        return p;
      },
      tlsFor: async (id) => ({ caPath: "ca", certPath: `node-${id}.crt`, keyPath: `node-${id}.key` }),
      addressesOf: (index) => ({
        httpUrl: `http://n${index}`,
        peerAddress: `127.0.0.1:${7000 + index}`,
        redisAddress: null,
      }),
      pathsOf: (name) => ({ dataDir: join(dir, name), logFile: join(dir, `${name}.log`) }),
      portsFree: async () => true,
      calls: cluster,
      persist: async (state) => {
        saved = state;
      },
      print: () => {},
    });
    // A node answers while its process runs unpaused.
    cluster.answers = (url) => {
      const node = supervisor.list().nodes.find((n) => n.httpUrl === url);
      if (node === undefined || node.pid === null) return false;
      const p = processes.get(node.pid);
      return p?.running === true && !p.paused;
    };
    for (const name of ["n1", "n2", "n3"]) await mkdir(join(dir, name));
    await supervisor.startAll();
  });

  afterEach(async () => {
    await supervisor.close();
  });
  after(async () => {
    for (const d of made) await rm(d, { recursive: true, force: true });
  });

  it("starts every node with the initial cluster and its own data directory", () => {
    assert.deepEqual(
      launches.map((l) => [l.name, l.dataDir]),
      ["n1", "n2", "n3"].map((n) => [n, join(dir, n)]),
    );
    for (const l of launches) assert.ok("initialCluster" in l.membership);
    assert.deepEqual(
      supervisor.list().nodes.map((n) => n.state),
      ["running", "running", "running"],
    );
  });

  it("refuses to remove a voter when the others would have no live majority, and changes nothing", async () => {
    await supervisor.stop("n3");
    await assert.rejects(
      supervisor.remove("n1"),
      (error: unknown) => error instanceof ControlError && error.code === "ERR_BREAKS_MAJORITY",
    );
    assert.deepEqual(cluster.removed, [], "no Raft removal was asked for");
    assert.equal(supervisor.node("n1").state, "running");
    assert.ok(existsSync(join(dir, "n1")), "its data is still there");
  });

  it("refuses a removal when the cluster has no live majority now", async () => {
    await supervisor.stop("n2");
    supervisor.pause("n3");
    await assert.rejects(
      supervisor.remove("n2"),
      (error: unknown) => error instanceof ControlError && error.code === "ERR_UNAVAILABLE",
    );
    assert.deepEqual(cluster.removed, []);
  });

  it("removes a stopped voter: Raft removal first, then its data, and never starts it again", async () => {
    await supervisor.stop("n3");
    assert.deepEqual(await supervisor.remove("n3"), { removed: "n3" });
    assert.deepEqual(cluster.removed, [3]);
    assert.equal(existsSync(join(dir, "n3")), false);
    assert.deepEqual(
      supervisor.list().nodes.map((n) => n.name),
      ["n1", "n2"],
    );
    assert.deepEqual(saved?.removed, ["n3"]);
    assert.throws(() => supervisor.node("n3"), /node not found/);
  });

  it("removes a running voter when the rest keep a majority, stopping it after the removal", async () => {
    const p = processOf("n2");
    await supervisor.remove("n2");
    assert.deepEqual(cluster.removed, [2]);
    assert.deepEqual(p?.signals, ["SIGTERM"]);
  });

  it("restarts a node with its data: same directory, same flags, the files kept", async () => {
    await writeFile(join(dir, "n2", "wal-marker"), "acknowledged data");
    const before = processOf("n2");
    const restarted = await supervisor.restart("n2");
    assert.deepEqual(before?.signals, ["SIGTERM"]);
    assert.notEqual(restarted.pid, before?.pid);
    assert.equal(restarted.state, "running");
    const [first, second] = launches.filter((l) => l.name === "n2");
    assert.deepEqual(second?.membership, first?.membership);
    assert.equal(second?.dataDir, first?.dataDir);
    assert.ok(existsSync(join(dir, "n2", "wal-marker")), "the restart kept the node's files");
  });

  it("pauses with SIGSTOP, resumes with SIGCONT, and a stop of a paused node lets it exit", async () => {
    const p = processOf("n1");
    assert.equal(supervisor.pause("n1").state, "paused");
    assert.throws(() => supervisor.pause("n1"), /only a running node can be paused/);
    assert.equal(supervisor.resume("n1").state, "running");
    supervisor.pause("n1");
    const stopped = await supervisor.stop("n1");
    assert.equal(stopped.state, "stopped");
    assert.deepEqual(p?.signals, ["SIGSTOP", "SIGCONT", "SIGSTOP", "SIGTERM", "SIGCONT"]);
  });

  it("kills with SIGKILL and reports how the process ended", async () => {
    const p = processOf("n3");
    const killed = await supervisor.kill("n3");
    assert.deepEqual(p?.signals, ["SIGKILL"]);
    assert.deepEqual(killed.lastExit, { code: null, signal: "SIGKILL" });
    assert.equal((await supervisor.start("n3")).state, "running");
  });

  it("adds a node: registered with the cluster first, started with --join under the cluster's id", async () => {
    const added = await supervisor.add();
    assert.equal(added.name, "n4");
    assert.equal(added.id, 4);
    assert.deepEqual(cluster.joined, ["n4"]);
    const launch = launches.at(-1);
    assert.equal(launch?.name, "n4");
    assert.ok(launch !== undefined && "join" in launch.membership);
    await assert.rejects(
      supervisor.add("n4"),
      (error: unknown) => error instanceof ControlError && error.code === "ERR_CONFLICT",
    );
    await assert.rejects(
      supervisor.add("Bad_Name"),
      (error: unknown) => error instanceof ControlError && error.code === "ERR_BAD_REQUEST",
    );
  });

  it("reports the leader and a timeline of leader and process events", async () => {
    await supervisor.probe();
    assert.equal(supervisor.list().leader, "n1");
    await supervisor.transferLeadership("n2");
    await supervisor.probe();
    assert.equal(supervisor.list().leader, "n2");
    const messages = supervisor.events().map((e) => e.message);
    assert.ok(messages.includes("n1 leads (term 1)"));
    assert.ok(messages.includes("n2 leads (term 1)"));
    const last = supervisor.events().at(-1)?.id ?? 0;
    await supervisor.kill("n3");
    assert.deepEqual(
      supervisor.events(last).map((e) => e.message),
      ["n3 exited (SIGKILL)"],
    );
  });

  it("stops every process on close", async () => {
    const running = ["n1", "n2", "n3"].map(processOf);
    await supervisor.close();
    for (const p of running) assert.equal(p?.running, false);
  });
});

describe("removalVerdict", () => {
  it("needs a live majority of the voters now and of the voters after", () => {
    assert.equal(majorityOf(3), 2);
    assert.equal(majorityOf(4), 3);
    const three = { voters: [1, 2, 3], learners: [4] };
    assert.deepEqual(removalVerdict({ ...three, liveVoters: [1, 2, 3] }, 3), { ok: true, member: true });
    assert.deepEqual(removalVerdict({ ...three, liveVoters: [1, 2] }, 3), { ok: true, member: true });
    assert.equal(removalVerdict({ ...three, liveVoters: [1, 2] }, 1).ok, false);
    assert.equal(removalVerdict({ ...three, liveVoters: [1] }, 3).ok, false);
    assert.deepEqual(removalVerdict({ ...three, liveVoters: [1, 2] }, 4), { ok: true, member: true });
    assert.deepEqual(removalVerdict({ ...three, liveVoters: [1] }, 9), { ok: true, member: false });
    assert.equal(removalVerdict({ voters: [1], learners: [], liveVoters: [1] }, 1).ok, false);
  });
});
