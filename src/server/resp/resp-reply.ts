// Replies as values, encoded for the protocol version the connection chose with HELLO. Handlers
// build one reply shape; the encoder decides what RESP2 clients see for RESP3-only types (maps as
// flat arrays, doubles as bulk strings, booleans as integers, nulls as `$-1` or `*-1`), as Redis does.

/** A reply to one command. */
export type Reply =
  | { readonly t: "simple"; readonly value: string }
  | { readonly t: "error"; readonly message: string }
  | { readonly t: "int"; readonly value: number | bigint }
  | { readonly t: "bulk"; readonly value: Uint8Array | string }
  /** A missing value: `$-1` in RESP2. */
  | { readonly t: "null" }
  /** A missing array (EXEC aborted): `*-1` in RESP2. */
  | { readonly t: "null-array" }
  | { readonly t: "array"; readonly items: readonly Reply[] }
  | { readonly t: "set"; readonly items: readonly Reply[] }
  | { readonly t: "map"; readonly entries: readonly (readonly [Reply, Reply])[] }
  | { readonly t: "double"; readonly value: number }
  | { readonly t: "bool"; readonly value: boolean }
  /** Text with a format (INFO, CLIENT INFO): a bulk string in RESP2. */
  | { readonly t: "verbatim"; readonly value: string };

/** The protocol version of a connection. */
export type RespVersion = 2 | 3;

/** Shorthands for building replies. */
export const r = {
  ok: { t: "simple", value: "OK" } as Reply,
  nil: { t: "null" } as Reply,
  simple: (value: string): Reply => ({ t: "simple", value }),
  error: (message: string): Reply => ({ t: "error", message }),
  int: (value: number | bigint): Reply => ({ t: "int", value }),
  bulk: (value: Uint8Array | string): Reply => ({ t: "bulk", value }),
  bulkOrNil: (value: Uint8Array | string | undefined | null): Reply =>
    value === undefined || value === null ? { t: "null" } : { t: "bulk", value },
  array: (items: readonly Reply[]): Reply => ({ t: "array", items }),
  map: (entries: readonly (readonly [Reply, Reply])[]): Reply => ({ t: "map", entries }),
  set: (items: readonly Reply[]): Reply => ({ t: "set", items }),
  double: (value: number): Reply => ({ t: "double", value }),
  verbatim: (value: string): Reply => ({ t: "verbatim", value }),
} as const;

/** Formats a double as Redis does (`%.17g`, shortest round trip; inf as `inf`). */
export function formatDouble(value: number): string {
  if (value === Number.POSITIVE_INFINITY) return "inf";
  if (value === Number.NEGATIVE_INFINITY) return "-inf";
  if (Number.isNaN(value)) return "nan";
  return String(value);
}

/** Appends the encoding of `reply` for protocol `version` to `out`. */
export function encodeReply(reply: Reply, version: RespVersion, out: Buffer[]): void {
  switch (reply.t) {
    case "simple":
      out.push(Buffer.from(`+${reply.value}\r\n`));
      return;
    case "error":
      out.push(Buffer.from(`-${reply.message.replace(/[\r\n]+/g, " ")}\r\n`));
      return;
    case "int":
      out.push(Buffer.from(`:${reply.value}\r\n`));
      return;
    case "bulk": {
      const bytes = typeof reply.value === "string" ? Buffer.from(reply.value) : reply.value;
      out.push(Buffer.from(`$${bytes.length}\r\n`), Buffer.from(bytes), CRLF);
      return;
    }
    case "null":
      out.push(Buffer.from(version === 3 ? "_\r\n" : "$-1\r\n"));
      return;
    case "null-array":
      out.push(Buffer.from(version === 3 ? "_\r\n" : "*-1\r\n"));
      return;
    case "array":
    case "set":
      out.push(Buffer.from(`${reply.t === "set" && version === 3 ? "~" : "*"}${reply.items.length}\r\n`));
      for (const item of reply.items) encodeReply(item, version, out);
      return;
    case "map":
      out.push(
        Buffer.from(version === 3 ? `%${reply.entries.length}\r\n` : `*${reply.entries.length * 2}\r\n`),
      );
      for (const [key, value] of reply.entries) {
        encodeReply(key, version, out);
        encodeReply(value, version, out);
      }
      return;
    case "double": {
      const text = formatDouble(reply.value);
      if (version === 3) out.push(Buffer.from(`,${text}\r\n`));
      else encodeReply({ t: "bulk", value: text }, version, out);
      return;
    }
    case "bool":
      out.push(
        Buffer.from(version === 3 ? `#${reply.value ? "t" : "f"}\r\n` : `:${reply.value ? 1 : 0}\r\n`),
      );
      return;
    case "verbatim": {
      if (version === 2) {
        encodeReply({ t: "bulk", value: reply.value }, version, out);
        return;
      }
      const bytes = Buffer.from(`txt:${reply.value}`);
      out.push(Buffer.from(`=${bytes.length}\r\n`), bytes, CRLF);
      return;
    }
  }
}

const CRLF = Buffer.from("\r\n");
