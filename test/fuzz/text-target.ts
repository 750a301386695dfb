// Fuzzes the text protocol (HaToKuSe): mutated valid lines, random lines, lines past the length
// bound, several lines at once, all split across TCP writes, on a fresh authenticated connection
// followed by a `GET 7` sentinel (the known message `v7`). Every `ERROR: <reason>` is tallied by its
// reason; `ERROR: internal error` is a finding.
import fc from "fast-check";
import type { FuzzEndpoints } from "./live-node.js";
import { concat, fuzzString, interestingNumbers, mutated, preview, utf8 } from "./mutate.js";
import { type Outcome, target } from "./target.js";
import { exchange, split } from "./tcp-exchange.js";

const validLines = fc
  .constantFrom(
    "SET 1 hello world",
    "GET 7",
    "GET -9223372036854775808",
    "HELP",
    "PROTO 2",
    "PROTO 1",
    "AUTH ct_x",
    "set 5  spaced  ",
    "",
  )
  .map((line) => utf8(`${line}\n`));

const line: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: mutated(validLines) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(
        fc.constantFrom("SET", "GET", "HELP", "PROTO", "AUTH", "QUIT", "EXIT", "set", "Get"),
        fc.array(fc.oneof(fuzzString, fc.constantFrom(...interestingNumbers)), { maxLength: 4 }),
        fc.constantFrom("\n", "\r\n", "\r", ""),
      )
      .map(([word, args, end]) => utf8(`${[word, ...args].join(" ")}${end}\n`)),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => concat(b, utf8("\n"))) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 1, max: 1_100_000 }).map((n) => utf8(`SET 3 ${"y".repeat(n)}\n`)),
  },
);

interface TextInput {
  readonly bytes: Uint8Array;
  readonly cuts: readonly number[];
}

const textInput: fc.Arbitrary<TextInput> = fc.record({
  bytes: fc.array(line, { minLength: 1, maxLength: 4 }).map((lines) => concat(...lines)),
  cuts: fc.array(fc.integer({ min: 0, max: 1_000_000 }), { maxLength: 3 }),
});

async function send(endpoints: FuzzEndpoints, input: TextInput): Promise<Outcome> {
  const pieces = [utf8(`AUTH ${endpoints.token}\n`), ...split(input.bytes, input.cuts), utf8("\nGET 7\n")];
  const { received } = await exchange(endpoints.text.host, endpoints.text.port, pieces, "v7");
  const errors = received
    .split(/\r?\n/)
    .map((l) => /ERROR: (.*)$/.exec(l)?.[1])
    .filter((reason): reason is string => reason !== undefined);
  const internal = errors.find((reason) => /internal/i.test(reason));
  if (internal !== undefined)
    return { kind: "finding", what: `ERROR: ${internal} for ${preview(input.bytes)}` };
  const first = errors[0];
  return first === undefined
    ? { kind: "served" }
    : {
        kind: "refused",
        code:
          first
            .split(/[\d(:]/)[0]
            ?.trim()
            .slice(0, 48) ?? "",
      };
}

/** The text protocol target. */
export const textTarget = target("text", textInput, send, 12);
