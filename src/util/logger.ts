// The logger every layer above the Raft core writes through: a message plus structured fields, at a
// level, with bindings (node, component) fixed by child(). It is an interface, so the runtime stays
// free of logging libraries: the CLI backs it with pino (JSON lines, docs/operations.md), and tests
// and the simulator back it with a callback that sees every entry as a value.

/** How serious an entry is, least first (pino's level names). */
export const logLevels = ["debug", "info", "warn", "error", "fatal"] as const;

/** One of {@link logLevels}. */
export type LogLevel = (typeof logLevels)[number];

/** The structured part of an entry; an `err` field holding an Error is logged with its stack. */
export type LogFields = Readonly<Record<string, unknown>>;

/** Writes entries at a level; `child` fixes fields for every entry of the logger it returns. */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  fatal(message: string, fields?: LogFields): void;
  child(bindings: LogFields): Logger;
}

/** One entry as {@link callbackLogger} hands it over: the bindings and the entry's own fields merged. */
export interface LogEntry {
  readonly level: LogLevel;
  readonly message: string;
  readonly fields: LogFields;
}

/**
 * A logger whose every level calls `write`, and whose children come from `child`: the one shape
 * each backing (a callback, pino) fills in.
 */
export function loggerOf(
  write: (level: LogLevel, message: string, fields: LogFields) => void,
  child: (bindings: LogFields) => Logger,
): Logger {
  const at =
    (level: LogLevel) =>
    (message: string, fields: LogFields = {}): void =>
      write(level, message, fields);
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    fatal: at("fatal"),
    child,
  };
}

/** A logger that hands every entry to `write` as a value (tests, the simulator). */
export function callbackLogger(write: (entry: LogEntry) => void, bindings: LogFields = {}): Logger {
  return loggerOf(
    (level, message, fields) => write({ level, message, fields: { ...bindings, ...fields } }),
    (more) => callbackLogger(write, { ...bindings, ...more }),
  );
}

/** A logger that drops everything. */
export const silentLogger: Logger = callbackLogger(() => {});

/**
 * One entry as a line for people: `LEVEL [node component] message key=value ...`, then the stack of
 * an `err` field on the lines after it. `timeMs`, when given, leads the line as an ISO time.
 */
export function formatLogLine(entry: LogEntry, timeMs?: number): string {
  const { node, component, err, ...rest } = entry.fields;
  const where = [node, component].filter((v) => v !== undefined && v !== null).join(" ");
  const pairs = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  const head = [
    ...(timeMs !== undefined ? [new Date(timeMs).toISOString()] : []),
    entry.level.toUpperCase().padEnd(5),
    ...(where !== "" ? [`[${where}]`] : []),
    entry.message,
    ...pairs,
  ].join(" ");
  if (err === undefined) return head;
  const stack =
    err instanceof Error
      ? (err.stack ?? `${err.name}: ${err.message}`)
      : typeof err === "object" && err !== null && "stack" in err && typeof err.stack === "string"
        ? err.stack
        : String(err);
  return `${head}\n${stack}`;
}

/** A logger that writes each entry as a {@link formatLogLine} line (no time) to `write`. */
export function lineLogger(write: (line: string) => void): Logger {
  return callbackLogger((entry) => write(formatLogLine(entry)));
}
