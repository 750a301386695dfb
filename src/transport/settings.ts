import { FRAME_HEADER_BYTES } from "./frame.js";

/** Every limit and timing of the transport; each `*Max` has a tested behaviour when reached. */
export interface TransportSettings {
  /** Largest frame (header included) sent or accepted; a larger declared frame drops the connection. */
  readonly frameBytesMax: number;
  /** Messages waiting per peer; a send beyond it is dropped and reported unreachable. */
  readonly peerQueueMessagesMax: number;
  /** Bytes concatenated into one socket write when flushing a peer's queue. */
  readonly writeBatchBytesMax: number;
  /** Time a new connection has to complete its hello/welcome exchange. */
  readonly handshakeTimeoutMs: number;
  /** First reconnect delay ceiling; doubles per failed attempt. */
  readonly reconnectBackoffBaseMs: number;
  /** Largest reconnect delay. */
  readonly reconnectBackoffMaxMs: number;
  /** Inbound connections held at once (authenticated or not); more are refused by the listener. */
  readonly inboundConnectionsMax: number;
  /** Largest snapshot chunk payload; bigger pieces from the source are split. */
  readonly snapshotChunkBytesMax: number;
  /** Snapshot chunks sent but not yet consumed by the receiver (the flow-control window). */
  readonly snapshotWindowChunksMax: number;
  /** Largest snapshot metadata. */
  readonly snapshotMetaBytesMax: number;
  /** Reconnects a snapshot sender tries (with backoff) before giving up. */
  readonly snapshotResumeAttemptsMax: number;
  /** How long a receiver keeps a broken transfer waiting for the sender to resume it. */
  readonly snapshotResumeTimeoutMs: number;
  /** How long a snapshot sender waits for any word from the receiver before it treats the connection as lost. */
  readonly snapshotStallTimeoutMs: number;
  /** Snapshot transfers a receiver accepts at once; more are refused. */
  readonly snapshotTransfersMax: number;
}

/** Defaults sized for a LAN cluster: 16 MiB frames, 4096 queued messages per peer, 256 KiB chunks. */
export const defaultTransportSettings: TransportSettings = {
  frameBytesMax: 16 * 1024 * 1024,
  peerQueueMessagesMax: 4096,
  writeBatchBytesMax: 1024 * 1024,
  handshakeTimeoutMs: 5_000,
  reconnectBackoffBaseMs: 50,
  // A link cut by a partition redials within a second of the heal (5 s kept a healed follower
  // without its leader for seconds: docs/faults.md).
  reconnectBackoffMaxMs: 1_000,
  inboundConnectionsMax: 256,
  snapshotChunkBytesMax: 256 * 1024,
  snapshotWindowChunksMax: 8,
  snapshotMetaBytesMax: 1024 * 1024,
  // With the 1 s backoff ceiling, 14 attempts give a broken transfer about as long to resume
  // (10.5 s of backoff at most) as 8 did under the 5 s ceiling (11.4 s).
  snapshotResumeAttemptsMax: 14,
  snapshotResumeTimeoutMs: 30_000,
  snapshotStallTimeoutMs: 60_000,
  snapshotTransfersMax: 4,
};

/** Bytes a snapshot chunk frame adds around its data (the offset field). */
export const SNAPSHOT_CHUNK_OVERHEAD_BYTES = 8;

/**
 * Merges `overrides` over the defaults. When only `frameBytesMax` is lowered, the snapshot chunk and
 * metadata limits shrink with it (to a quarter of a frame) instead of failing validation.
 */
export function resolveTransportSettings(overrides: Partial<TransportSettings> = {}): TransportSettings {
  const frameBytesMax = overrides.frameBytesMax ?? defaultTransportSettings.frameBytesMax;
  const quarter = Math.floor(frameBytesMax / 4);
  const settings: TransportSettings = {
    ...defaultTransportSettings,
    snapshotChunkBytesMax: Math.min(defaultTransportSettings.snapshotChunkBytesMax, quarter),
    snapshotMetaBytesMax: Math.min(defaultTransportSettings.snapshotMetaBytesMax, quarter),
    ...overrides,
  };
  validateTransportSettings(settings);
  return settings;
}

/** Checks that settings are consistent with each other; throws RangeError naming the bad one. */
export function validateTransportSettings(s: TransportSettings): void {
  for (const [name, value] of Object.entries(s)) {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`transport setting ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  if (s.reconnectBackoffMaxMs < s.reconnectBackoffBaseMs) {
    throw new RangeError("reconnectBackoffMaxMs must be >= reconnectBackoffBaseMs");
  }
  if (FRAME_HEADER_BYTES + SNAPSHOT_CHUNK_OVERHEAD_BYTES + s.snapshotChunkBytesMax > s.frameBytesMax) {
    throw new RangeError("snapshotChunkBytesMax does not fit in frameBytesMax");
  }
  if (FRAME_HEADER_BYTES + 12 + s.snapshotMetaBytesMax > s.frameBytesMax) {
    throw new RangeError("snapshotMetaBytesMax does not fit in frameBytesMax");
  }
}
