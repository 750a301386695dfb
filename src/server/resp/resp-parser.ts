// The RESP request parser, hand-written rather than taken from a library because it must accept
// partial input (a command split anywhere across TCP reads gives the same result as one read), hold
// nothing past its bounds (inline line length, argument count, bulk length, a whole command's
// bytes), and fail with Redis's own protocol error texts, byte for byte, which no client-side
// parser offers.

/** Bounds on what one connection may make the parser buffer. */
export interface RespParserLimits {
  /** Longest inline command line, and longest `*`/`$` length line, in bytes (Redis: 64 KiB). */
  readonly respInlineBytesMax: number;
  /** Most arguments one multibulk command may declare. */
  readonly respArgsMax: number;
  /** Longest bulk string argument, in bytes (the value limit, plus room for a key). */
  readonly bulkBytesMax: number;
  /**
   * Most bytes the arguments of one multibulk command may hold together, checked as each `$`
   * line announces a bulk, before it is read: without it, a command could hold `respArgsMax`
   * bulks of `bulkBytesMax` each (Redis bounds only the whole query buffer, at 1 GiB).
   */
  readonly commandBytesMax: number;
}

/**
 * Defaults: Redis's 64 KiB inline limit, 4,096 arguments (an MSET of the 1,000 keys a multi-key
 * write allows fits), the 1 MiB value limit plus a key, and twice that for a whole command (the
 * service refuses a write of more than the value limit with Redis's own error; the parser only
 * stops what could never be served).
 */
export const defaultRespParserLimits: RespParserLimits = {
  respInlineBytesMax: 64 * 1024,
  respArgsMax: 4096,
  bulkBytesMax: 1024 * 1024 + 1024,
  commandBytesMax: 2 * (1024 * 1024 + 1024),
};

/** What one step of parsing produced: a command's arguments, or a protocol error (then stop). */
export type ParsedItem =
  | { readonly kind: "command"; readonly args: readonly Buffer[] }
  | { readonly kind: "error"; readonly message: string };

const CR = 13;
const LF = 10;

/**
 * Parses a byte stream of RESP requests (multibulk or inline) into commands. Feed it chunks as they
 * arrive; it returns every command completed so far. After a protocol error it returns nothing more:
 * the connection must answer the error and close, as Redis does.
 */
export class RespParser {
  readonly #limits: RespParserLimits;
  #buffer: Buffer = Buffer.alloc(0);
  #failed = false;
  /** Within a multibulk command: the arguments still expected, and those read so far. */
  #argsLeft = 0;
  #args: Buffer[] = [];
  /** Within a multibulk command: the length of the bulk being read, or -1 before its `$` line. */
  #bulkLength = -1;
  /**
   * Within a multibulk command: the bytes of the bulks announced so far.
   * Invariant: #commandBytes <= commandBytesMax.
   */
  #commandBytes = 0;

  /** Creates a parser with the given bounds. */
  constructor(limits: RespParserLimits = defaultRespParserLimits) {
    this.#limits = limits;
  }

  /** Bytes held for commands not yet complete: unparsed input and the arguments read so far. */
  get bufferedBytes(): number {
    let held = this.#buffer.length;
    for (const arg of this.#args) held += arg.length;
    return held;
  }

  /** Whether a command has started but not completed (a disconnect now loses it). */
  get midCommand(): boolean {
    return this.#buffer.length > 0 || this.#argsLeft > 0;
  }

  /** Adds `chunk` and returns the commands it completed, then at most one protocol error. */
  push(chunk: Uint8Array): ParsedItem[] {
    if (this.#failed) return [];
    this.#buffer = this.#buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buffer, chunk]);
    const out: ParsedItem[] = [];
    let pos = 0;
    for (;;) {
      const step = this.#argsLeft > 0 ? this.#stepBulk(pos) : this.#stepCommand(pos);
      if (step.kind === "need") break;
      if (step.kind === "error") {
        this.#failed = true;
        this.#buffer = Buffer.alloc(0);
        this.#args = [];
        out.push({ kind: "error", message: `ERR Protocol error: ${step.message}` });
        return out;
      }
      pos = step.pos;
      if (step.kind === "command") out.push({ kind: "command", args: step.args });
    }
    this.#buffer = pos === 0 ? this.#buffer : this.#buffer.subarray(pos);
    // Copy out of the large chunk a small remainder came from, so a read does not pin it.
    if (pos > 0 && this.#buffer.length > 0) this.#buffer = Buffer.from(this.#buffer);
    return out;
  }

  /** At a command boundary: a multibulk header or an inline line. */
  #stepCommand(pos: number): Step {
    const buf = this.#buffer;
    if (pos >= buf.length) return NEED;
    if (buf[pos] === 0x2a /* '*' */) {
      const line = this.#line(pos + 1);
      if (line === undefined) {
        return buf.length - pos > this.#limits.respInlineBytesMax
          ? { kind: "error", message: "too big mbulk count string" }
          : NEED;
      }
      const count = parseLength(buf, pos + 1, line.end);
      if (count === undefined || count > this.#limits.respArgsMax) {
        return { kind: "error", message: "invalid multibulk length" };
      }
      // As Redis: `*0` and `*-1` are empty requests, skipped without a reply.
      if (count <= 0) return { kind: "skip", pos: line.next };
      this.#argsLeft = count;
      this.#args = [];
      this.#bulkLength = -1;
      this.#commandBytes = 0;
      return { kind: "skip", pos: line.next };
    }
    const newline = buf.indexOf(LF, pos);
    if (newline === -1) {
      return buf.length - pos > this.#limits.respInlineBytesMax
        ? { kind: "error", message: "too big inline request" }
        : NEED;
    }
    if (newline - pos > this.#limits.respInlineBytesMax) {
      return { kind: "error", message: "too big inline request" };
    }
    const end = newline > pos && buf[newline - 1] === CR ? newline - 1 : newline;
    const args = splitInlineArgs(buf.subarray(pos, end));
    if (args === undefined) return { kind: "error", message: "unbalanced quotes in request" };
    if (args.length > this.#limits.respArgsMax) return { kind: "error", message: "invalid multibulk length" };
    if (args.length === 0) return { kind: "skip", pos: newline + 1 };
    return { kind: "command", pos: newline + 1, args };
  }

  /** Within a multibulk command: a `$<n>` line or the bulk it announces. */
  #stepBulk(pos: number): Step {
    const buf = this.#buffer;
    if (this.#bulkLength === -1) {
      if (pos >= buf.length) return NEED;
      const line = this.#line(pos);
      if (line === undefined) {
        return buf.length - pos > this.#limits.respInlineBytesMax
          ? { kind: "error", message: "too big bulk count string" }
          : NEED;
      }
      const first = buf[pos] ?? 0;
      if (first !== 0x24 /* '$' */) {
        return { kind: "error", message: `expected '$', got '${String.fromCharCode(first)}'` };
      }
      const length = parseLength(buf, pos + 1, line.end);
      if (length === undefined || length < 0 || length > this.#limits.bulkBytesMax) {
        return { kind: "error", message: "invalid bulk length" };
      }
      if (this.#commandBytes + length > this.#limits.commandBytesMax) {
        return {
          kind: "error",
          message: `too big request (over ${this.#limits.commandBytesMax} bytes of arguments)`,
        };
      }
      this.#commandBytes += length;
      this.#bulkLength = length;
      return { kind: "skip", pos: line.next };
    }
    if (buf.length - pos < this.#bulkLength + 2) return NEED;
    // Redis does not check the two bytes after a bulk; it skips them as its CRLF.
    this.#args.push(Buffer.from(buf.subarray(pos, pos + this.#bulkLength)));
    const next = pos + this.#bulkLength + 2;
    this.#bulkLength = -1;
    this.#argsLeft--;
    if (this.#argsLeft > 0) return { kind: "skip", pos: next };
    const args = this.#args;
    this.#args = [];
    return { kind: "command", pos: next, args };
  }

  /** The CRLF-terminated line starting at `pos`: where its text ends and the next line begins. */
  #line(pos: number): { end: number; next: number } | undefined {
    const cr = this.#buffer.indexOf(CR, pos);
    if (cr === -1 || cr + 1 >= this.#buffer.length) return undefined;
    // Redis looks for '\r' and assumes '\n' follows.
    return { end: cr, next: cr + 2 };
  }
}

type Step =
  | { readonly kind: "need" }
  | { readonly kind: "skip"; readonly pos: number }
  | { readonly kind: "command"; readonly pos: number; readonly args: Buffer[] }
  | { readonly kind: "error"; readonly message: string };

const NEED: Step = { kind: "need" };

/** A decimal length as Redis's string2ll reads it (optional '-', no '+', no leading zeros). */
function parseLength(buf: Buffer, start: number, end: number): number | undefined {
  const text = buf.toString("latin1", start, end);
  if (!/^(0|-?[1-9]\d{0,17})$/.test(text)) return undefined;
  return Number(text);
}

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d || byte === 0x0b || byte === 0x0c;
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x61 + 10;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x41 + 10;
  return -1;
}

/**
 * Splits an inline command line the way redis-cli and Redis do: words separated by spaces, "double
 * quotes" with \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' with \'. A closing quote must
 * be followed by a space or the end. Undefined when quotes are unbalanced.
 */
export function splitInlineArgs(line: Uint8Array): Buffer[] | undefined {
  const args: Buffer[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && isSpace(line[i] ?? 0)) i++;
    if (i >= line.length) break;
    const bytes: number[] = [];
    let quote: 0 | 1 | 2 = 0; // none, double, single
    let done = false;
    while (!done) {
      const c = line[i];
      if (quote === 1) {
        if (c === undefined) return undefined;
        const next = line[i + 1];
        const h1 = hexValue(line[i + 2] ?? 0);
        const h2 = hexValue(line[i + 3] ?? 0);
        if (c === 0x5c && next === 0x78 && h1 >= 0 && h2 >= 0) {
          bytes.push(h1 * 16 + h2);
          i += 3;
        } else if (c === 0x5c && next !== undefined) {
          i++;
          const escapes: Record<number, number> = { 110: 10, 114: 13, 116: 9, 98: 8, 97: 7 };
          bytes.push(escapes[next] ?? next);
        } else if (c === 0x22) {
          const after = line[i + 1];
          if (after !== undefined && !isSpace(after)) return undefined;
          done = true;
        } else {
          bytes.push(c);
        }
      } else if (quote === 2) {
        if (c === undefined) return undefined;
        if (c === 0x5c && line[i + 1] === 0x27) {
          i++;
          bytes.push(0x27);
        } else if (c === 0x27) {
          const after = line[i + 1];
          if (after !== undefined && !isSpace(after)) return undefined;
          done = true;
        } else {
          bytes.push(c);
        }
      } else if (c === undefined || isSpace(c)) {
        done = true;
      } else if (c === 0x22) {
        quote = 1;
      } else if (c === 0x27) {
        quote = 2;
      } else {
        bytes.push(c);
      }
      if (c !== undefined) i++;
    }
    args.push(Buffer.from(bytes));
  }
  return args;
}
