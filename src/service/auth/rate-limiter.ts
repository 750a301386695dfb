// Rate limits, one limiter for every protocol of a node: a token bucket per token or bound
// certificate name (its role's rate, replicated with the role) and, for clients without a token, per remote address (a node
// setting). Each protocol asks it once per request, command or line before doing the work, so a
// client's share is the same whichever protocol it uses, and one client over its rate does not
// slow another. Buckets live on the node that serves the client: a client spread over N nodes gets
// up to N times its rate (docs/security.md).
import { LruMap } from "toad-cache";
import { CairnError } from "../errors.js";
import type { StateReader } from "../state.js";
import type { RateLimit } from "./auth-command.js";
import { getCertBinding, getRoleRate, getToken } from "./auth-state-machine.js";
import type { Principal } from "./principal.js";

/** What a {@link RateLimiter} reads. */
export interface RateLimiterOptions {
  /** The node's committed state: tokens, their roles and the roles' rates. */
  readonly state: StateReader;
  /** A monotonic clock in milliseconds. */
  readonly nowMs: () => number;
  /** The rate of each remote address without a token; absent or 0 requests per second: none. */
  readonly perAddress?: RateLimit;
  /** Buckets kept at most; past it the least recently used goes (it comes back full). */
  readonly bucketsMax?: number;
}

interface Bucket {
  /** Requests the bucket holds now; fractional while refilling. */
  tokens: number;
  lastMs: number;
}

/** Counts of what the limiter refused, for /metrics. */
export interface RateLimitCounts {
  refused: number;
}

/** Token buckets keyed by token id or remote address. */
export class RateLimiter {
  readonly #o: RateLimiterOptions;
  /**
   * Key -> bucket; past `bucketsMax` the least recently used goes. toad-cache's LruMap rather than
   * a Map dropping its first key: that costs a walk past every slot deleted before it (see
   * store-backend.ts), on every new address once full. Least recently used, so a busy client's
   * bucket is not the one dropped.
   */
  readonly #buckets: LruMap<Bucket>;
  readonly counts: RateLimitCounts = { refused: 0 };

  /** Creates a limiter. */
  constructor(options: RateLimiterOptions) {
    this.#o = options;
    this.#buckets = new LruMap(Math.max(1, options.bucketsMax ?? 100_000));
  }

  /**
   * Takes one request from the bucket of `principal` (a token's), or of `address` for a client
   * without a token; throws ERR_RATE_LIMITED with `retryAfterMs` when the bucket is empty.
   */
  admit(principal: Principal, address: string): void {
    const limited = this.#limitOf(principal, address);
    if (limited === undefined) return;
    const { key, rate } = limited;
    const now = this.#o.nowMs();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: rate.burst, lastMs: now };
      this.#buckets.set(key, bucket);
    }
    const elapsedMs = Math.max(0, now - bucket.lastMs);
    bucket.tokens = Math.min(rate.burst, bucket.tokens + (elapsedMs * rate.requestsPerSecond) / 1000);
    bucket.lastMs = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    this.counts.refused++;
    const retryAfterMs = Math.max(1, Math.ceil(((1 - bucket.tokens) * 1000) / rate.requestsPerSecond));
    throw new CairnError(
      "ERR_RATE_LIMITED",
      `rate limit of ${rate.requestsPerSecond} requests/s (burst ${rate.burst}) reached for ${key.startsWith("token:") ? "this token" : key.startsWith("cert:") ? "this certificate" : "this address"}`,
      { retryAfterMs },
    );
  }

  #limitOf(principal: Principal, address: string): { key: string; rate: RateLimit } | undefined {
    switch (principal.kind) {
      case "system":
        return undefined;
      case "anonymous": {
        const rate = this.#o.perAddress;
        return rate === undefined || rate.requestsPerSecond === 0
          ? undefined
          : { key: `addr:${address}`, rate };
      }
      case "token": {
        const token = getToken(this.#o.state, principal.tokenId);
        const rate = token === undefined ? undefined : getRoleRate(this.#o.state, token.role);
        return rate === undefined ? undefined : { key: `token:${principal.tokenId}`, rate };
      }
      case "certificate": {
        // A bound name is limited by its role's rate, as a token is; unbound, it can do nothing.
        const binding = getCertBinding(this.#o.state, principal.name);
        const rate = binding === undefined ? undefined : getRoleRate(this.#o.state, binding.role);
        return rate === undefined ? undefined : { key: `cert:${principal.name}`, rate };
      }
    }
  }
}
