// The text protocol's line splitter: every valid stream gives the same lines however its bytes are
// split (one at a time included), random bytes never make it throw, and an over-long line is
// dropped with bounded memory and reported once, the following lines unaffected.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { type LineEvent, LineParser } from "../../../../src/server/text/index.js";

const enc = (text: string) => new TextEncoder().encode(text);
const dec = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function feed(parser: LineParser, chunks: readonly Uint8Array[]): LineEvent[] {
  return chunks.flatMap((chunk) => parser.push(chunk));
}

function shown(events: readonly LineEvent[]): string[] {
  return events.map((e) => (e.kind === "line" ? dec(e.bytes) : "<too-long>"));
}

describe("LineParser", () => {
  it("splits on LF and drops one CR before it", () => {
    const events = feed(new LineParser(100), [enc("SET 1 a\r\nGET 1\n\r\n\n")]);
    assert.deepEqual(shown(events), ["SET 1 a", "GET 1", "", ""]);
  });

  it("gives the same lines when fed one byte at a time", () => {
    const stream = enc("SET 10 hello  world \r\nGET 10\r\nQUIT\n");
    const parser = new LineParser(100);
    const events = feed(
      parser,
      [...stream].map((b) => Uint8Array.of(b)),
    );
    assert.deepEqual(shown(events), ["SET 10 hello  world ", "GET 10", "QUIT"]);
  });

  it("keeps a CR that is not right before the LF, and holds an unfinished line", () => {
    const parser = new LineParser(100);
    assert.deepEqual(shown(parser.push(enc("a\rb"))), []);
    assert.deepEqual(shown(parser.push(enc("\r\n"))), ["a\rb"]);
  });

  it("reports a too-long line once, holds at most the limit, and goes on with the next line", () => {
    const parser = new LineParser(8);
    const events: LineEvent[] = [];
    for (const b of enc("123456789012345")) {
      events.push(...parser.push(Uint8Array.of(b)));
      assert.ok(parser.pendingBytes <= 9);
    }
    events.push(...parser.push(enc("\r\nGET 1\r\n")));
    assert.deepEqual(shown(events), ["<too-long>", "GET 1"]);
  });

  it("accepts a line of exactly the limit with CRLF, and refuses one byte more", () => {
    const parser = new LineParser(4);
    assert.deepEqual(shown(parser.push(enc("abcd\r\nabcde\r\n"))), ["abcd", "<too-long>"]);
  });

  it("never throws on random bytes and splits them the same in any chunking", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(300), { maxLength: 10 }),
        (bytes, cuts) => {
          const whole = shown(new LineParser(32).push(bytes));
          const points = [...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((a, b) => a - b);
          const chunks: Uint8Array[] = [];
          let from = 0;
          for (const p of points) {
            chunks.push(bytes.subarray(from, p));
            from = p;
          }
          chunks.push(bytes.subarray(from));
          assert.deepEqual(shown(feed(new LineParser(32), chunks)), whole);
        },
      ),
    );
  });

  it("round-trips any lines without LF", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.uint8Array({ maxLength: 40 }).map((b) => b.filter((x) => x !== 0x0a && x !== 0x0d)),
          { maxLength: 10 },
        ),
        (lines) => {
          const stream = Buffer.concat(lines.flatMap((l) => [Buffer.from(l), Buffer.from("\r\n")]));
          const events = new LineParser(64).push(stream);
          assert.deepEqual(
            events.map((e) => (e.kind === "line" ? Buffer.from(e.bytes).toString("hex") : "x")),
            lines.map((l) => Buffer.from(l).toString("hex")),
          );
        },
      ),
    );
  });
});
