// The node's logger: pino writing one JSON object per line (level, time, node, component, message,
// and the request id on HTTP requests) to standard output, or the same entries as lines for people
// (`--log-format pretty`, the default on a terminal and in `cairn dev`). pino because fastify
// already carries it, so HTTP requests log through the same instance with their request ids.
import { pino } from "pino";
import {
  formatLogLine,
  type LogEntry,
  type Logger,
  type LogLevel,
  loggerOf,
  logLevels,
} from "../util/index.js";

/** How entries are written: JSON lines, or lines for people. */
export const logFormats = ["auto", "json", "pretty"] as const;

/** One of {@link logFormats}; `auto` is pretty on a terminal and JSON otherwise. */
export type LogFormat = (typeof logFormats)[number];

/** The node's logger, and the pino instance under it (for fastify). */
export interface NodeLogger {
  readonly logger: Logger;
  readonly pino: pino.Logger;
}

/** Where entries go: something with a synchronous write (standard output by default). */
export interface LogDestination {
  write(text: string): void;
  readonly isTTY?: boolean;
}

/** Builds the node's logger: entries at `level` and above, every one bound to the node's name. */
export function createNodeLogger(options: {
  readonly node: string;
  readonly level: LogLevel;
  readonly format: LogFormat;
  readonly destination?: LogDestination;
}): NodeLogger {
  const out = options.destination ?? stdoutDestination();
  const pretty = options.format === "pretty" || (options.format === "auto" && out.isTTY === true);
  const instance = pino(
    {
      level: options.level,
      base: { pid: process.pid, node: options.node },
      timestamp: pino.stdTimeFunctions.isoTime,
      // The level's name, not pino's number: readable without a lookup table.
      formatters: { level: (label) => ({ level: label }) },
    },
    pretty ? { write: (line: string) => out.write(`${prettyLine(line)}\n`) } : out,
  );
  return { logger: adaptPino(instance), pino: instance };
}

/** Standard output, written synchronously so a line is out before the process exits. */
function stdoutDestination(): LogDestination {
  const boom = pino.destination({ dest: 1, sync: true });
  return { write: (text) => boom.write(text), isTTY: process.stdout.isTTY };
}

/** A pino logger behind the {@link Logger} interface. */
function adaptPino(instance: pino.Logger): Logger {
  return loggerOf(
    (level, message, fields) => instance[level](fields, message),
    (bindings) => adaptPino(instance.child(bindings)),
  );
}

/** One JSON line of pino's as a line for people ({@link formatLogLine}). */
function prettyLine(json: string): string {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.trimEnd();
  }
  const { level, time, msg, pid: _pid, ...fields } = parsed;
  const entry: LogEntry = {
    level: logLevels.find((l) => l === level) ?? "info",
    message: typeof msg === "string" ? msg : "",
    fields,
  };
  return formatLogLine(entry, typeof time === "string" ? Date.parse(time) : undefined);
}
