// The stream workload's requests (test/sim/stream-workload.ts) as HTTP calls to a random Cairn node,
// and, once the run has healed, what the nodes hold: every node's whole copy of every stream (read
// from its local state), and the consumer group's final state. The HTTP API lists no pending
// sequences, so the group is drained first: its ack wait is lengthened, then one consumer fetches
// until every message in flight is its own; what it got is exactly what was in flight.
import { assertNever } from "../../src/util/assert.js";
import type { Prng } from "../../src/util/prng.js";
import type { ReaderView, StreamEntry } from "../sim/stream-checker.js";
import {
  deadLetterStream,
  type FetchAnswer,
  type FinalStreamState,
  groupName,
  groupStream,
  messageIdHeader,
  type StreamReply,
  type StreamTarget,
  type StreamWorkloadOptions,
} from "../sim/stream-workload.js";
import { waitFor } from "../support/wait-for.js";
import { classifyFailure } from "./cairn-kv-target.js";
import { field, type HttpOutcome, httpJson } from "./http.js";

/** A message as the HTTP API returns it. */
interface WireMessage {
  readonly seq: number;
  readonly payload: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly deliveries?: number;
}

const messagesOf = (body: unknown): WireMessage[] => {
  const list = field(body, "messages");
  return Array.isArray(list) ? (list as WireMessage[]) : [];
};

const entryOf = (m: WireMessage): StreamEntry => ({
  seq: m.seq,
  messageId: m.headers[messageIdHeader] ?? "",
  payload: m.payload,
});

/** The group's ack wait while it is drained: long enough that no drained message comes back. */
const drainAckWaitMs = 600_000;

/** Settings of a {@link CairnStreamTarget}. */
export interface CairnStreamTargetOptions {
  readonly urls: readonly string[];
  readonly prng: Prng;
  readonly timeoutMs: number;
  /** How many streams the workload uses (their names are s0, s1, ...). */
  readonly streams: number;
}

/** The stream workload's target over Cairn's HTTP API. */
export class CairnStreamTarget implements StreamTarget {
  readonly #o: CairnStreamTargetOptions;
  #final: FinalStreamState | undefined;
  /** Workload requests still waiting for an answer. */
  #inFlight = 0;

  /** Creates a target. */
  constructor(options: CairnStreamTargetOptions) {
    this.#o = options;
  }

  async #send(method: string, path: string, body?: unknown, idempotencyKey?: string): Promise<HttpOutcome> {
    this.#inFlight++;
    try {
      return await httpJson(method, `${this.#o.prng.pick(this.#o.urls)}${path}`, {
        ...(body === undefined ? {} : { body }),
        ...(idempotencyKey === undefined ? {} : { headers: { "idempotency-key": idempotencyKey } }),
        timeoutMs: this.#o.timeoutMs,
      });
    } finally {
      this.#inFlight--;
    }
  }

  /** Sends a request and answers `done` with `parse(body)` on a 200, else as the failure demands. */
  #call<T>(
    done: (r: StreamReply<T>) => void,
    request: Promise<HttpOutcome>,
    parse: (body: unknown) => T,
  ): void {
    void request.then((outcome) => {
      if (outcome.kind === "answer" && outcome.status === 200) {
        done({ kind: "ok", value: parse(outcome.body) });
        return;
      }
      const failure = classifyFailure(outcome);
      switch (failure.kind) {
        case "failed":
          done({ kind: "failed", reason: failure.code });
          return;
        case "unknown":
          // The client's timeout records it as unknown.
          return;
        case "wrong":
          // A stream or group that is not there yet is a definite failure too.
          if (failure.code === "ERR_NOT_FOUND") done({ kind: "failed", reason: failure.code });
          else done({ kind: "error", code: failure.code });
          return;
        default:
          assertNever(failure.kind, "failure");
      }
    });
  }

  setUp(_clientId: number, options: StreamWorkloadOptions, done: (r: StreamReply<void>) => void): void {
    const steps = [
      ...Array.from(
        { length: options.streams },
        (_, s) => () => this.#send("POST", "/v1/streams", { name: `s${s}` }, `create-s${s}`),
      ),
      () =>
        this.#send(
          "POST",
          `/v1/streams/${groupStream}/groups`,
          {
            group: groupName,
            startAt: "first",
            ackWaitMs: options.ackWaitMs,
            maxDeliveries: options.maxDeliveries,
          },
          "create-group",
        ),
    ];
    void (async () => {
      for (const step of steps) {
        const outcome = await step();
        if (outcome.kind !== "answer" || outcome.status !== 200) {
          this.#call(done, Promise.resolve(outcome), () => undefined);
          return;
        }
      }
      done({ kind: "ok", value: undefined });
    })();
  }

  append(
    _clientId: number,
    stream: string,
    messageId: string,
    payload: string,
    done: (r: StreamReply<{ readonly seq: number }>) => void,
  ): void {
    this.#call(
      done,
      this.#send(
        "POST",
        `/v1/streams/${stream}/messages`,
        { payload, id: messageId, headers: { [messageIdHeader]: messageId } },
        messageId,
      ),
      (body) => ({ seq: Number(field(body, "seq")) }),
    );
  }

  read(
    _clientId: number,
    stream: string,
    from: number,
    limit: number,
    done: (r: StreamReply<readonly StreamEntry[]>) => void,
  ): void {
    this.#call(
      done,
      this.#send("GET", `/v1/streams/${stream}/messages?from=${from}&limit=${limit}`),
      (body) => messagesOf(body).map(entryOf),
    );
  }

  fetch(
    _clientId: number,
    consumer: string,
    max: number,
    ack: readonly number[],
    done: (r: StreamReply<FetchAnswer>) => void,
  ): void {
    this.#call(
      done,
      this.#send("POST", `/v1/streams/${groupStream}/groups/${groupName}/fetch`, {
        consumer,
        max,
        ...(ack.length > 0 ? { ack } : {}),
      }),
      (body) => {
        const settled = field(field(body, "acked"), "settled");
        return {
          messages: messagesOf(body).map((m) => ({ ...entryOf(m), deliveries: m.deliveries ?? 0 })),
          acked: Array.isArray(settled) ? (settled as number[]) : [],
        };
      },
    );
  }

  settle(
    _clientId: number,
    action: "ack" | "nack" | "term",
    seqs: readonly number[],
    idempotencyKey: string,
    done: (r: StreamReply<{ readonly settled: readonly number[] }>) => void,
  ): void {
    this.#call(
      done,
      this.#send(
        "POST",
        `/v1/streams/${groupStream}/groups/${groupName}/${action}`,
        { seqs },
        idempotencyKey,
      ),
      (body) => {
        const settled = field(body, "settled");
        return { settled: Array.isArray(settled) ? (settled as number[]) : [] };
      },
    );
  }

  finalState(): FinalStreamState | undefined {
    return this.#final;
  }

  /**
   * Collects the final state once the cluster is healed and the workload has stopped: drains the
   * group, then reads every node's copy of every stream. Throws if the cluster does not answer.
   */
  async collect(): Promise<void> {
    // A fetch answered after the drain began would hold its messages past the drain.
    await waitFor("the workload's requests to end", () => this.#inFlight === 0, { timeoutMs: 30_000 });
    const urls = this.#o.urls;
    /** A request any node may answer (followers hand writes to the leader), retried across nodes. */
    const call = async (method: string, path: string, body?: unknown, key?: string): Promise<unknown> => {
      let last: HttpOutcome | undefined;
      for (let attempt = 0; attempt < 40; attempt++) {
        const outcome = await httpJson(method, `${urls[attempt % urls.length]}${path}`, {
          ...(body === undefined ? {} : { body }),
          ...(key === undefined ? {} : { headers: { "idempotency-key": key } }),
          timeoutMs: 5_000,
        });
        if (outcome.kind === "answer" && outcome.status === 200) return outcome.body;
        if (outcome.kind === "answer" && outcome.status === 404) return undefined;
        last = outcome;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      throw new Error(`${method} ${path} failed on every node: ${JSON.stringify(last)}`);
    };
    const groupPath = `/v1/streams/${groupStream}/groups/${groupName}`;
    let group: FinalStreamState["group"];
    if ((await call("GET", groupPath)) !== undefined) {
      await call("PATCH", groupPath, { ackWaitMs: drainAckWaitMs }, "drain-ack-wait");
      const drained = new Set<number>();
      let fetches = 0;
      await waitFor(
        "the drain consumer to hold every message in flight",
        async () => {
          const got = await call(
            "POST",
            `${groupPath}/fetch`,
            { consumer: "drain", max: 1000 },
            `drain-${fetches++}`,
          );
          for (const m of messagesOf(got)) drained.add(m.seq);
          const now = await call("GET", groupPath);
          return num(field(now, "pending")) === drained.size && num(field(now, "backlog")) === 0;
        },
        { timeoutMs: 60_000, intervalMs: 200 },
      );
      const final = await call("GET", groupPath);
      const dlq = await readWhole(deadLetterStream, "linearizable", (path) => call("GET", path));
      group = {
        deliveredThroughSeq: num(field(final, "nextSeq")) - 1,
        pendingSeqs: [...drained].sort((a, b) => a - b),
        deadLetters: dlq.map((m) => ({ dlqSeq: m.seq, originalSeq: Number(m.headers["cairn-dlq-seq"]) })),
      };
    }
    const copies = new Map<string, ReaderView[]>();
    for (let s = 0; s < this.#o.streams; s++) {
      const name = `s${s}`;
      const views: ReaderView[] = [];
      for (const url of urls) {
        const messages = await readWhole(name, "stale", (path) => localRead(url, path));
        views.push({ readerId: `${url}'s copy`, complete: true, entries: messages.map(entryOf) });
      }
      copies.set(name, views);
    }
    this.#final = { copies, group };
  }
}

/** A read of one node's local state: its answer (undefined for 404), or a thrown error. */
export async function localRead(url: string, path: string): Promise<unknown> {
  const outcome = await httpJson("GET", `${url}${path}`, { timeoutMs: 5_000 });
  if (outcome.kind === "answer" && outcome.status === 404) return undefined;
  if (outcome.kind !== "answer" || outcome.status !== 200) {
    throw new Error(`GET ${url}${path}: ${JSON.stringify(outcome)}`);
  }
  return outcome.body;
}

const num = (v: unknown): number => (typeof v === "number" ? v : Number.NaN);

/** Reads a whole stream page by page (a missing stream reads as empty). */
export async function readWhole(
  name: string,
  consistency: "stale" | "linearizable",
  get: (path: string) => Promise<unknown>,
): Promise<WireMessage[]> {
  const out: WireMessage[] = [];
  let from = 1;
  for (let page = 0; page < 10_000; page++) {
    const body = await get(`/v1/streams/${name}/messages?from=${from}&limit=1000&consistency=${consistency}`);
    if (body === undefined) return out;
    const messages = messagesOf(body);
    out.push(...messages);
    const next = num(field(body, "next"));
    if (messages.length === 0 || !(next > from)) return out;
    from = next;
  }
  return out;
}
