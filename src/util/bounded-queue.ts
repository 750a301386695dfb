import { assert } from "./assert.js";

/**
 * A first-in first-out queue with a fixed capacity. `push` refuses (returns false) when full instead
 * of growing, so the caller must decide what overload means: drop, reject or apply back-pressure.
 * Amortized O(1) push and shift over a ring buffer.
 */
export class BoundedQueue<T> {
  readonly capacity: number;
  #items: (T | undefined)[];
  #head = 0;
  #length = 0;

  /** Creates an empty queue that holds at most `capacity` items. */
  constructor(capacity: number) {
    assert(Number.isSafeInteger(capacity) && capacity >= 1, `capacity must be >= 1, got ${capacity}`);
    this.capacity = capacity;
    this.#items = new Array<T | undefined>(capacity);
  }

  /** How many items are queued. */
  get length(): number {
    return this.#length;
  }

  /** Whether another push would be refused. */
  isFull(): boolean {
    return this.#length === this.capacity;
  }

  /** Appends `item` and returns true, or returns false and changes nothing when the queue is full. */
  push(item: T): boolean {
    if (this.#length === this.capacity) return false;
    this.#items[(this.#head + this.#length) % this.capacity] = item;
    this.#length++;
    return true;
  }

  /** Removes and returns the oldest item, or undefined when empty. */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#length--;
    return item;
  }

  /** The oldest item without removing it, or undefined when empty. */
  peek(): T | undefined {
    return this.#length === 0 ? undefined : this.#items[this.#head];
  }

  /** Removes and returns up to `max` of the oldest items, oldest first. */
  drain(max = this.#length): T[] {
    const out: T[] = [];
    while (out.length < max && this.#length > 0) out.push(this.shift() as T);
    return out;
  }

  /** Removes every item. */
  clear(): void {
    this.#items = new Array<T | undefined>(this.capacity);
    this.#head = 0;
    this.#length = 0;
  }
}
