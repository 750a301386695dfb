// The hand-written binary encoding of Raft messages on the wire. Compact (varints throughout,
// entry indexes implied by prevLogIndex) and strict: decoding untrusted bytes never throws, and
// returns an error for anything truncated, trailing, unknown or out of range.
import {
  type ConfState,
  type Entry,
  type EntryKind,
  groupId,
  type LogIndex,
  logIndex,
  type Message,
  type NodeId,
  nodeId,
  term,
} from "../raft/index.js";
import { ByteReader, ByteWriter, DecodeError } from "../util/index.js";

/** What decoding returns: a message, or why the bytes are not one. */
export type RaftDecodeResult =
  | { readonly ok: true; readonly message: Message }
  | { readonly ok: false; readonly error: string };

const typeCodes: Record<Message["type"], number> = {
  append: 1,
  "append-response": 2,
  heartbeat: 3,
  "heartbeat-response": 4,
  "vote-request": 5,
  "vote-response": 6,
  snapshot: 7,
  "timeout-now": 8,
  "read-index": 9,
  "read-index-response": 10,
};
const kindCodes: Record<EntryKind, number> = { normal: 1, "conf-change": 2 };
/** The longest ReadIndex context accepted, in bytes. */
const contextBytesMax = 256;
/** The most members a configuration may list on the wire. */
const confMembersMax = 64;

function writeConf(w: ByteWriter, conf: ConfState): void {
  w.varint(conf.voters.length);
  for (const id of conf.voters) w.varint(id);
  w.varint(conf.learners.length);
  for (const id of conf.learners) w.varint(id);
}

/** Encodes a Raft message as one frame payload. */
export function encodeRaftMessage(m: Message): Uint8Array {
  const entryBytes = m.type === "append" ? m.entries.reduce((n, e) => n + e.data.length + 12, 0) : 0;
  const w = new ByteWriter(32 + entryBytes);
  w.u8(typeCodes[m.type]).varint(m.groupId).varint(m.from).varint(m.to).varint(m.term);
  switch (m.type) {
    case "append":
      w.varint(m.prevLogIndex).varint(m.prevLogTerm).varint(m.commitIndex).varint(m.entries.length);
      for (const e of m.entries) w.u8(kindCodes[e.kind]).varint(e.term).bytes(e.data);
      break;
    case "append-response":
      w.u8((m.reject ? 1 : 0) | (m.entriesLost ? 2 : 0))
        .varint(m.index)
        .varint(m.hintIndex)
        .varint(m.hintTerm);
      break;
    case "heartbeat":
      w.varint(m.commitIndex).varint(m.readRound);
      break;
    case "heartbeat-response":
      w.varint(m.readRound);
      break;
    case "vote-request":
      w.u8((m.preVote ? 1 : 0) | (m.transfer ? 2 : 0))
        .varint(m.lastLogIndex)
        .varint(m.lastLogTerm);
      break;
    case "vote-response":
      w.u8((m.preVote ? 1 : 0) | (m.reject ? 2 : 0));
      break;
    case "snapshot":
      w.varint(m.snapshot.index).varint(m.snapshot.term);
      writeConf(w, m.snapshot.conf);
      break;
    case "timeout-now":
      break;
    case "read-index":
      w.string(m.context);
      break;
    case "read-index-response":
      w.string(m.context).varint(m.index);
      break;
  }
  return w.finish();
}

class WireError extends Error {}

function readNode(r: ByteReader): NodeId {
  const n = r.varint();
  if (n === 0) throw new WireError("node id 0");
  return nodeId(n);
}

function readIndex(r: ByteReader): LogIndex {
  return logIndex(r.varint());
}

function readFlag(value: number, allowed: number): number {
  if ((value & ~allowed) !== 0) throw new WireError(`unknown flags ${value}`);
  return value;
}

function readConf(r: ByteReader): ConfState {
  const readIds = () => {
    const count = r.varint();
    if (count > confMembersMax) throw new WireError(`${count} members`);
    return Array.from({ length: count }, () => readNode(r));
  };
  return { voters: readIds(), learners: readIds() };
}

/** Decodes a frame payload into a Raft message; never throws. Entries are copied out of `bytes`. */
export function decodeRaftMessage(bytes: Uint8Array): RaftDecodeResult {
  try {
    const r = new ByteReader(bytes);
    const code = r.u8();
    const header = {
      groupId: groupId(r.varint()),
      from: readNode(r),
      to: readNode(r),
      term: term(r.varint()),
    };
    let message: Message;
    switch (code) {
      case typeCodes.append: {
        const prevLogIndex = readIndex(r);
        const prevLogTerm = term(r.varint());
        const commitIndex = readIndex(r);
        const count = r.varint();
        if (count > r.remaining) throw new WireError(`${count} entries in ${r.remaining} bytes`);
        const entries: Entry[] = [];
        for (let i = 0; i < count; i++) {
          const kindCode = r.u8();
          const kind: EntryKind | undefined =
            kindCode === 1 ? "normal" : kindCode === 2 ? "conf-change" : undefined;
          if (kind === undefined) throw new WireError(`unknown entry kind ${kindCode}`);
          const entryTerm = term(r.varint());
          const data = Uint8Array.from(r.bytes());
          entries.push({ term: entryTerm, index: logIndex(prevLogIndex + 1 + i), kind, data });
        }
        message = { ...header, type: "append", prevLogIndex, prevLogTerm, commitIndex, entries };
        break;
      }
      case typeCodes["append-response"]: {
        const flags = readFlag(r.u8(), 3);
        message = {
          ...header,
          type: "append-response",
          reject: (flags & 1) !== 0,
          index: readIndex(r),
          hintIndex: readIndex(r),
          hintTerm: term(r.varint()),
          entriesLost: (flags & 2) !== 0,
        };
        break;
      }
      case typeCodes.heartbeat:
        message = { ...header, type: "heartbeat", commitIndex: readIndex(r), readRound: r.varint() };
        break;
      case typeCodes["heartbeat-response"]:
        message = { ...header, type: "heartbeat-response", readRound: r.varint() };
        break;
      case typeCodes["vote-request"]: {
        const flags = readFlag(r.u8(), 3);
        message = {
          ...header,
          type: "vote-request",
          preVote: (flags & 1) !== 0,
          transfer: (flags & 2) !== 0,
          lastLogIndex: readIndex(r),
          lastLogTerm: term(r.varint()),
        };
        break;
      }
      case typeCodes["vote-response"]: {
        const flags = readFlag(r.u8(), 3);
        message = { ...header, type: "vote-response", preVote: (flags & 1) !== 0, reject: (flags & 2) !== 0 };
        break;
      }
      case typeCodes.snapshot:
        message = {
          ...header,
          type: "snapshot",
          snapshot: { index: readIndex(r), term: term(r.varint()), conf: readConf(r) },
        };
        break;
      case typeCodes["timeout-now"]:
        message = { ...header, type: "timeout-now" };
        break;
      case typeCodes["read-index"]:
        message = { ...header, type: "read-index", context: r.string(contextBytesMax) };
        break;
      case typeCodes["read-index-response"]:
        message = {
          ...header,
          type: "read-index-response",
          context: r.string(contextBytesMax),
          index: readIndex(r),
        };
        break;
      default:
        return { ok: false, error: `unknown message type ${code}` };
    }
    r.end();
    return { ok: true, message };
  } catch (error) {
    // Only malformed input lands here; anything else is a bug and must not be swallowed.
    if (error instanceof DecodeError || error instanceof WireError)
      return { ok: false, error: error.message };
    throw error;
  }
}

/** The Raft message codec in the shape the transport takes. */
export const raftCodec = {
  encode: encodeRaftMessage,
  decode: decodeRaftMessage,
  groupOf: (m: Message) => m.groupId,
};
