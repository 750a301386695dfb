// Fuzzes the peer port as a member would reach it: mutual TLS with the development certificate of
// node 3 (a member that never runs), a hello (sometimes mutated), then frames: Raft messages and
// the other node-wire messages (peer info, calls, replies), built from random fields or mutated from
// valid encodings, framed with a correct CRC so they reach the decoders, plus raw frames with broken
// headers. The "snapshot" target opens snapshot connections and streams mutated install-snapshot
// transfers (begin with a mutated snapshot message, chunks, end).
//
// A member is trusted to speak the protocol, not to be right, so what the fuzzer sends as a member
// must never be able to change data legitimately: a Raft message that decodes is sent with term 0
// (older than any term of the cluster, so the core must only answer or drop it), and a forwarded
// call that decodes as a write is not sent. What decodes must still never crash the node.
import { connect } from "node:tls";
import fc from "fast-check";
import { decodeNodeWire, encodeNodeWire, type NodeWireMessage } from "../../src/node/index.js";
import { groupId, logIndex, type Message, nodeId, term } from "../../src/raft/index.js";
import { decodeLeaderCall } from "../../src/service/leader-calls.js";
import { decodeWelcome, encodeHello } from "../../src/transport/handshake.js";
import {
  decodeRaftMessage,
  encodeFrame,
  encodeRaftMessage,
  FrameDecoder,
  FrameType,
  PROTOCOL_VERSION,
} from "../../src/transport/index.js";
import {
  decodeSnapshotAbort,
  encodeSnapshotBegin,
  encodeSnapshotChunkHeader,
  encodeSnapshotEnd,
} from "../../src/transport/snapshot-wire.js";
import { crc32 } from "../../src/util/index.js";
import type { FuzzEndpoints } from "./live-node.js";
import { concat, mutated, preview } from "./mutate.js";
import { type Outcome, target } from "./target.js";
import { converse } from "./tcp-exchange.js";

const frameBytesMax = 16 * 1024 * 1024;
/** A member connection sends without answers; the node closes one at its first bad frame at once. */
const quietMs = 100;

/** A Raft message of any type with random fields, from node 3 to `to`, at term 0. */
function raftMessage(to: fc.Arbitrary<number>): fc.Arbitrary<Message> {
  const index = fc.oneof(fc.integer({ min: 0, max: 50 }), fc.nat()).map(logIndex);
  const t = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.nat()).map(term);
  const header = fc.record({
    groupId: fc
      .oneof({ weight: 6, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.nat(5) })
      .map(groupId),
    from: fc.constant(nodeId(3)),
    to: to.map(nodeId),
    term: fc.constant(term(0)),
  });
  return fc.oneof(
    fc
      .tuple(
        header,
        index,
        t,
        index,
        fc.array(fc.tuple(t, fc.uint8Array({ maxLength: 24 }), fc.boolean()), { maxLength: 3 }),
      )
      .map(
        ([h, prevLogIndex, prevLogTerm, commitIndex, es]): Message => ({
          ...h,
          type: "append",
          prevLogIndex,
          prevLogTerm,
          commitIndex,
          entries: es.map(([entryTerm, data, conf], k) => ({
            term: entryTerm,
            index: logIndex(prevLogIndex + 1 + k),
            kind: conf ? "conf-change" : "normal",
            data,
          })),
        }),
      ),
    fc.tuple(header, fc.boolean(), index, index, t, fc.boolean()).map(
      ([h, reject, i, hintIndex, hintTerm, entriesLost]): Message => ({
        ...h,
        type: "append-response",
        reject,
        index: i,
        hintIndex,
        hintTerm,
        entriesLost: reject && entriesLost,
      }),
    ),
    fc
      .tuple(header, index, fc.nat())
      .map(([h, commitIndex, readRound]): Message => ({ ...h, type: "heartbeat", commitIndex, readRound })),
    fc
      .tuple(header, fc.nat())
      .map(([h, readRound]): Message => ({ ...h, type: "heartbeat-response", readRound })),
    fc.tuple(header, fc.boolean(), index, t, fc.boolean()).map(
      ([h, preVote, lastLogIndex, lastLogTerm, transfer]): Message => ({
        ...h,
        type: "vote-request",
        preVote,
        lastLogIndex,
        lastLogTerm,
        transfer,
      }),
    ),
    fc
      .tuple(header, fc.boolean(), fc.boolean())
      .map(([h, preVote, reject]): Message => ({ ...h, type: "vote-response", preVote, reject })),
    fc.tuple(header, index, t).map(
      ([h, i, st]): Message => ({
        ...h,
        type: "snapshot",
        snapshot: { index: i, term: st, conf: { voters: [nodeId(1), nodeId(2), nodeId(3)], learners: [] } },
      }),
    ),
    header.map((h): Message => ({ ...h, type: "timeout-now" })),
    fc
      .tuple(header, fc.string({ maxLength: 20 }))
      .map(([h, context]): Message => ({ ...h, type: "read-index", context })),
    fc
      .tuple(header, fc.string({ maxLength: 20 }), index)
      .map(([h, context, i]): Message => ({ ...h, type: "read-index-response", context, index: i })),
  );
}

/** Node-wire messages other than Raft: peer info, calls and replies. */
const otherWire: fc.Arbitrary<NodeWireMessage> = fc.oneof(
  fc.record({ name: fc.string({ maxLength: 8 }), url: fc.string({ maxLength: 30 }) }).map(
    ({ name, url }): NodeWireMessage => ({
      kind: "peer-info",
      info: {
        id: nodeId(3),
        name,
        httpUrl: url,
        endpoints: { redis: "127.0.0.1:1" },
        stateHashes: [{ index: 10, hash: "0".repeat(64) }],
      },
    }),
  ),
  fc
    .tuple(fc.nat(), fc.nat(), fc.uint8Array({ maxLength: 40 }))
    .map(([run, seq, body]): NodeWireMessage => ({ kind: "call", run, seq, body })),
  fc
    .tuple(
      fc.nat(),
      fc.nat(),
      fc.constantFrom("answered" as const, "refused" as const, "failed" as const),
      fc.uint8Array({ maxLength: 20 }),
    )
    .map(([run, seq, status, body]): NodeWireMessage => ({ kind: "reply", run, seq, status, body })),
);

/**
 * What the fuzzer may send as a member: a payload that does not decode goes as it is; one that
 * decodes as a Raft message goes at term 0; a call whose body decodes (a forwarded write) does not go.
 */
export function asMemberMaySend(payload: Uint8Array): Uint8Array | undefined {
  const decoded = decodeNodeWire(payload);
  if (!decoded.ok) return payload;
  const wire = decoded.message;
  if (wire.kind === "raft") return encodeRaftMessage({ ...wire.message, term: term(0) });
  if (wire.kind === "call") {
    try {
      decodeLeaderCall(wire.body);
      return undefined;
    } catch {
      return payload;
    }
  }
  return payload;
}

/** A frame as the peer port receives it: a payload with a correct header and CRC, or raw bytes. */
type PeerFrame =
  | { readonly kind: "framed"; readonly type: number; readonly group: number; readonly payload: Uint8Array }
  | { readonly kind: "raw"; readonly bytes: Uint8Array };

function framed(type: number, group: number, payload: Uint8Array): PeerFrame {
  return { kind: "framed", type, group, payload };
}

function frameBytes(frame: PeerFrame): Uint8Array {
  if (frame.kind === "raw") return frame.bytes;
  const header = new Uint8Array(16);
  const view = new DataView(header.buffer);
  header[0] = 0xca;
  header[1] = 1;
  header[2] = frame.type;
  view.setUint32(4, frame.group);
  view.setUint32(8, frame.payload.length);
  view.setUint32(12, crc32(concat(header.subarray(0, 12), frame.payload)));
  return concat(header, frame.payload);
}

function messageFrames(to: fc.Arbitrary<number>): fc.Arbitrary<PeerFrame> {
  const validRaft = raftMessage(to).map(encodeRaftMessage);
  return fc.oneof(
    { weight: 3, arbitrary: validRaft.map((p) => framed(FrameType.message, 1, p)) },
    { weight: 4, arbitrary: mutated(validRaft).map((p) => framed(FrameType.message, 1, p)) },
    {
      weight: 2,
      arbitrary: mutated(otherWire.map(encodeNodeWire)).map((p) => framed(FrameType.message, 0, p)),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 0, max: 12 }), fc.nat(4), fc.uint8Array({ maxLength: 40 }))
        .map(([type, group, payload]) => framed(type, group, payload)),
    },
    {
      weight: 1,
      arbitrary: mutated(validRaft.map((p) => frameBytes(framed(FrameType.message, 1, p)))).map(
        (bytes): PeerFrame => ({ kind: "raw", bytes }),
      ),
    },
  );
}

/** One connection's worth of input. */
interface PeerInput {
  readonly purpose: "messages" | "snapshot";
  readonly hello: "valid" | Uint8Array;
  readonly frames: readonly PeerFrame[];
}

function hello(endpoints: FuzzEndpoints, purpose: "messages" | "snapshot"): Uint8Array {
  return encodeHello({
    protocolVersion: PROTOCOL_VERSION,
    purpose,
    nodeId: endpoints.peerNodeId,
    clusterId: endpoints.clusterId,
  });
}

/** The receiver of a fuzzed Raft message: mostly a running node, sometimes another member or none. */
const receiver = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(1, 2) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 6 }) },
);

const peerInput: fc.Arbitrary<PeerInput> = fc.record({
  purpose: fc.constant("messages" as const),
  hello: fc.oneof(
    { weight: 8, arbitrary: fc.constant("valid" as const) },
    {
      weight: 1,
      arbitrary: mutated(
        fc.constant(
          encodeHello({ protocolVersion: PROTOCOL_VERSION, purpose: "messages", nodeId: 3, clusterId: "x" }),
        ),
      ),
    },
  ),
  frames: fc.array(messageFrames(receiver), { minLength: 1, maxLength: 5 }),
});

/** A snapshot stream: length-prefixed chunks (snapshot-stream.ts), the chunks random or empty. */
const snapshotStream = fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 3 }).map((chunks) =>
  concat(
    ...chunks.map((c) => {
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, c.length, true);
      return concat(prefix, c);
    }),
  ),
);

const snapshotInput: fc.Arbitrary<PeerInput> = fc
  .record({
    meta: fc.oneof(
      raftMessage(receiver)
        .filter((m) => m.type === "snapshot")
        .map(encodeRaftMessage),
      mutated(
        raftMessage(fc.constant(1))
          .filter((m) => m.type === "snapshot")
          .map(encodeRaftMessage),
      ),
      fc.uint8Array({ maxLength: 30 }),
    ),
    transferId: fc.nat(),
    stream: fc.oneof(snapshotStream, mutated(snapshotStream)),
    pieces: fc.integer({ min: 1, max: 3 }),
    offsetDelta: fc.constantFrom(0, 0, 0, 1, -1, 1000),
    end: fc.constantFrom(
      "right" as const,
      "right" as const,
      "wrong-crc" as const,
      "wrong-length" as const,
      "none" as const,
    ),
    extra: fc.option(messageFrames(receiver), { freq: 6 }),
  })
  .map(({ meta, transferId, stream, pieces, offsetDelta, end, extra }): PeerInput => {
    const frames: PeerFrame[] = [];
    const sendable = (() => {
      const decoded = decodeRaftMessage(meta);
      return decoded.ok ? encodeRaftMessage({ ...decoded.message, term: term(0) }) : meta;
    })();
    frames.push(framed(FrameType.snapshotBegin, 1, encodeSnapshotBegin({ transferId, meta: sendable })));
    const size = Math.ceil(stream.length / pieces);
    for (let at = 0; at < stream.length; at += size) {
      const offset = Math.max(0, at + (at === 0 ? 0 : offsetDelta));
      frames.push(
        framed(
          FrameType.snapshotChunk,
          1,
          concat(encodeSnapshotChunkHeader(offset), stream.subarray(at, at + size)),
        ),
      );
    }
    if (end !== "none") {
      frames.push(
        framed(
          FrameType.snapshotEnd,
          1,
          encodeSnapshotEnd({
            totalBytes: stream.length + (end === "wrong-length" ? 1 : 0),
            crc: (crc32(stream) + (end === "wrong-crc" ? 1 : 0)) >>> 0,
          }),
        ),
      );
    }
    if (extra !== null) frames.push(extra);
    return { purpose: "snapshot", hello: "valid", frames };
  });

function describeInput(input: PeerInput): string {
  return `${input.purpose} hello ${input.hello === "valid" ? "valid" : preview(input.hello, 60)} frames ${input.frames
    .map((f) =>
      f.kind === "raw"
        ? `raw ${preview(f.bytes, 60)}`
        : `type ${f.type} group ${f.group} ${preview(f.payload, 80)}`,
    )
    .join(", ")}`;
}

/** Tally names of what the node answered on a connection. */
function answerName(type: number, payload: Uint8Array): string {
  if (type === FrameType.welcome) {
    try {
      const welcome = decodeWelcome(payload);
      return welcome.accepted ? "welcome" : `hello refused: ${welcome.reason}`;
    } catch {
      return "undecodable welcome";
    }
  }
  if (type === FrameType.snapshotAbort) {
    try {
      return `snapshot-abort ${
        decodeSnapshotAbort(payload)
          .split(/[\d:(]/)[0]
          ?.trim()
          .slice(0, 40) ?? ""
      }`;
    } catch {
      return "snapshot-abort";
    }
  }
  if (type === FrameType.snapshotAck) return "snapshot-ack";
  return `frame-${type}`;
}

async function send(endpoints: FuzzEndpoints, input: PeerInput): Promise<Outcome> {
  const frames: Uint8Array[] = [];
  let skipped = 0;
  for (const f of input.frames) {
    if (f.kind === "framed" && f.type === FrameType.message) {
      const payload = asMemberMaySend(f.payload);
      if (payload === undefined) {
        skipped++;
        continue;
      }
      frames.push(frameBytes({ ...f, payload }));
    } else {
      frames.push(frameBytes(f));
    }
  }
  const helloPayload = input.hello === "valid" ? hello(endpoints, input.purpose) : input.hello;
  const helloFrame = concat(...[encodeFrame(FrameType.hello, 0, helloPayload, frameBytesMax)].flat());
  const { host, port } = endpoints.peer;
  const socket = connect({
    host,
    port,
    ca: endpoints.peerTls.ca,
    cert: endpoints.peerTls.cert,
    key: endpoints.peerTls.key,
    checkServerIdentity: () => undefined,
  });
  const decoder = new FrameDecoder(frameBytesMax);
  const names: string[] = [];
  const end = await converse(
    socket,
    "secureConnect",
    [helloFrame, ...frames],
    (chunk) => {
      for (const frame of decoder.push(chunk).frames) names.push(answerName(frame.type, frame.payload));
      return false;
    },
    quietMs,
  ).catch((error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)}: ${describeInput(input)}`);
  });
  const answers = { names, closed: end === "closed" };
  const refusal = answers.names.find(
    (n) => n !== "welcome" && n !== "snapshot-ack" && !n.startsWith("frame-"),
  );
  if (refusal !== undefined) return { kind: "refused", code: refusal };
  if (answers.closed)
    return {
      kind: "refused",
      code: answers.names.includes("welcome") ? "closed after a frame" : "closed before welcome",
    };
  return skipped === input.frames.length
    ? { kind: "refused", code: "not sent (a forwarded write)" }
    : { kind: "served" };
}

/** The peer transport target. */
export const peerTarget = target("peer", peerInput, send, 1);
/** The install-snapshot target. */
export const snapshotTarget = target("snapshot", snapshotInput, send, 1);
