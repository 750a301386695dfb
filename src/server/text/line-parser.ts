// Splits a TCP byte stream into request lines for the HaToKuSe text protocol. Bytes arrive in any
// split (one byte at a time included), so the parser keeps the unfinished line between calls. A
// line ends at LF; one CR right before the LF is part of the terminator, as Tolerex's clients send
// CRLF or LF. Memory is bounded: a line longer than `lineBytesMax` is not kept; its bytes are
// skipped up to the next LF and the line is reported as too long, so the connection stays usable.

/** One thing found in the byte stream. */
export type LineEvent =
  /** A complete line, without its terminator. */
  | { readonly kind: "line"; readonly bytes: Uint8Array }
  /** A line longer than the limit ended; its bytes were dropped. */
  | { readonly kind: "too-long" };

const LF = 0x0a;
const CR = 0x0d;

/** An incremental line splitter with a bounded line length. */
export class LineParser {
  readonly #lineBytesMax: number;
  /** The unfinished line's pieces; their total length never exceeds `lineBytesMax` + 1. */
  #pieces: Uint8Array[] = [];
  #pendingBytes = 0;
  /** Set once the current line passed the limit: its bytes are skipped until LF. */
  #skipping = false;

  /** Creates a parser; `lineBytesMax` counts the line's bytes without its terminator. */
  constructor(lineBytesMax: number) {
    if (!Number.isSafeInteger(lineBytesMax) || lineBytesMax < 1) {
      throw new RangeError(`lineBytesMax must be a positive integer, got ${lineBytesMax}`);
    }
    this.#lineBytesMax = lineBytesMax;
  }

  /** Feeds the next bytes of the stream; returns the events they complete, in order. */
  push(chunk: Uint8Array): LineEvent[] {
    const events: LineEvent[] = [];
    let start = 0;
    while (start < chunk.length) {
      const lf = chunk.indexOf(LF, start);
      const end = lf === -1 ? chunk.length : lf;
      if (!this.#skipping) {
        this.#keep(chunk.subarray(start, end));
      }
      if (lf === -1) break;
      events.push(this.#finish());
      start = lf + 1;
    }
    return events;
  }

  /** Bytes held for the unfinished line (for tests of the bound). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  #keep(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    // One byte over the limit is allowed to be held: it may be the CR of a CRLF terminator.
    if (this.#pendingBytes + bytes.length > this.#lineBytesMax + 1) {
      this.#skipping = true;
      this.#pieces = [];
      this.#pendingBytes = 0;
      return;
    }
    // Copy: the caller may reuse its buffer once push returns.
    this.#pieces.push(bytes.slice());
    this.#pendingBytes += bytes.length;
  }

  #finish(): LineEvent {
    const skipped = this.#skipping;
    const line = concat(this.#pieces, this.#pendingBytes);
    this.#pieces = [];
    this.#pendingBytes = 0;
    this.#skipping = false;
    if (skipped) return { kind: "too-long" };
    const bytes = line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, line.length - 1) : line;
    if (bytes.length > this.#lineBytesMax) return { kind: "too-long" };
    return { kind: "line", bytes };
  }
}

function concat(pieces: readonly Uint8Array[], length: number): Uint8Array {
  if (pieces.length === 1 && pieces[0] !== undefined) return pieces[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}
