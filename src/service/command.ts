// The envelope every client write travels in through the Raft log: the leader's timestamp (the only
// clock the state machines use), an optional idempotency key, and the command itself. Applying an
// envelope is deterministic, so every replica computes the same result for the same entry.
import { ByteReader, ByteWriter, crc32, DecodeError } from "../util/index.js";
import {
  type AuthCommand,
  type AuthResult,
  applyAuth,
  authNeeds,
  decodeAuthCommand,
  encodeAuthCommand,
  kvNeeds,
  type Need,
  streamNeeds,
} from "./auth/index.js";
import {
  applyMemberCommand,
  decodeMemberCommand,
  encodeMemberCommand,
  type MemberCommand,
  type MemberResult,
} from "./cluster/members.js";
import { isErrorCode } from "./errors.js";
import {
  applyKv,
  decodeKvCommand,
  encodeKvCommand,
  type KvCommand,
  type KvResult,
  type StepResult,
} from "./kv/index.js";
import type { StateReader, StateWriter } from "./state.js";
import {
  applyStream,
  type Delivery,
  decodeStreamCommand,
  encodeStreamCommand,
  type StreamCommand,
  type StreamResult,
  streamResultIsRemembered,
} from "./streams/index.js";

/** A command of any service. */
export type Command =
  | { readonly service: "kv"; readonly command: KvCommand }
  | { readonly service: "members"; readonly command: MemberCommand }
  | { readonly service: "streams"; readonly command: StreamCommand }
  | { readonly service: "auth"; readonly command: AuthCommand };

/**
 * The result of applying a {@link Command}, tagged with the command's kind (`<service>.<type>`),
 * whether it succeeded or was refused.
 */
export type CommandResult = KvResult | MemberResult | StreamResult | AuthResult;

/** The kind of a command and of its result: `<service>.<type>`, as `kv.put` or `streams.append`. */
export type CommandKind = KindOf<Command>;

/** The kind of commands `C`. */
type KindOf<C extends Command> = C extends {
  readonly service: infer S extends string;
  readonly command: { readonly type: infer T extends string };
}
  ? `${S}.${T}`
  : never;

/** The result type of commands `C`: what proposing one of them answers. */
export type ResultOf<C extends Command> = Extract<CommandResult, { readonly kind: KindOf<C> }>;

/** Compiles only while every kind of command has a result type of that kind. */
type EveryCommandAnswered<T extends true> = T;
export type CommandsAnswered = EveryCommandAnswered<
  [Exclude<CommandKind, CommandResult["kind"]>] extends [never] ? true : false
>;

/** The kind of `command`. */
export function commandKind(command: Command): CommandKind {
  switch (command.service) {
    case "kv":
      return `kv.${command.command.type}`;
    case "members":
      return `members.${command.command.type}`;
    case "streams":
      return `streams.${command.command.type}`;
    case "auth":
      return `auth.${command.command.type}`;
  }
}

/** What `command` needs of the principal that proposes it (src/service/auth/command-needs.ts). */
export function commandNeeds(command: Command): Need[] {
  switch (command.service) {
    case "kv":
      return kvNeeds(command.command);
    case "members":
      // Registered by the membership service itself, never proposed for a client.
      return [{ permission: "admin", resource: "cluster" }];
    case "streams":
      return streamNeeds(command.command);
    case "auth":
      return authNeeds(command.command);
  }
}

/**
 * Whether `result` answers `command`, judged by its kind tag: the tag, not the result's shape,
 * says which result it is.
 */
export function isResultOf<C extends Command>(command: C, result: CommandResult): result is ResultOf<C> {
  return result.kind === commandKind(command);
}

/** What a client write carries into the log. */
export interface Envelope {
  /** The proposing leader's clock, milliseconds since the epoch. */
  readonly tsMs: number;
  /** A client-chosen key: a retry with the same key and command gets the first result back. */
  readonly idempotencyKey?: string;
  readonly command: Command;
}

/** The outcome of applying an envelope. */
export type ApplyOutcome =
  | { readonly ok: true; readonly result: CommandResult; readonly duplicate: boolean }
  | {
      readonly ok: false;
      readonly code: "ERR_IDEMPOTENCY_KEY_REUSED";
      readonly message: string;
    };

/**
 * The outcomes of one Raft entry's commands, in the entry's order: one for an entry of one command
 * (version 1), one per command for an entry of several ({@link encodeEntryCommands}).
 */
export type EntryOutcome = readonly ApplyOutcome[];

/** Settings of the idempotency table; they must be equal on every replica. */
export interface IdempotencySettings {
  /** How long a key is remembered, by leader time. */
  readonly windowMs: number;
  /** Expired keys pruned per applied entry, so pruning work per entry stays bounded. */
  readonly prunePerEntryMax: number;
}

/** Defaults: keys are remembered for 2 minutes (as NATS JetStream's duplicate window), which bounds the table at high write rates. */
export const defaultIdempotencySettings: IdempotencySettings = {
  windowMs: 2 * 60_000,
  prunePerEntryMax: 64,
};

const ENVELOPE_VERSION = 1;
/** The first byte of an entry of several commands (an envelope's first byte is its version, 1). */
const ENTRY_BATCH_VERSION = 2;
const SERVICE_KV = 1;
const SERVICE_MEMBERS = 2;
const SERVICE_STREAMS = 3;
const SERVICE_AUTH = 4;
/** The longest idempotency key accepted, in bytes. */
export const idempotencyKeyBytesMax = 256;

/** Roughly how many bytes an envelope encodes to, so its writer seldom has to grow and copy. */
function sizeHint(envelope: Envelope): number {
  const c = envelope.command.command;
  let bytes = 64 + (envelope.idempotencyKey?.length ?? 0);
  if ("key" in c && c.key instanceof Uint8Array) bytes += c.key.length;
  if ("value" in c && c.value instanceof Uint8Array) bytes += c.value.length;
  if ("payload" in c && c.payload instanceof Uint8Array) bytes += c.payload.length;
  return bytes;
}

/** Encodes an envelope as the data of a Raft entry. */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  const writer = new ByteWriter(sizeHint(envelope))
    .u8(ENVELOPE_VERSION)
    .u64(envelope.tsMs)
    .string(envelope.idempotencyKey ?? "");
  switch (envelope.command.service) {
    case "kv":
      writer.u8(SERVICE_KV);
      encodeKvCommand(envelope.command.command, writer);
      break;
    case "members":
      writer.u8(SERVICE_MEMBERS);
      encodeMemberCommand(envelope.command.command, writer);
      break;
    case "streams":
      writer.u8(SERVICE_STREAMS);
      encodeStreamCommand(envelope.command.command, writer);
      break;
    case "auth":
      writer.u8(SERVICE_AUTH);
      encodeAuthCommand(envelope.command.command, writer);
      break;
  }
  return writer.finish();
}

/**
 * A copy of an encoded envelope with its timestamp replaced: the leader stamps a write handed to it
 * by a follower with its own clock. Throws DecodeError when `data` is not an envelope.
 */
export function restampEnvelope(data: Uint8Array, tsMs: number): Uint8Array {
  const header = new ByteReader(data);
  const version = header.u8();
  if (version !== ENVELOPE_VERSION) throw new DecodeError(`unknown envelope version ${version}`);
  header.u64();
  const stamp = new ByteWriter(9).u8(ENVELOPE_VERSION).u64(tsMs).finish();
  const out = data.slice();
  out.set(stamp, 0);
  return out;
}

/**
 * The data of a Raft entry carrying the encoded envelopes `envelopes` (each from
 * {@link encodeEnvelope}), applied in order, each with its own result. One envelope stays a plain
 * version-1 entry, which every release reads; several make a version-2 entry: the version byte, a
 * varint count, then each envelope with a varint length.
 */
export function encodeEntryCommands(envelopes: readonly Uint8Array[]): Uint8Array {
  const only = envelopes[0];
  if (envelopes.length === 1 && only !== undefined) return only;
  let bytes = 8;
  for (const e of envelopes) bytes += e.length + 4;
  const writer = new ByteWriter(bytes).u8(ENTRY_BATCH_VERSION).varint(envelopes.length);
  for (const e of envelopes) writer.bytes(e);
  return writer.finish();
}

/**
 * The envelopes of a Raft entry written by {@link encodeEntryCommands} (or by
 * {@link encodeEnvelope}: an entry of one command), in order. Throws DecodeError on malformed bytes
 * or an unknown version (an entry written by a newer release).
 */
export function decodeEntryCommands(data: Uint8Array): Envelope[] {
  if (data[0] !== ENTRY_BATCH_VERSION) return [decodeEnvelope(data)];
  const reader = new ByteReader(data);
  reader.u8();
  const count = reader.varint();
  // Every envelope takes at least two bytes, so a forged count cannot make this loop run long.
  if (count < 2 || count > reader.remaining / 2)
    throw new DecodeError(`an entry of ${count} commands in ${reader.remaining} bytes`);
  const envelopes: Envelope[] = [];
  for (let i = 0; i < count; i++) {
    const item = reader.bytes();
    if (item[0] === ENTRY_BATCH_VERSION) throw new DecodeError("an entry of commands nested in another");
    envelopes.push(decodeEnvelope(item));
  }
  reader.end();
  return envelopes;
}

/** Decodes an entry written by {@link encodeEnvelope}; throws DecodeError on malformed bytes. */
export function decodeEnvelope(data: Uint8Array): Envelope {
  const reader = new ByteReader(data);
  const version = reader.u8();
  if (version !== ENVELOPE_VERSION) throw new DecodeError(`unknown envelope version ${version}`);
  const tsMs = reader.u64();
  const idempotencyKey = reader.string(idempotencyKeyBytesMax);
  const service = reader.u8();
  let command: Command;
  if (service === SERVICE_KV) command = { service: "kv", command: decodeKvCommand(reader) };
  else if (service === SERVICE_MEMBERS)
    command = { service: "members", command: decodeMemberCommand(reader) };
  else if (service === SERVICE_STREAMS)
    command = { service: "streams", command: decodeStreamCommand(reader) };
  else if (service === SERVICE_AUTH) command = { service: "auth", command: decodeAuthCommand(reader) };
  else throw new DecodeError(`unknown service ${service}`);
  reader.end();
  return idempotencyKey === "" ? { tsMs, command } : { tsMs, idempotencyKey, command };
}

function commandDigest(data: Uint8Array): number {
  // The command is everything after the header; a reused key with other bytes is a client bug.
  return crc32(data);
}

// A remembered result is kept as JSON so that nodes of the previous release, which wrote untagged
// JSON results (stream results named their kind `op`), read it too and this release reads theirs:
// the result's kind comes from the retried command, whose digest matched the first one's.
function encodeStored(tsMs: number, digest: number, result: CommandResult): Uint8Array {
  return new ByteWriter(64).u64(tsMs).u32(digest).string(JSON.stringify(result, bytesAsBase64)).finish();
}

/**
 * A JSON.stringify replacer for results: JSON has no bytes, so a result's byte field is kept as
 * `{"base64": ...}` (in the idempotency table, and on the peer link); {@link restoreBytes} undoes it.
 */
export function bytesAsBase64(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { base64: Buffer.from(value).toString("base64") } : value;
}

/** How a remembered result's field is checked when it is read back. */
type FieldCodec =
  | "number"
  | "boolean"
  | "string"
  | "numbers"
  | "strings"
  | "deliveries"
  | "bytes-or-null"
  | "kv-results";

/** The codec a field of type `T` takes. */
type CodecOf<T> = T extends number
  ? "number"
  : T extends boolean
    ? "boolean"
    : T extends string
      ? "string"
      : T extends readonly number[]
        ? "numbers"
        : T extends readonly string[]
          ? "strings"
          : T extends readonly Delivery[]
            ? "deliveries"
            : T extends Uint8Array | null
              ? "bytes-or-null"
              : T extends readonly StepResult[]
                ? "kv-results"
                : never;

/** The fields of the successful result of kind `K`, beyond its tag. */
type SuccessFields<K extends CommandKind> = Omit<
  Extract<CommandResult, { readonly kind: K; ok: true }>,
  "kind" | "ok"
>;

/**
 * The fields of each successful result and how each is checked. Typed by the result types, so a
 * new command, or a new field of a result, does not compile until it is listed here.
 */
const successFields: {
  readonly [K in CommandKind]: { readonly [F in keyof SuccessFields<K>]-?: CodecOf<SuccessFields<K>[F]> };
} = {
  "kv.put": { revision: "number", created: "boolean" },
  "kv.delete": { deleted: "boolean", revision: "number" },
  "kv.increment": { value: "string", revision: "number" },
  "kv.expire": { expired: "number" },
  "kv.set-ttl": { changed: "boolean", revision: "number" },
  "kv.put-many": { written: "boolean", revision: "number" },
  "kv.set": { written: "boolean", old: "bytes-or-null", revision: "number" },
  "kv.update": { value: "bytes-or-null", length: "number", revision: "number" },
  "kv.copy": { done: "boolean", revision: "number" },
  "kv.flush": { removed: "number" },
  "kv.read": { value: "bytes-or-null", expireAtMs: "number", stream: "boolean" },
  "kv.transaction": { aborted: "boolean", results: "kv-results" },
  "members.register": {},
  "members.unregister": {},
  "streams.create": { created: "boolean" },
  "streams.delete": { deleted: "boolean" },
  "streams.update": { updated: "boolean" },
  "streams.message-delete": { deleted: "numbers" },
  "streams.append": { seq: "number", id: "string", duplicate: "boolean" },
  "streams.append-batch": { results: "kv-results" },
  "streams.group-create": { created: "boolean" },
  "streams.group-delete": { deleted: "boolean" },
  "streams.group-update": { updated: "boolean" },
  "streams.fetch": { messages: "deliveries" },
  "streams.settle": { settled: "numbers", notPending: "numbers" },
  "streams.sweep": { removed: "number" },
  "streams.claim": { claimed: "deliveries", deleted: "numbers", deletedIds: "strings", next: "number" },
  "streams.trim": { trimmed: "number", more: "boolean" },
  "streams.group-position": {},
  "streams.consumer-create": { created: "boolean" },
  "streams.consumer-delete": { pending: "number" },
  "streams.set-id": {},
  "auth.role-put": { created: "boolean" },
  "auth.role-delete": { deleted: "boolean" },
  "auth.token-create": { expiresAtMs: "number" },
  "auth.token-revoke": { revoked: "boolean" },
  "auth.enable": { expiresAtMs: "number" },
  "auth.disable": { disabled: "boolean" },
  "auth.role-rate": {},
  "auth.cert-bind": { created: "boolean" },
  "auth.cert-unbind": { unbound: "boolean" },
};

/** Detail fields a remembered refusal may carry (all numbers, or null for a missing key's revision). */
const detailFields = [
  "currentRevision",
  "currentLastSeq",
  "limit",
  "revision",
  "firstSeq",
  "lastSeq",
] as const;

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkField(value: unknown, codec: FieldCodec): boolean {
  switch (codec) {
    case "number":
      return typeof value === "number";
    case "boolean":
      return typeof value === "boolean";
    case "string":
      return typeof value === "string";
    case "numbers":
      return Array.isArray(value) && value.every((v) => typeof v === "number");
    case "strings":
      // Absent in what the previous release remembered (XAUTOCLAIM's deleted ids): read as none.
      return value === undefined || (Array.isArray(value) && value.every((v) => typeof v === "string"));
    case "bytes-or-null":
      return value === null || (isRecord(value) && typeof value["base64"] === "string");
    case "kv-results":
      return Array.isArray(value) && value.every((v) => isRecord(v) && typeof v["kind"] === "string");
    case "deliveries":
      return (
        Array.isArray(value) &&
        value.every((v) => isRecord(v) && typeof v["seq"] === "number" && typeof v["deliveries"] === "number")
      );
  }
}

/**
 * Reads back the result remembered for an idempotency key, checking every field against the result
 * type of `command`'s kind. Throws DecodeError when it does not match (corrupt state).
 */
export function decodeStoredResult<C extends Command>(command: C, text: string): ResultOf<C> {
  const kind = commandKind(command);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new DecodeError(`remembered result of ${kind} is not JSON`, { cause });
  }
  if (!isRecord(value) || typeof value["ok"] !== "boolean") {
    throw new DecodeError(`remembered result of ${kind} is not a result`);
  }
  if (value["kind"] !== undefined && value["kind"] !== kind) {
    throw new DecodeError(`remembered result of kind ${String(value["kind"])} answers a ${kind}`);
  }
  if (value["ok"] === false) {
    const { code, message } = value;
    if (!isErrorCode(code) || typeof message !== "string") {
      throw new DecodeError(`remembered refusal of ${kind} has no code or message`);
    }
    // The previous release kept a refusal's details beside its code; this one keeps them apart.
    const from = isRecord(value["details"]) ? value["details"] : value;
    const details: Record<string, number | null> = {};
    for (const field of detailFields) {
      const detail = from[field];
      if (typeof detail === "number" || detail === null) details[field] = detail;
    }
    // A decoder's cast: the code and each detail were checked above.
    return { kind, ok: false, code, message, details } as unknown as ResultOf<C>;
  }
  const fields: Record<string, unknown> = { kind, ok: true };
  for (const [field, codec] of Object.entries<FieldCodec>(successFields[kind])) {
    const fieldValue = value[field];
    if (!checkField(fieldValue, codec)) throw new DecodeError(`remembered result of ${kind} lacks ${field}`);
    fields[field] = codec === "strings" ? (fieldValue ?? []) : restoreBytes(fieldValue);
  }
  // A decoder's cast: every field of the kind's result type was checked above.
  return fields as unknown as ResultOf<C>;
}

/** Turns the `{"base64": ...}` objects {@link bytesAsBase64} wrote back into bytes, at any depth. */
export function restoreBytes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(restoreBytes);
  if (!isRecord(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && typeof value["base64"] === "string") {
    return new Uint8Array(Buffer.from(value["base64"], "base64"));
  }
  return Object.fromEntries(keys.map((k) => [k, restoreBytes(value[k])]));
}

function dedupeIndexKey(tsMs: number, key: Uint8Array): Uint8Array {
  return new ByteWriter(8 + key.length).u64(tsMs).raw(key).finish();
}

const META_IDEMPOTENCY_CLOCK = new TextEncoder().encode("idempotency.clock");

/**
 * The idempotency window's clock: the latest leader timestamp applied, never moving backwards (as
 * the key-value and stream clocks). Keys are stamped and pruned by it, not by an entry's raw time:
 * a key recorded under a leader whose clock is behind an earlier leader's would otherwise carry a
 * time in the past, and the next entry from the fast clock would forget it long before the window.
 */
export function idempotencyClockMs(state: StateReader): number {
  const bytes = state.get("meta", META_IDEMPOTENCY_CLOCK);
  return bytes === undefined ? 0 : new ByteReader(bytes).u64();
}

/**
 * Applies one envelope: answers a repeated idempotency key from the table, otherwise runs the
 * command and remembers its result. Prunes keys older than the window by the applied clock
 * ({@link idempotencyClockMs}), which a leader with a slow clock cannot move backwards. A leader
 * whose clock is fast still moves it forward for good, as it does the TTL and stream clocks.
 */
export function applyEnvelope(
  state: StateWriter,
  envelope: Envelope,
  settings: IdempotencySettings = defaultIdempotencySettings,
): ApplyOutcome {
  const previousMs = idempotencyClockMs(state);
  const clockMs = Math.max(previousMs, envelope.tsMs);
  // The clock is stored only by entries that run their command, as the KV and stream clocks are:
  // a retry answered from the table changes nothing.
  const advanceClock = (): void => {
    if (clockMs !== previousMs)
      state.put("meta", META_IDEMPOTENCY_CLOCK, new ByteWriter(8).u64(clockMs).finish());
  };
  pruneIdempotencyKeys(state, clockMs - settings.windowMs, settings.prunePerEntryMax);
  if (envelope.idempotencyKey === undefined) {
    advanceClock();
    return { ok: true, result: runCommand(state, envelope).result, duplicate: false };
  }
  const key = new TextEncoder().encode(envelope.idempotencyKey);
  const digest = commandDigest(encodeEnvelope({ tsMs: 0, command: envelope.command }));
  const stored = state.get("dedupe", key);
  if (stored !== undefined) {
    const reader = new ByteReader(stored);
    const storedTsMs = reader.u64();
    const storedDigest = reader.u32();
    if (storedTsMs > clockMs - settings.windowMs) {
      if (storedDigest !== digest) {
        return {
          ok: false,
          code: "ERR_IDEMPOTENCY_KEY_REUSED",
          message: "idempotency key was already used for a different request",
        };
      }
      return { ok: true, result: decodeStoredResult(envelope.command, reader.string()), duplicate: true };
    }
    state.delete("dedupe-ttl", dedupeIndexKey(storedTsMs, key));
    state.delete("dedupe", key);
  }
  advanceClock();
  const { result, remembered } = runCommand(state, envelope);
  if (!remembered) return { ok: true, result, duplicate: false };
  state.put("dedupe", key, encodeStored(clockMs, digest, result));
  state.put("dedupe-ttl", dedupeIndexKey(clockMs, key), new Uint8Array(0));
  return { ok: true, result, duplicate: false };
}

/** Runs the command; `remembered` says whether an idempotency key should keep its result. */
function runCommand(
  state: StateWriter,
  envelope: Envelope,
): { readonly result: CommandResult; readonly remembered: boolean } {
  switch (envelope.command.service) {
    case "kv":
      return { result: applyKv(state, envelope.command.command, envelope.tsMs), remembered: true };
    case "members":
      return { result: applyMemberCommand(state, envelope.command.command), remembered: true };
    case "streams": {
      const result = applyStream(state, envelope.command.command, envelope.tsMs);
      return { result, remembered: streamResultIsRemembered(result) };
    }
    case "auth":
      return { result: applyAuth(state, envelope.command.command, envelope.tsMs), remembered: true };
  }
}

/** Forgets up to `max` idempotency keys recorded at or before `cutoffMs`. */
function pruneIdempotencyKeys(state: StateWriter, cutoffMs: number, max: number): void {
  if (cutoffMs < 0) return;
  const end = new ByteWriter(8).u64(cutoffMs + 1).finish();
  for (const [indexKey] of [...state.range("dedupe-ttl", new Uint8Array(0), end, max)]) {
    state.delete("dedupe-ttl", indexKey);
    state.delete("dedupe", indexKey.subarray(8));
  }
}
