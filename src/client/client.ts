// The TypeScript client for Cairn's HTTP API: spreads requests over the cluster's endpoints, retries
// what is safe to retry (writes always carry an idempotency key, generated when the caller gives
// none, so a retry after an unknown outcome can never apply twice), and turns error bodies into
// CairnClientError with the server's stable code.
import { randomUUID } from "node:crypto";

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
}

/** A key as read. */
export interface KvItem {
  readonly key: string;
  readonly value: string;
  readonly encoding: "utf8" | "base64";
  readonly revision: number;
  readonly createRevision: number;
  readonly version: number;
  readonly expireAtMs?: number;
}

/** A successful write. */
export interface WriteAck {
  readonly revision: number;
  readonly duplicate: boolean;
}

/** Codes after which the same request may be sent again (with its idempotency key). */
const retryableCodes = new Set([
  "ERR_UNAVAILABLE",
  "ERR_TIMEOUT",
  "ERR_NOT_LEADER",
  "ERR_SHUTTING_DOWN",
  "ERR_STORAGE_FAILED",
]);

type Method = "GET" | "PUT" | "PATCH" | "DELETE" | "POST";

/** A Cairn client. Cheap to create; holds no connections of its own beyond fetch's pool. */
export class CairnClient {
  readonly #endpoints: readonly string[];
  readonly #requestTimeoutMs: number;
  readonly #retryBudgetMs: number;
  #preferred = 0;

  /** Creates a client for the given endpoints. */
  constructor(options: CairnClientOptions) {
    if (options.endpoints.length === 0) throw new CairnClientError("ERR_BAD_REQUEST", "no endpoints given");
    this.#endpoints = options.endpoints.map((e) => e.replace(/\/+$/, ""));
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.#retryBudgetMs = options.retryBudgetMs ?? 15_000;
  }

  /** Reads a key; undefined when it does not exist. */
  async get(
    key: string,
    options: { consistency?: "linearizable" | "stale" } = {},
  ): Promise<KvItem | undefined> {
    const query = options.consistency === "stale" ? "?consistency=stale" : "";
    try {
      return (await this.request("GET", `/v1/kv/${encodeKey(key)}${query}`)) as KvItem;
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
    const query = options.ifRevision !== undefined ? `?ifRevision=${options.ifRevision}` : "";
    return (await this.request(
      "DELETE",
      `/v1/kv/${encodeKey(key)}${query}`,
      undefined,
      options.idempotencyKey ?? randomUUID(),
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
    options: { prefix?: string; limit?: number; after?: string; consistency?: "linearizable" | "stale" } = {},
  ): Promise<{ items: KvItem[]; next: string | null }> {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(options))
      if (value !== undefined) params.set(name, String(value));
    return (await this.request("GET", `/v1/kv?${params.toString()}`)) as {
      items: KvItem[];
      next: string | null;
    };
  }

  /**
   * Sends one request, trying endpoints in turn: the one that last answered first. Retries
   * connection failures and retryable codes until the retry budget is spent, with backoff.
   */
  async request(method: Method, path: string, body?: unknown, idempotencyKey?: string): Promise<unknown> {
    const deadline = Date.now() + this.#retryBudgetMs;
    let lastError: CairnClientError | undefined;
    for (let attempt = 0; ; attempt++) {
      const index = (this.#preferred + attempt) % this.#endpoints.length;
      const endpoint = this.#endpoints[index] ?? "";
      try {
        const result = await this.#attempt(endpoint, method, path, body, idempotencyKey);
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
  ): Promise<unknown> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (idempotencyKey !== undefined) headers["idempotency-key"] = idempotencyKey;
    let response: Response;
    try {
      response = await fetch(`${endpoint}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.#requestTimeoutMs),
      });
    } catch (cause) {
      const timedOut = cause instanceof Error && cause.name === "TimeoutError";
      throw new CairnClientError(
        timedOut ? "ERR_TIMEOUT" : "ERR_UNAVAILABLE",
        timedOut ? `${endpoint} did not answer in ${this.#requestTimeoutMs} ms` : `cannot reach ${endpoint}`,
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
    throw new CairnClientError("ERR_INTERNAL", `${endpoint} answered ${response.status}`, response.status);
  }
}

function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}
