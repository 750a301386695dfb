export { AssertionError, assert, assertNever } from "./assert.js";
export { BoundedQueue } from "./bounded-queue.js";
export { type Brand, brandedInteger, isNonNegativeSafeInteger } from "./brand.js";
export { ByteReader, ByteWriter, bytesEqual, compareBytes, DecodeError, utf8 } from "./bytes.js";
export { crc32, crc32Of } from "./crc.js";
export {
  callbackLogger,
  formatLogLine,
  type LogEntry,
  type LogFields,
  type Logger,
  type LogLevel,
  lineLogger,
  loggerOf,
  logLevels,
  silentLogger,
} from "./logger.js";
export { Prng } from "./prng.js";
