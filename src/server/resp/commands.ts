// The command table: every Redis command Cairn serves, with its arity, flags, key positions and
// handler. Dispatch, arity errors, MULTI's checks and COMMAND COUNT / INFO / DOCS all read it.
import { type CommandHandler, type CommandSpec, command } from "./command-table.js";
import {
  auth,
  clientCommand,
  commandCommand,
  hello,
  info,
  ping,
  reset,
  select,
  time,
} from "./connection-commands.js";
import { groupCommands } from "./group-commands.js";
import { keyCommands } from "./key-commands.js";
import { r } from "./resp-reply.js";
import { streamCommands } from "./stream-commands.js";
import { discard, execWithoutMulti, multi, unwatch, watch } from "./transaction-commands.js";

const none = [0, 0, 0] as const;
const conn = (
  name: string,
  arity: number,
  summary: string,
  handler: CommandHandler,
  since = "1.0.0",
  noAuth = false,
) =>
  command(
    name,
    arity,
    noAuth ? ["fast", "stale", "loading", "noscript", "no_auth"] : ["fast", "stale", "loading", "noscript"],
    none,
    "connection",
    since,
    summary,
    handler,
  );

const clientSub = (sub: string, arity: number, summary: string) =>
  command(
    `client|${sub}`,
    arity,
    ["noscript", "loading", "stale"],
    none,
    "connection",
    "2.4.0",
    summary,
    clientCommand,
  );

const baseCommands: CommandSpec[] = [
  conn(
    "hello",
    -1,
    "Handshakes with the server: protocol version, authentication, client name.",
    hello,
    "6.0.0",
    true,
  ),
  // As Redis, these four run before a connection has authenticated.
  conn("auth", -2, "Authenticates the connection.", auth, "1.0.0", true),
  conn("ping", -1, "Returns the server's liveliness response.", ping),
  conn("echo", 2, "Returns the given string.", ({ args }) => r.bulk(args[1] ?? Buffer.alloc(0))),
  conn(
    "quit",
    -1,
    "Closes the connection.",
    ({ client }) => {
      client.closing = true;
      return r.ok;
    },
    "1.0.0",
    true,
  ),
  conn("reset", 1, "Resets the connection.", reset, "6.2.0", true),
  conn("select", 2, "Changes the selected database (Cairn has database 0 only).", select),
  command(
    "client",
    -2,
    ["noscript", "loading", "stale"],
    none,
    "connection",
    "2.4.0",
    "A container for client connection commands.",
    clientCommand,
    [
      clientSub("id", 2, "Returns the unique client ID of the connection."),
      clientSub("getname", 2, "Returns the name of the connection."),
      clientSub("setname", 3, "Sets the connection name."),
      clientSub("setinfo", 4, "Sets information specific to the client or connection."),
      clientSub("info", 2, "Returns information about the connection."),
      clientSub("list", -2, "Lists open connections."),
      clientSub("no-evict", 3, "Sets the client eviction mode of the connection."),
      clientSub(
        "no-touch",
        3,
        "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
      ),
    ],
  ),
  command(
    "info",
    -1,
    ["loading", "stale"],
    none,
    "server",
    "1.0.0",
    "Returns information and statistics about the server.",
    info,
  ),
  command("time", 1, ["loading", "stale", "fast"], none, "server", "2.6.0", "Returns the server time.", time),
  command(
    "multi",
    1,
    ["noscript", "loading", "stale", "fast", "allow_busy"],
    none,
    "transactions",
    "1.2.0",
    "Starts a transaction.",
    multi,
  ),
  command(
    "exec",
    1,
    ["noscript", "loading", "stale"],
    none,
    "transactions",
    "1.2.0",
    "Executes all commands in a transaction.",
    execWithoutMulti,
  ),
  command(
    "discard",
    1,
    ["noscript", "loading", "stale", "fast", "allow_busy"],
    none,
    "transactions",
    "2.0.0",
    "Discards a transaction.",
    discard,
  ),
  command(
    "watch",
    -2,
    ["noscript", "loading", "stale", "fast", "allow_busy"],
    [1, -1, 1],
    "transactions",
    "2.2.0",
    "Monitors changes to keys to determine the execution of a transaction.",
    watch,
  ),
  command(
    "unwatch",
    1,
    ["noscript", "loading", "stale", "fast", "allow_busy"],
    none,
    "transactions",
    "2.2.0",
    "Forgets about watched keys of a transaction.",
    unwatch,
  ),
  ...keyCommands,
  ...streamCommands,
  ...groupCommands,
];

const commandSpec = (sub: string, arity: number, summary: string, handler: CommandHandler) =>
  command(`command|${sub}`, arity, ["loading", "stale"], none, "server", "2.8.13", summary, handler);

/** Every command served, COMMAND itself included (its answers are generated from this list). */
export const commandTable: readonly CommandSpec[] = (() => {
  const table: CommandSpec[] = [...baseCommands];
  const handler: CommandHandler = (call) => commandCommand(table)(call);
  table.push(
    command(
      "command",
      -1,
      ["loading", "stale"],
      none,
      "server",
      "2.8.13",
      "Returns detailed information about all commands.",
      handler,
      [
        commandSpec("count", 2, "Returns a count of commands.", handler),
        commandSpec("info", -2, "Returns information about one, multiple or all commands.", handler),
        commandSpec(
          "docs",
          -2,
          "Returns documentary information about one, multiple or all commands.",
          handler,
        ),
      ],
    ),
  );
  return table;
})();
