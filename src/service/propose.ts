// Proposing a client command: checks the idempotency key, wraps the command in an envelope stamped
// with the leader's clock, proposes it and turns a refused envelope into a CairnError. Every
// service that writes goes through here.
import { type Command, type CommandResult, encodeEnvelope, idempotencyKeyBytesMax } from "./command.js";
import { CairnError } from "./errors.js";
import type { ReplicationPort } from "./replication.js";

/** Proposes `command` and resolves with its state machine result once applied. */
export async function proposeCommand(
  log: ReplicationPort,
  command: Command,
  idempotencyKey: string | undefined,
): Promise<{ result: CommandResult; duplicate: boolean }> {
  if (idempotencyKey !== undefined) {
    const bytes = new TextEncoder().encode(idempotencyKey).length;
    if (bytes === 0 || bytes > idempotencyKeyBytesMax) {
      throw new CairnError("ERR_BAD_REQUEST", `idempotency key must be 1 to ${idempotencyKeyBytesMax} bytes`);
    }
  }
  const data = encodeEnvelope({
    tsMs: log.nowMs(),
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    command,
  });
  const outcome = await log.propose(data);
  if (!outcome.ok) throw new CairnError(outcome.code, outcome.message);
  return { result: outcome.result, duplicate: outcome.duplicate };
}
