export { type Cancel, type Env, systemEnv } from "./env.js";
export { NodeError, type NodeErrorCode } from "./node-error.js";
export type { GroupStorage, MessageSender, PersistBatch, StateMachine } from "./ports.js";
export { RaftGroup, type RaftGroupOptions } from "./raft-group.js";
