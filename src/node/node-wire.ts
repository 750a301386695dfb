// What nodes send each other over the transport: Raft messages, and a small "peer info" notice by
// which each node tells its peers its name and the URL of its HTTP API, so a follower knows where
// to forward a client's write. Peer info is soft state: resent periodically, never replicated.
import { type GroupId, groupId, type Message, type NodeId, nodeId } from "../raft/index.js";
import { decodeRaftMessage, encodeRaftMessage } from "../transport/raft-codec.js";
import { ByteReader, ByteWriter, DecodeError } from "../util/bytes.js";

/** A node's self-description. */
export interface PeerInfo {
  readonly id: NodeId;
  readonly name: string;
  readonly httpUrl: string;
}

/** One message on the node-to-node wire. */
export type NodeWireMessage =
  | { readonly kind: "raft"; readonly message: Message }
  | { readonly kind: "peer-info"; readonly info: PeerInfo };

/** Type code of peer info; Raft message codes stay below it. */
const PEER_INFO = 64;

/** Encodes a wire message as one frame payload. */
export function encodeNodeWire(m: NodeWireMessage): Uint8Array {
  if (m.kind === "raft") return encodeRaftMessage(m.message);
  return new ByteWriter(64)
    .u8(PEER_INFO)
    .varint(m.info.id)
    .string(m.info.name)
    .string(m.info.httpUrl)
    .finish();
}

/** Decodes a frame payload; never throws. */
export function decodeNodeWire(
  bytes: Uint8Array,
): { ok: true; message: NodeWireMessage } | { ok: false; error: string } {
  if (bytes[0] !== PEER_INFO) {
    const decoded = decodeRaftMessage(bytes);
    return decoded.ok ? { ok: true, message: { kind: "raft", message: decoded.message } } : decoded;
  }
  try {
    const r = new ByteReader(bytes);
    r.u8();
    const id = r.varint();
    const name = r.string(64);
    const httpUrl = r.string(256);
    r.end();
    if (id === 0) return { ok: false, error: "node id 0" };
    return { ok: true, message: { kind: "peer-info", info: { id: nodeId(id), name, httpUrl } } };
  } catch (error) {
    if (error instanceof DecodeError) return { ok: false, error: error.message };
    throw error;
  }
}

/** The node wire codec in the shape the transport takes. */
export const nodeWireCodec = {
  encode: encodeNodeWire,
  decode: decodeNodeWire,
  groupOf: (m: NodeWireMessage): GroupId => (m.kind === "raft" ? m.message.groupId : groupId(0)),
};
