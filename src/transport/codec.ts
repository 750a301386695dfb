import type { GroupId } from "../raft/index.js";

/** What a codec's `decode` returns: a message, or why the bytes are not one. */
export type DecodeResult<M> =
  | { readonly ok: true; readonly message: M }
  | { readonly ok: false; readonly error: string };

/**
 * Turns application messages (Raft messages, later) into frame payloads and back. The transport
 * knows nothing of `M`; the node layer plugs in the Raft codec here.
 *
 * `encode` may return several buffers (for example a small header and the entries' data as they
 * are) and the transport writes them without concatenating. `decode` receives untrusted bytes from
 * an authenticated peer and must not throw: a failure drops the connection with ERR_MESSAGE_DECODE.
 * `decode` may keep views into `bytes`; the transport never reuses them. They may be views into a
 * larger socket buffer, so a decoder that keeps entries for long should copy them.
 */
export interface Codec<M> {
  encode(message: M): Uint8Array | Uint8Array[];
  decode(bytes: Uint8Array): DecodeResult<M>;
  /** The Raft group a message belongs to, written into the frame header; 0 when absent. */
  groupOf?(message: M): GroupId;
}
