// The RESP request parser as a server sees its input: commands split at every possible byte give the
// same result as one read, inline commands split like redis-cli's, every bound answers Redis's exact
// protocol error, random bytes never throw, and every valid command round-trips.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type ParsedItem, RespParser, splitInlineArgs } from "../../../../src/server/resp/resp-parser.js";

const limits = { respInlineBytesMax: 64, respArgsMax: 8, bulkBytesMax: 32, commandBytesMax: 48 };

function encodeCommand(args: readonly Uint8Array[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) parts.push(Buffer.from(`$${a.length}\r\n`), Buffer.from(a), Buffer.from("\r\n"));
  return Buffer.concat(parts);
}

function parseAll(bytes: Buffer, chunk: number): ParsedItem[] {
  const parser = new RespParser(limits);
  const out: ParsedItem[] = [];
  for (let i = 0; i < bytes.length; i += chunk) out.push(...parser.push(bytes.subarray(i, i + chunk)));
  return out;
}

function show(items: readonly ParsedItem[]): unknown[] {
  return items.map((item) => (item.kind === "command" ? item.args.map((a) => a.toString("latin1")) : item));
}

describe("RespParser", () => {
  it("gives the same commands fed byte by byte, in chunks, or all at once", () => {
    const input = Buffer.concat([
      encodeCommand([Buffer.from("SET"), Buffer.from("k"), Buffer.from("v\r\n")]),
      Buffer.from("PING\r\n"),
      Buffer.from("echo \"a b\" 'c'\n"),
      encodeCommand([Buffer.from("GET"), Buffer.from("")]),
      Buffer.from("*0\r\n\r\n"),
    ]);
    const expected = [["SET", "k", "v\r\n"], ["PING"], ["echo", "a b", "c"], ["GET", ""]];
    for (let chunk = 1; chunk <= input.length; chunk++) {
      assert.deepEqual(show(parseAll(input, chunk)), expected, `chunk size ${chunk}`);
    }
  });

  it("answers Redis's protocol errors and then nothing more", () => {
    const cases: [string, string][] = [
      ["*abc\r\n", "ERR Protocol error: invalid multibulk length"],
      ["*9\r\n", "ERR Protocol error: invalid multibulk length"],
      ["*1\r\n+GET\r\n", "ERR Protocol error: expected '$', got '+'"],
      ["*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length"],
      ["*1\r\n$33\r\n", "ERR Protocol error: invalid bulk length"],
      ["*1\r\n$x\r\n", "ERR Protocol error: invalid bulk length"],
      ['GET "unbalanced\r\n', "ERR Protocol error: unbalanced quotes in request"],
      ['GET "a"b\r\n', "ERR Protocol error: unbalanced quotes in request"],
      [`${"x".repeat(65)}`, "ERR Protocol error: too big inline request"],
      [`*${"1".repeat(70)}`, "ERR Protocol error: too big mbulk count string"],
      [`*1\r\n$${"1".repeat(70)}`, "ERR Protocol error: too big bulk count string"],
      [
        `*3\r\n$30\r\n${"a".repeat(30)}\r\n$19\r\n`,
        "ERR Protocol error: too big request (over 48 bytes of arguments)",
      ],
    ];
    for (const [input, message] of cases) {
      for (const chunk of [1, input.length]) {
        const parser = new RespParser(limits);
        const items: ParsedItem[] = [];
        for (let i = 0; i < input.length; i += chunk)
          items.push(...parser.push(Buffer.from(input.slice(i, i + chunk))));
        assert.deepEqual(items, [{ kind: "error", message }], `${JSON.stringify(input)} by ${chunk}`);
        assert.deepEqual(parser.push(Buffer.from("PING\r\n")), []);
        assert.equal(parser.bufferedBytes, 0);
      }
    }
  });

  it("buffers at most the bounds for an incomplete command", () => {
    const parser = new RespParser(limits);
    assert.deepEqual(parser.push(Buffer.from("*1\r\n$32\r\n")), []);
    assert.ok(parser.midCommand);
    assert.deepEqual(parser.push(Buffer.alloc(20, 0x61)), []);
    assert.ok(parser.bufferedBytes <= 32 + 2);
  });

  it("bounds a whole command's arguments, not only each one, and holds nothing past the bound", () => {
    // Eight bulks of 32 bytes each pass the per-argument bound; together they pass the command's.
    const parser = new RespParser(limits);
    const bulk = `$32\r\n${"a".repeat(32)}\r\n`;
    assert.deepEqual(parser.push(Buffer.from(`*8\r\n${bulk}`)), []);
    assert.equal(parser.bufferedBytes, 32);
    assert.deepEqual(parser.push(Buffer.from(bulk)), [
      { kind: "error", message: "ERR Protocol error: too big request (over 48 bytes of arguments)" },
    ]);
    assert.equal(parser.bufferedBytes, 0);
    // A command at the bound is served, and the next one starts its own count.
    const ok = new RespParser(limits);
    const at = encodeCommand([Buffer.alloc(32, 0x61), Buffer.alloc(16, 0x62)]);
    assert.equal(ok.push(Buffer.concat([at, at])).length, 2);
  });

  it("splits inline arguments as redis-cli does", () => {
    const split = (s: string) => splitInlineArgs(Buffer.from(s))?.map((a) => a.toString("latin1"));
    assert.deepEqual(split("set \"a\\x41\\n\" 'it\\'s'  x"), ["set", "aA\n", "it's", "x"]);
    assert.deepEqual(split("   "), []);
    assert.equal(split("'open"), undefined);
  });

  it("never throws on random bytes, fed in random chunks", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 10 }), (chunks) => {
        const parser = new RespParser(limits);
        for (const chunk of chunks) {
          parser.push(chunk);
          // Unparsed input within a line bound plus a chunk, arguments within the command bound.
          assert.ok(parser.bufferedBytes <= 64 + 40 + 48 + 2);
        }
      }),
    );
  });

  it("round-trips every valid multibulk command, whatever the split", () => {
    // Within the bounds: at most 8 arguments of at most 32 bytes, 48 together.
    const argsArb = fc
      .array(fc.uint8Array({ maxLength: 32 }), { minLength: 1, maxLength: 8 })
      .filter((args) => args.reduce((sum, a) => sum + a.length, 0) <= 48);
    fc.assert(
      fc.property(
        fc.array(argsArb, { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 50 }),
        (commands, chunk) => {
          const bytes = Buffer.concat(commands.map(encodeCommand));
          const items = parseAll(bytes, chunk);
          assert.deepEqual(
            items.map((i) => (i.kind === "command" ? i.args.map((a) => [...a]) : i)),
            commands.map((c) => c.map((a) => [...a])),
          );
        },
      ),
    );
  });
});
