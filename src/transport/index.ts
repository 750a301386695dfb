// The public surface of the transport: node-to-node messaging over mutual TLS, its in-memory
// fault-injecting twin, and the fault-injecting TCP proxy used by the real-process fault suite.
export { type BackoffSettings, backoffDelayMs } from "./backoff.js";
export type { Codec, DecodeResult } from "./codec.js";
export { systemTransportEnv, type TimerHandle, type TransportEnv } from "./env.js";
export { isTransportError, TransportError, type TransportErrorCode } from "./errors.js";
export {
  FaultProxy,
  type FaultProxyOptions,
  type FaultProxyStats,
  type ProxyDirection,
} from "./fault-proxy.js";
export { encodeFrame, FRAME_HEADER_BYTES, type Frame, FrameDecoder, FrameType } from "./frame.js";
export { PROTOCOL_VERSION } from "./handshake.js";
export { certificateNames, defaultNodeIdentity } from "./identity.js";
export {
  type LinkFaults,
  MemoryNetwork,
  type MemoryNetworkOptions,
  MemoryTransport,
  noFaults,
  type Odds,
} from "./memory-transport.js";
export { decodeRaftMessage, encodeRaftMessage, type RaftDecodeResult, raftCodec } from "./raft-codec.js";
export { defaultTransportSettings, resolveTransportSettings, type TransportSettings } from "./settings.js";
export { SnapshotReceiver, type SnapshotReceiverDeps } from "./snapshot-receiver.js";
export { type SnapshotSenderDeps, sendSnapshotStream } from "./snapshot-sender.js";
export { type TlsMaterial, TlsTransport, type TlsTransportOptions } from "./tls-transport.js";
export type {
  InboundMessage,
  IncomingSnapshot,
  PeerAddress,
  Transport,
  TransportEvent,
} from "./transport.js";
