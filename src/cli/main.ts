import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { Command, Option } from "commander";
import type { ClusterStatus } from "../api/index.js";
import { CairnClient, CairnClientError } from "../client/index.js";
import { NodeFileSystem, StorageError } from "../storage/index.js";
import { registerAuthCommands } from "./auth-commands.js";
import { authorizeControl } from "./cluster-calls.js";
import { startControlServer } from "./control-server.js";
import { devCertsCommand } from "./dev-certs.js";
import { devAdminTokenFile, startDevCluster } from "./dev-cluster.js";
import { ConfigError, envNameOf, nodeSettings, resolveNodeConfig } from "./node-config.js";
import { registerSnapshotCommands } from "./snapshot-commands.js";
import { registerStreamCommands } from "./stream-commands.js";

/** The package version, read from package.json next to the compiled output. */
function packageVersion(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  const parsed: unknown = JSON.parse(text);
  if (
    typeof parsed === "object" &&
    parsed !== null &&
    "version" in parsed &&
    typeof parsed.version === "string"
  ) {
    return parsed.version;
  }
  return "unknown";
}

/** The endpoints a client command talks to: --endpoints, CAIRN_ENDPOINTS, the local dev cluster, or :8081. */
function endpointsFrom(flag: string | undefined): string[] {
  const listed = flag ?? process.env["CAIRN_ENDPOINTS"];
  if (listed !== undefined && listed.trim() !== "") return listed.split(",").map((e) => e.trim());
  const devFile = resolve(".cairn", "dev", "cluster.json");
  if (existsSync(devFile)) {
    const parsed: unknown = JSON.parse(readFileSync(devFile, "utf8"));
    if (typeof parsed === "object" && parsed !== null && "nodes" in parsed && Array.isArray(parsed.nodes)) {
      const urls = parsed.nodes.map((n: unknown) =>
        typeof n === "object" && n !== null && "httpUrl" in n ? String(n.httpUrl) : "",
      );
      if (urls.length > 0) return urls.filter((u) => u !== "");
    }
  }
  return ["http://127.0.0.1:8081"];
}

/** A client's settings: the endpoints, and the token in CAIRN_TOKEN when one is set (docs/security.md). */
function clientOptions(flag: string | undefined): { endpoints: string[]; token?: string } {
  const token = process.env["CAIRN_TOKEN"];
  return { endpoints: endpointsFrom(flag), ...(token !== undefined && token !== "" ? { token } : {}) };
}

function print(value: unknown): void {
  process.stdout.write(`${typeof value === "string" ? value : JSON.stringify(value, null, 2)}\n`);
}

function integer(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value))
      throw new ConfigError(name, `expected a non-negative integer, got ${JSON.stringify(value)}`);
    return Number(value);
  };
}

/** The options of `cairn dev`. */
interface DevOptions {
  nodes: number;
  dir: string;
  httpPort: number;
  peerPort: number;
  textPort: number;
  redisPort: number;
  grpcPort: number;
  dashboardPort: number;
  auth?: boolean;
}

/** How this `cairn` process was started, so `cairn dev` starts its nodes the same way. */
export interface CairnSelf {
  /** The script that runs the CLI: bin/cairn.js when installed, src/cli/run.ts under tsx. */
  readonly script: string;
  /** The Node.js flags it runs with (`--import tsx` from source). */
  readonly nodeFlags: readonly string[];
}

/** The installed CLI, for a program built without a process of its own (tests). */
const installedSelf: CairnSelf = {
  script: new URL("../../bin/cairn.js", import.meta.url).pathname,
  nodeFlags: [],
};

/**
 * Builds the `cairn` command tree. Exported so tests can drive it without spawning a process.
 * `self` is how `cairn dev` runs its node processes.
 */
export function buildProgram(self: CairnSelf = installedSelf): Command {
  const program = new Command();
  program
    .name("cairn")
    .description(
      "Cairn: a fault-tolerant, strongly consistent message and key-value store.\n" +
        "Raft replication to a majority, fsync before every acknowledgement.",
    )
    .version(packageVersion(), "-v, --version", "print the version and exit")
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });

  const node = program
    .command("node")
    .description("run one Cairn node (settings from flags, CAIRN_* variables or --config FILE)")
    .option("--config <file>", "TOML file with node settings");
  for (const setting of nodeSettings) {
    node.addOption(
      new Option(`--${setting.flag} <value>`, setting.description)
        .env(envNameOf(setting.flag))
        .hideHelp(false),
    );
  }
  node.action(async (flags: Record<string, unknown>) => {
    const file =
      typeof flags["config"] === "string"
        ? { path: flags["config"], text: await readFile(flags["config"], "utf8") }
        : undefined;
    const config = resolveNodeConfig({ ...(file ? { file } : {}), env: process.env, flags });
    const { runNode } = await import("./run-node.js");
    await runNode(config);
  });

  program
    .command("dev")
    .description("run a local cluster of real node processes on 127.0.0.1 (data in ./.cairn/dev)")
    .option("--nodes <n>", "how many nodes", integer("nodes"), 3)
    .option("--dir <dir>", "where data, logs and certificates live", ".cairn")
    .option("--http-port <port>", "HTTP port of the first node", integer("http-port"), 8081)
    .option("--peer-port <port>", "peer port of the first node", integer("peer-port"), 7001)
    .option(
      "--text-port <port>",
      "text protocol (HaToKuSe) port of the first node",
      integer("text-port"),
      6661,
    )
    .option("--redis-port <port>", "Redis port of the first node", integer("redis-port"), 6381)
    .option(
      "--grpc-port <port>",
      "gRPC (the replicator's MessageService) port of the first node",
      integer("grpc-port"),
      50052,
    )
    .option(
      "--dashboard-port <port>",
      "port of the dashboard and control API (127.0.0.1 only)",
      integer("dashboard-port"),
      8080,
    )
    .option("--auth", "turn authentication on; prints the admin token (docs/security.md)")
    .action(async (options: DevOptions) => {
      const cluster = await startDevCluster({
        ...options,
        auth: options.auth === true,
        cairnBin: self.script,
        nodeFlags: self.nodeFlags,
        print,
      });
      cluster.watch(500);
      let control: Awaited<ReturnType<typeof startControlServer>>;
      try {
        control = await startControlServer({
          supervisor: cluster,
          port: options.dashboardPort,
          staticDir: new URL("../../dist/dashboard/", import.meta.url).pathname,
          authorize: async (header) => {
            // Open until a run turned authentication on; then admins only (the kept admin token
            // without a round trip, so the page still works while every node is stopped).
            const file = devAdminTokenFile(resolve(options.dir, "dev"));
            if (!existsSync(file)) return;
            if (header === `Bearer ${readFileSync(file, "utf8").trim()}`) return;
            await authorizeControl(
              cluster.nodes.map((n) => n.httpUrl),
              header,
            );
          },
        });
      } catch (error) {
        await cluster.close();
        throw new ConfigError(
          "dashboard-port",
          `cannot serve the dashboard on 127.0.0.1:${options.dashboardPort}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      print(`Cairn local cluster: ${cluster.nodes.length} nodes (Ctrl-C stops them all)`);
      print(`  Dashboard  ${control.url}   (control API: ${control.url}/v1/control/nodes)`);
      for (const n of cluster.nodes)
        print(
          `  ${n.name}  HTTP ${n.httpUrl}  Redis ${n.redisAddress}  text ${n.textAddress}  gRPC ${n.grpcAddress}  peer ${n.peerAddress}  pid ${n.pid}  log ${n.logFile}`,
        );
      const first = cluster.nodes[0]?.httpUrl ?? "";
      print("\nTry:");
      print(
        `  curl -s -X PUT ${first}/v1/kv/hello -H 'content-type: application/json' -d '{"value":"world"}'`,
      );
      print(`  curl -s ${cluster.nodes.at(-1)?.httpUrl ?? first}/v1/kv/hello`);
      print(`  curl -s ${first}/v1/cluster`);
      print("  npx cairn kv get hello");
      print(`  redis-cli -p ${options.redisPort} set hello world`);
      const text = (cluster.nodes.at(-1)?.textAddress ?? "").replace(":", " ");
      if (text !== "")
        print(`  printf 'SET 42 hello world\\r\\nGET 42\\r\\nQUIT\\r\\n' | nc ${text}   # the text protocol`);
      const grpc = cluster.nodes.at(-1)?.grpcAddress;
      if (grpc !== undefined)
        print(
          `  grpcurl -plaintext -import-path proto -proto messages.proto -d '{"content":"hello"}' ${grpc} messages.MessageService/PostMessage`,
        );
      await new Promise<void>((done) => {
        const stop = () => {
          print("\nstopping the cluster...");
          void control
            .close()
            .finally(() => cluster.close())
            .then(done);
        };
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });

  const kv = program
    .command("kv")
    .description("read and write keys (endpoints: --endpoints, CAIRN_ENDPOINTS or the local cluster)");
  const withEndpoints = (command: Command) =>
    command.option("--endpoints <urls>", "comma-separated node URLs");
  withEndpoints(kv.command("get <key>").description("print a key's value"))
    .option("--stale", "serve from the node's local state without a leader round trip")
    .option("--json", "print the whole record")
    .action(async (key: string, options: { endpoints?: string; stale?: boolean; json?: boolean }) => {
      const item = await new CairnClient(clientOptions(options.endpoints)).get(
        key,
        options.stale ? { consistency: "stale" } : {},
      );
      if (item === undefined) {
        process.stderr.write(`cairn: ${key}: not found\n`);
        process.exitCode = 1;
        return;
      }
      print(options.json ? item : item.value);
    });
  withEndpoints(kv.command("put <key> <value>").description("write a key"))
    .option("--ttl-ms <ms>", "expire the key after this many milliseconds", integer("ttl-ms"))
    .option(
      "--if-revision <n>",
      "write only if the key is at this revision (0: absent)",
      integer("if-revision"),
    )
    .option("--if-absent", "write only if the key does not exist")
    .action(
      async (
        key: string,
        value: string,
        options: { endpoints?: string; ttlMs?: number; ifRevision?: number; ifAbsent?: boolean },
      ) => {
        const { endpoints, ...conditions } = options;
        print(await new CairnClient(clientOptions(endpoints)).put(key, value, conditions));
      },
    );
  withEndpoints(kv.command("del <key>").description("delete a key"))
    .option("--if-revision <n>", "delete only if the key is at this revision", integer("if-revision"))
    .action(async (key: string, options: { endpoints?: string; ifRevision?: number }) => {
      print(
        await new CairnClient(clientOptions(options.endpoints)).delete(
          key,
          options.ifRevision !== undefined ? { ifRevision: options.ifRevision } : {},
        ),
      );
    });
  withEndpoints(kv.command("incr <key> [by]").description("add to an integer value (default 1)")).action(
    async (key: string, by: string | undefined, options: { endpoints?: string }) => {
      if (by !== undefined && !/^-?\d{1,19}$/.test(by)) throw new ConfigError("by", "expected an integer");
      print(
        (await new CairnClient(clientOptions(options.endpoints)).increment(key, BigInt(by ?? "1"))).value,
      );
    },
  );
  withEndpoints(kv.command("list [prefix]").description("list keys under a prefix"))
    .option("--limit <n>", "keys per page", integer("limit"), 100)
    .option("--all", "follow pages to the end")
    .action(
      async (prefix: string | undefined, options: { endpoints?: string; limit: number; all?: boolean }) => {
        const client = new CairnClient(clientOptions(options.endpoints));
        let after: string | undefined;
        do {
          const page = await client.list({
            prefix: prefix ?? "",
            limit: options.limit,
            ...(after ? { after } : {}),
          });
          for (const item of page.items) print(`${item.key}\t${item.value}`);
          after = page.next ?? undefined;
        } while (options.all && after !== undefined);
      },
    );

  withEndpoints(program.command("status").description("show members, roles, leader, indexes and lag"))
    .option("--json", "print the raw status")
    .action(async (options: { endpoints?: string; json?: boolean }) => {
      const status = (await new CairnClient(clientOptions(options.endpoints)).request(
        "GET",
        "/v1/cluster",
      )) as ClusterStatus;
      if (options.json) return print(status);
      print(
        `cluster ${status.clusterId}  term ${status.term}  commit ${status.commitIndex}  leader ${status.leader?.name ?? status.leader?.id ?? "none"}`,
      );
      for (const m of status.members) {
        const role = m.isLeader ? "leader" : m.voter ? "voter" : "learner";
        const progress = m.progress
          ? `  match ${m.progress.matchIndex}  lag ${m.progress.lag}  ${m.progress.state}`
          : "";
        print(`  ${String(m.name ?? m.id).padEnd(6)} ${role.padEnd(8)} ${m.httpUrl ?? "?"}${progress}`);
      }
    });
  program.addCommand(devCertsCommand());
  const member = program
    .command("member")
    .description("change cluster membership (runs on the leader; any node forwards)");
  withEndpoints(member.command("remove <id>").description("remove a member by node id")).action(
    async (id: string, options: { endpoints?: string }) => {
      const memberId = integer("id")(id);
      print(
        await new CairnClient(clientOptions(options.endpoints)).request(
          "DELETE",
          `/v1/cluster/members/${memberId}`,
        ),
      );
    },
  );
  withEndpoints(
    member
      .command("add <name> <peerAddress>")
      .description("register a node (normally done by cairn node --join)"),
  ).action(async (name: string, peerAddress: string, options: { endpoints?: string }) => {
    print(
      await new CairnClient(clientOptions(options.endpoints)).request(
        "POST",
        "/v1/cluster/members",
        { name, peerAddress },
        `add-${name}`,
      ),
    );
  });
  withEndpoints(
    program.command("transfer-leader <id>").description("hand leadership to another voter"),
  ).action(async (id: string, options: { endpoints?: string }) => {
    const to = integer("id")(id);
    print(
      await new CairnClient(clientOptions(options.endpoints)).request("POST", "/v1/cluster/leader", {
        transferTo: to,
      }),
    );
  });
  registerAuthCommands(program, { clientOptions, print });
  registerSnapshotCommands(program, {
    fs: new NodeFileSystem(),
    clientOptions,
    print,
    warn: (line) => process.stderr.write(`${line}\n`),
  });
  registerStreamCommands(program, {
    clientOptions,
    print,
    warn: (line) => process.stderr.write(`${line}\n`),
    inputLines: () => createInterface({ input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY }),
    setFailed: () => {
      process.exitCode = 1;
    },
  });
  return program;
}

/** Runs the CLI
 on `argv` (as in `process.argv`): the composition root, the only code reading argv. */
export async function main(argv: readonly string[]): Promise<void> {
  try {
    const script = argv[1];
    await buildProgram(
      script === undefined
        ? installedSelf
        : // A debugger's flags would make every node open the same inspector port.
          { script, nodeFlags: process.execArgv.filter((flag) => !flag.startsWith("--inspect")) },
    ).parseAsync([...argv]);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`cairn: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (error instanceof StorageError) {
      process.stderr.write(`cairn: ${error.code}: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    if (error instanceof CairnClientError) {
      process.stderr.write(`cairn: ${error.code}: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}
