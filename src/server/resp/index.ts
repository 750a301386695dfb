// The Redis protocol adapter's public surface: the server the node starts, and the parser and
// encoder for tests and tools.
export {
  defaultRespParserLimits,
  type ParsedItem,
  RespParser,
  type RespParserLimits,
} from "./resp-parser.js";
export { encodeReply, type Reply, type RespVersion } from "./resp-reply.js";
export {
  claimedRedisVersion,
  type RespServer,
  type RespServerOptions,
  startRespServer,
} from "./resp-server.js";
