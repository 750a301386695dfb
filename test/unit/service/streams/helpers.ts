// Shared helpers for the streams state machine tests: apply a command through the real envelope
// codec, copy state as a snapshot would, and build commands tersely.
import {
  applyEnvelope,
  decodeEnvelope,
  encodeEnvelope,
  isResultOf,
  type ResultOf,
} from "../../../../src/service/command.js";
import { MemoryState, type Space } from "../../../../src/service/state.js";
import type { StreamCommand, StreamConfig } from "../../../../src/service/streams/index.js";
import { utf8 } from "../../../../src/util/bytes.js";

/** Every space the state machines write, for snapshot copies. */
export const allSpaces: readonly Space[] = [
  "meta",
  "kv",
  "kv-ttl",
  "dedupe",
  "dedupe-ttl",
  "members",
  "stream-meta",
  "stream-message",
  "stream-dedupe",
  "stream-dedupe-ttl",
  "stream-garbage",
  "consumer-group",
  "consumer-pending",
  "consumer-due",
];

/** Encodes, decodes and applies one stream command at leader time `tsMs`; answers its result. */
export function run<S extends StreamCommand>(
  state: MemoryState,
  command: S,
  tsMs: number,
): ResultOf<{ readonly service: "streams"; readonly command: S }> {
  const proposed = { service: "streams", command } as const;
  const outcome = applyEnvelope(state, decodeEnvelope(encodeEnvelope({ tsMs, command: proposed })));
  if (!outcome.ok) throw new Error(outcome.message);
  if (!isResultOf(proposed, outcome.result)) throw new Error(`a ${outcome.result.kind} result`);
  return outcome.result;
}

/** A snapshot and restore: every key of every space copied into a fresh state. */
export function copyState(state: MemoryState): MemoryState {
  const copy = new MemoryState();
  for (const space of allSpaces) {
    for (const [key, value] of state.range(space, new Uint8Array(0), undefined, Number.MAX_SAFE_INTEGER)) {
      copy.put(space, key, value);
    }
  }
  return copy;
}

/** Every key and value of every space, for comparing two states. */
export function dumpState(state: MemoryState): string[] {
  const out: string[] = [];
  for (const space of allSpaces) {
    for (const [key, value] of state.range(space, new Uint8Array(0), undefined, Number.MAX_SAFE_INTEGER)) {
      out.push(`${space} ${Buffer.from(key).toString("hex")} ${Buffer.from(value).toString("hex")}`);
    }
  }
  return out;
}

/** Stream settings with no limits, overridden by `overrides`. */
export function config(overrides: Partial<StreamConfig> = {}): StreamConfig {
  return {
    maxMessages: 0,
    maxBytes: 0,
    maxAgeMs: 0,
    discard: "old",
    messageBytesMax: 1024,
    dedupeWindowMs: 60_000,
    ...overrides,
  };
}

/** An append of a text payload. */
export function append(
  name: string,
  payload: string,
  extra: Partial<{ msgId: string; expectedLastSeq: number; key: string }> = {},
): StreamCommand {
  return { type: "append", name, payload: utf8(payload), headers: [], ...extra };
}
