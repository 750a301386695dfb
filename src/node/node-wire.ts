// What nodes send each other over the transport besides Raft messages: a small "peer info" notice
// by which each node tells its peers its name and the addresses where it serves clients, and the
// calls a follower makes to its leader (a client's write handed over, and the leader's reply).
// Peer info is soft state: resent periodically, never replicated.
import { type GroupId, groupId, type Message, type NodeId, nodeId } from "../raft/index.js";
import { decodeRaftMessage, encodeRaftMessage } from "../transport/index.js";
import { ByteReader, ByteWriter, DecodeError } from "../util/index.js";

/** The client protocols, besides HTTP, whose address a node announces. */
export const clientProtocols = ["redis", "text", "grpc"] as const;

/** A client protocol whose address a node may announce. */
export type ClientProtocol = (typeof clientProtocols)[number];

/** A node's self-description. */
export interface PeerInfo {
  readonly id: NodeId;
  readonly name: string;
  readonly httpUrl: string;
  /** `host:port` of each other client protocol this node serves. */
  readonly endpoints?: Readonly<Partial<Record<ClientProtocol, string>>>;
  /**
   * `host:port` where peers reach this node. A node that has not applied this one's joining yet
   * learns from it where to answer (see Membership).
   */
  readonly peerAddress?: string;
  /** The node's latest state hashes (the cross-replica state check), oldest first. */
  readonly stateHashes?: readonly PeerStateHash[];
}

/** A hash of a node's replicated state at an applied index (hex SHA-256). */
export interface PeerStateHash {
  readonly index: number;
  readonly hash: string;
}

/** The most state hashes one peer info carries. */
export const peerStateHashesMax = 8;

/** The pair name the peer address travels under in the (protocol, address) list. */
const PEER_PAIR = "peer";

/** How a call's reply came about. */
export type CallStatus =
  /** The handler answered; the body is its answer. */
  | "answered"
  /** Nothing was done (no handler, shutting down); the body is a UTF-8 reason. Safe to retry. */
  | "refused"
  /** The handler failed part-way; the outcome is unknown. The body is a UTF-8 reason. */
  | "failed";

/** One message on the node-to-node wire. */
export type NodeWireMessage =
  | { readonly kind: "raft"; readonly message: Message }
  | { readonly kind: "peer-info"; readonly info: PeerInfo }
  /** A request to the receiver; `run` is the caller's per-start nonce, `seq` its call number. */
  | { readonly kind: "call"; readonly run: number; readonly seq: number; readonly body: Uint8Array }
  | {
      readonly kind: "reply";
      readonly run: number;
      readonly seq: number;
      readonly status: CallStatus;
      readonly body: Uint8Array;
    };

/** Type code of the first peer info (id, name, HTTP URL); still decoded. Raft codes stay below 64. */
const PEER_INFO_V1 = 64;
const CALL = 65;
const REPLY = 66;
/** Peer info with a list of (protocol, address) pairs; unknown protocols are skipped on decode. */
const PEER_INFO_V2 = 67;
/** V2 followed by the node's latest state hashes (index, hex hash). */
const PEER_INFO_V3 = 68;

const statusCodes: Record<CallStatus, number> = { answered: 0, refused: 1, failed: 2 };
const statusByCode: readonly CallStatus[] = ["answered", "refused", "failed"];

/** The longest call or reply body: a client write with its largest value, plus headroom. */
export const callBodyBytesMax = 8 * 1024 * 1024;

/** Encodes a wire message as one frame payload. */
export function encodeNodeWire(m: NodeWireMessage): Uint8Array {
  switch (m.kind) {
    case "raft":
      return encodeRaftMessage(m.message);
    case "peer-info": {
      const pairs = clientProtocols.flatMap((p): [string, string][] => {
        const address = m.info.endpoints?.[p];
        return address === undefined ? [] : [[p, address]];
      });
      const hashes = m.info.stateHashes ?? [];
      // Older decoders skip a pair whose name is not a client protocol: adding it changes no code.
      if (m.info.peerAddress !== undefined) pairs.push([PEER_PAIR, m.info.peerAddress]);
      const writer = new ByteWriter(96)
        .u8(hashes.length > 0 ? PEER_INFO_V3 : PEER_INFO_V2)
        .varint(m.info.id)
        .string(m.info.name)
        .string(m.info.httpUrl)
        .varint(pairs.length);
      for (const [name, address] of pairs) writer.string(name).string(address);
      if (hashes.length > 0) {
        const sent = hashes.slice(-peerStateHashesMax);
        writer.varint(sent.length);
        for (const h of sent) writer.varint(h.index).string(h.hash);
      }
      return writer.finish();
    }
    case "call":
      return new ByteWriter(16 + m.body.length).u8(CALL).varint(m.run).varint(m.seq).bytes(m.body).finish();
    case "reply":
      return new ByteWriter(16 + m.body.length)
        .u8(REPLY)
        .varint(m.run)
        .varint(m.seq)
        .u8(statusCodes[m.status])
        .bytes(m.body)
        .finish();
  }
}

/** Decodes a frame payload; never throws. */
export function decodeNodeWire(
  bytes: Uint8Array,
): { ok: true; message: NodeWireMessage } | { ok: false; error: string } {
  const type = bytes[0];
  if (type === undefined || type < PEER_INFO_V1) {
    const decoded = decodeRaftMessage(bytes);
    return decoded.ok ? { ok: true, message: { kind: "raft", message: decoded.message } } : decoded;
  }
  try {
    const r = new ByteReader(bytes);
    r.u8();
    const message = decodeBody(type, r);
    r.end();
    return { ok: true, message };
  } catch (error) {
    if (error instanceof DecodeError) return { ok: false, error: error.message };
    throw error;
  }
}

function decodeBody(type: number, r: ByteReader): NodeWireMessage {
  switch (type) {
    case PEER_INFO_V1:
    case PEER_INFO_V2:
    case PEER_INFO_V3: {
      const id = r.varint();
      if (id === 0) throw new DecodeError("node id 0");
      const name = r.string(64);
      const httpUrl = r.string(256);
      if (type === PEER_INFO_V1) return { kind: "peer-info", info: { id: nodeId(id), name, httpUrl } };
      const count = r.varint();
      if (count > 16) throw new DecodeError(`${count} endpoints`);
      const endpoints: Partial<Record<ClientProtocol, string>> = {};
      let peerAddress: string | undefined;
      for (let i = 0; i < count; i++) {
        const protocol = r.string(16);
        const address = r.string(256);
        if (isClientProtocol(protocol)) endpoints[protocol] = address;
        else if (protocol === PEER_PAIR) peerAddress = address;
      }
      const info = {
        id: nodeId(id),
        name,
        httpUrl,
        endpoints,
        ...(peerAddress === undefined ? {} : { peerAddress }),
      };
      if (type === PEER_INFO_V2) return { kind: "peer-info", info };
      const hashCount = r.varint();
      if (hashCount > peerStateHashesMax) throw new DecodeError(`${hashCount} state hashes`);
      const stateHashes: PeerStateHash[] = [];
      for (let i = 0; i < hashCount; i++) stateHashes.push({ index: r.varint(), hash: r.string(64) });
      return { kind: "peer-info", info: { ...info, stateHashes } };
    }
    case CALL:
      return { kind: "call", run: r.varint(), seq: r.varint(), body: r.bytes(callBodyBytesMax) };
    case REPLY: {
      const run = r.varint();
      const seq = r.varint();
      const code = r.u8();
      const status = statusByCode[code];
      if (status === undefined) throw new DecodeError(`unknown call status ${code}`);
      return { kind: "reply", run, seq, status, body: r.bytes(callBodyBytesMax) };
    }
    default:
      throw new DecodeError(`unknown node message type ${type}`);
  }
}

function isClientProtocol(name: string): name is ClientProtocol {
  return (clientProtocols as readonly string[]).includes(name);
}

/** The node wire codec in the shape the transport takes. */
export const nodeWireCodec = {
  encode: encodeNodeWire,
  decode: decodeNodeWire,
  groupOf: (m: NodeWireMessage): GroupId => (m.kind === "raft" ? m.message.groupId : groupId(0)),
};
