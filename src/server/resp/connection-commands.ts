// Connection and server commands that real clients send on connect or use for introspection:
// HELLO, AUTH, PING, ECHO, QUIT, RESET, SELECT, CLIENT, COMMAND, INFO, DBSIZE, TIME. Replies and
// error texts follow Redis 7 (src/networking.c, src/server.c, src/acl.c).

import { isCairnError, type Principal } from "../../service/index.js";
import {
  type ClientState,
  type CommandCall,
  type CommandSpec,
  notAnInteger,
  parseInteger,
  type ServerContext,
  syntaxError,
  text,
  wrongArity,
} from "./command-table.js";
import { type Reply, r } from "./resp-reply.js";

const noPassword =
  "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
const wrongPass = "WRONGPASS invalid username-password pair or user is disabled.";
const badName = "ERR Client names cannot contain spaces, newlines or special characters.";

const helloNoAuth =
  "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

/**
 * Checks AUTH credentials (`[username] password`) and, when they hold, makes the connection act
 * for them. With authentication off, the default user has no password, as a fresh Redis:
 * `AUTH <password>` gets Redis's "no password configured" error, `AUTH default <anything>`
 * succeeds, any other user is refused. With it on, the password is a token (docs/security.md);
 * the username, if given, is `default` or the token's id.
 */
async function authenticate(
  args: readonly Buffer[],
  client: ClientState,
  server: ServerContext,
): Promise<Reply | undefined> {
  const guard = server.guard;
  const user = args.length === 1 ? "default" : text(args[0]);
  let principal: Principal | undefined;
  try {
    // A token is checked even where authentication is not on yet here (see principalFor).
    principal = await guard?.principalFor(text(args[args.length - 1]));
  } catch (error) {
    if (isCairnError(error) && error.code === "ERR_UNAUTHENTICATED") return r.error(wrongPass);
    throw error;
  }
  if (principal === undefined || principal.kind === "anonymous") {
    // Authentication off: the default user has no password, as a fresh Redis.
    if (args.length === 1) return r.error(noPassword);
    return user === "default" ? undefined : r.error(wrongPass);
  }
  if (principal.kind !== "token" || (user !== "default" && user !== principal.tokenId))
    return r.error(wrongPass);
  client.principal = principal;
  return undefined;
}

/** Whether a client name is allowed: printable ASCII without spaces. */
function validName(name: string): boolean {
  return /^[\x21-\x7e]*$/.test(name);
}

/** HELLO [protover [AUTH username password] [SETNAME clientname]] */
export async function hello({ args, client, server }: CommandCall): Promise<Reply> {
  let version = client.version;
  let i = 1;
  if (args.length >= 2) {
    const asked = parseInteger(args[1] ?? Buffer.alloc(0));
    if (asked === undefined) return r.error("ERR Protocol version is not an integer or out of range");
    if (asked !== 2n && asked !== 3n) return r.error("NOPROTO unsupported protocol version");
    version = asked === 2n ? 2 : 3;
    i = 2;
  }
  let name: string | undefined;
  for (; i < args.length; i++) {
    const option = text(args[i]).toLowerCase();
    const left = args.length - i - 1;
    if (option === "auth" && left >= 2) {
      const refused = await authenticate(args.slice(i + 1, i + 3), client, server);
      if (refused !== undefined) return refused;
      i += 2;
    } else if (option === "setname" && left >= 1) {
      name = text(args[i + 1]);
      if (!validName(name)) return r.error(badName);
      i += 1;
    } else {
      return r.error(`ERR Syntax error in HELLO option '${text(args[i])}'`);
    }
  }
  if (server.guard?.enabled() === true && !server.guard.identifies(client.principal))
    return r.error(helloNoAuth);
  client.version = version;
  if (name !== undefined) client.name = name;
  return r.map([
    [r.bulk("server"), r.bulk("redis")],
    [r.bulk("version"), r.bulk(server.redisVersion)],
    [r.bulk("proto"), r.int(version)],
    [r.bulk("id"), r.int(client.id)],
    [r.bulk("mode"), r.bulk("standalone")],
    [r.bulk("role"), r.bulk("master")],
    [r.bulk("modules"), r.array([])],
  ]);
}

/** AUTH [username] password */
export async function auth({ args, client, server }: CommandCall): Promise<Reply> {
  if (args.length > 3) return syntaxError;
  return (await authenticate(args.slice(1), client, server)) ?? r.ok;
}

/** PING [message] */
export function ping({ args }: CommandCall): Reply {
  if (args.length > 2) return wrongArity("ping");
  const message = args[1];
  return message === undefined ? r.simple("PONG") : r.bulk(message);
}

/** SELECT index: Cairn has database 0 only. */
export function select({ args }: CommandCall): Reply {
  const index = parseInteger(args[1] ?? Buffer.alloc(0));
  if (index === undefined) return notAnInteger;
  return index === 0n ? r.ok : r.error("ERR DB index is out of range");
}

/** RESET: back to a fresh connection's state. */
export function reset({ client }: CommandCall): Reply {
  client.multi = undefined;
  client.multiFailed = false;
  client.watched.clear();
  client.watchBroken = false;
  client.version = 2;
  client.name = "";
  // As Redis: back to the default user, which must authenticate again when a password is set; a
  // client certificate's holder is back to its certificate's name.
  client.principal = client.certified;
  return r.simple("RESET");
}

/** One CLIENT LIST / CLIENT INFO line. */
function clientLine(client: ClientState, server: ServerContext): string {
  const now = server.nowMs();
  const age = Math.floor((now - client.createdMs) / 1000);
  return (
    `id=${client.id} addr=${client.addr} laddr=${client.laddr} fd=-1 name=${client.name} age=${age} idle=0 ` +
    `flags=${client.multi !== undefined ? "x" : "N"} db=0 sub=0 psub=0 ssub=0 ` +
    `multi=${client.multi?.length ?? -1} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 ` +
    `omem=0 tot-mem=0 events=r cmd=${client.lastCommand} user=default redir=-1 resp=${client.version} ` +
    `lib-name=${client.libName} lib-ver=${client.libVer}\n`
  );
}

/** CLIENT subcommand ... */
export function clientCommand({ args, client, server }: CommandCall): Reply {
  const sub = text(args[1]).toLowerCase();
  switch (sub) {
    case "id":
      return r.int(client.id);
    case "getname":
      return client.name === "" ? r.nil : r.bulk(client.name);
    case "setname": {
      const name = text(args[2]);
      if (!validName(name)) return r.error(badName);
      client.name = name;
      return r.ok;
    }
    case "setinfo": {
      const attribute = text(args[2]).toLowerCase();
      const value = text(args[3]);
      if (attribute !== "lib-name" && attribute !== "lib-ver") {
        return r.error(`ERR Unrecognized option '${text(args[2])}'`);
      }
      if (!validName(value)) {
        return r.error(`ERR ${attribute} cannot contain spaces, newlines or special characters.`);
      }
      if (attribute === "lib-name") client.libName = value;
      else client.libVer = value;
      return r.ok;
    }
    case "info":
      return r.verbatim(clientLine(client, server));
    case "list": {
      let lines = "";
      for (const other of server.clients.values()) lines += clientLine(other, server);
      return r.verbatim(lines);
    }
    case "no-evict":
    case "no-touch": {
      const mode = text(args[2]).toLowerCase();
      return mode === "on" || mode === "off" ? r.ok : syntaxError;
    }
    default:
      return r.error(`ERR unknown subcommand '${text(args[1]).slice(0, 128)}'. Try CLIENT HELP.`);
  }
}

/** COMMAND [COUNT | INFO name... | DOCS name...] over the command table. */
export function commandCommand(table: readonly CommandSpec[]): (call: CommandCall) => Reply {
  const byName = new Map(table.map((c) => [c.name, c]));
  const info = (spec: CommandSpec): Reply =>
    r.array([
      r.bulk(spec.name),
      r.int(spec.arity),
      r.set(spec.flags.map((f) => r.simple(f))),
      r.int(spec.keys[0]),
      r.int(spec.keys[1]),
      r.int(spec.keys[2]),
      r.set([r.simple(`@${spec.group === "generic" ? "keyspace" : spec.group}`)]),
      r.set([]),
      r.array([]),
      r.array((spec.subcommands ?? []).map(info)),
    ]);
  const docs = (spec: CommandSpec): Reply =>
    r.map([
      [r.bulk("summary"), r.bulk(spec.summary)],
      [r.bulk("since"), r.bulk(spec.since)],
      [r.bulk("group"), r.bulk(spec.group)],
      ...(spec.subcommands !== undefined
        ? [
            [
              r.bulk("subcommands"),
              r.map(spec.subcommands.map((s) => [r.bulk(s.name), docs(s)] as const)),
            ] as const,
          ]
        : []),
    ]);
  return ({ args }) => {
    if (args.length === 1) return r.array(table.map(info));
    const sub = text(args[1]).toLowerCase();
    const names = args.slice(2).map((a) => text(a).toLowerCase());
    switch (sub) {
      case "count":
        return args.length === 2 ? r.int(table.length) : wrongArity("command|count");
      case "info": {
        const asked = names.length === 0 ? table : names.map((n) => byName.get(n));
        return r.array(asked.map((spec) => (spec === undefined ? { t: "null-array" } : info(spec))));
      }
      case "docs": {
        const asked = names.length === 0 ? table : names.flatMap((n) => byName.get(n) ?? []);
        return r.map(asked.map((spec) => [r.bulk(spec.name), docs(spec)] as const));
      }
      default:
        return r.error(`ERR unknown subcommand '${text(args[1]).slice(0, 128)}'. Try COMMAND HELP.`);
    }
  };
}

/** TIME: seconds and microseconds of this node's clock. */
export function time({ server }: CommandCall): Reply {
  const ms = server.nowMs();
  return r.array([r.bulk(String(Math.floor(ms / 1000))), r.bulk(String((ms % 1000) * 1000))]);
}

/** INFO [section ...]: the sections and fields clients read, plus a `cairn` section. */
export async function info({ args, server }: CommandCall): Promise<Reply> {
  const asked = new Set(args.slice(1).map((a) => text(a).toLowerCase()));
  const all = asked.size === 0 || asked.has("all") || asked.has("everything") || asked.has("default");
  const status = server.status();
  const stats = await server.kv.stats("stale");
  // Streams are keys of Redis's keyspace too.
  const keys = stats.keys + (await server.streams.names(0, undefined, "stale")).count;
  const { expires } = stats;
  const role = status.self.role;
  const sections: [string, [string, string | number][]][] = [
    [
      "Server",
      [
        ["redis_version", server.redisVersion],
        ["redis_mode", "standalone"],
        ["os", process.platform],
        ["arch_bits", 64],
        ["process_id", process.pid],
        ["tcp_port", 0],
        ["uptime_in_seconds", Math.floor(process.uptime())],
      ],
    ],
    [
      "Clients",
      [
        ["connected_clients", server.clients.size],
        ["blocked_clients", server.blockedClients()],
      ],
    ],
    // Every node accepts writes (followers hand them to the leader), so each is a master to clients.
    [
      "Replication",
      [
        ["role", "master"],
        ["connected_slaves", 0],
      ],
    ],
    ["Keyspace", keys > 0 ? [["db0", `keys=${keys},expires=${expires},avg_ttl=0`]] : []],
    [
      "Cairn",
      [
        ["node", status.self.name],
        ["node_id", status.self.id],
        ["role", role],
        ["term", status.term],
        ["leader", status.leader?.name ?? ""],
        ["leader_id", status.leader?.id ?? 0],
        ["commit_index", status.commitIndex],
        ["applied_index", status.appliedIndex],
        ["cluster_id", status.clusterId],
      ],
    ],
  ];
  const chosen = sections.filter(([name]) => all || asked.has(name.toLowerCase()));
  const body = chosen
    .map(([name, fields]) => `# ${name}\r\n${fields.map(([k, v]) => `${k}:${v}\r\n`).join("")}`)
    .join("\r\n");
  return r.verbatim(body);
}
