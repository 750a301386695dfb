// Commands that arrive together are proposed together, each answered in order on its connection:
// - on one connection (a pipeline), a run of consecutive key commands with a write among them
//   becomes KV transaction steps (no WATCH), applied in order in one entry, so the commands see each
//   other's effects exactly as they would one by one;
// - across connections, the steps submitted in one turn of the event loop share one entry (a
//   StepBatcher), so 50 clients writing at once cost a few entries, not 50;
// - a run of consecutive reads on one connection runs concurrently (reads commute; each is still
//   linearizable).
// Anything else (MULTI and what it queues, blocking reads, the stream commands without a plan) runs
// alone, after everything before it on its connection was answered.
import {
  type CairnError,
  isCairnError,
  type KvService,
  runAs,
  type StepResult,
  system,
  type TransactionStep,
} from "../../service/index.js";
import type { ClientState, ServerContext } from "./command-table.js";
import { text } from "./command-table.js";
import { respErrorOf } from "./error-replies.js";
import { type Reply, r } from "./resp-reply.js";
import { lookupCommand, refuseCall } from "./resp-server.js";
import { planOf, repliesOf, type TransactionPlan, transactionPlanners } from "./transaction-plans.js";

/** Commands one run holds at most. */
const runCommandsMax = 256;

/** How the commands at the head of a connection's queue run. */
export type Run =
  | { readonly kind: "batch"; readonly commands: readonly (readonly Buffer[])[] }
  | { readonly kind: "reads"; readonly commands: readonly (readonly Buffer[])[] }
  | { readonly kind: "single"; readonly command: readonly Buffer[] };

/** Whether a command may join a batch: a valid call of a command with a plan of KV steps. */
function batchable(args: readonly Buffer[]): { write: boolean } | undefined {
  const name = text(args[0]).toLowerCase();
  if (!transactionPlanners.has(name) || refuseCall(args) !== undefined) return undefined;
  return { write: lookupCommand(args[0])?.flags.includes("write") === true };
}

/** Whether a command is a read that may run beside other reads. */
function concurrentRead(args: readonly Buffer[]): boolean {
  const flags = lookupCommand(args[0])?.flags ?? [];
  return flags.includes("readonly") && !flags.includes("blocking") && refuseCall(args) === undefined;
}

/**
 * Takes the next run off the head of `queue`: a batch (two or more batchable commands, a write
 * among them, their arguments within half the value limit), a run of reads, or one command.
 */
export function takeRun(
  queue: (readonly Buffer[])[],
  client: ClientState,
  bytesMax: number,
): Run | undefined {
  const head = queue[0];
  if (head === undefined) return undefined;
  if (client.multi === undefined) {
    let count = 0;
    let bytes = 0;
    let writes = 0;
    for (const args of queue) {
      const b = batchable(args);
      const size = args.reduce((sum, a) => sum + a.length, 0);
      if (b === undefined || count >= runCommandsMax || (count > 0 && bytes + size > bytesMax / 2)) break;
      count++;
      bytes += size;
      if (b.write) writes++;
    }
    if (count >= 1 && writes > 0) return { kind: "batch", commands: queue.splice(0, count) };
    let reads = 0;
    while (reads < queue.length && reads < runCommandsMax && concurrentRead(queue[reads] ?? [])) reads++;
    if (reads >= 2) return { kind: "reads", commands: queue.splice(0, reads) };
  }
  queue.shift();
  return { kind: "single", command: head };
}

/**
 * Answers a batch: every command's steps in one transaction entry, each command's reply from its
 * own results (a refused step answers its error in its place, as Redis answers each command of a
 * pipeline). When the service refuses the batch itself before proposing it (a key or value over a
 * limit), each command is proposed alone and answers for itself; an outcome the service could not learn
 * (a timeout) is every command's answer, since none may be retried blindly.
 */
export async function answerBatch(
  commands: readonly (readonly Buffer[])[],
  client: ClientState,
  server: ServerContext,
  batcher: StepBatcher,
  one: (args: readonly Buffer[]) => Promise<Reply>,
  unexpected: (error: unknown) => Reply,
): Promise<Reply[]> {
  const plans: (TransactionPlan | Reply)[] = [];
  for (const args of commands) {
    const refused = server.rateRefused.get(args);
    if (refused !== undefined) {
      plans.push(r.error(respErrorOf[refused.code](refused)));
      continue;
    }
    try {
      const plan = await planOf({ args, client, server }, () => one(args));
      // Each command is checked against the connection's principal; a refused one answers alone.
      if ("steps" in plan) server.kv.authorizeSteps(plan.steps);
      plans.push(plan);
    } catch (error) {
      plans.push(isCairnError(error) ? r.error(respErrorOf[error.code](error)) : unexpected(error));
    }
  }
  const steps = plans.flatMap((plan) => ("steps" in plan ? plan.steps : []));
  client.lastCommand = lookupCommand(commands.at(-1)?.[0])?.name ?? client.lastCommand;
  let results: readonly StepResult[] = [];
  try {
    if (steps.length > 0) results = await batcher.run(steps);
  } catch (error) {
    if (isCairnError(error) && refusedBeforeProposing(error) && commands.length > 1) {
      // Each command as an entry of its own, still seeing one keyspace: only the offender is refused.
      const alone: Reply[] = [];
      for (const args of commands) {
        alone.push(...(await answerBatch([args], client, server, batcher, one, unexpected)));
      }
      return alone;
    }
    const reply = isCairnError(error) ? r.error(respErrorOf[error.code](error)) : unexpected(error);
    return commands.map(() => reply);
  }
  return repliesOf(plans, results, (plan, mine, i) =>
    plan.reply(mine, { args: commands[i] ?? [], client, server }),
  );
}

/** Steps of one submitter waiting for the next entry. */
interface Waiting {
  readonly steps: readonly TransactionStep[];
  readonly resolve: (results: readonly StepResult[]) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Collects the transaction steps submitted by every connection into KV transaction entries (up to
 * `stepsMax` steps and about half the value limit in bytes an entry) and hands each submitter the
 * results of its own steps. Group commit: at most `inflightMax` entries are proposed at a time;
 * what arrives meanwhile waits and goes in the next entry, so under load each entry carries many
 * commands, and when idle a command is proposed at the end of its turn of the event loop. If the
 * service refuses a combined entry before proposing it (a key or value over a limit), each
 * submitter's steps are proposed on their own, so only the offender sees the refusal.
 */
export class StepBatcher {
  readonly #kv: KvService;
  readonly #stepsMax: number;
  readonly #bytesMax: number;
  readonly #inflightMax: number;
  #waiting: Waiting[] = [];
  #steps = 0;
  #bytes = 0;
  #scheduled = false;
  #inflight = 0;

  constructor(kv: KvService, options: { readonly stepsMax?: number; readonly inflightMax?: number } = {}) {
    this.#kv = kv;
    this.#stepsMax = Math.min(options.stepsMax ?? 512, kv.limits.putManyKeysMax);
    this.#bytesMax = kv.limits.valueBytesMax / 2;
    this.#inflightMax = options.inflightMax ?? 4;
  }

  /** Proposes `steps` in the next entry; resolves with their results, in order. */
  run(steps: readonly TransactionStep[]): Promise<readonly StepResult[]> {
    // Checked here, as the submitter: the entry that carries them is proposed by the node itself.
    try {
      this.#kv.authorizeSteps(steps);
    } catch (error) {
      return Promise.reject(error);
    }
    const bytes = stepsBytes(steps);
    const full =
      this.#waiting.length > 0 &&
      (this.#steps + steps.length > this.#stepsMax || this.#bytes + bytes > this.#bytesMax);
    // A full entry goes now, whatever is in flight: entries stay bounded, waiting does not grow.
    if (full) this.#flush(true);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ steps, resolve, reject });
      this.#steps += steps.length;
      this.#bytes += bytes;
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#waiting.length === 0 || this.#inflight >= this.#inflightMax) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush(false));
  }

  #flush(force: boolean): void {
    this.#scheduled = false;
    if (this.#waiting.length === 0 || (!force && this.#inflight >= this.#inflightMax)) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    this.#steps = 0;
    this.#bytes = 0;
    this.#inflight++;
    void this.#propose(waiting).finally(() => {
      this.#inflight--;
      this.#schedule();
    });
  }

  async #propose(waiting: readonly Waiting[]): Promise<void> {
    try {
      // Every submitter's steps were checked against its own principal in `run`.
      const { results } = await runAs(system, () =>
        this.#kv.transaction(
          [],
          waiting.flatMap((w) => w.steps),
        ),
      );
      let next = 0;
      for (const w of waiting) {
        w.resolve(results.slice(next, next + w.steps.length));
        next += w.steps.length;
      }
    } catch (error) {
      if (waiting.length > 1 && isCairnError(error) && refusedBeforeProposing(error)) {
        await Promise.all(waiting.map((w) => this.#propose([w])));
        return;
      }
      for (const w of waiting) w.reject(error);
    }
  }
}

/** Whether the service refused a transaction while checking it, before anything was proposed. */
function refusedBeforeProposing(error: CairnError): boolean {
  return error.code === "ERR_BAD_REQUEST" || error.code === "ERR_TOO_LARGE";
}

/** About how many bytes steps carry (keys and values), to keep a batched entry within bounds. */
function stepsBytes(steps: readonly TransactionStep[]): number {
  let bytes = 0;
  for (const step of steps) {
    if (step.type === "stream") {
      if (step.command.type === "append") bytes += step.command.payload.length;
      continue;
    }
    if ("key" in step) bytes += step.key.length;
    if ("value" in step) bytes += step.value.length;
    if (step.type === "put-many") for (const [k, v] of step.pairs) bytes += k.length + v.length;
    if (step.type === "update" && "bytes" in step.op) bytes += step.op.bytes.length;
  }
  return bytes;
}
