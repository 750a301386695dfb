// The Redis protocol server: one node:net listener; per connection a parser, a queue of parsed
// commands run one at a time in arrival order (so a pipelined GET sees the SET before it), and the
// replies written in that order. A protocol error is answered with Redis's text and the connection
// closes; the queue is bounded, and reading pauses while it is full.
import type { Socket } from "node:net";
import {
  type AuthGuard,
  anonymous,
  type ClusterStatus,
  isCairnError,
  type KvService,
  type RateLimiter,
  runAs,
  type StreamService,
  unauthenticated,
} from "../../service/index.js";
import type { Logger } from "../../util/index.js";
import { type ClientTls, peerCertificateName } from "../client-tls.js";
import type { ConnectionLimits, ConnectionRefusals } from "../connection-gate.js";
import { listenTcp } from "../tcp-listener.js";
import { stderrLogger, UnexpectedFailures } from "../unexpected-failure.js";
import {
  arityAllows,
  type ClientState,
  type CommandSpec,
  type ServerContext,
  text,
  wrongArity,
} from "./command-table.js";
import { commandTable } from "./commands.js";
import { respErrorOf } from "./error-replies.js";
import { runStreamCommand } from "./key-types.js";
import { answerBatch, StepBatcher, takeRun } from "./pipeline.js";
import { defaultRespParserLimits, RespParser, type RespParserLimits } from "./resp-parser.js";
import { encodeReply, type Reply, r } from "./resp-reply.js";
import { execTransaction, queueInTransaction } from "./transaction-commands.js";

/** Settings of the Redis server. */
export interface RespServerOptions {
  readonly kv: KvService;
  /** The streams service: Redis streams are the streams of the HTTP API. */
  readonly streams: StreamService;
  /** Authenticates connections (AUTH, HELLO ... AUTH); without it there is no authentication. */
  readonly guard?: AuthGuard;
  readonly status: () => ClusterStatus;
  readonly limits?: Partial<RespParserLimits>;
  /**
   * Connections served at once, in all and from one address; a further one is answered Redis's
   * `-ERR max number of clients reached` and closed.
   */
  readonly connections?: Partial<ConnectionLimits>;
  /** The node's counts of refused connections, this port's among them (for /metrics). */
  readonly refusals?: ConnectionRefusals;
  /** Serve over TLS with the node's client certificate (docs/security.md); plain TCP without it. */
  readonly tls?: ClientTls;
  /** The node's rate limits, asked once per command as it arrives; without it none. */
  readonly limiter?: RateLimiter;
  /** Commands one connection may have parsed and not yet answered before reading pauses. */
  readonly pendingCommandsMax?: number;
  /** The wall clock; defaults to Date.now. */
  readonly nowMs?: () => number;
  /** Where the node's entries go (an unexpected failure, with its stack); defaults to stderr lines. */
  readonly logger?: Logger;
}

/** The Redis version Cairn answers to (HELLO, INFO): the 7.2 command set it follows. */
export const claimedRedisVersion = "7.2.0";

/** A running Redis protocol server. */
export interface RespServer {
  /** `host:port` it listens on. */
  readonly address: string;
  close(): Promise<void>;
}

/** Starts a Redis protocol server on `host:port` (port 0: any free port). */
export async function startRespServer(
  options: RespServerOptions,
  listen: { readonly host: string; readonly port: number },
): Promise<RespServer> {
  const limits: RespParserLimits = {
    ...defaultRespParserLimits,
    bulkBytesMax: options.kv.limits.valueBytesMax + options.kv.limits.keyBytesMax,
    commandBytesMax: 2 * (options.kv.limits.valueBytesMax + options.kv.limits.keyBytesMax),
    ...options.limits,
  };
  const pendingMax = options.pendingCommandsMax ?? 1024;
  const clients = new Map<number, ClientState>();
  const nowMs = options.nowMs ?? (() => Date.now());
  const context: ServerContext = {
    kv: options.kv,
    streams: options.streams,
    ...(options.guard !== undefined ? { guard: options.guard } : {}),
    status: options.status,
    clients,
    blockedClients: () => {
      let blocked = 0;
      for (const client of clients.values()) if (client.blocked) blocked++;
      return blocked;
    },
    redisVersion: claimedRedisVersion,
    nowMs,
    rateRefused: new WeakMap(),
  };
  const limiter = options.limiter;
  let nextId = 1;
  const failures = new UnexpectedFailures("redis", options.logger ?? stderrLogger);
  const batcher = new StepBatcher(options.kv);

  const serve = (socket: Socket): void => {
    const gone = new AbortController();
    // A verified client certificate names the connection's principal until AUTH gives a token.
    const certified = options.guard?.certificatePrincipal(peerCertificateName(socket)) ?? anonymous;
    const client: ClientState = {
      id: nextId++,
      addr: `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`,
      laddr: `${socket.localAddress ?? "?"}:${socket.localPort ?? 0}`,
      createdMs: nowMs(),
      version: 2,
      name: "",
      libName: "",
      libVer: "",
      lastCommand: "NULL",
      multi: undefined,
      multiFailed: false,
      watched: new Map(),
      watchBroken: false,
      closing: false,
      closed: gone.signal,
      blocked: false,
      principal: certified,
      certified,
    };
    clients.set(client.id, client);
    const parser = new RespParser(limits);
    const queue: (readonly Buffer[])[] = [];
    let protocolError: string | undefined;
    let running = false;
    let closed = false;

    const send = (reply: Reply): void => {
      if (closed) return;
      const out: Buffer[] = [];
      encodeReply(reply, client.version, out);
      socket.write(out.length === 1 ? (out[0] ?? Buffer.alloc(0)) : Buffer.concat(out));
    };

    const admit = (commands: readonly (readonly Buffer[])[]): void => {
      for (const args of commands) {
        try {
          limiter?.admit(client.principal, socket.remoteAddress ?? "?");
        } catch (error) {
          if (!isCairnError(error)) throw error;
          context.rateRefused.set(args, error);
        }
      }
    };

    const drain = async (): Promise<void> => {
      if (running) return;
      running = true;
      socket.cork();
      // Each command runs as the connection's principal at the time it runs (AUTH may change it).
      const one = (args: readonly Buffer[]) =>
        runAs(client.principal, () => answer(args, client, context, failures));
      const unexpected = (error: unknown) => {
        failures.report(error, "a pipelined batch");
        return r.error("ERR internal error");
      };
      while (!closed) {
        // Until the connection authenticates, commands run one by one, so each hears NOAUTH itself.
        const run = mustAuthenticate(client, context)
          ? takeOne(queue)
          : takeRun(queue, client, options.kv.limits.valueBytesMax);
        if (run === undefined) break;
        // Each command is counted once, as it is about to run, against the principal it runs as.
        if (limiter !== undefined) admit(run.kind === "single" ? [run.command] : run.commands);
        if (queue.length < pendingMax / 2) socket.resume();
        let replies: Reply[];
        try {
          if (run.kind === "single") replies = [await one(run.command)];
          else if (run.kind === "reads") replies = await Promise.all(run.commands.map(one));
          else
            replies = await runAs(client.principal, () =>
              answerBatch(run.commands, client, context, batcher, one, unexpected),
            );
        } catch (error) {
          // `one` answers every failure itself; this is a bug in running a batch: every command
          // of it hears of it, and the connection goes on.
          const reply = unexpected(error);
          replies = run.kind === "single" ? [reply] : run.commands.map(() => reply);
        }
        for (const reply of replies) send(reply);
        if (client.closing) {
          closed = true;
          socket.end();
          break;
        }
        // Let replies of a long pipeline go out as they are ready rather than at its end.
        socket.uncork();
        socket.cork();
      }
      if (!closed && protocolError !== undefined) {
        send(r.error(protocolError));
        closed = true;
        socket.end();
      }
      socket.uncork();
      running = false;
    };

    socket.on("data", (chunk: Buffer) => {
      if (closed || protocolError !== undefined) return;
      for (const item of parser.push(chunk)) {
        if (item.kind === "command") queue.push(item.args);
        else protocolError = item.message;
      }
      if (queue.length >= pendingMax) socket.pause();
      void drain();
    });
    const forget = (): void => {
      closed = true;
      clients.delete(client.id);
      gone.abort();
    };
    socket.on("close", forget);
    socket.on("error", forget);
  };

  const listener = await listenTcp({
    listen,
    serve,
    ...(options.connections !== undefined ? { limits: options.connections } : {}),
    ...(options.refusals !== undefined ? { refusals: { protocol: "redis", counts: options.refusals } } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    // Redis's own text when maxclients is reached; the limit per address has no Redis twin.
    refusal: (refusal) =>
      refusal === "listener-full"
        ? "-ERR max number of clients reached\r\n"
        : "-ERR max number of clients reached from your address\r\n",
  });
  return { address: `${listener.host}:${listener.port}`, close: () => listener.close() };
}

// Built on first use: the table's modules import this one (MULTI runs commands), so the table is
// complete only once every module has loaded.
let byName: Map<string, CommandSpec> | undefined;

/** Looks a command up, case-insensitively. */
export function lookupCommand(name: Uint8Array | undefined): CommandSpec | undefined {
  byName ??= new Map<string, CommandSpec>(commandTable.map((c) => [c.name, c]));
  return byName.get(text(name).toLowerCase());
}

/** Redis's reply to a command it does not know. */
export function unknownCommand(args: readonly Buffer[]): Reply {
  let quoted = "";
  for (const arg of args.slice(1)) {
    if (quoted.length >= 128) break;
    quoted += `'${text(arg).slice(0, 128 - quoted.length)}' `;
  }
  return r.error(`ERR unknown command '${text(args[0]).slice(0, 128)}', with args beginning with: ${quoted}`);
}

/** Checks a command's name and arity; undefined when it may run. */
export function refuseCall(args: readonly Buffer[]): Reply | undefined {
  const spec = lookupCommand(args[0]);
  if (spec === undefined) return unknownCommand(args);
  if (!arityAllows(spec.arity, args.length)) return wrongArity(spec.name);
  if (spec.subcommands !== undefined && args.length >= 2) {
    const sub = spec.subcommands.find((s) => s.name === `${spec.name}|${text(args[1]).toLowerCase()}`);
    if (sub !== undefined && !arityAllows(sub.arity, args.length)) return wrongArity(sub.name);
  }
  return undefined;
}

/** Runs one command to its reply; a CairnError it raises is left to the caller to map. */
export async function runCommand(
  args: readonly Buffer[],
  client: ClientState,
  server: ServerContext,
  inExec = false,
): Promise<Reply> {
  const refused = refuseCall(args);
  if (refused !== undefined) return refused;
  const spec = lookupCommand(args[0]);
  if (spec === undefined) return unknownCommand(args);
  client.lastCommand = spec.name;
  const call = inExec ? { args, client, server, inExec } : { args, client, server };
  return spec.group === "stream" ? runStreamCommand(spec, call) : spec.handler(call);
}

/**
 * Answers a command from the wire. A failure that is not a CairnError is a bug: the client gets
 * Redis's internal error and the node logs it, while every other client goes on.
 */
async function answer(
  args: readonly Buffer[],
  client: ClientState,
  server: ServerContext,
  failures: UnexpectedFailures,
): Promise<Reply> {
  const refused = server.rateRefused.get(args);
  if (refused !== undefined) return r.error(respErrorOf[refused.code](refused));
  try {
    return await run(args, client, server);
  } catch (error) {
    if (isCairnError(error)) return r.error(respErrorOf[error.code](error));
    failures.report(error, `command ${text(args[0]).slice(0, 64)}`);
    return r.error("ERR internal error");
  }
}

/**
 * Whether authentication is on and the connection has not authenticated (no token, and no client
 * certificate whose name is bound to a role).
 */
function mustAuthenticate(client: ClientState, server: ServerContext): boolean {
  return (
    client.principal.kind !== "token" &&
    server.guard?.enabled() === true &&
    !server.guard.identifies(client.principal)
  );
}

/** The head of the queue as a run of its own. */
function takeOne(queue: (readonly Buffer[])[]): ReturnType<typeof takeRun> {
  const command = queue.shift();
  return command === undefined ? undefined : { kind: "single", command };
}

/**
 * Redis's reply to a command from a connection that has not authenticated; a client certificate's
 * holder also hears that its name is not bound.
 */
function noAuth(client: ClientState): Reply {
  const certificate = client.principal.kind === "certificate" ? client.principal.name : undefined;
  return r.error(respErrorOf.ERR_UNAUTHENTICATED(unauthenticated(undefined, certificate)));
}

/** Runs a command from the wire: inside MULTI it is queued, EXEC runs the queue. */
async function run(args: readonly Buffer[], client: ClientState, server: ServerContext): Promise<Reply> {
  // As Redis: before anything else, even queueing in MULTI, only no_auth commands run unauthenticated.
  if (mustAuthenticate(client, server) && lookupCommand(args[0])?.flags.includes("no_auth") !== true) {
    return noAuth(client);
  }
  const name = text(args[0]).toLowerCase();
  if (client.multi !== undefined && !["exec", "discard", "multi", "watch", "quit", "reset"].includes(name)) {
    return queueInTransaction(args, client);
  }
  if (name === "exec" && client.multi !== undefined && args.length === 1) {
    return execTransaction(client, server);
  }
  return runCommand(args, client, server);
}
