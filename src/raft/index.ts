// The public surface of the Raft core: the RawNode state machine, its configuration, the Ready
// contract, messages, membership changes and the shared log types.

export {
  applyConfChange,
  type ConfChange,
  type ConfChangeDecodeError,
  type ConfChangeInvalidReason,
  decodeConfChanges,
  encodeConfChanges,
} from "./conf-change.js";
export type { PersistedState, RaftConfig, RandomSource } from "./config.js";
export type * from "./messages.js";
export type { ProgressState } from "./progress.js";
export { RawNode } from "./raw-node.js";
export type * from "./ready.js";
export * from "./types.js";
