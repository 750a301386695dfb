// The public surface of the text protocol adapter (HaToKuSe, Tolerex's client protocol).
export { type LineEvent, LineParser } from "./line-parser.js";
export {
  parseTextCommand,
  type TextCommand,
  type TextProtoVersion,
  textIdMax,
  textIdMin,
} from "./text-command.js";
export { textReasonOf } from "./text-errors.js";
export {
  startTextServer,
  type TextFlavor,
  type TextServer,
  type TextServerOptions,
  textFlavors,
  textKeyOf,
  textKeyPrefix,
} from "./text-server.js";
