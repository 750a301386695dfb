// Each request's logger: fastify makes every request a pino child bound to its id, which costs a
// JSON serialization of the bindings and an object per request, while a request logs only when
// it fails. This child is made on the first line the request logs, so a request that logs
// nothing (nearly all) pays one small object.
import type { FastifyBaseLogger } from "fastify";
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString, LogFn } from "pino";

/** A request's logger that makes its pino child, bound to the request's id, on first use. */
export class LazyChildLogger implements FastifyBaseLogger {
  readonly #parent: FastifyBaseLogger;
  readonly #bindings: Bindings;
  readonly #options: ChildLoggerOptions;
  #child: FastifyBaseLogger | undefined;

  /** What fastify's child logger factory is given: the server's logger, the request's bindings. */
  constructor(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent;
    this.#bindings = bindings;
    this.#options = options;
  }

  /** The child's level (the server's, unless a route set its own). */
  get level(): LevelWithSilentOrString {
    return this.#real().level;
  }

  set level(level: LevelWithSilentOrString) {
    this.#real().level = level;
  }

  /** Logs at fatal. */
  fatal(...args: Parameters<LogFn>): void {
    this.#real().fatal(...args);
  }

  /** Logs at error. */
  error(...args: Parameters<LogFn>): void {
    this.#real().error(...args);
  }

  /** Logs at warn. */
  warn(...args: Parameters<LogFn>): void {
    this.#real().warn(...args);
  }

  /** Logs at info. */
  info(...args: Parameters<LogFn>): void {
    this.#real().info(...args);
  }

  /** Logs at debug. */
  debug(...args: Parameters<LogFn>): void {
    this.#real().debug(...args);
  }

  /** Logs at trace. */
  trace(...args: Parameters<LogFn>): void {
    this.#real().trace(...args);
  }

  /** Logs nothing, as pino's silent level does. */
  silent(...args: Parameters<LogFn>): void {
    this.#real().silent(...args);
  }

  /** A child of the request's logger, with the request's bindings and `bindings`. */
  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#real().child(bindings, options);
  }

  #real(): FastifyBaseLogger {
    this.#child ??= this.#parent.child(this.#bindings, this.#options);
    return this.#child;
  }
}
