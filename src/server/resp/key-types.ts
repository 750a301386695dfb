// Redis's one keyspace, on the read side: a stream is a key of type stream, so a string command on a
// stream's name and a stream command on a string key answer WRONGTYPE, as Redis does. Writes get
// this from the state machine (a shared-keyspace transaction, KvTransaction); the handlers here
// cover the commands that read, or that run alone (blocking reads, consumer groups).
import { CairnError, isStreamName, type KvRecord } from "../../service/index.js";
import { type CommandCall, type CommandSpec, text } from "./command-table.js";
import type { Reply } from "./resp-reply.js";

/** The error a command on a key of the other type raises; the server answers Redis's WRONGTYPE. */
export function wrongType(): CairnError {
  return new CairnError("ERR_WRONG_TYPE", "Operation against a key holding the wrong kind of value");
}

/**
 * Whether a stream named by `key` exists, read locally: a write this client made through this node
 * is applied here before it is acknowledged.
 */
export async function streamExists(call: CommandCall, key: Uint8Array | undefined): Promise<boolean> {
  const name = text(key);
  if (!isStreamName(name)) return false;
  try {
    await call.server.streams.info(name, "stale");
    return true;
  } catch (error) {
    if (error instanceof CairnError && error.code === "ERR_NOT_FOUND") return false;
    throw error;
  }
}

/** A string command's read of `key`: its live record, undefined when absent; WRONGTYPE for a stream. */
export async function stringRecord(call: CommandCall, key: Uint8Array): Promise<KvRecord | undefined> {
  const { record } = await call.server.kv.get(key);
  if (record === undefined && (await streamExists(call, key))) throw wrongType();
  return record;
}

/** The keys a stream command names: those after STREAMS for XREAD / XREADGROUP, else its one key. */
export function streamKeysOf(name: string, args: readonly Buffer[]): Buffer[] {
  if (name === "xread" || name === "xreadgroup") {
    const at = args.findIndex((a, i) => i > 0 && text(a).toLowerCase() === "streams");
    if (at < 0) return [];
    const rest = args.slice(at + 1);
    return rest.slice(0, Math.floor(rest.length / 2));
  }
  const key = name === "xinfo" || name === "xgroup" ? args[2] : args[1];
  return key === undefined ? [] : [key];
}

/** Throws WRONGTYPE when one of `keys` holds a string (a stream's name never does in Redis's view). */
async function refuseStringKeys(call: CommandCall, keys: readonly Buffer[]): Promise<void> {
  for (const key of keys) {
    if ((await call.server.kv.get(key, "stale")).record !== undefined) throw wrongType();
  }
}

/** Stream commands that could wait or create a stream: their keys are checked before they run. */
const checkedFirst = new Set(["xread", "xreadgroup", "xgroup", "xadd"]);

/**
 * Runs a stream command with Redis's type check of its keys. Redis parses a command's arguments
 * before it looks its key up, so a syntax error wins over WRONGTYPE: the others run first, and
 * their reply stands unless it is one Redis gives only after the lookup (a success, a missing key
 * or group).
 */
export async function runStreamCommand(spec: CommandSpec, call: CommandCall): Promise<Reply> {
  const keys = streamKeysOf(spec.name, call.args);
  if (checkedFirst.has(spec.name)) {
    await refuseStringKeys(call, keys);
    return spec.handler(call);
  }
  const reply = await spec.handler(call);
  if (reply.t !== "error" || /^(NOGROUP|ERR no such key|ERR The XGROUP)/.test(reply.message)) {
    await refuseStringKeys(call, keys);
  }
  return reply;
}
