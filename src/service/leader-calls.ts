// What a follower asks of its leader over the peer link, and the leader's side of it. Every protocol
// gets "talk to any node" from here: a service on a follower validates and encodes the client's
// command as usual, then hands the encoded envelope to the leader, which stamps it with its own
// clock, proposes it and answers with the outcome. Membership changes and leadership transfers,
// which only the leader can carry out, travel the same way. One hop only: a leader that has since
// stepped down answers ERR_NOT_LEADER (with its own leader hint) rather than passing the call on.
import { ByteReader, ByteWriter, DecodeError } from "../util/index.js";
import { anonymous, decodePrincipal, encodePrincipal, type Principal } from "./auth/index.js";
import { type ApplyOutcome, bytesAsBase64, restoreBytes } from "./command.js";
import { CairnError, type ErrorCode, type ErrorDetails, isErrorCode } from "./errors.js";
import { type WriteConcern, writeConcerns } from "./replication.js";

/**
 * A request a follower sends its leader, with the principal its client authenticated as (the peer
 * link is mutual TLS between members, so the leader takes the follower's word for who it is and
 * checks that principal's permissions again, without any secret).
 */
export type LeaderCall = LeaderOp & { readonly principal: Principal };

/** What a follower asks its leader to do. */
export type LeaderOp =
  /**
   * Propose an encoded envelope; the leader replaces its timestamp with its own clock, and answers
   * once the write is durable as `writeConcern` asks.
   */
  | { readonly op: "propose"; readonly envelope: Uint8Array; readonly writeConcern: WriteConcern }
  | { readonly op: "join"; readonly name: string; readonly peerAddress: string }
  | { readonly op: "remove"; readonly id: number }
  | { readonly op: "transfer"; readonly to: number };

/** The leader's answer to a {@link LeaderCall}. */
export type LeaderAnswer =
  | {
      readonly ok: true;
      /** The leader's applied index when it answered: the follower waits to apply as far. */
      readonly appliedIndex: number;
      /** The call's result: an {@link ApplyOutcome} for a proposal, the operation's answer otherwise. */
      readonly value: unknown;
    }
  | {
      readonly ok: false;
      readonly code: ErrorCode;
      readonly message: string;
      readonly details: Readonly<Record<string, unknown>>;
    };

/** 2: a proposal carries its write concern; 3: every call carries its principal (2 reads as anonymous). */
const CALL_VERSION = 3;
const ops = ["propose", "join", "remove", "transfer"] as const;

/** Encodes a call for the peer link. */
export function encodeLeaderCall(call: LeaderCall): Uint8Array {
  const writer = new ByteWriter(32)
    .u8(CALL_VERSION)
    .u8(ops.indexOf(call.op))
    .string(encodePrincipal(call.principal));
  switch (call.op) {
    case "propose":
      return writer.u8(writeConcerns.indexOf(call.writeConcern)).bytes(call.envelope).finish();
    case "join":
      return writer.string(call.name).string(call.peerAddress).finish();
    case "remove":
      return writer.varint(call.id).finish();
    case "transfer":
      return writer.varint(call.to).finish();
  }
}

/** Decodes a call; throws DecodeError on malformed bytes. */
export function decodeLeaderCall(bytes: Uint8Array): LeaderCall {
  const r = new ByteReader(bytes);
  const version = r.u8();
  if (version !== 2 && version !== CALL_VERSION)
    throw new DecodeError(`unknown leader call version ${version}`);
  const op = ops[r.u8()];
  const principal = version === 2 ? anonymous : decodePrincipal(r.string(128));
  let call: LeaderCall;
  switch (op) {
    case "propose": {
      const writeConcern = writeConcerns[r.u8()];
      if (writeConcern === undefined) throw new DecodeError("unknown write concern");
      call = { op, writeConcern, envelope: r.bytes(), principal };
      break;
    }
    case "join":
      call = { op, name: r.string(256), peerAddress: r.string(256), principal };
      break;
    case "remove":
      call = { op, id: r.varint(), principal };
      break;
    case "transfer":
      call = { op, to: r.varint(), principal };
      break;
    default:
      throw new DecodeError("unknown leader call");
  }
  r.end();
  return call;
}

/** Encodes an answer for the peer link. Results are plain data (as the idempotency table keeps them). */
export function encodeLeaderAnswer(answer: LeaderAnswer): Uint8Array {
  if (answer.ok) {
    return new ByteWriter(64)
      .u8(1)
      .varint(answer.appliedIndex)
      .string(JSON.stringify(answer.value ?? null, bytesAsBase64))
      .finish();
  }
  return new ByteWriter(64)
    .u8(0)
    .string(answer.code)
    .string(answer.message)
    .string(JSON.stringify(answer.details))
    .finish();
}

/** Decodes an answer; throws DecodeError on malformed bytes. */
export function decodeLeaderAnswer(bytes: Uint8Array): LeaderAnswer {
  const r = new ByteReader(bytes);
  const ok = r.u8();
  let answer: LeaderAnswer;
  if (ok === 1) {
    answer = { ok: true, appliedIndex: r.varint(), value: parseJson(r.string()) };
  } else if (ok === 0) {
    const code = r.string(64);
    if (!isErrorCode(code)) throw new DecodeError(`unknown error code ${code}`);
    const message = r.string();
    const details = parseJson(r.string());
    if (typeof details !== "object" || details === null || Array.isArray(details))
      throw new DecodeError("error details are not an object");
    answer = { ok: false, code, message, details: details as Record<string, unknown> };
  } else {
    throw new DecodeError(`unknown answer kind ${ok}`);
  }
  r.end();
  return answer;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new DecodeError(`answer is not JSON: ${String(cause)}`);
  }
}

/** How one detail field is read back from a peer's answer. */
type FieldKind = "number" | "number-or-null" | "string" | "addresses" | "staleness";

/**
 * Every detail field of every code and how to read it: the compiler holds this table to
 * {@link ErrorDetails}, so a field added there must be added here. Other fields are dropped.
 */
const detailFields: { readonly [C in ErrorCode]: { readonly [K in keyof ErrorDetails[C]]-?: FieldKind } } = {
  ERR_BAD_REQUEST: {},
  ERR_UNAUTHENTICATED: { certificate: "string" },
  ERR_FORBIDDEN: { missing: "string", principal: "string", name: "string" },
  ERR_NOT_FOUND: { revision: "number", staleness: "staleness", firstSeq: "number", lastSeq: "number" },
  ERR_CONFLICT: { currentRevision: "number-or-null", currentLastSeq: "number" },
  ERR_NOT_INTEGER: {},
  ERR_WRONG_TYPE: {},
  ERR_IDEMPOTENCY_KEY_REUSED: {},
  ERR_TOO_LARGE: { limit: "number" },
  ERR_STREAM_FULL: {},
  ERR_LIMIT: {},
  ERR_BUSY: {},
  ERR_RATE_LIMITED: { retryAfterMs: "number" },
  ERR_NOT_LEADER: { leaderId: "number", leader: "addresses" },
  ERR_UNAVAILABLE: { leaderId: "number", leader: "addresses" },
  ERR_TIMEOUT: {},
  ERR_WRITE_CONCERN: { votersWithEntry: "number", voters: "number" },
  ERR_NO_SPACE: {},
  ERR_STORAGE_FAILED: {},
  ERR_STATE_CORRUPT: {},
  ERR_SHUTTING_DOWN: {},
  ERR_INTERNAL: {},
};

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readField(kind: FieldKind, value: unknown): unknown {
  switch (kind) {
    case "number":
      return typeof value === "number" ? value : undefined;
    case "string":
      return typeof value === "string" ? value : undefined;
    case "number-or-null":
      return typeof value === "number" || value === null ? value : undefined;
    case "addresses":
      if (!isRecord(value)) return undefined;
      return Object.fromEntries(
        ["http", "redis", "text", "grpc"].flatMap((p) =>
          typeof value[p] === "string" ? [[p, value[p]]] : [],
        ),
      );
    case "staleness":
      if (!isRecord(value) || typeof value["appliedIndex"] !== "number") return undefined;
      return {
        appliedIndex: value["appliedIndex"],
        leaderContactAgeMs:
          typeof value["leaderContactAgeMs"] === "number" ? value["leaderContactAgeMs"] : null,
      };
  }
}

/** The details a peer sent for `code`, keeping only the fields that code has, of the right type. */
function readDetails<C extends ErrorCode>(code: C, raw: Readonly<Record<string, unknown>>): ErrorDetails[C] {
  const fields: Readonly<Record<string, FieldKind>> = detailFields[code];
  const out: Record<string, unknown> = {};
  for (const [name, kind] of Object.entries(fields)) {
    const value = readField(kind, raw[name]);
    if (value !== undefined) out[name] = value;
  }
  // Checked field by field against the table the compiler ties to ErrorDetails[C].
  return out as ErrorDetails[C];
}

/** The error an answer carries, as the follower's service throws it. */
export function answerError(answer: Extract<LeaderAnswer, { ok: false }>): CairnError {
  return new CairnError(answer.code, answer.message, readDetails(answer.code, answer.details));
}

/** The answer that reports `error` (a CairnError keeps its code and details). */
export function errorAnswer(error: CairnError): LeaderAnswer {
  return { ok: false, code: error.code, message: error.message, details: error.details };
}

/** The outcome of a forwarded proposal, checked for shape at the trust boundary. */
export function proposalOutcome(value: unknown): ApplyOutcome {
  if (typeof value !== "object" || value === null || !("ok" in value) || typeof value.ok !== "boolean")
    throw new CairnError("ERR_INTERNAL", "the leader answered a proposal without an outcome");
  // Both sides run the same code; the outcome is the leader's own, sent back as plain data with
  // its bytes (a value read or replaced) as base64.
  return restoreBytes(value) as ApplyOutcome;
}
