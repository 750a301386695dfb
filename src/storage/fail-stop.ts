import { errnoOf } from "./file-system.js";
import { StorageError } from "./storage-error.js";

/**
 * The failure state shared by the file-backed stores: the first I/O error other than a full disk
 * stops the store for good (fail-stop, never retry an fsync), and every later call is refused.
 */
export class FailStop {
  #failed: StorageError | undefined;
  readonly #what: string;
  readonly #onFailure: ((error: StorageError) => void) | undefined;

  /** Creates the state for a store described by `what`; `onFailure` hears about the stop once. */
  constructor(what: string, onFailure: ((error: StorageError) => void) | undefined) {
    this.#what = what;
    this.#onFailure = onFailure;
  }

  /** The error the store stopped with, if it did. */
  get failed(): StorageError | undefined {
    return this.#failed;
  }

  /** Throws the stop error once stopped. */
  check(): void {
    if (this.#failed !== undefined) throw this.#failed;
  }

  /**
   * Turns an I/O error into what the caller should see: ERR_NO_SPACE for a full disk (the store goes
   * on), a StorageError as it is, anything else stops the store (ERR_STORAGE_FAILED).
   */
  classify(error: unknown): StorageError {
    if (errnoOf(error) === "ENOSPC") {
      return new StorageError("ERR_NO_SPACE", `${this.#what}: no space left on device`, { cause: error });
    }
    if (error instanceof StorageError) return error;
    if (this.#failed === undefined) {
      this.#failed = new StorageError("ERR_STORAGE_FAILED", `${this.#what}: I/O failed; the node must stop`, {
        cause: error,
      });
      this.#onFailure?.(this.#failed);
    }
    return this.#failed;
  }

  /** Runs `op`, classifying any error it throws. */
  async run<T>(op: () => Promise<T>): Promise<T> {
    this.check();
    try {
      return await op();
    } catch (error) {
      throw this.classify(error);
    }
  }
}
