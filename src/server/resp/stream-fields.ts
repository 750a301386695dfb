// How a Redis stream entry's field-value pairs and a Cairn message (payload bytes, text headers, an
// optional key) map onto each other, so the HTTP streams API and Redis see the same streams:
// - XADD stores the pairs as the message's headers, in order, with an empty payload, when every
//   field and value is UTF-8 and there are at most `headersMax` pairs: an HTTP reader sees them as
//   headers. Otherwise the payload holds them byte for byte as a RESP array of bulk strings, and
//   the header `cairn-redis-fields: resp` says so.
// - A message read through Redis shows those pairs again; a message from the HTTP API shows
//   `payload` and its payload (when it has one, or nothing else), then its headers, then `key` and
//   its key when it has one.
import type { Header, StreamMessage } from "../../service/index.js";

/** The header that marks a payload holding the fields as a RESP array. */
export const fieldsHeader = "cairn-redis-fields";

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function utf8Of(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** The message an entry with these field-value pairs becomes. */
export function messageOfFields(
  pairs: readonly Buffer[],
  headersMax: number,
): { payload: Uint8Array; headers: Header[] } {
  if (pairs.length / 2 <= headersMax) {
    const headers: Header[] = [];
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const name = utf8Of(pairs[i] ?? Buffer.alloc(0));
      const value = utf8Of(pairs[i + 1] ?? Buffer.alloc(0));
      if (name === undefined || value === undefined || name === fieldsHeader) break;
      headers.push([name, value]);
    }
    if (headers.length * 2 === pairs.length) return { payload: new Uint8Array(0), headers };
  }
  const parts: Buffer[] = [Buffer.from(`*${pairs.length}\r\n`)];
  for (const item of pairs) parts.push(Buffer.from(`$${item.length}\r\n`), item, Buffer.from("\r\n"));
  return { payload: Buffer.concat(parts), headers: [[fieldsHeader, "resp"]] };
}

/** Decodes a RESP array of bulk strings that fills `payload` exactly, or undefined. */
function decodeRespArray(payload: Uint8Array): Buffer[] | undefined {
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const header = /^\*(\d+)\r\n/.exec(bytes.subarray(0, 24).toString("latin1"));
  if (header === null) return undefined;
  const count = Number(header[1]);
  let at = header[0].length;
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const head = /^\$(\d+)\r\n/.exec(bytes.subarray(at, at + 24).toString("latin1"));
    if (head === null) return undefined;
    const start = at + head[0].length;
    const end = start + Number(head[1]);
    if (end + 2 > bytes.length) return undefined;
    out.push(bytes.subarray(start, end));
    at = end + 2;
  }
  return at === bytes.length ? out : undefined;
}

/** The field-value pairs a message shows through Redis. */
export function fieldsOfMessage(message: StreamMessage): Buffer[] {
  const marked = message.headers.some(([name, value]) => name === fieldsHeader && value === "resp");
  if (marked) {
    const pairs = decodeRespArray(message.payload);
    if (pairs !== undefined) return pairs;
  }
  const out: Buffer[] = [];
  if (message.payload.length > 0 || message.headers.length === 0) {
    out.push(Buffer.from("payload"), Buffer.from(message.payload));
  }
  for (const [name, value] of message.headers) out.push(Buffer.from(name), Buffer.from(value));
  if (message.key !== undefined) out.push(Buffer.from("key"), Buffer.from(message.key));
  return out;
}
