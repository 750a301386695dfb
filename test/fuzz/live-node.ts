// The live nodes the fuzzer feeds, and the oracle that judges them after every batch. Real node
// processes (not an in-process node): a crash, an uncaught exception or a hang shows as it would in
// production (the process exits, its log says so, its ports stop answering), the fuzzer cannot be
// taken down with the node, and the fuzzer's own sockets are the only way in. Three members are
// configured and two run: the fuzzer presents the third member's development certificate on the
// peer port, so its frames reach the message and snapshot decoders past the handshake.
//
// Authentication is on, and every fuzz input carries a token whose role may read keys and nothing
// else. So no fuzz input can legitimately change replicated state: every valid write is refused
// with ERR_FORBIDDEN after its parser and validation ran, and the state hash of a node's store
// (src/service/state-hash.ts) must be the same after the run as before it.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { credentials } from "@grpc/grpc-js";
import { groupId } from "../../src/raft/index.js";
import { hashState, type Space, type StateReader, StoreBackend, spaces } from "../../src/service/index.js";
import { LmdbStateStore } from "../../src/storage/index.js";
import { MessageServiceClient } from "../support/grpc-client.js";
import { ProcessCluster, type ProcessNode, stablePort } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";
import { utf8 } from "./mutate.js";
import { exchange } from "./tcp-exchange.js";

/** The keys and streams written before fuzzing; the oracle reads them back after every batch. */
export const knownKeys = [...Array.from({ length: 7 }, (_, i) => `known/k${i}`), "hatokuse:7"];
export const knownStream = "known.s1";
export const knownGroup = "known-g";
/** The stream the gRPC MessageService reads and writes (docs/compatibility.md). */
export const grpcStream = "grpc-messages";

/** Where a fuzz target reaches the node under fuzz. */
export interface FuzzEndpoints {
  readonly httpUrl: string;
  readonly redis: { readonly host: string; readonly port: number };
  readonly text: { readonly host: string; readonly port: number };
  readonly grpc: string;
  readonly peer: { readonly host: string; readonly port: number };
  /** The fuzz token: it may read keys, nothing else. */
  readonly token: string;
  /** TLS material of the member the fuzzer poses as on the peer port (node 3, never started). */
  readonly peerTls: { readonly ca: Buffer; readonly cert: Buffer; readonly key: Buffer };
  readonly peerNodeId: number;
  readonly clusterId: string;
  /** The node ids of the running nodes; a fuzzed Raft message names one of them as its receiver. */
  readonly runningIds: readonly number[];
}

interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
}

async function http(
  url: string,
  method: string,
  token: string | undefined,
  body?: unknown,
): Promise<HttpAnswer> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    signal: AbortSignal.timeout(10_000),
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: kept as text.
  }
  return { status: response.status, body: parsed };
}

function field(value: unknown, name: string): unknown {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}

/** Lines of a node's log that say a request failed inside the node (a finding, whatever answered). */
const failureMarks = [/uncaught/i, /unhandled/i, /internal error/i, /"level":60/, /\bFATAL\b/];

/** The nodes under fuzz and their oracle. */
export class LiveNodes {
  readonly cluster: ProcessCluster;
  readonly endpoints: FuzzEndpoints;
  readonly #admin: string;
  readonly #known: readonly string[];
  readonly #grpcClient: MessageServiceClient;
  #logChecked = new Map<string, number>();

  private constructor(
    cluster: ProcessCluster,
    endpoints: FuzzEndpoints,
    admin: string,
    known: readonly string[],
    grpcClient: MessageServiceClient,
  ) {
    this.cluster = cluster;
    this.endpoints = endpoints;
    this.#admin = admin;
    this.#known = known;
    this.#grpcClient = grpcClient;
  }

  /** The node under fuzz (n1). */
  get target(): ProcessNode {
    const node = this.cluster.nodes[0];
    if (node === undefined) throw new Error("no nodes");
    return node;
  }

  /**
   * Starts n1 and n2 of a three-member cluster with authentication on, creates the fuzz token and
   * writes the known data.
   */
  static async start(say: (line: string) => void): Promise<LiveNodes> {
    const cluster = await ProcessCluster.create(3);
    try {
      cluster.extraArgs = ["--auth", "on"];
      const text = await stablePort();
      const grpc = await stablePort();
      const [n1, n2, n3] = cluster.nodes;
      if (n1 === undefined || n2 === undefined || n3 === undefined) throw new Error("three nodes expected");
      cluster.nodeExtraArgs.set(n1.name, [
        "--redis-listen",
        n1.redisAddress,
        "--text-listen",
        `127.0.0.1:${text}`,
        "--grpc-listen",
        `127.0.0.1:${grpc}`,
      ]);
      say(`starting ${n1.name} and ${n2.name} of a 3-member cluster in ${cluster.dir}`);
      await Promise.all([cluster.start(n1), cluster.start(n2)]);
      let admin = "";
      await waitFor(
        "the bootstrap admin token",
        async () => {
          for (const node of [n1, n2]) {
            const token = await readFile(join(node.dataDir, "admin-token"), "utf8").catch(() => "");
            if (token.trim() !== "") admin = token.trim();
          }
          return admin !== "";
        },
        { timeoutMs: 60_000, intervalMs: 50 },
      );
      const role = await http(`${n1.httpUrl}/v1/auth/roles/fuzz`, "PUT", admin, { grants: ["read:key:*"] });
      if (role.status !== 200) throw new Error(`creating the fuzz role: ${JSON.stringify(role)}`);
      const created = await http(`${n1.httpUrl}/v1/auth/tokens`, "POST", admin, { role: "fuzz" });
      const token = field(created.body, "token");
      if (typeof token !== "string") throw new Error(`creating the fuzz token: ${JSON.stringify(created)}`);
      const status = await http(`${n1.httpUrl}/v1/cluster`, "GET", admin);
      const clusterId = field(status.body, "clusterId");
      if (typeof clusterId !== "string") throw new Error(`cluster status: ${JSON.stringify(status)}`);
      const certs = join(cluster.dir, "certs");
      const peerTls = {
        ca: await readFile(join(certs, "ca.crt")),
        cert: await readFile(join(certs, `${n3.name.replace("n", "node-")}.crt`)),
        key: await readFile(join(certs, `${n3.name.replace("n", "node-")}.key`)),
      };
      const [redisHost, redisPort] = n1.redisAddress.split(":");
      const [peerHost, peerPort] = n1.peerAddress.split(":");
      const endpoints: FuzzEndpoints = {
        httpUrl: n1.httpUrl,
        redis: { host: redisHost ?? "127.0.0.1", port: Number(redisPort) },
        text: { host: "127.0.0.1", port: text },
        grpc: `127.0.0.1:${grpc}`,
        peer: { host: peerHost ?? "127.0.0.1", port: Number(peerPort) },
        token,
        peerTls,
        peerNodeId: n3.id,
        clusterId,
        runningIds: [n1.id, n2.id],
      };
      const grpcClient = new MessageServiceClient(endpoints.grpc, credentials.createInsecure());
      const nodes = new LiveNodes(cluster, endpoints, admin, [], grpcClient);
      await nodes.#writeKnown();
      await nodes.#quiesce();
      return new LiveNodes(cluster, endpoints, admin, await nodes.#readKnown(), grpcClient);
    } catch (error) {
      await cluster.close();
      throw error;
    }
  }

  /**
   * Waits until the cluster writes nothing of its own: the leader registers the bootstrap members
   * in its first upkeep rounds (one a second), replicated writes that must be in the state hashed
   * before fuzzing (a late one changed the hash in 2 of 6 runs of the fuzz test). Quiet means the
   * leader's applied index did not move for three upkeep rounds.
   */
  async #quiesce(): Promise<void> {
    let last = -1;
    let quietSince = performance.now();
    await waitFor(
      "the cluster's own writes to stop",
      async () => {
        const status = await http(`${this.endpoints.httpUrl}/v1/cluster`, "GET", this.#admin).catch(
          () => undefined,
        );
        const applied = field(status?.body, "appliedIndex");
        const now = performance.now();
        if (typeof applied !== "number" || applied !== last) {
          last = typeof applied === "number" ? applied : -1;
          quietSince = now;
          return false;
        }
        return now - quietSince >= 3_000;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
  }

  async #writeKnown(): Promise<void> {
    const url = this.endpoints.httpUrl;
    for (const [i, key] of knownKeys.entries()) {
      const put = await http(`${url}/v1/kv/${encodeURIComponent(key)}`, "PUT", this.#admin, {
        value: `v${i}`,
      });
      if (put.status !== 200) throw new Error(`writing ${key}: ${JSON.stringify(put)}`);
    }
    const stream = await http(`${url}/v1/streams`, "POST", this.#admin, { name: knownStream });
    if (stream.status >= 300) throw new Error(`creating ${knownStream}: ${JSON.stringify(stream)}`);
    for (let i = 0; i < 5; i++) {
      const appended = await http(`${url}/v1/streams/${knownStream}/messages`, "POST", this.#admin, {
        payload: `m${i}`,
        headers: { n: String(i) },
      });
      if (appended.status >= 300) throw new Error(`appending to ${knownStream}: ${JSON.stringify(appended)}`);
    }
    const group = await http(`${url}/v1/streams/${knownStream}/groups`, "POST", this.#admin, {
      group: knownGroup,
      startAt: "first",
    });
    if (group.status >= 300) throw new Error(`creating ${knownGroup}: ${JSON.stringify(group)}`);
    const posted = await this.#grpcClient.postMessage(
      { content: "known grpc message", write_concern: 1, client_id: "fuzz" },
      { token: this.#admin },
    );
    if (posted.response.status !== "success") throw new Error(`PostMessage: ${JSON.stringify(posted)}`);
  }

  /** The known data as the admin reads it over HTTP: every key with its revisions, the stream, the group. */
  async #readKnown(): Promise<string[]> {
    const url = this.endpoints.httpUrl;
    const parts: unknown[] = [];
    for (const key of knownKeys)
      parts.push((await http(`${url}/v1/kv/${encodeURIComponent(key)}`, "GET", this.#admin)).body);
    parts.push((await http(`${url}/v1/kv?prefix=`, "GET", this.#admin)).body);
    for (const stream of [knownStream, grpcStream]) {
      parts.push(
        (await http(`${url}/v1/streams/${stream}/messages?from=1&limit=100`, "GET", this.#admin)).body,
      );
    }
    const info = await http(`${url}/v1/streams/${knownStream}`, "GET", this.#admin);
    parts.push(info.body);
    parts.push((await http(`${url}/v1/streams`, "GET", this.#admin)).body);
    parts.push((await http(`${url}/v1/auth/roles`, "GET", this.#admin)).body);
    parts.push((await http(`${url}/v1/auth/tokens`, "GET", this.#admin)).body);
    return parts.map((p) => JSON.stringify(p));
  }

  /**
   * The oracle, after a batch: both processes run, their logs name no failure, the node under fuzz
   * answers a health check and a read of a known key on every protocol, and the known data reads
   * back exactly as written. Resolves with the problems found (none: empty).
   */
  async check(): Promise<string[]> {
    const problems: string[] = [];
    for (const node of this.cluster.nodes.slice(0, 2)) {
      if (node.process === undefined) problems.push(`${node.name} exited:\n${node.output.slice(-4_000)}`);
      const seen = this.#logChecked.get(node.name) ?? 0;
      const fresh = node.output.slice(seen);
      this.#logChecked.set(node.name, node.output.length);
      for (const line of fresh.split("\n")) {
        if (failureMarks.some((mark) => mark.test(line)))
          problems.push(`${node.name} logged: ${line.slice(0, 2_000)}`);
      }
    }
    if (problems.length > 0) return problems;
    const attempt = async (what: string, run: () => Promise<string | undefined>): Promise<void> => {
      try {
        const problem = await run();
        if (problem !== undefined) problems.push(`${what}: ${problem}`);
      } catch (error) {
        problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
      }
    };
    const key = knownKeys[0] ?? "";
    const url = this.endpoints.httpUrl;
    await attempt("HTTP health", async () => {
      const live = await http(`${url}/health/live`, "GET", undefined);
      return live.status === 200 ? undefined : `status ${live.status}`;
    });
    await attempt("HTTP read", async () => {
      const got = await http(`${url}/v1/kv/${encodeURIComponent(key)}`, "GET", this.endpoints.token);
      return field(got.body, "value") === "v0" ? undefined : JSON.stringify(got);
    });
    const { redis, text } = this.endpoints;
    await attempt("Redis PING and GET", async () => {
      const { received } = await exchange(
        redis.host,
        redis.port,
        [utf8(`AUTH ${this.endpoints.token}\r\nPING\r\nGET ${key}\r\n`)],
        "$2\r\nv0\r\n",
      );
      return received === "+OK\r\n+PONG\r\n$2\r\nv0\r\n" ? undefined : JSON.stringify(received);
    });
    await attempt("text GET", async () => {
      // Message 7 of the text protocol is the key hatokuse:7, the last known key (value v7).
      const { received } = await exchange(
        text.host,
        text.port,
        [utf8(`AUTH ${this.endpoints.token}\nGET 7\n`)],
        "v7",
      );
      return received.includes("OK") && received.includes("v7") ? undefined : JSON.stringify(received);
    });
    await attempt("gRPC CatchUp", async () => {
      const answered = await this.#grpcClient.catchUp(0, this.#admin);
      const messages = field(answered.response, "messages");
      return Array.isArray(messages) && messages.length === 1 ? undefined : JSON.stringify(answered.response);
    });
    if (problems.length > 0) return problems;
    const known = await this.#readKnown();
    for (const [i, part] of known.entries()) {
      const before = this.#known[i];
      if (part !== before) problems.push(`the known data changed:\nbefore ${before}\nafter  ${part}`);
    }
    return problems;
  }

  /**
   * Stops both nodes (by pid) and answers each one's state, read from its store: the state hash,
   * and every entry (to name what changed when a hash differs).
   */
  async stopAndHash(): Promise<Map<string, StoredState>> {
    const states = new Map<string, StoredState>();
    for (const node of this.cluster.nodes.slice(0, 2)) {
      await this.cluster.kill(node, "SIGTERM");
      states.set(node.name, storedStateOf(node.dataDir));
    }
    return states;
  }

  /** Starts both nodes again (after {@link stopAndHash}) and waits for a leader. */
  async restart(): Promise<void> {
    await Promise.all(this.cluster.nodes.slice(0, 2).map((n) => this.cluster.start(n)));
    // The cluster status needs a token while authentication is on.
    await waitFor(
      "a leader",
      async () => {
        const status = await http(`${this.endpoints.httpUrl}/v1/cluster`, "GET", this.#admin).catch(
          () => undefined,
        );
        return typeof field(field(status?.body, "leader"), "id") === "number";
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    this.#logChecked = new Map(this.cluster.nodes.map((n) => [n.name, n.output.length]));
  }

  /** Kills the processes and removes the temporary directory. */
  async close(): Promise<void> {
    this.#grpcClient.close();
    await this.cluster.close();
  }
}

/** A stopped node's replicated state: its hash and its entries as `space key=value` lines (hex). */
export interface StoredState {
  readonly hash: string;
  readonly entries: ReadonlySet<string>;
}

/**
 * Whether a state entry is the state machine's record of the leader's time (`kv.clock`,
 * `idempotency.clock`, ...): every applied command moves it, a read-only transaction (MULTI with
 * reads only, one Raft entry) included, so it is no data a fuzz input may not change.
 */
function isClock(space: Space, key: Uint8Array): boolean {
  return space === "meta" && Buffer.from(key).toString("latin1").endsWith(".clock");
}

/** `reader` without the leader-time entries. */
function withoutClocks(reader: StateReader): StateReader {
  return {
    get: (space, key) => (isClock(space, key) ? undefined : reader.get(space, key)),
    range: (space, start, end, limit) =>
      [...reader.range(space, start, end, limit)].filter(([key]) => !isClock(space, key)),
  };
}

/**
 * The state hash (src/service/state-hash.ts) and entries of the store in a stopped node's data
 * directory, leaving out the leader-time entries ({@link isClock}).
 */
export function storedStateOf(dataDir: string): StoredState {
  const store = LmdbStateStore.open(join(dataDir, "state"));
  try {
    const reader = withoutClocks(new StoreBackend(store, groupId(1)).reader);
    const entries = new Set<string>();
    for (const space of spaces) {
      for (const [key, value] of reader.range(space, new Uint8Array(0), undefined, 1_000_000)) {
        entries.add(
          `${space} ${Buffer.from(key).toString("hex")}=${Buffer.from(value).toString("hex").slice(0, 400)}`,
        );
      }
    }
    return { hash: hashState(reader), entries };
  } finally {
    void store.close();
  }
}

/** The entries only one of two states holds, marked - (before only) and + (after only), at most `max`. */
export function stateDifference(before: StoredState, after: StoredState, max = 20): string[] {
  const lines = [
    ...[...before.entries].filter((e) => !after.entries.has(e)).map((e) => `- ${e}`),
    ...[...after.entries].filter((e) => !before.entries.has(e)).map((e) => `+ ${e}`),
  ];
  return lines.slice(0, max);
}
