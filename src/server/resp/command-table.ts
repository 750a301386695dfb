// The shape of a Redis command as the server knows it: name, arity, flags, key positions and its
// handler. One table (commands.ts) lists them all; dispatch, arity errors, MULTI's queueing and
// COMMAND COUNT / INFO / DOCS are all derived from it, so a command cannot exist in one and not the others.
import type {
  AuthGuard,
  CairnError,
  ClusterStatus,
  KvService,
  Principal,
  StreamService,
} from "../../service/index.js";
import type { Reply, RespVersion } from "./resp-reply.js";

/** Flags Redis's COMMAND INFO reports; `write` and `readonly` also steer MULTI and docs. */
export type CommandFlag =
  | "write"
  | "readonly"
  | "denyoom"
  | "admin"
  | "pubsub"
  | "noscript"
  | "loading"
  | "stale"
  | "fast"
  | "no_auth"
  | "allow_busy"
  | "no_multi"
  | "blocking";

/** One connection's state, as commands see and change it. */
export interface ClientState {
  readonly id: number;
  readonly addr: string;
  readonly laddr: string;
  readonly createdMs: number;
  version: RespVersion;
  name: string;
  libName: string;
  libVer: string;
  lastCommand: string;
  /** Commands queued since MULTI, or undefined outside a transaction. */
  multi: (readonly Buffer[])[] | undefined;
  /** A queued command was refused (unknown or wrong arity): EXEC must abort. */
  multiFailed: boolean;
  /** Keys under WATCH, by their bytes (latin1), with the modify revision seen (0: absent). */
  watched: Map<string, number>;
  /** A WATCHed key changed before the revision could be read: EXEC must answer nil. */
  watchBroken: boolean;
  /** Set by QUIT: close after this reply. */
  closing: boolean;
  /** Aborted when the connection closes: ends a blocking command's wait. */
  readonly closed: AbortSignal;
  /** In a blocking command's wait (INFO's blocked_clients). */
  blocked: boolean;
  /**
   * Who the connection acts for: its {@link ClientState.certified} principal until AUTH or
   * HELLO ... AUTH succeeds.
   */
  principal: Principal;
  /** Who the connection is before any AUTH: its verified client certificate's name, or anonymous. */
  readonly certified: Principal;
}

/** What the whole server offers commands: the services and the list of connections. */
export interface ServerContext {
  readonly kv: KvService;
  readonly streams: StreamService;
  /** Checks AUTH's tokens; without it there is no authentication (AUTH answers as a fresh Redis). */
  readonly guard?: AuthGuard;
  /** The node's cluster view, for INFO. */
  readonly status: () => ClusterStatus;
  /** Every open connection. */
  readonly clients: ReadonlyMap<number, ClientState>;
  /** Connections waiting in a blocking command. */
  readonly blockedClients: () => number;
  /** The Redis version this server claims (clients gate features on it). */
  readonly redisVersion: string;
  /** The wall clock, milliseconds since the epoch (TIME, client ages). */
  readonly nowMs: () => number;
  /**
   * Commands refused by the rate limit as they arrived, with their error: each is answered with
   * it in its turn and does nothing.
   */
  readonly rateRefused: WeakMap<readonly Buffer[], CairnError>;
}

/** Everything a handler gets: its arguments (name first), its connection and the server. */
export interface CommandCall {
  readonly args: readonly Buffer[];
  readonly client: ClientState;
  readonly server: ServerContext;
  /** Run by EXEC: a blocking command answers at once, as inside Redis's MULTI. */
  readonly inExec?: boolean;
}

/** A command's handler. May throw a CairnError, which the server maps to a Redis error reply. */
export type CommandHandler = (call: CommandCall) => Reply | Promise<Reply>;

/** One command of the table. */
export interface CommandSpec {
  /** Lower-case name. */
  readonly name: string;
  /** Redis arity: n > 0 exactly n arguments with the name, n < 0 at least -n. */
  readonly arity: number;
  readonly flags: readonly CommandFlag[];
  /** Key positions for COMMAND INFO: first key, last key (-1: the last argument), step. */
  readonly keys: readonly [first: number, last: number, step: number];
  /** Redis's command group (`string`, `generic`, `connection`, `server`, `transactions`, `stream`). */
  readonly group: string;
  /** One line for COMMAND DOCS. */
  readonly summary: string;
  /** The Redis version that introduced it, for COMMAND DOCS. */
  readonly since: string;
  readonly handler: CommandHandler;
  /** Subcommands (CLIENT, COMMAND), each with its own arity, named `<command>|<sub>`. */
  readonly subcommands?: readonly CommandSpec[];
}

/** An error reply saying a command got the wrong number of arguments, as Redis words it. */
export function wrongArity(name: string): Reply {
  return { t: "error", message: `ERR wrong number of arguments for '${name}' command` };
}

/** Redis's reply to a syntax error in a command's options. */
export const syntaxError: Reply = { t: "error", message: "ERR syntax error" };

/** Redis's reply to an argument that should be an integer. */
export const notAnInteger: Reply = { t: "error", message: "ERR value is not an integer or out of range" };

/** Whether `arity` admits `count` arguments (the name included). */
export function arityAllows(arity: number, count: number): boolean {
  return arity > 0 ? count === arity : count >= -arity;
}

/** Parses a Redis integer argument (a signed 64-bit decimal), or undefined. */
export function parseInteger(arg: Uint8Array): bigint | undefined {
  const text = Buffer.from(arg).toString("latin1");
  if (!/^(0|-?[1-9]\d{0,18})$/.test(text)) return undefined;
  const value = BigInt(text);
  return value >= -(2n ** 63n) && value < 2n ** 63n ? value : undefined;
}

/** The argument as text (names, options): latin1 keeps every byte. */
export function text(arg: Uint8Array | undefined): string {
  return arg === undefined ? "" : Buffer.from(arg).toString("latin1");
}

/** A table row: one command's name, arity, flags, key positions, docs and handler. */
export function command(
  name: string,
  arity: number,
  flags: readonly CommandFlag[],
  keys: readonly [number, number, number],
  group: string,
  since: string,
  summary: string,
  handler: CommandHandler,
  subcommands?: readonly CommandSpec[],
): CommandSpec {
  return {
    name,
    arity,
    flags,
    keys,
    group,
    since,
    summary,
    handler,
    ...(subcommands ? { subcommands } : {}),
  };
}
