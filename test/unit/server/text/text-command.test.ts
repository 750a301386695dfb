// The text protocol's command grammar, as Tolerex's users type it: case-insensitive words, the
// seed's usage errors, 64-bit ids refused rather than wrapped, SET's message kept byte for byte,
// and no line (random bytes included) that makes the parser throw.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseTextCommand, type TextCommand } from "../../../../src/server/text/index.js";

const parse = (text: string): TextCommand => parseTextCommand(new TextEncoder().encode(text));

describe("parseTextCommand", () => {
  it("reads SET with its message after exactly one blank, whitespace kept", () => {
    const command = parse("set 10   hello \t world  ");
    assert.equal(command.kind, "set");
    if (command.kind !== "set") return;
    assert.equal(command.id, 10n);
    assert.equal(new TextDecoder().decode(command.message), "  hello \t world  ");
  });

  it("keeps non-UTF-8 message bytes as sent", () => {
    const line = Uint8Array.of(...new TextEncoder().encode("SET 7 "), 0xff, 0x00, 0xc3);
    const command = parseTextCommand(line);
    assert.ok(command.kind === "set");
    assert.deepEqual([...command.message], [0xff, 0x00, 0xc3]);
  });

  it("answers the seed's usage errors", () => {
    assert.deepEqual(parse("SET 10"), { kind: "invalid", reason: "SET <id> <message>" });
    assert.deepEqual(parse("SET 10 "), { kind: "invalid", reason: "SET <id> <message>" });
    assert.deepEqual(parse("SET"), { kind: "invalid", reason: "SET <id> <message>" });
    assert.deepEqual(parse("GET"), { kind: "invalid", reason: "GET <id>" });
    assert.deepEqual(parse("GET 1 2"), { kind: "invalid", reason: "GET <id>" });
    assert.deepEqual(parse("SET x hi"), { kind: "invalid", reason: "id must be numeric" });
    assert.deepEqual(parse("GET 1.5"), { kind: "invalid", reason: "id must be numeric" });
    assert.deepEqual(parse("100 SET x"), { kind: "invalid", reason: "unknown command" });
  });

  it("takes 64-bit ids whole and refuses larger ones instead of wrapping", () => {
    assert.deepEqual(parse("GET 4294967297"), { kind: "get", id: 4294967297n });
    assert.deepEqual(parse("get 9223372036854775807"), { kind: "get", id: 2n ** 63n - 1n });
    assert.deepEqual(parse("GET -9223372036854775808"), { kind: "get", id: -(2n ** 63n) });
    assert.deepEqual(parse("GET +007"), { kind: "get", id: 7n });
    assert.deepEqual(parse("GET 9223372036854775808"), { kind: "invalid", reason: "id out of 64-bit range" });
  });

  it("knows the other commands in any case, and an empty line", () => {
    assert.deepEqual(parse("  "), { kind: "empty" });
    assert.deepEqual(parse(""), { kind: "empty" });
    assert.deepEqual(parse("Help"), { kind: "help" });
    assert.deepEqual(parse("quit"), { kind: "quit" });
    assert.deepEqual(parse("EXIT"), { kind: "quit" });
    assert.deepEqual(parse("proto 2"), { kind: "proto", version: 2 });
    assert.deepEqual(parse("PROTO 3"), { kind: "invalid", reason: "PROTO 1|2" });
  });

  it("never throws on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        parseTextCommand(bytes);
      }),
    );
  });

  it("round-trips any SET of a valid id and a message", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        fc.uint8Array({ minLength: 1, maxLength: 50 }).map((b) => b.filter((x) => x !== 0x0a)),
        (id, message) => {
          if (message.length === 0) return;
          const line = Buffer.concat([Buffer.from(`SET ${id} `), Buffer.from(message)]);
          const command = parseTextCommand(line);
          assert.ok(command.kind === "set");
          assert.equal(command.id, id);
          assert.deepEqual(Buffer.from(command.message), Buffer.from(message));
        },
      ),
    );
  });
});
