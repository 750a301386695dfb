// Many client commands per Raft entry. Commands proposed in the same turn of the event loop, from
// any connection and protocol (and writes handed over by followers), are gathered and proposed
// together at the end of that turn as one entry (up to `entryCommandsMax` commands and about
// `entryBytesMax` bytes each), so the per-entry costs on every node (a proposal and its tracking, a
// log entry in the WAL and on the wire, an apply round's bookkeeping) are paid once for the turn.
// Apply and reply stay per command: each keeps its own idempotency key, result and error.
import type { RaftGroup } from "../node/index.js";
import type { LogIndex } from "../raft/index.js";
import { assert } from "../util/index.js";
import { type ApplyOutcome, type EntryOutcome, encodeEntryCommands } from "./command.js";
import { CairnError } from "./errors.js";

/** How many commands, and how many bytes of them, one entry carries at most. */
export interface CommandBatcherSettings {
  /** The most commands in one entry; 1 proposes every command as an entry of its own. */
  readonly entryCommandsMax: number;
  /** The most bytes of encoded commands in one entry (a single larger command goes alone). */
  readonly entryBytesMax: number;
  /** The most commands waiting for their entry at once; more are refused with ERR_UNAVAILABLE. */
  readonly commandsPendingMax: number;
}

/** Defaults: 256 commands or 256 KiB an entry, 10,000 commands waiting (as the runtime's proposals). */
export const defaultCommandBatcherSettings: CommandBatcherSettings = {
  entryCommandsMax: 256,
  entryBytesMax: 256 * 1024,
  commandsPendingMax: 10_000,
};

/** A command waiting for the entry that carries it. */
interface Queued {
  readonly envelope: Uint8Array;
  readonly resolve: (answer: ProposedCommand) => void;
  readonly reject: (error: unknown) => void;
}

/** What proposing one command answers: its own outcome and the index of the entry that carried it. */
export interface ProposedCommand {
  readonly outcome: ApplyOutcome;
  readonly index: LogIndex;
}

/** Gathers the commands of a turn of the event loop into entries of a group. */
export class CommandBatcher {
  readonly #group: Pick<RaftGroup<EntryOutcome>, "proposeWithIndex">;
  readonly #defer: (run: () => void) => void;
  readonly #settings: CommandBatcherSettings;
  #queue: Queued[] = [];
  /** Commands queued or proposed and not yet answered. */
  #pending = 0;

  /**
   * Creates a batcher proposing to `group`; `defer` runs its argument at the end of the current
   * turn of the event loop (setImmediate in production, the simulator's own event otherwise).
   */
  constructor(
    group: Pick<RaftGroup<EntryOutcome>, "proposeWithIndex">,
    defer: (run: () => void) => void,
    settings: CommandBatcherSettings = defaultCommandBatcherSettings,
  ) {
    assert(settings.entryCommandsMax >= 1, "entryCommandsMax must be at least 1");
    this.#group = group;
    this.#defer = defer;
    this.#settings = settings;
  }

  /**
   * Proposes an encoded envelope in the next entry; resolves with its own outcome once that entry
   * is applied here. Rejects as the group's proposal does (the same error for every command of the
   * entry: they share its fate), or with ERR_UNAVAILABLE when too many commands wait already.
   */
  propose(envelope: Uint8Array): Promise<ProposedCommand> {
    if (this.#pending >= this.#settings.commandsPendingMax)
      return Promise.reject(new CairnError("ERR_UNAVAILABLE", "too many proposals in flight"));
    this.#pending++;
    return new Promise<ProposedCommand>((resolve, reject) => {
      if (this.#queue.length === 0) this.#defer(() => this.#flush());
      this.#queue.push({ envelope, resolve, reject });
    }).finally(() => {
      this.#pending--;
    });
  }

  /** Proposes everything queued this turn, as few entries as the limits allow. */
  #flush(): void {
    const queue = this.#queue;
    this.#queue = [];
    const { entryCommandsMax, entryBytesMax } = this.#settings;
    let start = 0;
    while (start < queue.length) {
      let end = start;
      let bytes = 0;
      for (; end < queue.length && end - start < entryCommandsMax; end++) {
        const size = queue[end]?.envelope.length ?? 0;
        if (end > start && bytes + size > entryBytesMax) break;
        bytes += size;
      }
      this.#proposeEntry(queue.slice(start, end));
      start = end;
    }
  }

  #proposeEntry(commands: readonly Queued[]): void {
    this.#group.proposeWithIndex(encodeEntryCommands(commands.map((c) => c.envelope))).then(
      ({ result, index }) => {
        // Invariant: an entry's outcomes answer its commands one by one.
        assert(result?.length === commands.length, "an entry applied without one outcome per command");
        commands.forEach((c, i) => {
          const outcome = result[i];
          assert(outcome !== undefined, "an outcome per command");
          c.resolve({ outcome, index });
        });
      },
      (error: unknown) => {
        for (const c of commands) c.reject(error);
      },
    );
  }
}
