// Fuzzes the Redis port: random command arrays (real command names with random arguments, so wrong
// arities and bad options reach every command's own checks), mutated valid commands, huge and
// negative lengths, random inline lines, and all of it split across TCP writes. Each input goes on
// a fresh authenticated connection, followed by an ECHO sentinel. Every error line is tallied by its
// prefix; `-ERR internal error` is a finding.
import fc from "fast-check";
import { commandTable } from "../../src/server/resp/commands.js";
import type { FuzzEndpoints } from "./live-node.js";
import { concat, fuzzString, interestingNumbers, mutated, preview, utf8 } from "./mutate.js";
import { type Outcome, target } from "./target.js";
import { exchange, split } from "./tcp-exchange.js";

const names = commandTable.map((c) => c.name.toUpperCase());
const subcommands: Readonly<Record<string, readonly string[]>> = {
  XGROUP: ["CREATE", "DESTROY", "SETID", "CREATECONSUMER", "DELCONSUMER", "HELP"],
  XINFO: ["STREAM", "GROUPS", "CONSUMERS", "HELP"],
  CLIENT: ["SETNAME", "GETNAME", "ID", "INFO", "LIST", "SETINFO", "NO-EVICT", "TRACKING", "KILL", "REPLY"],
  COMMAND: ["COUNT", "INFO", "DOCS", "LIST", "GETKEYS"],
  CONFIG: ["GET", "SET", "RESETSTAT"],
  OBJECT: ["ENCODING", "FREQ", "IDLETIME", "REFCOUNT"],
};
const options = [
  "EX",
  "PX",
  "EXAT",
  "PXAT",
  "NX",
  "XX",
  "GET",
  "KEEPTTL",
  "COUNT",
  "BLOCK",
  "STREAMS",
  "MATCH",
  "TYPE",
  "MAXLEN",
  "MINID",
  "LIMIT",
  "NOMKSTREAM",
  "IDLE",
  "JUSTID",
  "FORCE",
  "RETRYCOUNT",
  "MKSTREAM",
  "ENTRIESREAD",
  "~",
  "=",
  "*",
  "$",
  ">",
  "+",
  "-",
  "0",
  "0-0",
  "known/k0",
  "known.s1",
  "known-g",
  "fuzz/a",
];

const argument: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...options) },
  { weight: 3, arbitrary: fuzzString },
  { weight: 2, arbitrary: fc.constantFrom(...interestingNumbers) },
);

/** A command as its arguments: a real name (maybe a subcommand) and random arguments. */
const commandArgs: fc.Arbitrary<string[]> = fc
  .tuple(fc.constantFrom(...names), fc.array(argument, { maxLength: 8 }), fc.boolean())
  .map(([name, args, withSub]) => {
    const subs = subcommands[name];
    return withSub && subs !== undefined
      ? [name, subs[args.length % subs.length] ?? "HELP", ...args]
      : [name, ...args];
  });

function multibulk(args: readonly string[]): Uint8Array {
  const parts = [utf8(`*${args.length}\r\n`)];
  for (const a of args) {
    const bytes = Buffer.from(a, "latin1");
    parts.push(utf8(`$${bytes.length}\r\n`), bytes, utf8("\r\n"));
  }
  return concat(...parts);
}

/** Valid commands, encoded: the corpus that mutation starts from. */
const validCommands = fc
  .constantFrom(
    ["GET", "known/k0"],
    ["SET", "known/k0", "x", "EX", "10"],
    ["MGET", "known/k0", "known/k1"],
    ["XADD", "known.s1", "MAXLEN", "~", "10", "*", "f", "v"],
    ["XRANGE", "known.s1", "-", "+", "COUNT", "2"],
    ["XREAD", "COUNT", "2", "STREAMS", "known.s1", "0"],
    ["XREADGROUP", "GROUP", "known-g", "c1", "COUNT", "1", "STREAMS", "known.s1", ">"],
    ["XGROUP", "CREATE", "known.s1", "g2", "$", "MKSTREAM"],
    ["XACK", "known.s1", "known-g", "1-0"],
    ["XPENDING", "known.s1", "known-g", "-", "+", "10"],
    ["XCLAIM", "known.s1", "known-g", "c1", "0", "1-0"],
    ["XAUTOCLAIM", "known.s1", "known-g", "c1", "0", "0-0", "COUNT", "5"],
    ["XINFO", "STREAM", "known.s1"],
    ["SCAN", "0", "MATCH", "known/*", "COUNT", "10"],
    ["HELLO", "3", "AUTH", "default", "x"],
    ["CLIENT", "SETNAME", "fuzz"],
    ["INCRBY", "known/k0", "5"],
    ["GETEX", "known/k0", "PX", "100"],
    ["MULTI"],
    ["EXEC"],
    ["WATCH", "known/k0"],
    ["COMMAND", "INFO", "get"],
    ["EXPIRE", "known/k0", "100", "NX"],
    ["SET", "fuzz/a", "1", "GET"],
  )
  .map(multibulk);

/** Length lines a parser must bound before it buffers: huge, negative, not numbers. */
const badLengths = fc
  .tuple(
    fc.constantFrom("*", "$"),
    fc.constantFrom(...interestingNumbers, "-2", "4097", "1048577", "2097153", " 1", "1 ", "+1", "1\r"),
    fc.uint8Array({ maxLength: 32 }),
  )
  .map(([prefix, n, rest]) =>
    prefix === "*"
      ? concat(utf8(`*${n}\r\n$3\r\nGET\r\n`), rest)
      : concat(utf8(`*2\r\n$3\r\nGET\r\n$${n}\r\n`), rest),
  );

/** One input: its bytes and where to cut them into writes. */
interface RespInput {
  readonly bytes: Uint8Array;
  readonly cuts: readonly number[];
}

const respInput: fc.Arbitrary<RespInput> = fc.record({
  bytes: fc.oneof(
    { weight: 4, arbitrary: commandArgs.map(multibulk) },
    { weight: 2, arbitrary: commandArgs.map((args) => utf8(`${args.join(" ")}\r\n`)) },
    { weight: 4, arbitrary: mutated(validCommands) },
    { weight: 2, arbitrary: badLengths },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    {
      weight: 1,
      arbitrary: fc
        .array(commandArgs, { minLength: 2, maxLength: 6 })
        .map((cmds) => concat(...cmds.map(multibulk))),
    },
  ),
  cuts: fc.array(fc.integer({ min: 0, max: 1_000_000 }), { maxLength: 3 }),
});

const sentinel = "fuzz-sentinel";

/** The error lines of a RESP reply stream (simple errors and RESP3 blob errors' first line). */
function errorLines(received: string): string[] {
  return received.split("\r\n").filter((line) => line.startsWith("-"));
}

/** The tally name of an error line: its prefix, and for ERR the start of its text (no numbers or quotes). */
function errorCode(line: string): string {
  const [prefix, ...rest] = line.slice(1).split(" ");
  if (prefix !== "ERR") return prefix ?? "";
  return `ERR ${rest
    .join(" ")
    .split(/['"\d(:]/)[0]
    ?.trim()
    .slice(0, 48)}`;
}

async function send(endpoints: FuzzEndpoints, input: RespInput): Promise<Outcome> {
  const auth = utf8(`AUTH ${endpoints.token}\r\n`);
  const tail = multibulk(["ECHO", sentinel]);
  const pieces = [auth, ...split(input.bytes, input.cuts), utf8("\r\n"), tail];
  const { redis } = endpoints;
  const { received, end } = await exchange(redis.host, redis.port, pieces, sentinel);
  const errors = errorLines(received);
  const internal = errors.find((line) => /internal error/i.test(line));
  if (internal !== undefined) return { kind: "finding", what: `${internal} for ${preview(input.bytes)}` };
  if (!received.startsWith("+OK\r\n"))
    return {
      kind: "finding",
      what: `AUTH not answered +OK (${end}): ${JSON.stringify(received.slice(0, 200))} for ${preview(input.bytes)}`,
    };
  const first = errors[0];
  return first === undefined ? { kind: "served" } : { kind: "refused", code: errorCode(first) };
}

/** The Redis protocol target. */
export const respTarget = target("resp", respInput, send, 12);
