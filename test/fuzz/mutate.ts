// Byte-level mutation for the fuzzer, as fast-check arbitraries: a valid input with a few edits
// (flip, replace with an interesting byte or number, insert, delete, duplicate, truncate), the way
// coverage-guided fuzzers mutate a corpus, but seeded through fast-check so a run replays exactly.
import fc from "fast-check";
import { concatBytes } from "../../src/storage/bytes.js";

/** One edit of a byte string; positions are fractions of its length, so they fit any input. */
type Edit =
  | { readonly kind: "flip"; readonly at: number; readonly bit: number }
  | { readonly kind: "set"; readonly at: number; readonly byte: number }
  | { readonly kind: "insert"; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: "delete"; readonly at: number; readonly length: number }
  | { readonly kind: "duplicate"; readonly at: number; readonly length: number }
  | { readonly kind: "truncate"; readonly at: number }
  | { readonly kind: "number"; readonly at: number; readonly text: string };

/** Bytes that parsers treat specially: separators, prefixes, quotes, high and zero bytes. */
const interestingBytes = [
  0, 0x0a, 0x0d, 0x20, 0x22, 0x24, 0x2a, 0x2b, 0x2d, 0x3a, 0x5c, 0x7b, 0x7d, 0x7f, 0x80, 0xff,
];
/** Numbers that parsers get wrong: signs, zero, the edges of 32- and 64-bit and of doubles. */
export const interestingNumbers = [
  "-1",
  "0",
  "-0",
  "1",
  "2147483647",
  "2147483648",
  "-2147483649",
  "4294967296",
  "9007199254740993",
  "18446744073709551616",
  "1e308",
  "1e309",
  "NaN",
  "-inf",
  "0x10",
  "99999999999999999999999",
  "",
];

const fraction = fc.integer({ min: 0, max: 1_000_000 });

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fraction, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant("set" as const),
    at: fraction,
    byte: fc.oneof(fc.constantFrom(...interestingBytes), fc.integer({ min: 0, max: 255 })),
  }),
  fc.record({ kind: fc.constant("insert" as const), at: fraction, bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fraction, length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({
    kind: fc.constant("duplicate" as const),
    at: fraction,
    length: fc.integer({ min: 1, max: 64 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fraction }),
  fc.record({
    kind: fc.constant("number" as const),
    at: fraction,
    text: fc.constantFrom(...interestingNumbers),
  }),
);

function position(at: number, length: number): number {
  return Math.floor((at * length) / 1_000_001);
}

/** `input` with `edits` applied in order. */
export function applyEdits(input: Uint8Array, edits: readonly Edit[]): Uint8Array {
  let bytes = input;
  for (const e of edits) {
    const at = position(e.at, bytes.length + 1);
    switch (e.kind) {
      case "flip":
      case "set": {
        if (bytes.length === 0) break;
        const i = Math.min(at, bytes.length - 1);
        const copy = bytes.slice();
        copy[i] = e.kind === "flip" ? (copy[i] ?? 0) ^ (1 << e.bit) : e.byte;
        bytes = copy;
        break;
      }
      case "insert":
        bytes = concat(bytes.subarray(0, at), e.bytes, bytes.subarray(at));
        break;
      case "number":
        bytes = concat(bytes.subarray(0, at), new TextEncoder().encode(e.text), bytes.subarray(at));
        break;
      case "delete":
        bytes = concat(bytes.subarray(0, at), bytes.subarray(at + e.length));
        break;
      case "duplicate":
        bytes = concat(
          bytes.subarray(0, at + e.length),
          bytes.subarray(at, at + e.length),
          bytes.subarray(at + e.length),
        );
        break;
      case "truncate":
        bytes = bytes.subarray(0, at);
        break;
    }
  }
  return bytes;
}

/** The concatenation of `parts`. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

/** One of `valid`, mutated by 1 to 4 edits. */
export function mutated(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 }))
    .map(([input, edits]) => applyEdits(input, edits));
}

/** UTF-8 bytes of `text`. */
export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** A short printable preview of `bytes` for a finding: latin1 with escapes, at most `max` characters. */
export function preview(bytes: Uint8Array, max = 300): string {
  const shown = JSON.stringify(Buffer.from(bytes.subarray(0, max)).toString("latin1"));
  return bytes.length > max ? `${shown}... (${bytes.length} bytes)` : shown;
}

/** Strings as a fuzzer wants them: mostly short, sometimes odd (control, quotes, unicode, long). */
export const fuzzString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 2, arbitrary: fc.constantFrom(...interestingNumbers) },
  { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 24 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("known/k0", "known.s1", "fuzz/a", "*", "$", "-", "+", ">", "0-0", "..", "%00"),
  },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 70_000 }).map((n) => "x".repeat(n)) },
);
