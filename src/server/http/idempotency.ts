// The headers every write route reads the same way (KV, streams, compatibility): Idempotency-Key
// and Cairn-Write-Concern.
import { CairnError, type WriteConcern, writeConcerns } from "../../service/index.js";

type Headers = Record<string, string | string[] | undefined>;

/** The request's Idempotency-Key header, if any; more than one is ERR_BAD_REQUEST. */
export function idempotencyKeyOf(headers: Headers): string | undefined {
  const value = headers["idempotency-key"];
  if (Array.isArray(value)) throw new CairnError("ERR_BAD_REQUEST", "send one Idempotency-Key header");
  return value;
}

/**
 * The request's Cairn-Write-Concern header: `majority` (also when absent) or `all` (acknowledged
 * once every voting member has the write on disk). Anything else, or more than one, is
 * ERR_BAD_REQUEST.
 */
export function writeConcernOf(headers: Headers): WriteConcern {
  const value = headers["cairn-write-concern"];
  if (value === undefined) return "majority";
  const concern = writeConcerns.find((c) => c === value);
  if (concern === undefined) {
    throw new CairnError(
      "ERR_BAD_REQUEST",
      `Cairn-Write-Concern must be one of ${writeConcerns.join(", ")}, not ${JSON.stringify(value)}`,
    );
  }
  return concern;
}
