// The first exchange on every connection: the dialer says who it is (`hello`), the listener checks
// that against the TLS certificate and the membership and answers (`welcome`).
import { TransportError } from "./errors.js";
import { ByteReader, ByteWriter } from "./wire.js";

/**
 * The peer protocol version; a peer with another version is refused with a clear reason. It names
 * everything peers exchange, not only the handshake: 2 added length-prefixed snapshot streams, the
 * peer calls a follower forwards commands with, and peer info v2 (per-protocol client addresses);
 * 3: a forwarded proposal carries its write concern (leader call version 2).
 */
export const PROTOCOL_VERSION = 3;
/** Longest cluster id, in UTF-8 bytes. */
export const CLUSTER_ID_BYTES_MAX = 128;
/** Longest rejection detail, in UTF-8 bytes. */
const DETAIL_BYTES_MAX = 512;

/** What a connection is for: Raft messages, or one snapshot transfer (a dedicated connection). */
export type ConnectionPurpose = "messages" | "snapshot";

/** The dialer's introduction. */
export interface Hello {
  readonly protocolVersion: number;
  readonly purpose: ConnectionPurpose;
  readonly nodeId: number;
  readonly clusterId: string;
}

/** Why a listener refuses a dialer; each maps to a wire value and is shown to the dialer's operator. */
export type RejectReason =
  | "protocol-version"
  | "cluster-mismatch"
  | "identity-mismatch"
  | "not-member"
  | "malformed-hello";

/** The listener's answer. */
export type Welcome =
  | { readonly accepted: true }
  | { readonly accepted: false; readonly reason: RejectReason; readonly detail: string };

const purposeToWire: Record<ConnectionPurpose, number> = { messages: 1, snapshot: 2 };
const reasonToWire: Record<RejectReason, number> = {
  "protocol-version": 1,
  "cluster-mismatch": 2,
  "identity-mismatch": 3,
  "not-member": 4,
  "malformed-hello": 5,
};

function purposeFromWire(n: number): ConnectionPurpose {
  for (const [purpose, wire] of Object.entries(purposeToWire)) {
    if (wire === n) return purpose as ConnectionPurpose;
  }
  throw new TransportError("ERR_FRAME_CORRUPT", `unknown connection purpose ${n}`);
}

function reasonFromWire(n: number): RejectReason {
  for (const [reason, wire] of Object.entries(reasonToWire)) {
    if (wire === n) return reason as RejectReason;
  }
  throw new TransportError("ERR_FRAME_CORRUPT", `unknown rejection reason ${n}`);
}

/** Encodes a `hello` payload. */
export function encodeHello(hello: Hello): Uint8Array {
  return new ByteWriter()
    .u8(hello.protocolVersion)
    .u8(purposeToWire[hello.purpose])
    .u53(hello.nodeId)
    .string(hello.clusterId, CLUSTER_ID_BYTES_MAX)
    .finish();
}

/**
 * Decodes a `hello` payload. Only the version byte is read when it is not ours, so a future version
 * may change the rest and still get a clear "protocol-version" refusal.
 */
export function decodeHello(payload: Uint8Array): Hello {
  const reader = new ByteReader(payload);
  const protocolVersion = reader.u8("protocol version");
  if (protocolVersion !== PROTOCOL_VERSION) {
    return { protocolVersion, purpose: "messages", nodeId: 0, clusterId: "" };
  }
  const purpose = purposeFromWire(reader.u8("purpose"));
  const nodeId = reader.u53("node id");
  const clusterId = reader.string("cluster id", CLUSTER_ID_BYTES_MAX);
  reader.end("hello");
  return { protocolVersion, purpose, nodeId, clusterId };
}

/** Encodes a `welcome` payload. */
export function encodeWelcome(welcome: Welcome): Uint8Array {
  const writer = new ByteWriter();
  if (welcome.accepted) return writer.u8(0).finish();
  const detail = truncateUtf8(welcome.detail, DETAIL_BYTES_MAX);
  return writer.u8(reasonToWire[welcome.reason]).string(detail, DETAIL_BYTES_MAX).finish();
}

/** Decodes a `welcome` payload. */
export function decodeWelcome(payload: Uint8Array): Welcome {
  const reader = new ByteReader(payload);
  const status = reader.u8("status");
  if (status === 0) {
    reader.end("welcome");
    return { accepted: true };
  }
  const reason = reasonFromWire(status);
  const detail = reader.string("detail", DETAIL_BYTES_MAX);
  reader.end("welcome");
  return { accepted: false, reason, detail };
}

/** A one-line description of a welcome, for logs and error messages. */
export function describeWelcome(welcome: Welcome): string {
  return welcome.accepted ? "accepted" : `rejected (${welcome.reason}): ${welcome.detail}`;
}

/** Cuts `text` so its UTF-8 encoding fits `bytesMax`, never splitting a character. */
function truncateUtf8(text: string, bytesMax: number): string {
  const encoder = new TextEncoder();
  if (encoder.encode(text).length <= bytesMax) return text;
  let out = "";
  let bytes = 0;
  for (const ch of text) {
    const n = encoder.encode(ch).length;
    if (bytes + n > bytesMax) break;
    out += ch;
    bytes += n;
  }
  return out;
}
