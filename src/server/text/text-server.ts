// The HaToKuSe text protocol over TCP (Tolerex's client protocol): a banner and a prompt on
// connect, then one command per line, each answered by one reply line ending CRLF and the prompt
// again. Messages are KV keys under one prefix, so HTTP and Redis clients read the same message.
// Any node answers: the KV service hands writes to the leader and reads through ReadIndex.
import type { Socket } from "node:net";
import {
  type AuthGuard,
  anonymous,
  isCairnError,
  type KvService,
  type Principal,
  type RateLimiter,
  runAs,
} from "../../service/index.js";
import { assertNever, type Logger } from "../../util/index.js";
import { type ClientTls, peerCertificateName } from "../client-tls.js";
import { type ConnectionLimits, type ConnectionRefusals, refusalText } from "../connection-gate.js";
import { listenTcp } from "../tcp-listener.js";
import { stderrLogger, UnexpectedFailures } from "../unexpected-failure.js";
import { type LineEvent, LineParser } from "./line-parser.js";
import { parseTextCommand, type TextProtoVersion } from "./text-command.js";
import { textReasonFor, textReasonOf } from "./text-errors.js";

/**
 * The KV key prefix of every message: message 42 is the key `hatokuse:42` (the id in canonical
 * decimal: no sign for positives, no leading zeros), readable at GET /v1/kv/hatokuse:42.
 */
export const textKeyPrefix = "hatokuse:";

/** Which greeting a connection gets: Cairn's own, or Tolerex's exact banner and prompt. */
export type TextFlavor = "cairn" | "tolerex";

/** The flavors, for validating a setting. */
export const textFlavors: readonly TextFlavor[] = ["cairn", "tolerex"];

/** What a text server serves and its limits. */
export interface TextServerOptions {
  readonly kv: KvService;
  /** Checks `AUTH <token>` lines; without it there is no authentication. */
  readonly guard?: AuthGuard;
  readonly flavor: TextFlavor;
  /**
   * The longest request line, in bytes without its terminator; longer lines are answered with
   * `ERROR: line too long` and the connection stays usable. Default: the largest value plus room
   * for `SET <id> `.
   */
  readonly lineBytesMax?: number;
  /**
   * Connections served at once, in all and from one address; a further one is answered
   * `ERROR: busy, too many connections ...` and closed.
   */
  readonly connections?: Partial<ConnectionLimits>;
  /** The node's counts of refused connections, this port's among them (for /metrics). */
  readonly refusals?: ConnectionRefusals;
  /** Serve over TLS with the node's client certificate (docs/security.md); plain TCP without it. */
  readonly tls?: ClientTls;
  /** The node's rate limits, asked once per line; without it none. */
  readonly limiter?: RateLimiter;
  /** Where the node's entries go (an unexpected failure, with its stack); defaults to stderr lines. */
  readonly logger?: Logger;
}

/** A listening text server. */
export interface TextServer {
  /** The address it listens on (the port resolved when 0 was asked). */
  readonly address: { readonly host: string; readonly port: number };
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

const dashes = "-".repeat(50);

/** Tolerex's banner, line for line, so its users see what they know. */
const tolerexBanner = [
  dashes,
  "TOLEREX - Leader Node (Control Plane)",
  dashes,
  "",
  "Basic Commands:",
  "  SET <id> <message>        Store a message",
  "  <N> SET <message>         Bulk store N messages",
  "  GET <id>                  Retrieve a message",
  "",
  "Utility:",
  "  HELP                      Show this help",
  "  QUIT | EXIT               Disconnect client",
  "",
  "Examples:",
  "  SET 10 HELLO",
  "  1000 SET HELLO",
  dashes,
];

const cairnBanner = [
  dashes,
  "CAIRN - HaToKuSe text protocol (any node answers)",
  dashes,
  "",
  "Commands:",
  "  SET <id> <message>        Store a message (kept byte for byte)",
  "  GET <id>                  Retrieve a message",
  "  PROTO 2                   GET answers VALUE <bytes> then the message",
  "  PROTO 1                   GET answers the message line (default)",
  "  AUTH <token>              Authenticate (when the cluster asks for tokens)",
  "  HELP                      Show this help",
  "  QUIT | EXIT               Disconnect",
  dashes,
];

const flavors: Record<TextFlavor, { readonly banner: Uint8Array; readonly prompt: Uint8Array }> = {
  tolerex: { banner: crlfLines(tolerexBanner), prompt: ascii("tolerex> ") },
  cairn: { banner: crlfLines(cairnBanner), prompt: ascii("cairn> ") },
};

/** Lines in flight per connection before it stops reading (back-pressure on a pipelining client). */
const queuedLinesMax = 64;

function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function crlfLines(lines: readonly string[]): Uint8Array {
  return ascii(lines.map((line) => `${line}\r\n`).join(""));
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

/** The key of message `id`. */
export function textKeyOf(id: bigint): Uint8Array {
  return ascii(`${textKeyPrefix}${id.toString()}`);
}

/** One reply: the bytes to send, and whether the connection ends after them. */
interface Reply {
  readonly bytes: Uint8Array;
  readonly close: boolean;
}

/** One client connection's protocol state. */
class TextSession {
  readonly #kv: KvService;
  readonly #guard: AuthGuard | undefined;
  readonly #prompt: Uint8Array;
  readonly #banner: Uint8Array;
  #version: TextProtoVersion = 1;
  /**
   * Who the connection acts for: its verified client certificate's name, or anonymous, until an
   * `AUTH <token>` line succeeds.
   */
  #principal: Principal;

  readonly #limiter: RateLimiter | undefined;
  readonly #address: string;

  constructor(
    kv: KvService,
    flavor: TextFlavor,
    address: string,
    certificate: string | undefined,
    guard?: AuthGuard,
    limiter?: RateLimiter,
  ) {
    this.#kv = kv;
    this.#guard = guard;
    this.#principal = guard?.certificatePrincipal(certificate) ?? anonymous;
    this.#limiter = limiter;
    this.#address = address;
    this.#banner = flavors[flavor].banner;
    this.#prompt = flavors[flavor].prompt;
  }

  /** What a client sees on connect. */
  greeting(): Uint8Array {
    return concat([this.#banner, this.#prompt]);
  }

  /** Answers one event of the line parser. */
  async answer(event: LineEvent): Promise<Reply> {
    try {
      this.#limiter?.admit(this.#principal, this.#address);
    } catch (error) {
      return this.#failure(error);
    }
    if (event.kind === "too-long") return this.#line("ERROR: line too long");
    const command = parseTextCommand(event.bytes);
    switch (command.kind) {
      case "empty":
        return { bytes: this.#prompt, close: false };
      case "help":
        return { bytes: concat([this.#banner, this.#prompt]), close: false };
      case "quit":
        return { bytes: ascii("Bye\r\n"), close: true };
      case "proto":
        this.#version = command.version;
        return this.#line("OK");
      case "invalid":
        return this.#line(`ERROR: ${command.reason}`);
      case "auth":
        try {
          // Without authentication wired or turned on, AUTH with a bad token changes nothing and succeeds.
          if (this.#guard !== undefined)
            this.#principal = await this.#guard.principalFor(command.token, this.#principal);
          return this.#line("OK");
        } catch (error) {
          return this.#failure(error);
        }
      case "set":
        try {
          await runAs(this.#principal, () => this.#kv.put(textKeyOf(command.id), command.message));
          return this.#line("OK");
        } catch (error) {
          return this.#failure(error);
        }
      case "get": {
        let value: Uint8Array | undefined;
        try {
          value = (await runAs(this.#principal, () => this.#kv.get(textKeyOf(command.id)))).record?.value;
        } catch (error) {
          return this.#failure(error);
        }
        if (value === undefined) return this.#line("NOT_FOUND");
        const head = this.#version === 2 ? [ascii(`VALUE ${value.length}\r\n`)] : [];
        return { bytes: concat([...head, value, ascii("\r\n"), this.#prompt]), close: false };
      }
      default:
        return assertNever(command);
    }
  }

  /** The reply to a request that failed unexpectedly (a bug, logged by the server). */
  internalError(): Reply {
    return this.#line(`ERROR: ${textReasonOf.ERR_INTERNAL}`);
  }

  #line(text: string): Reply {
    return { bytes: concat([ascii(`${text}\r\n`), this.#prompt]), close: false };
  }

  /** An expected failure becomes an `ERROR:` line; anything else is a bug and propagates to the server. */
  #failure(error: unknown): Reply {
    if (!isCairnError(error)) throw error;
    return this.#line(`ERROR: ${textReasonFor(error)}`);
  }
}

/** Serves one socket: lines are answered one at a time, in order. */
function serveSocket(
  socket: Socket,
  options: TextServerOptions,
  lineBytesMax: number,
  failures: UnexpectedFailures,
): void {
  const session = new TextSession(
    options.kv,
    options.flavor,
    socket.remoteAddress ?? "?",
    peerCertificateName(socket),
    options.guard,
    options.limiter,
  );
  const parser = new LineParser(lineBytesMax);
  const queue: LineEvent[] = [];
  let running = false;
  let ended = false;

  const pump = async (): Promise<void> => {
    running = true;
    while (!ended) {
      const event = queue.shift();
      if (event === undefined) break;
      let reply: Reply;
      try {
        reply = await session.answer(event);
      } catch (error) {
        // Not an expected failure (those became ERROR lines): a bug. This client hears of it; the
        // node logs it and goes on serving everyone (a broken invariant still stops it).
        failures.report(error, "a request");
        reply = session.internalError();
      }
      if (ended) break;
      if (reply.close) {
        ended = true;
        socket.end(reply.bytes);
        break;
      }
      if (!socket.write(reply.bytes)) {
        // The client is not reading its replies: stop reading its requests until it catches up.
        await new Promise<void>((resume) => {
          const done = () => {
            socket.off("drain", done);
            socket.off("close", done);
            resume();
          };
          socket.on("drain", done);
          socket.on("close", done);
        });
      }
      if (queue.length < queuedLinesMax && socket.isPaused()) socket.resume();
    }
    running = false;
  };

  socket.on("data", (chunk: Buffer) => {
    if (ended) return;
    queue.push(...parser.push(chunk));
    if (queue.length >= queuedLinesMax) socket.pause();
    if (!running) {
      pump().catch((error: unknown) => {
        failures.report(error, "the connection");
        ended = true;
        socket.destroy();
      });
    }
  });
  socket.on("close", () => {
    ended = true;
    queue.length = 0;
  });
  // A reset by the client is its own business; the close handler cleans up.
  socket.on("error", () => undefined);
  socket.write(session.greeting());
}

/** Starts a text server on `listen`; resolves once it accepts connections. */
export async function startTextServer(
  listen: { readonly host: string; readonly port: number },
  options: TextServerOptions,
): Promise<TextServer> {
  const lineBytesMax = options.lineBytesMax ?? options.kv.limits.valueBytesMax + 64;
  const failures = new UnexpectedFailures("text", options.logger ?? stderrLogger);
  const listener = await listenTcp({
    listen,
    serve: (socket) => serveSocket(socket, options, lineBytesMax, failures),
    ...(options.connections !== undefined ? { limits: options.connections } : {}),
    ...(options.refusals !== undefined ? { refusals: { protocol: "text", counts: options.refusals } } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    refusal: (refusal, limits) => `ERROR: busy, ${refusalText(refusal, limits)}
`,
  });
  return { address: { host: listener.host, port: listener.port }, close: () => listener.close() };
}
