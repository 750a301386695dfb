// Proposing a client command: checks the idempotency key, wraps the command in an envelope stamped
// with the leader's clock, proposes it and turns a refused envelope into a CairnError. Every
// service that writes goes through here.
import { assert } from "../util/index.js";
import {
  type Command,
  commandKind,
  commandNeeds,
  encodeEnvelope,
  idempotencyKeyBytesMax,
  isResultOf,
  type ResultOf,
} from "./command.js";
import { CairnError } from "./errors.js";
import type { ReplicationPort } from "./replication.js";

/**
 * Proposes `command` and resolves with its state machine result once applied: the result type of
 * that command, whose kind the apply path tagged it with.
 */
export async function proposeCommand<C extends Command>(
  log: ReplicationPort,
  command: C,
  idempotencyKey: string | undefined,
): Promise<{ result: ResultOf<C>; duplicate: boolean }> {
  log.authorize?.(commandNeeds(command));
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
  const result = outcome.result;
  // Invariant: the runtime resolves a proposal with the outcome of the entry that carried it.
  assert(isResultOf(command, result), `a ${commandKind(command)} was answered with a ${result.kind} result`);
  return { result, duplicate: outcome.duplicate };
}
