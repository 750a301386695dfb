// MULTI / EXEC / DISCARD / WATCH / UNWATCH. Queued commands are checked as Redis checks them when
// queued (unknown command, wrong arity: EXEC then aborts with EXECABORT).
import type { ClientState, CommandCall, ServerContext } from "./command-table.js";
import { type Reply, r } from "./resp-reply.js";
import { refuseCall, runCommand } from "./resp-server.js";

/** MULTI */
export function multi({ client }: CommandCall): Reply {
  if (client.multi !== undefined) return r.error("ERR MULTI calls can not be nested");
  client.multi = [];
  client.multiFailed = false;
  return r.ok;
}

/** DISCARD */
export function discard({ client }: CommandCall): Reply {
  if (client.multi === undefined) return r.error("ERR DISCARD without MULTI");
  endTransaction(client);
  return r.ok;
}

/** EXEC outside MULTI. */
export function execWithoutMulti(): Reply {
  return r.error("ERR EXEC without MULTI");
}

/** WATCH key [key ...]: remembers each key's modify revision now. */
export async function watch({ args, client, server }: CommandCall): Promise<Reply> {
  if (client.multi !== undefined) return r.error("ERR WATCH inside MULTI is not allowed");
  for (const key of args.slice(1)) {
    const id = key.toString("latin1");
    if (client.watched.has(id)) continue;
    const { record } = await server.kv.get(key);
    client.watched.set(id, record?.modRevision ?? 0);
  }
  return r.ok;
}

/** UNWATCH */
export function unwatch({ client }: CommandCall): Reply {
  client.watched.clear();
  client.watchBroken = false;
  return r.ok;
}

function endTransaction(client: ClientState): void {
  client.multi = undefined;
  client.multiFailed = false;
  client.watched.clear();
  client.watchBroken = false;
}

/** A command sent inside MULTI: checked, then queued. */
export function queueInTransaction(args: readonly Buffer[], client: ClientState): Reply {
  const refused = refuseCall(args);
  if (refused !== undefined) {
    client.multiFailed = true;
    return refused;
  }
  client.multi?.push(args);
  return r.simple("QUEUED");
}

/**
 * EXEC: aborts if a queued command was refused; otherwise runs the queue, answering nil when a
 * watched key changed.
 */
export async function execTransaction(client: ClientState, server: ServerContext): Promise<Reply> {
  const queued = client.multi ?? [];
  const failed = client.multiFailed;
  const watched = new Map(client.watched);
  endTransaction(client);
  if (failed) return r.error("EXECABORT Transaction discarded because of previous errors.");
  for (const [id, revision] of watched) {
    const { record } = await server.kv.get(Buffer.from(id, "latin1"));
    if ((record?.modRevision ?? 0) !== revision) return { t: "null-array" };
  }
  const replies: Reply[] = [];
  for (const args of queued) replies.push(await runCommand(args, client, server));
  return r.array(replies);
}
