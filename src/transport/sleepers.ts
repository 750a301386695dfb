import type { TimerHandle, TransportEnv } from "./env.js";

/**
 * Waits on the env's clock that a closing transport cuts short: a snapshot sender's backoff
 * between resumes must not hold a shutdown (or a simulated crash) for seconds. Serves the TLS
 * transport, its in-memory twin and the simulator's snapshot links alike.
 */
export class Sleepers {
  readonly #env: TransportEnv;
  readonly #isClosed: () => boolean;
  readonly #wakers = new Set<() => void>();

  /** Sleepers on `env`'s clock for a transport that reports `isClosed()`. */
  constructor(env: TransportEnv, isClosed: () => boolean) {
    this.#env = env;
    this.#isClosed = isClosed;
  }

  /** Waits `delayMs`, or less if {@link wakeAll} is called; resolves false once the transport closed. */
  sleep(delayMs: number): Promise<boolean> {
    if (this.#isClosed()) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const wake = (): void => {
        timer?.cancel();
        this.#wakers.delete(wake);
        resolve(!this.#isClosed());
      };
      this.#wakers.add(wake);
      timer = this.#env.setTimer(delayMs, wake);
    });
  }

  /** Ends every wait now (the transport is closing). */
  wakeAll(): void {
    for (const wake of [...this.#wakers]) wake();
  }
}
