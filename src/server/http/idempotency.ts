// The Idempotency-Key header, read the same way by every write route (KV, streams, compatibility).
import { CairnError } from "../../service/index.js";

/** The request's Idempotency-Key header, if any; more than one is ERR_BAD_REQUEST. */
export function idempotencyKeyOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const value = headers["idempotency-key"];
  if (Array.isArray(value)) throw new CairnError("ERR_BAD_REQUEST", "send one Idempotency-Key header");
  return value;
}
