// What each replicated command needs of its caller's role: one exhaustive table, so a new command
// does not compile until it says which permission it takes. Every write of every protocol goes
// through proposeCommand, which checks these; the leader checks them again for writes a follower
// handed over, against its own (newest) view of tokens and roles.
import { assertNever } from "../../util/index.js";
import type { KvCommand, TransactionStep } from "../kv/index.js";
import type { StreamCommand } from "../streams/index.js";
import type { AuthCommand } from "./auth-command.js";
import type { Need } from "./permissions.js";

const everyKey: Need = {
  permission: "admin",
  resource: "key-range",
  start: new Uint8Array(0),
  end: undefined,
};
const clusterAdmin: Need = { permission: "admin", resource: "cluster" };

/** What membership changes, token and role administration and backups need: admin on the cluster. */
export const clusterAdminNeeds: readonly Need[] = [clusterAdmin];

const keyNeed = (permission: Need["permission"], key: Uint8Array): Need => ({
  permission,
  resource: "key",
  key,
});
const streamNeed = (permission: Need["permission"], name: string): Need => ({
  permission,
  resource: "stream",
  name,
});

/** What a key-value command (or a transaction step) needs. */
export function kvNeeds(command: KvCommand | TransactionStep): Need[] {
  switch (command.type) {
    case "put":
    case "delete":
    case "increment":
    case "set-ttl":
      return [keyNeed("write", command.key)];
    case "set":
      return command.returnOld === true
        ? [keyNeed("write", command.key), keyNeed("read", command.key)]
        : [keyNeed("write", command.key)];
    case "update":
      // Every update answers the value it leaves or removes.
      return [keyNeed("write", command.key), keyNeed("read", command.key)];
    case "put-many":
      return command.pairs.map(([key]) => keyNeed("write", key));
    case "copy":
      return command.move
        ? [keyNeed("read", command.from), keyNeed("write", command.from), keyNeed("write", command.to)]
        : [keyNeed("read", command.from), keyNeed("write", command.to)];
    case "read":
      return [keyNeed("read", command.key)];
    case "flush":
      return [everyKey];
    case "expire":
      // Proposed by the leader's own sweeper, never by a client.
      return [clusterAdmin];
    case "transaction":
      return [
        ...command.watch.map(([key]) => keyNeed("read", key)),
        ...command.commands.flatMap((step) =>
          step.type === "stream" ? streamNeeds(step.command) : kvNeeds(step),
        ),
      ];
    case "stream":
      return streamNeeds(command.command);
    default:
      return assertNever(command, "key-value command");
  }
}

/**
 * What a stream command needs: `admin` to create, delete or reconfigure a stream or delete or
 * reconfigure a group; `write` to append, trim or delete messages; `read` to consume (group
 * creation, fetch, ack, claim and the like change only the consumer's own cursor).
 */
export function streamNeeds(command: StreamCommand): Need[] {
  switch (command.type) {
    case "create":
    case "delete":
    case "update":
      return [streamNeed("admin", command.name)];
    case "append":
    case "append-batch":
    case "trim":
    case "message-delete":
    case "set-id":
      return [streamNeed("write", command.name)];
    case "group-delete":
    case "group-update":
      return [streamNeed("admin", command.stream)];
    case "group-create":
    case "group-position":
    case "consumer-create":
    case "consumer-delete":
    case "fetch":
    case "settle":
    case "claim":
      return [streamNeed("read", command.stream)];
    case "sweep":
      return [clusterAdmin];
    default:
      return assertNever(command, "stream command");
  }
}

/** What an auth command needs: managing tokens and roles is cluster administration. */
export function authNeeds(_command: AuthCommand): Need[] {
  return [clusterAdmin];
}
