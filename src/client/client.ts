// The TypeScript client for Cairn's HTTP API: spreads requests over the cluster's endpoints, retries
// what is safe to retry (writes always carry an idempotency key, generated when the caller gives
// none, so a retry after an unknown outcome can never apply twice), and turns error bodies into
// CairnClientError with the server's stable code.
import type * as Api from "../api/index.js";

/**
 * A query string (with its "?") from a route's query type (src/api), leaving out the fields not
 * given; "" when none is.
 */
function queryOf(query: object): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, String(value));
  const text = params.toString();
  return text === "" ? "" : `?${text}`;
}

/** A fresh idempotency key (Web Crypto: the same in Node.js and in the dashboard's browser). */
function randomUUID(): string {
  return globalThis.crypto.randomUUID();
}

/** A failure reported by the server (its stable code) or by the client (ERR_UNAVAILABLE, ERR_TIMEOUT). */
export class CairnClientError extends Error {
  override readonly name = "CairnClientError";
  readonly code: string;
  readonly status: number | undefined;
  readonly details: Readonly<Record<string, unknown>>;

  /** Creates an error from a code, message, HTTP status (if any) and the body's other fields. */
  constructor(
    code: string,
    message: string,
    status?: number,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

/** Client settings. */
export interface CairnClientOptions {
  /** Base URLs of any nodes, e.g. ["http://127.0.0.1:8081"]; followers forward to the leader. */
  readonly endpoints: readonly string[];
  /** Per-attempt timeout. Default 5,000 ms. */
  readonly requestTimeoutMs?: number;
  /** Total time a call may spend retrying. Default 15,000 ms. */
  readonly retryBudgetMs?: number;
  /** A token (docs/security.md), sent as `Authorization: Bearer` on every request. */
  readonly token?: string;
  /**
   * "all": every write is acknowledged only once every voting member has it on disk (header
   * Cairn-Write-Concern), or fails with ERR_WRITE_CONCERN (committed on a majority; not retried).
   * Default "majority".
   */
  readonly writeConcern?: "majority" | "all";
}

/** A key as read. */
export type KvItem = Api.KvItem;

/** A successful write. */
export type WriteAck = Api.KvWriteAck;

/** Stream settings (the body of a create, less the name). */
export type StreamOptions = Api.StreamUpdateBody;

/** A stream as described by the server. */
export type StreamInfo = Api.StreamInfo;

/** A message as read or fetched. */
export type StreamMessageItem = Api.StreamMessage;

/** The answer to an append. */
export type AppendAck = Api.AppendAck;
/** The answer to a batch append: one item per message (an ack, or `{error}`), in order. */
export type AppendBatchAck = Api.AppendBatchAck;
/** One message of a batch append. */
export interface BatchMessage {
  readonly payload: string | Uint8Array;
  readonly headers?: Record<string, string>;
  readonly key?: string;
  /** Deduplicated within the stream's window, within the batch too. */
  readonly id?: string;
  readonly expectedLastSeq?: number;
}

/** A page of messages. */
export type MessagePage = Api.MessagePage;

/** Consumer group settings (the body of a create, less the group's name). */
export type GroupOptions = Omit<Api.GroupBody, "group">;

/** A consumer group as described by the server. */
export type GroupInfo = Api.GroupInfo;

/** What {@link CairnClient.tail} reports about its connection. */
export type TailEvent =
  | { readonly kind: "lost"; readonly endpoint: string; readonly reason: string }
  | { readonly kind: "reconnected"; readonly endpoint: string; readonly from: number };

/** Codes after which the same request may be sent again (with its idempotency key). */
const retryableCodes = new Set([
  "ERR_UNAVAILABLE",
  "ERR_TIMEOUT",
  "ERR_NOT_LEADER",
  "ERR_SHUTTING_DOWN",
  "ERR_STORAGE_FAILED",
  "ERR_STATE_CORRUPT",
]);

type Method = "GET" | "PUT" | "PATCH" | "DELETE" | "POST";

/** A Cairn client. Cheap to create; holds no connections of its own beyond fetch's pool. */
export class CairnClient {
  readonly #endpoints: readonly string[];
  readonly #requestTimeoutMs: number;
  readonly #token: string | undefined;
  readonly #retryBudgetMs: number;
  readonly #writeConcern: "majority" | "all";
  #preferred = 0;

  /** Creates a client for the given endpoints. */
  constructor(options: CairnClientOptions) {
    if (options.endpoints.length === 0) throw new CairnClientError("ERR_BAD_REQUEST", "no endpoints given");
    this.#endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ""));
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.#token = options.token;
    this.#retryBudgetMs = options.retryBudgetMs ?? 15_000;
    this.#writeConcern = options.writeConcern ?? "majority";
  }

  /** Reads a key; undefined when it does not exist. */
  async get(key: string, options: Api.ConsistencyQuery = {}): Promise<KvItem | undefined> {
    try {
      return (await this.request("GET", `/v1/kv/${encodeKey(key)}${queryOf(options)}`)) as KvItem;
    } catch (error) {
      if (error instanceof CairnClientError && error.code === "ERR_NOT_FOUND") return undefined;
      throw error;
    }
  }

  /** Writes a key. Conditions: ifRevision, ifAbsent; ttlMs expires it. */
  async put(
    key: string,
    value: string | Uint8Array,
    options: { ifRevision?: number; ifAbsent?: boolean; ttlMs?: number; idempotencyKey?: string } = {},
  ): Promise<WriteAck & { created: boolean }> {
    const { idempotencyKey, ...conditions } = options;
    const body =
      typeof value === "string"
        ? { value, ...conditions }
        : { value: Buffer.from(value).toString("base64"), encoding: "base64", ...conditions };
    return (await this.request(
      "PUT",
      `/v1/kv/${encodeKey(key)}`,
      body,
      idempotencyKey ?? randomUUID(),
    )) as WriteAck & {
      created: boolean;
    };
  }

  /** Deletes a key; `deleted` says whether it existed. */
  async delete(
    key: string,
    options: { ifRevision?: number; idempotencyKey?: string } = {},
  ): Promise<WriteAck & { deleted: boolean }> {
    const { idempotencyKey, ...query } = options;
    return (await this.request(
      "DELETE",
      `/v1/kv/${encodeKey(key)}${queryOf(query satisfies Api.KvDeleteQuery)}`,
      undefined,
      idempotencyKey ?? randomUUID(),
    )) as WriteAck & { deleted: boolean };
  }

  /** Adds `by` to the integer at `key`; returns the new value as a decimal string. */
  async increment(
    key: string,
    by: number | bigint = 1,
    options: { idempotencyKey?: string } = {},
  ): Promise<WriteAck & { value: string }> {
    return (await this.request(
      "PATCH",
      `/v1/kv/${encodeKey(key)}`,
      { increment: by.toString() },
      options.idempotencyKey ?? randomUUID(),
    )) as WriteAck & { value: string };
  }

  /** Lists one page of keys under a prefix; pass the returned `next` as `after` for the next page. */
  async list(
    options: Pick<Api.KvListQuery, "prefix" | "start" | "end" | "limit" | "after" | "consistency"> = {},
  ): Promise<Api.KvPage> {
    return (await this.request("GET", `/v1/kv${queryOf(options)}`)) as Api.KvPage;
  }

  /** Creates a stream (a no-op answering `created: false` if it exists with the same settings). */
  async createStream(
    name: string,
    options: StreamOptions = {},
  ): Promise<{ created: boolean; stream: StreamInfo }> {
    return (await this.request("POST", "/v1/streams", { name, ...options }, randomUUID())) as {
      created: boolean;
      stream: StreamInfo;
    };
  }

  /** Changes some of a stream's settings; a lowered limit drops the oldest messages over it. */
  async updateStream(
    name: string,
    changes: StreamOptions,
  ): Promise<{ updated: boolean; stream: StreamInfo }> {
    return (await this.request(
      "PATCH",
      `/v1/streams/${encodeURIComponent(name)}`,
      changes,
      randomUUID(),
    )) as { updated: boolean; stream: StreamInfo };
  }

  /** Lists streams. */
  async listStreams(): Promise<StreamInfo[]> {
    return [...((await this.request("GET", "/v1/streams")) as Api.StreamList).streams];
  }

  /** Describes a stream; undefined when it does not exist. */
  async streamInfo(name: string): Promise<StreamInfo | undefined> {
    try {
      return (await this.request("GET", `/v1/streams/${encodeURIComponent(name)}`)) as StreamInfo;
    } catch (error) {
      if (error instanceof CairnClientError && error.code === "ERR_NOT_FOUND") return undefined;
      throw error;
    }
  }

  /** Deletes a stream and its groups. */
  async deleteStream(name: string): Promise<{ deleted: boolean }> {
    return (await this.request(
      "DELETE",
      `/v1/streams/${encodeURIComponent(name)}`,
      undefined,
      randomUUID(),
    )) as {
      deleted: boolean;
    };
  }

  /**
   * Appends a message. Give `id` to make retries safe across calls (the stream deduplicates it);
   * retries within this call carry one idempotency key either way.
   */
  async append(
    stream: string,
    payload: string | Uint8Array,
    options: {
      headers?: Record<string, string>;
      key?: string;
      id?: string;
      expectedLastSeq?: number;
      idempotencyKey?: string;
    } = {},
  ): Promise<AppendAck> {
    const { idempotencyKey, ...rest } = options;
    const body =
      typeof payload === "string"
        ? { payload, ...rest }
        : { payload: Buffer.from(payload).toString("base64"), encoding: "base64", ...rest };
    return (await this.request(
      "POST",
      `/v1/streams/${encodeURIComponent(stream)}/messages`,
      body,
      idempotencyKey ?? randomUUID(),
    )) as AppendAck;
  }

  /**
   * Appends messages with one request and one replicated write: one result per message, in order
   * (its ack, or the error that refused it). `atomic`: all or none (one refusal throws its error).
   * Retries within this call carry one idempotency key; give messages ids to make retries safe
   * across calls. The node bounds a batch (1,000 messages, 1 MiB by default: ERR_TOO_LARGE).
   */
  async appendBatch(
    stream: string,
    messages: readonly BatchMessage[],
    options: { atomic?: boolean; idempotencyKey?: string } = {},
  ): Promise<AppendBatchAck> {
    const body = messages.map(({ payload, ...rest }) =>
      typeof payload === "string"
        ? { payload, ...rest }
        : { payload: Buffer.from(payload).toString("base64"), encoding: "base64", ...rest },
    );
    return (await this.request(
      "POST",
      `/v1/streams/${encodeURIComponent(stream)}/messages${options.atomic === true ? "?atomic=true" : ""}`,
      body,
      options.idempotencyKey ?? randomUUID(),
    )) as AppendBatchAck;
  }

  /** Reads a page of messages; with `waitMs`, waits for one when there is none yet. */
  async read(stream: string, options: Api.StreamReadQuery = {}): Promise<MessagePage> {
    return (await this.request(
      "GET",
      `/v1/streams/${encodeURIComponent(stream)}/messages${queryOf(options)}`,
      undefined,
      undefined,
      (options.waitMs ?? 0) + this.#requestTimeoutMs,
    )) as MessagePage;
  }

  /**
   * Follows a stream from `from` (default: only new messages), yielding each message once, in
   * order. When a node goes away it moves to the next endpoint and resumes where it stopped,
   * telling `onConnection` about the loss and the reconnection. Ends when `signal` aborts.
   */
  async *tail(
    stream: string,
    options: {
      from?: number;
      waitMs?: number;
      signal?: AbortSignal;
      onConnection?: (event: TailEvent) => void;
    } = {},
  ): AsyncGenerator<StreamMessageItem> {
    const waitMs = options.waitMs ?? 10_000;
    let from = options.from;
    let index = this.#preferred;
    let lostAt: string | undefined;
    // A function, not a property read: the signal changes under the loop's feet.
    const stopped = () => options.signal?.aborted === true;
    for (let attempt = 0; !stopped(); ) {
      const endpoint = this.#endpoints[index % this.#endpoints.length] ?? "";
      try {
        if (from === undefined) {
          const info = (await this.#attempt(
            endpoint,
            "GET",
            `/v1/streams/${encodeURIComponent(stream)}`,
            undefined,
            undefined,
          )) as StreamInfo;
          from = info.lastSeq + 1;
        }
        const query: Api.StreamReadQuery = { from, waitMs };
        const page = (await this.#attempt(
          endpoint,
          "GET",
          `/v1/streams/${encodeURIComponent(stream)}/messages${queryOf(query)}`,
          undefined,
          undefined,
          waitMs + this.#requestTimeoutMs,
          options.signal,
        )) as MessagePage;
        if (lostAt !== undefined) {
          options.onConnection?.({ kind: "reconnected", endpoint, from });
          lostAt = undefined;
        }
        attempt = 0;
        this.#preferred = index % this.#endpoints.length;
        for (const message of page.messages) yield message;
        from = page.next;
      } catch (error) {
        if (stopped()) return;
        if (!(error instanceof CairnClientError) || !retryableCodes.has(error.code)) throw error;
        if (lostAt === undefined) {
          options.onConnection?.({ kind: "lost", endpoint, reason: `${error.code}: ${error.message}` });
          lostAt = endpoint;
        }
        index++;
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 25 * 2 ** Math.min(attempt++, 6))));
      }
    }
  }

  /** Creates a consumer group. `startAt`: "first" (default), "last", "new", {seq} or {timeMs}. */
  async createGroup(
    stream: string,
    group: string,
    options: GroupOptions = {},
  ): Promise<{ created: boolean; group: GroupInfo }> {
    return (await this.request(
      "POST",
      `/v1/streams/${encodeURIComponent(stream)}/groups`,
      { group, ...options },
      randomUUID(),
    )) as { created: boolean; group: GroupInfo };
  }

  /** Changes a group's ack wait, delivery limit or in-flight limit. */
  async updateGroup(
    stream: string,
    group: string,
    changes: Api.GroupUpdateBody,
  ): Promise<{ updated: boolean; group: GroupInfo }> {
    return (await this.request(
      "PATCH",
      `/v1/streams/${encodeURIComponent(stream)}/groups/${encodeURIComponent(group)}`,
      changes,
      randomUUID(),
    )) as { updated: boolean; group: GroupInfo };
  }

  /** Describes a consumer group. */
  async groupInfo(stream: string, group: string): Promise<GroupInfo> {
    return (await this.request(
      "GET",
      `/v1/streams/${encodeURIComponent(stream)}/groups/${encodeURIComponent(group)}`,
    )) as GroupInfo;
  }

  /**
   * Fetches up to `max` messages for `consumer`, waiting up to `waitMs` for some. Retrying a fetch
   * whose answer was lost is safe: its messages are redelivered once their ack wait ends.
   */
  async fetchMessages(
    stream: string,
    group: string,
    consumer: string,
    options: Omit<Api.FetchBody, "consumer"> = {},
  ): Promise<StreamMessageItem[]> {
    return (await this.fetchAndAck(stream, group, consumer, options)).messages;
  }

  /**
   * Fetches as {@link fetchMessages} does and answers the whole reply; `ack` acknowledges those
   * sequences (a previous batch) in the same replicated entry as the fetch, and `acked` says how.
   */
  async fetchAndAck(
    stream: string,
    group: string,
    consumer: string,
    options: Omit<Api.FetchBody, "consumer"> = {},
  ): Promise<Api.FetchAnswer> {
    const waitMs = options.waitMs ?? 0;
    return (await this.request(
      "POST",
      `/v1/streams/${encodeURIComponent(stream)}/groups/${encodeURIComponent(group)}/fetch`,
      {
        consumer,
        max: options.max ?? 1,
        waitMs,
        ...(options.ack !== undefined && options.ack.length > 0 ? { ack: options.ack } : {}),
      },
      randomUUID(),
      waitMs + this.#requestTimeoutMs,
    )) as Api.FetchAnswer;
  }

  /**
   * A consumer loop: fetches batches of up to `max` (waiting up to `waitMs`, default 1,000, for
   * each) and hands each to `handle`; once `handle` resolves, the batch is acknowledged with the
   * next fetch (one replicated write per round), and the last one on its own when `signal` stops
   * the loop. When `handle` throws, the loop stops with its error and leaves that batch
   * unacknowledged: it is delivered again after the group's ack wait. Answers how many messages
   * `handle` took (and the loop acknowledged).
   */
  async consume(
    stream: string,
    group: string,
    consumer: string,
    handle: (messages: readonly StreamMessageItem[]) => Promise<void> | void,
    options: { readonly max?: number; readonly waitMs?: number; readonly signal?: AbortSignal } = {},
  ): Promise<number> {
    const { max = 100, waitMs = 1000, signal } = options;
    let handled: number[] = [];
    let taken = 0;
    while (signal?.aborted !== true) {
      const answer = await this.fetchAndAck(stream, group, consumer, { max, waitMs, ack: handled });
      handled = [];
      if (answer.messages.length === 0) continue;
      await handle(answer.messages);
      handled = answer.messages.map((m) => m.seq);
      taken += handled.length;
    }
    if (handled.length > 0) await this.ack(stream, group, handled);
    return taken;
  }

  /** Acknowledges, nacks (optionally delaying redelivery), extends or terminates messages. */
  async settle(
    stream: string,
    group: string,
    action: "ack" | "nack" | "extend" | "term",
    seqs: readonly number[],
    options: Omit<Api.SettleBody, "seqs"> = {},
  ): Promise<{ settled: number[]; notPending: number[] }> {
    return (await this.request(
      "POST",
      `/v1/streams/${encodeURIComponent(stream)}/groups/${encodeURIComponent(group)}/${action}`,
      { seqs, ...(options.delayMs !== undefined ? { delayMs: options.delayMs } : {}) },
      randomUUID(),
    )) as { settled: number[]; notPending: number[] };
  }

  /** Acknowledges messages. */
  async ack(
    stream: string,
    group: string,
    seqs: readonly number[],
  ): Promise<{ settled: number[]; notPending: number[] }> {
    return this.settle(stream, group, "ack", seqs);
  }

  /**
   * Sends one request, trying endpoints in turn: the one that last answered first. Retries
   * connection failures and retryable codes until the retry budget is spent, with backoff.
   */
  async request(
    method: Method,
    path: string,
    body?: unknown,
    idempotencyKey?: string,
    timeoutMs?: number,
  ): Promise<unknown> {
    const deadline = Date.now() + this.#retryBudgetMs;
    let lastError: CairnClientError | undefined;
    for (let attempt = 0; ; attempt++) {
      const index = (this.#preferred + attempt) % this.#endpoints.length;
      const endpoint = this.#endpoints[index] ?? "";
      try {
        const result = await this.#attempt(endpoint, method, path, body, idempotencyKey, timeoutMs);
        this.#preferred = index;
        return result;
      } catch (error) {
        if (!(error instanceof CairnClientError) || !retryableCodes.has(error.code)) throw error;
        // A read, or a write with an idempotency key, can be resent without risk of applying twice.
        if (method !== "GET" && idempotencyKey === undefined) throw error;
        lastError = error;
      }
      const backoffMs = Math.min(1000, 25 * 2 ** Math.min(attempt, 6));
      if (Date.now() + backoffMs >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
    }
    throw lastError ?? new CairnClientError("ERR_UNAVAILABLE", "no endpoint answered");
  }

  async #attempt(
    endpoint: string,
    method: Method,
    path: string,
    body: unknown,
    idempotencyKey: string | undefined,
    timeoutMs = this.#requestTimeoutMs,
    cancel?: AbortSignal,
  ): Promise<unknown> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;
    if (this.#token !== undefined) headers["authorization"] = `Bearer ${this.#token}`;
    if (method !== "GET" && this.#writeConcern === "all") headers["cairn-write-concern"] = "all";
    let response: Response;
    try {
      response = await fetch(`${endpoint}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal:
          cancel === undefined
            ? AbortSignal.timeout(timeoutMs)
            : AbortSignal.any([AbortSignal.timeout(timeoutMs), cancel]),
      });
    } catch (cause) {
      const timedOut = cause instanceof Error && cause.name === "TimeoutError";
      throw new CairnClientError(
        timedOut ? "ERR_TIMEOUT" : "ERR_UNAVAILABLE",
        timedOut ? `${endpoint} did not answer in ${timeoutMs} ms` : `cannot reach ${endpoint}`,
        undefined,
        {},
        { cause },
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? {} : JSON.parse(text);
    } catch (cause) {
      throw new CairnClientError(
        "ERR_INTERNAL",
        `${endpoint} answered with invalid JSON`,
        response.status,
        {},
        { cause },
      );
    }
    if (response.ok) return parsed;
    const error =
      typeof parsed === "object" && parsed !== null && "error" in parsed ? parsed.error : undefined;
    if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string") {
      const { code, message, ...details } = error as Record<string, unknown>;
      throw new CairnClientError(String(code), String(message), response.status, details);
    }
    // A 503 that is not Cairn's (a node closing, a proxy in front of it) served nothing: try another.
    if (response.status === 503) {
      throw new CairnClientError("ERR_UNAVAILABLE", `${endpoint} is unavailable (503)`, response.status);
    }
    throw new CairnClientError("ERR_INTERNAL", `${endpoint} answered ${response.status}`, response.status);
  }
}

function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}
